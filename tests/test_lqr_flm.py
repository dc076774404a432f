"""KL-constrained LQG (LQR-FLM): limits, dual monotonicity, eta search, Monte Carlo forward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpcontrol.costs import QuadraticCost
from gpcontrol.models.tvlg import TVLGDynamics
from gpcontrol.policies import LinearGaussianPolicy, expected_kl
from gpcontrol.solvers.lqr_flm import (
    LQRFLMOptions,
    QuadraticTrajectoryCost,
    adapt_step_size,
    forward_marginals,
    kl_regularized_lqr,
    lqr_flm,
)

T, N_STATE, N_CONTROL = 15, 4, 2


def _problem(
    seed: int, T: int = T, n: int = N_STATE, m: int = N_CONTROL
) -> tuple[TVLGDynamics, QuadraticTrajectoryCost, LinearGaussianPolicy]:
    """Random time-varying dynamics, a convex cost with cross and linear terms, an old policy."""
    rng = np.random.default_rng(seed)
    A = np.eye(n) + 0.1 * rng.standard_normal((T, n, n))
    B = 0.5 * rng.standard_normal((T, n, m))
    W = rng.standard_normal((T, n, n))
    dyn = TVLGDynamics(
        np.concatenate([A, B], axis=-1),
        0.1 * rng.standard_normal((T, n)),
        0.01 * (W @ np.swapaxes(W, 1, 2) / n + 0.1 * np.eye(n)),
    )
    Z = rng.standard_normal((T, n + m, n + m))
    C = Z @ np.swapaxes(Z, 1, 2) / (n + m) + 0.1 * np.eye(n + m)
    WT = rng.standard_normal((n, n))
    cost = QuadraticTrajectoryCost(
        C,
        rng.standard_normal((T, n + m)),
        rng.standard_normal(T),
        WT @ WT.T / n + np.eye(n),
        rng.standard_normal(n),
        0.3,
        n,
    )
    V = rng.standard_normal((T, m, m))
    old = LinearGaussianPolicy(
        0.3 * rng.standard_normal((T, m, n)),
        rng.standard_normal((T, m)),
        V @ np.swapaxes(V, 1, 2) / m + 0.3 * np.eye(m),
    )
    return dyn, cost, old


def _lqr_reference(
    dyn: TVLGDynamics, cost: QuadraticTrajectoryCost
) -> tuple[np.ndarray, np.ndarray]:
    """Textbook finite-horizon LQR with affine dynamics and linear cost terms, step by step."""
    n = dyn.n
    V, v = cost.C_T.copy(), cost.c_T.copy()
    K = np.empty((dyn.T, dyn.m, n))
    k = np.empty((dyn.T, dyn.m))
    for t in range(dyn.T - 1, -1, -1):
        A, B, c = dyn.A[t], dyn.B[t], dyn.f[t]
        C, g = cost.C[t], cost.c[t]
        Qxx = C[:n, :n] + A.T @ V @ A
        Quu = C[n:, n:] + B.T @ V @ B
        Qux = C[n:, :n] + B.T @ V @ A
        w = V @ c + v
        qx = g[:n] + A.T @ w
        qu = g[n:] + B.T @ w
        K[t] = -np.linalg.solve(Quu, Qux)
        k[t] = -np.linalg.solve(Quu, qu)
        V = Qxx + Qux.T @ K[t]
        V = 0.5 * (V + V.T)
        v = qx + Qux.T @ k[t]
    return K, k


X0_MEAN = np.array([0.5, -0.3, 0.2, 0.1])
X0_COV = 0.05 * np.eye(N_STATE)


def _kl(dyn: TVLGDynamics, new: LinearGaussianPolicy, old: LinearGaussianPolicy) -> float:
    marg = forward_marginals(dyn, new, X0_MEAN, X0_COV)
    return float(expected_kl(new, old, marg.x_mean[:-1], marg.x_cov[:-1]).sum())


# ---------------------------------------------------------------------------- limits
@pytest.mark.parametrize("seed", [0, 1])
def test_small_eta_gives_finite_horizon_lqr(seed: int) -> None:
    dyn, cost, old = _problem(seed)
    K_ref, k_ref = _lqr_reference(dyn, cost)
    res = kl_regularized_lqr(dyn, cost, old, 1e-11)
    assert res.policy is not None
    assert np.abs(res.policy.K - K_ref).max() < 1e-8
    assert np.abs(res.policy.k - k_ref).max() < 1e-8
    # Max-entropy covariance eta Q_uu^-1 vanishes with eta.
    assert np.abs(res.policy.cov).max() < 1e-9


def test_large_eta_returns_the_old_controller() -> None:
    dyn, cost, old = _problem(2)
    res = kl_regularized_lqr(dyn, cost, old, 1e11)
    assert res.policy is not None
    for name in ("K", "k", "cov"):
        new_v, old_v = getattr(res.policy, name), getattr(old, name)
        assert np.abs(new_v - old_v).max() < 1e-8 * max(1.0, np.abs(old_v).max())
    assert _kl(dyn, res.policy, old) < 1e-15


def test_kl_is_monotone_in_eta_and_spans_all_scales() -> None:
    dyn, cost, old = _problem(3)
    etas = np.logspace(-4, 6, 41)
    kls = []
    for eta in etas:
        pol = kl_regularized_lqr(dyn, cost, old, eta).policy
        assert pol is not None
        kls.append(_kl(dyn, pol, old))
    kl = np.array(kls)
    assert (np.diff(kl) <= 1e-10 * kl[:-1]).all()  # non-increasing (dual concavity)
    assert kl[0] > 1e2 and kl[-1] < 1e-5


def test_lagrangian_is_minimised_over_linear_gaussian_controllers() -> None:
    """At fixed eta the controller minimises E[J] + eta * KL; random perturbations of
    (K, k, C) in either direction can only increase it (no first-order descent direction)."""
    dyn, cost, old = _problem(4)
    eta = 3.0
    pol = kl_regularized_lqr(dyn, cost, old, eta).policy
    assert pol is not None

    def lagrangian(p: LinearGaussianPolicy) -> float:
        marg = forward_marginals(dyn, p, X0_MEAN, X0_COV)
        kl = expected_kl(p, old, marg.x_mean[:-1], marg.x_cov[:-1]).sum()
        return cost.expected(marg) + eta * float(kl)

    base = lagrangian(pol)
    rng = np.random.default_rng(5)
    h = 1e-3
    for _ in range(10):
        dK = rng.standard_normal(pol.K.shape)
        dk = rng.standard_normal(pol.k.shape)
        G = rng.standard_normal(pol.cov.shape)
        dC = G + np.swapaxes(G, 1, 2)
        for sign in (1.0, -1.0):
            s = sign * h
            cand = LinearGaussianPolicy(pol.K + s * dK, pol.k + s * dk, pol.cov + s * 0.1 * dC)
            assert lagrangian(cand) > base
    # A wrong covariance scale (e.g. forgetting the factor eta) is clearly worse.
    wrong = LinearGaussianPolicy(pol.K, pol.k, pol.cov / eta)
    assert lagrangian(wrong) > base + 1e-3


# ---------------------------------------------------------------------------- eta search
@pytest.mark.parametrize("epsilon", [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0])
def test_eta_search_meets_the_kl_bound(epsilon: float) -> None:
    dyn, cost, old = _problem(6)
    res = lqr_flm(dyn, cost, old, X0_MEAN, X0_COV, epsilon=epsilon)
    assert res.status == "converged", res.message
    assert res.converged and res.policy is not None
    assert abs(res.kl - epsilon) < 0.1 * epsilon
    # The reported KL and cost are those of the returned controller.
    assert abs(_kl(dyn, res.policy, old) - res.kl) <= 1e-12 * max(1.0, res.kl)
    marg = forward_marginals(dyn, res.policy, X0_MEAN, X0_COV)
    assert abs(cost.expected(marg) - res.expected_cost) < 1e-9 * max(1.0, abs(res.expected_cost))
    assert (np.linalg.eigvalsh(res.policy.cov) > 0).all()
    assert res.iterations <= 40
    # A larger trust region never gives a worse expected cost.
    if epsilon < 100.0:
        wider = lqr_flm(dyn, cost, old, X0_MEAN, X0_COV, epsilon=10 * epsilon)
        assert wider.expected_cost <= res.expected_cost + 1e-9


def test_eta_search_statuses() -> None:
    dyn, cost, old = _problem(7)
    huge = lqr_flm(
        dyn, cost, old, X0_MEAN, X0_COV, epsilon=1e6, options=LQRFLMOptions(eta_min=1e-2)
    )
    assert huge.status == "constraint_inactive" and huge.converged
    assert huge.eta == 1e-2 and huge.kl < 1e6
    tiny = lqr_flm(
        dyn, cost, old, X0_MEAN, X0_COV, epsilon=1e-12, options=LQRFLMOptions(eta_max=10.0)
    )
    assert tiny.status == "eta_max_reached" and not tiny.converged
    assert tiny.policy is not None and tiny.eta == 10.0 and tiny.kl > 1e-12
    few = lqr_flm(
        dyn, cost, old, X0_MEAN, X0_COV, epsilon=0.5, options=LQRFLMOptions(max_iterations=1)
    )
    assert few.status == "max_iterations" and not few.converged
    assert few.policy is not None and few.kl < 0.5  # the feasible end of the bracket
    warm = lqr_flm(
        dyn, cost, old, X0_MEAN, X0_COV, epsilon=0.5, options=LQRFLMOptions(eta_init=1.0)
    )
    cold = lqr_flm(dyn, cost, old, X0_MEAN, X0_COV, epsilon=0.5)
    assert warm.converged and abs(warm.kl - 0.5) < 0.05 and abs(cold.kl - 0.5) < 0.05


def test_non_convex_cost_recovers_with_larger_eta_or_reports_not_pd() -> None:
    dyn, cost, old = _problem(8)
    C = np.array(cost.C)
    C[:, N_STATE:, N_STATE:] -= 4.0 * np.eye(N_CONTROL)  # concave in u at every step
    bad = QuadraticTrajectoryCost(C, cost.c, cost.c0, cost.C_T, cost.c_T, cost.c0_T, N_STATE)
    small = kl_regularized_lqr(dyn, bad, old, 1e-3)
    assert small.policy is None and small.failed_at >= 0
    # The search moves eta up into the PD region and still meets the bound.
    res = lqr_flm(dyn, bad, old, X0_MEAN, X0_COV, epsilon=0.1)
    assert res.status == "converged" and abs(res.kl - 0.1) < 0.01
    assert any(math.isinf(kl) for _, kl in res.history)  # it did meet non-PD etas
    # With the range capped below the PD region: a status, no NaN controller.
    capped = lqr_flm(
        dyn, bad, old, X0_MEAN, X0_COV, epsilon=0.1, options=LQRFLMOptions(eta_max=1e-2)
    )
    assert capped.status == "not_pd" and capped.policy is None and not capped.converged
    assert "not positive definite" in capped.message


# ---------------------------------------------------------------------------- forward pass
def test_forward_pass_matches_monte_carlo() -> None:
    dyn, cost, pol = _problem(9, T=10)
    M = 10_000
    rng = np.random.default_rng(10)
    x = rng.multivariate_normal(X0_MEAN, X0_COV, size=M)
    xs, us = [x], []
    for t in range(dyn.T):
        u = pol.sample(x, t, rng)
        x = dyn.sample_at(t, x, u, rng)
        us.append(u)
        xs.append(x)
    X, U = np.stack(xs, axis=1), np.stack(us, axis=1)  # (M, T+1, n), (M, T, m)
    marg = forward_marginals(dyn, pol, X0_MEAN, X0_COV)

    def check_moments(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
        se_mean = np.sqrt(np.diag(cov) / M)
        assert (np.abs(samples.mean(0) - mean) < 4 * se_mean).all()
        d = np.sqrt(np.diag(cov))
        se_cov = np.sqrt((np.outer(d, d) ** 2 + cov**2) / M)
        assert (np.abs(np.cov(samples.T) - cov) < 4 * se_cov).all()

    for t in range(1, dyn.T + 1):
        check_moments(X[:, t], marg.x_mean[t], marg.x_cov[t])
    for t in range(dyn.T):
        Z = np.concatenate([X[:, t], U[:, t]], axis=1)
        check_moments(Z, marg.z_mean[t], marg.z_cov[t])
    # Expected model cost against the sample mean of the model cost.
    J = cost.value(X, U)
    assert abs(J.mean() - cost.expected(marg)) < 4 * J.std() / np.sqrt(M)


def test_cost_model_from_a_quadratic_cost_is_exact() -> None:
    rng = np.random.default_rng(11)
    n, m, Tn = 3, 2, 5
    W = rng.standard_normal((n, n))
    qc = QuadraticCost(
        W @ W.T,
        np.diag([0.5, 2.0]),
        x_target=[1.0, -1.0, 0.5],
        u_target=[0.2, 0.0],
        Qf=3 * np.eye(n),
    )
    X, U = rng.standard_normal((4, Tn + 1, n)), rng.standard_normal((4, Tn, m))
    model = QuadraticTrajectoryCost.from_cost(qc, X, U)  # expanded around four trajectories
    Xe, Ue = rng.standard_normal((7, Tn + 1, n)), rng.standard_normal((7, Tn, m))
    want = np.array([qc.total(Xe[i], Ue[i]) for i in range(7)])
    np.testing.assert_allclose(model.value(Xe, Ue), want, rtol=1e-12)
    single = QuadraticTrajectoryCost.from_cost(qc, X[0], U[0])
    np.testing.assert_allclose(single.C, model.C, atol=1e-12)


# ---------------------------------------------------------------------------- step size
def test_step_size_maximises_the_quadratic_improvement_model() -> None:
    a, b, e0 = 3.0, 2.0, 0.4  # true improvement I(e) = a e - b e^2, maximum at a / 2b = 0.75
    pred, act = a * e0, a * e0 - b * e0**2  # a first-order model predicts a e0
    assert adapt_step_size(e0, pred, act) == pytest.approx(a / (2 * b), rel=1e-12)
    assert adapt_step_size(e0, pred, pred + 1.0) == pytest.approx(5 * e0)  # better than predicted
    assert adapt_step_size(e0, -1.0, -2.0) == pytest.approx(0.1 * e0)  # no improvement predicted
    assert adapt_step_size(e0, 1.0, -100.0) == pytest.approx(0.1 * e0)  # far worse: clipped
    assert adapt_step_size(e0, pred, act, epsilon_max=0.5) == 0.5
    with pytest.raises(ValueError, match="NaN"):
        adapt_step_size(e0, math.nan, 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        adapt_step_size(0.0, 1.0, 0.5)


def test_validation() -> None:
    dyn, cost, old = _problem(12)
    with pytest.raises(ValueError, match="epsilon"):
        lqr_flm(dyn, cost, old, X0_MEAN, X0_COV, epsilon=0.0)
    with pytest.raises(ValueError, match="x0_mean"):
        lqr_flm(dyn, cost, old, X0_MEAN[:3], X0_COV, epsilon=1.0)
    with pytest.raises(ValueError, match="x0_cov"):
        lqr_flm(dyn, cost, old, X0_MEAN, -X0_COV, epsilon=1.0)
    short, _, _ = _problem(12, T=T - 1)
    with pytest.raises(ValueError, match="policy has"):
        lqr_flm(short, cost, old, X0_MEAN, X0_COV, epsilon=1.0)
    with pytest.raises(TypeError, match="QuadraticTrajectoryCost"):
        lqr_flm(dyn, object(), old, X0_MEAN, X0_COV, epsilon=1.0)  # type: ignore[arg-type]
    c = np.array(cost.c)
    c[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        QuadraticTrajectoryCost(cost.C, c, cost.c0, cost.C_T, cost.c_T, cost.c0_T, N_STATE)
    with pytest.raises(ValueError, match="eta_min must be < eta_max"):
        LQRFLMOptions(eta_min=10.0, eta_max=1.0)
    with pytest.raises(ValueError, match="eta"):
        kl_regularized_lqr(dyn, cost, old, -1.0)
