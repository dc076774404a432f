"""LQG: the exact expected cost against the stacked closed-loop Gaussian and Monte Carlo.

The oracle writes every state and control of the closed loop (plant, Kalman
filter with *given* gains, LQR law with *given* gains) as an affine function of
the independent Gaussians ``(x_0, w_0.., v_0..)`` and takes the expectation of
the quadratic cost of that one big Gaussian. It shares no recursion with the
Riccati/estimation-error formula under test, and it prices any gains, so it
also checks optimality (perturbed gains must cost more).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import scipy.linalg as sla

from gpcontrol.rollout import rollout
from gpcontrol.solvers.kalman import kalman_filter
from gpcontrol.solvers.lqg import lqg, stationary_lqg


# ---------------------------------------------------------------------------- problems
def _problem(seed: int, n: int = 3, m: int = 2, p: int = 2, T: int = 6) -> dict[str, Any]:
    """A time-varying problem with every affine, linear and cross term switched on."""
    rng = np.random.default_rng(seed)

    def psd(k: int, lead: tuple[int, ...], scale: float, floor: float) -> np.ndarray:
        F = rng.standard_normal((*lead, k, k))
        return scale * F @ np.swapaxes(F, -1, -2) / k + floor * np.eye(k)

    F0 = rng.standard_normal((n, n))
    return dict(
        A=np.eye(n) + 0.3 * rng.standard_normal((T, n, n)),
        B=rng.standard_normal((T, n, m)),
        C=rng.standard_normal((T, p, n)),
        Q=psd(n, (T,), 1.0, 0.1),
        R=psd(m, (T,), 0.5, 0.3),
        W=psd(n, (T,), 0.2, 0.05),
        V=psd(p, (T,), 0.3, 0.1),
        Qf=psd(n, (), 2.0, 0.5),
        m0=rng.standard_normal(n),
        P0=F0 @ F0.T / n + 0.2 * np.eye(n),
        c=0.2 * rng.standard_normal((T, n)),
        d=0.2 * rng.standard_normal((T, p)),
        q=0.3 * rng.standard_normal((T, n)),
        r=0.3 * rng.standard_normal((T, m)),
        M=0.05 * rng.standard_normal((T, n, m)),
        qf=0.3 * rng.standard_normal(n),
    )


def _solve(pr: dict[str, Any]):
    return lqg(
        pr["A"], pr["B"], pr["C"], pr["Q"], pr["R"], pr["W"], pr["V"],
        **{k: pr[k] for k in ("Qf", "m0", "P0", "c", "d", "q", "r", "M", "qf")},
    )  # fmt: skip


def _closed_loop_cost(pr: dict[str, Any], K: np.ndarray, k: np.ndarray, G: np.ndarray) -> float:
    """Exact expected cost of ``u_t = K_t xhat_t|t + k_t`` with filter gains ``G_t``.

    Every quantity is a pair (rows over the noise vector z, offset): affine in z.
    """
    A, B, C = pr["A"], pr["B"], pr["C"]
    T, n, m = B.shape
    p = C.shape[1]
    nz = n + T * n + T * p
    mu_z = np.concatenate([pr["m0"], np.zeros(T * (n + p))])
    Sz = sla.block_diag(pr["P0"], *pr["W"], *pr["V"])
    x = (np.hstack([np.eye(n), np.zeros((n, nz - n))]), np.zeros(n))
    xp = (np.zeros((n, nz)), pr["m0"].copy())  # predicted estimate, deterministic at t = 0
    xs, us = [x], []
    for t in range(T):
        Ev = np.zeros((p, nz))
        Ev[:, n + T * n + t * p : n + T * n + (t + 1) * p] = np.eye(p)
        y = (C[t] @ x[0] + Ev, C[t] @ x[1] + pr["d"][t])
        innov = (y[0] - C[t] @ xp[0], y[1] - C[t] @ xp[1] - pr["d"][t])
        xf = (xp[0] + G[t] @ innov[0], xp[1] + G[t] @ innov[1])
        u = (K[t] @ xf[0], K[t] @ xf[1] + k[t])
        Ew = np.zeros((n, nz))
        Ew[:, n + t * n : n + (t + 1) * n] = np.eye(n)
        x = (A[t] @ x[0] + B[t] @ u[0] + Ew, A[t] @ x[1] + B[t] @ u[1] + pr["c"][t])
        xp = (A[t] @ xf[0] + B[t] @ u[0], A[t] @ xf[1] + B[t] @ u[1] + pr["c"][t])
        xs.append(x)
        us.append(u)
    # Stack s = (x_0..x_T, u_0..u_{T-1}) = Ms z + a; cost = 1/2 s' H s + h' s.
    Ms = np.vstack([r for r, _ in xs] + [r for r, _ in us])
    a = np.concatenate([o for _, o in xs] + [o for _, o in us])
    N = (T + 1) * n + T * m
    H = np.zeros((N, N))
    h = np.zeros(N)
    ux = (T + 1) * n
    for t in range(T):
        ix, iu = slice(t * n, (t + 1) * n), slice(ux + t * m, ux + (t + 1) * m)
        H[ix, ix] = pr["Q"][t]
        H[iu, iu] = pr["R"][t]
        H[ix, iu] = pr["M"][t]
        H[iu, ix] = pr["M"][t].T
        h[ix] = pr["q"][t]
        h[iu] = pr["r"][t]
    iT = slice(T * n, (T + 1) * n)
    H[iT, iT] = pr["Qf"]
    h[iT] = pr["qf"]
    mean = Ms @ mu_z + a
    cov = Ms @ Sz @ Ms.T
    return float(0.5 * mean @ H @ mean + 0.5 * np.trace(H @ cov) + h @ mean)


# ---------------------------------------------------------------------------- closed form
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_cost_equals_stacked_closed_loop_gaussian(seed: int) -> None:
    pr = _problem(seed)
    res = _solve(pr)
    ref = _closed_loop_cost(pr, res.K, res.k, res.kalman_gains)
    assert res.expected_cost == pytest.approx(ref, rel=1e-10)
    assert res.estimation_cost > 0.0
    assert res.expected_cost == pytest.approx(res.full_information_cost + res.estimation_cost)


def test_lqg_gains_are_optimal_among_perturbed_gains() -> None:
    """Separation principle: neither the regulator nor the filter gains can be improved."""
    pr = _problem(4)
    res = _solve(pr)
    best = _closed_loop_cost(pr, res.K, res.k, res.kalman_gains)
    rng = np.random.default_rng(0)
    for _ in range(5):
        for which in ("K", "k", "G"):
            K, k, G = (np.array(res.K), np.array(res.k), np.array(res.kalman_gains))
            target = {"K": K, "k": k, "G": G}[which]
            target += 0.05 * rng.standard_normal(target.shape)
            assert _closed_loop_cost(pr, K, k, G) > best + 1e-9


def test_monte_carlo_10000_rollouts_within_4_standard_errors() -> None:
    pr = _problem(7)
    res = _solve(pr)
    ctrl = res.controller()
    N = 10_000
    rng = np.random.default_rng(2024)
    A, B, C = pr["A"], pr["B"], pr["C"]
    T, n, m = B.shape
    p = C.shape[1]
    x = pr["m0"] + rng.standard_normal((N, n)) @ np.linalg.cholesky(pr["P0"]).T
    total = np.zeros(N)
    for t in range(T):
        v = rng.standard_normal((N, p)) @ np.linalg.cholesky(pr["V"][t]).T
        y = x @ C[t].T + pr["d"][t] + v
        u = ctrl(y, t)
        total += (
            0.5 * np.einsum("ni,ij,nj->n", x, pr["Q"][t], x)
            + 0.5 * np.einsum("ni,ij,nj->n", u, pr["R"][t], u)
            + np.einsum("ni,ij,nj->n", x, pr["M"][t], u)
            + x @ pr["q"][t]
            + u @ pr["r"][t]
        )
        w = rng.standard_normal((N, n)) @ np.linalg.cholesky(pr["W"][t]).T
        x = x @ A[t].T + u @ B[t].T + pr["c"][t] + w
    total += 0.5 * np.einsum("ni,ij,nj->n", x, pr["Qf"], x) + x @ pr["qf"]
    se = total.std(ddof=1) / np.sqrt(N)
    assert abs(total.mean() - res.expected_cost) < 4.0 * se, (total.mean(), res.expected_cost, se)


# ---------------------------------------------------------------------------- rollout
class _LinearGaussianEnv(gym.Env):  # type: ignore[type-arg]
    """The time-varying plant of a problem dict as a Gymnasium environment."""

    def __init__(self, pr: dict[str, Any]) -> None:
        self.pr = pr
        T, n, m = pr["B"].shape
        p = pr["C"].shape[1]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (p,), np.float64)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (m,), np.float64)
        self.T = T

    def _observe(self) -> np.ndarray:
        pr, t = self.pr, self.t
        v = np.linalg.cholesky(pr["V"][t]) @ self.np_random.standard_normal(pr["C"].shape[1])
        return pr["C"][t] @ self.x + pr["d"][t] + v

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        pr = self.pr
        self.x = pr["m0"] + np.linalg.cholesky(pr["P0"]) @ self.np_random.standard_normal(
            pr["m0"].shape[0]
        )
        self.t = 0
        return self._observe(), {"state": self.x.copy()}

    def step(self, u: np.ndarray):  # type: ignore[override]
        pr, t = self.pr, self.t
        w = np.linalg.cholesky(pr["W"][t]) @ self.np_random.standard_normal(self.x.shape[0])
        self.x = pr["A"][t] @ self.x + pr["B"][t] @ u + pr["c"][t] + w
        self.t += 1
        obs = self._observe() if self.t < self.T else np.zeros(self.pr["C"].shape[1])
        return obs, 0.0, False, self.t >= self.T, {"state": self.x.copy()}


def test_controller_in_rollout_acts_on_the_kalman_filter_estimate() -> None:
    pr = _problem(5)
    res = _solve(pr)
    ctrl = res.controller()
    env = _LinearGaussianEnv(pr)
    for seed in (0, 1):  # a second episode: t = 0 resets the belief
        traj = rollout(env, ctrl, steps=env.T, seed=seed)
        T = traj.T
        assert T == pr["B"].shape[0]
        kf = kalman_filter(
            traj.states[:T], pr["A"], pr["C"], pr["W"], pr["V"], m0=pr["m0"], P0=pr["P0"],
            B=pr["B"], U=traj.controls, c=pr["c"], d=pr["d"],
        )  # fmt: skip
        expected_u = np.einsum("tij,tj->ti", res.K, kf.filtered_means) + res.k
        np.testing.assert_allclose(traj.controls, expected_u, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ctrl.mean, kf.filtered_means[-1], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ctrl.cov, kf.filtered_covs[-1], rtol=1e-10, atol=1e-12)


def test_controller_rejects_steps_out_of_order() -> None:
    res = _solve(_problem(6))
    ctrl = res.controller()
    y = np.zeros(2)
    ctrl(y, 0)
    with pytest.raises(ValueError, match="expects step 1 but got t = 3"):
        ctrl(y, 3)
    for _ in range(1, res.T):
        ctrl(y)
    with pytest.raises(ValueError, match="beyond the controller's horizon T = 6"):
        ctrl(y)
    with pytest.raises(ValueError, match=r"y must have shape \(\.\.\., 2\)"):
        ctrl(np.zeros(3), 0)


# ---------------------------------------------------------------------------- stationary
def _stationary_plant(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n, m, p = 4, 2, 2
    A = rng.standard_normal((n, n))
    A *= 1.1 / np.abs(np.linalg.eigvals(A)).max()  # open loop unstable
    B = rng.standard_normal((n, m))
    C = rng.standard_normal((p, n))
    Q = np.diag([1.0, 0.5, 2.0, 0.3])
    R = np.array([[0.5, 0.1], [0.1, 0.4]])
    W = 0.1 * np.eye(n) + 0.05
    V = np.array([[0.2, 0.05], [0.05, 0.3]])
    return A, B, C, Q, R, W, V


def test_stationary_average_cost_equals_closed_loop_lyapunov() -> None:
    A, B, C, Q, R, W, V = _stationary_plant(1)
    res = stationary_lqg(A, B, C, Q, R, W, V)
    assert np.abs(np.linalg.eigvals(A)).max() > 1.0
    K, G = res.K, res.kalman_gain
    n = A.shape[0]
    # Closed loop in (x, xhat_t|t): x' = A x + B K xf + w;
    # xf' = (I - G C)(A xf + B K xf) + G (C x' + v')
    #     = G C A x + (A + B K - G C A) xf + G C w + G v'.
    F = np.block([[A, B @ K], [G @ C @ A, A + B @ K - G @ C @ A]])
    E = np.block([[np.eye(n), np.zeros((n, C.shape[0]))], [G @ C, G]])
    Snoise = sla.block_diag(W, V)
    Sigma = sla.solve_discrete_lyapunov(F, E @ Snoise @ E.T)
    Sx, Sf = Sigma[:n, :n], Sigma[n:, n:]
    ref = 0.5 * np.trace(Q @ Sx) + 0.5 * np.trace(K.T @ R @ K @ Sf)
    assert res.average_cost == pytest.approx(ref, rel=1e-9)


def test_finite_horizon_with_stationary_data_reproduces_the_stationary_lqg() -> None:
    """Qf = P and P0 = steady-state predicted covariance make every step stationary."""
    A, B, C, Q, R, W, V = _stationary_plant(2)
    st = stationary_lqg(A, B, C, Q, R, W, V)
    T = 25
    m0 = np.array([1.0, -0.5, 0.3, 0.0])
    P0 = st.lqe.P
    fh = lqg(A, B, C, Q, R, W, V, Qf=st.lqr.P, m0=m0, P0=P0, T=T)
    for t in range(T):
        np.testing.assert_allclose(fh.K[t], st.K, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(fh.kalman_gains[t], st.kalman_gain, rtol=1e-8, atol=1e-10)
    ref = 0.5 * m0 @ st.lqr.P @ m0 + 0.5 * np.trace(st.lqr.P @ P0) + T * st.average_cost
    assert fh.expected_cost == pytest.approx(ref, rel=1e-9)
    # The stationary controller acts like the finite-horizon one on the same data.
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((T, 2))
    c1, c2 = fh.controller(), st.controller(m0)
    for t in range(T):
        np.testing.assert_allclose(c1(Y[t], t), c2(Y[t], t), rtol=1e-7, atol=1e-9)


def test_bad_input_names_the_argument() -> None:
    pr = _problem(8)
    args = [pr[k] for k in ("A", "B", "C", "Q", "R", "W", "V")]
    kw = {k: pr[k] for k in ("Qf", "m0", "P0")}
    bad = list(args)
    bad[2] = pr["C"][:, :, :2]
    with pytest.raises(ValueError, match=r"C must have shape \(p, 3\)"):
        lqg(*bad, **kw)
    bad = list(args)
    bad[5] = pr["W"][:4]
    with pytest.raises(ValueError, match=r"W must have shape \(3, 3\) or \(6, 3, 3\)"):
        lqg(*bad, **kw)
    bad = list(args)
    bad[6] = -np.eye(2)
    with pytest.raises(ValueError, match="V must be positive semi-definite"):
        lqg(*bad, **kw)
    with pytest.raises(ValueError, match="P0 must be positive semi-definite"):
        lqg(*args, **{**kw, "P0": -np.eye(3)})
    A, B, C, Q, R, W, V = _stationary_plant(1)
    with pytest.raises(ValueError, match="not detectable"):
        stationary_lqg(np.diag([1.5, 0.5]), [[1.0], [1.0]], [[0.0, 1.0]], np.eye(2), [[1.0]],
                       np.eye(2), [[1.0]])  # fmt: skip
