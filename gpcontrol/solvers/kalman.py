r"""Kalman filter, Rauch-Tung-Striebel smoother and the steady-state Kalman gain.

The linear-Gaussian state-space model, time-varying allowed, is

.. math::

    x_0 &\sim \mathcal N(m_0, P_0),\\
    x_{t+1} &= A_t x_t + B_t u_t + c_t + w_t, \qquad w_t \sim \mathcal N(0, W_t),\\
    y_t &= C_t x_t + d_t + v_t, \qquad\qquad\ \ v_t \sim \mathcal N(0, V_t),

for :math:`t = 0, \dots, T-1`, with all noises independent. Each observation
:math:`y_t` is followed by the transition :math:`t \to t + 1`, so the model
arrays of a horizon-``T`` problem have a leading axis of length ``T`` exactly as
in :func:`~gpcontrol.solvers.finite_horizon_lqr`.

**Filter** (Kalman 1960). With the predicted moments
:math:`\hat x_{t|t-1}, P_{t|t-1}` (:math:`\hat x_{0|-1} = m_0`,
:math:`P_{0|-1} = P_0`):

.. math::

    S_t &= C_t P_{t|t-1} C_t^\top + V_t, \qquad
    G_t = P_{t|t-1} C_t^\top S_t^{-1}, \qquad
    e_t = y_t - C_t \hat x_{t|t-1} - d_t,\\
    \hat x_{t|t} &= \hat x_{t|t-1} + G_t e_t, \qquad
    P_{t|t} = (I - G_t C_t) P_{t|t-1} (I - G_t C_t)^\top + G_t V_t G_t^\top,\\
    \hat x_{t+1|t} &= A_t \hat x_{t|t} + B_t u_t + c_t, \qquad
    P_{t+1|t} = A_t P_{t|t} A_t^\top + W_t,\\
    \log p(y_{0:T-1}) &= \textstyle\sum_t \log \mathcal N(e_t;\ 0,\ S_t).

The covariance update is Joseph's form (Bucy & Joseph 1968): a sum of two
PSD terms, so rounding cannot make it indefinite, unlike
:math:`(I - G_t C_t) P_{t|t-1}`. :math:`S_t^{-1}` is never formed: :math:`G_t`
and the log-density come from a Cholesky factor of :math:`S_t`.

**Smoother** (Rauch, Tung & Striebel, AIAA J. 3(8), 1965), backwards from
:math:`\hat x_{T-1|T-1}`:

.. math::

    J_t &= P_{t|t} A_t^\top P_{t+1|t}^{-1},\qquad
    \hat x_{t|T} = \hat x_{t|t} + J_t (\hat x_{t+1|T} - \hat x_{t+1|t}),\\
    P_{t|T} &= (I - J_t A_t) P_{t|t} (I - J_t A_t)^\top + J_t W_t J_t^\top
              + J_t P_{t+1|T} J_t^\top,\\
    \operatorname{Cov}(x_{t+1}, x_t \mid y_{0:T-1}) &= P_{t+1|T} J_t^\top .

The covariance line equals the textbook
:math:`P_{t|t} + J_t (P_{t+1|T} - P_{t+1|t}) J_t^\top` but is again a sum of
PSD terms. See also Särkkä, *Bayesian Filtering and Smoothing* (2013),
Theorems 4.2 and 8.2.

**Steady state.** For a time-invariant model the predicted covariance
converges to the stabilising solution of the filter Riccati equation, the
dual of the LQR one (:math:`A \to A^\top`, :math:`B \to C^\top`,
:math:`Q \to W`, :math:`R \to V`):

.. math::

    P = A P A^\top + W - A P C^\top (C P C^\top + V)^{-1} C P A^\top .
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array
from gpcontrol.solvers.lqr import dlqr

__all__ = [
    "KalmanFilterResult",
    "KalmanSmootherResult",
    "LQEResult",
    "kalman_filter",
    "kalman_smoother",
    "dlqe",
]

Array = NDArray[np.float64]
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- results
def _frozen(obj: object) -> None:
    """Make every ndarray field of a frozen dataclass read-only (a result is a record)."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False


@dataclasses.dataclass(frozen=True)
class KalmanFilterResult:
    r"""Output of :func:`kalman_filter` (arrays are read-only).

    Attributes
    ----------
    filtered_means : ndarray, shape (T, n)
        :math:`\hat x_{t|t} = \mathbb E[x_t \mid y_{0:t}]`.
    filtered_covs : ndarray, shape (T, n, n)
        :math:`P_{t|t}`.
    predicted_means : ndarray, shape (T + 1, n)
        :math:`\hat x_{t|t-1} = \mathbb E[x_t \mid y_{0:t-1}]`; row 0 is the
        prior mean :math:`m_0` and row ``T`` the one-step prediction after the
        last observation.
    predicted_covs : ndarray, shape (T + 1, n, n)
        :math:`P_{t|t-1}`.
    gains : ndarray, shape (T, n, p)
        Kalman gains :math:`G_t` (update form).
    innovations : ndarray, shape (T, p)
        :math:`e_t = y_t - C_t \hat x_{t|t-1} - d_t`.
    innovation_covs : ndarray, shape (T, p, p)
        :math:`S_t`.
    log_likelihood : float
        :math:`\log p(y_{0:T-1})` under the model.
    """

    filtered_means: Array
    filtered_covs: Array
    predicted_means: Array
    predicted_covs: Array
    gains: Array
    innovations: Array
    innovation_covs: Array
    log_likelihood: float

    def __post_init__(self) -> None:
        _frozen(self)


@dataclasses.dataclass(frozen=True)
class KalmanSmootherResult:
    r"""Output of :func:`kalman_smoother` (arrays are read-only).

    Attributes
    ----------
    smoothed_means : ndarray, shape (T, n)
        :math:`\hat x_{t|T} = \mathbb E[x_t \mid y_{0:T-1}]`.
    smoothed_covs : ndarray, shape (T, n, n)
        :math:`P_{t|T}`.
    cross_covs : ndarray, shape (T - 1, n, n)
        Lag-one cross-covariances
        :math:`\operatorname{Cov}(x_{t+1}, x_t \mid y_{0:T-1})`, row ``t``
        for the pair :math:`(t+1, t)` (what EM for linear-Gaussian models needs).
    smoother_gains : ndarray, shape (T - 1, n, n)
        :math:`J_t`.
    filter : KalmanFilterResult
        The forward pass the smoother started from.
    """

    smoothed_means: Array
    smoothed_covs: Array
    cross_covs: Array
    smoother_gains: Array
    filter: KalmanFilterResult

    def __post_init__(self) -> None:
        _frozen(self)

    @property
    def log_likelihood(self) -> float:
        """:math:`\\log p(y_{0:T-1})` (from the forward pass)."""
        return self.filter.log_likelihood


@dataclasses.dataclass(frozen=True)
class LQEResult:
    r"""Steady-state Kalman filter of a time-invariant model (see :func:`dlqe`).

    Attributes
    ----------
    K : ndarray, shape (n, p)
        Update-form gain :math:`G = P C^\top (C P C^\top + V)^{-1}`:
        :math:`\hat x_{t|t} = \hat x_{t|t-1} + G (y_t - C \hat x_{t|t-1} - d)`.
    L : ndarray, shape (n, p)
        Predictor-form gain :math:`L = A G`:
        :math:`\hat x_{t+1|t} = A \hat x_{t|t-1} + B u_t + L(y_t - C\hat x_{t|t-1})`
        (python-control's ``dlqe`` gain).
    P : ndarray, shape (n, n)
        Steady-state predicted covariance :math:`P_{t|t-1}` (the Riccati solution).
    P_filtered : ndarray, shape (n, n)
        Steady-state filtered covariance :math:`P_{t|t} = (I - G C) P`.
    eigenvalues : ndarray, shape (n,), complex
        Eigenvalues of the estimation-error dynamics :math:`A - L C`.
    residual : float
        Relative residual of the Riccati equation.
    """

    K: Array
    L: Array
    P: Array
    P_filtered: Array
    eigenvalues: NDArray[np.complex128]
    residual: float

    def __post_init__(self) -> None:
        _frozen(self)


# ---------------------------------------------------------------------------- validation
def _sym(M: Array) -> Array:
    return 0.5 * (M + np.swapaxes(M, -1, -2))


def _per_step(name: str, value: ArrayLike, shape: tuple[int, ...], T: int) -> Array:
    """A constant ``shape`` or time-varying ``(T, *shape)`` argument, broadcast over ``T``."""
    arr = as_float_array(name, value)
    if len(shape) == 2 and shape[1] == 1 and arr.shape == shape[:1]:
        arr = arr[:, None]  # a column given as a vector
    if arr.shape == shape:
        return np.broadcast_to(arr, (T, *shape))
    if arr.shape == (T, *shape):
        return arr
    raise ValueError(f"{name} must have shape {shape} or {(T, *shape)}, got {arr.shape}")


def _covariance_seq(name: str, value: ArrayLike, k: int, T: int) -> Array:
    """A PSD ``(k, k)`` or ``(T, k, k)`` covariance, symmetrised, broadcast to ``(T, k, k)``."""
    arr = as_float_array(name, value)
    if arr.ndim == 0 and k == 1:
        arr = arr.reshape(1, 1)
    if arr.shape not in ((k, k), (T, k, k)):
        raise ValueError(f"{name} must have shape ({k}, {k}) or ({T}, {k}, {k}), got {arr.shape}")
    _check_psd(name, arr)
    return np.broadcast_to(_sym(arr), (T, k, k))


def _check_psd(name: str, M: Array) -> None:
    """Raise ``ValueError`` unless every matrix in ``M (..., k, k)`` is symmetric PSD."""
    if M.size == 0:
        return
    scale = np.maximum(1.0, np.abs(M).max(axis=(-2, -1)))
    asym = np.abs(M - np.swapaxes(M, -1, -2)).max(axis=(-2, -1))
    bad = np.flatnonzero(np.atleast_1d(asym > 1e-8 * scale))
    if bad.size:
        where = f" (at t = {bad[0]})" if M.ndim == 3 else ""
        raise ValueError(f"{name} must be symmetric{where}")
    lam = np.linalg.eigvalsh(_sym(M))[..., 0]
    bad = np.flatnonzero(np.atleast_1d(lam < -1e-10 * scale))
    if bad.size:
        i = bad[0]
        where = f" at t = {i}" if M.ndim == 3 else ""
        low = float(np.atleast_1d(lam)[i])
        raise ValueError(
            f"{name} must be positive semi-definite{where}; smallest eigenvalue {low:.3e}"
        )


@dataclasses.dataclass(frozen=True)
class _Model:
    """Validated model arrays broadcast over ``T`` steps."""

    A: Array  # (T, n, n)
    Bu: Array  # (T, n): B_t u_t + c_t
    C: Array  # (T, p, n)
    d: Array  # (T, p)
    W: Array  # (T, n, n)
    V: Array  # (T, p, p)
    m0: Array  # (n,)
    P0: Array  # (n, n)


def _check_model(
    T: int,
    A: ArrayLike,
    C: ArrayLike,
    W: ArrayLike,
    V: ArrayLike,
    m0: ArrayLike,
    P0: ArrayLike,
    B: ArrayLike | None,
    U: ArrayLike | None,
    c: ArrayLike | None,
    d: ArrayLike | None,
) -> _Model:
    A0 = as_float_array("A", A)
    if A0.ndim not in (2, 3) or A0.shape[-1] != A0.shape[-2] or A0.shape[-1] == 0:
        raise ValueError(f"A must have shape (n, n) or ({T}, n, n), got {A0.shape}")
    n = A0.shape[-1]
    C0 = as_float_array("C", C)
    if C0.ndim == 1 and C0.shape[0] == n:
        C0 = C0[None, :]  # a single output row
    if C0.ndim not in (2, 3) or C0.shape[-1] != n:
        raise ValueError(f"C must have shape (p, {n}) or ({T}, p, {n}), got {C0.shape}")
    p = C0.shape[-2]
    A_ = _per_step("A", A0, (n, n), T)
    C_ = _per_step("C", C0, (p, n), T)
    Bu = np.zeros((T, n))
    if (B is None) != (U is None):
        raise ValueError("give both B and U (the known inputs) or neither")
    if B is not None and U is not None:
        B0 = as_float_array("B", B)
        if B0.ndim == 1 and B0.shape[0] == n:
            B0 = B0[:, None]
        if B0.ndim not in (2, 3) or B0.shape[-2] != n:
            raise ValueError(f"B must have shape ({n}, m) or ({T}, {n}, m), got {B0.shape}")
        mu = B0.shape[-1]
        B_ = _per_step("B", B0, (n, mu), T)
        U_ = as_float_array("U", U)
        if U_.ndim == 1 and mu == 1:
            U_ = U_[:, None]
        if U_.shape != (T, mu):
            raise ValueError(f"U must have shape ({T}, {mu}), got {U_.shape}")
        Bu = Bu + np.einsum("tij,tj->ti", B_, U_)
    if c is not None:
        Bu = Bu + _per_step("c", c, (n,), T)
    d_ = np.zeros((T, p)) if d is None else np.asarray(_per_step("d", d, (p,), T))
    W_ = _covariance_seq("W", W, n, T)
    V_ = _covariance_seq("V", V, p, T)
    m0_, P0_ = _check_prior(m0, P0, n)
    return _Model(A_, Bu, C_, d_, W_, V_, m0_, P0_)


def _check_prior(m0: ArrayLike, P0: ArrayLike, n: int) -> tuple[Array, Array]:
    """Validate the prior ``x_0 ~ N(m0 (n,), P0 (n, n))``; returns ``P0`` symmetrised."""
    m0_ = as_float_array("m0", m0)
    if m0_.shape != (n,):
        raise ValueError(f"m0 must have shape ({n},), got {m0_.shape}")
    P0_ = as_float_array("P0", P0)
    if P0_.shape != (n, n):
        raise ValueError(f"P0 must have shape ({n}, {n}), got {P0_.shape}")
    _check_psd("P0", P0_)
    return m0_, _sym(P0_)


def _check_observations(Y: ArrayLike) -> Array:
    Y_ = as_float_array("Y", Y)
    if Y_.ndim == 1:
        Y_ = Y_[:, None]  # scalar observations
    if Y_.ndim != 2 or Y_.shape[0] < 1:
        raise ValueError(f"Y must have shape (T, p) with T >= 1, got {Y_.shape}")
    return Y_


# ---------------------------------------------------------------------------- recursions
@dataclasses.dataclass
class _Covariances:
    """Data-independent part of the filter: covariances, gains, Cholesky factors of S."""

    P_pred: Array  # (T + 1, n, n)
    P_filt: Array  # (T, n, n)
    G: Array  # (T, n, p)
    S: Array  # (T, p, p)
    L_S: Array  # (T, p, p) lower Cholesky factors of S


def _covariance_pass(A: Array, C: Array, W: Array, V: Array, P0: Array) -> _Covariances:
    r"""Covariance recursion of the filter (Joseph form); independent of the data.

    Raises ``numpy.linalg.LinAlgError`` (a ``ValueError``) naming the step at
    which :math:`S_t` is not positive definite.
    """
    T, p, n = C.shape
    P_pred = np.empty((T + 1, n, n))
    P_filt = np.empty((T, n, n))
    G = np.empty((T, n, p))
    S_all = np.empty((T, p, p))
    L_all = np.empty((T, p, p))
    P_pred[0] = P0
    eye = np.eye(n)
    for t in range(T):
        P = P_pred[t]
        CP = C[t] @ P
        S = CP @ C[t].T + V[t]
        S = 0.5 * (S + S.T)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            lam = np.linalg.eigvalsh(S)[0] if p else 0.0
            raise np.linalg.LinAlgError(
                f"innovation covariance S_t = C_t P_t|t-1 C_t' + V_t is not positive definite at "
                f"t = {t} (smallest eigenvalue {lam:.3e}); make V positive definite"
            ) from None
        Gt = sla.cho_solve((L, True), CP).T  # P C' S^-1 = (S^-1 C P)'
        IGC = eye - Gt @ C[t]
        Pf = IGC @ P @ IGC.T + Gt @ V[t] @ Gt.T
        Pf = 0.5 * (Pf + Pf.T)
        Pn = A[t] @ Pf @ A[t].T + W[t]
        P_filt[t], G[t], S_all[t], L_all[t] = Pf, Gt, S, L
        P_pred[t + 1] = 0.5 * (Pn + Pn.T)
    if not (np.isfinite(P_pred).all() and np.isfinite(G).all()):
        raise np.linalg.LinAlgError("the filter covariances overflowed (non-finite values)")
    return _Covariances(P_pred, P_filt, G, S_all, L_all)


def _run_filter(Y: Array, model: _Model) -> KalmanFilterResult:
    T, p = Y.shape
    if model.C.shape[1] != p:
        raise ValueError(f"Y must have shape ({T}, {model.C.shape[1]}), got {Y.shape}")
    cov = _covariance_pass(model.A, model.C, model.W, model.V, model.P0)
    n = model.A.shape[1]
    m_pred = np.empty((T + 1, n))
    m_filt = np.empty((T, n))
    E = np.empty((T, p))
    m_pred[0] = model.m0
    loglik = -0.5 * T * p * np.log(2.0 * np.pi)
    for t in range(T):
        e = Y[t] - model.C[t] @ m_pred[t] - model.d[t]
        m_filt[t] = m_pred[t] + cov.G[t] @ e
        m_pred[t + 1] = model.A[t] @ m_filt[t] + model.Bu[t]
        z = sla.solve_triangular(cov.L_S[t], e, lower=True)
        loglik -= 0.5 * float(z @ z) + float(np.log(np.diag(cov.L_S[t])).sum())
        E[t] = e
    if not (np.isfinite(m_pred).all() and np.isfinite(loglik)):
        raise np.linalg.LinAlgError("the filter means overflowed (non-finite values)")
    return KalmanFilterResult(
        filtered_means=m_filt,
        filtered_covs=cov.P_filt,
        predicted_means=m_pred,
        predicted_covs=cov.P_pred,
        gains=cov.G,
        innovations=E,
        innovation_covs=cov.S,
        log_likelihood=float(loglik),
    )


def _solve_psd(P: Array, M: Array) -> Array:
    """``P^{-1} M`` for symmetric PSD ``P``: Cholesky, else least squares (pseudo-inverse)."""
    try:
        return sla.cho_solve(sla.cho_factor(P, lower=True), M)
    except (np.linalg.LinAlgError, ValueError):
        logger.debug("predicted covariance is singular; using a least-squares solve")
        return np.asarray(np.linalg.lstsq(P, M, rcond=None)[0], dtype=np.float64)


# ---------------------------------------------------------------------------- public API
def kalman_filter(
    Y: ArrayLike,
    A: ArrayLike,
    C: ArrayLike,
    W: ArrayLike,
    V: ArrayLike,
    *,
    m0: ArrayLike,
    P0: ArrayLike,
    B: ArrayLike | None = None,
    U: ArrayLike | None = None,
    c: ArrayLike | None = None,
    d: ArrayLike | None = None,
) -> KalmanFilterResult:
    r"""Kalman filter for a linear-Gaussian state-space model, with the log-likelihood.

    .. math::

        \hat x_{t|t} = \hat x_{t|t-1} + G_t (y_t - C_t \hat x_{t|t-1} - d_t),\quad
        P_{t|t} = (I - G_t C_t) P_{t|t-1} (I - G_t C_t)^\top + G_t V_t G_t^\top,

        \hat x_{t+1|t} = A_t \hat x_{t|t} + B_t u_t + c_t,\quad
        P_{t+1|t} = A_t P_{t|t} A_t^\top + W_t,\quad
        G_t = P_{t|t-1} C_t^\top (C_t P_{t|t-1} C_t^\top + V_t)^{-1}

    (model and notation in the module docstring; Kalman, J. Basic Eng. 82,
    1960; Joseph form: Bucy & Joseph 1968; Särkkä 2013, Theorem 4.2).

    Every model argument is constant (shape below) or time-varying with a
    leading axis of length ``T`` (row ``t`` is used with observation ``t`` and
    the transition that follows it).

    Parameters
    ----------
    Y : array_like, shape (T, p)
        Observations :math:`y_0, \dots, y_{T-1}` (shape ``(T,)`` if ``p = 1``).
    A : array_like, shape (n, n) or (T, n, n)
    C : array_like, shape (p, n) or (T, p, n)
    W : array_like, shape (n, n) or (T, n, n)
        Process-noise covariance, symmetric PSD.
    V : array_like, shape (p, p) or (T, p, p)
        Measurement-noise covariance, symmetric PSD; :math:`S_t` must be
        positive definite (a PD ``V`` guarantees it).
    m0 : array_like, shape (n,)
        Prior mean of :math:`x_0`.
    P0 : array_like, shape (n, n)
        Prior covariance of :math:`x_0`, symmetric PSD.
    B : array_like, shape (n, m) or (T, n, m), optional
    U : array_like, shape (T, m), optional
        Known inputs (give both ``B`` and ``U`` or neither).
    c : array_like, shape (n,) or (T, n), optional
        Known drift of the dynamics.
    d : array_like, shape (p,) or (T, p), optional
        Known offset of the observations.

    Returns
    -------
    KalmanFilterResult

    Raises
    ------
    ValueError
        Wrong shapes (the message names the argument), NaN/inf, covariances
        that are not symmetric PSD.
    numpy.linalg.LinAlgError
        :math:`S_t` not positive definite at some step (a subclass of
        ``ValueError``).

    Examples
    --------
    >>> Y = [[1.0], [1.2]]
    >>> res = kalman_filter(Y, [[1.0]], [[1.0]], [[0.1]], [[0.5]], m0=[0.0], P0=[[1.0]])
    >>> res.filtered_means.shape, res.predicted_means.shape
    ((2, 1), (3, 1))
    """
    Y_ = _check_observations(Y)
    model = _check_model(Y_.shape[0], A, C, W, V, m0, P0, B, U, c, d)
    return _run_filter(Y_, model)


def kalman_smoother(
    Y: ArrayLike,
    A: ArrayLike,
    C: ArrayLike,
    W: ArrayLike,
    V: ArrayLike,
    *,
    m0: ArrayLike,
    P0: ArrayLike,
    B: ArrayLike | None = None,
    U: ArrayLike | None = None,
    c: ArrayLike | None = None,
    d: ArrayLike | None = None,
) -> KalmanSmootherResult:
    r"""Rauch-Tung-Striebel smoother: :math:`p(x_t \mid y_{0:T-1})` for every ``t``.

    .. math::

        J_t = P_{t|t} A_t^\top P_{t+1|t}^{-1},\quad
        \hat x_{t|T} = \hat x_{t|t} + J_t(\hat x_{t+1|T} - \hat x_{t+1|t}),

        P_{t|T} = (I - J_t A_t) P_{t|t} (I - J_t A_t)^\top + J_t W_t J_t^\top
            + J_t P_{t+1|T} J_t^\top,\quad
        \operatorname{Cov}(x_{t+1}, x_t \mid y) = P_{t+1|T} J_t^\top

    after a forward :func:`kalman_filter` pass (Rauch, Tung & Striebel, AIAA J.
    3(8), 1965; Särkkä 2013, Theorem 8.2). :math:`P_{t+1|t}^{-1}` is applied by
    a Cholesky solve (least squares if it is singular, e.g. no process noise
    on a degenerate state).

    Parameters
    ----------
    Y, A, C, W, V, m0, P0, B, U, c, d
        As in :func:`kalman_filter`.

    Returns
    -------
    KalmanSmootherResult
        Smoothed means/covariances for ``t = 0..T-1``, lag-one
        cross-covariances, and the forward pass.

    Raises
    ------
    ValueError, numpy.linalg.LinAlgError
        As in :func:`kalman_filter`.
    """
    Y_ = _check_observations(Y)
    T = Y_.shape[0]
    model = _check_model(T, A, C, W, V, m0, P0, B, U, c, d)
    filt = _run_filter(Y_, model)
    n = model.A.shape[1]
    ms = np.empty((T, n))
    Ps = np.empty((T, n, n))
    cross = np.empty((max(T - 1, 0), n, n))
    J_all = np.empty((max(T - 1, 0), n, n))
    ms[T - 1] = filt.filtered_means[T - 1]
    Ps[T - 1] = filt.filtered_covs[T - 1]
    eye = np.eye(n)
    for t in range(T - 2, -1, -1):
        At, Pf = model.A[t], filt.filtered_covs[t]
        J = _solve_psd(filt.predicted_covs[t + 1], At @ Pf).T  # P_f A' P_p^-1
        ms[t] = filt.filtered_means[t] + J @ (ms[t + 1] - filt.predicted_means[t + 1])
        IJA = eye - J @ At
        P = IJA @ Pf @ IJA.T + J @ (model.W[t] + Ps[t + 1]) @ J.T
        Ps[t] = 0.5 * (P + P.T)
        cross[t] = Ps[t + 1] @ J.T
        J_all[t] = J
    if not (np.isfinite(ms).all() and np.isfinite(Ps).all()):
        raise np.linalg.LinAlgError("the smoother overflowed (non-finite values)")
    return KalmanSmootherResult(
        smoothed_means=ms, smoothed_covs=Ps, cross_covs=cross, smoother_gains=J_all, filter=filt
    )


_DUAL_MESSAGES = (
    ("(A, B) is not stabilisable", "(A, C) is not detectable"),
    ("[A - lambda I, B]", "[A - lambda I; C]"),
    ("(Q, A) is not detectable", "(A, W) is not stabilisable"),
    ("does not appear in the cost", "is not excited by the process noise W"),
    ("[A - lambda I; Q]", "[A - lambda I, W]"),
    ("A - B R^-1 N'", "A"),
)


def dlqe(A: ArrayLike, C: ArrayLike, W: ArrayLike, V: ArrayLike) -> LQEResult:
    r"""Steady-state Kalman filter of a time-invariant model (discrete-time LQE).

    .. math::

        P = A P A^\top + W - A P C^\top (C P C^\top + V)^{-1} C P A^\top,\qquad
        G = P C^\top (C P C^\top + V)^{-1},\quad L = A G .

    This is the LQR Riccati equation of the dual pair
    :math:`(A^\top, C^\top)` with weights :math:`(W, V)`, solved by
    :func:`~gpcontrol.solvers.dlqr`: its Riccati solution is :math:`P` and
    its gain is :math:`-L^\top` (Kalman 1960, duality; Anderson & Moore,
    *Optimal Filtering*, 1979, Sec. 4.4).

    Unlike python-control's ``dlqe(A, G, C, QN, RN)``, ``W`` is the full
    process-noise covariance (``G QN G'`` there); ``L`` and ``P`` are the same.

    Parameters
    ----------
    A : array_like, shape (n, n)
    C : array_like, shape (p, n)
    W : array_like, shape (n, n)
        Process-noise covariance, symmetric PSD.
    V : array_like, shape (p, p)
        Measurement-noise covariance, symmetric positive definite.

    Returns
    -------
    LQEResult

    Raises
    ------
    ValueError
        Bad shapes, ``W`` not PSD, ``V`` not PD, :math:`(A, C)` not detectable,
        or an unstable mode not excited by ``W``.
    numpy.linalg.LinAlgError
        The Riccati solver failed.
    """
    A_ = as_float_array("A", A)
    if A_.ndim != 2 or A_.shape[0] != A_.shape[1]:
        raise ValueError(f"A must have shape (n, n), got {A_.shape}")
    n = A_.shape[0]
    C_ = as_float_array("C", C)
    if C_.ndim == 1 and C_.shape[0] == n:
        C_ = C_[None, :]
    if C_.ndim != 2 or C_.shape[1] != n:
        raise ValueError(f"C must have shape (p, {n}), got {C_.shape}")
    p = C_.shape[0]
    W_ = as_float_array("W", W)
    if W_.shape != (n, n):
        raise ValueError(f"W must have shape ({n}, {n}), got {W_.shape}")
    V_ = as_float_array("V", V)
    if V_.ndim == 0 and p == 1:
        V_ = V_.reshape(1, 1)
    if V_.shape != (p, p):
        raise ValueError(f"V must have shape ({p}, {p}), got {V_.shape}")
    try:
        res = dlqr(A_.T, C_.T, W_, V_)
    except ValueError as exc:
        msg = str(exc).replace("Q must", "W must").replace("R must", "V must")
        for primal, dual in _DUAL_MESSAGES:
            msg = msg.replace(primal, dual)
        raise type(exc)(f"steady-state Kalman filter: {msg}") from exc
    P = res.P
    L = -res.K.T
    S = C_ @ P @ C_.T + V_
    G = sla.cho_solve(sla.cho_factor(_sym(S), lower=True), C_ @ P).T
    IGC = np.eye(n) - G @ C_
    Pf = _sym(IGC @ P @ IGC.T + G @ V_ @ G.T)
    return LQEResult(
        K=G,
        L=L,
        P=P,
        P_filtered=Pf,
        eigenvalues=np.linalg.eigvals(A_ - L @ C_),
        residual=res.residual,
    )
