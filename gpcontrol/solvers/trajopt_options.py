r"""Options and user constraints of :func:`gpcontrol.solvers.trajopt.trajopt`.

A user constraint bounds a CasADi expression of the decision variables,

.. math::

    c_{\rm low} \le c(\cdot) \le c_{\rm high},

evaluated at every knot and collocation point (``path``, :math:`c(x, u)`), at
the final state (``terminal``, :math:`c(x_N)`) or once on the whole symbolic
trajectory (``trajectory``, :math:`c(X, U)`). :class:`TrajoptOptions` gathers
everything else that is not problem data: collocation degree and nodes,
horizon and free final time, bounds, the terminal state, IPOPT settings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gpcontrol._validation import as_float_array, check_positive
from gpcontrol.solvers.collocation import collocation_scheme

__all__ = ["Constraint", "TrajoptOptions"]


# ----------------------------------------------------------------- constraints
@dataclasses.dataclass(frozen=True, eq=False)
class Constraint:
    r"""A user constraint :math:`\text{lower} \le c(\cdot) \le \text{upper}` on CasADi symbols.

    Build one with :meth:`path`, :meth:`terminal` or :meth:`trajectory`; the
    default ``lower = -inf, upper = 0`` reads :math:`c \le 0`, and
    ``lower == upper`` gives an equality.

    Attributes
    ----------
    kind : {"path", "terminal", "trajectory"}
    fn : callable
        ``fn(x, u)`` (path), ``fn(x_N)`` (terminal) or ``fn(X, U)`` (trajectory,
        ``X`` an ``SX`` of shape ``(N + 1, n)``, ``U`` of shape ``(N, m)``),
        returning a CasADi expression of any shape (flattened column-wise).
    lower, upper : float or tuple of float
        Bounds, broadcast to the expression's size.
    """

    kind: str
    fn: Callable[..., Any]
    lower: float | tuple[float, ...] = -math.inf
    upper: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("path", "terminal", "trajectory"):
            raise ValueError(f"kind must be 'path', 'terminal' or 'trajectory', got {self.kind!r}")
        if not callable(self.fn):
            raise TypeError(f"fn must be callable, got {type(self.fn).__name__}")
        for name in ("lower", "upper"):
            arr = as_float_array(name, getattr(self, name), allow_nonfinite=True)
            value = float(arr) if arr.ndim == 0 else tuple(arr.reshape(-1).tolist())
            object.__setattr__(self, name, value)

    @classmethod
    def path(
        cls, fn: Callable[[Any, Any], Any], lower: Any = -math.inf, upper: Any = 0.0
    ) -> Constraint:
        """:math:`\\text{lower} \\le c(x, u) \\le \\text{upper}` at knots and collocation points."""
        return cls("path", fn, lower, upper)

    @classmethod
    def terminal(
        cls, fn: Callable[[Any], Any], lower: Any = -math.inf, upper: Any = 0.0
    ) -> Constraint:
        """:math:`\\text{lower} \\le g(x_N) \\le \\text{upper}` at the final state."""
        return cls("terminal", fn, lower, upper)

    @classmethod
    def trajectory(
        cls, fn: Callable[[Any, Any], Any], lower: Any = -math.inf, upper: Any = 0.0
    ) -> Constraint:
        """:math:`\\text{lower} \\le c(X, U) \\le \\text{upper}` on the whole trajectory."""
        return cls("trajectory", fn, lower, upper)


# --------------------------------------------------------------------- options
def _tuple_or_none(name: str, value: Any, *, allow_nan: bool = False) -> tuple[float, ...] | None:
    if value is None:
        return None
    if allow_nan:
        arr = np.asarray(value, dtype=np.float64)
    else:
        arr = as_float_array(name, value, allow_nonfinite=True)
    return tuple(float(v) for v in arr.reshape(-1))


@dataclasses.dataclass(frozen=True)
class TrajoptOptions:
    r"""Knobs of :func:`~gpcontrol.solvers.trajopt.trajopt` (problem data stays in the call).

    With a free final time the objective gains :math:`w_T T` and the interval
    length becomes a decision variable,

    .. math::

        h = T / N, \qquad T_{\rm low} \le T \le T_{\rm high} .

    Attributes
    ----------
    degree : int
        Collocation points per interval (collocation only; default 3).
    scheme : {"legendre", "radau"}
        Collocation nodes.
    final_time : float or None
        Horizon :math:`T`; ``None`` means ``horizon * system.dt``. When it
        equals that value, multiple shooting uses ``system.discrete``; otherwise
        RK4 on ``system.ode`` with :math:`h = T/N` (``system.substeps`` sub-steps).
        With ``free_final_time`` it is the initial guess of :math:`T`.
    free_final_time : bool
        Optimise :math:`T` too (adds ``time_weight * T`` to the objective).
    final_time_bounds : (float, float)
        :math:`[T_{low}, T_{high}]` for a free final time.
    time_weight : float
        :math:`w_T >= 0`.
    x_low, x_high : array_like, shape (n,), optional
        State bounds; default ``system.x_low`` / ``system.x_high``.
    u_low, u_high : array_like, shape (m,), optional
        Control bounds; default ``system.u_low`` / ``system.u_high``.
    x_final : array_like, shape (n,), optional
        Terminal equality :math:`x_N = x_{final}` on the entries that are not NaN.
    constraints : tuple of Constraint
        Path, terminal and whole-trajectory constraints.
    max_iter : int
        IPOPT iteration limit.
    tol : float
        IPOPT convergence tolerance.
    verbose : bool
        Let IPOPT print its per-iteration progress and timings.
    jit : bool
        Generate C code for the NLP functions and compile it (needs a C
        compiler). Measured on the cart-pole with N = 100: minutes to compile
        and no faster solve, since IPOPT's linear algebra dominates; it can
        pay for expensive dynamics solved many times.
    warm_start : bool or None
        Start IPOPT near the guess: a small barrier parameter and bound pushes
        (another IPOPT instance, built on first use), and the guess's
        multipliers when it is a result of this very problem (same ``N``,
        method and constraints; otherwise IPOPT's least-squares estimate).
        From a nearby optimum a re-solve then takes a few iterations instead
        of tens; from a poor guess it can take more.
        ``None`` (default) warm-starts from solver results (a
        :class:`TrajoptResult`, an iLQR result: anything with ``X`` and ``U``)
        and cold-starts from raw arrays; ``True``/``False`` force it.
    ipopt : mapping of str to value
        Extra IPOPT options (without the ``ipopt.`` prefix), e.g. ``{"mu_strategy": "adaptive"}``.
    """

    degree: int = 3
    scheme: str = "legendre"
    final_time: float | None = None
    free_final_time: bool = False
    final_time_bounds: tuple[float, float] = (0.0, math.inf)
    time_weight: float = 1.0
    x_low: Any = None
    x_high: Any = None
    u_low: Any = None
    u_high: Any = None
    x_final: Any = None
    constraints: tuple[Constraint, ...] = ()
    max_iter: int = 1000
    tol: float = 1e-8
    verbose: bool = False
    jit: bool = False
    warm_start: bool | None = None
    ipopt: Any = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        collocation_scheme(self.degree, self.scheme)  # validates both
        if self.final_time is not None:
            set_("final_time", check_positive("final_time", self.final_time))
        lo, hi = (
            float(v)
            for v in as_float_array(
                "final_time_bounds", self.final_time_bounds, allow_nonfinite=True
            ).reshape(2)
        )
        if not 0.0 <= lo <= hi:
            raise ValueError(f"final_time_bounds must satisfy 0 <= low <= high, got ({lo}, {hi})")
        set_("final_time_bounds", (lo, hi))
        if not (math.isfinite(self.time_weight) and self.time_weight >= 0):
            raise ValueError(f"time_weight must be finite and >= 0, got {self.time_weight!r}")
        for name in ("x_low", "x_high", "u_low", "u_high"):
            set_(name, _tuple_or_none(name, getattr(self, name)))
        xf = _tuple_or_none("x_final", self.x_final, allow_nan=True)
        if xf is not None and any(math.isinf(v) for v in xf):
            raise ValueError("x_final must be finite (NaN marks a free entry)")
        set_("x_final", xf)
        cons = tuple(self.constraints)
        for c in cons:
            if not isinstance(c, Constraint):
                raise TypeError(
                    f"constraints must contain Constraint objects, got {type(c).__name__}"
                )
        set_("constraints", cons)
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 0
        ):
            raise ValueError(f"max_iter must be an integer >= 0, got {self.max_iter!r}")
        set_("tol", check_positive("tol", self.tol))
        if self.warm_start is not None and not isinstance(self.warm_start, bool):
            raise ValueError(f"warm_start must be None, True or False, got {self.warm_start!r}")
        extra = self.ipopt.items() if isinstance(self.ipopt, Mapping) else self.ipopt
        set_("ipopt", tuple(sorted((str(k), v) for k, v in extra)))
