r"""Iterative LQR and differential dynamic programming with box control limits.

Both solve the discrete-time optimal-control problem

.. math::

    \min_{u_{0:T-1}} J = \sum_{t=0}^{T-1} \ell(x_t, u_t) + \ell_T(x_T)
    \quad\text{s.t.}\quad x_{t+1} = F(x_t, u_t),\ x_0 \text{ given},\
    \underline u \le u_t \le \overline u,

by repeating three steps around the current trajectory :math:`(\bar X, \bar U)`
(Tassa, Erez & Todorov, "Synthesis and stabilization of complex behaviors
through online trajectory optimization", IROS 2012, Sec. II; Tassa, Mansard &
Todorov, "Control-limited differential dynamic programming", ICRA 2014):

1. **Expand.** :math:`A_t, B_t` from one batched ``dynamics.linearize`` call,
   :math:`\ell_x, \ell_u, \ell_{xx}, \ell_{ux}, \ell_{uu}` from one
   ``cost.quadratize`` call; DDP adds the second derivatives of :math:`F`.
2. **Backward pass.** The Riccati recursion of
   :func:`~gpcontrol.solvers.finite_horizon_lqr` on the local model,

   .. math::

       Q_t = \ell_t + \tfrac12 V_{t+1}(F_t),\quad
       \delta u_t = k_t + K_t \delta x_t,\quad
       k_t = \arg\min_{\underline u - \bar u_t \le \delta u \le \overline u - \bar u_t}
           \tfrac12 \delta u^\top \tilde Q_{uu} \delta u + Q_u^\top \delta u,

   with Levenberg-Marquardt regularisation
   :math:`\tilde Q_{uu} = Q_{uu} + \mu B_t^\top B_t` (or :math:`+\mu I`), the box QP
   of :mod:`gpcontrol.solvers.boxqp`, and :math:`K_t` zero on clamped controls
   (ICRA 2014, Eq. (8)). DDP adds :math:`V_{x,t+1}\cdot\nabla^2 F_t` to the
   Hessians of :math:`Q_t` (IROS 2012, Eq. (5)).
3. **Forward pass.** Roll out
   :math:`u_t = \Pi\bigl(\bar u_t + \alpha k_t + K_t(x_t - \bar x_t)\bigr)` for
   :math:`\alpha \in \{1, \dots, 10^{-3}\}` and accept the first step whose
   actual reduction is a fraction of the predicted one,
   :math:`\Delta J(\alpha) = -\alpha \sum_t k_t^\top Q_{u,t}
   - \tfrac{\alpha^2}{2} \sum_t k_t^\top Q_{uu,t} k_t`.

:math:`\mu` follows the adaptive schedule of IROS 2012 Sec. II-F: on failure
:math:`\Delta \leftarrow \max(\Delta_0, \Delta\Delta_0)`,
:math:`\mu \leftarrow \max(\mu_{\min}, \mu\Delta)`; on success
:math:`\Delta \leftarrow \min(1/\Delta_0, \Delta/\Delta_0)`,
:math:`\mu \leftarrow \mu\Delta` (0 below :math:`\mu_{\min}`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import weakref
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array, check_bounds
from gpcontrol.solvers import _kernels
from gpcontrol.solvers.dynamics import check_dynamics, check_start
from gpcontrol.solvers.lqr import _Backward, _riccati_backward

__all__ = ["ILQROptions", "ILQRResult", "ilqr", "ddp"]

Array = NDArray[np.float64]
logger = logging.getLogger(__name__)

_STATUSES = ("converged", "max_iterations", "diverged")
_BACKENDS = ("auto", "numpy", "casadi", "compiled")


@dataclasses.dataclass(frozen=True)
class ILQROptions:
    r"""Knobs of :func:`ilqr` and :func:`ddp` (defaults follow Tassa et al. 2012/2014).

    Regularisation schedule (IROS 2012, Sec. II-F) and step acceptance:

    .. math::

        \text{fail: } \Delta \leftarrow \max(\Delta_0, \Delta\Delta_0),\
        \mu \leftarrow \max(\mu_{\min}, \mu\Delta);\qquad
        \text{success: } \Delta \leftarrow \min(1/\Delta_0, \Delta/\Delta_0),\
        \mu \leftarrow \mu\Delta\,[\mu\Delta \ge \mu_{\min}];\qquad
        \text{accept if } \frac{J - J(\alpha)}{-\Delta J(\alpha)} > \text{accept\_ratio}

    Attributes
    ----------
    max_iterations : int
        Backward/forward iterations before giving up (status ``"max_iterations"``).
    rtol : float
        Converged when an accepted step reduces the cost by less than
        ``rtol * max(1, |J|)``.
    expected_tol : float
        Converged when the predicted reduction of a full step,
        :math:`-\Delta J(1)`, is below ``expected_tol * max(1, |J|)``.
    mu_init, mu_min, mu_max, mu_factor : float
        Regularisation schedule: start, floor (smaller values snap to 0),
        ceiling (exceeding it ends the solve as ``"diverged"``), and
        :math:`\Delta_0` (> 1).
    regularization : {"state", "control"}
        :math:`\mu B^\top B` (state; IROS 2012 Eq. (10)) or :math:`\mu I` on :math:`Q_{uu}`.
    line_search : tuple of float
        Step sizes tried in order, decreasing, in (0, 1].
    accept_ratio : float
        Accept a step when actual / predicted reduction exceeds this (>= 0).
    backend : {"auto", "numpy", "casadi", "compiled"}
        How the model is evaluated. ``"numpy"`` uses only the protocols
        (``dynamics.linearize``, ``cost.quadratize``, ``dynamics.step``) and
        the NumPy backward pass. ``"casadi"`` evaluates the dynamics and cost
        derivatives and rollouts as CasADi functions over the whole horizon
        (needs a CasADi-defined system and a cost with ``casadi``);
        ``"compiled"`` also compiles them and the backward pass to C
        (needs a C compiler; cached on disk). ``"auto"`` picks the fastest
        available. All give the same iterates up to rounding.
    """

    max_iterations: int = 200
    rtol: float = 1e-10
    expected_tol: float = 1e-12
    mu_init: float = 0.0
    mu_min: float = 1e-6
    mu_max: float = 1e10
    mu_factor: float = 2.0
    regularization: str = "state"
    line_search: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.linspace(0, -3, 11))
    accept_ratio: float = 1e-4
    backend: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.max_iterations, bool) or int(self.max_iterations) != self.max_iterations:
            raise ValueError(f"max_iterations must be an integer, got {self.max_iterations!r}")
        if self.max_iterations < 0:
            raise ValueError(f"max_iterations must be >= 0, got {self.max_iterations}")
        for name in ("rtol", "expected_tol", "mu_init", "mu_min", "accept_ratio"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (self.mu_max > self.mu_min):
            raise ValueError(f"mu_max must exceed mu_min, got {self.mu_max!r} <= {self.mu_min!r}")
        if not (self.mu_factor > 1):
            raise ValueError(f"mu_factor must be > 1, got {self.mu_factor!r}")
        if self.regularization not in ("state", "control"):
            raise ValueError(
                f"regularization must be 'state' or 'control', got {self.regularization!r}"
            )
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")
        steps = tuple(float(a) for a in self.line_search)
        if not steps or any(not 0 < a <= 1 for a in steps):
            raise ValueError(f"line_search must be step sizes in (0, 1], got {self.line_search!r}")
        object.__setattr__(self, "line_search", steps)


@dataclasses.dataclass(frozen=True)
class ILQRResult:
    r"""Result of :func:`ilqr` / :func:`ddp`.

    The feedback law around the returned trajectory, in the library's
    convention, clipped to the control box:

    .. math::

        u_t = K_t x_t + k_t, \qquad k_t = \bar u_t - K_t \bar x_t
        \quad\text{(so it reproduces } U \text{ on } X\text{)}

    Attributes
    ----------
    X : ndarray, shape (T + 1, n)
        Optimised state trajectory.
    U : ndarray, shape (T, m)
        Optimised controls.
    K : ndarray, shape (T, m, n)
        Feedback gains of the last backward pass (zero rows on clamped controls).
    k : ndarray, shape (T, m)
        Offsets of the affine law :math:`u = K x + k` (see above).
    cost : float
        :math:`J(X, U)`.
    cost_history : tuple of float
        Cost after every accepted iteration, starting with the initial guess.
    iterations : int
        Backward passes performed.
    status : str
        ``"converged"``, ``"max_iterations"`` or ``"diverged"``.
    message : str
        Why the solver stopped.
    timings : dict of str to float
        Seconds spent in ``"setup"`` (building/compiling the CasADi kernels;
        cached across calls), ``"linearize"`` (dynamics derivatives; with a
        CasADi backend this includes the cost's), ``"quadratize"``,
        ``"backward"``, ``"forward"`` (rollouts and their costs) and ``"total"``.
    mu : float
        Final regularisation.
    expected_improvement : float
        Predicted reduction :math:`-\Delta J(1)` of the last backward pass.
    method : str
        ``"ilqr"`` or ``"ddp"``.
    backend : str
        Evaluation path used: ``"numpy"``, ``"casadi"`` or ``"compiled"``.
    """

    X: Array
    U: Array
    K: Array
    k: Array
    cost: float
    cost_history: tuple[float, ...]
    iterations: int
    status: str
    message: str
    timings: dict[str, float]
    mu: float
    expected_improvement: float
    method: str
    backend: str

    @property
    def converged(self) -> bool:
        """``status == "converged"``."""
        return self.status == "converged"

    @property
    def feedforward(self) -> Array:
        """``U``, the open-loop controls (alias kept for readability in MPC code)."""
        return self.U


# ---------------------------------------------------------------------------- evaluation
_CASADI_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def _casadi_problem(
    dynamics: Any, cost: Any, n: int, m: int, T: int, second: bool, compile: bool
) -> _kernels.CasadiProblem:
    """Build (or reuse) the CasADi functions of one ``(dynamics, cost, T)``, locked for one solve.

    Kernels hold evaluation buffers, so a cached instance serves one solve at a
    time; a concurrent solve of the same problem (another thread) gets a
    private, uncached instance. Release with ``kernels.lock.release()``.
    """
    try:
        per_dyn = _CASADI_CACHE.setdefault(dynamics, {})
    except TypeError:  # not weak-referenceable: no caching
        per_dyn = {}
    key = (id(cost), T, second, compile)
    hit = per_dyn.get(key)
    if hit is not None and hit[0]() is cost and hit[1].lock.acquire(blocking=False):
        return hit[1]
    prob = _kernels.CasadiProblem(dynamics.casadi_function, cost, n, m, T, second, compile)
    prob.lock.acquire()
    if hit is None or hit[0]() is not cost:
        if len(per_dyn) >= 8:
            per_dyn.pop(next(iter(per_dyn)))
        per_dyn[key] = (weakref.ref(cost), prob)
    return prob


class _Problem:
    """The dynamics/cost evaluations of one solve, through the protocols or CasADi kernels."""

    def __init__(
        self, dynamics: Any, cost: Any, n: int, m: int, T: int, method: str, backend: str
    ) -> None:
        self.dynamics, self.cost = dynamics, cost
        self.n, self.m, self.T = n, m, T
        self._step_at = getattr(dynamics, "step_at", None)
        self.kernels: _kernels.CasadiProblem | None = None
        self.c_backward: _kernels.CBackward | None = None
        try:
            self._build(dynamics, cost, n, m, T, method, backend)
        except BaseException:
            self.close()
            raise

    def _build(
        self, dynamics: Any, cost: Any, n: int, m: int, T: int, method: str, backend: str
    ) -> None:
        if backend != "numpy":
            if _kernels.supports_casadi(dynamics, cost):
                self.kernels = _casadi_problem(
                    dynamics, cost, n, m, T, method == "ddp", backend in ("auto", "compiled")
                )
            elif backend != "auto":
                raise ValueError(
                    f"backend {backend!r} needs dynamics with a CasADi `casadi_function` (a "
                    "gpcontrol System) and a cost with `casadi`/`casadi_terminal`"
                )
        if backend in ("auto", "compiled") and m <= 64:
            lib = _kernels.riccati_library()
            if lib is not None:
                hw = None
                if method == "ddp" and self.kernels is not None and self.kernels.compiled:
                    hw = self.kernels.hw
                self.c_backward = _kernels.CBackward(lib, T, n, m, method == "ddp", hw)
        # The model arrays of the backward pass (shared with the compiled pass).
        n1, N = n + 1, n + 1 + m
        cb = self.c_backward
        self.F = cb.F if cb is not None else np.zeros((T, n1, N))
        self.C = cb.C if cb is not None else np.zeros((T, N, N))
        self.VT = cb.VT if cb is not None else np.zeros((n1, n1))
        self.method = method
        self.F2: Array | None = None
        if method == "ddp":
            self.F2 = cb.F2 if cb is not None else np.zeros((T, n, N, N))
        self.F[:, n, n] = 1.0
        if backend == "compiled" and (
            self.c_backward is None or self.kernels is None or not self.kernels.compiled
        ):
            raise ValueError(
                "backend 'compiled' needs a working C compiler (set CC, or unset "
                "GPCONTROL_NO_COMPILE); use backend='auto' to fall back silently"
            )
        self.backend: str = (
            "compiled"
            if self.kernels is not None and self.kernels.compiled and self.c_backward is not None
            else "casadi"
            if self.kernels is not None
            else "numpy"
        )

    def close(self) -> None:
        """Release the (cached) kernels for other solves."""
        if self.kernels is not None and self.kernels.lock.locked():
            self.kernels.lock.release()
            self.kernels = None

    def expand(self, X: Array, U: Array, F: Array, C: Array, VT: Array) -> tuple[float, float]:
        """Fill the augmented model and cost; returns the seconds spent on each."""
        n, n1 = self.n, self.n + 1
        if self.kernels is not None:
            t0 = time.perf_counter()
            self.kernels.expand(X, U, F, C, VT)
            return time.perf_counter() - t0, 0.0
        t0 = time.perf_counter()
        A, B = self.dynamics.linearize(X[:-1], U)
        F[:, :n, :n] = A
        F[:, :n, n1:] = B
        t1 = time.perf_counter()
        q = self.cost.quadratize(X[:-1], U)
        qT = self.cost.quadratize_terminal(X[-1])
        C[:, :n, :n] = q.lxx
        C[:, :n, n] = q.lx
        C[:, n, :n] = q.lx
        C[:, n1:, :n] = q.lux
        C[:, :n, n1:] = np.swapaxes(q.lux, 1, 2)
        C[:, n1:, n] = q.lu
        C[:, n, n1:] = q.lu
        C[:, n1:, n1:] = q.luu
        VT[:n, :n] = qT.lxx
        VT[:n, n] = qT.lx
        VT[n, :n] = qT.lx
        return t1 - t0, time.perf_counter() - t1

    def second_derivatives(self, X: Array, U: Array) -> None:
        """Prepare DDP's second-order term: the tensor F2, or the trajectory for the C pass."""
        cb = self.c_backward
        if cb is not None and cb.hw is not None:
            cb.X[...] = X[:-1]
            cb.U[...] = U
            return
        F2 = self.F2
        if F2 is None:  # pragma: no cover - guarded by the constructor
            raise RuntimeError("no second-derivative storage")
        if self.kernels is not None:
            self.kernels.second(X, U, F2)
            return
        n, n1 = self.n, self.n + 1
        d = self.dynamics.second_derivatives(X[:-1], U)
        F2[:, :, :n, :n] = d.fxx
        F2[:, :, n1:, :n] = d.fux
        F2[:, :, :n, n1:] = np.swapaxes(np.asarray(d.fux), -1, -2)
        F2[:, :, n1:, n1:] = d.fuu

    def backward(
        self,
        *,
        mu: float,
        state_regularization: bool,
        lower: Array | None,
        upper: Array | None,
        k_warm: Array | None,
    ) -> _Backward:
        """Backward pass on :attr:`F`, :attr:`C`, :attr:`VT` (and :attr:`F2`)."""
        cb = self.c_backward
        if cb is not None:
            bounded = lower is not None and upper is not None
            if bounded:
                cb.lower[...] = lower
                cb.upper[...] = upper
            if k_warm is not None:
                cb.k_warm[...] = k_warm
            failed = cb(mu, state_regularization, bounded, k_warm is not None, self.method == "ddp")
            free = cb.free.astype(bool) if bounded else None
            return _Backward(cb.G, cb.V, cb.H, free, failed, (cb.dV[0], cb.dV[1]))
        return _riccati_backward(
            self.F,
            self.C,
            self.VT,
            self.m,
            mu=mu,
            state_regularization=state_regularization,
            lower=lower,
            upper=upper,
            k_warm=k_warm,
            F2=self.F2,
        )

    def total(self, X: Array, U: Array) -> float:
        with np.errstate(all="ignore"):
            return float(self.cost.total(X, U))

    def forward(
        self,
        x0: Array,
        X: Array,
        U: Array,
        K: Array | None,
        k: Array | None,
        alpha: float,
        lo: Array,
        hi: Array,
    ) -> tuple[Array, Array, float]:
        """Closed-loop rollout ``u = clip(U + alpha k + K (x - X))``; cost ``inf`` on blow-up."""
        if self.kernels is not None:
            return self.kernels.forward(x0, X, U, K, k, alpha, lo, hi)
        T = self.T
        Xn = np.empty_like(X)
        Un = np.empty_like(U)
        Xn[0] = x0
        dyn = self.dynamics
        with np.errstate(all="ignore"):
            for t in range(T):
                u = U[t].copy()
                if k is not None:
                    u += alpha * k[t]
                if K is not None:
                    u += K[t] @ (Xn[t] - X[t])
                np.clip(u, lo, hi, out=u)
                Un[t] = u
                Xn[t + 1] = self._step_at(t, Xn[t], u) if self._step_at else dyn.step(Xn[t], u)
                if not np.isfinite(Xn[t + 1]).all():
                    Xn[t + 2 :] = np.nan
                    Un[t + 1 :] = np.nan
                    return Xn, Un, math.inf
        J = self.total(Xn, Un) if np.isfinite(Xn).all() else math.inf
        return Xn, Un, J if math.isfinite(J) else math.inf


# ---------------------------------------------------------------------------- the solver
def _check_inputs(
    dynamics: Any, cost: Any, x0: ArrayLike, U_init: Any, u_low: Any, u_high: Any
) -> tuple[int, int, Array, Array, Array | None, Array, Array]:
    check_dynamics(dynamics, ("n", "m", "step", "linearize"))
    for attr in ("quadratize", "quadratize_terminal", "total"):
        if not hasattr(cost, attr):
            raise TypeError(f"cost must implement the Cost interface (missing {attr!r})")
    n, m, x = check_start(dynamics, cost, x0)
    K_warm: Array | None = None
    if isinstance(U_init, ILQRResult):
        U = U_init.U.copy()
        if U_init.X.shape[1] != n or U.shape[1] != m:
            raise ValueError("the warm-start result is for a different state/control size")
        K_warm = U_init.K.copy()
        X_warm = U_init.X.copy()
    else:
        U = as_float_array("U_init", U_init)
        if U.ndim == 1 and m == 1:
            U = U[:, None]
        if U.ndim != 2 or U.shape[1] != m or U.shape[0] < 1:
            raise ValueError(f"U_init must have shape (T, {m}) with T >= 1, got {U.shape}")
        U = U.copy()
        X_warm = np.zeros((U.shape[0] + 1, n))
    lo_default = np.full(m, -np.inf) if u_low is None else u_low
    hi_default = np.full(m, np.inf) if u_high is None else u_high
    lo, hi = check_bounds(
        "u_low", np.broadcast_to(lo_default, (m,)), "u_high", np.broadcast_to(hi_default, (m,)), m
    )
    return n, m, x, U, K_warm, X_warm, np.stack([lo, hi])


def _solve(
    method: str,
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: Any,
    u_low: ArrayLike | None,
    u_high: ArrayLike | None,
    options: ILQROptions,
) -> ILQRResult:
    t_start = time.perf_counter()
    if not isinstance(options, ILQROptions):
        raise TypeError(f"options must be an ILQROptions, got {type(options).__name__}")
    if method == "ddp" and not hasattr(dynamics, "second_derivatives"):
        raise TypeError("ddp needs dynamics.second_derivatives(X, U) (use ilqr otherwise)")
    n, m, x0_, U, K_warm, X_warm, box = _check_inputs(dynamics, cost, x0, U_init, u_low, u_high)
    lo, hi = box
    bounded = bool(np.isfinite(box).any())
    T = U.shape[0]
    t0 = time.perf_counter()
    prob = _Problem(dynamics, cost, n, m, T, method, options.backend)
    try:
        timings = {
            "setup": time.perf_counter() - t0,
            "linearize": 0.0,
            "quadratize": 0.0,
            "backward": 0.0,
            "forward": 0.0,
        }

        # Initial rollout (closed loop around the previous solution when warm-starting).
        t0 = time.perf_counter()
        X, U, J = prob.forward(x0_, X_warm, U, K_warm, None, 0.0, lo, hi)
        timings["forward"] += time.perf_counter() - t0
        if not math.isfinite(J):
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            where = "the cost is not finite"
            if bad.size:
                where = f"the state is not finite from t = {bad[0]}"
            raise ValueError(f"the initial controls give a non-finite rollout: {where}")

        history = [J]
        F, C, VT, F2 = prob.F, prob.C, prob.VT, prob.F2
        K = np.zeros((T, m, n))
        kff = np.zeros((T, m))
        mu, delta = options.mu_init, 1.0
        status, message = "max_iterations", f"reached max_iterations = {options.max_iterations}"
        expected = math.inf
        iterations = 0
        expand = True
        state_reg = options.regularization == "state"
        for _ in range(options.max_iterations):
            if expand:
                t_lin, t_quad = prob.expand(X, U, F, C, VT)
                if method == "ddp":
                    t0 = time.perf_counter()
                    prob.second_derivatives(X, U)
                    t_lin += time.perf_counter() - t0
                timings["linearize"] += t_lin
                timings["quadratize"] += t_quad
                # A sum is finite iff every term is (barring overflow, itself a failure).
                finite = math.isfinite(float(F.sum()) + float(C.sum()) + float(VT.sum()))
                if F2 is not None:
                    finite = finite and math.isfinite(float(F2.sum()))
                if not finite:
                    status = "diverged"
                    message = "the dynamics or cost derivatives are not finite on the trajectory"
                    break
                expand = False
            iterations += 1
            # Backward pass, regularised until every H_uu is positive definite.
            t0 = time.perf_counter()
            lower = (lo - U) if bounded else None
            upper = (hi - U) if bounded else None
            while True:
                bw = prob.backward(
                    mu=mu,
                    state_regularization=state_reg,
                    lower=lower,
                    upper=upper,
                    k_warm=kff if bounded and m > 1 else None,
                )
                if bw.failed_at < 0:
                    break
                delta = max(options.mu_factor, delta * options.mu_factor)
                mu = max(options.mu_min, mu * delta)
                if mu > options.mu_max:
                    break
            timings["backward"] += time.perf_counter() - t0
            if bw.failed_at >= 0:
                status = "diverged"
                message = (
                    f"backward pass failed: Q_uu is not positive definite at t = {bw.failed_at} "
                    f"even with regularisation mu = {mu:.3g} > mu_max"
                )
                break
            K = bw.G[:, :, :n].copy()
            kff = np.ascontiguousarray(bw.G[:, :, n])
            d1, d2 = bw.expected_terms()
            expected = -(d1 + d2)
            scale = max(1.0, abs(J))
            if expected < options.expected_tol * scale:
                status = "converged"
                message = f"predicted improvement {expected:.3e} below expected_tol * max(1, |J|)"
                break
            # Forward pass with backtracking on the ratio of actual to predicted reduction.
            t0 = time.perf_counter()
            accepted = False
            for alpha in options.line_search:
                Xn, Un, Jn = prob.forward(x0_, X, U, K, kff, alpha, lo, hi)
                predicted = -(alpha * d1 + alpha * alpha * d2)
                if not math.isfinite(Jn):
                    continue
                actual = J - Jn
                ratio = actual / predicted if predicted > 0 else math.copysign(1.0, actual)
                if ratio > options.accept_ratio:
                    accepted = True
                    break
            timings["forward"] += time.perf_counter() - t0
            if accepted:
                delta = min(1.0 / options.mu_factor, delta / options.mu_factor)
                mu = mu * delta
                if mu < options.mu_min:
                    mu = 0.0
                X, U, J_old, J = Xn, Un, J, Jn
                history.append(J)
                expand = True
                logger.debug(
                    "iteration %d: J = %.10g, alpha = %g, mu = %g", iterations, J, alpha, mu
                )
                if J_old - J < options.rtol * max(1.0, abs(J)):
                    status = "converged"
                    message = f"relative cost reduction {(J_old - J) / max(1.0, abs(J)):.3e} < rtol"
                    break
            else:
                delta = max(options.mu_factor, delta * options.mu_factor)
                mu = max(options.mu_min, mu * delta)
                logger.debug("iteration %d: no step accepted, mu -> %g", iterations, mu)
                if mu > options.mu_max:
                    status = "diverged"
                    message = (
                        f"no step reduced the cost (predicted reduction {expected:.3e}) even with "
                        f"regularisation mu > mu_max = {options.mu_max:.3g}"
                    )
                    break
        timings["total"] = time.perf_counter() - t_start
        K_out = np.array(K)
        k_out = U - np.einsum("tij,tj->ti", K_out, X[:-1])
        return ILQRResult(
            X=X,
            U=U,
            K=K_out,
            k=k_out,
            cost=float(J),
            cost_history=tuple(history),
            iterations=iterations,
            status=status,
            message=message,
            timings=timings,
            mu=float(mu),
            expected_improvement=float(expected),
            method=method,
            backend=prob.backend,
        )
    finally:
        prob.close()


def ilqr(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike | ILQRResult,
    *,
    u_low: ArrayLike | None = None,
    u_high: ArrayLike | None = None,
    options: ILQROptions | None = None,
) -> ILQRResult:
    r"""Control-limited iterative LQR (Gauss-Newton DDP).

    .. math::

        \min_{U} \sum_{t<T} \ell(x_t, u_t) + \ell_T(x_T),\quad x_{t+1} = F(x_t, u_t),
        \quad \underline u \le u_t \le \overline u,

    solved as in the module docstring (Tassa, Erez & Todorov, IROS 2012;
    Tassa, Mansard & Todorov, ICRA 2014), with the first-order model
    :math:`F(x + \delta x, u + \delta u) \approx F + A\delta x + B\delta u`.

    Parameters
    ----------
    dynamics : Dynamics
        ``n``, ``m``, ``step(x, u)``, batched ``linearize(X, U)`` (e.g. any
        :class:`gpcontrol.systems.System`).
    cost : Cost
        ``quadratize(X, U)``, ``quadratize_terminal(x)``, ``total(X, U)``.
    x0 : array_like, shape (n,)
        Initial state.
    U_init : array_like, shape (T, m), or ILQRResult
        Initial controls (clipped to the box), or a previous result to warm
        start from: its controls are rolled out from ``x0`` with its feedback
        gains around its trajectory.
    u_low, u_high : array_like, shape (m,), optional
        Control box (infinite entries allowed; default unbounded).
    options : ILQROptions, optional

    Returns
    -------
    ILQRResult

    Raises
    ------
    ValueError
        Bad shapes or values, ``u_low > u_high``, or initial controls whose
        rollout is not finite.
    TypeError
        ``dynamics`` or ``cost`` lacks a required method.
    """
    return _solve("ilqr", dynamics, cost, x0, U_init, u_low, u_high, options or ILQROptions())


def ddp(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike | ILQRResult,
    *,
    u_low: ArrayLike | None = None,
    u_high: ArrayLike | None = None,
    options: ILQROptions | None = None,
) -> ILQRResult:
    r"""Control-limited differential dynamic programming (full second-order model).

    As :func:`ilqr`, but the action-value Hessians include the curvature of
    the dynamics (Mayne 1966; Tassa, Erez & Todorov, IROS 2012, Eq. (5)):

    .. math::

        Q_{xx} = \ell_{xx} + A^\top V'_{xx} A + V'_x \cdot F_{xx},\quad
        Q_{ux} = \ell_{ux} + B^\top V'_{xx} A + V'_x \cdot F_{ux},\quad
        Q_{uu} = \ell_{uu} + B^\top V'_{xx} B + V'_x \cdot F_{uu},

    which gives quadratic local convergence at the price of the tensors
    ``dynamics.second_derivatives(X, U)`` (``fxx (T, n, n, n)``,
    ``fux (T, n, m, n)``, ``fuu (T, n, m, m)``) per iteration.

    Parameters and return value are those of :func:`ilqr`.
    """
    return _solve("ddp", dynamics, cost, x0, U_init, u_low, u_high, options or ILQROptions())
