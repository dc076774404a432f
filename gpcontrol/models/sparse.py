r"""Sparse GP regression with inducing inputs: SGPR (Titsias) and FITC (Snelson-Ghahramani).

Problem. For ``E`` independent outputs with training inputs
:math:`X \in \mathbb R^{N\times D}`, targets :math:`y_a`, inducing inputs
:math:`U \in \mathbb R^{M\times D}` (shared, :math:`M \ll N`),
:math:`Q_{ff} = K_{fu}K_{uu}^{-1}K_{uf}` and a diagonal
:math:`\Lambda_a`, both methods use the Gaussian likelihood term
:math:`\log\mathcal N(y_a \mid 0, Q_{ff} + \Lambda_a)`:

.. math::

    \text{SGPR:}\ \ \mathcal L_a = \log\mathcal N(y_a\mid 0, Q_{ff} + \sigma_a^2 I)
        - \frac{1}{2\sigma_a^2}\operatorname{tr}(K_{ff} - Q_{ff}),
    \qquad \Lambda_a = \sigma_a^2 I,

    \text{FITC:}\ \ \mathcal L_a = \log\mathcal N(y_a\mid 0, Q_{ff} + \Lambda_a),
    \qquad \Lambda_a = \sigma_a^2 I + \operatorname{diag}(K_{ff} - Q_{ff}),

(Titsias, AISTATS 2009, eq. (9); Snelson & Ghahramani, NIPS 2005; the PILCO
package uses FITC past 300 points). Both give the predictive

.. math::

    \mu_a(x) = k_{xu}\beta_a,\quad
    \sigma_a^2(x) = k_{xx} - k_{xu}(K_{uu}^{-1} - \Sigma_a)k_{ux},\quad
    \Sigma_a = (K_{uu} + K_{uf}\Lambda_a^{-1}K_{fu})^{-1},\
    \beta_a = \Sigma_a K_{uf}\Lambda_a^{-1}y_a,

which has the form moment matching needs (:class:`gpcontrol.models.GPTerms`
with ``X = U``, ``beta``, ``W = K_uu^{-1} - Sigma``). Computed stably with
:math:`K_{uu} = L L^\top`, :math:`A = L^{-1}K_{uf}\Lambda^{-1/2}`,
:math:`B = I + AA^\top = L_B L_B^\top`, :math:`c = L_B^{-1}A\Lambda^{-1/2}y`
(Rasmussen & Williams 2006, Sec. 8.3; GPflow's SGPR):

.. math::

    \log\mathcal N(y\mid 0, Q_{ff}+\Lambda) = -\tfrac12\big(y^\top\Lambda^{-1}y - c^\top c
        + \textstyle\sum\log\Lambda + 2\sum\log\operatorname{diag}L_B + N\log 2\pi\big),

    \beta = L^{-\top}L_B^{-\top}c,\qquad
    W = L^{-\top}(I - B^{-1})L^{-1}.

With :math:`U = X` both reduce to the exact GP.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from gpcontrol.gaussian import safe_cholesky

__all__ = ["SparsePosterior", "sparse_posterior", "SPARSE_METHODS"]

#: Names of the supported sparse approximations.
SPARSE_METHODS = ("sgpr", "fitc")


@dataclasses.dataclass(frozen=True)
class SparsePosterior:
    """Factors of a batched sparse GP posterior (``E`` outputs, ``M`` inducing inputs).

    Attributes
    ----------
    L : Tensor, shape (E, M, M)
        Cholesky factor of :math:`K_{uu}` (plus ``jitter``).
    LB : Tensor, shape (E, M, M)
        Cholesky factor of :math:`B = I + AA^\\top`.
    beta : Tensor, shape (E, M)
        Posterior-mean weights.
    log_likelihood : Tensor, shape (E,)
        :math:`\\mathcal L_a` (the training objective, not divided by N).
    jitter : float
        Diagonal jitter :math:`K_{uu}` needed (absolute).
    """

    L: Tensor
    LB: Tensor
    beta: Tensor
    log_likelihood: Tensor
    jitter: float

    def W(self) -> Tensor:  # noqa: N802 - math name
        r""":math:`K_{uu}^{-1} - \Sigma = L^{-\top}(I - B^{-1})L^{-1}`, shape (E, M, M)."""
        M = self.L.shape[-1]
        eye = torch.eye(M, dtype=self.L.dtype)
        inner = eye - torch.cholesky_inverse(self.LB)
        Linv = torch.linalg.solve_triangular(self.L, eye.expand_as(self.L), upper=False)
        Wm = Linv.mT @ inner @ Linv
        return 0.5 * (Wm + Wm.mT)

    def variance_reduction(self, Kux: Tensor) -> Tensor:
        r""":math:`k_{xu}(K_{uu}^{-1} - \Sigma)k_{ux}` for ``Kux (E, M, b)``, shape (E, b)."""
        v1 = torch.linalg.solve_triangular(self.L, Kux, upper=False)
        v2 = torch.linalg.solve_triangular(self.LB, v1, upper=False)
        return (v1**2).sum(-2) - (v2**2).sum(-2)


def sparse_posterior(
    Kuu: Tensor,
    Kuf: Tensor,
    kff_diag: Tensor,
    y: Tensor,
    noise_var: Tensor,
    *,
    method: str = "sgpr",
    jitter: float = 1e-8,
) -> SparsePosterior:
    r"""SGPR or FITC objective and posterior factors (module docstring), batched over outputs.

    .. math::

        \mathcal L_a = \log\mathcal N(y_a\mid 0, Q_{ff} + \Lambda_a)
            \ [-\ \operatorname{tr}(K_{ff} - Q_{ff})/(2\sigma_a^2)\ \text{for SGPR}]

    Parameters
    ----------
    Kuu : Tensor, shape (E, M, M)
    Kuf : Tensor, shape (E, M, N)
    kff_diag : Tensor, shape (E, N)
        Diagonal of :math:`K_{ff}`.
    y : Tensor, shape (E, N)
    noise_var : Tensor, shape (E,)
    method : {"sgpr", "fitc"}
    jitter : float
        First relative jitter tried by :func:`gpcontrol.gaussian.safe_cholesky`
        if :math:`K_{uu}` is numerically singular (none is added otherwise).

    Returns
    -------
    SparsePosterior
    """
    if method not in SPARSE_METHODS:
        raise ValueError(f"method must be one of {SPARSE_METHODS}, got {method!r}")
    E, M, N = Kuf.shape
    L, jit = safe_cholesky(0.5 * (Kuu + Kuu.mT), jitter=jitter, name="K_uu (sparse GP)")
    V = torch.linalg.solve_triangular(L, Kuf, upper=False)  # L^{-1} K_uf, (E, M, N)
    qff_diag = (V**2).sum(-2)  # diag(Q_ff)
    gap = (kff_diag - qff_diag).clamp_min(0.0)  # diag(K_ff - Q_ff) >= 0 up to rounding
    if method == "fitc":
        lam = noise_var[:, None] + gap
    else:
        lam = noise_var[:, None].expand(E, N)
    A = V / lam.sqrt().unsqueeze(-2)
    B = torch.eye(M, dtype=Kuf.dtype) + A @ A.mT
    LB = torch.linalg.cholesky(0.5 * (B + B.mT))  # eigenvalues >= 1: always succeeds
    c = torch.linalg.solve_triangular(LB, (A @ (y / lam.sqrt()).unsqueeze(-1)), upper=False)
    quad = (y**2 / lam).sum(-1) - (c**2).sum((-2, -1))
    logdet = torch.log(lam).sum(-1) + 2.0 * torch.log(torch.diagonal(LB, dim1=-2, dim2=-1)).sum(-1)
    ll = -0.5 * (quad + logdet + N * math.log(2.0 * math.pi))
    if method == "sgpr":
        ll = ll - 0.5 * gap.sum(-1) / noise_var
    beta = torch.linalg.solve_triangular(
        L.mT, torch.linalg.solve_triangular(LB.mT, c, upper=True), upper=True
    ).squeeze(-1)
    return SparsePosterior(L=L, LB=LB, beta=beta, log_likelihood=ll, jitter=jit)
