"""TVLG dynamics fit and its Gaussian-mixture prior, against known linear-Gaussian systems."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gpcontrol.models.gmm import GaussianMixture, fit_gmm
from gpcontrol.models.tvlg import DynamicsPrior, TVLGDynamics, fit_tvlg, transition_tuples
from gpcontrol.solvers.dynamics import Dynamics, linearize_affine, simulate

N_STATE, N_CONTROL, HORIZON = 4, 2, 30


def _lti(seed: int, n: int = N_STATE, m: int = N_CONTROL) -> tuple[np.ndarray, np.ndarray]:
    """A random LTI system ``F = [A B]`` with spectral radius 0.98, and an offset ``f``."""
    rng = np.random.default_rng(seed)
    A = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    A *= 0.98 / np.abs(np.linalg.eigvals(A)).max()
    B = 0.5 * rng.standard_normal((n, m))
    return np.hstack([A, B]), 0.1 * rng.standard_normal(n)


def _simulate(
    F: np.ndarray, f: np.ndarray, noise: np.ndarray, N: int, seed: int, T: int = HORIZON
) -> tuple[np.ndarray, np.ndarray]:
    """``N`` trajectories of ``x' = F [x; u] + f + w``, ``w ~ N(0, noise)``, random controls."""
    n = F.shape[0]
    m = F.shape[1] - n
    rng = np.random.default_rng(seed)
    root = np.linalg.cholesky(noise)
    X = np.empty((N, T + 1, n))
    U = rng.standard_normal((N, T, m))
    X[:, 0] = rng.standard_normal((N, n))
    for t in range(T):
        xi = np.concatenate([X[:, t], U[:, t]], axis=1)
        X[:, t + 1] = xi @ F.T + f + rng.standard_normal((N, n)) @ root.T
    return X, U


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


# ---------------------------------------------------------------------------- the fit
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_five_samples_recover_dynamics_where_least_squares_is_singular(seed: int) -> None:
    F, f = _lti(seed)
    noise = 0.01**2 * np.eye(N_STATE)  # state spread is about 1.6
    X, U = _simulate(F, f, noise, N=5, seed=100 + seed)
    n, m = N_STATE, N_CONTROL
    # Plain regression is singular: 5 samples cannot determine n + m + 1 = 7 coefficients.
    design = np.concatenate([X[:, :-1], U, np.ones((5, HORIZON, 1))], axis=-1)
    assert all(np.linalg.matrix_rank(design[:, t]) == 5 < n + m + 1 for t in range(HORIZON))
    with pytest.raises(ValueError, match="too few samples"):
        fit_tvlg(X, U, prior=None)
    # Its minimum-norm solution is far off ...
    min_norm = np.stack(
        [np.linalg.lstsq(design[:, t], X[:, t + 1], rcond=None)[0][:-1].T for t in range(HORIZON)]
    )
    # ... while the prior-regularised fit recovers every F_t within 5 %.
    model = fit_tvlg(X, U, seed=seed)
    err = _rel(model.F, F)
    assert err.max() < 0.05, err.max()
    assert _rel(min_norm, F).mean() > 0.2
    assert (_rel(min_norm, F) > 2 * err).all()
    # The offsets follow: prediction error at the data is at the noise level.
    pred = model.step(np.swapaxes(X[:, :-1], 0, 1), np.swapaxes(U, 0, 1))
    resid = pred - np.swapaxes(X[:, 1:], 0, 1)
    assert np.sqrt((resid**2).mean()) < 3 * 0.01
    lam = np.linalg.eigvalsh(model.Sigma)
    assert (lam > 0).all()


def test_mixture_prior_separates_two_regimes() -> None:
    """Two linear regimes at distinct operating points: BIC keeps two components and each
    step borrows the slopes of its own regime; one Gaussian would average the regimes."""
    F1, _ = _lti(10)
    F2, _ = _lti(20)
    n, m, T, N = N_STATE, N_CONTROL, HORIZON, 5
    rng = np.random.default_rng(0)
    Ft = np.array([F1 if t < T // 2 else F2 for t in range(T)])
    U = rng.standard_normal((N, T, m)) + np.where(np.arange(T) < T // 2, -5.0, 5.0)[:, None]
    X = np.empty((N, T + 1, n))
    X[:, 0] = rng.standard_normal((N, n))
    for t in range(T):
        xi = np.concatenate([X[:, t], U[:, t]], axis=1)
        X[:, t + 1] = xi @ Ft[t].T + 0.01 * rng.standard_normal((N, n))
    assert DynamicsPrior.fit(X, U, seed=0).mixture.n_components == 2
    assert _rel(fit_tvlg(X, U, seed=0).F, Ft).max() < 0.05
    assert np.median(_rel(fit_tvlg(X, U, seed=0, n_components=1).F, Ft)) > 0.3


def test_prior_influence_vanishes_with_many_samples() -> None:
    """With a deliberately wrong prior, the fit approaches least squares as O(1/N)."""
    F, f = _lti(3)
    F_other, f_other = _lti(4)  # the prior is fitted to a different system
    noise = np.diag([0.05, 0.02, 0.03, 0.04]) ** 2
    Xp, Up = _simulate(F_other, f_other, noise, N=20, seed=7)
    prior = DynamicsPrior.fit(Xp, Up, seed=0)
    gaps = []
    for N in (300, 3000):
        X, U = _simulate(F, f, noise, N=N, seed=N)
        ls = fit_tvlg(X, U, prior=None, regularization=0.0)
        reg = fit_tvlg(X, U, prior=prior, regularization=0.0)
        gaps.append(np.abs(reg.F - ls.F).max())
        if N == 3000:
            # Least squares itself converges to the truth within its standard error.
            xi = np.concatenate([X[:, :-1], U], axis=-1)  # (N, T, n+m)
            for t in (0, HORIZON // 2, HORIZON - 1):
                C = np.cov(xi[:, t].T)
                se = np.sqrt(np.outer(np.diag(noise), np.diag(np.linalg.inv(C))) / N)
                assert (np.abs(ls.F[t] - F) < 4.5 * se).all()
                se_sigma = np.sqrt(2.0 / N) * np.diag(noise)
                assert (np.abs(np.diag(ls.Sigma[t]) - np.diag(noise)) < 4.5 * se_sigma).all()
    ratio = gaps[1] / gaps[0]
    assert 0.04 < ratio < 0.25, ratio  # ~ 1/10 for ten times the samples


def test_least_squares_path_equals_regression() -> None:
    """``prior=None`` is least squares with an intercept and the ML residual covariance."""
    F, f = _lti(5)
    X, U = _simulate(F, f, 0.1**2 * np.eye(N_STATE), N=40, seed=1, T=4)
    model = fit_tvlg(X, U, prior=None, regularization=0.0)
    for t in range(4):
        design = np.concatenate([X[:, t], U[:, t], np.ones((40, 1))], axis=1)
        coef = np.linalg.lstsq(design, X[:, t + 1], rcond=None)[0]
        np.testing.assert_allclose(model.F[t], coef[:-1].T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.f[t], coef[-1], rtol=1e-9, atol=1e-12)
        resid = X[:, t + 1] - design @ coef
        np.testing.assert_allclose(model.Sigma[t], resid.T @ resid / 40, rtol=1e-8, atol=1e-14)


def test_fit_is_deterministic_under_a_seed() -> None:
    F, f = _lti(6)
    X, U = _simulate(F, f, 0.02**2 * np.eye(N_STATE), N=5, seed=3)
    np.random.seed(1)  # noqa: NPY002 - the global state must not matter
    a = fit_tvlg(X, U, seed=11)
    np.random.seed(2)  # noqa: NPY002
    b = fit_tvlg(X, U, seed=11)
    c = fit_tvlg(X, U, seed=np.random.default_rng(11))
    for name in ("F", "f", "Sigma"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(getattr(a, name), getattr(c, name))


def test_eight_dimensional_state_with_five_samples() -> None:
    """n = 8, m = 2 (n + m + 1 = 11 > 5). A scaled rotation keeps every state direction excited,
    so every column of F_t is identifiable (a strongly contracting mode would leave its column
    undetermined by any amount of data from late steps)."""
    rng = np.random.default_rng(8)
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    F = np.hstack([0.98 * rotation, 0.5 * rng.standard_normal((8, 2))])
    f = 0.1 * rng.standard_normal(8)
    X, U = _simulate(F, f, 0.01**2 * np.eye(8), N=5, seed=8, T=40)
    model = fit_tvlg(X, U, seed=0)
    assert _rel(model.F, F).max() < 0.05
    assert (np.linalg.eigvalsh(model.Sigma) > 0).all()


# ---------------------------------------------------------------------------- the model
def _model() -> TVLGDynamics:
    rng = np.random.default_rng(0)
    T, n, m = 3, 3, 2
    W = rng.standard_normal((T, n, n))
    return TVLGDynamics(
        rng.standard_normal((T, n, n + m)),
        rng.standard_normal((T, n)),
        W @ np.swapaxes(W, 1, 2) + 0.1 * np.eye(n),
    )


def test_model_implements_the_dynamics_protocol() -> None:
    model = _model()
    assert isinstance(model, Dynamics)
    assert (model.T, model.n, model.m) == (3, 3, 2)
    rng = np.random.default_rng(1)
    X, U = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    A, B, c = linearize_affine(model, X, U)
    np.testing.assert_array_equal(A, model.F[:, :, :3])
    np.testing.assert_array_equal(B, model.F[:, :, 3:])
    np.testing.assert_allclose(c, model.f, atol=1e-12)
    traj = simulate(model, X[0], U)
    for t in range(3):
        np.testing.assert_allclose(
            traj[t + 1], model.F[t] @ np.concatenate([traj[t], U[t]]) + model.f[t], atol=1e-12
        )
    lin = model.as_linear()
    np.testing.assert_allclose(lin.step(X, U), model.step(X, U), atol=1e-12)
    with pytest.raises(ValueError, match="one row per time step"):
        model.step(X[:2], U[:2])
    with pytest.raises(ValueError, match="t must be"):
        model.step_at(3, X[0], U[0])
    with pytest.raises(ValueError):
        model.F[0, 0, 0] = 1.0  # read-only


def test_log_prob_matches_scipy_and_samples_match_moments() -> None:
    model = _model()
    rng = np.random.default_rng(2)
    X, U = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 3, 2))
    lp = model.log_prob(X, U)
    assert lp.shape == (5, 3)
    for i in range(5):
        for t in range(3):
            mean = model.step_at(t, X[i, t], U[i, t])
            ref = multivariate_normal(mean, model.Sigma[t]).logpdf(X[i, t + 1])
            assert abs(lp[i, t] - ref) < 1e-10
    x, u, N = X[0, 1], U[0, 1], 20000
    draws = model.sample_at(1, np.broadcast_to(x, (N, 3)), np.broadcast_to(u, (N, 2)), rng=5)
    mean = model.step_at(1, x, u)
    sd = np.sqrt(np.diag(model.Sigma[1]) / N)
    assert (np.abs(draws.mean(0) - mean) < 4 * sd).all()
    S = model.Sigma[1]
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / N)
    assert (np.abs(np.cov(draws.T) - S) < 4 * se).all()


def test_validation_errors() -> None:
    F, f = _lti(0)
    X, U = _simulate(F, f, 0.01 * np.eye(N_STATE), N=5, seed=0, T=5)
    with pytest.raises(ValueError, match="U must have shape"):
        fit_tvlg(X, U[:, :-1])
    with pytest.raises(ValueError, match="X must have shape"):
        fit_tvlg(X[0], U[0])
    bad = X.copy()
    bad[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_tvlg(bad, U)
    with pytest.raises(ValueError, match="strength"):
        fit_tvlg(X, U, strength=0.0)
    with pytest.raises(ValueError, match="prior must be"):
        fit_tvlg(X, U, prior="wishart")  # type: ignore[arg-type]
    other = DynamicsPrior.fit(X[..., :3], U, seed=0)
    with pytest.raises(ValueError, match="prior is for"):
        fit_tvlg(X, U, prior=other)
    # Noise-free data without a prior: the residual covariance is singular, reported.
    Xc, Uc = _simulate(F, f, 1e-300 * np.eye(N_STATE), N=7, seed=0, T=2)
    with pytest.raises(np.linalg.LinAlgError, match="step t = 0"):
        fit_tvlg(Xc, Uc, prior=None, regularization=0.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        TVLGDynamics(np.zeros((2, 2, 3)), np.zeros((2, 2)), -np.ones((2, 2, 2)) * np.eye(2))
    with pytest.raises(ValueError, match="f must have shape"):
        TVLGDynamics(np.zeros((2, 2, 3)), np.zeros((3, 2)), np.ones((2, 2, 2)) * np.eye(2))


def test_transition_tuples_layout() -> None:
    X = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    U = -np.arange(2 * 2 * 1, dtype=float).reshape(2, 2, 1)
    Z = transition_tuples(X, U)
    assert Z.shape == (2, 2, 5)
    np.testing.assert_array_equal(Z[1, 1], np.concatenate([X[1, 1], U[1, 1], X[1, 2]]))


# ---------------------------------------------------------------------------- the mixture
def _three_blobs(P: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = np.array([0.5, 0.3, 0.2])
    mu = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 2.0], [0.0, 9.0, -3.0]])
    covs = []
    for _ in range(3):
        W = rng.standard_normal((3, 3))
        covs.append(W @ W.T / 3 + 0.2 * np.eye(3))
    S = np.array(covs)
    label = rng.choice(3, size=P, p=w)
    pts = np.stack([rng.multivariate_normal(mu[k], S[k]) for k in label])
    return pts, w, mu, S


def test_em_recovers_separated_mixture_and_increases_likelihood() -> None:
    P = 6000
    pts, w, mu, S = _three_blobs(P, 0)
    gmm = fit_gmm(pts, 3, seed=0, tol=1e-10, max_iterations=300)
    assert gmm.converged
    hist = np.array(gmm.history)
    assert (np.diff(hist) > -1e-10).all()  # EM never decreases the likelihood
    order = [int(np.argmin(((gmm.means - mu[k]) ** 2).sum(1))) for k in range(3)]
    assert sorted(order) == [0, 1, 2]
    for k, j in enumerate(order):
        se_w = np.sqrt(w[k] * (1 - w[k]) / P)
        assert abs(gmm.weights[j] - w[k]) < 4 * se_w
        se_mu = np.sqrt(np.diag(S[k]) / (w[k] * P))
        assert (np.abs(gmm.means[j] - mu[k]) < 4 * se_mu).all()
        se_S = np.sqrt((np.outer(np.diag(S[k]), np.diag(S[k])) + S[k] ** 2) / (w[k] * P))
        assert (np.abs(gmm.covariances[j] - S[k]) < 4 * se_S + 1e-5).all()
    # Average log-likelihood agrees with the reported one and with scikit-learn's optimum.
    assert abs(gmm.log_prob(pts).mean() - gmm.log_likelihood) < 1e-8
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    ref = sklearn_mixture.GaussianMixture(3, reg_covar=1e-9, tol=1e-10, random_state=0).fit(pts)
    assert abs(ref.score(pts) - gmm.log_likelihood) < 1e-4


def test_mixture_densities_and_local_moments() -> None:
    pts, *_ = _three_blobs(600, 1)
    gmm = fit_gmm(pts, 3, seed=1)
    q = pts[:7]
    ref = sum(
        gmm.weights[k] * multivariate_normal(gmm.means[k], gmm.covariances[k]).pdf(q)
        for k in range(3)
    )
    np.testing.assert_allclose(np.exp(gmm.log_prob(q)), ref, rtol=1e-10)
    r = gmm.responsibilities(q)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-12)
    # Moments of the re-weighted mixture against sampling from it.
    rbar = r.mean(0)
    rng = np.random.default_rng(3)
    M = 200000
    comp = rng.choice(3, size=M, p=rbar / rbar.sum())
    L = np.linalg.cholesky(gmm.covariances)
    draws = gmm.means[comp] + np.einsum("pij,pj->pi", L[comp], rng.standard_normal((M, 3)))
    mean, cov = gmm.local_moments(q)
    sd = np.sqrt(np.diag(cov) / M)
    assert (np.abs(draws.mean(0) - mean) < 4 * sd).all()
    assert np.abs(np.cov(draws.T) - cov).max() < 0.02 * np.abs(cov).max()
    mean_all, _ = gmm.local_moments()
    np.testing.assert_allclose(mean_all, gmm.weights @ gmm.means)


def test_mixture_validation_and_determinism() -> None:
    pts, *_ = _three_blobs(100, 2)
    with pytest.raises(ValueError, match="n_components"):
        fit_gmm(pts, 101)
    with pytest.raises(ValueError, match="points must have shape"):
        fit_gmm(pts[:, 0], 2)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(np.array([1.0]), np.zeros((1, 2)), np.zeros((1, 2, 2)))
    a, b = fit_gmm(pts, 4, seed=5), fit_gmm(pts, 4, seed=5)
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(a.covariances, b.covariances)
