"""Oracles for exact moment matching of SE-ARD GPs (:mod:`gpcontrol.models.moments`).

* a slow loop reference written straight from the thesis equations (1e-12);
* Monte Carlo with 1e6 inputs pushed through the exact GP posterior
  (law of total variance), within 4 standard errors;
* zero input covariance = the ordinary GP prediction = gpytorch's posterior;
* the same assembly with a linear kernel = weight-space Bayesian linear
  regression pushed through a Gaussian input (closed form);
* ``torch.autograd.gradcheck`` in float64 and agreement of gradients with the
  autograd of the reference;
* invalid input covariances and shapes raise ``ValueError``;
* squashed controls (sin and PILCO's gSat): Monte Carlo, pointwise limit, gradcheck.
"""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import pytest
import torch

from gpcontrol.models.moments import (
    GPTerms,
    _assemble,
    _reference_moment_match,
    moment_match,
)
from gpcontrol.models.propagation import squash_moments

f64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module on one torch thread (OpenMP oversubscribes shared 2-core machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_gp(N: int = 20, D: int = 3, E: int = 3, seed: int = 0) -> tuple[GPTerms, torch.Tensor]:
    """A GP conditioned on noisy data from smooth functions; returns terms and targets (E, N)."""
    g = torch.Generator().manual_seed(seed)
    X = 4.0 * torch.rand(N, D, generator=g, dtype=f64) - 2.0
    Wmix = torch.randn(D, E, generator=g, dtype=f64)
    Y = (torch.sin(X @ Wmix) + 0.3 * (X**2) @ torch.ones(D, E, dtype=f64) / D).T  # (E, N)
    Y = Y + 0.05 * torch.randn(E, N, generator=g, dtype=f64)
    ell = 0.7 + 1.3 * torch.rand(E, D, generator=g, dtype=f64)
    sf2 = 0.5 + torch.rand(E, generator=g, dtype=f64)
    sn2 = 0.01 + 0.02 * torch.rand(E, generator=g, dtype=f64)
    K = se_kernel(X, X, ell, sf2) + sn2[:, None, None] * torch.eye(N, dtype=f64)
    L = torch.linalg.cholesky(K)
    beta = torch.cholesky_solve(Y.unsqueeze(-1), L).squeeze(-1)
    W = torch.cholesky_inverse(L)
    gp = GPTerms(X=X, beta=beta, W=W, lengthscales=ell, signal_var=sf2, noise_var=sn2)
    return gp, Y


def se_kernel(A: torch.Tensor, B: torch.Tensor, ell: torch.Tensor, sf2: torch.Tensor):
    """SE-ARD kernel matrices (E, |A|, |B|)."""
    d = (A[None, :, None, :] - B[None, None, :, :]) / ell[:, None, None, :]
    return sf2[:, None, None] * torch.exp(-0.5 * (d**2).sum(-1))


def posterior(gp: GPTerms, x: torch.Tensor):
    """Exact GP posterior mean and latent variance at deterministic inputs x (n, D): (n, E) each."""
    xs = x[None] / gp.lengthscales[:, None, :]  # (E, n, D)
    Xs = gp.X[None] / gp.lengthscales[:, None, :]  # (E, N, D)
    r2 = (xs**2).sum(-1)[..., None] + (Xs**2).sum(-1)[:, None, :] - 2.0 * xs @ Xs.mT
    k = gp.signal_var[:, None, None] * torch.exp(-0.5 * r2.clamp_min(0.0))  # (E, n, N)
    mean = (k @ gp.beta.unsqueeze(-1)).squeeze(-1).T
    var = gp.signal_var[:, None] - ((k @ gp.W) * k).sum(-1)
    return mean, var.T


def random_cov(D: int, scale: float, seed: int, corr: float | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if corr is None:
        A = torch.randn(D, D, generator=g, dtype=f64)
        S = A @ A.T / D + 0.1 * torch.eye(D, dtype=f64)
    else:  # equicorrelated with correlation ``corr``
        S = (1 - corr) * torch.eye(D, dtype=f64) + corr * torch.ones(D, D, dtype=f64)
    return scale**2 * S


COVS = {
    "small": lambda D: random_cov(D, 0.1, 1),
    "large": lambda D: random_cov(D, 2.0, 2),
    "correlated": lambda D: random_cov(D, 1.0, 3, corr=0.99),
}


# ------------------------------------------------------------------ reference
@pytest.mark.parametrize("case", ["zero", "small", "large", "correlated", "singular"])
@pytest.mark.parametrize("include_noise", [False, True])
def test_matches_loop_reference(case: str, include_noise: bool) -> None:
    gp, _ = make_gp(N=15, D=3, E=3)
    D = gp.D
    if case == "zero":
        s = torch.zeros(D, D, dtype=f64)
    elif case == "singular":
        v = torch.tensor([1.0, -0.5, 2.0], dtype=f64)
        s = 0.7 * torch.outer(v, v)
    else:
        s = COVS[case](D)
    m = torch.tensor([0.3, -0.8, 1.1], dtype=f64)
    fast = moment_match(gp, m, s, include_noise=include_noise)
    ref = _reference_moment_match(gp, m, s, include_noise=include_noise)
    for name in ("M", "S", "C"):
        torch.testing.assert_close(getattr(fast, name), getattr(ref, name), rtol=1e-12, atol=1e-12)
    assert torch.equal(fast.S, fast.S.T)


def test_batched_inputs_match_reference_per_element() -> None:
    gp, _ = make_gp(N=10, D=3, E=2, seed=4)
    g = torch.Generator().manual_seed(5)
    m = torch.randn(2, 3, 3, generator=g, dtype=f64)
    A = torch.randn(2, 3, 3, 3, generator=g, dtype=f64)
    s = A @ A.mT
    out = moment_match(gp, m, s)
    assert out.M.shape == (2, 3, 2) and out.S.shape == (2, 3, 2, 2) and out.C.shape == (2, 3, 3, 2)
    for i in range(2):
        for j in range(3):
            ref = _reference_moment_match(gp, m[i, j], s[i, j])
            torch.testing.assert_close(out.M[i, j], ref.M, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(out.S[i, j], ref.S, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(out.C[i, j], ref.C, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("case", sorted(COVS))
def test_monte_carlo_total_variance(case: str) -> None:
    """M, S and s C against 1e6 inputs pushed through the exact posterior (4 standard errors)."""
    gp, _ = make_gp()
    D = gp.D
    m = torch.tensor([0.4, -0.3, 0.2], dtype=f64)
    s = COVS[case](D)
    mom = moment_match(gp, m, s)

    n, chunk = 1_000_000, 25_000
    g = torch.Generator().manual_seed(11)
    Ls = torch.linalg.cholesky(s)
    xs, mus, vs = [], [], []
    for _ in range(n // chunk):
        x = m + torch.randn(chunk, D, generator=g, dtype=f64) @ Ls.T
        mu, var = posterior(gp, x)
        xs.append(x)
        mus.append(mu)
        vs.append(var)
    x, mu, var = torch.cat(xs), torch.cat(mus), torch.cat(vs)

    def check(est: torch.Tensor, samples: torch.Tensor, what: str) -> None:
        se = samples.std(0) / math.sqrt(n)
        z = (est - samples.mean(0)).abs() / se
        assert bool((z < 4.0).all()), f"{case} {what}: z-scores {z}"

    check(mom.M, mu, "M")
    dmu = mu - mu.mean(0)
    # law of total variance: S_ab = E[(mu_a - E mu_a)(mu_b - E mu_b)] + delta_ab E[var_a]
    h = dmu[:, :, None] * dmu[:, None, :] + torch.diag_embed(var)
    check(mom.S, h, "S")
    # cov(x, f) = E[(x - m)(mu(x) - E mu)]; the module returns C = s^{-1} cov(x, f)
    hc = (x - m)[:, :, None] * dmu[:, None, :]
    check(s @ mom.C, hc, "s C")
    # the covariance is a covariance
    assert float(torch.linalg.eigvalsh(mom.S).min()) > 0.0


# ----------------------------------------------------- deterministic input
def test_zero_covariance_is_gp_prediction() -> None:
    gp, _ = make_gp()
    m = torch.tensor([0.5, 1.0, -0.7], dtype=f64, requires_grad=True)
    mom = moment_match(gp, m, torch.zeros(3, 3, dtype=f64), include_noise=False)
    mean, var = posterior(gp, m[None])
    torch.testing.assert_close(mom.M, mean[0], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(mom.S, torch.diag(var[0]), rtol=1e-12, atol=1e-13)
    # s^{-1} cov(x, f) -> d mu / d m at s = 0
    jac = torch.autograd.functional.jacobian(lambda x: posterior(gp, x[None])[0][0], m.detach())
    torch.testing.assert_close(mom.C, jac.T, rtol=1e-12, atol=1e-13)


class _BatchGP(gpytorch.models.ExactGP):
    def __init__(self, X, Y, likelihood, E):
        super().__init__(X, Y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean(batch_shape=torch.Size([E]))
        self.covar_module = gpytorch.kernels.ScaleKernel(
            gpytorch.kernels.RBFKernel(ard_num_dims=X.shape[-1], batch_shape=torch.Size([E])),
            batch_shape=torch.Size([E]),
        )

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def test_zero_covariance_equals_gpytorch_posterior() -> None:
    gp, Y = make_gp(seed=7)
    E, N, D = gp.E, gp.N, gp.D
    lik = gpytorch.likelihoods.GaussianLikelihood(batch_shape=torch.Size([E])).to(f64)
    model = _BatchGP(gp.X.expand(E, N, D), Y, lik, E).to(f64)
    lik.noise = gp.noise_var[:, None]
    model.covar_module.outputscale = gp.signal_var
    model.covar_module.base_kernel.lengthscale = gp.lengthscales[:, None, :]
    model.eval()
    lik.eval()
    m = torch.tensor([0.2, -1.1, 0.9], dtype=f64)
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False):
        f = model(m.expand(E, 1, D))
        y = lik(f)
    for noise, dist in ((False, f), (True, y)):
        mom = moment_match(gp, m, torch.zeros(D, D, dtype=f64), include_noise=noise)
        torch.testing.assert_close(mom.M, dist.mean[:, 0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(mom.S, torch.diag(dist.variance[:, 0]), rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------- linear kernel
def test_linear_kernel_assembly_equals_bayesian_linear_regression() -> None:
    """``_assemble`` with a linear kernel k_a(x, x') = x' P_a x' vs the weight-space closed form.

    f_a(x) = w_a' x, w_a ~ N(0, P_a), y = f + eps. Weight posterior N(mu_a, Sigma_a) gives
    E f_a = mu_a' m, cov(f_a, f_b) = mu_a' s mu_b + [a=b] tr(Sigma_a (s + m m')),
    cov(x, f_a) = s mu_a.
    """
    g = torch.Generator().manual_seed(3)
    N, D, E = 25, 3, 3
    X = torch.randn(N, D, generator=g, dtype=f64)
    Y = (
        torch.randn(E, N, generator=g, dtype=f64)
        + (X @ torch.randn(D, E, generator=g, dtype=f64)).T
    )
    prior = 0.5 + torch.rand(E, D, generator=g, dtype=f64)  # diag of P_a
    sn2 = 0.1 + 0.1 * torch.rand(E, generator=g, dtype=f64)
    m = torch.tensor([0.7, -0.2, 1.5], dtype=f64)
    s = random_cov(D, 0.8, 9)

    # function space: beta, W from the linear kernel, then the generic assembly
    Pm = torch.diag_embed(prior)  # (E, D, D)
    K = X @ Pm @ X.T + sn2[:, None, None] * torch.eye(N, dtype=f64)
    W = torch.linalg.inv(K)
    beta = (W @ Y.unsqueeze(-1)).squeeze(-1)
    q = torch.einsum("nd,ed,d->en", X, prior, m)  # E[x' P_a x_i] = m' P_a x_i
    V = (X[None] * prior[:, None, :]).expand(E, N, D)  # s^{-1} E[(x - m) x' P_a x_i] = P_a x_i
    kxx = prior @ (m**2 + torch.diagonal(s))  # E[x' P_a x] = m' P_a m + tr(P_a s)
    second = s + torch.outer(m, m)

    def pair_sums(ia, ib):
        out = []
        for a, b in zip(ia.tolist(), ib.tolist(), strict=True):
            Q = X @ Pm[a] @ second @ Pm[b] @ X.T  # E[k_a(x, x_i) k_b(x, x_j)]
            val = beta[a] @ Q @ beta[b]
            if a == b:
                val = val - torch.trace(W[a] @ Q)
            out.append(val)
        return torch.stack(out)

    mom = _assemble(beta, sn2, q, V, kxx, pair_sums, include_noise=False)

    # weight space
    Sig = torch.linalg.inv(torch.diag_embed(1.0 / prior) + X.T @ X / sn2[:, None, None])
    mu_w = (Sig @ (X.T @ Y.unsqueeze(-1))).squeeze(-1) / sn2[:, None]  # (E, D)
    M_ref = mu_w @ m
    S_ref = mu_w @ s @ mu_w.T + torch.diag(torch.einsum("eij,ji->e", Sig, second))
    torch.testing.assert_close(mom.M, M_ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(mom.S, S_ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(mom.C, mu_w.T, rtol=1e-10, atol=1e-11)


# ---------------------------------------------------------------- gradients
def _sym(A: torch.Tensor) -> torch.Tensor:
    return A @ A.mT


def test_gradcheck_all_inputs() -> None:
    gp, _ = make_gp(N=6, D=2, E=2, seed=2)
    g = torch.Generator().manual_seed(8)
    m = torch.randn(2, generator=g, dtype=f64, requires_grad=True)
    A = (0.7 * torch.randn(2, 2, generator=g, dtype=f64)).requires_grad_()
    X = gp.X.clone().requires_grad_()
    beta = gp.beta.clone().requires_grad_()
    Wr = (0.3 * torch.randn(2, 6, 6, generator=g, dtype=f64)).requires_grad_()
    log_ell = gp.lengthscales.log().clone().requires_grad_()
    log_sf2 = gp.signal_var.log().clone().requires_grad_()

    def f(m, A, X, beta, Wr, log_ell, log_sf2):
        terms = GPTerms(
            X=X,
            beta=beta,
            W=Wr + Wr.mT,
            lengthscales=log_ell.exp(),
            signal_var=log_sf2.exp(),
            noise_var=gp.noise_var,
        )
        out = moment_match(terms, m, _sym(A))
        return out.M, out.S, out.C

    assert torch.autograd.gradcheck(f, (m, A, X, beta, Wr, log_ell, log_sf2), eps=1e-6, atol=1e-8)


def test_gradcheck_inputs_and_lengthscales_with_fixed_weights() -> None:
    """With beta and W fixed the off-diagonal weights are used in rank-one form: check it."""
    gp, _ = make_gp(N=6, D=2, E=3, seed=4)
    g = torch.Generator().manual_seed(5)
    m = torch.randn(2, generator=g, dtype=f64, requires_grad=True)
    A = (0.7 * torch.randn(2, 2, generator=g, dtype=f64)).requires_grad_()
    X = gp.X.clone().requires_grad_()
    log_ell = gp.lengthscales.log().clone().requires_grad_()

    def f(m, A, X, log_ell):
        terms = GPTerms(X, gp.beta, gp.W, log_ell.exp(), gp.signal_var, gp.noise_var)
        out = moment_match(terms, m, _sym(A))
        return out.M, out.S, out.C

    assert torch.autograd.gradcheck(f, (m, A, X, log_ell), eps=1e-6, atol=1e-8)


def test_gradcheck_batched_input() -> None:
    gp, _ = make_gp(N=5, D=2, E=3, seed=6)
    g = torch.Generator().manual_seed(9)
    m = torch.randn(3, 2, generator=g, dtype=f64, requires_grad=True)
    A = torch.randn(3, 2, 2, generator=g, dtype=f64, requires_grad=True)

    def f(m, A):
        out = moment_match(gp, m, _sym(A), include_noise=True)
        return out.M, out.S, out.C

    assert torch.autograd.gradcheck(f, (m, A), eps=1e-6, atol=1e-8)


def test_gradients_match_reference_autograd() -> None:
    gp0, _ = make_gp(N=12, D=3, E=3, seed=10)
    g = torch.Generator().manual_seed(12)
    wM, wS, wC = (torch.randn(*shape, generator=g, dtype=f64) for shape in ((3,), (3, 3), (3, 3)))
    grads = []
    for fn in (moment_match, _reference_moment_match):
        m = torch.tensor([0.1, 0.5, -0.4], dtype=f64, requires_grad=True)
        s = random_cov(3, 0.9, 13).requires_grad_()
        ell = gp0.lengthscales.clone().requires_grad_()
        beta = gp0.beta.clone().requires_grad_()
        gp = GPTerms(gp0.X, beta, gp0.W, ell, gp0.signal_var, gp0.noise_var)
        out = fn(gp, m, s)
        loss = (wM * out.M).sum() + (wS * out.S).sum() + (wC * out.C).sum()
        grads.append(torch.autograd.grad(loss, (m, s, ell, beta)))
    # s enters symmetrised in moment_match; compare the symmetric parts of d/ds
    sym = lambda G: 0.5 * (G + G.mT)
    grads[0] = (grads[0][0], sym(grads[0][1]), *grads[0][2:])
    grads[1] = (grads[1][0], sym(grads[1][1]), *grads[1][2:])
    for g_fast, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-11)


def test_autograd_twin_of_the_fused_forward_agrees() -> None:
    """``_forward_autograd`` (used for second derivatives) computes what the fused node does."""
    from gpcontrol.models.moments import _constants, _forward_autograd

    gp, _ = make_gp(N=15, D=3, E=3, seed=7)
    m = torch.tensor([[0.3, -0.1, 0.8], [-1.0, 0.4, 0.0]], dtype=f64)
    s = torch.stack([random_cov(3, 0.7, 4), random_cov(3, 1.5, 5)])
    fused = moment_match(gp, m, s)
    M, S, C = _forward_autograd(_constants(gp), m, s, gp.beta, gp.signal_var)
    torch.testing.assert_close(fused.M, M + gp.mean, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(fused.S, S, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(fused.C, C, rtol=1e-13, atol=1e-14)


def test_numpy_node_gradients_equal_autograd_of_the_torch_twin() -> None:
    """The NumPy forward and backward of the fused node against autograd of ``_forward_autograd``.

    Every GP field requires a gradient (the weights in full, not rank-one, form), and a
    second case keeps beta and W fixed (rank-one off-diagonal weights); batched inputs.
    """
    from gpcontrol.models.moments import _constants, _forward_autograd

    gp0, _ = make_gp(N=9, D=3, E=3, seed=11)
    g = torch.Generator().manual_seed(13)
    m0 = torch.randn(2, 3, generator=g, dtype=f64)
    s0 = torch.stack([random_cov(3, 0.8, 14), random_cov(3, 1.3, 15)])
    wM, wS, wC = (torch.randn(2, *sh, generator=g, dtype=f64) for sh in ((3,), (3, 3), (3, 3)))
    for fields_need_grad in (True, False):
        grads = []
        for fused in (True, False):
            m, s = m0.clone().requires_grad_(), s0.clone().requires_grad_()
            X, ell = gp0.X.clone().requires_grad_(), gp0.lengthscales.clone().requires_grad_()
            beta, W, sf2 = gp0.beta.clone(), gp0.W.clone(), gp0.signal_var.clone()
            wrt = [m, s, X, ell]
            if fields_need_grad:
                wrt += [x.requires_grad_() for x in (beta, W, sf2)]
            gp = GPTerms(X, beta, W, ell, sf2, gp0.noise_var)
            if fused:
                out = moment_match(gp, m, s)
                M, S, C = out.M - gp.mean, out.S, out.C
            else:
                M, S, C = _forward_autograd(_constants(gp), m, s, gp.beta, gp.signal_var)
            loss = (wM * M).sum() + (wS * S).sum() + (wC * C).sum()
            grads.append(torch.autograd.grad(loss, wrt))
        for g_np, g_twin in zip(*grads, strict=True):
            torch.testing.assert_close(g_np, g_twin, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows", [1, 4, 11])
@pytest.mark.parametrize("weights_need_grad", [False, True])
def test_row_blocked_pair_sums_equal_vectorised(monkeypatch, rows, weights_need_grad) -> None:
    """The row-blocked pair sums (large N) against the vectorised ones (small N): values
    and every gradient to 1e-12, batched, with blocks of ``rows`` rows of Q (the diagonal
    pairs' upper blocks only, even for a W that is not exactly symmetric); and gradcheck."""
    import gpcontrol.models.moments as mom

    gp0, _ = make_gp(N=11, D=3, E=3, seed=17)
    g = torch.Generator().manual_seed(18)
    m0 = torch.randn(2, 3, generator=g, dtype=f64)
    s0 = torch.stack([random_cov(3, 0.6, 19), random_cov(3, 1.2, 20)])
    wM, wS, wC = (torch.randn(2, *sh, generator=g, dtype=f64) for sh in ((3,), (3, 3), (3, 3)))
    skew = 0.01 * torch.randn(3, 11, 11, generator=g, dtype=f64)
    W0 = gp0.W + skew - skew.mT  # not symmetric: only its symmetric part may count

    def run():
        m, s = m0.clone().requires_grad_(), s0.clone().requires_grad_()
        X, ell = gp0.X.clone().requires_grad_(), gp0.lengthscales.clone().requires_grad_()
        beta, W = gp0.beta.clone(), W0.clone()
        wrt = [m, s, X, ell] + (
            [beta.requires_grad_(), W.requires_grad_()] if weights_need_grad else []
        )
        out = moment_match(GPTerms(X, beta, W, ell, gp0.signal_var, gp0.noise_var), m, s)
        loss = (wM * out.M).sum() + (wS * out.S).sum() + (wC * out.C).sum()
        return (out.M, out.S, out.C), torch.autograd.grad(loss, wrt)

    vec = run()
    monkeypatch.setattr(mom, "_VECTORISE_BYTES", 0)
    monkeypatch.setattr(mom, "_CHUNK_BYTES", 8 * 11 * rows)
    blocked = run()
    for a, b in zip((*vec[0], *vec[1]), (*blocked[0], *blocked[1]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    if rows == 4:
        gp = GPTerms(gp0.X[:6], gp0.beta[:, :6], gp0.W[:, :6, :6], gp0.lengthscales,
                     gp0.signal_var, gp0.noise_var)  # fmt: skip
        X = gp.X.clone().requires_grad_()
        beta = gp.beta.clone().requires_grad_(weights_need_grad)

        def f(m, A, X, beta):
            terms = GPTerms(X, beta, gp.W, gp.lengthscales, gp.signal_var, gp.noise_var)
            out = moment_match(terms, m, _sym(A))
            return out.M, out.S, out.C

        args = (m0.clone().requires_grad_(), s0.clone().requires_grad_(), X, beta)
        assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-8)


def test_gradgradcheck_second_derivatives() -> None:
    """Second derivatives (e.g. for Newton steps on a policy) are exact, not truncated."""
    gp, _ = make_gp(N=5, D=2, E=2, seed=3)
    g = torch.Generator().manual_seed(4)
    m = torch.randn(2, generator=g, dtype=f64, requires_grad=True)
    A = torch.randn(2, 2, generator=g, dtype=f64, requires_grad=True)
    beta = gp.beta.clone().requires_grad_()

    def f(m, A, beta):
        terms = GPTerms(gp.X, beta, gp.W, gp.lengthscales, gp.signal_var, gp.noise_var)
        out = moment_match(terms, m, _sym(A))
        return out.M, out.S, out.C

    assert torch.autograd.gradgradcheck(f, (m, A, beta), eps=1e-6, atol=1e-7)


# ------------------------------------------------------------------- errors
def test_non_psd_covariance_raises() -> None:
    gp, _ = make_gp()
    m = torch.zeros(3, dtype=f64)
    bad = torch.diag(torch.tensor([1.0, -0.5, 0.2], dtype=f64))
    with pytest.raises(ValueError, match="positive semi-definite"):
        moment_match(gp, m, bad)
    asym = torch.eye(3, dtype=f64)
    asym[0, 1] = 0.5
    with pytest.raises(ValueError, match="symmetric"):
        moment_match(gp, m, asym)
    nan = torch.eye(3, dtype=f64)
    nan[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        moment_match(gp, m, nan)


def test_non_finite_beliefs_inside_a_horizon() -> None:
    """Without validation (a horizon's inner steps), a NaN covariance is still rejected by the
    factorisation, and an infinite mean gives non-finite moments without NumPy warnings
    (RuntimeWarnings are errors in this suite); the horizon's batched check reports those."""
    from gpcontrol.models.moments import _moment_match

    gp, _ = make_gp()
    s = 0.1 * torch.eye(3, dtype=f64)
    s_nan = s.clone()
    s_nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="positive semi-definite"):
        _moment_match(gp, torch.zeros(3, dtype=f64), s_nan)
    m = torch.tensor([float("inf"), 0.0, 0.0], dtype=f64, requires_grad=True)
    out = _moment_match(gp, m, s.requires_grad_())
    assert not bool(torch.isfinite(out.S).all())
    out.S.sum().backward()


@pytest.mark.parametrize(
    "m, s",
    [
        (np.zeros(2), np.eye(2)),
        (np.zeros(3), np.eye(2)),
        (np.zeros((2, 3)), np.eye(3)),
        (np.array([0.0, np.inf, 0.0]), np.eye(3)),
    ],
)
def test_bad_shapes_raise(m, s) -> None:
    gp, _ = make_gp()
    with pytest.raises(ValueError, match=r"\bm\b|\bs\b"):
        moment_match(gp, m, s)


def test_bad_terms_raise() -> None:
    gp, _ = make_gp(N=6, D=2, E=2)
    with pytest.raises(ValueError, match="W must have shape"):
        GPTerms(gp.X, gp.beta, gp.W[:, :5], gp.lengthscales, gp.signal_var, gp.noise_var)
    with pytest.raises(ValueError, match="lengthscales must be positive"):
        GPTerms(gp.X, gp.beta, gp.W, -gp.lengthscales, gp.signal_var, gp.noise_var)
    with pytest.raises(TypeError, match="GPTerms"):
        moment_match({"X": gp.X}, np.zeros(2), np.eye(2))  # type: ignore[arg-type]


def test_numpy_inputs_accepted() -> None:
    gp, _ = make_gp(N=6, D=2, E=2)
    a = moment_match(gp, np.array([0.1, 0.2]), 0.5 * np.eye(2))
    b = moment_match(gp, torch.tensor([0.1, 0.2], dtype=f64), 0.5 * torch.eye(2, dtype=f64))
    assert a.M.dtype == f64
    torch.testing.assert_close(a.S, b.S, rtol=0, atol=0)


# ------------------------------------------------------------------ squashing
SQUASH = {
    "sin": lambda v: torch.sin(v),
    "gsat": lambda v: (9.0 * torch.sin(v) + torch.sin(3.0 * v)) / 8.0,
}


@pytest.mark.parametrize("kind", sorted(SQUASH))
@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_squash_moments_monte_carlo(kind: str, scale: float) -> None:
    """M, S and s C of u = u_max g(u_tilde) against 1e6 samples (4 standard errors)."""
    mean = torch.tensor([0.4, -1.2], dtype=f64)
    cov = scale**2 * torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=f64)
    u_max = torch.tensor([2.0, 0.5], dtype=f64)
    mom = squash_moments(mean, cov, u_max, kind=kind)
    n = 1_000_000
    g = torch.Generator().manual_seed(21)
    ut = mean + torch.randn(n, 2, generator=g, dtype=f64) @ torch.linalg.cholesky(cov).T
    u = u_max * SQUASH[kind](ut)
    du = u - u.mean(0)
    for est, samples in (
        (mom.M, u),
        (mom.S, du[:, :, None] * du[:, None, :]),
        (cov @ mom.C, (ut - mean)[:, :, None] * du[:, None, :]),
    ):
        z = (est - samples.mean(0)).abs() / (samples.std(0) / math.sqrt(n))
        assert bool((z < 4.0).all()), z


@pytest.mark.parametrize("kind", sorted(SQUASH))
def test_squash_zero_covariance_is_pointwise(kind: str) -> None:
    mean = torch.tensor([0.7, 2.5], dtype=f64, requires_grad=True)
    u_max = torch.tensor([1.5, 3.0], dtype=f64)
    mom = squash_moments(mean, torch.zeros(2, 2, dtype=f64), u_max, kind=kind)
    torch.testing.assert_close(mom.M, u_max * SQUASH[kind](mean), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(mom.S, torch.zeros(2, 2, dtype=f64), rtol=0, atol=1e-14)
    jac = torch.autograd.functional.jacobian(lambda v: u_max * SQUASH[kind](v), mean.detach())
    torch.testing.assert_close(mom.C, jac.T, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", sorted(SQUASH))
def test_squash_gradcheck(kind: str) -> None:
    mean = torch.tensor([0.3, -0.9], dtype=f64, requires_grad=True)
    A = torch.tensor([[0.5, 0.0], [0.3, 0.8]], dtype=f64, requires_grad=True)

    def f(mean, A):
        out = squash_moments(mean, A @ A.T, torch.tensor([2.0, 1.0], dtype=f64), kind=kind)
        return out.M, out.S, out.C

    assert torch.autograd.gradcheck(f, (mean, A), eps=1e-6, atol=1e-8)


def test_squash_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind"):
        squash_moments(np.zeros(1), np.eye(1), 1.0, kind="tanh")
    with pytest.raises(ValueError, match="u_max"):
        squash_moments(np.zeros(2), np.eye(2), [1.0, -1.0])
    with pytest.raises(ValueError, match="positive semi-definite"):
        squash_moments(np.zeros(2), -np.eye(2), 1.0)


# ------------------------------------------------------- horizon (fast path)
class _TermsModel:
    """A dynamics model made of GP terms: n = 2 states (no angles), m = 1 control."""

    n, m = 2, 1
    angle_indices: tuple[int, ...] = ()
    other_indices: tuple[int, ...] = (0, 1)

    def __init__(self, gp: GPTerms) -> None:
        self.gp = gp

    def terms(self) -> GPTerms:
        return self.gp

    def predict(self, inputs, *, include_noise: bool = False):
        mean, var = posterior(self.gp, torch.as_tensor(inputs, dtype=f64))
        return mean, var + self.gp.noise_var if include_noise else var


def test_horizon_equals_validated_steps_and_gradcheck() -> None:
    """propagate_horizon (validated once) = T validated ``propagate`` calls; gradcheck in K."""
    from gpcontrol.models.propagation import linear_policy_moments, propagate, propagate_horizon

    gp, _ = make_gp(N=8, D=3, E=2, seed=5)
    model = _TermsModel(gp)
    mu0 = torch.tensor([0.2, -0.3], dtype=f64)
    S0 = torch.tensor([[0.1, 0.02], [0.02, 0.05]], dtype=f64)
    K = torch.tensor([[0.4, -0.2]], dtype=f64, requires_grad=True)
    k = torch.tensor([0.1], dtype=f64)
    policy = linear_policy_moments(K, k)
    traj = propagate_horizon(model, mu0, S0, policy, 3)
    mu, S = mu0, S0
    for t in range(3):
        mu, S = propagate(model, mu, S, policy)
        torch.testing.assert_close(traj.mean[t + 1], mu, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(traj.cov[t + 1], S, rtol=1e-14, atol=1e-15)

    def f(K):
        tr = propagate_horizon(model, mu0, S0, linear_policy_moments(K, k), 3)
        return tr.mean, tr.cov

    assert torch.autograd.gradcheck(f, (K,), eps=1e-6, atol=1e-8)


def test_horizon_reports_indefinite_belief() -> None:
    """A policy whose control 'covariance' is indefinite makes a clear ValueError, never NaN."""
    from gpcontrol.models.propagation import ControlMoments, propagate_horizon

    gp, _ = make_gp(N=8, D=3, E=2, seed=5)

    def bad_policy(mean, cov):
        return ControlMoments(
            M=torch.zeros(1, dtype=f64),
            S=torch.full((1, 1), -50.0, dtype=f64),
            C=torch.zeros(2, 1, dtype=f64),
        )

    with pytest.raises(ValueError, match="positive semi-definite"):
        propagate_horizon(
            _TermsModel(gp), torch.zeros(2, dtype=f64), 0.1 * torch.eye(2), bad_policy, 3
        )


# ------------------------------------------- fused trig features (one node)
TRIG_PLANS = {
    # (n, angle positions, z = phi[idx] with phi = [x, sin x_ang, cos x_ang])
    "dynamics [x, u], one angle": (5, (1,), (0, 2, 3, 5, 6, 4)),
    "policy features, two angles": (4, (0, 2), (1, 3, 4, 5, 6, 7)),
    "sine squashing of two controls": (2, (0, 1), (2, 3)),
    "no angles, permuted": (3, (), (2, 0, 1)),
}


def _composed_trig(mu: torch.Tensor, S: torch.Tensor, n: int, ang, idx):
    """The composed path: public trig_moments, then rows / columns idx and cov(x, z)."""
    from gpcontrol.gaussian import selection_matrix, trig_moments

    L = selection_matrix(list(ang), n) if ang else np.zeros((0, n))
    mean_a, cov_a = trig_moments(mu, S, L)
    i = torch.tensor(idx)
    return mean_a[i], cov_a[i][:, i], cov_a[:n, i]


@pytest.mark.parametrize("plan_name", list(TRIG_PLANS))
@pytest.mark.parametrize("scale", [1e-6, 0.3, 3.0])
def test_fused_trig_features_equal_composed_path(plan_name: str, scale: float) -> None:
    """Values (1e-12) and gradients (1e-12) of the fused node = autograd of trig_moments."""
    from gpcontrol.models._fused_trig import trig_features, trig_plan

    n, ang, idx = TRIG_PLANS[plan_name]
    g = torch.Generator().manual_seed(len(idx))
    mu0 = 2.0 * torch.randn(n, generator=g, dtype=f64)
    S0 = random_cov(n, scale, seed=n, corr=None)
    weights = [
        torch.randn(shape, generator=g, dtype=f64) for shape in ((len(idx),), (len(idx),) * 2)
    ]
    weights.append(torch.randn(n, len(idx), generator=g, dtype=f64))

    def run(fused: bool):
        mu, S = mu0.clone().requires_grad_(), S0.clone().requires_grad_()
        if fused:
            mz, cz, J = trig_features(mu, S, trig_plan(n, ang, idx))
            cxz = S @ J  # cov(x, z) = Sigma J
        else:
            mz, cz, cxz = _composed_trig(mu, S, n, ang, idx)
        value = sum((w * o).sum() for w, o in zip(weights, (mz, cz, cxz), strict=True))
        grads = torch.autograd.grad(value, (mu, S))
        return (mz, cz, cxz), (grads[0], 0.5 * (grads[1] + grads[1].T))

    (outs_f, grads_f), (outs_c, grads_c) = run(True), run(False)
    for a, b in zip(outs_f + grads_f, outs_c + grads_c, strict=True):
        tol = 1e-12 * max(1.0, float(b.detach().abs().max()))
        torch.testing.assert_close(a, b, rtol=1e-12, atol=tol)


@pytest.mark.parametrize("plan_name", list(TRIG_PLANS))
def test_fused_trig_features_gradcheck(plan_name: str) -> None:
    """gradcheck and gradgradcheck (float64) of the hand-written backward, any square S."""
    from gpcontrol.models._fused_trig import trig_features, trig_plan

    n, ang, idx = TRIG_PLANS[plan_name]
    plan = trig_plan(n, ang, idx)
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(n, generator=g, dtype=f64, requires_grad=True)
    S = random_cov(n, 0.7, seed=4).requires_grad_()

    def f(mu, S):
        return trig_features(mu, S, plan)

    assert torch.autograd.gradcheck(f, (mu, S), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(f, (mu, S), eps=1e-6, atol=1e-7)


class _AngleTermsModel(_TermsModel):
    """n = 2 states, the second an angle entering through (sin, cos), m = 1 control: D = 4."""

    angle_indices: tuple[int, ...] = (1,)
    other_indices: tuple[int, ...] = (0,)


def _composed_step(model, mu, Sigma, u):
    """One moment-matching step from public pieces: joint, trig_moments, moment_match."""
    from gpcontrol.gaussian import trig_moments

    n = model.n
    Sxu = Sigma @ u.C
    m_xu = torch.cat([mu, u.M])
    S_xu = torch.cat([torch.cat([Sigma, Sxu], 1), torch.cat([Sxu.T, u.S], 1)])
    mean_a, cov_a = trig_moments(m_xu, S_xu, [[0.0, 1.0, 0.0]])  # [x0, x1, u, sin, cos]
    i = torch.tensor([0, 3, 4, 2])
    gm = moment_match(model.terms(), mean_a[i], cov_a[i][:, i])
    Sxd = cov_a[:n, i] @ gm.C
    return mu + gm.M, Sigma + gm.S + Sxd + Sxd.T


def test_fused_horizon_equals_composed_steps_with_angles_and_rbf_policy() -> None:
    """Horizon with an angle and a squashed RBF policy (all fused nodes) = composed steps.

    The reference uses only public, validated functions (``RBFPolicy.moments``,
    ``trig_moments``, ``moment_match``); beliefs to 1e-12 and the policy gradient of
    the summed covariance traces to 1e-10.
    """
    from gpcontrol.models.propagation import propagate_horizon
    from gpcontrol.policies.rbf import RBFPolicy

    gp, _ = make_gp(N=12, D=4, E=2, seed=8)
    model = _AngleTermsModel(gp)
    policy = RBFPolicy(2, 1, 3.0, basis=4, angle_indices=(1,), init_std=0.5, seed=2)
    mu0 = torch.tensor([0.2, 0.4], dtype=f64)
    S0 = torch.tensor([[0.05, 0.01], [0.01, 0.08]], dtype=f64)
    T = 5

    def objective(fused: bool):
        policy.zero_grad()
        if fused:
            traj = propagate_horizon(model, mu0, S0, policy.moment_map(), T)
            means, covs = traj.mean, traj.cov
        else:
            mu, Sigma, ms, cs = mu0, S0, [mu0], [S0]
            for _ in range(T):
                mu, Sigma = _composed_step(model, mu, Sigma, policy.moments(mu, Sigma))
                ms.append(mu)
                cs.append(Sigma)
            means, covs = torch.stack(ms), torch.stack(cs)
        torch.diagonal(covs, dim1=-2, dim2=-1).sum().backward()
        grads = [p.grad.clone() for p in policy.parameters()]
        return means.detach(), covs.detach(), grads

    m_f, c_f, g_f = objective(True)
    m_c, c_c, g_c = objective(False)
    torch.testing.assert_close(m_f, m_c, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_f, c_c, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_f, g_c, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
