"""Oracles for gpcontrol.costs: finite differences, loops, CasADi, closed forms, Monte Carlo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import casadi as ca
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpcontrol.costs import (
    Cost,
    QuadraticCost,
    SaturatingCost,
    ScaledCost,
    SumCost,
)
from gpcontrol.gaussian import (
    check_covariance,
    expected_exp_quadratic,
    safe_cholesky,
    trig_moments,
)
from gpcontrol.systems import CartPole, DoublePendulum, Pendulum, PlanarArm

torch.set_default_dtype(torch.float64)


def _psd(rng: np.random.Generator, n: int, rank: int | None = None) -> np.ndarray:
    A = rng.standard_normal((n, rank or n))
    return A @ A.T / n


class Quartic(Cost):
    """A user-written cost outside the canonical forms: sum(x^4)/4 + sum(u^2)/2."""

    def __init__(self, n: int, m: int) -> None:
        self.n, self.m = n, m

    def _l(self, x: Any, u: Any) -> Any:
        return 0.25 * (x**4).sum(-1) + 0.5 * (u**2).sum(-1)

    def _l_T(self, x: Any) -> Any:  # noqa: N802
        return 0.25 * (x**4).sum(-1)

    def _quadratize(self, x: Any, u: Any) -> Any:
        batch = x.shape[:-1]
        lxx = np.zeros((*batch, self.n, self.n))
        idx = np.arange(self.n)
        lxx[..., idx, idx] = 3 * x**2
        luu = np.broadcast_to(np.eye(self.m), (*batch, self.m, self.m)).copy()
        return self._l(x, u), x**3, u.copy(), lxx, np.zeros((*batch, self.m, self.n)), luu

    def _quadratize_terminal(self, x: Any) -> Any:
        lxx = np.zeros((*x.shape[:-1], self.n, self.n))
        idx = np.arange(self.n)
        lxx[..., idx, idx] = 3 * x**2
        return self._l_T(x), x**3, lxx

    def _casadi(self, x: Any, u: Any) -> Any:
        return 0.25 * ca.sum1(x**4) + 0.5 * ca.sumsqr(u)

    def _casadi_terminal(self, x: Any) -> Any:
        return 0.25 * ca.sum1(x**4)


def _costs() -> dict[str, Cost]:
    rng = np.random.default_rng(0)
    quad = QuadraticCost(
        _psd(rng, 4),
        _psd(rng, 1) + 0.1,
        x_target=rng.standard_normal(4),
        u_target=[0.3],
        Qf=_psd(rng, 4, rank=2),
    )
    sat_linear = SaturatingCost(
        rng.standard_normal((3, 4)),
        rng.standard_normal(3),
        target=rng.standard_normal(3),
        width=1.5,
        W=_psd(rng, 3) + 0.1 * np.eye(3),
        R=[[0.2]],
    )
    pole = SaturatingCost.pole_tip(CartPole(), R=[[0.01]])
    pend = SaturatingCost.pendulum_tip(Pendulum(), R=[[0.1]])
    arm = SaturatingCost.end_effector(PlanarArm(), [-0.2, 0.45], 0.1, R=0.05 * np.eye(2))
    dpend = SaturatingCost.end_effector(DoublePendulum(), [0.0, 1.0], 0.5)
    general = SaturatingCost(  # two angle combinations with offsets
        rng.standard_normal((2, 4 + 4)),
        target=[0.5, -0.5],
        width=0.8,
        L=[[1.0, 0.0, 0.0, 0.0], [0.5, -1.0, 0.0, 0.2]],
        offset=[0.3, -1.0],
        m=1,
    )
    return {
        "quadratic": quad,
        "saturating_linear": sat_linear,
        "pole_tip": pole,
        "pendulum_tip": pend,
        "arm_end_effector": arm,
        "double_pendulum_tip": dpend,
        "saturating_general": general,
        "sum": quad + pole + sat_linear,
        "scaled": 2.5 * pole,
        "nested": 0.5 * (quad + general) + (-0.3) * pole,
        "custom_sum": Quartic(4, 1) + 3.0 * quad,
        "custom_scaled": Quartic(4, 1) * 0.7,
    }


COSTS = _costs()


def _points(cost: Cost, T: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, cost.n)), rng.standard_normal((T, cost.m))


def _fd_grad(f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, h: float) -> np.ndarray:
    """Central differences of a batched map ``(T, d) -> (T, ...)`` along each coordinate."""
    cols = []
    for i in range(z.shape[-1]):
        e = np.zeros(z.shape[-1])
        e[i] = h
        cols.append((f(z + e) - f(z - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7 * scale)


# ---------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", list(COSTS))
def test_quadratize_matches_finite_differences(name: str) -> None:
    cost = COSTS[name]
    X, U = _points(cost, T=7)
    q = cost.quadratize(X, U)
    T, n, m = 7, cost.n, cost.m
    assert (q.l.shape, q.lx.shape, q.lu.shape) == ((T,), (T, n), (T, m))
    assert (q.lxx.shape, q.lux.shape, q.luu.shape) == ((T, n, n), (T, m, n), (T, m, m))
    h = 1e-5
    np.testing.assert_allclose(q.l, cost.l(X, U), rtol=1e-14)
    _close(q.lx, _fd_grad(lambda x: cost.l(x, U), X, h))
    _close(q.lu, _fd_grad(lambda u: cost.l(X, u), U, h))
    _close(q.lxx, _fd_grad(lambda x: cost.quadratize(x, U).lx, X, h))
    _close(q.lux, _fd_grad(lambda x: cost.quadratize(x, U).lu, X, h))
    _close(q.luu, _fd_grad(lambda u: cost.quadratize(X, u).lu, U, h))
    # the mixed block the other way round, and symmetry
    _close(np.swapaxes(q.lux, -1, -2), _fd_grad(lambda u: cost.quadratize(X, u).lx, U, h))
    np.testing.assert_allclose(q.lxx, np.swapaxes(q.lxx, -1, -2), atol=1e-12)

    qT = cost.quadratize_terminal(X)
    np.testing.assert_allclose(qT.l, cost.l_T(X), rtol=1e-14)
    _close(qT.lx, _fd_grad(cost.l_T, X, h))
    _close(qT.lxx, _fd_grad(lambda x: cost.quadratize_terminal(x).lx, X, h))
    single = cost.quadratize_terminal(X[0])
    assert single.lx.shape == (n,) and single.lxx.shape == (n, n)


@pytest.mark.parametrize("name", list(COSTS))
def test_total_matches_loop(name: str) -> None:
    cost = COSTS[name]
    rng = np.random.default_rng(2)
    X, U = rng.standard_normal((9, cost.n)), rng.standard_normal((8, cost.m))
    loop = 0.0
    for t in range(8):
        loop += float(cost.l(X[t], U[t]))
    loop += float(cost.l_T(X[8]))
    np.testing.assert_allclose(cost.total(X, U), loop, rtol=1e-13)


@pytest.mark.parametrize("name", list(COSTS))
def test_casadi_matches_numpy(name: str) -> None:
    cost = COSTS[name]
    X, U = _points(cost, T=5, seed=3)
    for kind in (ca.SX, ca.MX):
        x, u = kind.sym("x", cost.n), kind.sym("u", cost.m)
        F = ca.Function("l", [x, u], [cost.casadi(x, u), cost.casadi_terminal(x)])
        for t in range(5):
            l, lT = F(X[t], U[t])
            np.testing.assert_allclose(float(l), cost.l(X[t], U[t]), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(float(lT), cost.l_T(X[t]), rtol=1e-12, atol=1e-14)
    # CasADi's own automatic derivatives agree with the closed-form Hessians
    x, u = ca.SX.sym("x", cost.n), ca.SX.sym("u", cost.m)
    expr = cost.casadi(x, u)
    H = ca.Function("H", [x, u], [ca.hessian(expr, ca.vertcat(x, u))[0]])
    q = cost.quadratize(X, U)
    for t in range(5):
        Ht = np.asarray(H(X[t], U[t]))
        n = cost.n
        np.testing.assert_allclose(Ht[:n, :n], q.lxx[t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Ht[n:, :n], q.lux[t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Ht[n:, n:], q.luu[t], rtol=1e-10, atol=1e-12)


def test_broadcasting_and_shapes() -> None:
    cost = COSTS["sum"]
    X = np.random.default_rng(4).standard_normal((3, 5, 4))
    assert cost.l(X, [0.5]).shape == (3, 5)
    assert cost.l_T(X[0, 0]).shape == ()
    q = cost.quadratize(X, np.zeros(1))
    assert q.lxx.shape == (3, 5, 4, 4)


# ----------------------------------------------------------- task-space maps
def test_task_points_match_system_kinematics() -> None:
    """The constructors' task maps agree with the systems' own drawable points."""
    rng = np.random.default_rng(5)
    cp = CartPole()
    x = rng.standard_normal((6, 4))
    np.testing.assert_allclose(
        SaturatingCost.pole_tip(cp).task_point(x), cp.points(x)[:, -1], atol=1e-14
    )
    pend = Pendulum()
    x = rng.standard_normal((6, 2))
    np.testing.assert_allclose(
        SaturatingCost.pendulum_tip(pend).task_point(x), pend.points(x)[:, -1], atol=1e-14
    )
    for sys in (PlanarArm(), DoublePendulum()):
        x = rng.standard_normal((6, 4))
        c = SaturatingCost.end_effector(sys, [0.1, 0.2], 0.3)
        np.testing.assert_allclose(c.task_point(x), sys.end_effector(x), atol=1e-14)
    # upright cart-pole at the origin costs nothing; hanging costs 1 - exp(-(2l)^2 / (2 w^2))
    c = SaturatingCost.pole_tip(cp, width=0.25)
    l = cp.params.pole_length
    np.testing.assert_allclose(c.l_T([0.0, np.pi, 0.0, 0.0]), 0.0, atol=1e-15)
    np.testing.assert_allclose(c.l_T([0.0, 0.0, 0.0, 0.0]), 1 - np.exp(-((2 * l) ** 2) / 0.125))


# ------------------------------------------------------------ Gaussian moments
def _mc_cost(f: Callable[[np.ndarray], np.ndarray], mean: np.ndarray, cov: np.ndarray, seed: int):
    """Monte Carlo mean and variance of f(x) with standard errors (1e5 samples)."""
    rng = np.random.default_rng(seed)
    c = f(rng.multivariate_normal(mean, cov, size=100_000))
    N = c.size
    mu, var = c.mean(), c.var()
    se_mu = np.sqrt(var / N)
    se_var = np.sqrt(np.var((c - mu) ** 2) / N)
    return mu, var, se_mu, se_var


def _control_part(cost: Cost, u: np.ndarray) -> float:
    """The control term of a built-in running cost, from its public attributes."""
    if isinstance(cost, SumCost):
        return sum(_control_part(t, u) for t in cost.terms)
    if isinstance(cost, ScaledCost):
        return cost.scale * _control_part(cost.cost, u)
    if isinstance(cost, QuadraticCost):
        du = u - cost.u_target
        return 0.5 * du @ cost.R @ du
    assert isinstance(cost, SaturatingCost)
    return 0.5 * u @ cost.R @ u


def _gaussian(n: int, seed: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return 0.5 * rng.standard_normal(n), scale * (_psd(rng, n) + 0.05 * np.eye(n))


def test_quadratic_moments_closed_form_and_monte_carlo() -> None:
    cost = COSTS["quadratic"]
    assert isinstance(cost, QuadraticCost)
    mean, cov = _gaussian(4, 6, 0.5)
    for terminal, W in ((False, cost.Q), (True, cost.Qf)):
        E, V = (cost.expected_terminal if terminal else cost.expected)(mean, cov)
        d = mean - cost.x_target
        WS = W @ cov
        np.testing.assert_allclose(E.item(), 0.5 * (d @ W @ d + np.trace(WS)), rtol=1e-12)
        np.testing.assert_allclose(V.item(), 0.5 * np.trace(WS @ WS) + d @ WS @ W @ d, rtol=1e-12)

        def c(x: np.ndarray, W: np.ndarray = W) -> np.ndarray:
            dx = x - cost.x_target
            return 0.5 * np.einsum("...i,ij,...j->...", dx, W, dx)

        mu, var, se_mu, se_var = _mc_cost(c, mean, cov, seed=7)
        assert abs(E.item() - mu) < 4 * se_mu
        assert abs(V.item() - var) < 4 * se_var
    # terminal values are what l_T computes: the state part of l excludes the control term
    np.testing.assert_allclose(cost.expected_terminal(mean, 0 * cov).expectation, cost.l_T(mean))


def _saturating_z_space(
    cost: SaturatingCost, mean: np.ndarray, cov: np.ndarray
) -> tuple[float, float]:
    """Deisenroth's formulas in task space z = C x + d (no angles), numpy with explicit solves."""
    mz = cost.C @ mean + cost.d - cost.target
    Sz = cost.C @ cov @ cost.C.T
    p = mz.size
    out = []
    for factor in (1.0, 2.0):
        Wt = factor * cost.W / cost.width**2
        A = np.eye(p) + Sz @ Wt
        out.append(np.exp(-0.5 * mz @ Wt @ np.linalg.solve(A, mz)) / np.sqrt(np.linalg.det(A)))
    E1, E2 = out
    return 1 - E1, E2 - E1**2


@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_saturating_moments_exact_without_angles(scale: float) -> None:
    cost = COSTS["saturating_linear"]
    assert isinstance(cost, SaturatingCost)
    mean, cov = _gaussian(4, 8, scale)
    E, V = cost.expected(mean, cov)
    E_ref, V_ref = _saturating_z_space(cost, mean, cov)
    np.testing.assert_allclose(E.item(), E_ref, rtol=1e-12)
    np.testing.assert_allclose(V.item(), V_ref, rtol=1e-10)
    c = lambda x: cost.l_T(x)  # noqa: E731 - the state cost
    mu, var, se_mu, se_var = _mc_cost(c, mean, cov, seed=9)
    assert abs(E.item() - mu) < 4 * se_mu
    assert abs(V.item() - var) < 4 * se_var


@pytest.mark.parametrize("name", ["sum_linear", "scaled_linear"])
def test_combined_moments_monte_carlo(name: str) -> None:
    """Sums need the cross-covariances of their terms; scalings scale the variance by s^2."""
    quad, sat = COSTS["quadratic"], COSTS["saturating_linear"]
    cost = quad + 3.0 * sat if name == "sum_linear" else -2.0 * sat
    mean, cov = _gaussian(4, 10, 0.4)
    E, V = cost.expected_terminal(mean, cov)  # l_T is exactly the state cost
    mu, var, se_mu, se_var = _mc_cost(cost.l_T, mean, cov, seed=11)
    assert abs(E.item() - mu) < 4 * se_mu
    assert abs(V.item() - var) < 4 * se_var


@pytest.mark.parametrize("name", ["pole_tip", "saturating_general", "nested", "arm_end_effector"])
def test_trig_moments_are_moment_matched_exact_formula(name: str) -> None:
    """With angles, expected() is the exact formula applied to the moment-matched features."""
    cost = COSTS[name]
    mean, cov = _gaussian(cost.n, 12, 0.2)
    E, V = cost.expected(mean, cov)
    # deterministic limit: exact
    E0, V0 = cost.expected(mean, np.zeros((cost.n, cost.n)))
    u = np.full(cost.m, 0.7)
    np.testing.assert_allclose(E0.item(), cost.l(mean, u) - _control_part(cost, u), rtol=1e-12)
    np.testing.assert_allclose(V0.item(), 0.0, atol=1e-14)
    if name != "pole_tip":
        return
    # pole_tip: rebuild it as a no-angle saturating cost on phi and feed it trig_moments
    assert isinstance(cost, SaturatingCost)
    m_phi, S_phi = trig_moments(mean, cov, cost.L, cost.offset)
    on_phi = SaturatingCost(cost.C, cost.d, target=cost.target, width=cost.width, W=cost.W, m=1)
    E_ref, V_ref = on_phi.expected(m_phi, S_phi)
    np.testing.assert_allclose(E.item(), E_ref.item(), rtol=1e-12)
    np.testing.assert_allclose(V.item(), V_ref.item(), rtol=1e-10)


def test_sum_of_equal_terms_matches_scaling() -> None:
    """Var[c + c] = 4 Var[c]: exercises the cross-covariance of two terms sharing angles."""
    for name in ("pole_tip", "saturating_general", "quadratic"):
        c = COSTS[name]
        mean, cov = _gaussian(c.n, 13, 0.3)
        E1, V1 = (c + c).expected(mean, cov)
        E2, V2 = (2 * c).expected(mean, cov)
        np.testing.assert_allclose(E1.item(), E2.item(), rtol=1e-12)
        np.testing.assert_allclose(V1.item(), V2.item(), rtol=1e-9)


def test_expectations_add_over_merged_terms() -> None:
    """E is linear: merging terms with different angle maps must keep each term's marginal."""
    quad, general, pole = COSTS["quadratic"], COSTS["saturating_general"], COSTS["pole_tip"]
    mean, cov = _gaussian(4, 16, 0.3)
    for fn in ("expected", "expected_terminal"):
        E = getattr(COSTS["nested"], fn)(mean, cov).expectation.item()
        parts = [getattr(c, fn)(mean, cov).expectation.item() for c in (quad, general, pole)]
        np.testing.assert_allclose(E, 0.5 * parts[0] + 0.5 * parts[1] - 0.3 * parts[2], rtol=1e-12)


def test_expected_batched_equals_loop() -> None:
    cost = COSTS["nested"]
    rng = np.random.default_rng(14)
    means = rng.standard_normal((5, 4))
    covs = np.stack([_gaussian(4, s, 0.3)[1] for s in range(5)])
    E, V = cost.expected(means, covs)
    assert E.shape == (5,) and V.shape == (5,)
    for t in range(5):
        Et, Vt = cost.expected(means[t], covs[t])
        np.testing.assert_allclose(E[t].item(), Et.item(), rtol=1e-13)
        np.testing.assert_allclose(V[t].item(), Vt.item(), rtol=1e-12)


@pytest.mark.parametrize(
    "name, terminal",
    [
        ("quadratic", False),
        ("quadratic", True),
        ("saturating_linear", False),
        ("pole_tip", False),
        ("nested", False),
        ("nested", True),
    ],
)
def test_expected_gradcheck(name: str, terminal: bool) -> None:
    """Saturating costs have the same running and terminal state part; check each form once."""
    cost = COSTS[name]
    fn = cost.expected_terminal if terminal else cost.expected
    mean, cov = _gaussian(cost.n, 15, 0.3)
    m = torch.tensor(mean, requires_grad=True)
    A = torch.tensor(cov, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, A: tuple(fn(m, 0.5 * (A + A.mT))), (m, A))


def test_custom_cost_moments() -> None:
    with pytest.raises(NotImplementedError, match="cross-covariances"):
        COSTS["custom_sum"].expected(np.zeros(4), np.eye(4))
    with pytest.raises(NotImplementedError, match="Quartic"):
        COSTS["custom_scaled"].expected(np.zeros(4), np.eye(4))


# ------------------------------------------------------------------ algebra
def test_algebra() -> None:
    q, p = COSTS["quadratic"], COSTS["pole_tip"]
    s = sum([q, p, p])
    assert isinstance(s, SumCost) and len(s.terms) == 3
    x, u = np.ones(4), np.ones(1)
    np.testing.assert_allclose(s.l(x, u), q.l(x, u) + 2 * p.l(x, u), rtol=1e-14)
    sc = 2.0 * (3.0 * p)
    assert isinstance(sc, ScaledCost) and sc.scale == 6.0
    with pytest.raises(ValueError, match=r"\(n, m\)"):
        q + SaturatingCost.pendulum_tip(Pendulum())
    with pytest.raises(TypeError):
        q + 1.0  # type: ignore[operator]
    with pytest.raises(TypeError):
        q * np.ones(2)  # type: ignore[operator]
    with pytest.raises(ValueError, match="scale"):
        ScaledCost(q, float("nan"))


# --------------------------------------------------------------- validation
def test_validation_names_the_argument() -> None:
    I4, I1 = np.eye(4), np.eye(1)
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: QuadraticCost(np.ones(4), I1), "Q must be a square"),
        (lambda: QuadraticCost(I4, np.ones((1, 2))), "R must be a square"),
        (lambda: QuadraticCost(np.diag([1.0, -1.0, 1.0, 1.0]), I1), "Q must be positive semi"),
        (lambda: QuadraticCost(np.full((4, 4), np.nan), I1), "Q contains NaN"),
        (lambda: QuadraticCost(I4, I1, x_target=np.zeros(3)), r"x_target must have shape \(4,\)"),
        (lambda: QuadraticCost(I4, I1, u_target=[np.inf]), "u_target contains inf"),
        (
            lambda: QuadraticCost(I4, I1, Qf=np.eye(3)),
            r"Qf must be a square matrix of shape \(4, 4\)",
        ),
        (lambda: SaturatingCost(np.ones((2, 3)), width=-1.0, m=1), "width must be a positive"),
        (
            lambda: SaturatingCost(np.ones((2, 3)), m=1, L=np.ones((1, 2))),
            "C must have n \\+ 2k = 4",
        ),
        (lambda: SaturatingCost(np.ones((2, 3)), m=1, W=-np.eye(2)), "W must be positive semi"),
        (lambda: SaturatingCost(np.ones((2, 3))), "control dimension m"),
        (
            lambda: SaturatingCost(np.ones((2, 3)), m=1, target=[1.0]),
            r"target must have shape \(2,\)",
        ),
        (lambda: SaturatingCost(np.ones(3), m=1), "C must be a matrix"),
        (
            lambda: SaturatingCost.end_effector(PlanarArm(), [1.0], 0.1),
            r"target must have shape \(2,\)",
        ),
        (lambda: COSTS["quadratic"].l(np.ones(3), np.ones(1)), r"x must have shape \(\.\.\., 4\)"),
        (lambda: COSTS["quadratic"].l(np.ones(4), np.ones(2)), r"u must have shape \(\.\.\., 1\)"),
        (lambda: COSTS["quadratic"].l(np.ones((3, 4)), np.ones((2, 1))), "do not broadcast"),
        (lambda: COSTS["quadratic"].l_T([np.nan] * 4), "x contains NaN"),
        (lambda: COSTS["quadratic"].total(np.ones((5, 4)), np.ones((5, 1))), r"U must have shape"),
        (lambda: COSTS["quadratic"].quadratize(np.ones((5, 3)), np.ones((5, 1))), "X must have"),
        (lambda: COSTS["pole_tip"].expected(np.zeros(4), -I4), "cov must be positive semi"),
        (
            lambda: COSTS["pole_tip"].expected(np.zeros(3), I4),
            r"mean must have shape \(\.\.\., 4\)",
        ),
        (lambda: COSTS["pole_tip"].casadi(ca.SX.sym("x", 3), ca.SX.sym("u")), "x_sym"),
    ]
    for fn, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fn()
    with pytest.raises(TypeError, match="CartPole"):
        SaturatingCost.pole_tip(Pendulum())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x_sym"):
        COSTS["pole_tip"].casadi("x", ca.SX.sym("u"))


# ------------------------------------------------------------ hypothesis fuzz
_floats = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([np.nan, np.inf, -np.inf]))
_arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), elements=_floats
)

_ENTRY_POINTS: dict[str, Callable[[np.ndarray], object]] = {
    "QuadraticCost.Q": lambda a: QuadraticCost(a, np.eye(1)),
    "QuadraticCost.R": lambda a: QuadraticCost(np.eye(2), a),
    "QuadraticCost.x_target": lambda a: QuadraticCost(np.eye(2), np.eye(1), x_target=a),
    "SaturatingCost.C": lambda a: SaturatingCost(a, m=1),
    "SaturatingCost.W": lambda a: SaturatingCost(np.ones((2, 3)), W=a, m=1),
    "SaturatingCost.L": lambda a: SaturatingCost(np.ones((2, 6)), L=a, m=1),
    "SaturatingCost.width": lambda a: SaturatingCost(np.ones((2, 3)), width=a, m=1),
    "end_effector.target": lambda a: SaturatingCost.end_effector(PlanarArm(), a, 0.1),
    "l.x": lambda a: COSTS["nested"].l(a, np.zeros(1)),
    "l.u": lambda a: COSTS["nested"].l(np.zeros(4), a),
    "l_T": lambda a: COSTS["nested"].l_T(a),
    "total.X": lambda a: COSTS["nested"].total(a, np.zeros((3, 1))),
    "quadratize.U": lambda a: COSTS["nested"].quadratize(np.zeros((3, 4)), a),
    "quadratize_terminal": lambda a: COSTS["nested"].quadratize_terminal(a),
    "expected.mean": lambda a: COSTS["nested"].expected(a, np.eye(4)),
    "expected.cov": lambda a: COSTS["nested"].expected(np.zeros(4), a),
    "expected_terminal.cov": lambda a: COSTS["quadratic"].expected_terminal(np.zeros(4), a),
    "casadi.x": lambda a: COSTS["pole_tip"].casadi(a, np.zeros(1)),
    "trig_moments.cov": lambda a: trig_moments(np.zeros(2), a),
    "trig_moments.L": lambda a: trig_moments(np.zeros(2), np.eye(2), a),
    "trig_moments.mean": lambda a: trig_moments(a, np.eye(2)),
    "check_covariance": lambda a: check_covariance("cov", a),
    "safe_cholesky": lambda a: safe_cholesky(a),
    "expected_exp_quadratic.P": lambda a: expected_exp_quadratic(np.zeros(2), np.eye(2), a, [0.0]),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=st.sampled_from(sorted(_ENTRY_POINTS)), a=_arrays)
def test_malformed_inputs_raise_only_value_or_type_errors(entry: str, a: np.ndarray) -> None:
    try:
        _ENTRY_POINTS[entry](a)
    except (ValueError, TypeError):
        pass
