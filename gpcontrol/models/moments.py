r"""Exact moment matching of a multi-output SE-ARD Gaussian process at a Gaussian input.

Problem. ``E`` independent GPs :math:`f_a,\ a = 1..E`, share the training (or
inducing) inputs :math:`X = [x_1..x_N]^\top \in \mathbb R^{N\times D}`; GP
:math:`a` has the squared-exponential ARD kernel

.. math::

    k_a(x, x') = \alpha_a^2 \exp\!\big(-\tfrac12 (x-x')^\top \Lambda_a^{-1} (x-x')\big),
    \qquad \Lambda_a = \operatorname{diag}(\ell_{a,1}^2, \dots, \ell_{a,D}^2),

and its posterior at a deterministic input is
:math:`\mu_a(x) = k_a(x, X)\,\beta_a`,
:math:`\sigma_a^2(x) = k_a(x,x) - k_a(x,X)\,W_a\,k_a(X,x)`; for an exact GP
:math:`\beta_a = (K_a + \sigma_{\varepsilon,a}^2 I)^{-1} y_a` and
:math:`W_a = (K_a + \sigma_{\varepsilon,a}^2 I)^{-1}`. Given a Gaussian input
:math:`x \sim \mathcal N(m, s)`, this module returns the exact mean
:math:`M \in \mathbb R^E`, covariance :math:`S \in \mathbb R^{E\times E}` and
input-output covariance of the (non-Gaussian) predictive distribution
:math:`p(f(x)) = \int p(f(x)\mid x)\,\mathcal N(x; m, s)\,dx`.

With :math:`\nu_i = x_i - m` (Deisenroth, *Efficient reinforcement learning
using Gaussian processes*, KIT 2010, Sec. 2.3; Deisenroth, Fox & Rasmussen,
*Gaussian processes for data-efficient learning in robotics and control*,
IEEE TPAMI 37(2), 2015, Sec. 4 and Appendix; PILCO's ``gp0``/``gp2``):

.. math::

    q_{ai} &= \mathbb E[k_a(x, x_i)]
           = \alpha_a^2\,|s\Lambda_a^{-1} + I|^{-1/2}
             \exp\!\big(-\tfrac12 \nu_i^\top (s + \Lambda_a)^{-1} \nu_i\big),
    \qquad M_a = \beta_a^\top q_a, \\
    C_{\cdot a} &= s^{-1}\operatorname{cov}(x, f_a)
           = \textstyle\sum_i \beta_{ai}\, q_{ai}\, (s + \Lambda_a)^{-1} \nu_i, \\
    Q^{ab}_{ij} &= \mathbb E[k_a(x, x_i)\,k_b(x, x_j)]
           = \frac{k_a(x_i, m)\,k_b(x_j, m)}{\sqrt{|R_{ab}|}}
             \exp\!\big(\tfrac12 z_{ij}^\top R_{ab}^{-1} s\, z_{ij}\big),
    \quad R_{ab} = s(\Lambda_a^{-1} + \Lambda_b^{-1}) + I,\
    z_{ij} = \Lambda_a^{-1}\nu_i + \Lambda_b^{-1}\nu_j, \\
    S_{ab} &= \beta_a^\top Q^{ab} \beta_b - M_a M_b
           + \delta_{ab}\big(\alpha_a^2 - \operatorname{tr}(W_a Q^{aa})\big)
           \ [+\ \delta_{ab}\,\sigma_{\varepsilon,a}^2 \text{ if the noise is included}].

(TPAMI 2015 eqs. (14)-(22) and the appendix; thesis eqs. (2.34)-(2.56)); a
constant prior mean :math:`c_a` (``GPTerms.mean``) is added to :math:`M_a`. The
diagonal term :math:`\alpha_a^2 - \operatorname{tr}(W_a Q^{aa}) = \mathbb E_x[\sigma_a^2(x)]`
is the expected model uncertainty, so :math:`S` is the law of total variance
:math:`\mathbb E_x[\operatorname{cov}(f\mid x)] + \operatorname{cov}_x(\mu(x))`
of the *latent* function (PILCO's convention); the observation noise
:math:`\sigma_{\varepsilon,a}^2` is added only with ``include_noise=True``.

Numerics. Every determinant and solve is written through the symmetric
positive-definite matrices :math:`I + P^{1/2} s P^{1/2}` (``P`` diagonal,
:math:`P = \Lambda_a^{-1}` or :math:`\Lambda_a^{-1} + \Lambda_b^{-1}`) and a
Cholesky factor, and :math:`Q` is assembled in log space; only the
:math:`E(E+1)/2` output pairs :math:`a \le b` are computed. Cost
:math:`O(E^2 N^2 D)` in one batched computation without Python loops over data
points or outputs; everything is differentiable by torch autograd with respect
to :math:`m`, :math:`s` and every field of :class:`GPTerms`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gpcontrol.gaussian import check_covariance

__all__ = ["GPTerms", "GPMoments", "moment_match"]


def _as_tensor(name: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from exc
    if not (t.is_floating_point()):
        t = t.to(torch.float64)
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


@dataclasses.dataclass(frozen=True)
class GPTerms:
    r"""What moment matching needs from a trained multi-output SE-ARD GP.

    The posterior of output :math:`a` at a deterministic input is
    :math:`\mu_a(x) = k_a(x, X)\beta_a`,
    :math:`\sigma_a^2(x) = \alpha_a^2 - k_a(x, X) W_a k_a(X, x)`, with
    :math:`k_a(x, x') = \alpha_a^2\exp(-\frac12\sum_d (x_d - x'_d)^2/\ell_{ad}^2)`.

    For an exact GP :math:`\beta_a = (K_a + \sigma_{\varepsilon,a}^2 I)^{-1}y_a`
    and :math:`W_a = (K_a + \sigma_{\varepsilon,a}^2 I)^{-1}` (computed once from
    a Cholesky factor, e.g. :func:`torch.cholesky_inverse`, because the
    expected variance needs :math:`\operatorname{tr}(W_a Q^{aa})` and an
    :math:`O(N^2)` trace is the point of precomputing it); a sparse GP supplies
    its own :math:`\beta` and :math:`W` over the inducing inputs.

    All fields are float64 tensors (NumPy input is converted); gradients flow
    through any of them.

    Parameters
    ----------
    X : Tensor, shape (N, D)
        Training (or inducing) inputs, shared by all outputs.
    beta : Tensor, shape (E, N)
        Weights of the posterior mean.
    W : Tensor, shape (E, N, N)
        Symmetric matrices of the posterior variance.
    lengthscales : Tensor, shape (E, D)
        :math:`\ell_{ad} > 0`.
    signal_var : Tensor, shape (E,)
        :math:`\alpha_a^2 > 0`.
    noise_var : Tensor, shape (E,)
        :math:`\sigma_{\varepsilon,a}^2 \ge 0` (used only with ``include_noise``).
    mean : Tensor, shape (E,), optional
        Constant prior mean :math:`c_a` added to every posterior mean
        (:math:`\mu_a(x) = c_a + k_a(x, X)\beta_a`, with :math:`\beta_a`
        computed from :math:`y_a - c_a`); default zero.
    """

    X: Tensor
    beta: Tensor
    W: Tensor
    lengthscales: Tensor
    signal_var: Tensor
    noise_var: Tensor
    mean: Tensor = None  # type: ignore[assignment]  # None -> zeros(E) in __post_init__

    def __post_init__(self) -> None:
        if self.mean is None:
            object.__setattr__(self, "mean", torch.zeros(self.beta.shape[0], dtype=torch.float64))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _as_tensor(f.name, getattr(self, f.name)))
        X, beta = self.X, self.beta
        if X.ndim != 2:
            raise ValueError(f"X must have shape (N, D), got {tuple(X.shape)}")
        N, D = X.shape
        if beta.ndim != 2 or beta.shape[1] != N:
            raise ValueError(f"beta must have shape (E, {N}), got {tuple(beta.shape)}")
        E = beta.shape[0]
        expected = {
            "W": (E, N, N),
            "lengthscales": (E, D),
            "signal_var": (E,),
            "noise_var": (E,),
            "mean": (E,),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"{name} must have shape {shape}, got {got}")
        if bool((self.lengthscales.detach() <= 0).any()):
            raise ValueError("lengthscales must be positive")
        if bool((self.signal_var.detach() <= 0).any()):
            raise ValueError("signal_var must be positive")
        if bool((self.noise_var.detach() < 0).any()):
            raise ValueError("noise_var must be non-negative")

    @property
    def N(self) -> int:  # noqa: N802 - math name
        """Number of training (inducing) inputs."""
        return int(self.X.shape[0])

    @property
    def D(self) -> int:  # noqa: N802 - math name
        """Input dimension."""
        return int(self.X.shape[1])

    @property
    def E(self) -> int:  # noqa: N802 - math name
        """Number of outputs."""
        return int(self.beta.shape[0])


@dataclasses.dataclass(frozen=True)
class GPMoments:
    r"""Moments of :math:`f(x)` for :math:`x \sim \mathcal N(m, s)`.

    Attributes
    ----------
    M : Tensor, shape (..., E)
        :math:`\mathbb E[f(x)]`.
    S : Tensor, shape (..., E, E)
        :math:`\operatorname{cov}[f(x)]`, symmetric, with cross-covariances
        between outputs; latent function unless ``include_noise=True``.
    C : Tensor, shape (..., D, E)
        :math:`s^{-1}\operatorname{cov}(x, f(x))`; the input-output covariance
        itself is ``s @ C``. At ``s = 0`` it is the Jacobian
        :math:`\partial \mu / \partial x` transposed, evaluated at ``m``.
    """

    M: Tensor
    S: Tensor
    C: Tensor


def _check_input(gp: GPTerms, m: Any, s: Any) -> tuple[Tensor, Tensor]:
    """Validate ``m (..., D)`` and a symmetric PSD ``s (..., D, D)``; returns ``s`` symmetrised."""
    m = _as_tensor("m", m)
    D = gp.D
    if m.ndim < 1 or m.shape[-1] != D:
        raise ValueError(f"m must have shape (..., {D}), got {tuple(m.shape)}")
    s = check_covariance("s", s, D)
    if s.shape != (*m.shape, D):
        raise ValueError(f"s must have shape {(*m.shape, D)} to match m, got {tuple(s.shape)}")
    return m, s


def moment_match(
    gp: GPTerms,
    m: Any,
    s: Any,
    *,
    include_noise: bool = False,
) -> GPMoments:
    r"""Exact predictive moments of a multi-output SE-ARD GP at a Gaussian input.

    .. math::

        M_a = \beta_a^\top q_a,\qquad
        S_{ab} = \beta_a^\top Q^{ab}\beta_b - M_a M_b
                 + \delta_{ab}\big(\alpha_a^2 - \operatorname{tr}(W_a Q^{aa})
                 [+ \sigma_{\varepsilon,a}^2]\big),\qquad
        C_{\cdot a} = \textstyle\sum_i \beta_{ai}\,q_{ai}(s + \Lambda_a)^{-1}\nu_i

    (Deisenroth, Fox & Rasmussen, TPAMI 2015, eqs. (14)-(22); Deisenroth,
    thesis 2010, Sec. 2.3.2-2.3.3; :math:`q`, :math:`Q` as in the module
    docstring). ``S`` is the covariance of the latent function values
    (expected model uncertainty plus the spread of the mean, PILCO's
    ``gp0``/``gp2`` convention), plus the observation noise on its diagonal
    when ``include_noise`` is true. ``C`` is
    :math:`s^{-1}\operatorname{cov}(x, f(x))`, not the covariance itself.

    Implementation: the thesis expressions are rewritten through
    :math:`B_a = \Lambda_a^{-1/2} s \Lambda_a^{-1/2}`,
    :math:`B_{ab} = P_{ab}^{1/2} s P_{ab}^{1/2}` with
    :math:`P_{ab} = \Lambda_a^{-1} + \Lambda_b^{-1}`, using
    :math:`(s + \Lambda_a)^{-1} = \Lambda_a^{-1/2}(B_a + I)^{-1}\Lambda_a^{-1/2}`,
    :math:`|R_{ab}| = |B_{ab} + I|` and
    :math:`R_{ab}^{-1}s = P_{ab}^{-1/2}\big(I - (B_{ab} + I)^{-1}\big)P_{ab}^{-1/2}`,
    so every factorisation is a Cholesky factor of a symmetric positive-definite
    matrix (no jitter is ever needed) and :math:`Q` is exponentiated from log
    space. The reductions :math:`\beta_a^\top Q^{ab}\beta_b` and
    :math:`\operatorname{tr}(W_a Q^{aa})` are fused with :math:`Q` in one
    autograd function whose backward pass costs two batched
    :math:`N\times N\times D` products per output pair; :math:`Q` is never
    returned. The whole exponent :math:`\log Q` comes from one matrix product
    of augmented factors, and the weights
    :math:`\beta_a\beta_b^\top - [a=b]W_a` are cached on ``gp`` when they need
    no gradient, so that a horizon does not rebuild them at every step.

    Parameters
    ----------
    gp : GPTerms
        The trained GP (see :meth:`gpcontrol.models.GPDynamics.terms`).
    m : Tensor, shape (..., D)
        Mean of the Gaussian input.
    s : Tensor, shape (..., D, D)
        Covariance of the input; symmetric positive semi-definite (``s = 0``
        gives the ordinary GP prediction at ``m``).
    include_noise : bool
        Add :math:`\sigma_{\varepsilon,a}^2` to the diagonal of ``S``.

    Returns
    -------
    GPMoments
        ``M (..., E)``, ``S (..., E, E)``, ``C (..., D, E)``.

    Raises
    ------
    ValueError
        On shapes that do not match ``gp``, non-finite values, or an ``s``
        that is not symmetric positive semi-definite.

    Notes
    -----
    Twice differentiable: with ``create_graph=True`` the fused backward pass
    recomputes :math:`Q` from its inputs so that second derivatives are exact.

    Examples
    --------
    >>> import torch
    >>> X = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    >>> gp = GPTerms(X=X, beta=torch.ones(1, 5, dtype=torch.float64),
    ...              W=0.1 * torch.eye(5, dtype=torch.float64)[None],
    ...              lengthscales=torch.ones(1, 1, dtype=torch.float64),
    ...              signal_var=torch.ones(1, dtype=torch.float64),
    ...              noise_var=torch.full((1,), 0.01, dtype=torch.float64))
    >>> mom = moment_match(gp, torch.zeros(1), 0.5 * torch.eye(1))
    >>> mom.M.shape, mom.S.shape, mom.C.shape
    (torch.Size([1]), torch.Size([1, 1]), torch.Size([1, 1]))
    """
    if not isinstance(gp, GPTerms):
        raise TypeError(f"gp must be a GPTerms, got {type(gp).__name__}")
    m, s = _check_input(gp, m, s)
    q, V = _first_moments(gp, m, s)
    kxx = gp.signal_var.expand(*m.shape[:-1], gp.E)
    ea, eb, A, B = _pair_exponents(gp, m, s)
    batch = ea.shape[:-2]
    P, N, D = A.shape[-3:]

    def pair_sums(ia: Tensor, ib: Tensor) -> Tensor:
        Aa, Bb = _augmented_factors(ea, eb, A, B)
        out = _ExpDot.apply(
            Aa.reshape(-1, P, N, D + 2), Bb.reshape(-1, P, N, D + 2), _pair_weights(gp)
        )
        return out.reshape(*batch, P)

    out = _assemble(gp.beta, gp.noise_var, q, V, kxx, pair_sums, include_noise)
    return GPMoments(M=out.M + gp.mean, S=out.S, C=out.C)


def _pairs(E: int) -> tuple[Tensor, Tensor]:
    """Output pairs ``a <= b``: the ``E`` diagonal pairs first, then ``a < b`` row by row."""
    iu, ju = torch.triu_indices(E, E, offset=1)
    diag = torch.arange(E)
    return torch.cat([diag, iu]), torch.cat([diag, ju])


def _first_moments(gp: GPTerms, m: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    r"""``q (..., E, N)`` and ``V = q (s + Lambda)^{-1} nu`` ``(..., E, N, D)``."""
    inv_ell = 1.0 / gp.lengthscales  # (E, D)
    eye = torch.eye(gp.D, dtype=torch.float64)
    nu = gp.X - m.unsqueeze(-2)  # (..., N, D)
    w = nu.unsqueeze(-3) * inv_ell[:, None, :]  # Lambda^{-1/2} nu, (..., E, N, D)
    Ba = inv_ell[:, :, None] * s.unsqueeze(-3) * inv_ell[:, None, :]  # (..., E, D, D)
    La = torch.linalg.cholesky(Ba + eye)
    t = w @ torch.cholesky_inverse(La)  # w (B + I)^{-1}, rows of (B + I)^{-1} w_i
    logdet = 2.0 * torch.log(torch.diagonal(La, dim1=-2, dim2=-1)).sum(-1)  # (..., E)
    log_q = torch.log(gp.signal_var)[:, None] - 0.5 * logdet.unsqueeze(-1) - 0.5 * (w * t).sum(-1)
    q = torch.exp(log_q)
    V = q.unsqueeze(-1) * t * inv_ell[:, None, :]
    return q, V


def _pair_exponents(gp: GPTerms, m: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Factors of :math:`\log Q^{ab}_{ij} = e^a_i + e^b_j + A_i^\top B_j` for all pairs.

    .. math::

        e^a_i = \log k_a(x_i, m) + \tfrac12 y_{ai}^\top G y_{ai} - \tfrac12\log|B_{ab}+I|,\quad
        e^b_j = \log k_b(x_j, m) + \tfrac12 y_{bj}^\top G y_{bj},\quad
        A_i = \tilde G \zeta_{ai},\ B_j = \zeta_{bj},

    with :math:`\zeta_{ai} = \Lambda_a^{-1}\nu_i`, :math:`y_{ai} = P_{ab}^{-1/2}\zeta_{ai}`,
    :math:`G = I - (B_{ab} + I)^{-1}` and :math:`\tilde G = P_{ab}^{-1/2} G P_{ab}^{-1/2}`
    (so :math:`y_{ai}^\top G y_{bj} = \zeta_{ai}^\top \tilde G \zeta_{bj}`).
    Shapes ``(..., P, N)`` and ``(..., P, N, D)``.
    """
    D = gp.D
    inv_ell = 1.0 / gp.lengthscales
    eye = torch.eye(D, dtype=torch.float64)
    ia, ib = _pairs(gp.E)
    p = torch.sqrt(inv_ell[ia] ** 2 + inv_ell[ib] ** 2)  # diag(P_ab)^{1/2}, (P, D)
    Bp = p[:, :, None] * s.unsqueeze(-3) * p[:, None, :]  # (..., P, D, D)
    Lp = torch.linalg.cholesky(Bp + eye)
    G = eye - torch.cholesky_inverse(Lp)
    G = 0.5 * (G + G.transpose(-1, -2))
    logdet = 2.0 * torch.log(torch.diagonal(Lp, dim1=-2, dim2=-1)).sum(-1)  # (..., P)
    nu = gp.X - m.unsqueeze(-2)  # (..., N, D)
    w = nu.unsqueeze(-3) * inv_ell[:, None, :]  # Lambda^{-1/2} nu, (..., E, N, D)
    log_k = torch.log(gp.signal_var)[:, None] - 0.5 * (w * w).sum(-1)  # log k_a(x_i, m)
    zeta = w * inv_ell[:, None, :]  # Lambda^{-1} nu
    # y' G y = zeta' Gs zeta with Gs = P^{-1/2} G P^{-1/2}: no division of (P, N, D) arrays,
    # and both sides of every pair through one batched product
    Gs = G / (p[:, :, None] * p[:, None, :])
    za, zb = zeta[..., ia, :, :], zeta[..., ib, :, :]  # (..., P, N, D)
    N = za.shape[-2]
    Gz = torch.cat([za, zb], dim=-2) @ Gs
    Ga, Gb = Gz[..., :N, :], Gz[..., N:, :]
    ea = log_k[..., ia, :] + 0.5 * (Ga * za).sum(-1) - 0.5 * logdet.unsqueeze(-1)
    eb = log_k[..., ib, :] + 0.5 * (Gb * zb).sum(-1)
    return ea, eb, Ga, zb


class _ExpDot(torch.autograd.Function):
    r"""Fused :math:`T_p = \langle \Omega_p, Q_p\rangle`, :math:`Q_p = \exp(A_p B_p^\top)`.

    Per batch element and output pair ``p``: ``A, B (Bt, P, N, K)`` are the
    augmented factors of :math:`\log Q` (so one matrix product gives the whole
    exponent, see :func:`_augmented_factors`), ``Omega (P, N, N)`` the weights
    :math:`\beta_a\beta_b^\top - [a=b] W_a`; output ``(Bt, P)``. With
    :math:`H = g\,\Omega\circ Q` the gradients are :math:`H B`,
    :math:`H^\top A` and :math:`\sum_{\text{batch}} g\,Q`. The products are
    formed as ``(B^T H^T)^T`` and ``(A^T H)^T``, the layouts that BLAS runs
    fastest for a thin right factor.
    """

    @staticmethod
    def forward(ctx: Any, A: Tensor, B: Tensor, Omega: Tensor) -> Tensor:  # type: ignore[override]
        Bt, P, N, K = A.shape
        Q = torch.bmm(A.reshape(Bt * P, N, K), B.reshape(Bt * P, N, K).mT).view(Bt, P, N, N)
        Q.exp_()
        keep_q = bool(ctx.needs_input_grad[2])
        H = Q * Omega if keep_q else Q.mul_(Omega)  # without Omega's gradient Q is not needed
        T = H.sum((-2, -1))
        # H = Omega o Q is what the backward pass needs (it scales it by g per pair)
        ctx.save_for_backward(A, B, Omega, H, Q if keep_q else None)
        return T

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        A, B, Omega, H, Q = ctx.saved_tensors
        gg = g[..., None, None]
        if torch.is_grad_enabled():
            # create_graph=True: rebuild Q from the inputs so that this backward pass is
            # itself differentiable (correct second derivatives, not silently truncated ones)
            Q = torch.exp(A @ B.mT)
            H = gg * Omega * Q
            gO = (gg * Q).sum(0) if ctx.needs_input_grad[2] else None
            return H @ B, H.mT @ A, gO
        gA = gB = gO = None
        if ctx.needs_input_grad[0]:
            gA = gg * (B.mT @ H.mT).mT
        if ctx.needs_input_grad[1]:
            gB = gg * (A.mT @ H).mT
        if ctx.needs_input_grad[2]:
            gO = (gg * Q).sum(0)
        return gA, gB, gO


def _augmented_factors(ea: Tensor, eb: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    r"""Augmented factors ``[A, e^a, 1]`` and ``[B, 1, e^b]``.

    Their product is :math:`\log Q = e^a \mathbf 1^\top + \mathbf 1 (e^b)^\top + A B^\top`.
    """
    one = torch.ones_like(ea).unsqueeze(-1)
    return torch.cat([A, ea.unsqueeze(-1), one], -1), torch.cat([B, one, eb.unsqueeze(-1)], -1)


def _pair_weights(gp: GPTerms) -> Tensor:
    r"""Weights :math:`\Omega_p = \beta_a\beta_b^\top - [a=b]W_a` of the pairs, ``(P, N, N)``.

    Depends on the GP alone, so it is cached on ``gp`` when neither ``beta`` nor
    ``W`` requires a gradient (a belief propagation over a horizon reuses it).
    """
    cached = gp.__dict__.get("_pair_weights")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    ia, ib = _pairs(gp.E)
    E = gp.E
    Omega = gp.beta[ia].unsqueeze(-1) * gp.beta[ib].unsqueeze(-2)
    Omega = torch.cat([Omega[:E] - gp.W, Omega[E:]])
    if not (gp.beta.requires_grad or gp.W.requires_grad):
        object.__setattr__(gp, "_pair_weights", Omega.detach())
    return Omega


def _assemble(
    beta: Tensor,
    noise_var: Tensor,
    q: Tensor,
    V: Tensor,
    kxx: Tensor,
    pair_sums: Any,
    include_noise: bool,
) -> GPMoments:
    r"""Moments from kernel expectations, for any kernel.

    ``q (..., E, N)``, ``V (..., E, N, D)``, ``kxx (..., E)`` =
    :math:`\mathbb E[k_a(x, x)]`; ``pair_sums(ia, ib)`` returns
    :math:`T_p = \beta_a^\top Q^{ab}\beta_b - [a=b]\operatorname{tr}(W_a Q^{aa})`
    for the pairs ``(ia[p], ib[p])`` of :func:`_pairs` as ``(..., P)``. Then
    :math:`S_{ab} = T_{ab} - M_a M_b + [a=b](\mathbb E k_a(x,x) [+\sigma^2_a])`.
    """
    E = beta.shape[0]
    ia, ib = _pairs(E)
    M = (beta * q).sum(-1)  # (..., E)
    C = (beta.unsqueeze(-1) * V).sum(-2).transpose(-1, -2)  # (..., D, E)
    T = pair_sums(ia, ib)
    diag = kxx + noise_var if include_noise else kxx
    vals = T - M[..., ia] * M[..., ib]
    vals = torch.cat([vals[..., :E] + diag, vals[..., E:]], dim=-1)
    index = torch.empty(E, E, dtype=torch.long)
    index[ia, ib] = torch.arange(ia.numel())
    index[ib, ia] = torch.arange(ia.numel())
    S = vals[..., index]
    return GPMoments(M=M, S=S, C=C)


def _reference_moment_match(
    gp: GPTerms, m: Tensor, s: Tensor, *, include_noise: bool = False
) -> GPMoments:
    r"""Slow reference: the thesis/TPAMI equations with loops over outputs and data points.

    Written independently of :func:`kernel_expectations`: explicit
    :math:`\Lambda_a^{-1}`, :math:`R_{ab}`, :math:`|R_{ab}|` and
    :math:`R_{ab}^{-1}s` by :func:`torch.linalg.solve`, one row
    :math:`Q^{ab}_{i\cdot}` per training point ``i``. Single input only
    (``m (D,)``, ``s (D, D)``); used by the tests and the benchmark.
    """
    X, beta, W = gp.X, gp.beta, gp.W
    N, D, E = gp.N, gp.D, gp.E
    eye = torch.eye(D, dtype=torch.float64)
    iLam = [torch.diag(gp.lengthscales[a] ** -2) for a in range(E)]
    M_list, C_cols = [], []
    for a in range(E):
        R = s + torch.diag(gp.lengthscales[a] ** 2)
        c = gp.signal_var[a] / torch.sqrt(torch.linalg.det(s @ iLam[a] + eye))
        Ma = torch.zeros((), dtype=torch.float64)
        Ca = torch.zeros(D, dtype=torch.float64)
        for i in range(N):
            nu = X[i] - m
            Rinv_nu = torch.linalg.solve(R, nu)
            qi = c * torch.exp(-0.5 * nu @ Rinv_nu)
            Ma = Ma + beta[a, i] * qi
            Ca = Ca + beta[a, i] * qi * Rinv_nu
        M_list.append(Ma)
        C_cols.append(Ca)
    M = torch.stack(M_list)
    C = torch.stack(C_cols, dim=1)

    S_rows: list[list[Tensor]] = [[torch.zeros((), dtype=torch.float64)] * E for _ in range(E)]
    for a in range(E):
        for b in range(E):
            R = s @ (iLam[a] + iLam[b]) + eye
            T = torch.linalg.solve(R, s)
            detR = torch.linalg.det(R)
            nu_all = X - m  # (N, D)
            kb = gp.signal_var[b] * torch.exp(-0.5 * ((nu_all @ iLam[b]) * nu_all).sum(-1))
            rows = []
            for i in range(N):
                nu_i = X[i] - m
                ka_i = gp.signal_var[a] * torch.exp(-0.5 * nu_i @ iLam[a] @ nu_i)
                z = (iLam[a] @ nu_i)[None, :] + nu_all @ iLam[b]  # (N, D): z_ij for all j
                rows.append(ka_i * kb / torch.sqrt(detR) * torch.exp(0.5 * ((z @ T) * z).sum(-1)))
            Q = torch.stack(rows)
            val = beta[a] @ Q @ beta[b] - M[a] * M[b]
            if a == b:
                val = val + gp.signal_var[a] - torch.trace(W[a] @ Q)
                if include_noise:
                    val = val + gp.noise_var[a]
            S_rows[a][b] = val
    S = torch.stack([torch.stack(r) for r in S_rows])
    return GPMoments(M=M + gp.mean, S=S, C=C)
