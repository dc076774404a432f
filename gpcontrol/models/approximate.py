r"""Linearised (EKF-style) and unscented belief propagation through a GP dynamics model.

Problem. Given the Gaussian joint belief :math:`w = [x_t, u_t] \sim \mathcal N(m_w, S_w)`
built by :func:`gpcontrol.models.propagate` from the state belief and the policy's
moments, and a GP model :math:`x_{t+1} = x_t + \Delta(w)` with posterior mean
:math:`\mu_\Delta(w)` and variance :math:`\sigma^2_\Delta(w)`, approximate the mean
and covariance of :math:`x_{t+1}` by cheaper rules than exact moment matching
(:mod:`gpcontrol.models.moments`):

* **linearised** (extended Kalman filter; Ko & Fox, *GP-BayesFilters*, Autonomous
  Robots 27, 2009, Sec. 4.2): with :math:`g(w) = x + \mu_\Delta(w)` and
  :math:`J = \partial g/\partial w` at :math:`m_w`,

  .. math::

      \mu_{t+1} = g(m_w),\qquad
      \Sigma_{t+1} = J S_w J^\top + \operatorname{diag}\sigma^2_\Delta(m_w);

* **unscented** (Julier & Uhlmann, *Unscented filtering and nonlinear estimation*,
  Proc. IEEE 92(3), 2004, eqs. (12)-(15); Ko & Fox 2009, Sec. 4.3): with
  :math:`d = n + m`, a factor :math:`L L^\top = S_w`, sigma points
  :math:`w_0 = m_w`, :math:`w_{\pm i} = m_w \pm \sqrt{d+\kappa}\,L_{\cdot i}` and
  weights :math:`\omega_0 = \kappa/(d+\kappa)`, :math:`\omega_{\pm i} = 1/(2(d+\kappa))`,

  .. math::

      \mu_{t+1} = \textstyle\sum_i \omega_i g(w_i),\qquad
      \Sigma_{t+1} = \textstyle\sum_i \omega_i (g(w_i) - \mu_{t+1})(g(w_i) - \mu_{t+1})^\top
          + \operatorname{diag}\textstyle\sum_i \omega_i\sigma^2_\Delta(w_i).

Both use the model's deterministic prediction :meth:`GPDynamics.predict` (so angles
enter through their exact :math:`(\sin, \cos)` features) and are differentiable by
torch autograd with respect to the belief and the policy parameters. Both equal the
GP prediction at a zero input covariance; the unscented mean is exact for any
quadratic :math:`g` and both covariances are exact for an affine :math:`g` with
constant variance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gpcontrol.gaussian import check_covariance
from gpcontrol.models.propagation import PolicyMoments, _Dynamics, _t, propagate

__all__ = [
    "linearized_transform",
    "unscented_transform",
    "propagate_joint",
    "propagate_linearized",
    "propagate_unscented",
]

METHODS = ("moment_matching", "linearized", "unscented")


def _check_gaussian(mean: Any, cov: Any) -> tuple[Tensor, Tensor]:
    mu = _t(mean)
    if mu.ndim != 1:
        raise ValueError(f"mean must have shape (d,), got {tuple(mu.shape)}")
    return mu, check_covariance("cov", cov, mu.shape[0])


def _psd_factor(S: Tensor) -> Tensor:
    r"""Lower-triangular :math:`L` with :math:`L L^\top = S` for a PSD ``S (d, d)``.

    Column-by-column Cholesky that sets a column to zero when its pivot is below
    :math:`10^{-12} \max_i S_{ii}` (a rank threshold, not a jitter: ``S`` itself is
    not modified), so singular joint covariances (a deterministic policy) and
    ``S = 0`` are factorised exactly; differentiable by autograd.
    """
    d = S.shape[-1]
    tol = 1e-12 * float(torch.diagonal(S).detach().abs().max())
    rows = torch.arange(d)
    cols: list[Tensor] = []
    for j in range(d):
        v = S[:, j]
        for c in cols:
            v = v - c * c[j]
        pivot = v[j]
        if float(pivot.detach()) > tol:
            cols.append(torch.where(rows >= j, v / torch.sqrt(pivot), torch.zeros_like(v)))
        else:
            cols.append(torch.zeros_like(v))
    return torch.stack(cols, dim=1)


def _sigma_points(mean: Tensor, cov: Tensor, kappa: float) -> tuple[Tensor, Tensor]:
    """Sigma points ``(2 d + 1, d)`` and weights ``(2 d + 1,)`` (centre first)."""
    if not isinstance(kappa, int | float) or isinstance(kappa, bool) or kappa < 0:
        raise ValueError(f"kappa must be a number >= 0, got {kappa!r}")
    d = mean.shape[0]
    L = _psd_factor(cov) * (d + kappa) ** 0.5
    points = torch.cat([mean[None], mean + L.T, mean - L.T])
    w = torch.full((2 * d + 1,), 0.5 / (d + kappa), dtype=torch.float64)
    w[0] = kappa / (d + kappa)
    return points, w


def unscented_transform(
    f: Callable[[Tensor], Tensor], mean: Any, cov: Any, *, kappa: float = 0.0
) -> tuple[Tensor, Tensor]:
    r"""Unscented-transform mean and covariance of :math:`f(w)`, :math:`w \sim \mathcal N(m, S)`.

    .. math::

        \bar y = \textstyle\sum_i \omega_i f(w_i),\qquad
        \operatorname{cov} = \textstyle\sum_i \omega_i (f(w_i) - \bar y)(f(w_i) - \bar y)^\top

    with the symmetric sigma points and weights of the module docstring (Julier &
    Uhlmann, Proc. IEEE 2004, eqs. (12)-(15)). The mean is exact for quadratic ``f``,
    the covariance for affine ``f``.

    Parameters
    ----------
    f : callable
        Batched map ``(P, d) -> (P, k)``.
    mean : Tensor, shape (d,)
    cov : Tensor, shape (d, d)
        Symmetric positive semi-definite (singular allowed).
    kappa : float
        Weight of the centre point, :math:`\kappa \ge 0` (0: the centre is unused).

    Returns
    -------
    mean : Tensor, shape (k,)
    cov : Tensor, shape (k, k)
    """
    mu, S = _check_gaussian(mean, cov)
    points, w = _sigma_points(mu, S, kappa)
    y = f(points)
    y_mean = w @ y
    dy = y - y_mean
    out = (w[:, None] * dy).T @ dy
    return y_mean, 0.5 * (out + out.T)


def linearized_transform(
    f: Callable[[Tensor], Tensor], mean: Any, cov: Any
) -> tuple[Tensor, Tensor]:
    r"""First-order (EKF) mean and covariance of :math:`f(w)`, :math:`w \sim \mathcal N(m, S)`.

    .. math::

        \bar y = f(m),\qquad \operatorname{cov} = J S J^\top,\quad
        J = \partial f/\partial w\,(m)

    (the extended Kalman filter's prediction step; exact for affine ``f``). The
    Jacobian is taken by autograd with ``create_graph=True``, so the result is
    differentiable in ``m``, ``S`` and any parameters of ``f``.

    Parameters
    ----------
    f : callable
        Map ``(d,) -> (k,)``.
    mean : Tensor, shape (d,)
    cov : Tensor, shape (d, d)

    Returns
    -------
    mean : Tensor, shape (k,)
    cov : Tensor, shape (k, k)
    """
    mu, S = _check_gaussian(mean, cov)
    y = f(mu)
    J = torch.autograd.functional.jacobian(f, mu, create_graph=True)
    out = J @ S @ J.T
    return y, 0.5 * (out + out.T)


def propagate_joint(
    model: _Dynamics,
    mean_xu: Tensor,
    cov_xu: Tensor,
    *,
    method: str = "linearized",
    include_noise: bool = False,
    kappa: float = 0.0,
) -> tuple[Tensor, Tensor]:
    r"""Approximate moments of :math:`x_{t+1} = x_t + \Delta([x_t, u_t])` from a joint Gaussian.

    .. math::

        \text{linearized:}\ \mu' = g(m_w),\ \Sigma' = J S_w J^\top
            + \operatorname{diag}\sigma^2_\Delta(m_w);\qquad
        \text{unscented:}\ \mu' = \textstyle\sum_i\omega_i g(w_i),\
        \Sigma' = \textstyle\sum_i\omega_i (g(w_i)-\mu')(g(w_i)-\mu')^\top
            + \operatorname{diag}\textstyle\sum_i\omega_i\sigma^2_\Delta(w_i)

    with :math:`g(w) = x + \mu_\Delta(w)` (module docstring).

    Parameters
    ----------
    model : GPDynamics
        Anything with ``n, m`` and a batched, differentiable
        ``predict(inputs (..., n + m), include_noise=...) -> (mean, var)`` each ``(..., n)``.
    mean_xu : Tensor, shape (n + m,)
    cov_xu : Tensor, shape (n + m, n + m)
        Symmetric positive semi-definite.
    method : {"linearized", "unscented"}
    include_noise : bool
        Use the noisy-observation predictive variance.
    kappa : float
        Unscented centre weight (ignored by ``"linearized"``).

    Returns
    -------
    mean : Tensor, shape (n,)
    cov : Tensor, shape (n, n)
    """
    n, d = model.n, model.n + model.m
    mu, S = _check_gaussian(mean_xu, cov_xu)
    if mu.shape != (d,):
        raise ValueError(f"mean_xu must have shape ({d},), got {tuple(mu.shape)}")

    def g(w: Tensor) -> Tensor:
        return w[..., :n] + model.predict(w, include_noise=include_noise)[0]

    if method == "linearized":
        mean1, cov1 = linearized_transform(g, mu, S)
        var = model.predict(mu, include_noise=include_noise)[1]
    elif method == "unscented":
        points, w = _sigma_points(mu, S, kappa)
        d_mean, d_var = model.predict(points, include_noise=include_noise)
        y = points[:, :n] + d_mean
        mean1 = w @ y
        dy = y - mean1
        cov1 = (w[:, None] * dy).T @ dy
        var = w @ d_var
    else:
        raise ValueError(f"method must be 'linearized' or 'unscented', got {method!r}")
    cov1 = cov1 + torch.diag(var)
    return mean1, 0.5 * (cov1 + cov1.T)


def propagate_linearized(
    model: _Dynamics,
    mean: Any,
    cov: Any,
    policy: PolicyMoments,
    *,
    include_noise: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""One linearised (EKF) step; :func:`gpcontrol.models.propagate` with ``method="linearized"``.

    .. math::

        \mu_{t+1} = m_x + \mu_\Delta(m_w),\qquad
        \Sigma_{t+1} = J S_w J^\top + \operatorname{diag}\sigma^2_\Delta(m_w)

    (:func:`propagate_joint`; Ko & Fox 2009, Sec. 4.2). Parameters and returns as
    :func:`gpcontrol.models.propagate`: ``mean (n,)``, ``cov (n, n)``.
    """
    return propagate(model, mean, cov, policy, include_noise=include_noise, method="linearized")


def propagate_unscented(
    model: _Dynamics,
    mean: Any,
    cov: Any,
    policy: PolicyMoments,
    *,
    include_noise: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""One unscented step; :func:`gpcontrol.models.propagate` with ``method="unscented"``.

    .. math::

        \mu_{t+1} = \textstyle\sum_i\omega_i g(w_i),\qquad
        \Sigma_{t+1} = \textstyle\sum_i\omega_i (g(w_i)-\mu_{t+1})(g(w_i)-\mu_{t+1})^\top
            + \operatorname{diag}\textstyle\sum_i\omega_i\sigma^2_\Delta(w_i)

    with :math:`\kappa = 0` (:func:`propagate_joint`; Julier & Uhlmann 2004,
    Ko & Fox 2009, Sec. 4.3). Parameters and returns as
    :func:`gpcontrol.models.propagate`: ``mean (n,)``, ``cov (n, n)``.
    """
    return propagate(model, mean, cov, policy, include_noise=include_noise, method="unscented")
