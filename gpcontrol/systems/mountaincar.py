r"""Mountain car: an under-powered car in a valley between two hills.

State ``x = [p, v]`` (position, velocity); control ``u = [a]`` (normalised
throttle, ``|a| <= 1``). The track's height is proportional to
:math:`\sin(\omega p)`, so gravity pulls with :math:`-g\cos(\omega p)`:

.. math::

    \dot p = v, \qquad \dot v = P a - g \cos(\omega p) - b v .

The default parameters and :meth:`MountainCar.gymnasium` reproduce
Gymnasium's ``MountainCarContinuous-v0`` exactly: power :math:`P = 0.0015`,
:math:`g = 0.0025`, :math:`\omega = 3`, no friction, one semi-implicit Euler
step of length 1 per control step, speed clipped to 0.07, position clipped to
``[-1.2, 0.6]`` with an inelastic wall on the left (the velocity is zeroed when
the car hits it). The goal is ``p >= 0.45``.

:meth:`MountainCarParams.continuous` / :meth:`MountainCar.continuous` is a
continuous-time variant in the style of PILCO's benchmarks: the same ODE in
seconds and metres, the throttle held for ``dt = 0.1`` s and integrated with
RK4, and no speed clip or wall, so the map is smooth everywhere.

Note that the clipping makes the discrete map only piecewise smooth; away
from the limits its Jacobians are exact.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import casadi as ca

from gpcontrol._validation import check_nonnegative, check_positive
from gpcontrol.systems.base import System

__all__ = ["MountainCar", "MountainCarParams"]


@dataclasses.dataclass(frozen=True)
class MountainCarParams:
    """Parameters of the mountain car (defaults: Gymnasium ``MountainCarContinuous-v0``).

    Attributes
    ----------
    power : float
        :math:`P`, acceleration per unit throttle.
    gravity : float
        :math:`g`, amplitude of the slope's pull.
    hill_frequency : float
        :math:`\\omega`.
    friction : float
        :math:`b`.
    max_action : float
        ``|a| <= max_action``.
    max_speed : float or None
        Clip ``|v|`` after each velocity update (``None``: no clip).
    min_position, max_position : float
        Track ends; the position is clipped there and the velocity zeroed at the
        left wall. ``-inf``/``inf`` for an unbounded track.
    goal_position : float
        The task is solved when ``p >= goal_position``.
    """

    power: float = 0.0015
    gravity: float = 0.0025
    hill_frequency: float = 3.0
    friction: float = 0.0
    max_action: float = 1.0
    max_speed: float | None = 0.07
    min_position: float = -1.2
    max_position: float = 0.6
    goal_position: float = 0.45

    @classmethod
    def continuous(cls, time_unit: float = 0.1) -> MountainCarParams:
        r"""Continuous-time mountain car in SI units (gpcontrol's choice, no paper's constants).

        Gymnasium's constants with one Gymnasium step read as ``time_unit``
        seconds: substituting :math:`t = \tau s` in
        :math:`d^2p/ds^2 = P_{\rm gym} a - g_{\rm gym}\cos(\omega p)` gives

        .. math::

            \ddot p = \frac{P_{\rm gym}}{\tau^2}\, a
                - \frac{g_{\rm gym}}{\tau^2}\cos(\omega p),

        i.e. :math:`P = 0.15\ \mathrm{m/s^2}`, :math:`g = 0.25\ \mathrm{m/s^2}`
        for :math:`\tau = 0.1` s, with :math:`\omega = 3` rad/m, no friction,
        no speed clip and an unbounded track (the car may roll past the
        Gymnasium walls). Still under-powered (:math:`P < g`): the car must
        swing back first. Use it with RK4, as :meth:`MountainCar.continuous` does.

        Parameters
        ----------
        time_unit : float
            :math:`\tau`, seconds per Gymnasium step (> 0).
        """
        tau = check_positive("time_unit", time_unit)
        return cls(
            power=0.0015 / tau**2,
            gravity=0.0025 / tau**2,
            max_speed=None,
            min_position=-math.inf,
            max_position=math.inf,
        )

    def __post_init__(self) -> None:
        for name in ("power", "hill_frequency", "max_action"):
            check_positive(name, getattr(self, name))
        check_nonnegative("gravity", self.gravity)
        check_nonnegative("friction", self.friction)
        if self.max_speed is not None:
            check_positive("max_speed", self.max_speed)
        if not self.min_position < self.max_position:
            raise ValueError(
                f"min_position must be below max_position, got {self.min_position} >= "
                f"{self.max_position}"
            )


class MountainCar(System):
    """Mountain car; see the module docstring.

    Parameters
    ----------
    params : MountainCarParams, optional
        Defaults to Gymnasium's ``MountainCarContinuous-v0``.
    dt : float
        Step, in the model's time unit (Gymnasium: 1).
    integrator : str
        Default ``"semi_implicit_euler"`` (Gymnasium's scheme).
    """

    name = "mountaincar"
    state_names = ("p", "v")
    control_names = ("a",)
    angle_indices = ()
    params_type = MountainCarParams

    def __init__(
        self,
        params: MountainCarParams | None = None,
        *,
        dt: float = 1.0,
        integrator: str = "semi_implicit_euler",
        substeps: int = 1,
    ) -> None:
        super().__init__(params, dt=dt, integrator=integrator, substeps=substeps)

    @classmethod
    def gymnasium(cls) -> MountainCar:
        """The exact discrete map of Gymnasium's ``MountainCarContinuous-v0``."""
        return cls(MountainCarParams(), dt=1.0, integrator="semi_implicit_euler")

    @classmethod
    def continuous(cls, *, dt: float = 0.1, substeps: int = 1) -> MountainCar:
        """PILCO-style continuous-time mountain car: :meth:`MountainCarParams.continuous`, RK4.

        Parameters
        ----------
        dt : float
            Zero-order-hold control period, seconds (default 0.1, like PILCO's cart-pole).
        substeps : int
            RK4 sub-steps per ``dt``.
        """
        return cls(MountainCarParams.continuous(), dt=dt, integrator="rk4", substeps=substeps)

    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        p = self.params
        acc = p.power * u[0] - p.gravity * ca.cos(p.hill_frequency * x[0]) - p.friction * x[1]
        return ca.vertcat(x[1], acc)

    def _clip_velocity(self, dq: ca.SX) -> ca.SX:
        vmax = self.params.max_speed
        return dq if vmax is None else ca.fmin(ca.fmax(dq, -vmax), vmax)

    def _project(self, x_next: ca.SX) -> ca.SX:
        p = self.params
        pos = ca.fmin(ca.fmax(x_next[0], p.min_position), p.max_position)
        vel = ca.if_else(ca.logic_and(pos <= p.min_position, x_next[1] < 0), 0, x_next[1])
        return ca.vertcat(pos, vel)

    def _control_bounds(self) -> tuple[Any, Any]:
        return [-self.params.max_action], [self.params.max_action]

    def _state_bounds(self) -> tuple[Any, Any]:
        p = self.params
        vmax = float("inf") if p.max_speed is None else p.max_speed
        return [p.min_position, -vmax], [p.max_position, vmax]

    def height(self, p: Any) -> Any:
        """Drawn track height at position ``p`` (Gymnasium's ``0.45 sin(3p) + 0.55``)."""
        return 0.45 * ca.sin(self.params.hill_frequency * p) + 0.55

    def _points(self, x: ca.SX) -> ca.SX:
        return ca.horzcat(x[0], self.height(x[0]))

    def _energy(self, x: ca.SX) -> ca.SX:
        p = self.params
        return 0.5 * x[1] ** 2 + p.gravity / p.hill_frequency * ca.sin(p.hill_frequency * x[0])
