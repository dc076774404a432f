r"""Box-constrained convex quadratic programs by projected Newton.

.. math::

    \min_{x \in \mathbb R^m} \tfrac12 x^\top H x + g^\top x
    \quad\text{s.t.}\quad l \le x \le h, \qquad H \succ 0 .

This is the small QP solved at every time step of control-limited DDP
(Tassa, Mansard & Todorov, "Control-limited differential dynamic
programming", ICRA 2014, Sec. III and Algorithm 1; the method is Bertsekas'
projected Newton, SIAM J. Control Optim. 20(2), 1982). Each iteration

1. computes the gradient :math:`\nabla = g + H x` and the *clamped* set
   :math:`\mathcal C = \{i : x_i = l_i,\ \nabla_i > 0\} \cup
   \{i : x_i = h_i,\ \nabla_i < 0\}`; the rest is the *free* set :math:`\mathcal F`;
2. takes a Newton step in the free coordinates with the clamped ones held,
   :math:`x_{\mathcal F}^{N} = -H_{\mathcal{FF}}^{-1}(g_{\mathcal F} +
   H_{\mathcal{FC}} x_{\mathcal C})`, direction :math:`d = x^N - x` on
   :math:`\mathcal F`, zero on :math:`\mathcal C`;
3. backtracks along the projected path :math:`\Pi_{[l,h]}(x + \alpha d)`
   until an Armijo condition holds.

It stops when the free gradient vanishes, every coordinate is clamped, or
the improvement stalls. The Cholesky factor of :math:`H_{\mathcal{FF}}` at the
solution is returned: DDP reuses it for the feedback gains of the free
controls.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import lapack

from gpcontrol._validation import as_float_array, check_bounds

__all__ = ["BoxQPResult", "box_qp"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class BoxQPResult:
    r"""Solution of a box-constrained QP.

    .. math::

        x = \arg\min_{l \le x \le h} \tfrac12 x^\top H x + g^\top x, \qquad
        L L^\top = H_{\mathcal{FF}}

    Attributes
    ----------
    x : ndarray, shape (m,)
        Minimiser.
    free : ndarray of bool, shape (m,)
        Coordinates not clamped at the solution.
    clamped : ndarray of bool, shape (m,)
        ``~free``: at a bound with the gradient pushing outward.
    cholesky : ndarray, shape (f, f)
        Lower Cholesky factor of ``H[free][:, free]`` (``f = free.sum()``).
    iterations : int
    status : str
        ``"converged"`` (free gradient below tolerance or stalled improvement),
        ``"all_clamped"``, or ``"max_iterations"``.
    """

    x: Array
    free: BoolArray
    clamped: BoolArray
    cholesky: Array
    iterations: int
    status: str


def _box_qp(
    H: Array,
    g: Array,
    lower: Array,
    upper: Array,
    x0: Array | None = None,
    *,
    max_iter: int = 100,
    grad_tol: float = 1e-10,
    rel_improve_tol: float = 1e-12,
    step_factor: float = 0.6,
    min_step: float = 1e-22,
    armijo: float = 0.1,
) -> tuple[Array, BoolArray, Array, bool]:
    """Unchecked projected-Newton core: returns ``(x, free, L, ok)``.

    ``ok`` is False iff ``H`` restricted to a free set is not positive definite.
    """
    x, free, L, ok, _, _ = _box_qp_full(
        H, g, lower, upper, x0, max_iter, grad_tol, rel_improve_tol, step_factor, min_step, armijo
    )
    return x, free, L, ok


def _box_qp_full(
    H: Array,
    g: Array,
    lower: Array,
    upper: Array,
    x0: Array | None,
    max_iter: int,
    grad_tol: float,
    rel_improve_tol: float,
    step_factor: float,
    min_step: float,
    armijo: float,
) -> tuple[Array, BoolArray, Array, bool, int, str]:
    m = g.shape[0]
    x = np.clip(np.zeros(m) if x0 is None else x0, lower, upper)
    value = 0.5 * x @ H @ x + g @ x
    free_fact: BoolArray | None = None
    L = np.zeros((0, 0))
    status = "max_iterations"
    iterations = 0
    for it in range(max_iter):
        iterations = it + 1
        grad = g + H @ x
        clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        free = ~clamped
        if clamped.all():
            return x, free, np.zeros((0, 0)), True, iterations, "all_clamped"
        if free_fact is None or (free != free_fact).any():
            L, info = lapack.dpotrf(H[np.ix_(free, free)], lower=1, clean=1)
            if info != 0:
                return x, free, L, False, iterations, "not_positive_definite"
            free_fact = free
        if np.linalg.norm(grad[free]) < grad_tol * max(1.0, float(np.linalg.norm(g))):
            status = "converged"
            break
        # Newton point of the free coordinates with the clamped ones held.
        rhs = g[free] + H[np.ix_(free, clamped)] @ x[clamped]
        xn, _ = lapack.dpotrs(L, rhs, lower=1)
        direction = np.zeros(m)
        direction[free] = -xn - x[free]
        slope = direction @ grad
        if slope >= 0.0:  # no descent left: numerically at the optimum
            status = "converged"
            break
        step = 1.0
        while True:
            cand = np.clip(x + step * direction, lower, upper)
            cand_value = 0.5 * cand @ H @ cand + g @ cand
            if (cand_value - value) / (step * slope) > armijo:
                break
            step *= step_factor
            if step < min_step:
                cand = x
                cand_value = value
                break
        improvement = value - cand_value
        x, value = cand, cand_value
        if improvement <= rel_improve_tol * max(1.0, abs(float(value))):
            status = "converged"
            break
    # Report the free set and factor at the returned point.
    grad = g + H @ x
    clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
    free = ~clamped
    if clamped.all():
        return x, free, np.zeros((0, 0)), True, iterations, "all_clamped"
    if free_fact is None or (free != free_fact).any():
        L, info = lapack.dpotrf(H[np.ix_(free, free)], lower=1, clean=1)
        if info != 0:
            return x, free, L, False, iterations, "not_positive_definite"
    return x, free, np.tril(L), True, iterations, status


def box_qp(
    H: ArrayLike,
    g: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    x0: ArrayLike | None = None,
    max_iter: int = 100,
    grad_tol: float = 1e-10,
) -> BoxQPResult:
    r"""Solve :math:`\min \tfrac12 x^\top H x + g^\top x` s.t. :math:`l \le x \le h`.

    .. math::

        x^{k+1} = \Pi_{[l,h]}\bigl(x^k + \alpha_k d^k\bigr),\qquad
        d^k_{\mathcal F} = -H_{\mathcal{FF}}^{-1}
            \bigl(g_{\mathcal F} + H_{\mathcal F\cdot} x^k\bigr),
        \quad d^k_{\mathcal C} = 0,

    with the clamped set :math:`\mathcal C` of bound-active coordinates whose
    gradient points outward and Armijo backtracking on :math:`\alpha_k`
    (Tassa, Mansard & Todorov, ICRA 2014, Algorithm 1).

    Parameters
    ----------
    H : array_like, shape (m, m)
        Symmetric; positive definite on every free subspace visited (e.g. PD).
    g : array_like, shape (m,)
    lower, upper : array_like, shape (m,)
        Bounds, ``lower <= upper``; infinite entries allowed.
    x0 : array_like, shape (m,), optional
        Warm start (projected onto the box); default the projection of 0.
    max_iter : int
    grad_tol : float
        Stop when the free gradient norm is below ``grad_tol * max(1, ||g||)``.

    Returns
    -------
    BoxQPResult

    Raises
    ------
    ValueError
        Bad shapes, NaN, ``lower > upper``, non-symmetric ``H``, or ``H`` not
        positive definite on the free subspace.

    Examples
    --------
    >>> r = box_qp([[2.0, 0.0], [0.0, 2.0]], [-4.0, 1.0], [-1.0, -1.0], [1.0, 1.0])
    >>> r.x.tolist(), r.free.tolist()
    ([1.0, -0.5], [False, True])
    """
    g_ = as_float_array("g", g).reshape(-1) if np.ndim(g) <= 1 else None
    if g_ is None:
        raise ValueError(f"g must have shape (m,), got {np.shape(g)}")
    m = g_.shape[0]
    H_ = as_float_array("H", H)
    if H_.shape != (m, m):
        raise ValueError(f"H must have shape ({m}, {m}), got {H_.shape}")
    if np.abs(H_ - H_.T).max(initial=0.0) > 1e-10 * max(1.0, np.abs(H_).max(initial=0.0)):
        raise ValueError("H must be symmetric")
    H_ = 0.5 * (H_ + H_.T)
    lo, hi = check_bounds("lower", lower, "upper", upper, m)
    start = None
    if x0 is not None:
        start = as_float_array("x0", x0).reshape(-1)
        if start.shape != (m,):
            raise ValueError(f"x0 must have shape ({m},), got {np.shape(x0)}")
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    x, free, L, ok, iterations, status = _box_qp_full(
        H_, g_, lo, hi, start, int(max_iter), float(grad_tol), 1e-12, 0.6, 1e-22, 0.1
    )
    if not ok:
        raise ValueError(
            "H is not positive definite on the free coordinates "
            f"{np.flatnonzero(free).tolist()}: the QP is not strictly convex there"
        )
    return BoxQPResult(
        x=x, free=free, clamped=~free, cholesky=L, iterations=iterations, status=status
    )
