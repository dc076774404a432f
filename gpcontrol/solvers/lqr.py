r"""Linear-quadratic regulators: infinite horizon, finite horizon, time-varying, tracking.

**Infinite horizon.** For :math:`x_{t+1} = A x_t + B u_t` (or
:math:`\dot x = A x + B u`) and the cost

.. math::

    J = \sum_{t=0}^{\infty} x_t^\top Q x_t + u_t^\top R u_t + 2 x_t^\top N u_t
    \qquad\Bigl(\text{or } \int_0^\infty \cdots \,dt\Bigr),

the optimal control is :math:`u = K x` with :math:`P` the stabilising solution of
the discrete (continuous) algebraic Riccati equation:

.. math::

    P = A^\top P A + Q - (A^\top P B + N)(R + B^\top P B)^{-1}(B^\top P A + N^\top),
    \quad K = -(R + B^\top P B)^{-1}(B^\top P A + N^\top);

    0 = A^\top P + P A + Q - (P B + N) R^{-1} (B^\top P + N^\top),
    \quad K = -R^{-1}(B^\top P + N^\top).

**Finite horizon, time-varying.** The general problem that iLQR, LQG and
guided policy search all reduce to,

.. math::

    \min_{u_{0:T-1}} \sum_{t=0}^{T-1} \Bigl(\tfrac12 x_t^\top Q_t x_t
        + \tfrac12 u_t^\top R_t u_t + x_t^\top M_t u_t + q_t^\top x_t + r_t^\top u_t\Bigr)
        + \tfrac12 x_T^\top Q_f x_T + q_f^\top x_T
    \quad\text{s.t.}\quad x_{t+1} = A_t x_t + B_t u_t + c_t,

is solved by the backward Riccati recursion on the quadratic value function
:math:`V_t(x) = \tfrac12 x^\top V_t x + v_t^\top x + s_t`. With
:math:`z = (x, 1, u)` the recursion is a single congruence per step: the
action-value matrix is

.. math::

    H_t = C_t + \mathcal F_t^\top \mathcal V_{t+1} \mathcal F_t,\quad
    \mathcal F_t = \begin{bmatrix} A_t & c_t & B_t \\ 0 & 1 & 0\end{bmatrix},\quad
    \mathcal V = \begin{bmatrix} V & v \\ v^\top & 2 s\end{bmatrix},\quad
    C_t = \begin{bmatrix} Q_t & q_t & M_t \\ q_t^\top & 0 & r_t^\top \\
        M_t^\top & r_t & R_t\end{bmatrix},

the policy is :math:`u_t = K_t x_t + k_t` with :math:`[K_t\ k_t] = -H_{uu}^{-1}
[H_{ux}\ H_{u1}]` and :math:`\mathcal V_t = Z_t^\top H_t Z_t`,
:math:`Z_t = [I;\ [K_t\ k_t]]`. The minimiser exists and is unique iff every
:math:`H_{uu,t}` is positive definite (then the reduced QP in :math:`u` is
strictly convex). See Bertsekas, *Dynamic Programming and Optimal Control*
Vol. I, Sec. 4.1, and Tassa, Erez & Todorov (IROS 2012) Eqs. (5)-(11) for the
same recursion inside iLQR.

**Tracking.** :func:`tvlqr` linearises any :class:`~gpcontrol.solvers.Dynamics`
about a reference :math:`(\bar x_t, \bar u_t)` and regulates the deviation,
returning the absolute law :math:`u_t = K_t x_t + k_t`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import lapack

from gpcontrol._validation import as_batch, as_float_array, check_pd, check_psd
from gpcontrol.solvers.boxqp import _box_qp
from gpcontrol.solvers.dynamics import linearize_affine

__all__ = [
    "LQRResult",
    "dlqr",
    "lqr",
    "FiniteHorizonLQRResult",
    "finite_horizon_lqr",
    "TVLQRResult",
    "tvlqr",
]

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------- infinite horizon
@dataclasses.dataclass(frozen=True)
class LQRResult:
    r"""Infinite-horizon LQR solution.

    .. math::

        u = K x, \qquad J^*(x_0) = x_0^\top P x_0

    Attributes
    ----------
    K : ndarray, shape (m, n)
        Optimal gain, ``u = K x``.
    P : ndarray, shape (n, n)
        Stabilising solution of the algebraic Riccati equation (symmetric PSD).
    eigenvalues : ndarray, shape (n,), complex
        Closed-loop eigenvalues of ``A + B K``.
    residual : float
        Relative Riccati residual ``||Res(P)||_F / scale`` (see :func:`dlqr`).
    """

    K: Array
    P: Array
    eigenvalues: NDArray[np.complex128]
    residual: float


def _as_matrix(name: str, value: ArrayLike) -> Array:
    """A scalar weight (single control) becomes a ``(1, 1)`` matrix."""
    arr = as_float_array(name, value)
    return arr.reshape(1, 1) if arr.ndim == 0 else arr


def _check_lqr_data(
    A: ArrayLike, B: ArrayLike, Q: ArrayLike, R: ArrayLike, N: ArrayLike | None
) -> tuple[Array, Array, Array, Array, Array]:
    A_ = as_float_array("A", A)
    if A_.ndim != 2 or A_.shape[0] != A_.shape[1]:
        raise ValueError(f"A must have shape (n, n), got {A_.shape}")
    n = A_.shape[0]
    B_ = as_float_array("B", B)
    if B_.ndim == 1 and B_.shape[0] == n:
        B_ = B_[:, None]
    if B_.ndim != 2 or B_.shape[0] != n:
        raise ValueError(f"B must have shape ({n}, m), got {B_.shape}")
    m = B_.shape[1]
    Q_ = check_psd("Q", Q, n)
    R_ = check_pd("R", _as_matrix("R", R), m)
    if N is None:
        N_ = np.zeros((n, m))
    else:
        N_ = as_float_array("N", N)
        if N_.shape != (n, m):
            raise ValueError(f"N must have shape ({n}, {m}), got {N_.shape}")
        joint = np.block([[Q_, N_], [N_.T, R_]])
        lam = np.linalg.eigvalsh(joint).min()
        if lam < -1e-10 * max(1.0, np.abs(joint).max()):
            raise ValueError(
                f"[[Q, N], [N', R]] must be positive semi-definite; smallest eigenvalue {lam:.3e}"
            )
    return A_, B_, Q_, R_, N_


def _unstable_modes(A: Array, discrete: bool) -> NDArray[np.complex128]:
    lam = np.linalg.eigvals(A).astype(np.complex128)
    tol = 1e-9
    return lam[np.abs(lam) >= 1 - tol] if discrete else lam[lam.real >= -tol]


def _pbh_rank_deficient(A: Array, W: Array, lam: complex, *, rows: bool) -> bool:
    """PBH test: is ``[A - lam I, W]`` (or its row stack) rank deficient?"""
    n = A.shape[0]
    Ml = A - lam * np.eye(n)
    M = np.vstack([Ml, W]) if rows else np.hstack([Ml, W])
    sv = np.linalg.svd(M, compute_uv=False)
    scale = max(1.0, np.linalg.norm(A, 2), np.linalg.norm(W, 2) if W.size else 0.0)
    return bool(sv[n - 1] <= 1e-9 * scale) if sv.size >= n else True


def _check_stabilizable_detectable(
    A: Array, B: Array, Q: Array, R: Array, N: Array, *, discrete: bool
) -> None:
    region = "|lambda| >= 1" if discrete else "Re(lambda) >= 0"
    for lam in _unstable_modes(A, discrete):
        if _pbh_rank_deficient(A, B, lam, rows=False):
            raise ValueError(
                f"(A, B) is not stabilisable: the mode lambda = {lam:.6g} ({region}) is "
                "uncontrollable (PBH test: rank [A - lambda I, B] < n)"
            )
    # Remove the cross term: u = v - R^-1 N' x gives (A - B R^-1 N', Q - N R^-1 N').
    RinvNt = np.linalg.solve(R, N.T)
    At = A - B @ RinvNt
    Qt = Q - N @ RinvNt
    Qt = 0.5 * (Qt + Qt.T)
    for lam in _unstable_modes(At, discrete):
        if _pbh_rank_deficient(At, Qt, lam, rows=True):
            raise ValueError(
                f"(Q, A) is not detectable: the mode lambda = {lam:.6g} ({region}) of "
                "A - B R^-1 N' does not appear in the cost (PBH test: rank [A - lambda I; Q] < n), "
                "so the Riccati equation has no stabilising solution"
            )


def dlqr(
    A: ArrayLike,
    B: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    N: ArrayLike | None = None,
    *,
    rtol: float = 1e-8,
) -> LQRResult:
    r"""Discrete-time infinite-horizon LQR.

    .. math::

        \min \sum_{t \ge 0} x_t^\top Q x_t + u_t^\top R u_t + 2 x_t^\top N u_t,\quad
        x_{t+1} = A x_t + B u_t;\qquad u_t = K x_t,

        K = -(R + B^\top P B)^{-1}(B^\top P A + N^\top),\quad
        P = A^\top P A + Q + (A^\top P B + N) K .

    The DARE is solved by :func:`scipy.linalg.solve_discrete_are`; the
    stabilisability of :math:`(A, B)` and detectability of the cost are checked
    first with the PBH test, and the solution's residual and closed-loop
    stability are verified afterwards.

    Parameters
    ----------
    A : array_like, shape (n, n)
    B : array_like, shape (n, m)
    Q : array_like, shape (n, n)
        Symmetric positive semi-definite.
    R : array_like, shape (m, m)
        Symmetric positive definite.
    N : array_like, shape (n, m), optional
        Cross weight; ``[[Q, N], [N', R]]`` must be PSD.
    rtol : float
        Largest accepted relative residual
        :math:`\|A^\top P A - P + Q + (A^\top P B + N)K\|_F / \max(1, \|P\|_F, \|Q\|_F)`.

    Returns
    -------
    LQRResult

    Raises
    ------
    ValueError
        Bad shapes, Q not PSD, R not PD, (A, B) not stabilisable, or an
        undetectable unstable mode.
    numpy.linalg.LinAlgError
        The Riccati solver failed or its solution misses ``rtol``.
    """
    A_, B_, Q_, R_, N_ = _check_lqr_data(A, B, Q, R, N)
    _check_stabilizable_detectable(A_, B_, Q_, R_, N_, discrete=True)
    try:
        P = sla.solve_discrete_are(A_, B_, Q_, R_, s=N_)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise np.linalg.LinAlgError(
            f"discrete Riccati equation could not be solved: {exc}"
        ) from exc
    P = 0.5 * (P + P.T)
    S = R_ + B_.T @ P @ B_
    K = -np.linalg.solve(0.5 * (S + S.T), B_.T @ P @ A_ + N_.T)
    res = A_.T @ P @ A_ - P + Q_ + (A_.T @ P @ B_ + N_) @ K
    scale = max(1.0, float(np.linalg.norm(P)), float(np.linalg.norm(Q_)))
    residual = float(np.linalg.norm(res) / scale)
    eig = np.linalg.eigvals(A_ + B_ @ K).astype(np.complex128)
    if not residual <= rtol:
        raise np.linalg.LinAlgError(f"DARE solution has relative residual {residual:.2e} > {rtol}")
    if np.abs(eig).max(initial=0.0) >= 1.0:
        raise np.linalg.LinAlgError(
            f"DARE solution is not stabilising: closed-loop spectral radius {np.abs(eig).max():.6g}"
        )
    return LQRResult(K=K, P=P, eigenvalues=eig, residual=residual)


def lqr(
    A: ArrayLike,
    B: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    N: ArrayLike | None = None,
    *,
    rtol: float = 1e-8,
) -> LQRResult:
    r"""Continuous-time infinite-horizon LQR.

    .. math::

        \min \int_0^\infty x^\top Q x + u^\top R u + 2 x^\top N u\,dt,\quad
        \dot x = A x + B u;\qquad u = K x,\quad K = -R^{-1}(B^\top P + N^\top),

        0 = A^\top P + P A + Q + (P B + N) K .

    Solved by :func:`scipy.linalg.solve_continuous_are` after PBH checks of
    stabilisability and detectability; the residual and closed-loop stability
    are verified.

    Parameters
    ----------
    A : array_like, shape (n, n)
    B : array_like, shape (n, m)
    Q : array_like, shape (n, n)
        Symmetric positive semi-definite.
    R : array_like, shape (m, m)
        Symmetric positive definite.
    N : array_like, shape (n, m), optional
    rtol : float
        Largest accepted relative residual
        :math:`\|A^\top P + P A + Q + (P B + N) K\|_F / \max(1, \|P\|_F, \|Q\|_F)`.

    Returns
    -------
    LQRResult
        ``eigenvalues`` are those of ``A + B K`` (all with negative real part).

    Raises
    ------
    ValueError, numpy.linalg.LinAlgError
        As in :func:`dlqr`.
    """
    A_, B_, Q_, R_, N_ = _check_lqr_data(A, B, Q, R, N)
    _check_stabilizable_detectable(A_, B_, Q_, R_, N_, discrete=False)
    try:
        P = sla.solve_continuous_are(A_, B_, Q_, R_, s=N_)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise np.linalg.LinAlgError(
            f"continuous Riccati equation could not be solved: {exc}"
        ) from exc
    P = 0.5 * (P + P.T)
    K = -np.linalg.solve(R_, B_.T @ P + N_.T)
    res = A_.T @ P + P @ A_ + Q_ + (P @ B_ + N_) @ K
    scale = max(1.0, float(np.linalg.norm(P)), float(np.linalg.norm(Q_)))
    residual = float(np.linalg.norm(res) / scale)
    eig = np.linalg.eigvals(A_ + B_ @ K).astype(np.complex128)
    if not residual <= rtol:
        raise np.linalg.LinAlgError(f"CARE solution has relative residual {residual:.2e} > {rtol}")
    if eig.real.max(initial=-np.inf) >= 0.0:
        raise np.linalg.LinAlgError(
            f"CARE solution is not stabilising: closed-loop abscissa {eig.real.max():.6g}"
        )
    return LQRResult(K=K, P=P, eigenvalues=eig, residual=residual)


# ---------------------------------------------------------------------------- backward pass
@dataclasses.dataclass
class _Backward:
    """Raw output of :func:`_riccati_backward` (augmented coordinates ``z = (x, 1, u)``)."""

    G: Array  # (T, m, n+1): [K_t, k_t]
    V: Array  # (T+1, n+1, n+1): [[V, v], [v', 2 s]]
    H: Array  # (T, N, N): action-value matrices (unregularised)
    free: NDArray[np.bool_] | None  # (T, m) controls not clamped by the box, if any
    failed_at: int  # -1, or the step whose H_uu was not positive definite
    dV: tuple[float, float] | None = None  # (sum k' H_u1, sum k' H_uu k / 2), if computed

    def expected_terms(self) -> tuple[float, float]:
        """Predicted-reduction terms ``(sum_t k_t' Q_u, sum_t k_t' Q_uu k_t / 2)``."""
        if self.dV is not None:
            return self.dV
        n1 = self.V.shape[1]
        k = self.G[:, :, n1 - 1]
        Hu = self.H[:, n1:]
        d1 = float(np.einsum("ti,ti->", k, Hu[:, :, n1 - 1]))
        d2 = 0.5 * float(np.einsum("ti,tij,tj->", k, Hu[:, :, n1:], k))
        return d1, d2


def _riccati_backward(
    F: Array,
    C: Array,
    V_T: Array,
    m: int,
    *,
    mu: float = 0.0,
    state_regularization: bool = True,
    lower: Array | None = None,
    upper: Array | None = None,
    k_warm: Array | None = None,
    F2: Array | None = None,
) -> _Backward:
    r"""Backward Riccati pass in augmented coordinates ``z = (x, 1, u)``.

    Implements the recursion of the module docstring, with three extensions
    used by iLQR/DDP (Tassa, Erez & Todorov, IROS 2012, Eqs. (5)-(11); Tassa,
    Mansard & Todorov, ICRA 2014, Sec. III):

    * Levenberg-Marquardt regularisation of the policy computation only:
      :math:`\tilde H_{u\cdot} = H_{u\cdot} + \mu B^\top \mathcal F_x` (state
      regularisation, Eq. (10) of the 2012 paper) or
      :math:`\tilde H_{uu} = H_{uu} + \mu I`;
    * box limits ``lower <= u_t <= upper`` on the (deviation) control: the
      feed-forward term is the solution of a box QP and the feedback rows of
      clamped controls are zero;
    * DDP's second-order dynamics term
      :math:`H \mathrel{+}= \sum_i (\mathcal V_{t+1} \mathcal F_t e_1)_i\,\nabla^2 F_i`.

    Parameters
    ----------
    F : ndarray, shape (T, n+1, N)
        Augmented dynamics ``[[A, c, B], [0, 1, 0]]``, ``N = n + 1 + m``.
    C : ndarray, shape (T, N, N)
        Augmented symmetric stage cost.
    V_T : ndarray, shape (n+1, n+1)
        Augmented terminal value.
    m : int
    mu : float
        Regulariser (>= 0).
    state_regularization : bool
        Regularise through the next state (True) or on ``H_uu`` directly.
    lower, upper : ndarray, shape (T, m), optional
        Box on ``u_t``.
    k_warm : ndarray, shape (T, m), optional
        Warm start of the box QPs.
    F2 : ndarray, shape (T, n, N, N), optional
        Second derivatives of each state component w.r.t. ``z`` (DDP).
    """
    T, n1, N = F.shape
    n = n1 - 1
    G = np.zeros((T, m, n1))
    V = np.empty((T + 1, n1, n1))
    V[T] = V_T
    H = np.empty((T, N, N))
    bounded = lower is not None and upper is not None
    free = np.ones((T, m), dtype=bool) if bounded else None
    Ft = np.ascontiguousarray(np.swapaxes(F, 1, 2))  # (T, N, n1)
    reg: Array | None = None
    if mu > 0.0:
        if state_regularization:
            reg = mu * (Ft[:, n1:, :n] @ F[:, :n, :])  # (T, m, N)
        else:
            reg = np.zeros((1, m, N))
            reg[0, :, n1:] = mu * np.eye(m)
    potrf, potrs = lapack.dpotrf, lapack.dpotrs
    for t in range(T - 1, -1, -1):
        Vn = V[t + 1]
        Ht = H[t]
        np.matmul(Ft[t] @ Vn, F[t], out=Ht)
        Ht += C[t]
        if F2 is not None:
            w = Vn[:n] @ F[t, :, n]  # gradient of V_{t+1} at the nominal next state
            Ht += np.tensordot(w, F2[t], axes=1)
        Hu = Ht[n1:]  # (m, N) = [H_ux, H_u1, H_uu]
        if reg is not None:
            Hu = Hu + reg[t if reg.shape[0] > 1 else 0]
        Gt = G[t]
        if m == 1:
            h = Hu[0, n1]
            if not h > 0.0:
                return _Backward(G, V, H, free, t)
            if bounded:
                kk = -Hu[0, n] / h
                lo, hi = lower[t, 0], upper[t, 0]  # type: ignore[index]
                if kk < lo or kk > hi:
                    Gt[0, n] = lo if kk < lo else hi
                    free[t, 0] = False  # type: ignore[index]
                else:
                    np.multiply(Hu[0, :n1], -1.0 / h, out=Gt[0])
            else:
                np.multiply(Hu[0, :n1], -1.0 / h, out=Gt[0])
        elif not bounded:
            L, info = potrf(Hu[:, n1:], lower=1, clean=0)
            if info != 0:
                return _Backward(G, V, H, free, t)
            sol, _ = potrs(L, Hu[:, :n1], lower=1)
            np.negative(sol, out=Gt)
        else:
            warm = None if k_warm is None else k_warm[t]
            x, fr, L, ok = _box_qp(Hu[:, n1:], Hu[:, n], lower[t], upper[t], warm)  # type: ignore[index]
            if not ok:
                return _Backward(G, V, H, free, t)
            Gt[:, n] = x
            free[t] = fr  # type: ignore[index]
            if fr.all():
                sol, _ = potrs(L, Hu[:, :n], lower=1)
                np.negative(sol, out=Gt[:, :n])
            elif fr.any():
                sol, _ = potrs(L, Hu[fr, :n], lower=1)
                Gt[fr, :n] = -sol
        HZ = Ht[:, :n1] + Ht[:, n1:] @ Gt  # (N, n1)
        Vt = HZ[:n1] + Gt.T @ HZ[n1:]
        np.add(Vt, Vt.T, out=V[t])
        V[t] *= 0.5
    return _Backward(G, V, H, free, -1)


# ---------------------------------------------------------------------------- finite horizon
def _per_step(
    name: str, value: ArrayLike | None, shape: tuple[int, ...], T: int | None
) -> tuple[Array | None, int | None]:
    """Validate a constant ``shape`` or time-varying ``(T, *shape)`` array; infer ``T``."""
    if value is None:
        return None, T
    arr = as_float_array(name, value)
    if arr.shape == shape:
        return arr, T
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        if T is not None and arr.shape[0] != T:
            raise ValueError(f"{name} has {arr.shape[0]} time steps, expected {T}")
        return arr, arr.shape[0]
    raise ValueError(f"{name} must have shape {shape} or (T, *{shape}), got {arr.shape}")


def _symmetric(name: str, M: Array) -> Array:
    if M.size and np.abs(M - np.swapaxes(M, -1, -2)).max() > 1e-8 * max(1.0, np.abs(M).max()):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (M + np.swapaxes(M, -1, -2))


@dataclasses.dataclass(frozen=True)
class FiniteHorizonLQRResult:
    r"""Solution of a finite-horizon time-varying LQR problem.

    .. math::

        u_t = K_t x_t + k_t, \qquad
        V_t(x) = \tfrac12 x^\top V_t x + v_t^\top x + s_t \ \text{(optimal cost-to-go)}

    Attributes
    ----------
    K : ndarray, shape (T, m, n)
    k : ndarray, shape (T, m)
    V : ndarray, shape (T + 1, n, n)
    v : ndarray, shape (T + 1, n)
    s : ndarray, shape (T + 1,)
    A, B, c : ndarray, shapes (T, n, n), (T, n, m), (T, n)
        The dynamics the policy was computed for (used by :meth:`rollout`).
    """

    K: Array
    k: Array
    V: Array
    v: Array
    s: Array
    A: Array
    B: Array
    c: Array

    def cost_to_go(self, x: ArrayLike, t: int = 0) -> Array:
        r"""Optimal cost-to-go :math:`\tfrac12 x^\top V_t x + v_t^\top x + s_t`, ``x (..., n)``."""
        xa = as_batch("x", x, self.V.shape[-1])
        return 0.5 * np.einsum("...i,ij,...j->...", xa, self.V[t], xa) + xa @ self.v[t] + self.s[t]

    def rollout(self, x0: ArrayLike) -> tuple[Array, Array]:
        r"""Closed-loop trajectory of :math:`u_t = K_t x_t + k_t`.

        .. math::

            x_{t+1} = A_t x_t + B_t u_t + c_t .

        Parameters
        ----------
        x0 : array_like, shape (n,)

        Returns
        -------
        X : ndarray, shape (T + 1, n)
        U : ndarray, shape (T, m)
        """
        T, m, n = self.K.shape
        x = as_batch("x0", x0, n)
        if x.ndim != 1:
            raise ValueError(f"x0 must have shape ({n},), got {x.shape}")
        X = np.empty((T + 1, n))
        U = np.empty((T, m))
        X[0] = x
        for t in range(T):
            U[t] = self.K[t] @ X[t] + self.k[t]
            X[t + 1] = self.A[t] @ X[t] + self.B[t] @ U[t] + self.c[t]
        return X, U


def finite_horizon_lqr(
    A: ArrayLike,
    B: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    *,
    Qf: ArrayLike,
    q: ArrayLike | None = None,
    r: ArrayLike | None = None,
    M: ArrayLike | None = None,
    c: ArrayLike | None = None,
    qf: ArrayLike | None = None,
    T: int | None = None,
) -> FiniteHorizonLQRResult:
    r"""Finite-horizon, time-varying LQR with affine dynamics and linear/cross cost terms.

    .. math::

        \min_{u_{0:T-1}} \sum_{t=0}^{T-1} \Bigl(\tfrac12 x_t^\top Q_t x_t
            + \tfrac12 u_t^\top R_t u_t + x_t^\top M_t u_t + q_t^\top x_t + r_t^\top u_t\Bigr)
            + \tfrac12 x_T^\top Q_f x_T + q_f^\top x_T,
        \quad x_{t+1} = A_t x_t + B_t u_t + c_t .

    Backward Riccati recursion of the module docstring (one congruence
    :math:`H_t = C_t + \mathcal F_t^\top \mathcal V_{t+1}\mathcal F_t`, a
    Cholesky solve for the gains and :math:`\mathcal V_t = Z_t^\top H_t Z_t`,
    symmetrised, per step); Bertsekas, *DP and Optimal Control* I, Sec. 4.1.

    Every argument is either constant (shape as below) or time-varying with a
    leading axis of length ``T``.

    Parameters
    ----------
    A : array_like, shape (n, n) or (T, n, n)
    B : array_like, shape (n, m) or (T, n, m)
    Q : array_like, shape (n, n) or (T, n, n)
    R : array_like, shape (m, m) or (T, m, m)
    Qf : array_like, shape (n, n)
        Terminal weight (keyword-only).
    q : array_like, shape (n,) or (T, n), optional
    r : array_like, shape (m,) or (T, m), optional
    M : array_like, shape (n, m) or (T, n, m), optional
        Cross weight, the cost contains :math:`x^\top M u` (not doubled).
    c : array_like, shape (n,) or (T, n), optional
        Affine dynamics term.
    qf : array_like, shape (n,), optional
    T : int, optional
        Horizon; required only when every argument is constant.

    Returns
    -------
    FiniteHorizonLQRResult

    Raises
    ------
    ValueError
        Shapes, or :math:`R_t + B_t^\top V_{t+1} B_t` not positive definite at
        some step (the problem is then not strictly convex in the controls).
    """
    A0 = as_float_array("A", A)
    if A0.ndim not in (2, 3) or A0.shape[-1] != A0.shape[-2]:
        raise ValueError(f"A must have shape (n, n) or (T, n, n), got {A0.shape}")
    n = A0.shape[-1]
    B0 = as_float_array("B", B)
    if B0.ndim not in (2, 3) or B0.shape[-2] != n:
        raise ValueError(f"B must have shape ({n}, m) or (T, {n}, m), got {B0.shape}")
    m = B0.shape[-1]
    if T is not None and (isinstance(T, bool) or int(T) != T or T < 1):
        raise ValueError(f"T must be a positive integer, got {T!r}")
    horizon: int | None = None if T is None else int(T)
    A_, horizon = _per_step("A", A0, (n, n), horizon)
    B_, horizon = _per_step("B", B0, (n, m), horizon)
    Q_, horizon = _per_step("Q", Q, (n, n), horizon)
    R_, horizon = _per_step("R", _as_matrix("R", R), (m, m), horizon)
    q_, horizon = _per_step("q", q, (n,), horizon)
    r_, horizon = _per_step("r", r, (m,), horizon)
    M_, horizon = _per_step("M", M, (n, m), horizon)
    c_, horizon = _per_step("c", c, (n,), horizon)
    if horizon is None:
        raise ValueError("T is required when every argument is time-invariant")
    Qf_ = as_float_array("Qf", Qf)
    if Qf_.shape != (n, n):
        raise ValueError(f"Qf must have shape ({n}, {n}), got {Qf_.shape}")
    qf_ = np.zeros(n) if qf is None else as_float_array("qf", qf)
    if qf_.shape != (n,):
        raise ValueError(f"qf must have shape ({n},), got {qf_.shape}")
    Tn = horizon
    Ab = np.broadcast_to(A0 if A_ is None else A_, (Tn, n, n))
    Bb = np.broadcast_to(B0 if B_ is None else B_, (Tn, n, m))
    cb = np.zeros((Tn, n)) if c_ is None else np.broadcast_to(c_, (Tn, n))
    Fa, Ca, VT = _augment(
        Ab,
        Bb,
        cb,
        _symmetric("Q", Q_),  # type: ignore[arg-type]
        _symmetric("R", R_),  # type: ignore[arg-type]
        M_,
        q_,
        r_,
        _symmetric("Qf", Qf_),
        qf_,
    )
    out = _riccati_backward(Fa, Ca, VT, m)
    if out.failed_at >= 0:
        t = out.failed_at
        raise ValueError(
            f"R_t + B_t' V_(t+1) B_t is not positive definite at t = {t}: the problem is not "
            "strictly convex in the controls"
        )
    Va = out.V
    return FiniteHorizonLQRResult(
        K=out.G[:, :, :n].copy(),
        k=out.G[:, :, n].copy(),
        V=Va[:, :n, :n].copy(),
        v=Va[:, :n, n].copy(),
        s=0.5 * Va[:, n, n],
        A=np.array(Ab),
        B=np.array(Bb),
        c=np.array(cb),
    )


def _augment(
    A: Array,
    B: Array,
    c: Array,
    Q: Array,
    R: Array,
    M: Array | None,
    q: Array | None,
    r: Array | None,
    Qf: Array,
    qf: Array,
) -> tuple[Array, Array, Array]:
    """Build ``F (T, n+1, N)``, ``C (T, N, N)`` and ``V_T (n+1, n+1)`` for ``z = (x, 1, u)``."""
    T, n, m = B.shape
    n1, N = n + 1, n + 1 + m
    F = np.zeros((T, n1, N))
    F[:, :n, :n] = A
    F[:, :n, n] = c
    F[:, :n, n1:] = B
    F[:, n, n] = 1.0
    C = np.zeros((T, N, N))
    C[:, :n, :n] = Q
    C[:, n1:, n1:] = R
    if M is not None:
        C[:, :n, n1:] = M
        C[:, n1:, :n] = np.swapaxes(np.broadcast_to(M, (T, n, m)), 1, 2)
    if q is not None:
        C[:, :n, n] = q
        C[:, n, :n] = q
    if r is not None:
        C[:, n1:, n] = r
        C[:, n, n1:] = r
    VT = np.zeros((n1, n1))
    VT[:n, :n] = Qf
    VT[:n, n] = qf
    VT[n, :n] = qf
    return F, C, VT


# ---------------------------------------------------------------------------- tracking
@dataclasses.dataclass(frozen=True)
class TVLQRResult:
    r"""Time-varying tracking LQR about a reference, in absolute coordinates.

    .. math::

        u_t = K_t x_t + k_t = \bar u_t + \delta k_t + K_t (x_t - \bar x_t)

    Attributes
    ----------
    K : ndarray, shape (T, m, n)
    k : ndarray, shape (T, m)
    X_ref : ndarray, shape (T + 1, n)
    U_ref : ndarray, shape (T, m)
    deviation : FiniteHorizonLQRResult
        The LQR solution in deviation coordinates :math:`x - \bar x`.
    """

    K: Array
    k: Array
    X_ref: Array
    U_ref: Array
    deviation: FiniteHorizonLQRResult

    def control(self, t: int, x: ArrayLike) -> Array:
        """The control ``K_t x + k_t`` for ``x (..., n)`` at time ``t``."""
        xa = as_batch("x", x, self.K.shape[2])
        return xa @ self.K[t].T + self.k[t]


def tvlqr(
    dynamics: Any,
    X_ref: ArrayLike,
    U_ref: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    Qf: ArrayLike,
) -> TVLQRResult:
    r"""Tracking LQR about a reference trajectory (time-varying LQR).

    Linearises :math:`F` about :math:`(\bar x_t, \bar u_t)` and solves

    .. math::

        \min \sum_{t<T} \tfrac12 \delta x_t^\top Q_t \delta x_t
            + \tfrac12 \delta u_t^\top R_t \delta u_t + \tfrac12 \delta x_T^\top Q_f \delta x_T,
        \quad \delta x_{t+1} = A_t \delta x_t + B_t \delta u_t + d_t,

    with :math:`d_t = F(\bar x_t, \bar u_t) - \bar x_{t+1}` (zero for a
    dynamically consistent reference).

    Parameters
    ----------
    dynamics : Dynamics
    X_ref : array_like, shape (T + 1, n)
    U_ref : array_like, shape (T, m)
    Q : array_like, shape (n, n) or (T, n, n)
    R : array_like, shape (m, m) or (T, m, m)
    Qf : array_like, shape (n, n)

    Returns
    -------
    TVLQRResult
    """
    n, m = dynamics.n, dynamics.m
    Xr = as_batch("X_ref", X_ref, n)
    Ur = as_batch("U_ref", U_ref, m)
    if Xr.ndim != 2 or Ur.ndim != 2 or Xr.shape[0] != Ur.shape[0] + 1:
        raise ValueError(
            f"X_ref must have shape (T + 1, {n}) and U_ref shape (T, {m}); "
            f"got {Xr.shape} and {Ur.shape}"
        )
    A, B, c = linearize_affine(dynamics, Xr[:-1], Ur)
    d = np.einsum("tij,tj->ti", A, Xr[:-1]) + np.einsum("tij,tj->ti", B, Ur) + c - Xr[1:]
    dev = finite_horizon_lqr(A, B, Q, R, Qf=Qf, c=d)
    k_abs = Ur + dev.k - np.einsum("tij,tj->ti", dev.K, Xr[:-1])
    return TVLQRResult(K=dev.K, k=k_abs, X_ref=Xr, U_ref=Ur, deviation=dev)
