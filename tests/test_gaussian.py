"""Oracles for gpcontrol.gaussian: Monte Carlo, Gauss-Hermite quadrature, gradcheck."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from gpcontrol.gaussian import (
    check_covariance,
    expected_exp_quadratic,
    safe_cholesky,
    selection_matrix,
    trig_moments,
)

torch.set_default_dtype(torch.float64)


def _features(x: np.ndarray, L: np.ndarray, o: np.ndarray) -> np.ndarray:
    a = x @ L.T + o
    return np.concatenate([x, np.sin(a), np.cos(a)], axis=-1)


def _mc_moments(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample mean and covariance of rows of ``Y`` with their standard errors."""
    N = Y.shape[0]
    mean = Y.mean(0)
    Yc = Y - mean
    cov = Yc.T @ Yc / N
    second = (Yc**2).T @ (Yc**2) / N  # E[(Yc_i Yc_j)^2]
    se_mean = np.sqrt(np.diag(cov) / N)
    se_cov = np.sqrt(np.maximum(second - cov**2, 0.0) / N)
    return mean, cov, se_mean, se_cov


def _random_cov(rng: np.random.Generator, n: int, scale: float, corr: float = 0.0) -> np.ndarray:
    A = rng.standard_normal((n, n))
    S = A @ A.T / n + 0.1 * np.eye(n)
    if corr:
        v = rng.standard_normal(n)
        S = (1 - corr) * S + corr * np.outer(v, v) * np.trace(S) / (v @ v)
    return scale * S


# ---------------------------------------------------------------- trig moments
CASES = {
    "small": 1e-3,  # nearly deterministic: the expm1 form matters
    "large": 4.0,  # angle standard deviations of several radians
    "correlated": 0.5,  # rank-1 dominated, correlation ~0.99
}


@pytest.mark.parametrize("case", list(CASES))
def test_trig_moments_match_monte_carlo(case: str) -> None:
    """Every entry of the mean and covariance within 4 standard errors of 1e6 samples."""
    rng = np.random.default_rng(0)
    n = 3
    mu = np.array([0.3, -1.2, 2.0])
    S = _random_cov(rng, n, CASES[case], corr=0.99 if case == "correlated" else 0.0)
    L = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, -0.3]])  # a state and a linear combination
    o = np.array([0.2, -np.pi / 2])
    m_phi, S_phi = trig_moments(mu, S, L, o)
    X = rng.multivariate_normal(mu, S, size=1_000_000)
    mean, cov, se_mean, se_cov = _mc_moments(_features(X, L, o))
    z_mean = np.abs(m_phi.numpy() - mean) / se_mean
    z_cov = np.abs(S_phi.numpy() - cov) / np.where(se_cov > 0, se_cov, np.inf)
    assert z_mean.max() < 4.0, z_mean
    assert z_cov.max() < 4.0, z_cov


def test_trig_moments_match_gauss_hermite_quadrature() -> None:
    """2-D Gauss-Hermite quadrature (exact to ~1e-13 here) for every default-L entry."""
    mu = np.array([0.7, -0.4])
    S = np.array([[0.5, 0.3], [0.3, 0.8]])
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)  # for N(0, 1)
    weights = weights / weights.sum()
    Z = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)
    w = np.outer(weights, weights).reshape(-1)
    X = mu + Z @ np.linalg.cholesky(S).T
    Y = _features(X, np.eye(2), np.zeros(2))
    mean = w @ Y
    cov = (Y - mean).T @ ((Y - mean) * w[:, None])
    m_phi, S_phi = trig_moments(mu, S)  # default L = identity
    np.testing.assert_allclose(m_phi.numpy(), mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(S_phi.numpy(), cov, rtol=0, atol=1e-12)


def test_trig_moments_limits() -> None:
    """Deterministic state -> point mass; huge variance -> uniform angle; no angles -> identity."""
    x = np.array([0.3, -1.1])
    L = np.array([[1.0, 1.0]])
    m, S = trig_moments(x, np.zeros((2, 2)), L, [0.5])
    a = x.sum() + 0.5
    np.testing.assert_allclose(m.numpy(), [*x, np.sin(a), np.cos(a)], atol=1e-15)
    np.testing.assert_allclose(S.numpy(), 0.0, atol=1e-15)
    # angle variance 2e4: sin and cos are uniform on the circle, Var = 1/2, uncorrelated
    m, S = trig_moments(x, 1e4 * np.eye(2), L)
    assert torch.isfinite(S).all()
    np.testing.assert_allclose(m.numpy()[2:], 0.0, atol=1e-300)
    np.testing.assert_allclose(S.numpy()[2:, 2:], 0.5 * np.eye(2), atol=1e-12)
    m, S = trig_moments(x, np.eye(2), np.zeros((0, 2)))
    np.testing.assert_array_equal(S.numpy(), np.eye(2))


def test_trig_moments_batch_equals_loop() -> None:
    rng = np.random.default_rng(1)
    mus = rng.standard_normal((4, 3, 2))
    covs = np.stack([_random_cov(rng, 2, 0.5) for _ in range(3)])  # broadcasts over dim 0
    L = np.array([[1.0, -1.0], [0.0, 2.0]])
    m, S = trig_moments(mus, covs, L, [0.1, 0.2])
    assert m.shape == (4, 3, 6) and S.shape == (4, 3, 6, 6)
    for i in range(4):
        for j in range(3):
            mi, Si = trig_moments(mus[i, j], covs[j], L, [0.1, 0.2])
            np.testing.assert_allclose(m[i, j].numpy(), mi.numpy(), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(S[i, j].numpy(), Si.numpy(), rtol=1e-13, atol=1e-15)


def test_trig_moments_gradcheck() -> None:
    rng = np.random.default_rng(2)
    mu = torch.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    A = torch.tensor(_random_cov(rng, 3, 0.7), requires_grad=True)
    L = torch.tensor([[1.0, 0.0, 0.0], [0.3, -1.0, 0.5]])
    o = torch.tensor([0.1, 1.0])

    def f(mu: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return trig_moments(mu, 0.5 * (A + A.mT), L, o)

    assert torch.autograd.gradcheck(f, (mu, A))
    assert torch.autograd.gradgradcheck(f, (mu, A))


def test_trig_moments_validation_names_argument() -> None:
    with pytest.raises(ValueError, match="cov"):
        trig_moments(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))  # indefinite
    with pytest.raises(ValueError, match="mean"):
        trig_moments(np.array([0.0, np.nan]), np.eye(2))
    with pytest.raises(ValueError, match="L"):
        trig_moments(np.zeros(2), np.eye(2), np.ones((1, 3)))
    with pytest.raises(ValueError, match="offset"):
        trig_moments(np.zeros(2), np.eye(2), np.ones((1, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="broadcast"):
        trig_moments(np.zeros((3, 2)), np.broadcast_to(np.eye(2), (4, 2, 2)))


# ------------------------------------------------------------- covariance checks
def test_check_covariance() -> None:
    S = np.array([[2.0, 1.0], [1.0, 0.5]])  # singular PSD: accepted
    out = check_covariance("Sigma", S)
    assert out.dtype == torch.float64 and torch.equal(out, out.mT)
    for bad, what in [
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [np.inf, 1.0]]), "inf"),
        (np.ones((2, 3)), r"\(\.\.\., n, n\)"),
        (np.ones(3), r"\(\.\.\., n, n\)"),
    ]:
        with pytest.raises(ValueError, match=f"Sigma.*{what}"):
            check_covariance("Sigma", bad)
    with pytest.raises(ValueError, match=r"Sigma must have shape \(\.\.\., 3, 3\)"):
        check_covariance("Sigma", np.eye(2), 3)
    with pytest.raises(TypeError, match="Sigma"):
        check_covariance("Sigma", torch.eye(2, dtype=torch.complex128))


def test_safe_cholesky(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    A = _random_cov(rng, 4, 1.0)
    L, jit = safe_cholesky(A)
    assert jit == 0.0
    np.testing.assert_allclose((L @ L.mT).numpy(), A, rtol=1e-13)

    v = rng.standard_normal((4, 2))
    B = v @ v.T  # rank 2: plain Cholesky fails
    with caplog.at_level(logging.WARNING, logger="gpcontrol.gaussian"):
        L, jit = safe_cholesky(B, name="kernel matrix")
    assert jit > 0.0
    assert any("kernel matrix" in r.message and "jitter" in r.message for r in caplog.records)
    np.testing.assert_allclose((L @ L.mT).numpy(), B + jit * np.eye(4), rtol=1e-12, atol=1e-14)

    with pytest.raises(np.linalg.LinAlgError, match="kernel matrix.*smallest eigenvalue"):
        safe_cholesky(np.diag([1.0, -1.0]), name="kernel matrix")
    with pytest.raises(ValueError, match="NaN"):
        safe_cholesky(np.diag([1.0, np.nan]))
    with pytest.raises(ValueError, match="symmetric"):
        safe_cholesky(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="jitter"):
        safe_cholesky(np.eye(2), jitter=-1.0)


def test_selection_matrix() -> None:
    x = np.array([10.0, 11.0, 12.0, 13.0])
    np.testing.assert_array_equal(selection_matrix([1, 3], 4) @ x, [11.0, 13.0])
    with pytest.raises(ValueError, match="indices"):
        selection_matrix([4], 4)


# ---------------------------------------------------------- exp-quadratic integral
def test_expected_exp_quadratic_against_monte_carlo_and_product_rule() -> None:
    rng = np.random.default_rng(4)
    p = 3
    m = np.array([0.2, -0.5, 1.0])
    S = _random_cov(rng, p, 0.6)
    P = rng.standard_normal((2, p))
    t = np.array([0.3, -0.2])
    E, m2, S2 = expected_exp_quadratic(m, S, P, t)
    Y = rng.multivariate_normal(m, S, size=200_000)
    g = np.exp(-0.5 * ((Y @ P.T - t) ** 2).sum(-1))
    assert abs(E.item() - g.mean()) < 4 * g.std() / np.sqrt(g.size)
    # tilted Gaussian by the product rule of Gaussians (with inverses, numpy only)
    prec = np.linalg.inv(S) + P.T @ P
    S_ref = np.linalg.inv(prec)
    m_ref = S_ref @ (np.linalg.solve(S, m) + P.T @ t)
    np.testing.assert_allclose(m2.numpy(), m_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S2.numpy(), S_ref, rtol=1e-10, atol=1e-12)


def test_expected_exp_quadratic_gradcheck_and_singular_cov() -> None:
    rng = np.random.default_rng(5)
    m = torch.tensor(rng.standard_normal(3), requires_grad=True)
    A = torch.tensor(_random_cov(rng, 3, 0.5), requires_grad=True)
    P = torch.tensor(rng.standard_normal((2, 3)))
    t = torch.tensor([0.1, 0.4])
    assert torch.autograd.gradcheck(
        lambda m, A: tuple(expected_exp_quadratic(m, 0.5 * (A + A.mT), P, t)), (m, A)
    )
    # zero covariance: the expectation is the function value
    x = rng.standard_normal(3)
    E = expected_exp_quadratic(x, np.zeros((3, 3)), P, t).expectation
    np.testing.assert_allclose(E.item(), np.exp(-0.5 * np.sum((P.numpy() @ x - t.numpy()) ** 2)))
