r"""Linear-quadratic-Gaussian output feedback: LQR on the Kalman-filter estimate.

The plant is linear-Gaussian and only its output is measured,

.. math::

    x_0 \sim \mathcal N(m_0, P_0),\quad
    x_{t+1} = A_t x_t + B_t u_t + c_t + w_t,\quad
    y_t = C_t x_t + d_t + v_t,\quad
    w_t \sim \mathcal N(0, W_t),\ v_t \sim \mathcal N(0, V_t),

and the control :math:`u_t` may depend on :math:`y_0, \dots, y_t` only. The
expected cost

.. math::

    J = \mathbb E\Bigl[\sum_{t=0}^{T-1} \bigl(\tfrac12 x_t^\top Q_t x_t
        + \tfrac12 u_t^\top R_t u_t + x_t^\top M_t u_t + q_t^\top x_t + r_t^\top u_t\bigr)
        + \tfrac12 x_T^\top Q_f x_T + q_f^\top x_T\Bigr]

is minimised by the *separation principle* (Joseph & Tou 1961; Bertsekas,
*Dynamic Programming and Optimal Control* I, Sec. 5.2): the LQR law of the
noise-free problem applied to the Kalman-filter estimate,

.. math::

    u_t = K_t \hat x_{t|t} + k_t, \qquad \hat x_{t|t} = \mathbb E[x_t \mid y_{0:t}] .

**Exact expected cost.** With the LQR value function
:math:`\tfrac12 x^\top V_t x + v_t^\top x + s_t`, the action-value curvature
:math:`H_t = R_t + B_t^\top V_{t+1} B_t` and the filtered error covariances
:math:`P_{t|t}`, the Q-function is exactly quadratic, so writing
:math:`u_t - (K_t x_t + k_t) = -K_t (x_t - \hat x_{t|t})` and summing over
time gives

.. math::

    J = \underbrace{\tfrac12 m_0^\top V_0 m_0 + v_0^\top m_0 + s_0
          + \tfrac12 \operatorname{tr}(V_0 P_0)
          + \tfrac12 \sum_{t<T} \operatorname{tr}(V_{t+1} W_t)}_{\text{full information}}
      + \underbrace{\tfrac12 \sum_{t<T}
          \operatorname{tr}\bigl(K_t^\top H_t K_t\, P_{t|t}\bigr)}_{\text{estimation}} .

**Stationary.** For a time-invariant plant without affine terms the
infinite-horizon controller uses the algebraic-Riccati gains of
:func:`~gpcontrol.solvers.dlqr` and :func:`~gpcontrol.solvers.kalman.dlqe`; its
average cost per step is

.. math::

    \lim_{T\to\infty} \frac1T J_T = \tfrac12 \operatorname{tr}(P W)
        + \tfrac12 \operatorname{tr}\bigl(K^\top (R + B^\top P B) K\, P_{\infty|\infty}\bigr).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array
from gpcontrol.solvers.kalman import (
    LQEResult,
    _check_prior,
    _covariance_pass,
    _covariance_seq,
    _frozen,
    _per_step,
    dlqe,
)
from gpcontrol.solvers.lqr import FiniteHorizonLQRResult, LQRResult, dlqr, finite_horizon_lqr

__all__ = [
    "LQGController",
    "LQGResult",
    "StationaryLQGResult",
    "lqg",
    "stationary_lqg",
]

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------- controller
class LQGController:
    r"""Output-feedback policy :math:`u_t = K_t \hat x_{t|t} + k_t` with its own Kalman filter.

    Use as ``policy(y, t) -> u`` (e.g. with :func:`gpcontrol.rollout.rollout`).
    Each call performs one filter step on the observation and returns the
    control:

    .. math::

        \hat x_{t|t} = \hat x_{t|t-1} + G_t (y_t - C_t \hat x_{t|t-1} - d_t),\quad
        u_t = K_t \hat x_{t|t} + k_t,\quad
        \hat x_{t+1|t} = A_t \hat x_{t|t} + B_t u_t + c_t .

    The gains :math:`G_t` are precomputed (they do not depend on the data), so
    observations may carry any leading batch shape ``(..., p)``, which runs
    that many independent beliefs at once (Monte Carlo).

    Built by :meth:`LQGResult.controller` or
    :meth:`StationaryLQGResult.controller`; not constructed directly.

    Notes
    -----
    The belief assumes that the returned control is applied unchanged: an
    environment that clips it to an action box makes the prediction step wrong.

    Attributes
    ----------
    horizon : int or None
        ``T`` for a finite-horizon controller, ``None`` for a stationary one.
    """

    def __init__(
        self,
        *,
        K: Array,
        k: Array,
        G: Array,
        A: Array,
        B: Array,
        c: Array,
        C: Array,
        d: Array,
        filtered_covs: Array,
        m0: Array,
        horizon: int | None,
    ) -> None:
        self._K, self._k, self._G = K, k, G
        self._A, self._B, self._c, self._C, self._d = A, B, c, C, d
        self._Pf = filtered_covs
        self._m0 = m0
        self.horizon = horizon
        self.n, self.m, self.p = A.shape[-1], B.shape[-1], C.shape[-2]
        self._t = 0
        self._pred: Array = m0.copy()
        self._filt: Array | None = None

    def reset(self, mean: ArrayLike | None = None) -> None:
        """Start a new episode from the prior mean (or ``mean (..., n)``)."""
        self._pred = self._m0.copy() if mean is None else as_batch("mean", mean, self.n).copy()
        self._filt = None
        self._t = 0

    @property
    def t(self) -> int:
        """Index of the next observation expected."""
        return self._t

    @property
    def mean(self) -> Array:
        r"""Current estimate: :math:`\hat x_{t|t}` after a call, the prior mean before any."""
        return (self._pred if self._filt is None else self._filt).copy()

    @property
    def cov(self) -> Array:
        r"""Error covariance :math:`P_{t|t}` of :attr:`mean` (data-independent), ``(n, n)``."""
        if self._filt is None:
            raise ValueError("no observation has been processed since the last reset()")
        return self._Pf[self._index(self._t - 1)].copy()

    def _index(self, t: int) -> int:
        return t if self.horizon is not None else 0

    def __call__(self, y: ArrayLike, t: int | None = None) -> Array:
        """Filter ``y (..., p)`` observed at step ``t`` and return ``u (..., m)``.

        ``t = 0`` starts a new episode (an implicit :meth:`reset` if needed);
        otherwise ``t`` must be the next step, or ``None`` to take it as such.
        """
        ya = as_batch("y", y, self.p)
        if t is None:
            t = self._t
        else:
            if isinstance(t, bool) or int(t) != t:
                raise ValueError(f"t must be an integer step, got {t!r}")
            t = int(t)
            if t == 0 and self._t != 0:
                self.reset()
            elif t != self._t:
                raise ValueError(
                    f"the controller expects step {self._t} but got t = {t}; call reset() "
                    "to start a new episode"
                )
        if self.horizon is not None and t >= self.horizon:
            raise ValueError(f"t = {t} is beyond the controller's horizon T = {self.horizon}")
        i = self._index(t)
        e = ya - (self._pred @ self._C[i].T + self._d[i])
        xf = self._pred + e @ self._G[i].T
        u = xf @ self._K[i].T + self._k[i]
        self._pred = xf @ self._A[i].T + u @ self._B[i].T + self._c[i]
        self._filt = xf
        self._t = t + 1
        return np.asarray(u, dtype=np.float64)

    def __repr__(self) -> str:
        kind = "stationary" if self.horizon is None else f"T={self.horizon}"
        return f"LQGController({kind}, n={self.n}, m={self.m}, p={self.p})"


# ---------------------------------------------------------------------------- finite horizon
@dataclasses.dataclass(frozen=True)
class LQGResult:
    r"""Finite-horizon LQG solution (arrays read-only).

    Attributes
    ----------
    K : ndarray, shape (T, m, n)
    k : ndarray, shape (T, m)
        LQR law :math:`u_t = K_t \hat x_{t|t} + k_t`.
    kalman_gains : ndarray, shape (T, n, p)
        Update-form Kalman gains :math:`G_t`.
    predicted_covs : ndarray, shape (T + 1, n, n)
        :math:`P_{t|t-1}` (row 0 is :math:`P_0`).
    filtered_covs : ndarray, shape (T, n, n)
        :math:`P_{t|t}`, the estimation-error covariances the controller acts on.
    expected_cost : float
        Exact :math:`J` of the module docstring.
    full_information_cost : float
        The expected cost if the state were measured exactly.
    estimation_cost : float
        :math:`J` minus ``full_information_cost``: the price of measuring only :math:`y`.
    lqr : FiniteHorizonLQRResult
        The regulator (value function ``V, v, s`` and the dynamics ``A, B, c``).
    C : ndarray, shape (T, p, n)
    d : ndarray, shape (T, p)
    m0 : ndarray, shape (n,)
    P0 : ndarray, shape (n, n)
    """

    K: Array
    k: Array
    kalman_gains: Array
    predicted_covs: Array
    filtered_covs: Array
    expected_cost: float
    full_information_cost: float
    estimation_cost: float
    lqr: FiniteHorizonLQRResult
    C: Array
    d: Array
    m0: Array
    P0: Array

    def __post_init__(self) -> None:
        _frozen(self)

    @property
    def T(self) -> int:  # noqa: N802 - math name
        """Horizon."""
        return int(self.K.shape[0])

    def controller(self) -> LQGController:
        """A fresh :class:`LQGController` (belief at the prior mean ``m0``)."""
        return LQGController(
            K=self.K,
            k=self.k,
            G=self.kalman_gains,
            A=self.lqr.A,
            B=self.lqr.B,
            c=self.lqr.c,
            C=self.C,
            d=self.d,
            filtered_covs=self.filtered_covs,
            m0=np.array(self.m0),
            horizon=self.T,
        )


def _horizon_from(values: dict[str, tuple[Any, int]]) -> int | None:
    """Leading length of the first time-varying argument (``ndim == base + 1``)."""
    for value, base in values.values():
        if value is None:
            continue
        arr = np.asarray(value)
        if arr.ndim == base + 1:
            return int(arr.shape[0])
    return None


def lqg(
    A: ArrayLike,
    B: ArrayLike,
    C: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    W: ArrayLike,
    V: ArrayLike,
    *,
    Qf: ArrayLike,
    m0: ArrayLike,
    P0: ArrayLike,
    T: int | None = None,
    c: ArrayLike | None = None,
    d: ArrayLike | None = None,
    q: ArrayLike | None = None,
    r: ArrayLike | None = None,
    M: ArrayLike | None = None,
    qf: ArrayLike | None = None,
) -> LQGResult:
    r"""Finite-horizon LQG controller and its exact expected cost.

    .. math::

        u_t = K_t \hat x_{t|t} + k_t,\qquad
        J = \tfrac12 m_0^\top V_0 m_0 + v_0^\top m_0 + s_0
          + \tfrac12 \operatorname{tr}(V_0 P_0)
          + \tfrac12 \sum_{t<T} \operatorname{tr}(V_{t+1} W_t)
          + \tfrac12 \sum_{t<T} \operatorname{tr}(K_t^\top (R_t + B_t^\top V_{t+1} B_t) K_t P_{t|t})

    (problem and derivation in the module docstring). The regulator is
    :func:`~gpcontrol.solvers.finite_horizon_lqr`, the estimator the
    covariance recursion of :func:`~gpcontrol.solvers.kalman.kalman_filter`
    (Joseph form).

    Every model and cost argument is constant or time-varying with a leading
    axis of length ``T``.

    Parameters
    ----------
    A : array_like, shape (n, n) or (T, n, n)
    B : array_like, shape (n, m) or (T, n, m)
    C : array_like, shape (p, n) or (T, p, n)
    Q : array_like, shape (n, n) or (T, n, n)
    R : array_like, shape (m, m) or (T, m, m)
    W : array_like, shape (n, n) or (T, n, n)
        Process-noise covariance (PSD).
    V : array_like, shape (p, p) or (T, p, p)
        Measurement-noise covariance (PSD, with every :math:`S_t` PD).
    Qf : array_like, shape (n, n)
    m0 : array_like, shape (n,)
    P0 : array_like, shape (n, n)
        Prior of :math:`x_0` (PSD).
    T : int, optional
        Horizon; required only when every argument is constant.
    c : array_like, shape (n,) or (T, n), optional
        Known drift.
    d : array_like, shape (p,) or (T, p), optional
        Known output offset.
    q, r, M, qf : array_like, optional
        Linear and cross cost terms as in :func:`~gpcontrol.solvers.finite_horizon_lqr`.

    Returns
    -------
    LQGResult

    Raises
    ------
    ValueError
        Wrong shapes (naming the argument), covariances not PSD, a problem not
        strictly convex in the controls, or an innovation covariance that is
        not positive definite (``numpy.linalg.LinAlgError``).
    """
    if T is None:
        T = _horizon_from({"C": (C, 2), "W": (W, 2), "V": (V, 2), "d": (d, 1)})
    reg = finite_horizon_lqr(A, B, Q, R, Qf=Qf, q=q, r=r, M=M, c=c, qf=qf, T=T)
    Tn, m, n = reg.K.shape
    C0 = as_float_array("C", C)
    if C0.ndim == 1 and C0.shape[0] == n:
        C0 = C0[None, :]
    if C0.ndim not in (2, 3) or C0.shape[-1] != n:
        raise ValueError(f"C must have shape (p, {n}) or ({Tn}, p, {n}), got {C0.shape}")
    p = C0.shape[-2]
    C_ = np.array(_per_step("C", C0, (p, n), Tn))
    d_ = np.zeros((Tn, p)) if d is None else np.array(_per_step("d", d, (p,), Tn))
    W_ = _covariance_seq("W", W, n, Tn)
    V_ = _covariance_seq("V", V, p, Tn)
    m0_, P0_ = _check_prior(m0, P0, n)

    est = _covariance_pass(reg.A, C_, W_, V_, P0_)

    R_ = as_float_array("R", R)
    R_ = np.broadcast_to(R_.reshape(1, 1) if R_.ndim == 0 else R_, (Tn, m, m))
    Vn = reg.V[1:]
    H = R_ + np.swapaxes(reg.B, 1, 2) @ Vn @ reg.B  # (T, m, m)
    KHK = np.swapaxes(reg.K, 1, 2) @ H @ reg.K
    estimation = 0.5 * float(np.einsum("tij,tji->", KHK, est.P_filt))
    full = (
        0.5 * float(m0_ @ reg.V[0] @ m0_)
        + float(reg.v[0] @ m0_)
        + float(reg.s[0])
        + 0.5 * float(np.einsum("ij,ji->", reg.V[0], P0_))
        + 0.5 * float(np.einsum("tij,tji->", Vn, W_))
    )
    return LQGResult(
        K=reg.K,
        k=reg.k,
        kalman_gains=est.G,
        predicted_covs=est.P_pred,
        filtered_covs=est.P_filt,
        expected_cost=full + estimation,
        full_information_cost=full,
        estimation_cost=estimation,
        lqr=reg,
        C=C_,
        d=d_,
        m0=m0_.copy(),
        P0=P0_,
    )


# ---------------------------------------------------------------------------- stationary
@dataclasses.dataclass(frozen=True)
class StationaryLQGResult:
    r"""Infinite-horizon LQG solution (arrays read-only).

    Attributes
    ----------
    K : ndarray, shape (m, n)
        LQR gain, :math:`u = K \hat x_{t|t}`.
    kalman_gain : ndarray, shape (n, p)
        Steady-state update-form Kalman gain :math:`G`.
    average_cost : float
        :math:`\lim_T J_T / T` of the module docstring.
    full_information_cost : float
        :math:`\tfrac12 \operatorname{tr}(P W)`, the average cost with exact state measurements.
    estimation_cost : float
        ``average_cost - full_information_cost``.
    lqr : LQRResult
        :func:`~gpcontrol.solvers.dlqr` of ``(A, B, Q, R)``; ``lqr.P`` is the
        Hessian of the value function :math:`\tfrac12 x^\top P x` (the factor
        one half in the cost scales both sides).
    lqe : LQEResult
        :func:`~gpcontrol.solvers.kalman.dlqe` of ``(A, C, W, V)``.
    A, B, C : ndarray
        The plant.
    """

    K: Array
    kalman_gain: Array
    average_cost: float
    full_information_cost: float
    estimation_cost: float
    lqr: LQRResult
    lqe: LQEResult
    A: Array
    B: Array
    C: Array

    def __post_init__(self) -> None:
        _frozen(self)

    def controller(self, m0: ArrayLike | None = None) -> LQGController:
        """A fresh stationary :class:`LQGController` with prior mean ``m0 (n,)`` (default 0)."""
        n, m = self.A.shape[0], self.B.shape[1]
        p = self.C.shape[0]
        mean = np.zeros(n) if m0 is None else as_batch("m0", m0, n).copy()
        return LQGController(
            K=self.K[None],
            k=np.zeros((1, m)),
            G=self.kalman_gain[None],
            A=self.A[None],
            B=self.B[None],
            c=np.zeros((1, n)),
            C=self.C[None],
            d=np.zeros((1, p)),
            filtered_covs=np.asarray(self.lqe.P_filtered)[None],
            m0=mean,
            horizon=None,
        )


def stationary_lqg(
    A: ArrayLike,
    B: ArrayLike,
    C: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    W: ArrayLike,
    V: ArrayLike,
) -> StationaryLQGResult:
    r"""Infinite-horizon (stationary) LQG controller and its average cost per step.

    .. math::

        u_t = K \hat x_{t|t},\quad K = -(R + B^\top P B)^{-1} B^\top P A,\quad
        \bar J = \tfrac12 \operatorname{tr}(P W)
            + \tfrac12 \operatorname{tr}\bigl(K^\top (R + B^\top P B) K\, P_{\infty|\infty}\bigr)

    for the cost :math:`\mathbb E[\tfrac12 x^\top Q x + \tfrac12 u^\top R u]` per
    step, with :math:`P` from :func:`~gpcontrol.solvers.dlqr` and the
    steady-state filter from :func:`~gpcontrol.solvers.kalman.dlqe`
    (Bertsekas, DP and Optimal Control I, Sec. 5.2; Anderson & Moore,
    *Optimal Control: Linear Quadratic Methods*, 1990, Ch. 8).

    Parameters
    ----------
    A : array_like, shape (n, n)
    B : array_like, shape (n, m)
    C : array_like, shape (p, n)
    Q : array_like, shape (n, n)
    R : array_like, shape (m, m)
    W : array_like, shape (n, n)
    V : array_like, shape (p, p)
        Positive definite.

    Returns
    -------
    StationaryLQGResult

    Raises
    ------
    ValueError
        As :func:`~gpcontrol.solvers.dlqr` and :func:`~gpcontrol.solvers.kalman.dlqe`
        (shapes, definiteness, stabilisability and detectability).
    """
    reg = dlqr(A, B, Q, R)
    est = dlqe(A, C, W, V)
    A_ = as_float_array("A", A)
    B_ = as_float_array("B", B)
    if B_.ndim == 1:
        B_ = B_[:, None]
    C_ = as_float_array("C", C)
    if C_.ndim == 1:
        C_ = C_[None, :]
    R_ = as_float_array("R", R)
    R_ = R_.reshape(1, 1) if R_.ndim == 0 else R_
    W_ = as_float_array("W", W)
    P, K = reg.P, reg.K
    H = R_ + B_.T @ P @ B_
    full = 0.5 * float(np.einsum("ij,ji->", P, W_))
    estimation = 0.5 * float(np.einsum("ij,ji->", K.T @ H @ K, est.P_filtered))
    return StationaryLQGResult(
        K=K,
        kalman_gain=est.K,
        average_cost=full + estimation,
        full_information_cost=full,
        estimation_cost=estimation,
        lqr=reg,
        lqe=est,
        A=A_.copy(),
        B=B_.copy(),
        C=C_.copy(),
    )
