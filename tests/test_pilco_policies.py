"""Oracles for the PILCO policies: Monte Carlo moments, deterministic limit, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpcontrol.policies.linear import LinearPolicy, feature_moments, features
from gpcontrol.policies.rbf import RBFPolicy

torch.set_num_threads(1)
F64 = torch.float64
SAMPLES = 400_000


def _belief(n: int, seed: int, scale: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, generator=g, dtype=F64) * 0.5
    A = torch.randn(n, n, generator=g, dtype=F64) * scale
    return mu, A @ A.T + 0.01 * torch.eye(n, dtype=F64)


def _samples(mu: torch.Tensor, S: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    L = torch.linalg.cholesky(S)
    return mu + torch.randn(SAMPLES, mu.shape[0], generator=g, dtype=F64) @ L.T


def _check_mc(x: torch.Tensor, u: torch.Tensor, M, S, Sxu) -> None:  # type: ignore[no-untyped-def]
    """Mean, covariance and cov(x, u) within 4 standard errors of the sample estimates."""
    N = x.shape[0]
    du = u - u.mean(0)
    dx = x - x.mean(0)
    se_m = u.std(0) / N**0.5
    assert torch.all((u.mean(0) - M).abs() < 4 * se_m + 1e-12)
    prod = du[:, :, None] * du[:, None, :]
    assert torch.all((prod.mean(0) - S).abs() < 4 * prod.std(0) / N**0.5 + 1e-12)
    cross = dx[:, :, None] * du[:, None, :]
    assert torch.all((cross.mean(0) - Sxu).abs() < 4 * cross.std(0) / N**0.5 + 1e-12)


def test_linear_policy_exact_without_angles() -> None:
    """No angles: u_tilde is Gaussian, so the squashed moments are exact."""
    pol = LinearPolicy(3, 2, [2.0, 1.5], seed=3)
    mu, S = _belief(3, 0)
    with torch.no_grad():
        mom = pol.moments(mu, S)
        x = _samples(mu, S, 1)
        _check_mc(x, pol(x), mom.M, mom.S, S @ mom.C)


@pytest.mark.parametrize("cls", [LinearPolicy, RBFPolicy])
def test_pre_squash_moments_exact_with_angles(cls: type) -> None:
    """Exact moments of the features (trig) and of the affine map / RBF mean at a Gaussian z.

    Linear: with angles, W z + b has exactly the moments of the trig features.
    RBF: without angles z = x is Gaussian, and GP-mean moment matching is exact.
    """
    angles = (0,) if cls is LinearPolicy else ()
    pol = cls(2, 1, 3.0, angle_indices=angles, seed=2)
    mu, S = _belief(2, 5)
    with torch.no_grad():
        mz, sz, J = feature_moments(mu, S, pol.angle_indices)
        M, Su, C = pol._pre_moments(mz, sz)
        x = _samples(mu, S, 7)
        _check_mc(x, pol._pre(features(x, pol.angle_indices)), M, Su, S @ J @ C)


@pytest.mark.parametrize("cls", [LinearPolicy, RBFPolicy])
def test_deterministic_limit(cls: type) -> None:
    """At Sigma = 0: M = pi(mu), S = 0 and C = (d pi / d x)^T."""
    pol = cls(3, 2, [2.0, 1.0], angle_indices=(1,), seed=4)
    mu = torch.tensor([0.2, 2.5, -0.3], dtype=F64, requires_grad=True)
    mom = pol.moments(mu, torch.zeros(3, 3, dtype=F64))
    u = pol(mu)
    jac = torch.stack([torch.autograd.grad(u[a], mu, retain_graph=True)[0] for a in range(2)])
    torch.testing.assert_close(mom.M, u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        mom.S, torch.zeros(2, 2, dtype=F64), rtol=0, atol=1e-11
    )  # RBF adds 1e-12 jitter
    torch.testing.assert_close(mom.C, jac.T, rtol=1e-8, atol=1e-10)
    u_np = pol(mu.detach().numpy(), 0)
    assert isinstance(u_np, np.ndarray) and np.allclose(u_np, u.detach().numpy())


def test_squashed_rbf_small_covariance_monte_carlo() -> None:
    """Squashed RBF with angles: an approximation, accurate for a small state covariance.

    The only approximations are the Gaussian replacement of z and of u_tilde; with
    Sigma ~ 1e-4 their error is O(Sigma^2), far below the 4-SE Monte Carlo band.
    """
    pol = RBFPolicy(2, 1, 2.5, basis=6, angle_indices=(0,), seed=8)
    mu, S = _belief(2, 9, scale=0.01)
    with torch.no_grad():
        mom = pol.moments(mu, S)
        x = _samples(mu, S, 10)
        _check_mc(x, pol(x), mom.M, mom.S, S @ mom.C)


@pytest.mark.parametrize("cls", [LinearPolicy, RBFPolicy])
def test_gradcheck_belief_and_parameters(cls: type) -> None:
    pol = cls(2, 1, 2.0, angle_indices=(0,), seed=11)
    if isinstance(pol, RBFPolicy):
        pol = RBFPolicy(2, 1, 2.0, basis=3, angle_indices=(0,), seed=11)
    mu0, S0 = _belief(2, 12)
    A0 = torch.linalg.cholesky(S0)

    def belief_fn(mu: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mom = pol.moments(mu, A @ A.T)
        return mom.M, mom.S, mom.C

    assert torch.autograd.gradcheck(
        belief_fn, (mu0.clone().requires_grad_(), A0.clone().requires_grad_())
    )

    names = [k for k, _ in pol.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_() for p in pol.parameters())

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = pol

        def forward(self) -> tuple[torch.Tensor, ...]:
            mom = self.policy.moments(mu0, S0)
            return mom.M, mom.S, mom.C

    wrapper = Wrapper()

    def param_fn(*vals: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = {f"policy.{k}": v for k, v in zip(names, vals, strict=True)}
        return torch.func.functional_call(wrapper, state, ())  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(param_fn, values)


def test_validation() -> None:
    with pytest.raises(ValueError, match="u_max"):
        LinearPolicy(2, 1, -1.0)
    with pytest.raises(ValueError, match="angle_indices"):
        RBFPolicy(2, 1, 1.0, angle_indices=(5,))
    pol = RBFPolicy(2, 1, 1.0)
    with pytest.raises(ValueError, match="mean"):
        pol.moments(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    with pytest.raises(ValueError, match="x must"):
        pol(np.zeros(3))
    with pytest.raises(ValueError, match="init_lengthscales"):
        RBFPolicy(2, 1, 1.0, angle_indices=(0,), init_lengthscales=[1.0, 0.0, 0.7])
    with pytest.raises(ValueError, match="init_lengthscales"):
        RBFPolicy(2, 1, 1.0, angle_indices=(0,), init_lengthscales=[1.0, 0.7])


def test_rbf_initial_lengthscales_set_the_kernel() -> None:
    """With PILCO's (1, 0.7, 0.7) length-scales, a control matches a hand-written k(z, c) beta."""
    pol = RBFPolicy(
        2, 2, 1.0, basis=4, angle_indices=(0,), init_lengthscales=[1.0, 0.7, 0.7], seed=2
    )
    x = np.array([0.3, -0.4])
    z = np.array([x[1], np.sin(x[0]), np.cos(x[0])])  # [other, sin, cos]
    c = pol.centres.detach().numpy()
    y = pol.targets.detach().numpy()
    ell = np.array([1.0, 0.7, 0.7])
    K = np.exp(-0.5 * (((c[:, None, :] - c[None, :, :]) / ell) ** 2).sum(-1))
    k = np.exp(-0.5 * (((z - c) / ell) ** 2).sum(-1))
    beta = np.linalg.solve(K + 1e-4 * np.eye(4), y)  # sigma_pi = 0.01
    np.testing.assert_allclose(pol(x), np.sin(k @ beta), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", [LinearPolicy, RBFPolicy])
def test_moment_map_agrees_with_validated_moments(cls: type) -> None:
    """The hoisted ``moment_map`` (private trig/squash path) equals ``moments`` (public path)."""
    kwargs = {"basis": 5, "init_std": 0.5} if cls is RBFPolicy else {}
    pol = cls(4, 1, 10.0, angle_indices=(1,), seed=4, **kwargs)
    fn = pol.moment_map()
    gen = torch.Generator().manual_seed(0)
    for scale in (1e-3, 0.3, 2.0):
        mean = torch.randn(4, generator=gen, dtype=F64)
        A = torch.randn(4, 4, generator=gen, dtype=F64)
        cov = scale * (A @ A.T + 0.1 * torch.eye(4, dtype=F64))
        a, b = fn(mean, cov), pol.moments(mean, cov)
        for x, y in ((a.M, b.M), (a.S, b.S), (a.C, b.C)):
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cls", [LinearPolicy, RBFPolicy])
def test_control_map_equals_forward(cls: type) -> None:
    """The hoisted ``control_map`` (RBF weights solved once) gives ``forward``'s controls and
    parameter gradients on a batch, and a map made after a parameter change follows it."""
    kwargs = {"basis": 5, "init_std": 0.5} if cls is RBFPolicy else {}
    pol = cls(4, 2, [1.0, 3.0], angle_indices=(1, 3), seed=2, **kwargs)
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    params = list(pol.parameters())
    u_map, u_fwd = pol.control_map()(x), pol(x)
    torch.testing.assert_close(u_map, u_fwd, rtol=1e-13, atol=1e-15)
    w = torch.arange(14, dtype=F64).reshape(7, 2)
    for a, b in zip(
        torch.autograd.grad((w * u_map).sum(), params),
        torch.autograd.grad((w * u_fwd).sum(), params),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        params[0].add_(0.3)
    changed = pol.control_map()(x)
    torch.testing.assert_close(changed, pol(x), rtol=1e-13, atol=1e-15)
    assert float((changed - u_map).abs().max()) > 1e-3
