r"""Model predictive control: re-plan over a receding horizon, apply the first action.

At every step :math:`t` the controller measures :math:`x_t` and solves, with
its internal model :math:`\hat F` (which may differ from the plant),

.. math::

    U^\star_t = \arg\min_{u_{0:H-1}} \sum_{k=0}^{H-1} \ell(\hat x_k, u_k) + \ell_T(\hat x_H),
    \quad \hat x_0 = x_t,\ \hat x_{k+1} = \hat F(\hat x_k, u_k),\
    \underline u \le u_k \le \overline u,

then applies :math:`u_t = u^\star_{t,0}` and discards the rest (Mayne et al.,
"Constrained model predictive control: stability and optimality",
Automatica 36(6), 2000). The closed loop is a feedback policy even though every
solve is open loop, which is what makes it robust to model error and noise.

**Warm start by shifting.** Consecutive problems overlap in :math:`H - 1`
steps, so the next solve starts from the previous plan moved one step forward,

.. math::

    U^{\text{init}}_{t+1} = (u^\star_{t,1}, \dots, u^\star_{t,H-1}, u^\star_{t,H-1}),

and, for iLQR/DDP, the previous feedback gains and trajectory shifted the
same way, so the first rollout of the new solve is the closed-loop
:math:`u_k = u^{\text{init}}_k + K_{k}(\hat x_k - \bar x_k)` around the old plan
(Tassa, Erez & Todorov, IROS 2012, Sec. III). A few iterations per step then
suffice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array, check_bounds
from gpcontrol.solvers.ilqr import ILQROptions, ILQRResult, ddp, ilqr
from gpcontrol.solvers.shooting import (
    CEMOptions,
    MPPIOptions,
    RandomShootingOptions,
    cem,
    mppi,
    random_shooting,
)

__all__ = ["MPC", "PLANNERS"]

Array = NDArray[np.float64]

#: Built-in planners by name: (function, options class, takes a seed).
PLANNERS: dict[str, tuple[Callable[..., Any], type, bool]] = {
    "ilqr": (ilqr, ILQROptions, False),
    "ddp": (ddp, ILQROptions, False),
    "cem": (cem, CEMOptions, True),
    "mppi": (mppi, MPPIOptions, True),
    "random_shooting": (random_shooting, RandomShootingOptions, True),
}


def _shift(A: Array) -> Array:
    """Drop the first row and repeat the last: ``(H, ...) -> (H, ...)``."""
    return np.concatenate([A[1:], A[-1:]], axis=0)


class MPC:
    r"""Receding-horizon controller around iLQR/DDP or a sampling planner.

    .. math::

        u_t = u^\star_0(x_t),\qquad
        u^\star(x) = \arg\min_{U} \sum_{k<H} \ell(\hat x_k, u_k) + \ell_T(\hat x_H),\
        \hat x_0 = x

    (see the module docstring). Use it as ``policy(x, t) -> u`` with
    :func:`gpcontrol.rollout.rollout`; call :meth:`reset` (or pass ``t = 0``)
    between episodes.

    Parameters
    ----------
    dynamics : Dynamics
        The controller's internal model (need not equal the plant).
    cost : Cost
        Running and terminal cost of every horizon problem.
    horizon : int
        :math:`H`, steps per plan.
    planner : str or callable
        ``"ilqr"`` (default), ``"ddp"``, ``"cem"``, ``"mppi"``,
        ``"random_shooting"``, or any function
        ``planner(dynamics, cost, x0, U_init, *, u_low, u_high, options)``
        returning an object with a ``U (H, m)`` attribute.
    options : object, optional
        Passed to the planner (``ILQROptions``, ``CEMOptions``, ...). For
        iLQR/DDP the default caps the iterations per step at 10.
    u_low, u_high : array_like, shape (m,), optional
        Control box (default: the model's ``u_low``/``u_high``, else unbounded).
    U_init : array_like, shape (H, m), or callable, optional
        Initial guess of a cold solve (the first of an episode, or every one
        without ``warm_start``): a fixed array, or ``U_init(x) -> (H, m)``
        computed from the measured state (e.g. the rollout of a stabilising
        feedback law on the model). Default zeros; clipped to the box.
    warm_start : bool
        Start each solve from the shifted previous plan (default) or always
        from ``U_init``.
    seed : int or numpy.random.Generator, optional
        For sampling planners; an integer seed is re-applied by :meth:`reset`,
        so an episode's controls are reproducible.

    Attributes
    ----------
    last_result : object or None
        The planner's result at the latest step (its ``X``, ``U``, ``cost``).
    solve_seconds : list of float
        Wall-clock time of each solve since the last reset.
    """

    def __init__(
        self,
        dynamics: Any,
        cost: Any,
        horizon: int,
        *,
        planner: str | Callable[..., Any] = "ilqr",
        options: Any = None,
        u_low: ArrayLike | None = None,
        u_high: ArrayLike | None = None,
        U_init: ArrayLike | Callable[[Array], ArrayLike] | None = None,
        warm_start: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        for attr in ("n", "m", "step"):
            if not hasattr(dynamics, attr):
                raise TypeError(f"dynamics must implement the Dynamics protocol (missing {attr!r})")
        n, m = int(dynamics.n), int(dynamics.m)
        if (getattr(cost, "n", n), getattr(cost, "m", m)) != (n, m):
            raise ValueError(
                f"cost is for (n, m) = ({cost.n}, {cost.m}) but dynamics has ({n}, {m})"
            )
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        self.dynamics, self.cost = dynamics, cost
        self.n, self.m, self.horizon = n, m, int(horizon)
        if isinstance(planner, str):
            if planner not in PLANNERS:
                raise ValueError(
                    f"planner must be one of {sorted(PLANNERS)} or a callable, got {planner!r}"
                )
            fn, opt_type, seeded = PLANNERS[planner]
            if options is None:
                options = opt_type(max_iterations=10) if opt_type is ILQROptions else opt_type()
            elif not isinstance(options, opt_type):
                raise TypeError(
                    f"options for planner {planner!r} must be a {opt_type.__name__}, "
                    f"got {type(options).__name__}"
                )
            self.planner_name = planner
        elif callable(planner):
            fn, seeded = planner, False
            self.planner_name = getattr(planner, "__name__", type(planner).__name__)
        else:
            raise TypeError(f"planner must be a name or a callable, got {type(planner).__name__}")
        self._plan_fn, self._seeded, self.options = fn, seeded, options
        lo = getattr(dynamics, "u_low", None) if u_low is None else u_low
        hi = getattr(dynamics, "u_high", None) if u_high is None else u_high
        lo = np.full(m, -np.inf) if lo is None else np.broadcast_to(lo, (m,))
        hi = np.full(m, np.inf) if hi is None else np.broadcast_to(hi, (m,))
        self.u_low, self.u_high = check_bounds("u_low", lo, "u_high", hi, m)
        self._U_init_fn: Callable[[Array], ArrayLike] | None = None
        if callable(U_init):
            self._U_init_fn = U_init
            self._U_init = np.zeros((self.horizon, m))
        else:
            self._U_init = self._check_guess(
                np.zeros((self.horizon, m)) if U_init is None else U_init
            )
        self.warm_start = bool(warm_start)
        if seed is not None and not isinstance(seed, np.random.Generator | int | np.integer):
            raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {seed!r}")
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan (and re-seed a sampling planner given an int seed)."""
        self.last_result: Any = None
        self.solve_seconds: list[float] = []
        self._t = 0
        if isinstance(self._seed, np.random.Generator):
            self._rng = self._seed
        else:
            self._rng = np.random.default_rng(self._seed)

    def _check_guess(self, value: ArrayLike) -> Array:
        U0 = as_float_array("U_init", value)
        if U0.ndim == 1 and self.m == 1:
            U0 = U0[:, None]
        if U0.shape != (self.horizon, self.m):
            raise ValueError(f"U_init must have shape ({self.horizon}, {self.m}), got {U0.shape}")
        return np.clip(U0, self.u_low, self.u_high)

    def _initial_guess(self, x: Array) -> Any:
        prev = self.last_result
        if prev is None or not self.warm_start:
            if self._U_init_fn is not None:
                return self._check_guess(self._U_init_fn(x.copy()))
            return self._U_init.copy()
        if isinstance(prev, ILQRResult):
            return dataclasses.replace(prev, X=_shift(prev.X), U=_shift(prev.U), K=_shift(prev.K))
        return _shift(np.asarray(prev.U, dtype=np.float64))

    def plan(self, x: ArrayLike) -> Any:
        """Solve the horizon problem from ``x (n,)`` (warm-started); the planner's result."""
        xa = as_batch("x", x, self.n)
        if xa.ndim != 1:
            raise ValueError(f"x must have shape ({self.n},), got {xa.shape}")
        kwargs: dict[str, Any] = {"u_low": self.u_low, "u_high": self.u_high}
        if self.options is not None:
            kwargs["options"] = self.options
        if self._seeded:
            kwargs["seed"] = self._rng
        t0 = time.perf_counter()
        result = self._plan_fn(self.dynamics, self.cost, xa, self._initial_guess(xa), **kwargs)
        self.solve_seconds.append(time.perf_counter() - t0)
        U = np.asarray(getattr(result, "U", None), dtype=np.float64)
        if U.shape != (self.horizon, self.m) or not np.isfinite(U).all():
            raise ValueError(
                f"the planner returned controls of shape {U.shape} (finite: "
                f"{bool(np.isfinite(U).all())}); expected finite ({self.horizon}, {self.m})"
            )
        self.last_result = result
        return result

    def __call__(self, x: ArrayLike, t: int | None = None) -> Array:
        """The first action of the plan from ``x (n,)``: ``u (m,)``.

        ``t = 0`` starts a new episode (implicit :meth:`reset` if a plan exists).
        """
        if t is not None and int(t) == 0 and self._t != 0:
            self.reset()
        result = self.plan(x)
        self._t += 1
        u = np.asarray(result.U[0], dtype=np.float64)
        return np.clip(u, self.u_low, self.u_high)

    def __repr__(self) -> str:
        return f"MPC(planner={self.planner_name!r}, horizon={self.horizon}, n={self.n}, m={self.m})"
