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

Numerics. Every determinant and inverse is written through the symmetric
positive-definite matrices :math:`I + P^{1/2} s P^{1/2}` (``P`` diagonal,
:math:`P = \Lambda_a^{-1}` or :math:`\Lambda_a^{-1} + \Lambda_b^{-1}`; eigenvalues
:math:`\ge 1`), determinants through a Cholesky factor, and :math:`Q` is
assembled in log space; only the
:math:`E(E+1)/2` output pairs :math:`a \le b` are computed. Cost
:math:`O(E^2 N^2 D)` in batched operations (without Python loops over data
points or outputs, except that for large ``N`` the :math:`N\times N` part goes one
output pair and one cache-sized block of rows at a time); everything is
differentiable by torch autograd (through a hand-written, gradchecked backward
pass) with respect to :math:`m`, :math:`s` and every field of :class:`GPTerms`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
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
    so every matrix factorised or inverted is symmetric positive definite with
    eigenvalues :math:`\ge 1` (no jitter is ever needed) and :math:`Q` is
    exponentiated from log space. The whole exponent :math:`\log Q^{ab}` comes
    from one matrix product of augmented factors whose right factor
    :math:`[\Lambda_b^{-1}(x_j - \bar x), 1, e^b_j]` is, apart from one column, a
    constant of the GP; the reductions
    :math:`\beta_a^\top Q^{ab}\beta_b` and :math:`\operatorname{tr}(W_a Q^{aa})`
    are fused with :math:`Q` (which is never returned; above a few megabytes it
    is formed one cache-sized block of rows at a time). All the
    :math:`D\times D` factorisations run as one batched Cholesky (and one batched
    inverse). The whole
    computation is one autograd node with a hand-written backward pass (one
    batched :math:`N\times N\times D` product per output pair; second
    derivatives fall back to autograd through a torch twin of the forward
    pass); forward and backward run in NumPy, which dispatches the many small
    operations of a step several times faster than torch, with the
    :math:`N\times N` exponential in torch's vectorised ``exp2`` on the same
    memory. The GP-only terms (inverse length-scales, scaled inputs, the
    weights :math:`\beta_a\beta_b^\top - [a=b]W_a`) are cached on ``gp`` when
    they need no gradient, so that a horizon does not rebuild them at every step.

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
    return _moment_match(gp, m, s, include_noise)


class _Constants(NamedTuple):
    """Everything of moment matching that depends on the GP alone (see :func:`_constants`)."""

    xbar: Tensor  # (D,) centre of the inputs
    Xc: Tensor  # (N, D) X - xbar
    iell: Tensor  # (E, D) 1 / ell
    iell_outer: Tensor  # (E, D, D) 1 / (ell_d ell_e)
    log_sf2: Tensor  # (E,)
    ia: Tensor  # (P,) first output of each pair
    ib: Tensor  # (P,) second output of each pair
    iell2_b: Tensor  # (P, D) 1 / ell_b^2
    p_outer: Tensor  # (P, D, D) p_d p_e, p = diag(Lambda_a^{-1} + Lambda_b^{-1})^{1/2}
    Xb: Tensor  # (P, N, D) Lambda_b^{-1} (x_j - xbar)
    Omega: Tensor  # (P, N, N) beta_a beta_b' - [a = b] (W_a + W_a') / 2
    eye: Tensor  # (D, D)
    row_scale: Tensor  # (P, N) 1 for a = b, beta_a for a < b (Omega_ab = beta_a beta_b')
    col_scale: Tensor  # (P, N) 1 for a = b, beta_b for a < b


def _constants(gp: GPTerms) -> _Constants:
    r"""The GP-only terms of moment matching, cached on ``gp`` when none of them needs a gradient.

    Inverse length-scales, :math:`\log\alpha^2`, the pair scalings
    :math:`p_{ab} = (\ell_a^{-2} + \ell_b^{-2})^{1/2}`, the scaled centred inputs
    :math:`\Lambda_b^{-1}(x_j - \bar x)` and the pair weights
    :math:`\Omega_{ab} = \beta_a\beta_b^\top - [a=b]W_a`: a belief propagation over a
    horizon (and a policy search over many horizons) builds them once per model fit.
    A refit creates a new :class:`GPTerms`, which invalidates the cache. When any field
    requires a gradient (e.g. an RBF policy's pseudo-data) they are rebuilt on every call.
    """
    cached = gp.__dict__.get("_mm_constants")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    E, D = gp.E, gp.D
    ia, ib = _pairs(E)
    iell = 1.0 / gp.lengthscales
    iell2 = iell * iell
    p = torch.sqrt(iell2[ia] + iell2[ib])
    xbar = gp.X.detach().mean(0)
    Xc = gp.X - xbar
    Omega = gp.beta[ia].unsqueeze(-1) * gp.beta[ib].unsqueeze(-2)
    # W symmetrised (bitwise the same if it is symmetric): the row-blocked pair sums form
    # only the upper blocks of the diagonal pairs' weighted Q, which needs a symmetric weight
    Omega = torch.cat([Omega[:E] - 0.5 * (gp.W + gp.W.mT), Omega[E:]])
    c = _Constants(
        xbar=xbar,
        Xc=Xc,
        iell=iell,
        iell_outer=iell[:, :, None] * iell[:, None, :],
        log_sf2=torch.log(gp.signal_var),
        ia=ia,
        ib=ib,
        iell2_b=iell2[ib],
        p_outer=p[:, :, None] * p[:, None, :],
        Xb=(Xc * iell2[ib, None, :]).contiguous(),
        Omega=Omega,
        eye=torch.eye(D, dtype=torch.float64),
        row_scale=torch.cat([torch.ones_like(gp.beta), gp.beta[ia[E:]]]).detach(),
        col_scale=torch.cat([torch.ones_like(gp.beta), gp.beta[ib[E:]]]).detach(),
    )
    fields = (gp.X, gp.beta, gp.W, gp.lengthscales, gp.signal_var)
    if not any(f.requires_grad for f in fields):
        object.__setattr__(gp, "_mm_constants", c)
    return c


def _pairs(E: int) -> tuple[Tensor, Tensor]:
    """Output pairs ``a <= b``: the ``E`` diagonal pairs first, then ``a < b`` row by row."""
    iu, ju = torch.triu_indices(E, E, offset=1)
    diag = torch.arange(E)
    return torch.cat([diag, iu]), torch.cat([diag, ju])


def _belief_factors(c: _Constants, m: Tensor, s: Tensor) -> tuple[Tensor, ...]:
    r"""First moments and the factorised pair matrices.

    ``q (..., E, N)``, ``V = q (s + Lambda)^{-1} nu`` ``(..., E, N, D)``,
    ``w = Lambda^{-1/2} nu`` ``(..., E, N, D)``, ``log|B_ab + I|`` ``(..., P)`` and
    :math:`\tilde G_{ab} = P_{ab}^{-1/2}(I - (B_{ab} + I)^{-1})P_{ab}^{-1/2} = R_{ab}^{-1}s`
    ``(..., P, D, D)``. Both sets of :math:`D\times D` factorisations, of
    :math:`B_a + I` and :math:`B_{ab} + I`, run as one batched Cholesky.
    """
    E = c.iell.shape[0]
    nu = c.Xc - (m - c.xbar).unsqueeze(-2)  # (..., N, D)
    w = nu.unsqueeze(-3) * c.iell[:, None, :]  # Lambda^{-1/2} nu, (..., E, N, D)
    scale = torch.cat([c.iell_outer, c.p_outer])  # (E + P, D, D)
    L = torch.linalg.cholesky(s.unsqueeze(-3) * scale + c.eye)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (..., E + P)
    inv = torch.cholesky_inverse(L)  # (B + I)^{-1}
    t = w @ inv[..., :E, :, :]  # rows of (B_a + I)^{-1} w_i
    log_q = c.log_sf2[:, None] - 0.5 * (logdet[..., :E, None] + (w * t).sum(-1))
    q = torch.exp(log_q)
    V = (q.unsqueeze(-1) * c.iell[:, None, :]) * t
    Gs = (c.eye - inv[..., E:, :, :]) / c.p_outer
    return q, V, w, logdet[..., E:], Gs


def _pair_exponents(
    c: _Constants, m: Tensor, zeta: Tensor, log_k: Tensor, logdet_p: Tensor, Gs: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Factors of :math:`\log Q^{ab}_{ij} = e^a_i + e^b_j + A_i^\top \tilde x_{bj}` for all pairs.

    .. math::

        \log Q^{ab}_{ij} = \log k_a(x_i, m) + \log k_b(x_j, m) - \tfrac12\log|B_{ab} + I|
            + \tfrac12 (\zeta_{ai} + \zeta_{bj})^\top \tilde G (\zeta_{ai} + \zeta_{bj}),

    with :math:`\zeta_{ai} = \Lambda_a^{-1}\nu_i` (TPAMI 2015 eq. (22) rewritten). Since
    :math:`\zeta_{bj} = \tilde x_{bj} - \Lambda_b^{-1}(m - \bar x)` with the constant
    :math:`\tilde x_{bj} = \Lambda_b^{-1}(x_j - \bar x)`, the cross term is
    :math:`A_i^\top\tilde x_{bj}` plus a term of ``i`` alone, with
    :math:`A_i = \tilde G\zeta_{ai}` and

    .. math::

        e^a_i = \log k_a(x_i, m) - \tfrac12\log|B_{ab}+I|
                + A_i^\top\big(\tfrac12\zeta_{ai} - \Lambda_b^{-1}(m - \bar x)\big),\qquad
        e^b_j = \log k_b(x_j, m) + \tfrac12 \zeta_{bj}^\top\tilde G\zeta_{bj}.

    The right factor of the :math:`N\times N` product is then a constant of the GP, so
    the backward pass needs one :math:`N\times N\times D` product per pair, not two.
    Returns ``ea, eb (..., P, N)`` and ``[A, e^a]`` ``(..., P, N, D + 1)``.
    """
    za, zb = zeta[..., c.ia, :, :], zeta[..., c.ib, :, :]  # (..., P, N, D)
    N = za.shape[-2]
    Gz = torch.cat([za, zb], dim=-2) @ Gs  # G~ is symmetric
    Ga, Gb = Gz[..., :N, :], Gz[..., N:, :]
    mu_b = (m - c.xbar).unsqueeze(-2) * c.iell2_b  # (..., P, D)
    ea = (
        log_k[..., c.ia, :]
        - 0.5 * logdet_p.unsqueeze(-1)
        + (Ga * (0.5 * za - mu_b.unsqueeze(-2))).sum(-1)
    )
    eb = log_k[..., c.ib, :] + 0.5 * (Gb * zb).sum(-1)
    return ea, eb, torch.cat([Ga, ea.unsqueeze(-1)], dim=-1)


def _moment_match(
    gp: GPTerms,
    m: Tensor,
    s: Tensor,
    include_noise: bool = False,
    constants: _Constants | None = None,
) -> GPMoments:
    """:func:`moment_match` on validated float64 ``m (..., D)`` and symmetric PSD ``s``.

    For callers that have validated the belief already (the belief propagation
    validates the beliefs of a whole horizon at once). A grossly indefinite
    ``s`` still fails in a Cholesky factorisation, reported as ``ValueError``.
    ``constants`` are :func:`_constants` of ``gp`` built by the caller, for terms
    that require a gradient (which :func:`_constants` does not cache) but are
    shared by many calls, e.g. an RBF policy's over a horizon.
    """
    c = _constants(gp) if constants is None else constants
    batch, D, E = m.shape[:-1], gp.D, gp.E
    diag = gp.signal_var + gp.noise_var if include_noise else gp.signal_var
    m2, s2 = m.reshape(-1, D), s.reshape(-1, D, D)
    if s2.shape[0] != m2.shape[0]:  # s broadcast against m
        s2 = s.expand(*batch, D, D).reshape(-1, D, D)
    args = (
        m2, s2, c.Xc, c.iell, c.iell_outer, c.p_outer, c.log_sf2, c.iell2_b, c.Xb, c.Omega,
        gp.beta, diag,
    )  # fmt: skip
    # inside the forward pass grad mode is always off: tell it whether a backward can follow
    grad = torch.is_grad_enabled() and any(a.requires_grad for a in args)
    try:
        M, S, C = _MomentMatch.apply(c, *args, grad)
    except (torch.linalg.LinAlgError, np.linalg.LinAlgError) as exc:
        raise ValueError(f"s must be positive semi-definite ({exc})") from exc
    return GPMoments(
        M=M.reshape(*batch, E) + gp.mean, S=S.reshape(*batch, E, E), C=C.reshape(*batch, D, E)
    )


def _forward_autograd(
    c: _Constants, m: Tensor, s: Tensor, beta: Tensor, diag: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The forward pass of :class:`_MomentMatch` in differentiable torch operations.

    ``m (Bt, D)``, ``s (Bt, D, D)``; ``M (Bt, E)`` (without the prior mean),
    ``S (Bt, E, E)``, ``C (Bt, D, E)``. Used for second derivatives.
    """
    q, V, w, logdet_p, Gs = _belief_factors(c, m, s)
    zeta = w * c.iell[:, None, :]  # Lambda_a^{-1} nu_i, (Bt, E, N, D)
    log_k = c.log_sf2[:, None] - 0.5 * (w * w).sum(-1)  # log k_a(x_i, m), (Bt, E, N)
    ea, eb, A = _pair_exponents(c, m, zeta, log_k, logdet_p, Gs)
    T = _ExpDot.apply(A, c.Xb, eb, c.Omega)
    out = _assemble(beta, diag, q, V, diag, lambda ia, ib: T, False)
    return out.M, out.S, out.C


class _MomentMatch(torch.autograd.Function):
    r"""Moment matching ``(m, s) -> (M, S, C)`` with a hand-written backward pass.

    The forward pass is that of :func:`_forward_autograd` (:func:`_belief_factors`,
    :func:`_pair_exponents`, the :math:`N\times N` exponentiated product, the
    assembly); the backward pass is its reverse-mode derivative written out, so
    that autograd records one node instead of about a hundred small ones (whose
    bookkeeping, not arithmetic, dominated a belief propagation). Both run in
    NumPy (:func:`_np_forward`, :func:`_np_backward`). Inputs after the
    non-differentiable constants ``c``: ``m (Bt, D)``, ``s (Bt, D, D)`` and the
    GP terms of :class:`_Constants` plus ``beta (E, N)`` and ``diag (E,)`` (the
    diagonal added to ``S``); each receives its gradient when it requires one. The
    last input, ``grad``, says whether a backward pass can follow (grad mode is on
    and some input requires a gradient): ``needs_input_grad`` does not know about
    ``torch.no_grad()``, and without ``grad`` the thin products the backward pass
    needs are not formed. Second derivatives (``create_graph=True``) differentiate
    :func:`_forward_autograd` instead.
    """

    @staticmethod
    def forward(ctx: Any, c: _Constants, *args: Any) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        *inputs, grad = args  # the twelve tensors of the class docstring, then grad
        need = ctx.needs_input_grad[1:13]
        x = tuple(a.detach().numpy() for a in inputs)
        # a non-finite mean gives non-finite moments without NumPy warnings (as in torch);
        # a propagated horizon's one batched check reports it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            outs, saved = _np_forward(c, x, grad, grad and need[9], grad and need[8])
        ctx.c, ctx.np_saved = c, saved
        if grad:
            ctx.save_for_backward(*inputs)
        M, S, C = (torch.from_numpy(a) for a in outs)
        return M, S, C

    @staticmethod
    def backward(ctx: Any, gM: Tensor, gS: Tensor, gC: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        inputs = ctx.saved_tensors
        need = ctx.needs_input_grad[1:13]
        if torch.is_grad_enabled():
            return (None, *_double_backward(ctx.c, inputs, need, (gM, gS, gC)), None)
        x = tuple(a.detach().numpy() for a in inputs)
        g = (a.detach().numpy() for a in (gM, gS, gC))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            grads = _np_backward(x, ctx.np_saved, need, *g)
        return (None, *(None if a is None else torch.from_numpy(a) for a in grads), None)


_F64 = NDArray[np.float64]
_Idx = NDArray[np.intp]
_NP_PAIRS: dict[int, tuple[_Idx, _Idx, _Idx, _F64, _F64]] = {}


def _np_pairs(E: int) -> tuple[_Idx, _Idx, _Idx, _F64, _F64]:
    """:func:`_pair_index` in NumPy, plus the ``(E, P)`` incidence matrices of ``ia`` and ``ib``.

    ``Ia @ g`` sums a per-pair gradient ``g (..., P, k)`` onto the first output of
    each pair (the ``index_add`` of the torch twin as one small matrix product).
    """
    if E not in _NP_PAIRS:
        ia, ib, index = (x.numpy() for x in _pair_index(E))
        P = ia.shape[0]
        Ia, Ib = np.zeros((E, P)), np.zeros((E, P))
        Ia[ia, np.arange(P)] = 1.0
        Ib[ib, np.arange(P)] = 1.0
        _NP_PAIRS[E] = (ia, ib, index, Ia, Ib)
    return _NP_PAIRS[E]


def _rowdot(a: _F64, b: _F64) -> _F64:
    """``(a * b).sum(-1)`` without the temporary (``einsum`` is faster for long rows)."""
    return np.einsum("...i,...i->...", a, b)


def _np_forward(
    c: _Constants, x: tuple[NDArray[np.float64], ...], grad: bool, keep_q: bool, need_z: bool
) -> tuple[tuple[NDArray[np.float64], ...], tuple[Any, ...]]:
    r"""The forward pass of :class:`_MomentMatch` in NumPy: ``(M, S, C)`` and what backward needs.

    ``x`` holds the twelve tensor inputs of :class:`_MomentMatch` as arrays. The
    :math:`N\times N` exponentials run in torch's vectorised ``exp2`` on the same memory
    (NumPy's float64 ``exp`` is several times slower); everything else is NumPy, whose
    operations dispatch several times faster than torch's on the small arrays of a step.
    With ``grad`` the thin products :math:`H\bar B` (and :math:`H^\top A`, ``need_z``) of
    the backward pass are formed while :math:`H` is at hand; ``keep_q`` keeps :math:`Q`
    for the gradient of :math:`\Omega`.
    """
    m, s, Xc, iell, iell_outer, p_outer, log_sf2, iell2_b, Xb, Omega, beta, diag = x
    Bt = m.shape[0]
    E, D = iell.shape
    P, N = Xb.shape[:2]
    ia, ib, index, _, _ = _np_pairs(E)
    eye = np.eye(D)
    mc = m - c.xbar.numpy()
    nu = Xc - mc[:, None, :]  # (Bt, N, D)
    w = nu[:, None] * iell[:, None, :]  # Lambda^{-1/2} nu, (Bt, E, N, D)
    scale = np.concatenate([iell_outer, p_outer])  # (E + P, D, D)
    Bm = s[:, None] * scale + eye
    L = np.linalg.cholesky(Bm)  # raises LinAlgError unless positive definite
    Ld = np.diagonal(L, axis1=-2, axis2=-1)
    if not np.isfinite(Ld).all():  # NumPy passes NaN through, torch's Cholesky rejects it
        raise np.linalg.LinAlgError("the input covariance is not finite")
    logdet = 2.0 * np.log(Ld).sum(-1)  # (Bt, E + P)
    inv = np.linalg.inv(Bm)  # eigenvalues >= 1: well conditioned (and 3x cheaper than
    inv = 0.5 * (inv + inv.swapaxes(-1, -2))  # torch.cholesky_inverse on these small batches)
    inv_a, inv_p = inv[:, :E], inv[:, E:]
    t = w @ inv_a  # (Bt, E, N, D)
    q = np.exp(log_sf2[:, None] - 0.5 * (logdet[:, :E, None] + _rowdot(w, t)))
    bq = beta * q  # (Bt, E, N)
    M = bq.sum(-1)  # (Bt, E)
    R = (bq[:, :, None, :] @ t)[:, :, 0]  # (Bt, E, D)
    C = (R * iell).swapaxes(-1, -2)  # (Bt, D, E)
    Gs = (eye - inv_p) / p_outer  # (Bt, P, D, D)
    zeta = w * iell[:, None, :]
    log_k = log_sf2[:, None] - 0.5 * _rowdot(w, w)  # (Bt, E, N)
    zab = np.concatenate([zeta[:, ia], zeta[:, ib]], axis=-2)  # (Bt, P, 2N, D)
    Gz = zab @ Gs
    za, zb, Ga, Gb = zab[..., :N, :], zab[..., N:, :], Gz[..., :N, :], Gz[..., N:, :]
    mu_b = mc[:, None, :] * iell2_b  # (Bt, P, D)
    u = 0.5 * za - mu_b[:, :, None, :]
    # log2 Q = [Ga, ea, 1] [Xb, 1, eb]' log2(e): exp2 is the cheaper vectorised function
    A2 = np.empty((Bt, P, N, D + 2))
    A2[..., :D] = Ga
    A2[..., D] = log_k[:, ia] - 0.5 * logdet[:, E:, None] + _rowdot(Ga, u)  # ea
    A2[..., D + 1] = 1.0
    A2 *= _LOG2E
    Bb = np.empty((Bt, P, N, D + 2))
    Bb[..., :D] = Xb
    Bb[..., D] = 1.0
    Bb[..., D + 1] = log_k[:, ib] + 0.5 * _rowdot(Gb, zb)  # eb
    r, cs = c.row_scale.numpy(), c.col_scale.numpy()
    if keep_q:
        r = cs = np.ones((P, N))
    Gr = Ga * r[:, :, None] if grad and need_z else None
    colsum, Y, Z, Q = _np_pair_sums(A2, Bb, Omega, r, cs, E, grad, keep_q, Gr)
    T = colsum.sum(-1)  # (Bt, P)
    S = T[:, index] - M[:, :, None] * M[:, None, :]
    S.reshape(Bt, E * E)[:, :: E + 1] += diag
    saved = (mc, nu, w, scale, inv, t, q, bq, R, Gs, zab, Gz, u, Y, Z, Q)
    return (M, S, C), (*saved, M.copy(), colsum)


_VECTORISE_BYTES = 1 << 22  # above this size of Q (N > ~220 for E = 4), run in row blocks
_CHUNK_BYTES = 1 << 19  # size of one row block of Q (about the L2 cache of a core)


def _np_pair_sums(
    A2: _F64,
    Bb: _F64,
    Omega: _F64,
    r: _F64,
    cs: _F64,
    E: int,
    grad: bool,
    keep_q: bool,
    Gr: _F64 | None,
) -> tuple[_F64, _F64 | None, _F64 | None, _F64 | None]:
    r"""Column sums of :math:`H = \Omega\circ 2^{A_2 B_b^\top}` per pair, and the thin products.

    ``A2, Bb (Bt, P, N, D + 2)`` are the augmented factors (``A2`` scaled by
    :math:`\log_2 e`), ``Omega (P, N, N)``. Unless ``keep_q``, the off-diagonal pairs
    (after the ``E`` diagonal ones) use their rank-one weights
    :math:`\Omega_{ab} = \beta_a\beta_b^\top` = ``r c'`` (``r, cs (P, N)``, ones on the
    diagonal pairs and everywhere with ``keep_q``), so that :math:`Q` is multiplied by
    ``Omega`` only on the diagonal pairs. Returns ``colsum (Bt, P, N)``; with ``grad``,
    ``Y = H [Xb, 1]`` ``(Bt, P, N, D + 1)``; with ``Gr`` = ``r Ga`` ``(Bt, P, N, D)``,
    ``Z = H' Ga``; with ``keep_q``, ``Q`` itself.

    Small ``Q`` (up to ``_VECTORISE_BYTES``) is done in a few batched operations.
    Larger ones go one pair and one block of rows (about ``_CHUNK_BYTES``) at a time,
    each block exponentiated, weighted, summed and multiplied while it is in cache,
    instead of five passes over all of :math:`Q`; there a diagonal pair's
    :math:`H = (\beta_a\beta_a^\top - W_a)\circ Q^{aa}` (``W`` symmetric) is symmetric,
    and only the blocks on and right of the diagonal are formed (those right of it
    enter twice, as :math:`H` and :math:`H^\top`).
    """
    Bt, P, N, K = A2.shape
    Bs = Bb[..., : K - 1] * cs[:, :, None] if grad else None
    if Bt * P * N * N * 8 <= _VECTORISE_BYTES:
        Q = np.matmul(A2, Bb.swapaxes(-1, -2))  # (Bt, P, N, N)
        torch.from_numpy(Q).exp2_()
        if keep_q:
            H = Q * Omega
            colsum = H.sum(-2)
        else:
            H = Q
            H[:, :E] *= Omega[:E]
            colsum = np.empty((Bt, P, N))
            colsum[:, :E] = H[:, :E].sum(-2)
            colsum[:, E:] = (r[E:, None, :] @ Q[:, E:])[..., 0, :] * cs[E:]
        Y = Z = None
        if Bs is not None:  # thin products of H while it is at hand; H is not kept
            Y = np.matmul(Bs.swapaxes(-1, -2), H.swapaxes(-1, -2)).swapaxes(-1, -2)
            if Gr is not None:
                Z = np.matmul(Gr.swapaxes(-1, -2), H).swapaxes(-1, -2)
        Q = Q if keep_q else None
    else:
        rb = max(1, min(N, _CHUNK_BYTES // (8 * N)))
        colsum = np.empty((Bt, P, N))
        Y = np.empty((Bt, P, N, K - 1)) if Bs is not None else None
        Z = np.zeros((Bt, P, N, K - 2)) if Gr is not None else None
        Q = np.empty((Bt, P, N, N)) if keep_q else None
        buf = np.empty(rb * N)
        for b, p in np.ndindex(Bt, P):
            weighted = keep_q or p < E
            # a diagonal pair's H is symmetric: only the blocks on and right of the
            # diagonal are formed, those right of it counted twice (as H and H')
            sym = p < E and not keep_q
            acc = np.zeros(N)
            F = YZ = None  # sym: [H Bs, H Gr] = H F, accumulated in YZ
            if sym and Bs is not None:
                F = Bs[b, p] if Gr is None else np.concatenate([Bs[b, p], Gr[b, p]], axis=1)
                YZ = np.zeros((N, F.shape[1]))
            for i0 in range(0, N, rb):
                i1 = min(N, i0 + rb)
                j0 = i0 if sym else 0
                n, w = i1 - i0, N - j0
                Qc = buf[: n * w].reshape(n, w) if Q is None else Q[b, p, i0:i1]
                np.matmul(A2[b, p, i0:i1], Bb[b, p, j0:].T, out=Qc)
                torch.from_numpy(Qc).exp2_()
                Hc = Qc
                if weighted:
                    Om = Omega[p, i0:i1, j0:]
                    Hc = Qc * Om if keep_q else np.multiply(Qc, Om, out=Qc)
                    acc[j0:] += Hc.sum(0)
                else:
                    acc += r[p, i0:i1] @ Hc
                if sym:
                    Hr = Hc[:, n:]  # right of the diagonal block; its mirror is below
                    acc[i0:i1] += Hr.sum(1)
                    if F is not None and YZ is not None:
                        YZ[i0:i1] += Hc @ F[j0:]
                        YZ[i1:] += Hr.T @ F[i0:i1]
                    continue
                if Y is not None and Bs is not None:
                    np.matmul(Hc, Bs[b, p], out=Y[b, p, i0:i1])
                if Z is not None and Gr is not None:
                    Z[b, p] += Hc.T @ Gr[b, p, i0:i1]
            if YZ is not None and Y is not None:
                Y[b, p] = YZ[:, : K - 1]
                if Z is not None:
                    Z[b, p] = YZ[:, K - 1 :]
            colsum[b, p] = acc if weighted else acc * cs[p]
    if Y is not None:
        Y *= r[:, :, None]
    if Z is not None:
        Z *= cs[:, :, None]
    return colsum, Y, Z, Q


def _np_backward(
    x: tuple[NDArray[np.float64], ...],
    saved: tuple[Any, ...],
    need: tuple[bool, ...],
    gM: NDArray[np.float64],
    gS: NDArray[np.float64],
    gC: NDArray[np.float64],
) -> list[NDArray[np.float64] | None]:
    """Reverse-mode derivative of :func:`_np_forward`: gradients of the inputs ``x`` in ``need``."""
    m, s, Xc, iell, iell_outer, p_outer, log_sf2, iell2_b, Xb, Omega, beta, diag = x
    mc, nu, w, scale, inv, t, q, bq, R, Gs, zab, Gz, u, Y, Z, Q, M, colsum = saved
    E, D = iell.shape
    N = Xb.shape[1]
    ia, ib, _, Ia, Ib = _np_pairs(E)
    Bt, P = m.shape[0], ia.shape[0]
    zb, Ga, Gb = zab[..., N:, :], Gz[..., :N, :], Gz[..., N:, :]
    # S = T[index] - M M' + diag(diag)
    gsym = gS + gS.swapaxes(-1, -2)
    gT = gsym[:, ia, ib]
    gT[:, :E] *= 0.5
    gM = gM - (gsym @ M[..., None])[..., 0]
    g_diag = np.diagonal(gS, axis1=-2, axis2=-1).sum(0) if need[11] else None
    # T = <Omega, exp(Aa Bb')>, Aa = [Ga, ea, 1], Bb = [Xb, 1, eb]: Y = H Bb, Z = H' Ga
    gg = gT[..., None, None]
    gY = gg * Y
    gea = gY[..., D]
    geb = gT[..., None] * colsum
    gXb = (gg * Z).sum(0) if need[8] else None
    gOmega = (gg * Q).sum(0) if need[9] else None
    # eb = log_k[ib] + 0.5 sum(Gb * zb); ea = log_k[ia] - 0.5 logdet_p + sum(Ga * u)
    ge = geb[..., None]
    gGz = np.empty((Bt, P, 2 * N, D))
    gGz[..., :N, :] = gY[..., :D] + gea[..., None] * u  # of Ga
    gGz[..., N:, :] = 0.5 * ge * zb  # of Gb
    gmu_b = -(gea[..., None, :] @ Ga)[..., 0, :]  # (Bt, P, D)
    glogdet_p = -0.5 * gea.sum(-1)  # (Bt, P)
    glog_k = Ia @ gea + Ib @ geb  # (Bt, E, N)
    # mu_b = mc * iell2_b
    gmc = (gmu_b * iell2_b).sum(-2)
    g_iell2_b = (gmu_b * mc[:, None, :]).sum(0) if need[7] else None
    # [Ga, Gb] = [za, zb] Gs (Gs symmetric)
    gzab = gGz @ Gs
    gGs = zab.swapaxes(-1, -2) @ gGz
    gzab[..., :N, :] += (0.5 * gea[..., None]) * Ga
    gzab[..., N:, :] += 0.5 * ge * Gb
    gzeta = (Ia @ gzab[..., :N, :].reshape(Bt, P, N * D)).reshape(Bt, E, N, D)
    gzeta += (Ib @ gzab[..., N:, :].reshape(Bt, P, N * D)).reshape(Bt, E, N, D)
    # Gs = (I - inv_p) / p_outer
    g_inv_p = -gGs / p_outer
    g_p_outer = (-(gGs * Gs) / p_outer).sum(0) if need[5] else None
    # log_k = log_sf2 - 0.5 sum(w^2); zeta = w * iell
    g_log_sf2 = glog_k.sum((0, 2))
    gw = gzeta * iell[:, None, :] - glog_k[..., None] * w
    g_iell = (gzeta * w).sum((0, 2)) if need[3] else None
    # M = sum(bq), R = bq t, C = (R * iell)', bq = beta q
    gCc = gC.swapaxes(-1, -2)  # (Bt, E, D)
    gR = gCc * iell
    if need[3]:
        g_iell = g_iell + (gCc * R).sum(0)
    gbq = gM[..., None] + (t @ gR[..., None])[..., 0]  # (Bt, E, N)
    g_beta = (gbq * q).sum(0) if need[10] else None
    glq = gbq * bq  # d/d log q
    # log q = log_sf2 - 0.5 (logdet_a + sum(w * t)), t = w inv_a
    g_log_sf2 = g_log_sf2 + glq.sum((0, 2))
    gl = -0.5 * glq[..., None]
    gw += gl * t
    gt = bq[..., None] * gR[:, :, None, :] + gl * w
    inv_a = inv[:, :E]
    gw += gt @ inv_a
    # inv = B^{-1}, logdet = log|B|, B = s * scale + I
    g_inv = np.concatenate([w.swapaxes(-1, -2) @ gt, g_inv_p], axis=1)
    glogdet = np.concatenate([-0.5 * glq.sum(-1), glogdet_p], axis=1)
    gB = glogdet[..., None, None] * inv - inv @ g_inv @ inv
    gB = 0.5 * (gB + gB.swapaxes(-1, -2))
    gs = (gB * scale).sum(1)
    g_iell_outer = None
    if need[4] or need[5]:
        g_scale = (gB * s[:, None]).sum(0)
        g_iell_outer = g_scale[:E] if need[4] else None
        if need[5]:
            g_p_outer = g_p_outer + g_scale[E:]
    # w = nu * iell, nu = Xc - mc
    gnu = (gw * iell[:, None, :]).sum(1)  # (Bt, N, D)
    if need[3]:
        g_iell = g_iell + (gw * nu[:, None]).sum((0, 2))
    g_Xc = gnu.sum(0) if need[2] else None
    gm = gmc - gnu.sum(-2)
    return [
        gm, gs, g_Xc, g_iell, g_iell_outer, g_p_outer, g_log_sf2 if need[6] else None,
        g_iell2_b, gXb, gOmega, g_beta, g_diag,
    ]  # fmt: skip


def _double_backward(
    c: _Constants, inputs: tuple[Tensor, ...], need: tuple[bool, ...], grads: tuple[Tensor, ...]
) -> tuple[Tensor | None, ...]:
    """Differentiable vector-Jacobian product through :func:`_forward_autograd`."""
    m, s, Xc, iell, iell_outer, p_outer, log_sf2, iell2_b, Xb, Omega, beta, diag = inputs
    cc = c._replace(
        Xc=Xc, iell=iell, iell_outer=iell_outer, p_outer=p_outer, log_sf2=log_sf2,
        iell2_b=iell2_b, Xb=Xb, Omega=Omega,
    )  # fmt: skip
    with torch.enable_grad():
        outs = _forward_autograd(cc, m, s, beta, diag)
        wrt = [x for x, n in zip(inputs, need, strict=True) if n]
        vjp = iter(torch.autograd.grad(outs, wrt, grads, create_graph=True, allow_unused=True))
    return tuple(next(vjp) if n else None for n in need)


_LOG2E = 1.4426950408889634  # log2(e)


def _exp_dot(
    A: Tensor, Xb: Tensor, eb: Tensor, Omega: Tensor, keep_q: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    r"""``T = <Omega, exp(Aa Bb')>`` per pair.

    Returns ``T (Bt, P)``, the column sums of ``H = Omega o Q`` ``(Bt, P, N)`` (taken
    here, while ``H`` is in cache, for the gradient of ``eb``), ``Aa``, ``Bb``, ``H``
    and ``Q`` (``None`` unless ``keep_q``).
    """
    Bt, P, N, K1 = A.shape
    ones = torch.ones(Bt, P, N, 1, dtype=A.dtype)
    Aa = torch.cat([A, ones], -1).view(Bt * P, N, K1 + 1)
    Bb = torch.cat([Xb.expand(Bt, P, N, K1 - 1), ones, eb.unsqueeze(-1)], -1)
    Bb = Bb.view(Bt * P, N, K1 + 1)
    # exp(x) = 2^(x log2 e): the scale goes on the thin factor, and exp2 is the cheaper
    # vectorised function (same 1-ulp accuracy); this exponential is the dominant cost
    Q = torch.bmm(Aa * _LOG2E, Bb.mT).view(Bt, P, N, N)
    Q.exp2_()
    H = Q * Omega if keep_q else Q.mul_(Omega)  # without Omega's gradient Q is not needed
    colsum = H.sum(-2)
    return colsum.sum(-1), colsum, Aa, Bb, H, (Q if keep_q else None)


class _ExpDot(torch.autograd.Function):
    r"""Fused :math:`T_p = \langle\Omega_p, Q_p\rangle`, :math:`Q_p = \exp(\bar A_p\bar B_p^\top)`.

    Per batch element and output pair ``p``: ``A (Bt, P, N, K + 1)`` holds
    :math:`[A_i, e^a_i]`, ``Xb (P, N, K)`` the constant :math:`\tilde x_{bj}`,
    ``eb (Bt, P, N)`` the :math:`e^b_j`, ``Omega (P, N, N)`` the weights; the
    augmented factors :math:`\bar A = [A, e^a, 1]` and :math:`\bar B = [\tilde x_b, 1, e^b]`
    give the whole exponent (see :func:`_pair_exponents`) in one matrix product.
    Output ``(Bt, P)``. With :math:`H = g\,\Omega\circ Q` the gradients are
    :math:`H\bar B` (for ``A``), the column sums of :math:`H` (for ``eb``),
    :math:`H^\top\bar A` (for ``Xb``, only when it requires one) and
    :math:`\sum_{\text{batch}} g\,Q` (for ``Omega``).
    """

    @staticmethod
    def forward(ctx: Any, A: Tensor, Xb: Tensor, eb: Tensor, Omega: Tensor) -> Tensor:  # type: ignore[override]
        keep_q = bool(ctx.needs_input_grad[3])
        T, colsum, Aa, Bb, H, Q = _exp_dot(A, Xb, eb, Omega, keep_q)
        ctx.save_for_backward(A, Xb, eb, Omega, Aa, Bb, H, Q, colsum)
        return T

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        A, Xb, eb, Omega, Aa, Bb, H, Q, colsum = ctx.saved_tensors
        Bt, P, N, K1 = A.shape
        gg = g[..., None, None]
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():
            # create_graph=True: rebuild Q from the inputs so that this backward pass is
            # itself differentiable (correct second derivatives, not silently truncated ones)
            ones = torch.ones(Bt, P, N, 1, dtype=A.dtype)
            Aa = torch.cat([A, ones], -1)
            Bb = torch.cat([Xb.expand(Bt, P, N, K1 - 1), ones, eb.unsqueeze(-1)], -1)
            Q = torch.exp(Aa @ Bb.mT)
            Hg = gg * Omega * Q
            gA = (Hg @ Bb)[..., :K1] if need[0] else None
            gX = (Hg.mT @ Aa)[..., : K1 - 1].sum(0) if need[1] else None
            ge = Hg.sum(-2) if need[2] else None
            gO = (gg * Q).sum(0) if need[3] else None
            return gA, gX, ge, gO
        gA = gX = ge = gO = None
        if need[0]:
            gA = gg * (Bb.mT @ H.view(Bt * P, N, N).mT).mT.view(Bt, P, N, K1 + 1)[..., :K1]
        if need[1]:
            gX = (gg * (Aa.mT @ H.view(Bt * P, N, N)).mT.view(Bt, P, N, K1 + 1))[..., : K1 - 1]
            gX = gX.sum(0)
        if need[2]:
            ge = g.unsqueeze(-1) * colsum
        if need[3]:
            gO = (gg * Q).sum(0)
        return gA, gX, ge, gO


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
    ia, ib, index = _pair_index(E)
    M = (beta * q).sum(-1)  # (..., E)
    C = (beta.unsqueeze(-2) @ V).squeeze(-2).mT  # (..., D, E)
    T = pair_sums(ia, ib)
    diag = kxx + noise_var if include_noise else kxx
    S = T[..., index] - M.unsqueeze(-1) * M.unsqueeze(-2) + torch.diag_embed(diag)
    return GPMoments(M=M, S=S, C=C)


_PAIR_INDEX: dict[int, tuple[Tensor, Tensor, Tensor]] = {}


def _pair_index(E: int) -> tuple[Tensor, Tensor, Tensor]:
    """``ia, ib`` of :func:`_pairs` and the ``(E, E)`` map from ``(a, b)`` to its pair."""
    if E not in _PAIR_INDEX:
        ia, ib = _pairs(E)
        index = torch.empty(E, E, dtype=torch.long)
        index[ia, ib] = torch.arange(ia.numel())
        index[ib, ia] = torch.arange(ia.numel())
        _PAIR_INDEX[E] = (ia, ib, index)
    return _PAIR_INDEX[E]


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
