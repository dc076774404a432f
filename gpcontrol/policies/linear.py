r"""Affine policy on (sin, cos) state features, squashed to the control bounds (PILCO).

Problem. For a state :math:`x \in \mathbb R^n` whose angles enter through
:math:`(\sin, \cos)`, the features are
:math:`z = \phi(x) = [x_{\text{other}}, \sin x_{\text{ang}}, \cos x_{\text{ang}}]`
(the order of :class:`gpcontrol.models.GPDynamics`), and the policy is

.. math::

    \tilde u = W z + b, \qquad u = u_{\max} \sin \tilde u .

For a Gaussian state :math:`x \sim \mathcal N(\mu, \Sigma)` the policy returns
the mean and covariance of :math:`u` and
:math:`C = \Sigma^{-1}\operatorname{cov}(x, u)` (PILCO's ``conlin`` composed with
``gSin``; Deisenroth, Fox & Rasmussen, IEEE TPAMI 37(2), 2015, Sec. 5.3):
the exact moments of :math:`z` (:func:`gpcontrol.gaussian.trig_moments`), the
exact affine map, and the exact squashing moments
(:func:`gpcontrol.models.squash_moments`). The intermediate :math:`z` is
replaced by the Gaussian with its moments (exact without angles).
:math:`\Sigma^{-1}\operatorname{cov}(x, z) = \mathbb E[\partial z/\partial x]^\top`
(Stein's lemma) is formed in closed form, so no inverse of :math:`\Sigma`
is needed and :math:`\Sigma = 0` is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gpcontrol.gaussian import check_covariance, selection_matrix, trig_moments
from gpcontrol.models._fused_trig import TrigPlan, trig_features, trig_plan
from gpcontrol.models.propagation import ControlMoments, PolicyMoments, squash_moments

__all__ = ["LinearPolicy", "feature_moments"]


def _bounds(u_max: Any, m: int) -> Tensor:
    um = torch.as_tensor(np.asarray(u_max, dtype=np.float64)).reshape(-1)
    if um.numel() == 1:
        um = um.expand(m).clone()
    if um.shape != (m,) or not bool(torch.isfinite(um).all()) or bool((um <= 0).any()):
        raise ValueError(
            f"u_max must be positive and finite, scalar or shape ({m},), got {u_max!r}"
        )
    return um


def _check_angles(n: int, angle_indices: Sequence[int]) -> tuple[int, ...]:
    ang = tuple(int(i) for i in angle_indices)
    if len(set(ang)) != len(ang) or any(i < 0 or i >= n for i in ang):
        raise ValueError(f"angle_indices must be distinct integers in [0, {n}), got {ang}")
    return ang


def features(x: Tensor, angle_indices: tuple[int, ...]) -> Tensor:
    """``phi(x) = [x_other, sin x_ang, cos x_ang]`` for ``x (..., n)`` -> ``(..., n + k)``."""
    n = x.shape[-1]
    ang = list(angle_indices)
    other = [i for i in range(n) if i not in angle_indices]
    a = x[..., ang]
    return torch.cat([x[..., other], torch.sin(a), torch.cos(a)], dim=-1)


def feature_moments(
    mean: Tensor, cov: Tensor, angle_indices: tuple[int, ...]
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Moments of :math:`z = \phi(x)` and :math:`J = \Sigma^{-1}\operatorname{cov}(x, z)`.

    .. math::

        J_{:, \text{other}} = I_{:, \text{other}},\quad
        J_{:, \sin a_i} = e_{a_i}\,\mathbb E[\cos a_i],\quad
        J_{:, \cos a_i} = -e_{a_i}\,\mathbb E[\sin a_i]

    (Stein's lemma, :math:`\mathbb E[\partial z/\partial x]^\top`).

    Parameters
    ----------
    mean : Tensor, shape (n,)
    cov : Tensor, shape (n, n)
    angle_indices : tuple of int

    Returns
    -------
    mean_z : Tensor, shape (D,)
    cov_z : Tensor, shape (D, D)
    J : Tensor, shape (n, D)
    """
    n = mean.shape[-1]
    ang = list(angle_indices)
    k = len(ang)
    other = [i for i in range(n) if i not in angle_indices]
    L = torch.as_tensor(selection_matrix(ang, n)) if k else torch.zeros(0, n, dtype=torch.float64)
    mean_a, cov_a = trig_moments(mean, cov, L)  # [x, sin, cos]
    idx = other + list(range(n, n + 2 * k))
    mean_z = mean_a[idx]
    cov_z = cov_a[idx][:, idx]
    eye = torch.eye(n, dtype=torch.float64)
    E_sin, E_cos = mean_a[n : n + k], mean_a[n + k :]
    J = torch.cat([eye[:, other], eye[:, ang] * E_cos, -eye[:, ang] * E_sin], dim=1)
    return mean_z, 0.5 * (cov_z + cov_z.T), J


def _feature_constants(n: int, angle_indices: tuple[int, ...]) -> TrigPlan:
    """Index constants of ``phi(x) = [x_other, sin x_ang, cos x_ang]`` (built once)."""
    k = len(angle_indices)
    other = tuple(i for i in range(n) if i not in angle_indices)
    return trig_plan(n, tuple(angle_indices), other + tuple(range(n, n + 2 * k)))


def _sin_squash(M: Tensor, S: Tensor, u_max: Tensor) -> ControlMoments:
    r""":func:`~gpcontrol.models.squash_moments` (``kind="sin"``) without validation.

    :math:`\mathbb E[u] = u_{\max} e^{-s_{ii}/2}\sin m_i`, the covariance from the
    exact moments of :math:`\sin\tilde u`, :math:`C = \operatorname{diag}(u_{\max}
    e^{-s_{ii}/2}\cos m_i)` (the Jacobian factor of the sines, one fused node).
    """
    m = M.shape[0]
    mean_s, cov_s, J = trig_features(M, S, trig_plan(m, tuple(range(m)), tuple(range(m, 2 * m))))
    return ControlMoments(M=u_max * mean_s, S=u_max[:, None] * cov_s * u_max, C=J * u_max)


class _SquashedPolicy(torch.nn.Module):
    """Shared plumbing: input validation, squashing, deterministic calls."""

    n: int
    m: int
    angle_indices: tuple[int, ...]
    u_max: Tensor

    def _pre_moments(self, mean_z: Tensor, cov_z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self._pre_moments_with(self._prepare(), mean_z, cov_z)

    def _prepare(self) -> Any:
        """Quantities of the current parameters shared by every belief (RBF: GP terms)."""
        return None

    def _pre_moments_with(
        self, prepared: Any, mean_z: Tensor, cov_z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def moment_map(self) -> PolicyMoments:
        r"""The moment map of :meth:`moments` for many beliefs under fixed parameters.

        .. math::

            (\mu, \Sigma) \mapsto (M_u, S_u, C_u)\quad\text{as in :meth:`moments`}

        The parameter-only work (the RBF network's :math:`\beta`, Cholesky of
        its Gram matrix; the feature maps) is done once here and the beliefs are
        not re-validated, so a horizon of :func:`gpcontrol.models.propagate_horizon`
        (which validates its beliefs) pays it once. Call it again after the
        parameters change (PILCO's evaluation calls it once per :math:`J`).

        Returns
        -------
        PolicyMoments
            ``(mean (n,), cov (n, n)) -> ControlMoments``; differentiable.
        """
        prepared = self._prepare()
        consts = _feature_constants(self.n, self.angle_indices)
        u_max = self.u_max

        def moments(mean: Tensor, cov: Tensor) -> ControlMoments:
            mean_z, cov_z, J = trig_features(mean, cov, consts)  # feature_moments, one node
            M, S, C = self._pre_moments_with(prepared, mean_z, cov_z)
            sq = _sin_squash(M, S, u_max)  # symmetrises S
            return ControlMoments(M=sq.M, S=sq.S, C=J @ C @ sq.C)

        return moments

    def control_map(self) -> Callable[[Tensor], Tensor]:
        r"""The deterministic control of :meth:`forward` for many states under fixed parameters.

        .. math::

            x \mapsto u = u_{\max}\sin\tilde u(\phi(x))

        The parameter-only work (the RBF network's :math:`\beta`) is done once
        here, as in :meth:`moment_map`, so a particle rollout of ``T`` steps pays
        it once instead of at every step. Call it again after the parameters change.

        Returns
        -------
        callable
            ``x (..., n) -> u (..., m)`` on float64 tensors (not validated);
            differentiable in ``x`` and the parameters.
        """
        prepared = self._prepare()
        ang, u_max = self.angle_indices, self.u_max

        def control(x: Tensor) -> Tensor:
            return u_max * torch.sin(self._pre_with(prepared, features(x, ang)))

        return control

    def _pre(self, z: Tensor) -> Tensor:
        return self._pre_with(self._prepare(), z)

    def _pre_with(self, prepared: Any, z: Tensor) -> Tensor:
        raise NotImplementedError

    def moments(self, mean: Any, cov: Any) -> ControlMoments:
        r"""Moments of :math:`u` for :math:`x \sim \mathcal N(\mu, \Sigma)` (a ``PolicyMoments``).

        .. math::

            C_u = J\,C_{\tilde u}\,C_{\text{sq}},\qquad
            J = \Sigma^{-1}\operatorname{cov}(x, z),\
            C_{\tilde u} = s_z^{-1}\operatorname{cov}(z, \tilde u),\
            C_{\text{sq}} = s_{\tilde u}^{-1}\operatorname{cov}(\tilde u, u).

        Parameters
        ----------
        mean : Tensor, shape (n,)
        cov : Tensor, shape (n, n)
            Symmetric positive semi-definite.

        Returns
        -------
        ControlMoments
            ``M (m,)``, ``S (m, m)``, ``C (n, m)``; differentiable in the
            belief and the policy parameters.
        """
        mu = mean if isinstance(mean, Tensor) else torch.as_tensor(np.asarray(mean, float))
        mu = mu.to(torch.float64)
        if mu.shape != (self.n,):
            raise ValueError(f"mean must have shape ({self.n},), got {tuple(mu.shape)}")
        Sigma = check_covariance("cov", cov, self.n)
        mean_z, cov_z, J = feature_moments(mu, Sigma, self.angle_indices)
        M, S, C = self._pre_moments(mean_z, cov_z)
        sq = squash_moments(M, 0.5 * (S + S.T), self.u_max)
        return ControlMoments(M=sq.M, S=sq.S, C=J @ C @ sq.C)

    def forward(self, x: Any, t: int | None = None) -> Any:
        r"""Deterministic control :math:`u = u_{\max}\sin\tilde u(\phi(x))`.

        Parameters
        ----------
        x : Tensor or ndarray, shape (..., n)
        t : int, optional
            Ignored (time-invariant policy); lets the policy be used as
            ``policy(x, t)`` in :func:`gpcontrol.rollout.rollout`.

        Returns
        -------
        Tensor or ndarray, shape (..., m)
            Same type as ``x`` (NumPy in, NumPy out, without gradients).
        """
        if isinstance(x, Tensor):
            xt = x.to(torch.float64)
            if xt.shape[-1:] != (self.n,):
                raise ValueError(f"x must have shape (..., {self.n}), got {tuple(xt.shape)}")
            return self.u_max * torch.sin(self._pre(features(xt, self.angle_indices)))
        xa = np.asarray(x, dtype=np.float64)
        if xa.shape[-1:] != (self.n,):
            raise ValueError(f"x must have shape (..., {self.n}), got {xa.shape}")
        with torch.no_grad():
            return self.forward(torch.as_tensor(xa)).numpy()


class LinearPolicy(_SquashedPolicy):
    r"""Affine policy :math:`u = u_{\max}\sin(W\phi(x) + b)` with exact Gaussian moments.

    .. math::

        M_{\tilde u} = W m_z + b,\qquad S_{\tilde u} = W s_z W^\top,\qquad
        C_{\tilde u} = W^\top

    then :func:`gpcontrol.models.squash_moments` (module docstring; PILCO's
    ``conlin`` + ``gSin``, TPAMI 2015 Sec. 5.3).

    Parameters
    ----------
    n : int
        State dimension.
    m : int
        Control dimension.
    u_max : float or array_like, shape (m,)
        Control bounds (positive).
    angle_indices : sequence of int
        States entering through (sin, cos).
    seed : int
        Seed of the small random initial weights (``W ~ N(0, 0.1^2)``, ``b = 0``).

    Attributes
    ----------
    W : Parameter, shape (m, D)
        ``D = n + len(angle_indices)``.
    b : Parameter, shape (m,)
    """

    def __init__(
        self,
        n: int,
        m: int,
        u_max: Any,
        *,
        angle_indices: Sequence[int] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m must be an integer >= 1, got {m!r}")
        self.n, self.m = n, m
        self.angle_indices = _check_angles(n, angle_indices)
        self.D = n + len(self.angle_indices)
        self.register_buffer("u_max", _bounds(u_max, m))
        gen = torch.Generator().manual_seed(int(seed))
        self.W = torch.nn.Parameter(
            0.1 * torch.randn(m, self.D, generator=gen, dtype=torch.float64)
        )
        self.b = torch.nn.Parameter(torch.zeros(m, dtype=torch.float64))

    def _pre_moments_with(
        self, prepared: Any, mean_z: Tensor, cov_z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self.W @ mean_z + self.b, self.W @ cov_z @ self.W.T, self.W.T

    def _pre_with(self, prepared: Any, z: Tensor) -> Tensor:
        return z @ self.W.T + self.b
