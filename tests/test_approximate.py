"""Oracles for linearised and unscented propagation (:mod:`gpcontrol.models.approximate`).

* zero input covariance: every method equals the GP's own prediction;
* tiny input covariance (the GP is linear on that scale): the three methods agree with
  a 1e6-sample Monte Carlo through the GP posterior within 4 standard errors, and their
  differences shrink with the input covariance at the orders the Taylor expansions predict;
* the unscented transform is exact for the mean of a quadratic map and the covariance of an
  affine one, the linearised transform for an affine one (closed forms);
* ``torch.autograd.gradcheck`` in float64 through trig features, squashing and the GP.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpcontrol.models import GPDynamics, linear_policy_moments, propagate, squashed
from gpcontrol.models.approximate import (
    linearized_transform,
    propagate_joint,
    propagate_linearized,
    propagate_unscented,
    unscented_transform,
)
from gpcontrol.models.propagation import propagate_horizon
from gpcontrol.systems import Pendulum

f64 = torch.float64
METHODS = ("moment_matching", "linearized", "unscented")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def planar_model():
    """No angles: z = [x, u] is exactly Gaussian under a linear policy."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-2.0, 2.0, size=(80, 2))
    U = rng.uniform(-1.0, 1.0, size=(80, 1))
    dX = np.stack([0.1 * X[:, 1], -0.3 * np.sin(X[:, 0]) + 0.2 * U[:, 0] * X[:, 1]], 1)
    dX = dX + 0.01 * rng.standard_normal(dX.shape)
    model = GPDynamics(2, 1)
    model.fit(np.hstack([X, U]), dX, restarts=1, seed=0, max_iter=60)
    return model


@pytest.fixture(scope="module")
def pendulum_model():
    """Pendulum (an angle), noisy data so that gradcheck's finite differences are clean."""
    rng = np.random.default_rng(2)
    system = Pendulum()
    X = rng.uniform([-np.pi, -4.0], [np.pi, 4.0], size=(30, 2))
    U = rng.uniform(system.u_low, system.u_high, size=(30, 1))
    dX = system.step(X, U) - X + 0.2 * rng.standard_normal((30, 2))
    model = GPDynamics.for_system(system)
    model.fit(np.hstack([X, U]), dX, restarts=1, seed=0, max_iter=30)
    return model


def cancellation_tol(terms, z: torch.Tensor) -> torch.Tensor:
    """Rounding scale of moment matching's S_aa = beta'Q beta - M^2 + alpha^2 - tr(W Q), (E,).

    As in tests/test_gp.py: the variance is a difference of terms much larger than itself,
    so moment matching carries ~eps times those terms, which can exceed a tiny MC error.
    """
    kz = terms.signal_var[:, None] * torch.exp(
        -0.5 * (((z - terms.X) / terms.lengthscales[:, None]) ** 2).sum(-1)
    )
    big = ((terms.beta.abs() * kz).sum(-1)) ** 2 + torch.einsum(
        "ei,eij,ej->e", kz, terms.W.abs(), kz
    )
    return 10 * torch.finfo(f64).eps * (big + terms.signal_var)


POLICY = (torch.tensor([[-0.8, 0.5]], dtype=f64), torch.tensor([0.1], dtype=f64))


def test_zero_covariance_equals_gp_prediction(pendulum_model) -> None:
    model = pendulum_model
    x = torch.tensor([2.5, -1.0], dtype=f64)
    K, k = torch.tensor([[0.7, -0.2]], dtype=f64), torch.tensor([0.3], dtype=f64)
    policy = squashed(linear_policy_moments(K, k), 2.5)
    u = 2.5 * torch.sin(K @ x + k)
    d_mean, d_var = model.predict(torch.cat([x, u]))
    for method in ("linearized", "unscented"):
        mean1, cov1 = propagate(model, x, torch.zeros(2, 2, dtype=f64), policy, method=method)
        torch.testing.assert_close(mean1, x + d_mean, rtol=0, atol=1e-13)
        torch.testing.assert_close(cov1, torch.diag(d_var), rtol=0, atol=1e-13)
    # moment matching to its own rounding (its variance is a difference of larger terms)
    mean1, cov1 = propagate(model, x, torch.zeros(2, 2, dtype=f64), policy)
    torch.testing.assert_close(mean1, x + d_mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(cov1, torch.diag(d_var), rtol=0, atol=1e-8)


def test_tiny_covariance_all_methods_match_monte_carlo(planar_model) -> None:
    """Input covariance 1e-6: all three methods within 4 SE of 1e6 samples."""
    model = planar_model
    mu = torch.tensor([0.3, -0.5], dtype=f64)
    Sigma = 1e-6 * torch.tensor([[0.4, 0.25], [0.25, 0.3]], dtype=f64)
    K, k = POLICY
    Su = torch.tensor([[2e-7]], dtype=f64)
    policy = linear_policy_moments(K, k, Su)
    n = 1_000_000
    g = torch.Generator().manual_seed(3)
    x = mu + torch.randn(n, 2, generator=g, dtype=f64) @ torch.linalg.cholesky(Sigma).T
    u = x @ K.T + k + Su.sqrt() * torch.randn(n, 1, generator=g, dtype=f64)
    with torch.no_grad():
        parts = [model.predict(c) for c in torch.cat([x, u], 1).split(100_000)]
    y = x + torch.cat([p[0] for p in parts])
    d_var = torch.cat([p[1] for p in parts])
    dy = y - y.mean(0)
    samples_cov = dy[:, :, None] * dy[:, None, :] + torch.diag_embed(d_var)
    rounding = cancellation_tol(model.terms(), model.features(torch.cat([mu, K @ mu + k])))
    for method in METHODS:
        mean1, cov1 = propagate(model, mu, Sigma, policy, method=method)
        # moment matching's own rounding of S (see cancellation_tol) adds to 4 SE
        extra = torch.diag(rounding) if method == "moment_matching" else torch.zeros(2, 2)
        for est, samples, tol in ((mean1, y, 0.0), (cov1, samples_cov, extra)):
            err = (est - samples.mean(0)).abs()
            assert bool((err <= 4.0 * samples.std(0) / math.sqrt(n) + tol).all()), (
                method,
                err,
                samples.std(0) / math.sqrt(n),
            )


def test_methods_converge_at_taylor_orders(planar_model) -> None:
    """Scaling the input covariance by eps: differences to moment matching shrink as predicted.

    Linearised mean error is (1/2) tr(H s) = O(eps); the unscented mean is exact to second
    order, error O(eps^2); both covariances are right to first order in eps, error O(eps^2).
    Between eps = 0.1 and 0.03 (ratio r = 10/3) the differences must fall by at least
    r^order / 1.5 (1.5 allows for the next Taylor term). Smaller eps would hit moment
    matching's own rounding of S (~1e-8 here), which is not what this test is about.
    """
    model = planar_model
    mu = torch.tensor([0.3, -0.5], dtype=f64)
    base = torch.tensor([[0.4, 0.25], [0.25, 0.3]], dtype=f64)
    diffs = {}
    for eps in (0.1, 0.03):
        policy = linear_policy_moments(*POLICY, eps * torch.tensor([[0.05]], dtype=f64))
        exact = propagate(model, mu, eps * base, policy)
        for method in ("linearized", "unscented"):
            approx = propagate(model, mu, eps * base, policy, method=method)
            diffs[method, eps] = [
                float((a - e).detach().abs().max()) for a, e in zip(approx, exact, strict=True)
            ]
    r = 0.1 / 0.03
    for method, mean_order in (("linearized", 1), ("unscented", 2)):
        coarse, fine = diffs[method, 0.1], diffs[method, 0.03]
        assert coarse[0] / fine[0] > r**mean_order / 1.5, (method, coarse, fine)
        assert coarse[1] / fine[1] > r**2 / 1.5, (method, coarse, fine)


def test_unscented_exact_for_quadratic_mean() -> None:
    g = torch.Generator().manual_seed(0)
    d = 4
    A = torch.randn(3, d, d, generator=g, dtype=f64)
    A = A + A.mT
    b = torch.randn(3, d, generator=g, dtype=f64)
    c = torch.randn(3, dtype=f64, generator=g)
    m = torch.randn(d, generator=g, dtype=f64)
    R = torch.randn(d, d, generator=g, dtype=f64)
    S = R @ R.T / d

    def f(w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...i,kij,...j->...k", w, A, w) + w @ b.T + c

    exact = torch.einsum("kij,ji->k", A, S) + f(m)  # E[w'Aw] = tr(A S) + m'Am
    for kappa in (0.0, 2.0):
        mean, _ = unscented_transform(f, m, S, kappa=kappa)
        torch.testing.assert_close(mean, exact, rtol=1e-12, atol=1e-12)


def test_affine_map_is_exact_for_both_transforms() -> None:
    g = torch.Generator().manual_seed(1)
    d, k = 4, 3
    A = torch.randn(k, d, generator=g, dtype=f64)
    c = torch.randn(k, generator=g, dtype=f64)
    m = torch.randn(d, generator=g, dtype=f64)
    R = torch.randn(d, 2, generator=g, dtype=f64)
    S = R @ R.T  # singular (rank 2): the PSD factor must still be exact

    def f(w: torch.Tensor) -> torch.Tensor:
        return w @ A.T + c

    for mean, cov in (unscented_transform(f, m, S), linearized_transform(f, m, S)):
        torch.testing.assert_close(mean, A @ m + c, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(cov, A @ S @ A.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["linearized", "unscented"])
def test_gradcheck(pendulum_model, method: str) -> None:
    model = pendulum_model
    mu = torch.tensor([2.0, 0.5], dtype=f64, requires_grad=True)
    A = torch.tensor([[0.3, 0.0], [0.1, 0.4]], dtype=f64, requires_grad=True)
    K = torch.tensor([[0.5, -0.3]], dtype=f64, requires_grad=True)
    k = torch.tensor([0.2], dtype=f64, requires_grad=True)
    step = propagate_linearized if method == "linearized" else propagate_unscented

    def f(mu, A, K, k):
        policy = squashed(linear_policy_moments(K, k), 2.5)
        return step(model, mu, A @ A.T, policy)

    assert torch.autograd.gradcheck(f, (mu, A, K, k), eps=1e-6, atol=1e-7)


def test_horizon_passes_method(pendulum_model) -> None:
    model = pendulum_model
    policy = squashed(linear_policy_moments(torch.tensor([[0.4, 0.1]], dtype=f64), [0.0]), 2.5)
    mu0, S0 = torch.tensor([0.1, 0.0], dtype=f64), 0.01 * torch.eye(2, dtype=f64)
    traj = propagate_horizon(model, mu0, S0, policy, 3, method="unscented")
    mu, S = mu0, S0
    for t in range(3):
        mu, S = propagate_unscented(model, mu, S, policy)
        torch.testing.assert_close(traj.mean[t + 1], mu, rtol=0, atol=0)
        torch.testing.assert_close(traj.cov[t + 1], S, rtol=0, atol=0)


def test_bad_arguments(planar_model) -> None:
    policy = linear_policy_moments(*POLICY)
    mu, S = torch.zeros(2, dtype=f64), 0.1 * torch.eye(2, dtype=f64)
    with pytest.raises(ValueError, match="method"):
        propagate(planar_model, mu, S, policy, method="ekf")
    with pytest.raises(ValueError, match="method"):
        propagate_joint(
            planar_model, torch.zeros(3, dtype=f64), torch.eye(3, dtype=f64), method="x"
        )
    with pytest.raises(ValueError, match="mean_xu"):
        propagate_joint(planar_model, torch.zeros(4, dtype=f64), torch.eye(4, dtype=f64))
    with pytest.raises(ValueError, match="kappa"):
        unscented_transform(lambda w: w, torch.zeros(2, dtype=f64), S, kappa=-1.0)
    with pytest.raises(ValueError, match="cov"):
        unscented_transform(lambda w: w, torch.zeros(2, dtype=f64), -S)
