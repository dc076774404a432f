r"""KL-constrained linear-quadratic-Gaussian control (LQR-FLM), the C-step of guided policy search.

Given time-varying linear-Gaussian dynamics
:math:`x_{t+1} \sim \mathcal N(F_t [x_t; u_t] + f_t, \Sigma_t)`, an initial
state :math:`x_0 \sim \mathcal N(\mu_0, \Sigma_0)`, a quadratic cost per step
and an old controller :math:`\bar p(u \mid x, t)`, find the linear-Gaussian
controller :math:`p(u \mid x, t) = \mathcal N(K_t x + k_t, C_t)` that solves

.. math::

    \min_p\ \mathbb E_p\Big[\sum_{t<T} \ell_t(x_t, u_t) + \ell_T(x_T)\Big]
    \quad\text{s.t.}\quad
    \sum_{t<T} \mathbb E_{p(x_t)}\big[\mathrm{KL}\big(p(\cdot \mid x_t) \,\|\,
        \bar p(\cdot \mid x_t)\big)\big] \le \epsilon .

(Levine & Abbeel, NIPS 2014; Montgomery & Levine, NIPS 2016, where it is the
C-step of mirror-descent GPS with :math:`\bar p` the linearised global
policy.) With the multiplier :math:`\eta > 0` the Lagrangian is

.. math::

    \mathcal L(p, \eta) = \mathbb E_p\Big[\sum_t \big(\ell_t - \eta \log \bar p(u_t \mid x_t)\big)
        + \ell_T(x_T)\Big] - \eta\, \mathcal H(p) - \eta\epsilon,
    \qquad \mathcal H(p) = -\sum_t \mathbb E_p \log p(u_t \mid x_t),

an entropy-regularised LQG problem with the augmented cost
:math:`\tilde\ell_t = \ell_t - \eta \log \bar p`. Its minimiser is the LQR
controller of :math:`\tilde\ell` with the maximum-entropy covariance

.. math::

    K_t, k_t = \text{LQR gains of } \tilde\ell, \qquad
    C_t = \eta\, \tilde Q_{uu,t}^{-1},

because the soft value function of an LQG problem differs from the hard one
only by constants. In the units of the GPS papers (cost divided by
:math:`\eta`) this is :math:`C_t = Q_{uu,t}^{-1}`. The gains come from the
general time-varying Riccati backward pass of :mod:`gpcontrol.solvers.lqr`.

The dual function :math:`g(\eta) = \min_p \mathcal L(p, \eta)` is concave with
:math:`g'(\eta) = \mathrm{KL}(\eta) - \epsilon`, so the KL of the minimiser is
non-increasing in :math:`\eta`; :func:`lqr_flm` brackets the root of
:math:`\log \mathrm{KL}(\eta) = \log\epsilon` in :math:`\log\eta` and bisects it
(with safeguarded secant steps). The limits are the LQR controller
(:math:`\eta \to 0`) and the old controller (:math:`\eta \to \infty`).

The KL is evaluated under the state marginals of the new controller, which a
Gaussian forward pass computes exactly for linear-Gaussian dynamics
(:func:`forward_marginals`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import cho_factor, cho_solve

from gpcontrol._validation import as_batch, as_float_array, check_positive, readonly_copy
from gpcontrol.models.tvlg import TVLGDynamics
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy, expected_kl
from gpcontrol.solvers.lqr import _augment, _riccati_backward

__all__ = [
    "QuadraticTrajectoryCost",
    "GaussianMarginals",
    "forward_marginals",
    "kl_regularized_lqr",
    "KLRegularizedResult",
    "LQRFLMOptions",
    "LQRFLMResult",
    "lqr_flm",
    "adapt_step_size",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


def _sym(M: Array) -> Array:
    return 0.5 * (M + np.swapaxes(M, -1, -2))


# ---------------------------------------------------------------------------- cost model
@dataclasses.dataclass(frozen=True, eq=False)
class QuadraticTrajectoryCost:
    r"""A time-varying quadratic cost in absolute coordinates, :math:`z = [x; u]`.

    .. math::

        \ell_t(x, u) = \tfrac12 z^\top C_t z + c_t^\top z + c^0_t,\qquad
        \ell_T(x) = \tfrac12 x^\top C_T x + c_T^\top x + c^0_T .

    Parameters
    ----------
    C : array_like, shape (T, n + m, n + m)
        Symmetric (not necessarily positive semi-definite).
    c : array_like, shape (T, n + m)
    c0 : array_like, shape (T,)
    C_T : array_like, shape (n, n)
    c_T : array_like, shape (n,)
    c0_T : float
    n : int
        State dimension (splits ``z``).
    """

    C: Array
    c: Array
    c0: Array
    C_T: Array
    c_T: Array
    c0_T: float
    n: int
    T: int = dataclasses.field(init=False)
    m: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        C = as_float_array("C", self.C)
        if C.ndim != 3 or C.shape[1] != C.shape[2] or C.shape[0] < 1:
            raise ValueError(f"C must have shape (T, n + m, n + m), got {C.shape}")
        T, p = C.shape[:2]
        n = int(self.n)
        if not 1 <= n < p:
            raise ValueError(f"n must lie in [1, {p - 1}] for C of size {p}, got {self.n}")
        if np.abs(C - np.swapaxes(C, 1, 2)).max() > 1e-8 * max(1.0, np.abs(C).max()):
            raise ValueError("C must be symmetric at every step")
        c = as_float_array("c", self.c)
        if c.shape != (T, p):
            raise ValueError(f"c must have shape ({T}, {p}), got {c.shape}")
        c0 = as_float_array("c0", self.c0).reshape(-1)
        if c0.shape != (T,):
            raise ValueError(f"c0 must have shape ({T},), got {c0.shape}")
        CT = as_float_array("C_T", self.C_T)
        if CT.shape != (n, n) or np.abs(CT - CT.T).max() > 1e-8 * max(1.0, np.abs(CT).max()):
            raise ValueError(f"C_T must be a symmetric ({n}, {n}) matrix, got shape {CT.shape}")
        cT = as_float_array("c_T", self.c_T)
        if cT.shape != (n,):
            raise ValueError(f"c_T must have shape ({n},), got {cT.shape}")
        c0T = float(as_float_array("c0_T", self.c0_T))
        setattr_ = object.__setattr__
        setattr_(self, "C", readonly_copy(_sym(C)))
        setattr_(self, "c", readonly_copy(c))
        setattr_(self, "c0", readonly_copy(c0))
        setattr_(self, "C_T", readonly_copy(_sym(CT)))
        setattr_(self, "c_T", readonly_copy(cT))
        setattr_(self, "c0_T", c0T)
        setattr_(self, "n", n)
        setattr_(self, "T", int(T))
        setattr_(self, "m", int(p - n))

    @classmethod
    def from_cost(cls, cost: Any, X: ArrayLike, U: ArrayLike) -> QuadraticTrajectoryCost:
        r"""Second-order expansion of a :class:`~gpcontrol.costs.Cost` along trajectories.

        Each trajectory :math:`i` gives the Taylor expansion of :math:`\ell`
        around :math:`\bar z_{it} = (x_{it}, u_{it})`; written in absolute
        coordinates,

        .. math::

            C = H, \qquad c = g - H \bar z, \qquad
            c^0 = \ell(\bar z) - g^\top \bar z + \tfrac12 \bar z^\top H \bar z,

        and the coefficients are averaged over the trajectories (as GPS does
        with its samples). Exact for a quadratic cost.

        Parameters
        ----------
        cost : Cost
        X : array_like, shape (T + 1, n) or (N, T + 1, n)
        U : array_like, shape (T, m) or (N, T, m)
        """
        n, m = int(cost.n), int(cost.m)
        Xa = as_batch("X", X, n)
        Ua = as_batch("U", U, m)
        if Xa.ndim == 2:
            Xa, Ua = Xa[None], Ua[None] if Ua.ndim == 2 else Ua
        if Xa.ndim != 3 or Ua.ndim != 3 or Ua.shape[:2] != (Xa.shape[0], Xa.shape[1] - 1):
            raise ValueError(
                f"X and U must have shapes (N, T + 1, {n}) and (N, T, {m}); "
                f"got {Xa.shape} and {Ua.shape}"
            )
        q = cost.quadratize(Xa[:, :-1], Ua)
        lux = np.asarray(q.lux)
        H = np.concatenate(
            [
                np.concatenate([q.lxx, np.swapaxes(lux, -1, -2)], axis=-1),
                np.concatenate([lux, q.luu], axis=-1),
            ],
            axis=-2,
        )  # (N, T, p, p)
        g = np.concatenate([q.lx, q.lu], axis=-1)
        z = np.concatenate([Xa[:, :-1], Ua], axis=-1)
        Hz = np.einsum("ntij,ntj->nti", H, z)
        c = g - Hz
        c0 = np.asarray(q.l) - (g * z).sum(-1) + 0.5 * (z * Hz).sum(-1)
        qT = cost.quadratize_terminal(Xa[:, -1])
        xT = Xa[:, -1]
        HT = np.asarray(qT.lxx)
        HxT = np.einsum("nij,nj->ni", HT, xT)
        cT = np.asarray(qT.lx) - HxT
        c0T = np.asarray(qT.l) - (np.asarray(qT.lx) * xT).sum(-1) + 0.5 * (xT * HxT).sum(-1)
        return cls(
            C=H.mean(0),
            c=c.mean(0),
            c0=c0.mean(0),
            C_T=HT.mean(0),
            c_T=cT.mean(0),
            c0_T=float(np.mean(c0T)),
            n=n,
        )

    def value(self, X: ArrayLike, U: ArrayLike) -> Array:
        r"""Model cost :math:`\sum_t \ell_t(x_t, u_t) + \ell_T(x_T)` of trajectories.

        Parameters
        ----------
        X : array_like, shape (..., T + 1, n)
        U : array_like, shape (..., T, m)

        Returns
        -------
        ndarray, shape (...)
        """
        Xa = as_batch("X", X, self.n)
        Ua = as_batch("U", U, self.m)
        if Xa.ndim < 2 or Xa.shape[-2] != self.T + 1 or Ua.shape[:-1] != (*Xa.shape[:-2], self.T):
            raise ValueError(
                f"X and U must have shapes (..., {self.T + 1}, {self.n}) and "
                f"(..., {self.T}, {self.m}); got {Xa.shape} and {Ua.shape}"
            )
        z = np.concatenate([Xa[..., :-1, :], Ua], axis=-1)
        run = 0.5 * np.einsum("...ti,tij,...tj->...t", z, self.C, z) + (z * self.c).sum(-1)
        xT = Xa[..., -1, :]
        term = 0.5 * np.einsum("...i,ij,...j->...", xT, self.C_T, xT) + xT @ self.c_T
        return (run + self.c0).sum(-1) + term + self.c0_T

    def expected(self, marginals: GaussianMarginals) -> float:
        r"""Expected cost under Gaussian state-action marginals.

        .. math::

            \mathbb E = \sum_t \Big(\tfrac12 \operatorname{tr}(C_t S_t)
                + \tfrac12 m_t^\top C_t m_t + c_t^\top m_t + c^0_t\Big)
                + \tfrac12 \operatorname{tr}(C_T \Sigma_T) + \tfrac12 \mu_T^\top C_T \mu_T
                + c_T^\top \mu_T + c^0_T,

        with :math:`(m_t, S_t)` the moments of :math:`z_t = [x_t; u_t]`.
        """
        if not isinstance(marginals, GaussianMarginals):
            raise TypeError("marginals must be a GaussianMarginals")
        if (marginals.T, marginals.n, marginals.m) != (self.T, self.n, self.m):
            raise ValueError(
                f"marginals have (T, n, m) = {(marginals.T, marginals.n, marginals.m)}, "
                f"cost has {(self.T, self.n, self.m)}"
            )
        mz, Sz = marginals.z_mean, marginals.z_cov
        run = (
            0.5 * np.einsum("tij,tji->t", self.C, Sz)
            + 0.5 * np.einsum("ti,tij,tj->t", mz, self.C, mz)
            + (self.c * mz).sum(-1)
            + self.c0
        )
        muT, ST = marginals.x_mean[-1], marginals.x_cov[-1]
        term = 0.5 * np.trace(self.C_T @ ST) + 0.5 * muT @ self.C_T @ muT + self.c_T @ muT
        return float(run.sum() + term + self.c0_T)


# ---------------------------------------------------------------------------- forward pass
@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMarginals:
    r"""Gaussian state and control marginals of a linear-Gaussian closed loop.

    Attributes
    ----------
    x_mean : ndarray, shape (T + 1, n)
    x_cov : ndarray, shape (T + 1, n, n)
    u_mean : ndarray, shape (T, m)
    u_cov : ndarray, shape (T, m, m)
    xu_cov : ndarray, shape (T, n, m)
        :math:`\operatorname{Cov}(x_t, u_t)`.
    """

    x_mean: Array
    x_cov: Array
    u_mean: Array
    u_cov: Array
    xu_cov: Array

    @property
    def T(self) -> int:  # noqa: N802 - math name
        return int(self.u_mean.shape[0])

    @property
    def n(self) -> int:
        return int(self.x_mean.shape[1])

    @property
    def m(self) -> int:
        return int(self.u_mean.shape[1])

    @property
    def z_mean(self) -> Array:
        """Mean of :math:`z_t = [x_t; u_t]`, shape ``(T, n + m)``."""
        return np.concatenate([self.x_mean[:-1], self.u_mean], axis=-1)

    @property
    def z_cov(self) -> Array:
        """Covariance of :math:`z_t`, shape ``(T, n + m, n + m)``."""
        top = np.concatenate([self.x_cov[:-1], self.xu_cov], axis=-1)
        bot = np.concatenate([np.swapaxes(self.xu_cov, 1, 2), self.u_cov], axis=-1)
        return np.concatenate([top, bot], axis=-2)


def _check_initial(x0_mean: ArrayLike, x0_cov: ArrayLike, n: int) -> tuple[Array, Array]:
    mu = as_float_array("x0_mean", x0_mean)
    if mu.shape != (n,):
        raise ValueError(f"x0_mean must have shape ({n},), got {mu.shape}")
    S = as_float_array("x0_cov", x0_cov)
    if S.shape != (n, n):
        raise ValueError(f"x0_cov must have shape ({n}, {n}), got {S.shape}")
    if np.abs(S - S.T).max() > 1e-8 * max(1.0, np.abs(S).max()):
        raise ValueError("x0_cov must be symmetric")
    S = _sym(S)
    lam = np.linalg.eigvalsh(S)[0]
    if lam < -1e-10 * max(1.0, np.abs(S).max()):
        raise ValueError(f"x0_cov must be positive semi-definite; smallest eigenvalue {lam:.3e}")
    return mu, S


def _check_pair(dynamics: Any, policy: Any) -> None:
    if not isinstance(dynamics, TVLGDynamics):
        raise TypeError(f"dynamics must be a TVLGDynamics, got {type(dynamics).__name__}")
    if not isinstance(policy, LinearGaussianPolicy):
        raise TypeError(f"policy must be a LinearGaussianPolicy, got {type(policy).__name__}")
    if (policy.T, policy.n, policy.m) != (dynamics.T, dynamics.n, dynamics.m):
        raise ValueError(
            f"policy has (T, n, m) = {(policy.T, policy.n, policy.m)}, dynamics "
            f"{(dynamics.T, dynamics.n, dynamics.m)}"
        )


def _forward(
    dyn: TVLGDynamics, pol: LinearGaussianPolicy, mu0: Array, S0: Array
) -> GaussianMarginals:
    T, n, m = dyn.T, dyn.n, dyn.m
    xm = np.empty((T + 1, n))
    xS = np.empty((T + 1, n, n))
    um = np.empty((T, m))
    uS = np.empty((T, m, m))
    xuS = np.empty((T, n, m))
    xm[0], xS[0] = mu0, S0
    A, B = dyn.A, dyn.B
    for t in range(T):
        K = pol.K[t]
        um[t] = K @ xm[t] + pol.k[t]
        SK = xS[t] @ K.T
        xuS[t] = SK
        uS[t] = _sym(K @ SK + pol.cov[t])
        xm[t + 1] = A[t] @ xm[t] + B[t] @ um[t] + dyn.f[t]
        AS_BK = A[t] @ xS[t] + B[t] @ SK.T  # Cov(x_{t+1}, x_t) before noise
        nxt = AS_BK @ A[t].T + (A[t] @ SK + B[t] @ uS[t]) @ B[t].T + dyn.Sigma[t]
        xS[t + 1] = _sym(nxt)
    return GaussianMarginals(xm, xS, um, uS, xuS)


def forward_marginals(
    dynamics: TVLGDynamics,
    policy: LinearGaussianPolicy,
    x0_mean: ArrayLike,
    x0_cov: ArrayLike,
) -> GaussianMarginals:
    r"""Exact state-action marginals of the linear-Gaussian closed loop.

    .. math::

        \mu^u_t = K_t \mu_t + k_t,\quad
        \Sigma^{xu}_t = \Sigma_t K_t^\top,\quad
        \Sigma^{u}_t = K_t \Sigma_t K_t^\top + C_t,

        \mu_{t+1} = F_t \begin{bmatrix}\mu_t \\ \mu^u_t\end{bmatrix} + f_t,\quad
        \Sigma_{t+1} = F_t \begin{bmatrix} \Sigma_t & \Sigma^{xu}_t \\
            \Sigma^{xu\top}_t & \Sigma^u_t \end{bmatrix} F_t^\top + \Sigma^{\mathrm{dyn}}_t .

    Parameters
    ----------
    dynamics : TVLGDynamics
    policy : LinearGaussianPolicy
        Same ``T``, ``n``, ``m``.
    x0_mean : array_like, shape (n,)
    x0_cov : array_like, shape (n, n)
        Symmetric positive semi-definite.

    Returns
    -------
    GaussianMarginals
    """
    _check_pair(dynamics, policy)
    mu0, S0 = _check_initial(x0_mean, x0_cov, dynamics.n)
    return _forward(dynamics, policy, mu0, S0)


# ---------------------------------------------------------------------------- fixed eta
@dataclasses.dataclass(frozen=True, eq=False)
class KLRegularizedResult:
    r"""The minimiser of the Lagrangian at one :math:`\eta`.

    Attributes
    ----------
    policy : LinearGaussianPolicy or None
        None when :math:`\tilde Q_{uu}` is not positive definite at some step.
    eta : float
    failed_at : int
        -1, or the step whose :math:`\tilde Q_{uu,t}` is not positive definite.
    Quu : ndarray, shape (T, m, m)
        Action-value curvature :math:`\tilde Q_{uu,t}` of the augmented cost
        (unscaled units; steps after ``failed_at`` only).
    """

    policy: LinearGaussianPolicy | None
    eta: float
    failed_at: int
    Quu: Array


def _augmented_terms(
    cost: QuadraticTrajectoryCost, old: LinearGaussianPolicy, eta: float
) -> tuple[Array, Array, Array, Array, Array]:
    r"""``Q, R, M, q, r`` of :math:`\ell_t - \eta \log \bar p` (constants dropped)."""
    n = cost.n
    Pr, K, k = old.precision, old.K, old.k
    KtP = np.swapaxes(K, 1, 2) @ Pr  # (T, n, m)
    Q = cost.C[:, :n, :n] + eta * (KtP @ K)
    R = cost.C[:, n:, n:] + eta * Pr
    M = cost.C[:, :n, n:] - eta * KtP
    q = cost.c[:, :n] + eta * np.einsum("tij,tj->ti", KtP, k)
    r = cost.c[:, n:] - eta * np.einsum("tij,tj->ti", Pr, k)
    return _sym(Q), _sym(R), M, q, r


def _solve_eta(
    dyn: TVLGDynamics, cost: QuadraticTrajectoryCost, old: LinearGaussianPolicy, eta: float
) -> KLRegularizedResult:
    n, m, T = dyn.n, dyn.m, dyn.T
    Q, R, M, q, r = _augmented_terms(cost, old, eta)
    Fa, Ca, VT = _augment(
        np.asarray(dyn.A), np.asarray(dyn.B), np.asarray(dyn.f), Q, R, M, q, r, cost.C_T, cost.c_T
    )
    out = _riccati_backward(Fa, Ca, VT, m)
    Quu = np.array(out.H[:, n + 1 :, n + 1 :])
    if out.failed_at >= 0:
        return KLRegularizedResult(None, eta, out.failed_at, Quu)
    cov = np.empty((T, m, m))
    eye = np.eye(m)
    for t in range(T):
        try:
            cov[t] = eta * cho_solve(cho_factor(_sym(Quu[t]), lower=True), eye)
        except np.linalg.LinAlgError:
            return KLRegularizedResult(None, eta, t, Quu)
    try:
        policy = LinearGaussianPolicy(out.G[:, :, :n], out.G[:, :, n], _sym(cov))
    except ValueError:  # the inverse lost definiteness in rounding (extreme conditioning)
        return KLRegularizedResult(None, eta, int(np.argmin(np.linalg.eigvalsh(cov)[:, 0])), Quu)
    return KLRegularizedResult(policy, eta, -1, Quu)


def _check_problem(dynamics: Any, cost: Any, old_policy: Any) -> None:
    _check_pair(dynamics, old_policy)
    if not isinstance(cost, QuadraticTrajectoryCost):
        raise TypeError(
            "cost must be a QuadraticTrajectoryCost (build one with "
            f"QuadraticTrajectoryCost.from_cost), got {type(cost).__name__}"
        )
    if (cost.T, cost.n, cost.m) != (dynamics.T, dynamics.n, dynamics.m):
        raise ValueError(
            f"cost has (T, n, m) = {(cost.T, cost.n, cost.m)}, dynamics "
            f"{(dynamics.T, dynamics.n, dynamics.m)}"
        )


def kl_regularized_lqr(
    dynamics: TVLGDynamics,
    cost: QuadraticTrajectoryCost,
    old_policy: LinearGaussianPolicy,
    eta: float,
) -> KLRegularizedResult:
    r"""Minimise the Lagrangian of the KL-constrained problem at a fixed :math:`\eta`.

    .. math::

        \min_p\ \mathbb E_p\Big[\sum_t \ell_t - \eta \log \bar p(u_t \mid x_t)\Big]
            - \eta\, \mathcal H(p) .


    With :math:`\bar p = \mathcal N(\bar K_t x + \bar k_t, \bar C_t)` and
    :math:`P_t = \bar C_t^{-1}`, the augmented running cost is
    :math:`\ell_t` plus

    .. math::

        \eta\Big(\tfrac12 x^\top \bar K_t^\top P_t \bar K_t x
            - x^\top \bar K_t^\top P_t u + \tfrac12 u^\top P_t u
            + x^\top \bar K_t^\top P_t \bar k_t - u^\top P_t \bar k_t\Big),

    the backward Riccati pass of :mod:`gpcontrol.solvers.lqr` gives
    :math:`K_t, k_t` and :math:`\tilde Q_{uu,t}`, and the maximum-entropy
    covariance is :math:`C_t = \eta \tilde Q_{uu,t}^{-1}` (Levine & Abbeel,
    NIPS 2014; in their units, cost divided by :math:`\eta`,
    :math:`C_t = Q_{uu,t}^{-1}`).

    Parameters
    ----------
    dynamics : TVLGDynamics
    cost : QuadraticTrajectoryCost
    old_policy : LinearGaussianPolicy
    eta : float
        :math:`\eta > 0`.

    Returns
    -------
    KLRegularizedResult
        ``policy`` is None (and ``failed_at`` the step) when
        :math:`\tilde Q_{uu}` is not positive definite.
    """
    _check_problem(dynamics, cost, old_policy)
    return _solve_eta(dynamics, cost, old_policy, check_positive("eta", eta))


# ---------------------------------------------------------------------------- eta search
@dataclasses.dataclass(frozen=True)
class LQRFLMOptions:
    r"""Options of :func:`lqr_flm`.

    Attributes
    ----------
    eta_min, eta_max : float
        Search range of the multiplier, :math:`0 < \eta_{\min} < \eta_{\max}`.
    kl_rtol : float
        Accept :math:`|\mathrm{KL} - \epsilon| \le` ``kl_rtol`` :math:`\epsilon`.
    max_iterations : int
        Backward passes in the bisection at most (beyond the two end points).
    eta_init : float, optional
        A first guess (e.g. the previous iteration's :math:`\eta`): it is
        evaluated first and narrows the bracket.
    """

    eta_min: float = 1e-8
    eta_max: float = 1e16
    kl_rtol: float = 0.05
    max_iterations: int = 100
    eta_init: float | None = None

    def __post_init__(self) -> None:
        lo = check_positive("eta_min", self.eta_min)
        hi = check_positive("eta_max", self.eta_max)
        if not lo < hi:
            raise ValueError(f"eta_min must be < eta_max, got {lo} >= {hi}")
        tol = check_positive("kl_rtol", self.kl_rtol)
        if tol >= 1.0:
            raise ValueError(f"kl_rtol must be < 1, got {tol}")
        it = self.max_iterations
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise ValueError(f"max_iterations must be a positive integer, got {it!r}")
        if self.eta_init is not None:
            check_positive("eta_init", self.eta_init)


@dataclasses.dataclass(frozen=True, eq=False)
class LQRFLMResult:
    r"""Result of :func:`lqr_flm`.

    Attributes
    ----------
    policy : LinearGaussianPolicy or None
        The new controller (None only for ``status == "not_pd"``).
    eta : float
        The multiplier of the returned controller.
    kl : float
        :math:`\sum_t \mathbb E[\mathrm{KL}_t]` of the returned controller.
    kl_per_step : ndarray, shape (T,)
    epsilon : float
        The requested bound.
    status : str
        ``"converged"``: :math:`|\mathrm{KL} - \epsilon| \le` ``kl_rtol`` :math:`\epsilon`;
        ``"constraint_inactive"``: already :math:`\mathrm{KL}(\eta_{\min}) \le \epsilon`,
        the least regularised controller is returned;
        ``"eta_max_reached"``: :math:`\mathrm{KL}(\eta_{\max}) > \epsilon`, the
        controller at :math:`\eta_{\max}` (closest to the old one) is returned;
        ``"not_pd"``: :math:`\tilde Q_{uu}` is not positive definite even at
        :math:`\eta_{\max}` (the cost is too non-convex for the range), no controller;
        ``"max_iterations"``: the bisection ran out; the feasible end
        (KL below :math:`\epsilon`) is returned.
    converged : bool
        ``status`` is ``"converged"`` or ``"constraint_inactive"``.
    message : str
    iterations : int
        Backward passes performed.
    expected_cost : float
        :math:`\mathbb E[J]` of the returned controller under the model (NaN
        without a controller).
    marginals : GaussianMarginals or None
    history : tuple of (float, float)
        Every :math:`(\eta, \mathrm{KL})` evaluated (KL is ``inf`` where
        :math:`\tilde Q_{uu}` was not positive definite).
    """

    policy: LinearGaussianPolicy | None
    eta: float
    kl: float
    kl_per_step: Array
    epsilon: float
    status: str
    converged: bool
    message: str
    iterations: int
    expected_cost: float
    marginals: GaussianMarginals | None
    history: tuple[tuple[float, float], ...]


@dataclasses.dataclass
class _Eval:
    eta: float
    step: KLRegularizedResult
    marginals: GaussianMarginals | None
    kl_steps: Array | None

    @property
    def kl(self) -> float:
        return math.inf if self.kl_steps is None else float(self.kl_steps.sum())


def lqr_flm(
    dynamics: TVLGDynamics,
    cost: QuadraticTrajectoryCost,
    old_policy: LinearGaussianPolicy,
    x0_mean: ArrayLike,
    x0_cov: ArrayLike,
    *,
    epsilon: float,
    options: LQRFLMOptions | None = None,
) -> LQRFLMResult:
    r"""KL-constrained LQG step: the best controller within :math:`\epsilon` of the old one.

    .. math::

        \min_{p}\ \mathbb E_p[J] \quad \text{s.t.}\quad
        \sum_t \mathbb E_{p(x_t)}\,\mathrm{KL}\big(p(\cdot\mid x_t)\,\|\,\bar p(\cdot\mid x_t)\big)
        \le \epsilon,

    solved through the dual (module docstring): for each :math:`\eta`,
    :func:`kl_regularized_lqr` gives the minimiser, :func:`forward_marginals`
    its state marginals and :func:`~gpcontrol.policies.expected_kl` its KL.
    :math:`\mathrm{KL}(\eta)` is non-increasing, so the search brackets
    :math:`\log\eta` between a point with :math:`\mathrm{KL} > \epsilon` (or a
    non-positive-definite :math:`\tilde Q_{uu}`, which only happens for small
    :math:`\eta`) and one with :math:`\mathrm{KL} < \epsilon`, and shrinks the
    bracket by secant steps on :math:`(\log\eta, \log\mathrm{KL})`, falling
    back to bisection whenever a step fails to halve it. Levine & Abbeel
    (NIPS 2014); Montgomery & Levine (NIPS 2016).

    Parameters
    ----------
    dynamics : TVLGDynamics
        Fitted local dynamics.
    cost : QuadraticTrajectoryCost
        Quadratic cost model (e.g. :meth:`QuadraticTrajectoryCost.from_cost`).
    old_policy : LinearGaussianPolicy
        :math:`\bar p`: the previous controller (LQR-FLM) or the linearised
        global policy (MDGPS).
    x0_mean : array_like, shape (n,)
    x0_cov : array_like, shape (n, n)
    epsilon : float
        KL bound :math:`\epsilon > 0` (summed over time steps).
    options : LQRFLMOptions, optional

    Returns
    -------
    LQRFLMResult
        Never silent NaN: every outcome has a ``status`` and ``message``.
    """
    _check_problem(dynamics, cost, old_policy)
    mu0, S0 = _check_initial(x0_mean, x0_cov, dynamics.n)
    eps = check_positive("epsilon", epsilon)
    opt = LQRFLMOptions() if options is None else options
    if not isinstance(opt, LQRFLMOptions):
        raise TypeError(f"options must be an LQRFLMOptions, got {type(opt).__name__}")
    history: list[tuple[float, float]] = []

    def evaluate(eta: float) -> _Eval:
        step = _solve_eta(dynamics, cost, old_policy, eta)
        if step.policy is None:
            ev = _Eval(eta, step, None, None)
        else:
            marg = _forward(dynamics, step.policy, mu0, S0)
            kl = expected_kl(step.policy, old_policy, marg.x_mean[:-1], marg.x_cov[:-1])
            ev = _Eval(eta, step, marg, kl)
        history.append((eta, ev.kl))
        return ev

    def finish(ev: _Eval | None, status: str, message: str) -> LQRFLMResult:
        if status in ("converged", "constraint_inactive"):
            logger.debug("lqr_flm: %s", message)
        else:
            logger.warning("lqr_flm: %s", message)
        if ev is None or ev.step.policy is None or ev.marginals is None or ev.kl_steps is None:
            T = dynamics.T
            return LQRFLMResult(
                None, math.nan if ev is None else ev.eta, math.inf, np.full(T, np.inf), eps,
                status, False, message, len(history), math.nan, None, tuple(history),
            )  # fmt: skip
        return LQRFLMResult(
            policy=ev.step.policy,
            eta=ev.eta,
            kl=ev.kl,
            kl_per_step=readonly_copy(ev.kl_steps),
            epsilon=eps,
            status=status,
            converged=status in ("converged", "constraint_inactive"),
            message=message,
            iterations=len(history),
            expected_cost=cost.expected(ev.marginals),
            marginals=ev.marginals,
            history=tuple(history),
        )

    tol = opt.kl_rtol * eps

    def good(ev: _Eval) -> bool:
        return abs(ev.kl - eps) <= tol

    # Ends of the range: the top must be PD and feasible, the bottom infeasible.
    hi = evaluate(opt.eta_max)
    if hi.step.policy is None:
        return finish(
            hi,
            "not_pd",
            f"Q_uu is not positive definite at t = {hi.step.failed_at} even for eta = "
            f"{opt.eta_max:.3g}: the cost is too non-convex in u for this range (raise eta_max "
            "or check the cost's control Hessian)",
        )
    if good(hi):
        return finish(hi, "converged", f"KL = {hi.kl:.4g} at eta_max = {hi.eta:.3g}")
    if hi.kl > eps:
        return finish(
            hi,
            "eta_max_reached",
            f"even eta = {opt.eta_max:.3g} gives KL = {hi.kl:.4g} > epsilon = {eps:.4g}; "
            "returning that controller (closest to the old one)",
        )
    lo: _Eval | None = None
    if opt.eta_init is not None and opt.eta_min < opt.eta_init < opt.eta_max:
        guess = evaluate(float(opt.eta_init))
        if guess.step.policy is not None and good(guess):
            return finish(guess, "converged", f"KL = {guess.kl:.4g} at eta = {guess.eta:.4g}")
        if guess.kl < eps:
            hi = guess
        else:
            lo = guess
    if lo is None:
        lo = evaluate(opt.eta_min)
        if lo.step.policy is not None:
            if good(lo):
                return finish(lo, "converged", f"KL = {lo.kl:.4g} at eta_min = {lo.eta:.3g}")
            if lo.kl < eps:
                return finish(
                    lo,
                    "constraint_inactive",
                    f"KL = {lo.kl:.4g} <= epsilon = {eps:.4g} already at eta_min = {lo.eta:.3g}",
                )
    log_eps = math.log(eps)
    force_bisect = False
    for _ in range(opt.max_iterations):
        a, b = math.log(lo.eta), math.log(hi.eta)
        if b - a < 1e-12:
            break
        x = 0.5 * (a + b)
        if not force_bisect and math.isfinite(lo.kl) and lo.kl > 0 and hi.kl > 0:
            fa, fb = math.log(lo.kl) - log_eps, math.log(hi.kl) - log_eps
            if fa > fb:
                s = a + (b - a) * fa / (fa - fb)
                if a + 0.02 * (b - a) < s < b - 0.02 * (b - a):
                    x = s
        width = b - a
        mid = evaluate(math.exp(x))
        if mid.step.policy is not None and good(mid):
            return finish(mid, "converged", f"KL = {mid.kl:.4g} at eta = {mid.eta:.4g}")
        if mid.kl > eps:
            lo = mid
        else:
            hi = mid
        force_bisect = math.log(hi.eta) - math.log(lo.eta) > 0.5 * width
    return finish(
        hi,
        "max_iterations",
        f"eta search stopped after {len(history)} passes with KL = {hi.kl:.4g} "
        f"(epsilon = {eps:.4g}) at eta = {hi.eta:.4g}; the bracket is "
        f"[{lo.eta:.6g}, {hi.eta:.6g}]",
    )


# ---------------------------------------------------------------------------- step size
def adapt_step_size(
    epsilon: float,
    predicted_improvement: float,
    actual_improvement: float,
    *,
    min_factor: float = 0.1,
    max_factor: float = 5.0,
    epsilon_min: float = 0.0,
    epsilon_max: float = math.inf,
) -> float:
    r"""New KL step size from the predicted and the actual cost improvement.

    Model the improvement as a function of the step :math:`e` by the
    parabola through the origin whose slope matches the prediction and
    whose value at the current step matches the measurement:

    .. math::

        I(e) = a\, e - b\, e^2,\qquad a = \frac{\Delta_{\mathrm{pred}}}{\epsilon},
        \quad b = \frac{\Delta_{\mathrm{pred}} - \Delta_{\mathrm{act}}}{\epsilon^2},
        \qquad
        \epsilon' = \arg\max_e I(e) = \epsilon\,
            \frac{\Delta_{\mathrm{pred}}}{2(\Delta_{\mathrm{pred}} - \Delta_{\mathrm{act}})},

    with the factor :math:`\epsilon'/\epsilon` clipped to
    ``[min_factor, max_factor]``: the step grows by ``max_factor`` when the
    model was not optimistic (:math:`\Delta_{\mathrm{act}} \ge \Delta_{\mathrm{pred}}`)
    and shrinks by ``min_factor`` when no improvement was predicted. Levine &
    Abbeel (NIPS 2014), step-size adjustment; the same rule drives
    the step multiplier of MDGPS.

    Parameters
    ----------
    epsilon : float
        Current step :math:`\epsilon > 0`.
    predicted_improvement : float
        :math:`\Delta_{\mathrm{pred}}`: expected cost of the old controller
        minus that of the new one, both under the model.
    actual_improvement : float
        :math:`\Delta_{\mathrm{act}}`: the same difference measured on samples.
    min_factor, max_factor : float
        Clip of :math:`\epsilon'/\epsilon`, ``0 < min_factor <= 1 <= max_factor``.
    epsilon_min, epsilon_max : float
        Clip of the result.

    Returns
    -------
    float
    """
    e = check_positive("epsilon", epsilon)
    pred = float(as_float_array("predicted_improvement", predicted_improvement))
    act = float(as_float_array("actual_improvement", actual_improvement))
    lo_f, hi_f = check_positive("min_factor", min_factor), check_positive("max_factor", max_factor)
    if not lo_f <= 1.0 <= hi_f:
        raise ValueError(f"need min_factor <= 1 <= max_factor, got {lo_f}, {hi_f}")
    e_lo = float(epsilon_min)
    e_hi = float(epsilon_max)
    if not (0.0 <= e_lo <= e_hi) or math.isnan(e_hi):
        raise ValueError(f"need 0 <= epsilon_min <= epsilon_max, got {epsilon_min}, {epsilon_max}")
    if pred <= 0.0:
        factor = lo_f
    elif act >= pred:
        factor = hi_f
    else:
        factor = min(hi_f, max(lo_f, pred / (2.0 * (pred - act))))
    return float(min(e_hi, max(e_lo, e * factor)))
