r"""Gaussian moment primitives in torch: trigonometric features, exp-quadratic integrals.

PILCO-style methods push a Gaussian state :math:`x \sim \mathcal N(\mu, \Sigma)`
through smooth maps and need the first two moments of the result in closed
form, differentiable with respect to :math:`(\mu, \Sigma)`. This module
provides the two building blocks that everything else reduces to:

* **trigonometric features** (:func:`trig_moments`): for angles
  :math:`a = L x + o` the exact mean and covariance of

  .. math::

      \phi(x) = \begin{bmatrix} x \\ \sin a \\ \cos a \end{bmatrix},

  using :math:`\mathbb E[e^{\mathrm i a_i}] = e^{-\Sigma^a_{ii}/2} e^{\mathrm i\mu^a_i}`
  and Stein's lemma :math:`\operatorname{Cov}[x, g(a_i)] = \operatorname{Cov}[x,
  a_i]\,\mathbb E[g'(a_i)]`;
* **exp-quadratic integrals** (:func:`expected_exp_quadratic`): the Gaussian
  integral of :math:`g(y) = \exp(-\tfrac12\lVert P y - t\rVert^2)`, and the
  moments of the "tilted" Gaussian :math:`\propto g(y)\,\mathcal N(y; m, S)`.
  Squared-exponential kernels and PILCO's saturating cost are of this form.

It also holds the numerical guards used by the moment-matching code:
:func:`check_covariance` (symmetric, positive semi-definite, finite) and
:func:`safe_cholesky` (Cholesky with reported, increasing diagonal jitter).

Everything is float64 torch, batched over leading dimensions ``(..., n)`` /
``(..., n, n)``, and differentiable with autograd. NumPy inputs are accepted
and converted.

References
----------
M. P. Deisenroth, *Efficient Reinforcement Learning using Gaussian Processes*,
PhD thesis, KIT Scientific Publishing, 2010 (appendix on Gaussian and
trigonometric integrals). M. P. Deisenroth, D. Fox, C. E. Rasmussen, "Gaussian
Processes for Data-Efficient Learning in Robotics and Control", IEEE TPAMI
37(2), 2015.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array

__all__ = [
    "check_covariance",
    "safe_cholesky",
    "selection_matrix",
    "trig_moments",
    "expected_exp_quadratic",
    "ExpQuadraticMoments",
]

logger = logging.getLogger(__name__)

Tensor = torch.Tensor


# --------------------------------------------------------------------- checks
def _as_tensor(name: str, value: Any) -> Tensor:
    """Convert ``value`` (NumPy, torch, nested lists) to a finite float64 tensor.

    Torch tensors keep their autograd graph (a float32 tensor is cast, which is
    differentiable). Raises ``ValueError`` naming ``name`` for NaN, inf or
    non-numeric input and ``TypeError`` for complex tensors.
    """
    if isinstance(value, Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor")
        if value.dtype == torch.bool:
            raise TypeError(f"{name} must be a float tensor, got a bool tensor")
        t = value.to(torch.float64)
    else:
        t = torch.from_numpy(np.array(as_float_array(name, value), dtype=np.float64, copy=True))
    with torch.no_grad():
        if torch.isnan(t).any():
            raise ValueError(f"{name} contains NaN")
        if torch.isinf(t).any():
            raise ValueError(f"{name} contains inf")
    return t


def check_covariance(name: str, cov: Any, size: int | None = None, *, tol: float = 1e-8) -> Tensor:
    r"""Check a (batch of) covariance matrices and return them symmetrised.

    A valid covariance is finite, square, symmetric and positive
    semi-definite:

    .. math::

        \max_{ij} |\Sigma_{ij} - \Sigma_{ji}| \le \tau \max_{ij} |\Sigma_{ij}|,
        \qquad \lambda_{\min}(\Sigma) \ge -\tau\, \max_i |\lambda_i(\Sigma)| .

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    cov : array_like or torch.Tensor, shape (..., n, n)
        Covariance matrices (NumPy or torch; torch keeps its autograd graph).
    size : int, optional
        Required ``n``.
    tol : float
        Relative tolerance :math:`\tau` for asymmetry and negative eigenvalues
        (rounding in propagated covariances is accepted, real indefiniteness
        is not).

    Returns
    -------
    torch.Tensor, shape (..., n, n)
        float64, :math:`(\Sigma + \Sigma^\top)/2`.

    Raises
    ------
    ValueError
        Naming ``name``: wrong shape, NaN/inf, asymmetry or a negative
        eigenvalue beyond the tolerance.
    """
    S = _as_tensor(name, cov)
    if S.ndim < 2 or S.shape[-1] != S.shape[-2] or (size is not None and S.shape[-1] != size):
        k = "n" if size is None else str(size)
        raise ValueError(f"{name} must have shape (..., {k}, {k}), got {tuple(S.shape)}")
    if S.shape[-1] == 0:
        return S
    with torch.no_grad():
        Sd = S.detach()
        scale = Sd.abs().amax(dim=(-2, -1))
        asym = (Sd - Sd.mT).abs().amax(dim=(-2, -1))
        if (asym > tol * scale).any():
            raise ValueError(
                f"{name} must be symmetric; largest asymmetry {float(asym.max()):.3e} "
                f"(relative tolerance {tol:g})"
            )
        lam = torch.linalg.eigvalsh(0.5 * (Sd + Sd.mT))
        lam_min = lam[..., 0]
        lam_abs = lam.abs().amax(dim=-1)
        if (lam_min < -tol * lam_abs).any():
            raise ValueError(
                f"{name} must be positive semi-definite; smallest eigenvalue "
                f"{float(lam_min.min()):.3e}"
            )
    return 0.5 * (S + S.mT)


def safe_cholesky(
    A: Any,
    *,
    jitter: float = 1e-10,
    max_tries: int = 6,
    name: str = "matrix",
) -> tuple[Tensor, float]:
    r"""Cholesky factor of a symmetric positive definite matrix, retrying with jitter.

    First tries :math:`A = L L^\top`. If that fails, retries with

    .. math::

        A + \varepsilon_i I, \qquad \varepsilon_i = \text{jitter}\cdot
        \bar d \cdot 10^{\,i}, \quad i = 0, \dots, \text{max\_tries} - 1,

    where :math:`\bar d` is the mean absolute diagonal of ``A`` (1 if it is
    zero), so the jitter is relative to the matrix's scale. Any jitter that was
    needed is logged as a warning and returned, never applied silently.

    Parameters
    ----------
    A : array_like or torch.Tensor, shape (..., n, n)
        Symmetric matrices (a batch gets one common jitter).
    jitter : float
        First relative jitter (> 0).
    max_tries : int
        Number of jittered attempts (>= 0), each ten times the previous one.
    name : str
        What ``A`` is, for the log message and the error.

    Returns
    -------
    L : torch.Tensor, shape (..., n, n)
        Lower-triangular factor (float64, differentiable).
    jitter_used : float
        Absolute amount added to the diagonal (0.0 if none).

    Raises
    ------
    ValueError
        ``A`` has the wrong shape, contains NaN/inf or is not symmetric.
    numpy.linalg.LinAlgError
        (a ``ValueError`` subclass) when even the largest jitter fails; the
        message names ``name`` and reports the smallest eigenvalue.
    """
    if isinstance(jitter, bool) or not isinstance(jitter, numbers.Real) or not jitter > 0:
        raise ValueError(f"jitter must be a positive number, got {jitter!r}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, numbers.Integral) or max_tries < 0:
        raise ValueError(f"max_tries must be an integer >= 0, got {max_tries!r}")
    M = _as_tensor(name, A)
    if M.ndim < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"{name} must have shape (..., n, n), got {tuple(M.shape)}")
    with torch.no_grad():
        scale_max = float(M.detach().abs().amax()) if M.numel() else 0.0
        asym = float((M.detach() - M.detach().mT).abs().amax()) if M.numel() else 0.0
    if asym > 1e-8 * scale_max:
        raise ValueError(f"{name} must be symmetric; largest asymmetry {asym:.3e}")
    L, info = torch.linalg.cholesky_ex(M)
    if not bool(info.any()):
        return L, 0.0
    n = M.shape[-1]
    diag = M.detach().diagonal(dim1=-2, dim2=-1).abs()
    d_bar = float(diag.mean()) if diag.numel() else 1.0
    if not d_bar > 0:
        d_bar = 1.0
    eye = torch.eye(n, dtype=M.dtype, device=M.device)
    eps = 0.0
    for i in range(int(max_tries)):
        eps = float(jitter) * d_bar * 10.0**i
        L, info = torch.linalg.cholesky_ex(M + eps * eye)
        if not bool(info.any()):
            logger.warning(
                "%s: Cholesky needed diagonal jitter %.3e (%.1e relative to the mean diagonal)",
                name,
                eps,
                eps / d_bar,
            )
            return L, eps
    with torch.no_grad():
        lam_min = float(torch.linalg.eigvalsh(0.5 * (M + M.mT)).min())
    raise np.linalg.LinAlgError(
        f"{name} is not positive definite: Cholesky failed even with {eps:.3e} added to the "
        f"diagonal after {max_tries} tries (smallest eigenvalue {lam_min:.3e})"
    )


def selection_matrix(indices: Any, n: int) -> NDArray[np.float64]:
    r"""Rows of the identity that pick ``indices`` out of an ``n``-vector.

    .. math::

        L_{ij} = [\,j = \text{indices}_i\,], \qquad L x = x_{\text{indices}}.

    Handy for :func:`trig_moments` with a system's ``angle_indices``.

    Parameters
    ----------
    indices : sequence of int, length k
    n : int
        Dimension of the vector.

    Returns
    -------
    ndarray, shape (k, n)
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    idx = np.asarray(indices).reshape(-1)
    if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must be integers in [0, {n}), got {idx.tolist()}")
    L = np.zeros((idx.size, n))
    L[np.arange(idx.size), idx.astype(int)] = 1.0
    return L


def _check_gaussian(
    mean: Any, cov: Any, size: int | None = None, *, names: tuple[str, str] = ("mean", "cov")
) -> tuple[Tensor, Tensor]:
    """Validate ``mean (..., n)`` and ``cov (..., n, n)`` with broadcastable batch shapes."""
    mu = _as_tensor(names[0], mean)
    if mu.ndim < 1 or (size is not None and mu.shape[-1] != size):
        k = "n" if size is None else str(size)
        raise ValueError(f"{names[0]} must have shape (..., {k}), got {tuple(mu.shape)}")
    S = check_covariance(names[1], cov, mu.shape[-1])
    try:
        torch.broadcast_shapes(mu.shape[:-1], S.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"batch shapes of {names[0]} {tuple(mu.shape[:-1])} and {names[1]} "
            f"{tuple(S.shape[:-2])} do not broadcast"
        ) from None
    return mu, S


def _matrix(name: str, value: Any, cols: int, like: Tensor) -> Tensor:
    M = _as_tensor(name, value).to(like.device)
    if M.ndim != 2 or M.shape[1] != cols:
        raise ValueError(f"{name} must have shape (k, {cols}), got {tuple(M.shape)}")
    return M


def _vector(name: str, value: Any, size: int, like: Tensor) -> Tensor:
    v = _as_tensor(name, value).to(like.device)
    if v.ndim == 0 and size == 1:
        v = v.reshape(1)
    if v.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {tuple(v.shape)}")
    return v


# ------------------------------------------------------------ trig features
def trig_moments(
    mean: Any,
    cov: Any,
    L: ArrayLike | Tensor | None = None,
    offset: ArrayLike | Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Exact mean and covariance of :math:`[x, \sin a, \cos a]` for Gaussian :math:`x`.

    With :math:`x \sim \mathcal N(\mu, \Sigma)` and angles :math:`a = L x + o`
    (:math:`\mu_a = L\mu + o`, :math:`\Sigma_a = L\Sigma L^\top`,
    :math:`e_i = \exp(-\Sigma_{a,ii}/2)`):

    .. math::

        \mathbb E[\sin a_i] = e_i \sin\mu_{a,i}, \qquad
        \mathbb E[\cos a_i] = e_i \cos\mu_{a,i},

        \operatorname{Cov}[\sin a_i, \sin a_j] = \tfrac{e_i e_j}{2}\big[
            (e^{\Sigma_{a,ij}} - 1)\cos(\mu_{a,i} - \mu_{a,j})
          - (e^{-\Sigma_{a,ij}} - 1)\cos(\mu_{a,i} + \mu_{a,j})\big],

        \operatorname{Cov}[\cos a_i, \cos a_j] = \tfrac{e_i e_j}{2}\big[
            (e^{\Sigma_{a,ij}} - 1)\cos(\mu_{a,i} - \mu_{a,j})
          + (e^{-\Sigma_{a,ij}} - 1)\cos(\mu_{a,i} + \mu_{a,j})\big],

        \operatorname{Cov}[\sin a_i, \cos a_j] = \tfrac{e_i e_j}{2}\big[
            (e^{-\Sigma_{a,ij}} - 1)\sin(\mu_{a,i} + \mu_{a,j})
          + (e^{\Sigma_{a,ij}} - 1)\sin(\mu_{a,i} - \mu_{a,j})\big],

        \operatorname{Cov}[x, \sin a_i] = (\Sigma L^\top)_{:,i}\, \mathbb E[\cos a_i],
        \qquad
        \operatorname{Cov}[x, \cos a_i] = -(\Sigma L^\top)_{:,i}\, \mathbb E[\sin a_i].

    These follow from :math:`\mathbb E[\cos(a_i \pm a_j)]` of the Gaussian
    :math:`a_i \pm a_j` and from Stein's lemma. The :math:`e^{s}-1` factors are
    evaluated with ``expm1`` and rearranged so that neither tiny nor large
    angle variances lose accuracy or overflow. (Deisenroth 2010, appendix on
    trigonometric integrals; PILCO's ``gTrig``.)

    Parameters
    ----------
    mean : array_like or torch.Tensor, shape (..., n)
    cov : array_like or torch.Tensor, shape (..., n, n)
        Symmetric positive semi-definite (checked by :func:`check_covariance`).
    L : array_like, shape (k, n), optional
        Angle map; default the identity (every state is an angle). Use
        :func:`selection_matrix` to pick a system's ``angle_indices``.
    offset : array_like, shape (k,), optional
        Angle offsets :math:`o`; default zero.

    Returns
    -------
    mean_phi : torch.Tensor, shape (..., n + 2k)
        :math:`\mathbb E[\phi]`, ordered ``[x, sin a, cos a]``.
    cov_phi : torch.Tensor, shape (..., n + 2k, n + 2k)
        :math:`\operatorname{Cov}[\phi]`, including every cross-covariance.

    Examples
    --------
    >>> import numpy as np
    >>> m, S = trig_moments(np.zeros(2), np.eye(2), L=[[1.0, 0.0]])
    >>> tuple(m.shape), tuple(S.shape)
    ((4,), (4, 4))
    """
    mu, S = _check_gaussian(mean, cov)
    n = mu.shape[-1]
    Lt = (
        torch.eye(n, dtype=torch.float64, device=mu.device) if L is None else _matrix("L", L, n, mu)
    )
    k = Lt.shape[0]
    o = (
        torch.zeros(k, dtype=torch.float64, device=mu.device)
        if offset is None
        else _vector("offset", offset, k, mu)
    )
    return _trig_moments(mu, S, Lt, o)


def _e_expm1(s: Tensor, d: Tensor) -> Tensor:
    """``exp(-d/2) * expm1(s)`` without overflow, for ``s <= d/2`` (true when d = s_ii + s_jj)."""
    s_pos = s.clamp_min(0.0)
    s_neg = s.clamp_max(0.0)
    pos = -torch.exp(s_pos - 0.5 * d) * torch.expm1(-s_pos)
    neg = torch.exp(-0.5 * d) * torch.expm1(s_neg)
    return torch.where(s > 0, pos, neg)


def _trig_moments(mu: Tensor, S: Tensor, L: Tensor, o: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`trig_moments` on validated float64 tensors."""
    k = L.shape[0]
    batch = torch.broadcast_shapes(mu.shape[:-1], S.shape[:-2])
    n = mu.shape[-1]
    mu = mu.expand(*batch, n)
    S = S.expand(*batch, n, n)
    if k == 0:
        return mu, S
    ma = mu @ L.T + o  # (..., k)
    C = S @ L.T  # Cov[x, a], (..., n, k)
    Sa = L @ C  # (..., k, k)
    Sa = 0.5 * (Sa + Sa.mT)
    va = Sa.diagonal(dim1=-2, dim2=-1)
    e = torch.exp(-0.5 * va)
    Es, Ec = e * torch.sin(ma), e * torch.cos(ma)
    dsum = va.unsqueeze(-1) + va.unsqueeze(-2)  # s_ii + s_jj
    # e_i e_j (exp(+-s_ij) - 1), both signs in one pass (fewer small-tensor ops)
    Pp, Pm = _e_expm1(torch.stack([Sa, -Sa]), dsum).unbind(0)
    msum = ma.unsqueeze(-1) + ma.unsqueeze(-2)
    mdiff = ma.unsqueeze(-1) - ma.unsqueeze(-2)
    PpCd = Pp * torch.cos(mdiff)  # each shared by Css and Ccc
    PmCs = Pm * torch.cos(msum)
    Css = 0.5 * (PpCd - PmCs)
    Ccc = 0.5 * (PpCd + PmCs)
    Csc = 0.5 * (Pm * torch.sin(msum) + Pp * torch.sin(mdiff))
    Cxs = C * Ec.unsqueeze(-2)
    Cxc = -C * Es.unsqueeze(-2)
    top = torch.cat([S, Cxs, Cxc], dim=-1)
    mid = torch.cat([Cxs.mT, Css, Csc], dim=-1)
    bot = torch.cat([Cxc.mT, Csc.mT, Ccc], dim=-1)
    cov = torch.cat([top, mid, bot], dim=-2)
    return torch.cat([mu, Es, Ec], dim=-1), 0.5 * (cov + cov.mT)


# --------------------------------------------------- exp-quadratic integrals
class ExpQuadraticMoments(NamedTuple):
    """Result of :func:`expected_exp_quadratic`.

    Attributes
    ----------
    expectation : torch.Tensor, shape (...)
        :math:`\\mathbb E[g(y)]`.
    mean : torch.Tensor, shape (..., p)
        Mean of the tilted density :math:`\\propto g(y)\\,\\mathcal N(y; m, S)`.
    cov : torch.Tensor, shape (..., p, p)
        Its covariance.
    """

    expectation: Tensor
    mean: Tensor
    cov: Tensor


def expected_exp_quadratic(mean: Any, cov: Any, P: Any, t: Any) -> ExpQuadraticMoments:
    r"""Gaussian mean of :math:`\exp(-\tfrac12\lVert P y - t\rVert^2)` and the tilted moments.

    For :math:`y \sim \mathcal N(m, S)` and :math:`M = I + P S P^\top`
    (eigenvalues :math:`\ge 1`, so always well-conditioned, even for singular
    :math:`S`):

    .. math::

        \mathbb E\big[e^{-\frac12\lVert Py - t\rVert^2}\big]
          = \det(M)^{-1/2} \exp\!\big(-\tfrac12 (Pm - t)^\top M^{-1} (Pm - t)\big),

        m' = m - S P^\top M^{-1}(Pm - t), \qquad
        S' = S - S P^\top M^{-1} P S,

    where :math:`\mathcal N(m', S')` is the normalised product
    :math:`g(y)\,\mathcal N(y; m, S)`, so that
    :math:`\mathbb E[g(y) h(y)] = \mathbb E[g]\, \mathbb E_{\mathcal N(m', S')}[h]`.
    With :math:`P^\top P = W/\sigma^2` this is the expected saturating cost of
    Deisenroth (2010) and PILCO (TPAMI 2015); with :math:`P` the inverse
    length-scales it is the expected squared-exponential kernel.

    Parameters
    ----------
    mean : array_like or torch.Tensor, shape (..., p)
    cov : array_like or torch.Tensor, shape (..., p, p)
    P : array_like, shape (r, p)
    t : array_like, shape (r,)

    Returns
    -------
    ExpQuadraticMoments
        ``(expectation (...), mean (..., p), cov (..., p, p))``.
    """
    mu, S = _check_gaussian(mean, cov)
    p = mu.shape[-1]
    Pt = _matrix("P", P, p, mu)
    tt = _vector("t", t, Pt.shape[0], mu)
    return _exp_quadratic_tilted(mu, S, Pt, tt)


def _exp_quadratic_parts(
    mu: Tensor, S: Tensor, P: Tensor, t: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``E[g]`` plus the pieces the tilted moments reuse: ``SP``, ``alpha``, ``Lc``."""
    r = P.shape[0]
    res = mu @ P.T - t  # (..., r)
    SP = S @ P.T  # (..., p, r)
    M = torch.eye(r, dtype=mu.dtype, device=mu.device) + P @ SP
    M = 0.5 * (M + M.mT)
    Lc, _ = safe_cholesky(M, name="I + P cov P^T")
    logdet = 2.0 * torch.log(Lc.diagonal(dim1=-2, dim2=-1)).sum(-1)
    batch = torch.broadcast_shapes(res.shape[:-1], Lc.shape[:-2])
    res_b = res.expand(*batch, r).unsqueeze(-1)
    alpha = torch.cholesky_solve(res_b, Lc.expand(*batch, r, r))  # M^{-1} (Pm - t)
    quad = (res_b * alpha).sum((-2, -1))
    return torch.exp(-0.5 * (logdet + quad)), SP, alpha, Lc


def _exp_quadratic(mu: Tensor, S: Tensor, P: Tensor, t: Tensor) -> Tensor:
    """:math:`\\mathbb E[g]` of :func:`expected_exp_quadratic` on validated tensors."""
    return _exp_quadratic_parts(mu, S, P, t)[0]


def _exp_quadratic_tilted(mu: Tensor, S: Tensor, P: Tensor, t: Tensor) -> ExpQuadraticMoments:
    """:func:`expected_exp_quadratic` on validated tensors."""
    E, SP, alpha, Lc = _exp_quadratic_parts(mu, S, P, t)
    m2 = mu - (SP @ alpha).squeeze(-1)
    B = torch.linalg.solve_triangular(Lc, SP.mT, upper=False)  # Lc^{-1} P S, (..., r, p)
    S2 = S - B.mT @ B
    return ExpQuadraticMoments(E, m2, 0.5 * (S2 + S2.mT))
