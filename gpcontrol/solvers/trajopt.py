r"""Trajectory optimisation with CasADi and IPOPT: multiple shooting and collocation.

Given dynamics :math:`\dot x = f(x, u)`, an initial state :math:`x_0`, a
horizon of :math:`N` intervals of length :math:`h = T/N` with the control held
constant on each, a running cost :math:`l` and a terminal cost :math:`l_T`,
solve the nonlinear program

.. math::

    \min_{x_{0:N},\,u_{0:N-1}\,[,T]}\;
        \sum_{k=0}^{N-1} \bar l_k + l_T(x_N)\; [+\, w_T\, T]
    \quad\text{s.t.}\quad
    \begin{aligned}
        & x_0 = \hat x_0, \qquad x_{k+1} = \Phi_h(x_k, u_k),\\
        & x_{\rm low} \le x_k \le x_{\rm high},\quad u_{\rm low} \le u_k \le u_{\rm high},\\
        & p_{\rm low} \le c_p(x_k, u_k) \le p_{\rm high} \ \text{(path)},\quad
          g_{\rm low} \le c_T(x_N) \le g_{\rm high} \ \text{(terminal)},\\
        & c_{\rm low} \le c(X, U) \le c_{\rm high} \ \text{(whole trajectory)},
    \end{aligned}

with two transcriptions of the flow :math:`\Phi_h` and of :math:`\bar l_k`:

* **multiple shooting** (Bock & Plitt, IFAC 1984): :math:`\Phi_h` is the
  system's own discrete map (one RK4 step for the built-in systems) and
  :math:`\bar l_k = l(x_k, u_k)`. The objective is then exactly
  :math:`\sum_k l(x_k, u_k) + l_T(x_N)`, the same discrete-time problem iLQR
  solves, so both must find the same optimum.
* **direct collocation** (Biegler, *Nonlinear Programming*, SIAM 2010,
  Ch. 10; Kelly, SIAM Review 59(4) 2017): the state on each interval is a
  polynomial of degree :math:`d` through Legendre or Radau points
  (:mod:`gpcontrol.solvers.collocation`) that satisfies the ODE at those
  points, and :math:`\bar l_k = \frac1h\int_{t_k}^{t_{k+1}} l\,dt \approx
  \sum_j B_j\, l(x_{k,j}, u_k)` is the *average* of :math:`l` over the
  interval. This scaling makes both objectives sums of per-interval values of
  :math:`l`: for :math:`l = h\,u^\top u` they both approximate
  :math:`\int_0^T u^\top u\,dt`.

A free final time :math:`T \in [T_{\rm low}, T_{\rm high}]` (minimum-time
problems) adds :math:`w_T T` to the objective and lets :math:`h = T/N` vary.
The multipliers of the dynamics constraints, written as
:math:`\Phi_h(x_k, u_k) - x_{k+1} = 0`, are the costates
:math:`\lambda_{k+1} = \partial J^*/\partial x_{k+1}`, and that of
:math:`x_0 = \hat x_0` gives :math:`\lambda_0 = \partial J^*/\partial \hat x_0`.

The NLP is built once with ``SX`` symbols (every function expanded) and the
initial state as a parameter, so re-solving from a new :math:`\hat x_0` reuses
the same IPOPT instance (:class:`TrajoptProblem`; :func:`trajopt` keeps a small
cache of them).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import OrderedDict
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array, check_bounds
from gpcontrol.solvers.collocation import collocation_interval, collocation_scheme
from gpcontrol.solvers.trajopt_options import Constraint, TrajoptOptions
from gpcontrol.solvers.trajopt_result import TrajoptResult
from gpcontrol.systems.base import System
from gpcontrol.systems.integrators import rk4
from gpcontrol.systems.ode_system import ODESystem

__all__ = [
    "trajopt",
    "TrajoptProblem",
    "TrajoptOptions",
    "TrajoptResult",
    "Constraint",
    "ODESystem",
    "linear_guess",
    "METHODS",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]

#: Transcriptions accepted by :func:`trajopt`.
METHODS = ("multiple_shooting", "collocation")

_STATUS = {
    "Solve_Succeeded": "solved",
    "Solved_To_Acceptable_Level": "solved",
    "Infeasible_Problem_Detected": "infeasible",
    "Maximum_Iterations_Exceeded": "max_iterations",
    "Maximum_CpuTime_Exceeded": "max_iterations",
    "Maximum_WallTime_Exceeded": "max_iterations",
}
# IPOPT settings for a start near an optimum: with the guess's multipliers ("dual"), or
# with IPOPT's least-squares multiplier estimate from a primal guess only ("primal").
_WARM_START: dict[str, dict[str, Any]] = {
    "dual": {
        "warm_start_init_point": "yes",
        "mu_init": 1e-6,
        "warm_start_bound_push": 1e-9,
        "warm_start_mult_bound_push": 1e-9,
        "warm_start_slack_bound_push": 1e-9,
    },
    "primal": {"mu_init": 1e-6, "bound_push": 1e-9, "bound_frac": 1e-9},
}


# ---------------------------------------------------------------- the problem
class _Layout:
    """Decision vector ``w`` assembled block by block, with index bookkeeping."""

    def __init__(self) -> None:
        self.syms: list[Any] = []
        self.size = 0

    def add(self, name: str, size: int) -> tuple[ca.SX, NDArray[np.intp]]:
        sym = ca.SX.sym(name, size)
        self.syms.append(sym)
        idx = np.arange(self.size, self.size + size)
        self.size += size
        return sym, idx


class _Rows:
    """Constraint rows ``lower <= g <= upper`` with index bookkeeping."""

    def __init__(self) -> None:
        self.exprs: list[Any] = []
        self.lower: list[Array] = []
        self.upper: list[Array] = []
        self.size = 0

    def add(
        self, expr: Any, lower: Any = 0.0, upper: Any = 0.0, what: str = ""
    ) -> NDArray[np.intp]:
        e = ca.vec(ca.SX(expr)) if not isinstance(expr, list | tuple) else ca.vertcat(*expr)
        k = e.numel()
        lo = (
            np.broadcast_to(np.asarray(lower, dtype=np.float64), (k,))
            if np.size(lower) in (1, k)
            else None
        )
        hi = (
            np.broadcast_to(np.asarray(upper, dtype=np.float64), (k,))
            if np.size(upper) in (1, k)
            else None
        )
        if lo is None or hi is None:
            raise ValueError(
                f"bounds of the {what} constraint must be scalars or have {k} entries, got "
                f"{np.size(lower)} and {np.size(upper)}"
            )
        if np.any(lo > hi):
            raise ValueError(f"the {what} constraint has lower > upper")
        self.exprs.append(e)
        self.lower.append(lo)
        self.upper.append(hi)
        idx = np.arange(self.size, self.size + k)
        self.size += k
        return idx


def _check_system(system: Any) -> None:
    need = ("n", "m", "dt", "ode", "discrete", "x_low", "x_high", "u_low", "u_high")
    missing = [a for a in need if not hasattr(system, a)]
    if missing:
        raise TypeError(
            "system must be a gpcontrol System (or ODESystem for a user's CasADi ODE); "
            f"{type(system).__name__} lacks {missing}"
        )


def _check_cost(cost: Any, n: int, m: int) -> None:
    if cost is None:
        return
    if not (hasattr(cost, "casadi") and hasattr(cost, "casadi_terminal")):
        raise TypeError(
            f"cost must provide casadi(x, u) and casadi_terminal(x) (a gpcontrol Cost) or be "
            f"None, got {type(cost).__name__}"
        )
    for attr, want in (("n", n), ("m", m)):
        got = getattr(cost, attr, want)
        if got != want:
            raise ValueError(f"cost.{attr} = {got} does not match the system's {attr} = {want}")


class TrajoptProblem:
    r"""A transcribed optimal-control problem with its IPOPT solver, reusable across ``x0``.

    The NLP of the module docstring with the initial state as its parameter
    :math:`p`,

    .. math::

        \min_w\ J(w) \quad\text{s.t.}\quad g_{\rm low} \le g(w, p) \le g_{\rm high},
        \quad w_{\rm low} \le w \le w_{\rm high}, \qquad p = \hat x_0,

    where :math:`w` stacks :math:`[T], x_0, (u_k, [x_{k,1..d}], x_{k+1})_{k<N}`
    interval by interval (a banded KKT matrix for IPOPT's sparse solver).

    Building the NLP and IPOPT's sparsity structures costs far more than a
    warm re-solve; keep one :class:`TrajoptProblem` and call :meth:`solve` with
    new initial states (e.g. in MPC). :func:`trajopt` does this behind a small cache.

    Parameters
    ----------
    system : System
        Built-in system or :class:`ODESystem`.
    cost : Cost or None
        Running and terminal cost through ``cost.casadi(x, u)`` and
        ``cost.casadi_terminal(x)``; ``None`` for no cost (minimum time or feasibility).
    horizon : int
        Number of intervals ``N >= 1``.
    method : {"multiple_shooting", "collocation"}
    options : TrajoptOptions
    """

    def __init__(
        self,
        system: System,
        cost: Any,
        horizon: int,
        *,
        method: str = "multiple_shooting",
        options: TrajoptOptions | None = None,
    ) -> None:
        t_start = time.perf_counter()
        _check_system(system)
        n, m = int(system.n), int(system.m)
        _check_cost(cost, n, m)
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ValueError(
                f"horizon must be an integer >= 1 (number of intervals), got {horizon!r}"
            )
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        opts = TrajoptOptions() if options is None else options
        if not isinstance(opts, TrajoptOptions):
            raise TypeError(f"options must be a TrajoptOptions, got {type(opts).__name__}")
        self.system, self.cost, self.N, self.method, self.options = (
            system,
            cost,
            int(horizon),
            method,
            opts,
        )
        self.n, self.m = n, m
        self.u_low, self.u_high = check_bounds(
            "u_low",
            system.u_low if opts.u_low is None else opts.u_low,
            "u_high",
            system.u_high if opts.u_high is None else opts.u_high,
            m,
        )
        self.x_low, self.x_high = check_bounds(
            "x_low",
            system.x_low if opts.x_low is None else opts.x_low,
            "x_high",
            system.x_high if opts.x_high is None else opts.x_high,
            n,
        )
        self.x_final = None
        if opts.x_final is not None:
            xf = np.asarray(opts.x_final, dtype=np.float64)
            if xf.shape != (n,):
                raise ValueError(f"x_final must have shape ({n},), got {xf.shape}")
            bad = np.flatnonzero((xf < self.x_low) | (xf > self.x_high))
            if bad.size:
                raise ValueError(f"x_final lies outside [x_low, x_high] at index {bad.tolist()}")
            self.x_final = xf
        self.T_nominal = (
            opts.final_time if opts.final_time is not None else self.N * float(system.dt)
        )
        if opts.free_final_time:
            lo, hi = opts.final_time_bounds
            self.T_guess = float(np.clip(self.T_nominal, lo, hi))
        self.scheme = (
            collocation_scheme(opts.degree, opts.scheme) if method == "collocation" else None
        )
        self._build()
        self._pending_build = time.perf_counter() - t_start
        self.build_time = self._pending_build

    # ---------------------------------------------------------------- build
    def _build(self) -> None:
        sys, opts, N, n, m = self.system, self.options, self.N, self.n, self.m
        x, u = ca.SX.sym("x", n), ca.SX.sym("u", m)
        f = ca.Function("f", [x, u], [sys.ode(x, u)]).expand()
        self._f = f
        if self.cost is None:
            l_fn = ca.Function("l", [x, u], [ca.SX(0)])
            lT_fn = ca.Function("lT", [x], [ca.SX(0)])
        else:
            l_fn = ca.Function("l", [x, u], [ca.SX(self.cost.casadi(x, u))])
            lT_fn = ca.Function("lT", [x], [ca.SX(self.cost.casadi_terminal(x))])
        path = [c for c in opts.constraints if c.kind == "path"]
        path_fn = [ca.Function("h", [x, u], [ca.vec(ca.SX(c.fn(x, u)))]) for c in path]

        w, g = _Layout(), _Rows()
        lbw: list[Array] = []
        ubw: list[Array] = []
        T: Any
        if opts.free_final_time:
            T, self._iT = w.add("T", 1)
            lbw.append(np.array([max(opts.final_time_bounds[0], 0.0)]))
            ubw.append(np.array([opts.final_time_bounds[1]]))
        else:
            T, self._iT = self.T_nominal, np.arange(0)
        h = T / N
        use_discrete = not opts.free_final_time and math.isclose(
            self.T_nominal / N, float(sys.dt), rel_tol=1e-12
        )
        if self.scheme is None:  # multiple shooting
            if use_discrete:
                step = lambda xk, uk: sys.discrete(xk, uk)  # noqa: E731
            else:
                hs = ca.SX.sym("h")
                F = ca.Function("F", [x, u, hs], [rk4(f, x, u, hs, getattr(sys, "substeps", 1))])
                step = lambda xk, uk: F(xk, uk, h)  # noqa: E731
        else:
            interval = collocation_interval(self.scheme, f, l_fn)

        p = ca.SX.sym("x0", n)
        X, iX = [], []
        U, iU = [], []
        iXc: list[NDArray[np.intp]] = []
        dyn: list[NDArray[np.intp]] = []
        J: Any = 0
        xk, idx = w.add("X_0", n)
        X.append(xk)
        iX.append(idx)
        lbw.append(self.x_low)
        ubw.append(self.x_high)
        self._g_init = g.add(xk - p, what="initial state")

        def add_path(xp: Any, up: Any) -> None:
            for c, fn in zip(path, path_fn, strict=True):
                g.add(fn(xp, up), c.lower, c.upper, what="path")

        d = 0 if self.scheme is None else self.scheme.degree
        for k in range(N):
            uk, idx = w.add(f"U_{k}", m)
            U.append(uk)
            iU.append(idx)
            lbw.append(self.u_low)
            ubw.append(self.u_high)
            add_path(xk, uk)
            if self.scheme is None:
                J = J + l_fn(xk, uk)
                x_end = step(xk, uk)
            else:
                xc, idx = w.add(f"Xc_{k}", n * d)
                iXc.append(idx)
                lbw.append(np.tile(self.x_low, d))
                ubw.append(np.tile(self.x_high, d))
                coll, x_end, quad = interval(xk, ca.reshape(xc, n, d), uk, h)
                g.add(coll, what="collocation")
                J = J + quad
                for j in range(d):
                    add_path(xc[j * n : (j + 1) * n], uk)
            xk, idx = w.add(f"X_{k + 1}", n)
            X.append(xk)
            iX.append(idx)
            lo, hi = self.x_low, self.x_high
            if k == N - 1 and self.x_final is not None:
                fixed = ~np.isnan(self.x_final)
                lo = np.where(fixed, self.x_final, lo)
                hi = np.where(fixed, self.x_final, hi)
            lbw.append(lo)
            ubw.append(hi)
            dyn.append(g.add(x_end - xk, what="dynamics"))
        add_path(xk, U[-1])
        J = J + lT_fn(xk)
        if opts.free_final_time:
            J = J + opts.time_weight * T
        for c in opts.constraints:
            if c.kind == "terminal":
                g.add(c.fn(xk), c.lower, c.upper, what="terminal")
            elif c.kind == "trajectory":
                Xs, Us = ca.horzcat(*X).T, ca.horzcat(*U).T
                g.add(c.fn(Xs, Us), c.lower, c.upper, what="trajectory")

        self._iX = np.stack(iX)
        self._iU = np.stack(iU)
        self._iXc = np.stack(iXc).reshape(N, d, n) if d else np.zeros((N, 0, n), dtype=np.intp)
        self._g_dyn = np.stack(dyn)
        self._lbw, self._ubw = np.concatenate(lbw), np.concatenate(ubw)
        self._lbg, self._ubg = np.concatenate(g.lower), np.concatenate(g.upper)
        nlp = {"x": ca.vertcat(*w.syms), "p": p, "f": J, "g": ca.vertcat(*g.exprs)}
        ipopt: dict[str, Any] = {
            "ipopt.print_level": 5 if opts.verbose else 0,
            "print_time": bool(opts.verbose),
            "ipopt.sb": "yes",
            "ipopt.bound_relax_factor": 0.0,
            "ipopt.max_iter": opts.max_iter,
            "ipopt.tol": opts.tol,
            "error_on_fail": False,
        }
        ipopt.update({f"ipopt.{k}": v for k, v in opts.ipopt})
        if opts.jit:
            ipopt.update(
                {
                    "jit": True,
                    "compiler": "shell",
                    "jit_options": {"flags": ["-O2"], "verbose": False},
                }
            )
        self._nlp, self._ipopt = nlp, ipopt
        self._solver = ca.nlpsol("trajopt", "ipopt", nlp, ipopt)
        self._warm_solvers: dict[str, ca.Function] = {}
        # accurate reference flow for the interpolation error: RK4, 8 sub-steps per quarter interval
        hs = ca.SX.sym("h")
        samples, xq = [], x
        for _ in range(4):
            xq = rk4(f, xq, u, hs / 4, 8)
            samples.append(xq)
        phi = ca.Function("phi", [x, u, hs], [ca.vertcat(*samples)])
        self._phi = phi.map(N, "serial")  # (4 n, N): the states at t_k + q h / 4, q = 1..4
        if self.method == "multiple_shooting" and use_discrete:
            self._step_guess = ca.Function("F", [x, u, hs], [sys.discrete(x, u)])
        else:
            self._step_guess = ca.Function(
                "F", [x, u, hs], [rk4(f, x, u, hs, getattr(sys, "substeps", 1))]
            )
        self._f_map = f.map(N, "serial")

    # ---------------------------------------------------------------- solve
    def _warm_start_solver(self, kind: str) -> ca.Function:
        """IPOPT instance for starts near an optimum (``kind`` "dual" or "primal"), built once."""
        if kind not in self._warm_solvers:
            t0 = time.perf_counter()
            opts = {f"ipopt.{k}": v for k, v in _WARM_START[kind].items()}
            opts.update(self._ipopt)
            opts.update({f"ipopt.{k}": v for k, v in self.options.ipopt})
            self._warm_solvers[kind] = ca.nlpsol(f"trajopt_{kind}", "ipopt", self._nlp, opts)
            self._pending_build += time.perf_counter() - t0
        return self._warm_solvers[kind]

    def _matches(self, guess: Any) -> bool:
        """Whether ``guess`` is a result of a problem with this very NLP layout."""
        return (
            isinstance(guess, TrajoptResult)
            and guess.method == self.method
            and guess.U.shape == (self.N, self.m)
            and guess.lam_w.shape == self._lbw.shape
            and guess.lam_g.shape == self._lbg.shape
            and (self.scheme is None or np.array_equal(guess.collocation_nodes, self.scheme.tau))
        )

    def _initial_guess(self, x0: Array, guess: Any) -> tuple[Array, Array, Array, float]:
        N, n, m = self.N, self.n, self.m
        T = self.T_guess if self.options.free_final_time else self.T_nominal
        sc = self.scheme
        tau = sc.tau[1:] if sc is not None else np.zeros(0)
        if guess is None:
            U = np.clip(np.zeros((N, m)), self.u_low, self.u_high)
            if self.x_final is not None:
                X = linear_guess(x0, np.where(np.isnan(self.x_final), x0, self.x_final), N, m)[0]
            else:
                X = self._rollout(x0, U, T / N)
        elif isinstance(guess, TrajoptResult):
            if self.options.free_final_time:
                lo, hi = self.options.final_time_bounds
                T = float(np.clip(guess.final_time, lo, hi))
            if self._matches(guess) or (self.scheme is None and guess.U.shape == (N, m)):
                Xc = guess.collocation_states if self.scheme is not None else np.zeros((N, 0, n))
                return guess.X, guess.U, Xc, T
            Tg = guess.final_time
            grid = np.linspace(0.0, Tg, N + 1)
            X = guess.interpolate(grid)
            U = guess.control(0.5 * (grid[:-1] + grid[1:]))
            Xc = guess.interpolate(grid[:-1, None] + tau[None, :] * Tg / N)
            return X, U, Xc, T
        else:
            if isinstance(guess, tuple | list) and len(guess) == 2:
                Xg, Ug = guess
            elif hasattr(guess, "X") and hasattr(guess, "U"):
                Xg, Ug = guess.X, guess.U
            else:
                raise TypeError(
                    "guess must be None, a TrajoptResult, an (X, U) pair or an object with X and "
                    f"U attributes (e.g. an iLQR result), got {type(guess).__name__}"
                )
            X = as_float_array("guess X", Xg)
            U = as_float_array("guess U", Ug)
            if X.shape != (N + 1, n):
                raise ValueError(f"guess X must have shape ({N + 1}, {n}), got {X.shape}")
            if U.shape != (N, m):
                raise ValueError(f"guess U must have shape ({N}, {m}), got {U.shape}")
        Xc = X[:-1, None, :] + tau[None, :, None] * (X[1:] - X[:-1])[:, None, :]
        return X, U, Xc, T

    def _rollout(self, x0: Array, U: Array, h: float) -> Array:
        """Simulate the transcription's own step (a guess that satisfies the dynamics)."""
        X = [x0]
        for k in range(self.N):
            X.append(np.asarray(self._step_guess(X[-1], U[k], h)).reshape(-1))
        out = np.stack(X)
        return out if np.all(np.isfinite(out)) else np.broadcast_to(x0, out.shape).copy()

    def solve(self, x0: ArrayLike, guess: Any = None) -> TrajoptResult:
        """Solve from the initial state ``x0``.

        Parameters
        ----------
        x0 : array_like, shape (n,)
            Initial state, inside ``[x_low, x_high]``.
        guess : None, TrajoptResult, (X, U) or object with ``X``, ``U``
            Initial guess: ``None`` interpolates linearly from ``x0`` to
            ``x_final`` (free entries stay at ``x0``) with zero controls, or,
            without ``x_final``, rolls out zero controls (clipped to the box)
            with the transcription's own step; a
            previous result is resampled onto this grid (any ``N``, any method);
            arrays ``X (N + 1, n)``, ``U (N, m)`` are used as they are (e.g. an
            iLQR solution).

        Returns
        -------
        TrajoptResult
        """
        n = self.n
        x0a = as_float_array("x0", x0)
        if x0a.shape != (n,):
            raise ValueError(
                f"x0 must have shape ({n},) (state {list(self.system.state_names)}), "
                f"got {x0a.shape}"
            )
        bad = np.flatnonzero((x0a < self.x_low) | (x0a > self.x_high))
        if bad.size:
            raise ValueError(f"x0 lies outside [x_low, x_high] at index {bad.tolist()}")
        X, U, Xc, T = self._initial_guess(x0a, guess)
        w0 = np.zeros(self._lbw.size)
        w0[self._iX] = X
        w0[self._iU] = U
        w0[self._iXc] = Xc
        w0[self._iT] = T
        w0 = np.clip(w0, self._lbw, self._ubw)
        args = {
            "x0": w0,
            "p": x0a,
            "lbx": self._lbw,
            "ubx": self._ubw,
            "lbg": self._lbg,
            "ubg": self._ubg,
        }
        solver = self._solver
        warm = self.options.warm_start
        if warm is None:  # auto: a solver's result is near an optimum, raw arrays may not be
            warm = guess is not None and hasattr(guess, "X") and hasattr(guess, "U")
        if warm and guess is not None:
            if self._matches(guess):
                solver = self._warm_start_solver("dual")
                args.update(lam_x0=guess.lam_w, lam_g0=guess.lam_g)
            else:
                solver = self._warm_start_solver("primal")
        t0 = time.perf_counter()
        try:
            sol = solver(**args)
            stats = solver.stats()
            message = str(stats.get("return_status", "unknown"))
            iterations = int(stats.get("iter_count", -1))
        except RuntimeError as exc:  # evaluation errors surface as exceptions in some builds
            solve_time = time.perf_counter() - t0
            logger.warning("trajopt: IPOPT raised %s", exc)
            return self._package(
                w0, None, None, None, float("nan"), "failed", str(exc), 0, solve_time
            )
        solve_time = time.perf_counter() - t0
        w = np.asarray(sol["x"]).reshape(-1)
        status = _STATUS.get(message, "failed")
        logger.info(
            "trajopt %s: %s (%s) in %d iterations, %.3f s",
            self.method,
            status,
            message,
            iterations,
            solve_time,
        )
        flat = lambda key: np.asarray(sol[key], dtype=np.float64).reshape(-1)  # noqa: E731
        return self._package(
            w,
            flat("g"),
            flat("lam_x"),
            flat("lam_g"),
            float(sol["f"]),
            status,
            message,
            iterations,
            solve_time,
        )

    def _package(
        self,
        w: Array,
        gval: Array | None,
        lam_w: Array | None,
        lam_g: Array | None,
        cost: float,
        status: str,
        message: str,
        iterations: int,
        solve_time: float,
    ) -> TrajoptResult:
        N, n = self.N, self.n
        X, U, Xc = w[self._iX], w[self._iU], w[self._iXc]
        T = float(w[self._iT][0]) if self.options.free_final_time else self.T_nominal
        if gval is None or lam_g is None or lam_w is None:
            violation = float("inf")
            costates = np.full((N + 1, n), np.nan)
            lam_w, lam_g = np.zeros(self._lbw.size), np.zeros(self._lbg.size)
        else:
            violation = float(
                max(
                    np.max(np.maximum(self._lbg - gval, gval - self._ubg), initial=0.0),
                    np.max(np.maximum(self._lbw - w, w - self._ubw), initial=0.0),
                    0.0,
                )
            )
            costates = np.concatenate([-lam_g[self._g_init][None], lam_g[self._g_dyn]])
        if self.scheme is None:
            F0 = np.asarray(self._f_map(X[:-1].T, U.T)).T
            F1 = np.asarray(self._f_map(X[1:].T, U.T)).T
            derivs, nodes = np.stack([F0, F1], axis=1), np.zeros(0)
        else:
            derivs, nodes = np.zeros((N, 0, n)), self.scheme.tau.copy()
        build_time, self._pending_build = self._pending_build, 0.0
        result = TrajoptResult(
            X=X,
            U=U,
            t=np.linspace(0.0, T, N + 1),
            cost=cost,
            status=status,
            message=message,
            iterations=iterations,
            constraint_violation=violation,
            solve_time=solve_time,
            build_time=build_time,
            costates=costates,
            method=self.method,
            interpolation_error=float("nan"),
            collocation_nodes=nodes,
            collocation_states=Xc,
            knot_derivatives=derivs,
            lam_w=lam_w,
            lam_g=lam_g,
        )
        return dataclasses.replace(result, interpolation_error=self._interpolation_error(result))

    def _interpolation_error(self, r: TrajoptResult) -> float:
        if not np.all(np.isfinite(r.X)) or not np.all(np.isfinite(r.U)):
            return float("nan")
        h = r.final_time / self.N
        accurate = np.asarray(self._phi(r.X[:-1].T, r.U.T, h)).T.reshape(self.N, 4, self.n)
        planned = r.interpolate(r.t[:-1, None] + h * np.array([0.25, 0.5, 0.75, 1.0]))
        return float(np.max(np.abs(planned - accurate)))


# ------------------------------------------------------------------ functions
def linear_guess(x0: ArrayLike, x_target: ArrayLike, horizon: int, m: int) -> tuple[Array, Array]:
    """Straight-line state guess with zero controls.

    .. math::

        x_k = x_0 + \\tfrac{k}{N}(x_{target} - x_0),\\qquad u_k = 0

    Parameters
    ----------
    x0, x_target : array_like, shape (n,)
    horizon : int
        ``N``.
    m : int
        Control dimension.

    Returns
    -------
    X : ndarray, shape (N + 1, n)
    U : ndarray, shape (N, m)
    """
    a = as_float_array("x0", x0).reshape(-1)
    b = as_float_array("x_target", x_target).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"x_target must have shape {a.shape} like x0, got {b.shape}")
    s = np.linspace(0.0, 1.0, int(horizon) + 1)[:, None]
    return a + s * (b - a), np.zeros((int(horizon), int(m)))


_CACHE: OrderedDict[Any, TrajoptProblem] = OrderedDict()
_CACHE_SIZE = 8


def _cached_problem(
    system: Any, cost: Any, horizon: int, method: str, options: TrajoptOptions
) -> TrajoptProblem:
    """The cached problem for these arguments, building it on a miss.

    Keys hold ``id(system)`` and ``id(cost)``; a cached problem keeps both objects
    alive, so an id cannot be reused by another object while its entry exists.
    """
    key = (id(system), id(cost), horizon, method, options)
    try:
        hit = _CACHE.get(key)
    except TypeError:  # unhashable options (e.g. a list among the IPOPT options)
        return TrajoptProblem(system, cost, horizon, method=method, options=options)
    if hit is not None and hit.system is system and hit.cost is cost:
        _CACHE.move_to_end(key)
        return hit
    problem = TrajoptProblem(system, cost, horizon, method=method, options=options)
    _CACHE[key] = problem
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return problem


def trajopt(
    system: System,
    cost: Any,
    x0: ArrayLike,
    horizon: int,
    *,
    method: str = "multiple_shooting",
    guess: Any = None,
    options: TrajoptOptions | None = None,
) -> TrajoptResult:
    r"""Optimise a trajectory of ``system`` from ``x0`` with IPOPT.

    Solves the NLP of the module docstring,

    .. math::

        \min \sum_{k=0}^{N-1} \bar l_k + l_T(x_N)\,[+ w_T T]
        \ \text{s.t. dynamics, bounds and constraints},

    by multiple shooting on the system's discrete map or by direct collocation
    (Legendre/Radau, ``options.degree`` points per interval). The built solver is
    cached on ``(system, cost, horizon, method, options)`` (by identity for the
    first two), so re-solving the same problem from a new ``x0`` skips the build;
    do not mutate ``system`` or ``cost`` in place between calls.

    Parameters
    ----------
    system : System
        A built-in system (``system.discrete`` for multiple shooting,
        ``system.ode`` for collocation) or an :class:`ODESystem`.
    cost : Cost or None
        Through ``cost.casadi(x, u)`` and ``cost.casadi_terminal(x)``.
    x0 : array_like, shape (n,)
    horizon : int
        Number of intervals ``N``.
    method : {"multiple_shooting", "collocation"}
    guess : None, TrajoptResult, (X, U) or object with ``X (N+1, n)``, ``U (N, m)``
        See :meth:`TrajoptProblem.solve`.
    options : TrajoptOptions, optional

    Returns
    -------
    TrajoptResult
        Never raises on solver failure: check ``status`` and ``message``.

    Examples
    --------
    Kelly's cart-pole swing-up, minimum effort :math:`\int F^2 dt` (``l = dt F^2``):

    >>> from gpcontrol.costs import QuadraticCost
    >>> from gpcontrol.systems import CartPole, CartPoleParams
    >>> cartpole = CartPole(CartPoleParams.kelly(), dt=0.04)
    >>> effort = QuadraticCost(np.zeros((4, 4)), [[2 * 0.04]])
    >>> opts = TrajoptOptions(x_final=[1.0, np.pi, 0.0, 0.0])
    >>> res = trajopt(cartpole, effort, np.zeros(4), 50, method="collocation", options=opts)
    >>> res.status, round(res.cost, 2)
    ('solved', 59.13)
    """
    opts = TrajoptOptions() if options is None else options
    if not isinstance(opts, TrajoptOptions):
        raise TypeError(f"options must be a TrajoptOptions, got {type(opts).__name__}")
    _check_system(system)
    return _cached_problem(system, cost, horizon, method, opts).solve(x0, guess)
