"""LQR family against closed forms, peer libraries and a dense KKT solve."""

from __future__ import annotations

import control
import numpy as np
import pytest
import scipy.linalg as sla

from gpcontrol.solvers import (
    LinearDynamics,
    TimeVaryingLinearDynamics,
    dlqr,
    finite_horizon_lqr,
    linearize_affine,
    lqr,
    simulate,
    tvlqr,
)
from gpcontrol.systems import Pendulum

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _random_system(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, ...]:
    """A random (generically controllable) system with PSD Q and PD R."""
    A = rng.standard_normal((n, n)) / np.sqrt(n) * 1.1
    B = rng.standard_normal((n, m))
    W = rng.standard_normal((n, n))
    Q = W @ W.T / n + 0.1 * np.eye(n)
    V = rng.standard_normal((m, m))
    R = V @ V.T / m + 0.5 * np.eye(m)
    return A, B, Q, R


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


SIZES = [(2, 1), (3, 2), (5, 1), (8, 3), (12, 4), (20, 5), (35, 7), (50, 10)]


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_dlqr_matches_scipy_and_python_control(n: int, m: int) -> None:
    rng = np.random.default_rng(100 + n)
    A, B, Q, R = _random_system(rng, n, m)
    res = dlqr(A, B, Q, R)
    P_ref = sla.solve_discrete_are(A, B, Q, R)
    K_ref = -np.linalg.solve(R + B.T @ P_ref @ B, B.T @ P_ref @ A)
    K_ctl, S_ctl, E_ctl = control.dlqr(A, B, Q, R)
    assert _rel(res.P, P_ref) < 1e-9
    assert _rel(res.K, K_ref) < 1e-9
    assert _rel(res.K, -np.asarray(K_ctl)) < 1e-9  # python-control uses u = -K x
    assert _rel(res.P, np.asarray(S_ctl)) < 1e-9
    assert np.abs(res.eigenvalues).max() < 1.0
    np.testing.assert_allclose(
        np.sort_complex(res.eigenvalues), np.sort_complex(np.asarray(E_ctl)), rtol=1e-8, atol=1e-10
    )
    assert res.residual < 1e-10


@pytest.mark.parametrize(("n", "m"), [(2, 1), (5, 2), (20, 4), (50, 10)])
def test_dlqr_cross_term_matches_python_control(n: int, m: int) -> None:
    rng = np.random.default_rng(7 + n)
    A, B, Q, R = _random_system(rng, n, m)
    # A cross weight small enough to keep [[Q, N], [N', R]] PSD.
    N = 0.05 * rng.standard_normal((n, m))
    res = dlqr(A, B, Q, R, N)
    K_ctl, S_ctl, _ = control.dlqr(A, B, Q, R, N)
    assert _rel(res.K, -np.asarray(K_ctl)) < 1e-9
    assert _rel(res.P, np.asarray(S_ctl)) < 1e-9


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_continuous_lqr_matches_scipy_and_python_control(n: int, m: int) -> None:
    rng = np.random.default_rng(200 + n)
    A, B, Q, R = _random_system(rng, n, m)
    N = 0.05 * rng.standard_normal((n, m))
    res = lqr(A, B, Q, R, N)
    P_ref = sla.solve_continuous_are(A, B, Q, R, s=N)
    K_ctl, S_ctl, _ = control.lqr(A, B, Q, R, N)
    assert _rel(res.P, P_ref) < 1e-9
    assert _rel(res.K, -np.linalg.solve(R, B.T @ P_ref + N.T)) < 1e-9
    assert _rel(res.K, -np.asarray(K_ctl)) < 1e-9
    assert _rel(res.P, np.asarray(S_ctl)) < 1e-9
    assert res.eigenvalues.real.max() < 0.0


def test_dlqr_scalar_closed_form() -> None:
    # x+ = a x + b u, cost x^2 + r u^2: P solves p = a^2 p - (a b p)^2/(r + b^2 p) + 1.
    a, b, r = 1.3, 0.7, 0.4
    res = dlqr([[a]], [[b]], [[1.0]], r)
    # p^2 b^2 + p (r - a^2 r - b^2) - r = 0, positive root.
    qa, qb, qc = b**2, r - a**2 * r - b**2, -r
    p = (-qb + np.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)
    assert res.P[0, 0] == pytest.approx(p, rel=1e-12)
    assert res.K[0, 0] == pytest.approx(-a * b * p / (r + b**2 * p), rel=1e-12)


@pytest.mark.parametrize(("n", "m"), [(2, 1), (4, 2), (10, 3)])
def test_finite_horizon_with_stationary_terminal_reproduces_infinite_gain(n: int, m: int) -> None:
    rng = np.random.default_rng(300 + n)
    A, B, Q, R = _random_system(rng, n, m)
    inf = dlqr(A, B, Q, R)
    # The finite-horizon cost is 1/2 of the infinite-horizon one: same minimiser.
    fh = finite_horizon_lqr(A, B, Q, R, Qf=inf.P, T=30)
    for t in range(30):
        assert _rel(fh.K[t], inf.K) < 1e-9
        assert _rel(fh.V[t], inf.P) < 1e-9
    np.testing.assert_allclose(fh.k, 0.0, atol=1e-14)


def _kkt_solution(
    A: np.ndarray,
    B: np.ndarray,
    c: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    M: np.ndarray,
    q: np.ndarray,
    r: np.ndarray,
    Qf: np.ndarray,
    qf: np.ndarray,
    x0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The same LQ problem as ONE equality-constrained QP over (x_0..x_T, u_0..u_{T-1})."""
    T, n, m = B.shape
    nx, nz = (T + 1) * n, (T + 1) * n + T * m
    H = np.zeros((nz, nz))
    h = np.zeros(nz)

    def xi(t: int) -> slice:
        return slice(t * n, (t + 1) * n)

    def ui(t: int) -> slice:
        return slice(nx + t * m, nx + (t + 1) * m)

    for t in range(T):
        H[xi(t), xi(t)] += Q[t]
        H[ui(t), ui(t)] += R[t]
        H[xi(t), ui(t)] += M[t]
        H[ui(t), xi(t)] += M[t].T
        h[xi(t)] += q[t]
        h[ui(t)] += r[t]
    H[xi(T), xi(T)] += Qf
    h[xi(T)] += qf
    # Constraints: x_0 = x0;  x_{t+1} - A x_t - B u_t = c_t.
    E = np.zeros(((T + 1) * n, nz))
    e = np.zeros((T + 1) * n)
    E[:n, :n] = np.eye(n)
    e[:n] = x0
    for t in range(T):
        rows = slice((t + 1) * n, (t + 2) * n)
        E[rows, xi(t + 1)] = np.eye(n)
        E[rows, xi(t)] = -A[t]
        E[rows, ui(t)] = -B[t]
        e[rows] = c[t]
    kkt = np.block([[H, E.T], [E, np.zeros((E.shape[0], E.shape[0]))]])
    sol = np.linalg.solve(kkt, np.concatenate([-h, e]))
    z = sol[:nz]
    cost = 0.5 * z @ H @ z + h @ z
    return z[:nx].reshape(T + 1, n), z[nx:].reshape(T, m), float(cost)


@pytest.mark.parametrize(("n", "m", "T"), [(3, 1, 6), (4, 2, 12), (6, 3, 20)])
def test_time_varying_lqr_equals_dense_kkt_solution(n: int, m: int, T: int) -> None:
    rng = np.random.default_rng(400 + n)
    A = rng.standard_normal((T, n, n)) / np.sqrt(n)
    B = rng.standard_normal((T, n, m))
    c = rng.standard_normal((T, n))
    # A jointly convex stage cost [[Q, M], [M', R]] > 0 with random linear terms.
    W = rng.standard_normal((T, n + m, n + m))
    J = W @ np.swapaxes(W, 1, 2) / (n + m) + 0.2 * np.eye(n + m)
    Q, M, R = J[:, :n, :n], J[:, :n, n:], J[:, n:, n:]
    q = rng.standard_normal((T, n))
    r = rng.standard_normal((T, m))
    Wf = rng.standard_normal((n, n))
    Qf = Wf @ Wf.T / n
    qf = rng.standard_normal(n)
    x0 = rng.standard_normal(n)
    res = finite_horizon_lqr(A, B, Q, R, q=q, r=r, M=M, c=c, Qf=Qf, qf=qf)
    X, U = res.rollout(x0)
    X_ref, U_ref, cost_ref = _kkt_solution(A, B, c, Q, R, M, q, r, Qf, qf, x0)
    np.testing.assert_allclose(U, U_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(X, X_ref, rtol=1e-9, atol=1e-9)
    assert float(res.cost_to_go(x0)) == pytest.approx(cost_ref, rel=1e-9, abs=1e-9)
    for t in range(T + 1):
        np.testing.assert_allclose(res.V[t], res.V[t].T, rtol=0, atol=0)


def test_finite_horizon_broadcasts_constant_and_time_varying_terms() -> None:
    rng = np.random.default_rng(5)
    n, m, T = 3, 2, 8
    A, B, Q, R = _random_system(rng, n, m)
    q = rng.standard_normal(n)
    a = finite_horizon_lqr(A, B, Q, R, q=q, Qf=Q, T=T)
    b = finite_horizon_lqr(np.stack([A] * T), B, np.stack([Q] * T), R, q=np.stack([q] * T), Qf=Q)
    np.testing.assert_allclose(a.K, b.K, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-13, atol=1e-13)


def test_tvlqr_on_linear_dynamics_equals_lqr_in_deviation_coordinates() -> None:
    rng = np.random.default_rng(11)
    n, m, T = 4, 2, 15
    A, B, Q, R = _random_system(rng, n, m)
    dyn = LinearDynamics(A, B, c=rng.standard_normal(n))
    U_ref = rng.standard_normal((T, m))
    X_ref = simulate(dyn, rng.standard_normal(n), U_ref)
    res = tvlqr(dyn, X_ref, U_ref, Q, R, 3 * Q)
    dev = finite_horizon_lqr(A, B, Q, R, Qf=3 * Q, T=T)
    delta0 = rng.standard_normal(n)
    dX, dU = dev.rollout(delta0)
    x = X_ref[0] + delta0
    for t in range(T):
        u = res.control(t, x)
        np.testing.assert_allclose(u, U_ref[t] + dU[t], rtol=1e-10, atol=1e-10)
        x = dyn.step(x, u)
    np.testing.assert_allclose(x, X_ref[T] + dX[T], rtol=1e-10, atol=1e-10)


def test_tvlqr_tracks_a_nonlinear_reference_to_second_order() -> None:
    """Closed-loop deviation from the linear prediction shrinks like |delta|^2 (Taylor)."""
    sys = Pendulum(dt=0.05)
    T = 40
    U_ref = 1.5 * np.sin(np.linspace(0, 4, T))[:, None]
    X_ref = sys.simulate(np.array([0.3, 0.0]), U_ref)
    res = tvlqr(sys, X_ref, U_ref, np.eye(2), 0.1 * np.eye(1), 10 * np.eye(2))
    direction = np.array([1.0, -0.5])
    errors = []
    for eps in (1e-2, 5e-3):
        dX, _ = res.deviation.rollout(eps * direction)
        x = X_ref[0] + eps * direction
        err = 0.0
        for t in range(T):
            x = sys.step(x, res.control(t, x))
            err = max(err, float(np.abs(x - X_ref[t + 1] - dX[t + 1]).max()))
        errors.append(err)
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.1)


def test_linearize_affine_reproduces_the_map_at_the_expansion_point() -> None:
    sys = Pendulum(dt=0.05)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6, 2))
    U = rng.standard_normal((6, 1))
    A, B, c = linearize_affine(sys, X, U)
    np.testing.assert_allclose(
        np.einsum("tij,tj->ti", A, X) + np.einsum("tij,tj->ti", B, U) + c,
        sys.step(X, U),
        rtol=1e-12,
        atol=1e-12,
    )
    # Finite differences of the map.
    h = 1e-6
    e = np.array([h, 0.0])
    fd = (sys.step(X + e, U) - sys.step(X - e, U)) / (2 * h)
    np.testing.assert_allclose(A[:, :, 0], fd, rtol=1e-6, atol=1e-8)


def test_time_varying_linear_dynamics_simulate_matches_manual_loop() -> None:
    rng = np.random.default_rng(3)
    T, n, m = 5, 3, 2
    A, B, c = (
        rng.standard_normal((T, n, n)),
        rng.standard_normal((T, n, m)),
        rng.standard_normal((T, n)),
    )
    dyn = TimeVaryingLinearDynamics(A, B, c)
    U = rng.standard_normal((T, m))
    x0 = rng.standard_normal(n)
    X = simulate(dyn, x0, U)
    x = x0
    for t in range(T):
        x = A[t] @ x + B[t] @ U[t] + c[t]
        np.testing.assert_allclose(X[t + 1], x, rtol=1e-13)
    Ab, Bb, cb = linearize_affine(dyn, X[:-1], U)
    np.testing.assert_allclose(cb, c, atol=1e-12)
    np.testing.assert_array_equal(Ab, A)


# ---------------------------------------------------------------------------- errors
def test_errors_for_bad_weights() -> None:
    A, B = np.eye(2), np.array([[0.0], [1.0]])
    with pytest.raises(ValueError, match="R must be positive definite"):
        dlqr(A, B, np.eye(2), [[0.0]])
    with pytest.raises(ValueError, match="R must be positive definite"):
        lqr(A, B, np.eye(2), [[-1.0]])
    with pytest.raises(ValueError, match="Q must be positive semi-definite"):
        dlqr(A, B, np.diag([1.0, -1.0]), [[1.0]])
    with pytest.raises(ValueError, match="Q must be symmetric"):
        dlqr(A, B, [[1.0, 1.0], [0.0, 1.0]], [[1.0]])
    with pytest.raises(ValueError, match=r"B must have shape \(2, m\)"):
        dlqr(A, np.ones((3, 1)), np.eye(2), [[1.0]])
    with pytest.raises(ValueError, match="A contains NaN"):
        dlqr([[np.nan, 0.0], [0.0, 1.0]], B, np.eye(2), [[1.0]])


def test_error_for_non_stabilisable_pair() -> None:
    # Second mode (eigenvalue 1.2, discrete unstable) is not reached by B.
    A = np.diag([0.5, 1.2])
    B = np.array([[1.0], [0.0]])
    with pytest.raises(ValueError, match="not stabilisable"):
        dlqr(A, B, np.eye(2), [[1.0]])
    with pytest.raises(ValueError, match="not stabilisable"):
        lqr(np.diag([-1.0, 0.3]), B, np.eye(2), [[1.0]])
    # An uncontrollable but stable mode is fine.
    dlqr(np.diag([1.2, 0.5]), B, np.eye(2), [[1.0]])


def test_error_for_non_detectable_cost() -> None:
    A = np.diag([0.5, 1.2])
    B = np.array([[1.0], [1.0]])
    Q = np.diag([1.0, 0.0])  # the unstable mode is invisible in the cost
    with pytest.raises(ValueError, match="not detectable"):
        dlqr(A, B, Q, [[1.0]])


def test_finite_horizon_errors() -> None:
    A, B = np.eye(2), np.array([[0.0], [1.0]])
    with pytest.raises(ValueError, match="T is required"):
        finite_horizon_lqr(A, B, np.eye(2), [[1.0]], Qf=np.eye(2))
    with pytest.raises(ValueError, match="not positive definite at t = "):
        finite_horizon_lqr(A, B, np.eye(2), [[-1.0]], Qf=np.zeros((2, 2)), T=3)
    with pytest.raises(ValueError, match="has 4 time steps, expected 3"):
        finite_horizon_lqr(np.stack([A] * 3), B, np.stack([np.eye(2)] * 4), [[1.0]], Qf=np.eye(2))
    with pytest.raises(ValueError, match=r"c must have shape \(2,\)"):
        finite_horizon_lqr(A, B, np.eye(2), [[1.0]], Qf=np.eye(2), c=np.ones(3), T=3)
