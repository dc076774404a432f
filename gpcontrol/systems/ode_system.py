r"""A user's own CasADi ODE as a full gpcontrol :class:`~gpcontrol.systems.base.System`.

Given :math:`\dot x = f(x, u)` as a CasADi ``Function`` with state and control
bounds, build the discrete map

.. math::

    x_{t+1} = \Phi_{\Delta t}(x_t, u_t) \quad (\text{RK4 by default}),

and with it every numeric view a built-in system has (batched ``step``, exact
``linearize`` and ``second_derivatives``, ``simulate``), so a user's model
works with every gpcontrol solver (iLQR, MPC, :func:`~gpcontrol.solvers.trajopt.trajopt`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike

from gpcontrol.systems.base import System

__all__ = ["ODESystem"]


@dataclasses.dataclass(frozen=True)
class _NoParams:
    """Parameters of a user-defined ODE (none: they live inside the CasADi function)."""


class ODESystem(System):
    r"""A :class:`~gpcontrol.systems.base.System` from a user's CasADi ODE.

    Wraps :math:`\dot x = f(x, u)`, given as a CasADi ``Function`` with inputs
    ``x (n, 1)``, ``u (m, 1)`` and output ``xdot (n, 1)``, with its bounds and
    a step ``dt``; the discrete map is RK4 (or the chosen integrator), so the
    wrapped system works with every gpcontrol solver, not only :func:`trajopt`.

    .. math::

        x_{t+1} = \mathrm{RK4}(f, x_t, u_t, \Delta t)

    Parameters
    ----------
    f : casadi.Function
        ``f(x, u) -> xdot``; ``MX`` functions are expanded to ``SX``.
    dt : float
        Step of the discrete map.
    u_low, u_high : array_like, shape (m,)
        Control bounds (``inf`` allowed).
    x_low, x_high : array_like, shape (n,), optional
        State bounds for trajectory optimisation (default unbounded).
    integrator, substeps
        See :class:`~gpcontrol.systems.base.System`.
    state_names, control_names : sequence of str, optional
    name : str

    Examples
    --------
    >>> import casadi as ca
    >>> x, u = ca.SX.sym("x", 2), ca.SX.sym("u")
    >>> f = ca.Function("f", [x, u], [ca.vertcat(x[1], u)])
    >>> sys = ODESystem(f, dt=0.1, u_low=[-1.0], u_high=[1.0])
    >>> sys.step([0.0, 1.0], [0.0]).tolist()
    [0.1, 1.0]
    """

    params_type = _NoParams

    def __init__(
        self,
        f: ca.Function,
        *,
        dt: float,
        u_low: ArrayLike,
        u_high: ArrayLike,
        x_low: ArrayLike | None = None,
        x_high: ArrayLike | None = None,
        integrator: str = "rk4",
        substeps: int = 1,
        state_names: Sequence[str] | None = None,
        control_names: Sequence[str] | None = None,
        name: str = "ode",
    ) -> None:
        if not isinstance(f, ca.Function):
            raise TypeError(f"f must be a casadi.Function f(x, u) -> xdot, got {type(f).__name__}")
        if f.n_in() != 2 or f.n_out() < 1:
            raise ValueError(f"f must take (x, u) and return xdot; it has {f.n_in()} inputs")
        n, m = f.size1_in(0), f.size1_in(1)
        if f.size2_in(0) != 1 or f.size2_in(1) != 1 or f.size_out(0) != (n, 1):
            raise ValueError(
                f"f must map x ({n}, 1), u ({m}, 1) to xdot ({n}, 1); got inputs "
                f"{f.size_in(0)}, {f.size_in(1)} and output {f.size_out(0)}"
            )
        self._user_f = f.expand() if f.is_a("MXFunction") else f
        self.name = name  # type: ignore[misc]
        self.state_names = tuple(state_names or (f"x{i}" for i in range(n)))  # type: ignore[misc]
        self.control_names = tuple(control_names or (f"u{i}" for i in range(m)))  # type: ignore[misc]
        for label, names, size in (
            ("state_names", self.state_names, n),
            ("control_names", self.control_names, m),
        ):
            if len(names) != size:
                raise ValueError(f"{label} must have {size} entries, got {len(names)}")
        inf = np.full(n, np.inf)
        self._bounds = (
            u_low,
            u_high,
            -inf if x_low is None else x_low,
            inf if x_high is None else x_high,
        )
        super().__init__(_NoParams(), dt=dt, integrator=integrator, substeps=substeps)

    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        return self._user_f(x, u)

    def _control_bounds(self) -> tuple[Any, Any]:
        return self._bounds[0], self._bounds[1]

    def _state_bounds(self) -> tuple[Any, Any]:
        return self._bounds[2], self._bounds[3]
