r"""RBF-network policy: the mean of a GP with learnable pseudo-data (PILCO's ``congp``).

Problem. With features :math:`z = \phi(x) = [x_{\text{other}}, \sin x_{\text{ang}},
\cos x_{\text{ang}}] \in \mathbb R^D`, ``N`` pseudo-inputs :math:`c_i`, targets
:math:`y_{ia}` and length-scales :math:`\ell_{ad}`, control :math:`a` is

.. math::

    \tilde u_a(z) = k_a(z, c)\,\beta_a,\qquad
    \beta_a = (K_a + \sigma_\pi^2 I)^{-1} y_{:,a},\qquad
    k_a(z, z') = \exp\!\big(-\tfrac12 \textstyle\sum_d (z_d - z'_d)^2/\ell_{ad}^2\big),

    u = u_{\max}\sin\tilde u

(unit signal variance, :math:`\sigma_\pi = 0.01` as in PILCO; Deisenroth, Fox &
Rasmussen, IEEE TPAMI 37(2), 2015, Sec. 5.3, eq. (33)). For a Gaussian
:math:`z \sim \mathcal N(m_z, s_z)` the moments of :math:`\tilde u` are those of
a *noise-free* GP mean: :func:`gpcontrol.models.moment_match` with ``W = 0``
gives :math:`S_{ab} = \beta_a^\top Q^{ab}\beta_b - M_aM_b + \delta_{ab}\alpha_a^2`,
and the :math:`\alpha_a^2 = 1` (the prior variance, which a deterministic policy
does not have) is subtracted, leaving exactly :math:`\operatorname{cov}(\tilde u)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gpcontrol.models.moments import GPTerms, _constants, _moment_match
from gpcontrol.policies.linear import _bounds, _check_angles, _SquashedPolicy, features

__all__ = ["RBFPolicy"]

_JITTER = 1e-12  # variance added to cov(u_tilde) against cancellation (see _pre_moments)


class RBFPolicy(_SquashedPolicy):
    r"""Squashed RBF network :math:`u = u_{\max}\sin(k(\phi(x), c)\,\beta)` with exact moments.

    .. math::

        M_{\tilde u} = \beta^\top q,\quad
        S_{\tilde u} = \beta^\top Q \beta - M M^\top,\quad
        C_{\tilde u} = s_z^{-1}\operatorname{cov}(z, \tilde u)

    (noise-free GP moment matching, TPAMI 2015 eqs. (14)-(22) with the
    model-uncertainty term removed; module docstring), then the sine
    squashing.

    Parameters
    ----------
    n : int
        State dimension.
    m : int
        Control dimension.
    u_max : float or array_like, shape (m,)
        Control bounds.
    basis : int
        Number of basis functions (pseudo-inputs) ``N``.
    angle_indices : sequence of int
        States entering through (sin, cos).
    init_mean : array_like, shape (n,), optional
        Pseudo-inputs start at :math:`\phi(x_i)`,
        :math:`x_i \sim \mathcal N(\text{init\_mean}, \operatorname{diag}(\text{init\_std}^2))`
        (PILCO: the start state); default zeros.
    init_std : float or array_like, shape (n,)
        Spread of the initial pseudo-inputs (PILCO's scenarios draw them from
        the start belief, e.g. 0.1 for the cart-pole); default 0.3.
    seed : int
        Seed of the initial pseudo-inputs and targets (``y ~ N(0, 0.1^2)``).
    init_lengthscales : float or array_like, shape (D,)
        Initial length-scales of the features ``[x_other, sin, cos]`` (shared by
        every control); default 1. PILCO's scenarios use 1 on raw states and
        0.7 on the sines and cosines.
    noise_std : float
        :math:`\sigma_\pi` (fixed, regularises :math:`\beta`).

    Attributes
    ----------
    centres : Parameter, shape (N, D)
    targets : Parameter, shape (N, m)
    log_lengthscales : Parameter, shape (m, D)
    """

    def __init__(
        self,
        n: int,
        m: int,
        u_max: Any,
        *,
        basis: int = 10,
        angle_indices: Sequence[int] = (),
        init_mean: Any = None,
        init_std: Any = 0.3,
        seed: int = 0,
        init_lengthscales: Any = 1.0,
        noise_std: float = 0.01,
    ) -> None:
        super().__init__()
        for name, v, lo in (("n", n, 1), ("m", m, 1), ("basis", basis, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not noise_std > 0:
            raise ValueError(f"noise_std must be positive, got {noise_std!r}")
        self.n, self.m, self.N = n, m, basis
        self.angle_indices = _check_angles(n, angle_indices)
        self.D = n + len(self.angle_indices)
        self.noise_var = float(noise_std) ** 2
        self.register_buffer("u_max", _bounds(u_max, m))
        mu0 = np.zeros(n) if init_mean is None else np.asarray(init_mean, dtype=np.float64)
        std0 = np.broadcast_to(np.asarray(init_std, dtype=np.float64), (n,))
        if mu0.shape != (n,) or not np.all(np.isfinite(mu0)) or np.any(std0 < 0):
            raise ValueError(f"init_mean must have shape ({n},) and init_std be >= 0")
        gen = torch.Generator().manual_seed(int(seed))
        x0 = torch.as_tensor(mu0) + torch.as_tensor(std0.copy()) * torch.randn(
            basis, n, generator=gen, dtype=torch.float64
        )
        self.centres = torch.nn.Parameter(features(x0, self.angle_indices))
        self.targets = torch.nn.Parameter(
            0.1 * torch.randn(basis, m, generator=gen, dtype=torch.float64)
        )
        ell0 = np.asarray(init_lengthscales, dtype=np.float64)
        if ell0.ndim == 0:
            ell0 = np.full(self.D, float(ell0))
        if ell0.shape != (self.D,) or not np.all(np.isfinite(ell0)) or np.any(ell0 <= 0):
            raise ValueError(
                f"init_lengthscales must be positive, scalar or shape ({self.D},), "
                f"got {init_lengthscales!r}"
            )
        log_ell = torch.log(torch.as_tensor(ell0.copy())).expand(m, self.D).clone()
        self.log_lengthscales = torch.nn.Parameter(log_ell)

    def terms(self) -> GPTerms:
        r"""The policy as a noise-free GP mean: ``GPTerms`` with ``W = 0``.

        .. math::

            \beta_a = (K_a + \sigma_\pi^2 I)^{-1} y_{:,a}

        computed by a Cholesky solve (differentiable).
        """
        ell = torch.exp(self.log_lengthscales)  # (m, D)
        c = self.centres
        diff = (c[None, :, None, :] - c[None, None, :, :]) / ell[:, None, None, :]
        K = torch.exp(-0.5 * (diff**2).sum(-1))  # (m, N, N)
        eye = torch.eye(self.N, dtype=torch.float64)
        Lk = torch.linalg.cholesky(K + self.noise_var * eye)
        beta = torch.cholesky_solve(self.targets.T.unsqueeze(-1), Lk).squeeze(-1)  # (m, N)
        ones = torch.ones(self.m, dtype=torch.float64)
        return GPTerms(
            X=c,
            beta=beta,
            W=torch.zeros(self.m, self.N, self.N, dtype=torch.float64),
            lengthscales=ell,
            signal_var=ones,
            noise_var=torch.zeros(self.m, dtype=torch.float64),
        )

    def _prepare(self) -> tuple[GPTerms, Any, Tensor]:
        # the moment-matching constants of the terms are built once here, not at every
        # belief (they require gradients, so moment matching would not cache them)
        terms = self.terms()
        return terms, _constants(terms), torch.diag(terms.signal_var)

    def _pre_moments_with(
        self, prepared: Any, mean_z: Tensor, cov_z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        terms, constants, prior = prepared
        # mean_z, cov_z come from a validated belief
        gm = _moment_match(terms, mean_z, cov_z, constants=constants)
        S = gm.S - prior  # remove the prior variance (W = 0 term)
        # The subtraction cancels to ~1e-16 as s_z -> 0 and can leave S indefinite at that
        # level: clamp the diagonal at 0 and add an explicit 1e-12 (rad^2) jitter.
        S = S + torch.diag(torch.relu(-torch.diagonal(S)) + _JITTER)
        return gm.M, S, gm.C

    def _pre_with(self, prepared: Any, z: Tensor) -> Tensor:
        terms = prepared[0]  # (terms, moment constants, prior variance) of _prepare
        ell = terms.lengthscales  # (m, D)
        d = (z[..., None, None, :] - terms.X) / ell[:, None, :]  # (..., m, N, D)
        k = torch.exp(-0.5 * (d**2).sum(-1))  # (..., m, N)
        return (k * terms.beta).sum(-1)
