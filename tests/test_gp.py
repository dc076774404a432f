"""Oracles for :class:`gpcontrol.models.GPDynamics`.

* deterministic predictions equal gpytorch's own posterior (its prediction
  strategy and caches), in raw units;
* the raw-unit :meth:`GPDynamics.terms` reproduce the model: moment matching
  at zero covariance equals :meth:`predict`, and at a Gaussian input equals
  Monte Carlo through :meth:`predict` (4 standard errors);
* trained on 200 random transitions of the cart-pole and the pendulum, the
  held-out one-step predictive log-likelihood beats a least-squares linear
  Gaussian model on the same features;
* duplicate inputs, noise-free and constant targets give finite fits (jitter
  recorded), and bad arguments raise ``ValueError``;
* belief propagation: Monte Carlo in the exact regime (no angles, linear
  policy), the pointwise limit with angles and squashing, gradcheck;
* sparse GPs: with all training inputs as inducing inputs SGPR and FITC equal
  the exact GP; the SGPR bound never exceeds the exact marginal likelihood;
  the automatic switch, and moment matching on sparse terms vs Monte Carlo.
"""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import pytest
import torch

from gpcontrol.models import (
    GPDynamics,
    linear_policy_moments,
    moment_match,
    propagate,
    propagate_horizon,
    squashed,
)
from gpcontrol.models.sparse import sparse_posterior
from gpcontrol.systems import CartPole, Pendulum

f64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module on one torch thread (OpenMP oversubscribes shared 2-core machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BOXES = {
    "pendulum": (Pendulum, [-math.pi, -6.0], [math.pi, 6.0]),
    "cartpole": (CartPole, [-1.0, -math.pi, -2.0, -6.0], [1.0, math.pi, 2.0, 6.0]),
}


def transitions(name: str, size: int, rng: np.random.Generator, noise: float = 0.01):
    """``[x, u]`` rows and noisy differences ``x' - x`` from uniform states and controls."""
    cls, lo, hi = BOXES[name]
    system = cls()
    X = rng.uniform(lo, hi, size=(size, system.n))
    U = rng.uniform(system.u_low, system.u_high, size=(size, system.m))
    Xn = system.step(X, U) + noise * rng.standard_normal((size, system.n))
    return system, np.hstack([X, U]), Xn - X


def cancellation_tol(terms, z: torch.Tensor) -> torch.Tensor:
    """Rounding scale of S_aa = beta'Q beta - M^2 + alpha^2 - tr(W Q) at s = 0, shape (E,).

    Moment matching forms the variance as a difference of terms much larger than itself,
    so it can only agree with a triangular-solve variance to ~eps times those terms.
    """
    kz = terms.signal_var[:, None] * torch.exp(
        -0.5 * (((z - terms.X) / terms.lengthscales[:, None]) ** 2).sum(-1)
    )
    big = ((terms.beta.abs() * kz).sum(-1)) ** 2 + torch.einsum(
        "ei,eij,ej->e", kz, terms.W.abs(), kz
    )
    return 10 * torch.finfo(f64).eps * (big + terms.signal_var)


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(1)
    system, XU, dX = transitions("pendulum", 60, rng)
    model = GPDynamics.for_system(system)
    report = model.fit(XU, dX, restarts=1, seed=0, max_iter=40)
    return model, report, rng


def test_features_order() -> None:
    model = GPDynamics(4, 1, angle_indices=(1,))
    xu = torch.tensor([[0.1, 0.7, -0.3, 2.0, 5.0]], dtype=f64)
    z = model.features(xu)
    expected = torch.tensor([[0.1, -0.3, 2.0, math.sin(0.7), math.cos(0.7), 5.0]], dtype=f64)
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-15)
    assert model.D == 6 and model.E == 4


def test_predict_equals_gpytorch_posterior(small_model) -> None:
    model, _, rng = small_model
    XU = torch.as_tensor(rng.uniform([-3, -6, -2.5], [3, 6, 2.5], size=(25, 3)))
    zn = (model.features(XU) - model.z_mean) / model.z_std
    with (
        torch.no_grad(),
        gpytorch.settings.fast_pred_var(False),
        gpytorch.settings.max_cholesky_size(10_000),
    ):
        f = model.gp(zn.expand(model.E, *zn.shape))
        y = model.likelihood(f)
    for noise, dist in ((False, f), (True, y)):
        mean, var = model.predict(XU, include_noise=noise)
        ref_mean = model.y_mean + model.y_std * dist.mean.T
        ref_var = model.y_std**2 * dist.variance.T
        torch.testing.assert_close(mean, ref_mean, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(var, ref_var, rtol=1e-7, atol=1e-12)


def test_terms_reproduce_predictions(small_model) -> None:
    """Raw-unit terms: zero-covariance moment matching = predict (latent and noisy)."""
    model, _, _ = small_model
    xu = torch.tensor([0.4, -1.5, 0.8], dtype=f64)
    z = model.features(xu)
    terms = model.terms()
    # alpha^2 - k' W k with an explicit W = (K + sn2 I)^{-1} (what moment matching needs for
    # its O(N^2) trace) loses up to ~ gamma_N cond(K + sn2 I) alpha^2 to cancellation, with
    # gamma_N = N eps the dimension factor of the standard (Higham) error bound for an N x N
    # inverse and inner product, whereas predict uses a triangular solve; that bound is the
    # tolerance of the variances (without the N factor it was exceeded by 12 % on one machine).
    A = model._post.L @ model._post.L.mT
    n_train = A.shape[-1]
    bound = n_train * torch.finfo(f64).eps * torch.linalg.cond(A) * terms.signal_var
    for noise in (False, True):
        mom = moment_match(terms, z, torch.zeros(4, 4, dtype=f64), include_noise=noise)
        mean, var = model.predict(xu, include_noise=noise)
        torch.testing.assert_close(mom.M, mean, rtol=1e-10, atol=1e-12)
        err = (torch.diagonal(mom.S) - var).abs()
        assert bool((err <= bound).all()), (err, bound)


def test_terms_moment_matching_monte_carlo(small_model) -> None:
    """Gaussian GP input (raw features): M, S against 2e5 samples through predict."""
    model, _, _ = small_model
    terms = model.terms()
    m = torch.tensor([0.3, -0.5, 0.8, 0.5], dtype=f64)  # [dtheta, sin, cos, u] in raw units
    s = torch.diag(torch.tensor([1.5, 0.05, 0.05, 0.5], dtype=f64) ** 2)
    s[0, 3] = s[3, 0] = 0.5 * 1.5 * 0.5 * 0.8
    mom = moment_match(terms, m, s)
    n = 200_000
    g = torch.Generator().manual_seed(3)
    z = m + torch.randn(n, 4, generator=g, dtype=f64) @ torch.linalg.cholesky(s).T
    # sin/cos of a Gaussian are not free features of [x, u], so evaluate the fitted
    # posterior directly on the sampled raw features
    post = model._post
    with torch.no_grad():
        zn = (z - model.z_mean) / model.z_std
        Ks = model.gp.kernel(zn, post.Zn)  # gpytorch's kernel on standardised features
        mu = model.y_mean + model.y_std * (Ks @ post.beta.unsqueeze(-1)).squeeze(-1).T
        v = torch.linalg.solve_triangular(post.L, Ks.mT, upper=False)
        sf2 = model.gp.hyperparameters()[1]
        var = model.y_std**2 * (sf2[:, None] - (v**2).sum(-2)).T
    dmu = mu - mu.mean(0)
    h = dmu[:, :, None] * dmu[:, None, :] + torch.diag_embed(var)
    for est, samples in ((mom.M, mu), (mom.S, h)):
        z_score = (est - samples.mean(0)).abs() / (samples.std(0) / math.sqrt(n))
        assert bool((z_score < 4.0).all()), z_score


@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_one_step_log_likelihood_beats_linear(name: str) -> None:
    rng = np.random.default_rng(7)
    system, XU, dX = transitions(name, 200, rng)
    _, XU_test, dX_test = transitions(name, 500, rng)
    model = GPDynamics.for_system(system)
    report = model.fit(XU, dX, restarts=1, seed=0, max_iter=100)
    ll_gp = gp_loglik(model, XU_test, dX_test)
    ll_lin = linear_loglik(model, XU, dX, XU_test, dX_test)
    print(
        f"\n{name}: held-out log-lik per transition GP {ll_gp:.3f}, linear {ll_lin:.3f}, "
        f"fit {report.seconds:.1f} s, snr {np.round(report.snr, 1)}"
    )
    assert np.isfinite(report.loss)
    assert ll_gp > ll_lin + 1.0


def gp_loglik(model: GPDynamics, XU_test: np.ndarray, dX_test: np.ndarray) -> float:
    """Mean held-out log N(dx | GP mean, GP variance + noise) per transition."""
    with torch.no_grad():
        mean_t, var_t = model.predict(torch.as_tensor(XU_test), include_noise=True)
    mean, var = mean_t.numpy(), var_t.numpy()
    return float(
        np.mean(np.sum(-0.5 * np.log(2 * np.pi * var) - 0.5 * (dX_test - mean) ** 2 / var, 1))
    )


def linear_loglik(model, XU, dX, XU_test, dX_test) -> float:
    """Linear-Gaussian baseline on the same features: dx = A [z, 1] + N(0, Sigma), least squares."""

    def feats(xu: np.ndarray) -> np.ndarray:
        z = model.features(torch.as_tensor(xu)).numpy()
        return np.hstack([z, np.ones((len(z), 1))])

    A, *_ = np.linalg.lstsq(feats(XU), dX, rcond=None)
    R = dX - feats(XU) @ A
    Lc = np.linalg.cholesky(R.T @ R / len(R))
    sol = np.linalg.solve(Lc, (dX_test - feats(XU_test) @ A).T)
    n = dX.shape[1]
    return float(
        np.mean(-0.5 * (sol**2).sum(0)) - np.log(np.diag(Lc)).sum() - 0.5 * n * np.log(2 * np.pi)
    )


def test_duplicate_points_and_noise_free_targets_are_finite() -> None:
    rng = np.random.default_rng(3)
    system, XU, _ = transitions("pendulum", 30, rng)
    XU = np.repeat(XU, 4, axis=0)  # every input four times
    dX = system.step(XU[:, :2], XU[:, 2:]) - XU[:, :2]  # noise-free, so duplicates agree
    model = GPDynamics.for_system(system)
    report = model.fit(XU, dX, restarts=2, seed=1, max_iter=60)
    assert math.isfinite(report.loss) and math.isfinite(report.jitter) and report.jitter >= 0.0
    # the penalty and floor keep the noise away from zero and the SNR in check
    assert bool(np.all(report.noise_var >= model.noise_floor * model.y_std.numpy() ** 2 * 0.999))
    assert bool(np.all(report.snr < 1000.0))
    mean, var = model.predict(torch.as_tensor(XU[:7]))
    assert bool(torch.isfinite(mean).all() and torch.isfinite(var).all() and (var >= 0).all())


def test_constant_targets_are_finite() -> None:
    rng = np.random.default_rng(4)
    system, XU, dX = transitions("pendulum", 40, rng)
    dX[:, 1] = 0.25  # a constant output
    model = GPDynamics.for_system(system)
    report = model.fit(XU, dX, restarts=1, seed=0, max_iter=30)
    assert math.isfinite(report.loss)
    mean, var = model.predict(torch.as_tensor(XU[:5]))
    assert bool(torch.isfinite(mean).all() and torch.isfinite(var).all())
    torch.testing.assert_close(mean[:, 1], torch.full((5,), 0.25, dtype=f64), rtol=0, atol=1e-6)


def test_bad_arguments() -> None:
    model = GPDynamics(2, 1, angle_indices=(0,))
    with pytest.raises(RuntimeError, match="not been fitted"):
        model.predict(torch.zeros(1, 3, dtype=f64))
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, 3\)"):
        model.fit(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"targets must have shape \(N, 2\)"):
        model.fit(np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="same number of rows"):
        model.fit(np.zeros((10, 3)), np.zeros((9, 2)))
    bad = np.zeros((10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="angle_indices"):
        GPDynamics(2, 1, angle_indices=(2,))
    with pytest.raises(ValueError, match="restarts"):
        model.fit(np.zeros((10, 3)), np.zeros((10, 2)), restarts=0)


# ---------------------------------------------------------------- propagation
@pytest.fixture(scope="module")
def planar_model():
    """A model without angles (z = [x, u] is then exactly Gaussian under a linear policy)."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-2.0, 2.0, size=(80, 2))
    U = rng.uniform(-1.0, 1.0, size=(80, 1))
    dX = np.stack([0.1 * X[:, 1], -0.3 * np.sin(X[:, 0]) + 0.2 * U[:, 0] * X[:, 1]], 1)
    dX = dX + 0.01 * rng.standard_normal(dX.shape)
    model = GPDynamics(2, 1)
    model.fit(np.hstack([X, U]), dX, restarts=1, seed=0, max_iter=60)
    return model


def test_one_step_propagation_monte_carlo(planar_model) -> None:
    """Exact regime (no angles, linear-Gaussian policy): 1e6 samples, 4 standard errors."""
    model = planar_model
    mu = torch.tensor([0.3, -0.5], dtype=f64)
    Sigma = torch.tensor([[0.4, 0.25], [0.25, 0.3]], dtype=f64)
    K = torch.tensor([[-0.8, 0.5]], dtype=f64)
    k = torch.tensor([0.1], dtype=f64)
    Su = torch.tensor([[0.05]], dtype=f64)
    mean1, cov1 = propagate(model, mu, Sigma, linear_policy_moments(K, k, Su))

    n = 1_000_000
    g = torch.Generator().manual_seed(17)
    x = mu + torch.randn(n, 2, generator=g, dtype=f64) @ torch.linalg.cholesky(Sigma).T
    u = x @ K.T + k + Su.sqrt() * torch.randn(n, 1, generator=g, dtype=f64)
    with torch.no_grad():
        parts = [model.predict(c) for c in torch.cat([x, u], 1).split(50_000)]
    d_mean = torch.cat([p[0] for p in parts])
    d_var = torch.cat([p[1] for p in parts])
    y = x + d_mean  # x' = y + model error with variance d_var (law of total variance)
    dy = y - y.mean(0)
    for est, samples in (
        (mean1, y),
        (cov1, dy[:, :, None] * dy[:, None, :] + torch.diag_embed(d_var)),
    ):
        z = (est - samples.mean(0)).abs() / (samples.std(0) / math.sqrt(n))
        assert bool((z < 4.0).all()), z


def test_propagation_with_angles_and_squash_at_zero_covariance(small_model) -> None:
    """With Sigma = 0 every stage is pointwise: mean = x + predicted delta, cov = its variance."""
    model, _, _ = small_model  # pendulum, theta is an angle
    x = torch.tensor([2.5, -1.0], dtype=f64)
    K = torch.tensor([[0.7, -0.2]], dtype=f64)
    k = torch.tensor([0.3], dtype=f64)
    for kind in ("sin", "gsat"):
        policy = squashed(linear_policy_moments(K, k), 2.5, kind=kind)
        mean1, cov1 = propagate(model, x, torch.zeros(2, 2, dtype=f64), policy)
        v = K @ x + k
        u = 2.5 * (torch.sin(v) if kind == "sin" else (9 * torch.sin(v) + torch.sin(3 * v)) / 8)
        d_mean, d_var = model.predict(torch.cat([x, u]))
        torch.testing.assert_close(mean1, x + d_mean, rtol=1e-10, atol=1e-12)
        tol = cancellation_tol(model.terms(), model.features(torch.cat([x, u])))
        err = (cov1 - torch.diag(d_var)).abs()
        assert bool((err <= torch.sqrt(tol[:, None] * tol[None, :])).all()), (err, tol)


def test_propagation_gradcheck() -> None:
    """Gradients through trig features, squashing and moment matching (pendulum model).

    Fitted on noisy data (noise std 0.2) so that K + noise I is well conditioned: the finite
    differences of gradcheck would otherwise drown in the cancellation error of S.
    """
    rng = np.random.default_rng(2)
    system, XU, dX = transitions("pendulum", 30, rng, noise=0.2)
    model = GPDynamics.for_system(system)
    model.fit(XU, dX, restarts=1, seed=0, max_iter=30)
    mu = torch.tensor([2.0, 0.5], dtype=f64, requires_grad=True)
    A = torch.tensor([[0.3, 0.0], [0.1, 0.4]], dtype=f64, requires_grad=True)
    K = torch.tensor([[0.5, -0.3]], dtype=f64, requires_grad=True)
    k = torch.tensor([0.2], dtype=f64, requires_grad=True)

    def f(mu, A, K, k):
        policy = squashed(linear_policy_moments(K, k), 2.5)
        return propagate(model, mu, A @ A.T, policy)

    assert torch.autograd.gradcheck(f, (mu, A, K, k), eps=1e-6, atol=1e-7)


def test_propagate_horizon_composes_steps(small_model) -> None:
    model, _, _ = small_model
    policy = squashed(linear_policy_moments(torch.tensor([[0.4, 0.1]], dtype=f64), [0.0]), 2.5)
    mu0 = torch.tensor([0.1, 0.0], dtype=f64)
    S0 = 0.01 * torch.eye(2, dtype=f64)
    traj = propagate_horizon(model, mu0, S0, policy, 5)
    assert traj.mean.shape == (6, 2) and traj.cov.shape == (6, 2, 2)
    mu, S = mu0, S0
    for t in range(5):
        mu, S = propagate(model, mu, S, policy)
        torch.testing.assert_close(traj.mean[t + 1], mu, rtol=0, atol=0)
        torch.testing.assert_close(traj.cov[t + 1], S, rtol=0, atol=0)
        assert float(torch.linalg.eigvalsh(S).min()) > 0.0


# --------------------------------------------------------------------- sparse
def _exact_reference(X, y, ell, sf2, sn2, Xs):
    """Exact GP log marginal likelihood (E,) and posterior mean/variance at Xs, float64 loops."""
    d = (X[None, :, None] - X[None, None]) / ell[:, None, None]
    K = sf2[:, None, None] * torch.exp(-0.5 * (d**2).sum(-1))
    N = X.shape[0]
    L = torch.linalg.cholesky(K + sn2[:, None, None] * torch.eye(N, dtype=f64))
    alpha = torch.cholesky_solve(y.unsqueeze(-1), L).squeeze(-1)
    logp = (
        -0.5 * (y * alpha).sum(-1)
        - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        - 0.5 * N * math.log(2 * math.pi)
    )
    ds = (Xs[None, :, None] - X[None, None]) / ell[:, None, None]
    Ks = sf2[:, None, None] * torch.exp(-0.5 * (ds**2).sum(-1))  # (E, b, N)
    mean = (Ks @ alpha.unsqueeze(-1)).squeeze(-1)
    v = torch.linalg.solve_triangular(L, Ks.mT, upper=False)
    var = sf2[:, None] - (v**2).sum(-2)
    return logp, mean, var, K, Ks


@pytest.mark.parametrize("method", ["sgpr", "fitc"])
def test_sparse_with_all_training_inputs_is_exact(method: str) -> None:
    """U = X: Q_ff = K_ff, so both approximations reduce to the exact GP."""
    g = torch.Generator().manual_seed(0)
    N, D, E = 25, 2, 2
    X = torch.rand(N, D, generator=g, dtype=f64) * 4 - 2
    y = torch.sin(X.sum(-1)).expand(E, N) + 0.1 * torch.randn(E, N, generator=g, dtype=f64)
    ell = torch.tensor([[0.8, 1.2], [1.5, 0.6]], dtype=f64)
    sf2 = torch.tensor([1.0, 0.7], dtype=f64)
    sn2 = torch.tensor([0.05, 0.02], dtype=f64)
    Xs = torch.rand(7, D, generator=g, dtype=f64) * 4 - 2
    logp, mean, var, K, Ks = _exact_reference(X, y, ell, sf2, sn2, Xs)
    sp = sparse_posterior(K, K, sf2[:, None].expand(E, N), y, sn2, method=method)
    torch.testing.assert_close(sp.log_likelihood, logp, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close((Ks @ sp.beta.unsqueeze(-1)).squeeze(-1), mean, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(
        sf2[:, None] - sp.variance_reduction(Ks.mT), var, rtol=1e-7, atol=1e-9
    )
    torch.testing.assert_close(
        sf2[:, None] - torch.einsum("ebn,enm,ebm->eb", Ks, sp.W(), Ks), var, rtol=1e-6, atol=1e-8
    )


def test_sgpr_bound_is_below_the_exact_marginal_likelihood() -> None:
    """Titsias (2009): the collapsed bound never exceeds log p(y), for any inducing inputs."""
    g = torch.Generator().manual_seed(1)
    N, D, E, M = 40, 2, 2, 8
    X = torch.rand(N, D, generator=g, dtype=f64) * 4 - 2
    y = torch.cos(X @ torch.tensor([1.0, -0.5], dtype=f64)).expand(E, N).clone()
    y = y + 0.1 * torch.randn(E, N, generator=g, dtype=f64)
    ell = torch.tensor([[0.9, 1.1], [0.7, 1.4]], dtype=f64)
    sf2 = torch.tensor([1.0, 0.8], dtype=f64)
    sn2 = torch.tensor([0.01, 0.05], dtype=f64)
    logp, *_ = _exact_reference(X, y, ell, sf2, sn2, X[:1])
    for trial in range(5):
        U = torch.rand(M, D, generator=g, dtype=f64) * 4 - 2
        du = (U[None, :, None] - U[None, None]) / ell[:, None, None]
        df = (U[None, :, None] - X[None, None]) / ell[:, None, None]
        Kuu = sf2[:, None, None] * torch.exp(-0.5 * (du**2).sum(-1))
        Kuf = sf2[:, None, None] * torch.exp(-0.5 * (df**2).sum(-1))
        sp = sparse_posterior(Kuu, Kuf, sf2[:, None].expand(E, N), y, sn2, method="sgpr")
        assert bool((sp.log_likelihood <= logp + 1e-9).all()), (trial, sp.log_likelihood, logp)


@pytest.fixture(scope="module", params=["sgpr", "fitc"])
def sparse_model(request):
    rng = np.random.default_rng(9)
    system, XU, dX = transitions("pendulum", 400, rng)
    model = GPDynamics.for_system(
        system, sparse_threshold=300, inducing=40, sparse_method=request.param
    )
    report = model.fit(XU, dX, restarts=1, seed=0, max_iter=60)
    return model, report, rng, XU, dX


def test_sparse_model_switches_and_predicts(sparse_model) -> None:
    model, report, rng, XU, dX = sparse_model
    assert report.method == model.sparse_method and report.n_inducing == 40
    assert report.n_train == 400
    terms = model.terms()
    assert terms.X.shape == (40, 4) and terms.W.shape == (2, 40, 40)
    _, XU_test, dX_test = transitions("pendulum", 300, rng)
    ll = gp_loglik(model, XU_test, dX_test)
    ll_lin = linear_loglik(model, XU, dX, XU_test, dX_test)
    print(
        f"\nsparse ({report.method}, 40 inducing inputs, 400 points): GP {ll:.3f}, "
        f"linear {ll_lin:.3f}, fit {report.seconds:.1f} s"
    )
    assert ll > ll_lin + 1.0


def test_sparse_terms_moment_matching(sparse_model) -> None:
    """Sparse terms: s = 0 equals predict; Gaussian input equals Monte Carlo through them."""
    model = sparse_model[0]
    terms = model.terms()
    xu = torch.tensor([0.4, -1.5, 0.8], dtype=f64)
    z = model.features(xu)
    mom0 = moment_match(terms, z, torch.zeros(4, 4, dtype=f64))
    mean, var = model.predict(xu)
    torch.testing.assert_close(mom0.M, mean, rtol=1e-9, atol=1e-10)
    err = (torch.diagonal(mom0.S) - var).abs()
    assert bool((err <= cancellation_tol(terms, z)).all()), err

    m = torch.tensor([0.3, -0.5, 0.8, 0.5], dtype=f64)
    s = torch.diag(torch.tensor([1.5, 0.05, 0.05, 0.5], dtype=f64) ** 2)
    mom = moment_match(terms, m, s)
    n = 200_000
    g = torch.Generator().manual_seed(4)
    zs = m + torch.randn(n, 4, generator=g, dtype=f64) @ torch.linalg.cholesky(s).T
    post = model._post
    with torch.no_grad():
        Ks = model.gp.kernel((zs - model.z_mean) / model.z_std, post.Zn)
        mu = model.y_mean + model.y_std * (Ks @ post.beta.unsqueeze(-1)).squeeze(-1).T
        sf2 = model.gp.hyperparameters()[1]
        v = model.y_std**2 * (sf2[:, None] - post.variance_reduction(Ks.mT)).T
    dmu = mu - mu.mean(0)
    h = dmu[:, :, None] * dmu[:, None, :] + torch.diag_embed(v)
    for est, samples in ((mom.M, mu), (mom.S, h)):
        z_score = (est - samples.mean(0)).abs() / (samples.std(0) / math.sqrt(n))
        assert bool((z_score < 4.0).all()), z_score
