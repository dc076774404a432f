r"""Pendulum: a rigid body swinging about a fixed pivot, driven by a torque.

State ``x = [theta, dtheta]`` (``theta = 0`` hanging down, ``theta = pi``
upright); control ``u = [tau]`` (N m). With mass :math:`m`, centre of mass at
:math:`l_c` from the pivot, inertia :math:`I` about the centre of mass,
:math:`J = m l_c^2 + I` and viscous damping :math:`b`:

.. math::

    J \ddot\theta = \tau - b\dot\theta - m g l_c \sin\theta .

Members of the family (all uniform rods, :math:`l_c = l/2`, :math:`J = m l^2/3`):

* :meth:`PendulumParams.pilco` -- PILCO (Deisenroth & Rasmussen 2011; PILCO
  MATLAB package ``scenarios/pendulum``): m = 1 kg, l = 1 m, b = 0.01,
  g = 9.82, |tau| <= 2.5 N m.
* :meth:`PendulumParams.gymnasium` -- Gymnasium's ``Pendulum-v1``: m = 1,
  l = 1, g = 10, no damping, |tau| <= 2, speed clipped to 8 rad/s, stepped by
  semi-implicit Euler with dt = 0.05 (:meth:`Pendulum.gymnasium`). Gymnasium
  measures its angle from upright: ``theta_gym = theta - pi``.
* :meth:`PendulumParams.benchmark` -- benchmark problem (b): Gymnasium's rod
  without the speed clip, integrated by RK4.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import casadi as ca

from gpcontrol._validation import check_nonnegative, check_positive
from gpcontrol.systems.base import System

__all__ = ["Pendulum", "PendulumParams"]


@dataclasses.dataclass(frozen=True)
class PendulumParams:
    """Physical parameters of the pendulum (SI units).

    Attributes
    ----------
    mass, length : float
        :math:`m` (kg) and :math:`l` (m, pivot to tip).
    com_distance : float or None
        :math:`l_c`; ``None`` means ``l / 2`` (uniform rod).
    inertia : float or None
        :math:`I` about the centre of mass; ``None`` means ``m l^2 / 12`` (rod).
    damping : float
        :math:`b`, N m s.
    gravity : float
    max_torque : float
        ``|tau| <= max_torque``.
    max_speed : float or None
        Clip ``|dtheta|`` after each step (Gymnasium's ``Pendulum-v1`` uses 8).
    """

    mass: float = 1.0
    length: float = 1.0
    com_distance: float | None = None
    inertia: float | None = None
    damping: float = 0.01
    gravity: float = 9.82
    max_torque: float = 2.5
    max_speed: float | None = None

    def __post_init__(self) -> None:
        for name in ("mass", "length", "gravity", "max_torque"):
            check_positive(name, getattr(self, name))
        check_nonnegative("damping", self.damping)
        if self.com_distance is not None:
            check_positive("com_distance", self.com_distance)
        if self.inertia is not None:
            check_nonnegative("inertia", self.inertia)
        if self.max_speed is not None:
            check_positive("max_speed", self.max_speed)

    @property
    def lc(self) -> float:
        """Pivot to centre of mass, m."""
        return self.length / 2 if self.com_distance is None else self.com_distance

    @property
    def pivot_inertia(self) -> float:
        """:math:`J = m l_c^2 + I`, inertia about the pivot, kg m^2."""
        ic = self.mass * self.length**2 / 12 if self.inertia is None else self.inertia
        return self.mass * self.lc**2 + ic

    @classmethod
    def pilco(cls) -> PendulumParams:
        """PILCO's pendulum (the default)."""
        return cls()

    @classmethod
    def gymnasium(cls) -> PendulumParams:
        """Gymnasium ``Pendulum-v1``: g = 10, no damping, |tau| <= 2, |dtheta| <= 8."""
        return cls(damping=0.0, gravity=10.0, max_torque=2.0, max_speed=8.0)

    @classmethod
    def benchmark(cls) -> PendulumParams:
        """Benchmark problem (b): Gymnasium's rod, |tau| <= 2, no speed clip."""
        return cls(damping=0.0, gravity=10.0, max_torque=2.0)


class Pendulum(System):
    """Torque-driven pendulum; see the module docstring for the equation.

    Parameters
    ----------
    params : PendulumParams, optional
        Defaults to PILCO's pendulum.
    dt : float
        Control period, s.
    integrator, substeps
        See :class:`~gpcontrol.systems.base.System`.
    """

    name = "pendulum"
    state_names = ("theta", "dtheta")
    control_names = ("tau",)
    angle_indices = (0,)
    params_type = PendulumParams

    def __init__(
        self,
        params: PendulumParams | None = None,
        *,
        dt: float = 0.05,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        super().__init__(params, dt=dt, integrator=integrator, substeps=substeps)

    @classmethod
    def gymnasium(cls) -> Pendulum:
        """The exact discrete map of Gymnasium's ``Pendulum-v1`` (angle shifted by pi)."""
        return cls(PendulumParams.gymnasium(), dt=0.05, integrator="semi_implicit_euler")

    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        p = self.params
        ddtheta = (u[0] - p.damping * x[1] - p.mass * p.gravity * p.lc * ca.sin(x[0])) / (
            p.pivot_inertia
        )
        return ca.vertcat(x[1], ddtheta)

    def _clip_velocity(self, dq: ca.SX) -> ca.SX:
        vmax = self.params.max_speed
        return dq if vmax is None else ca.fmin(ca.fmax(dq, -vmax), vmax)

    def _control_bounds(self) -> tuple[Any, Any]:
        return [-self.params.max_torque], [self.params.max_torque]

    def _points(self, x: ca.SX) -> ca.SX:
        l = self.params.length
        return ca.vertcat(ca.horzcat(0, 0), ca.horzcat(l * ca.sin(x[0]), -l * ca.cos(x[0])))

    def _energy(self, x: ca.SX) -> ca.SX:
        p = self.params
        return 0.5 * p.pivot_inertia * x[1] ** 2 - p.mass * p.gravity * p.lc * ca.cos(x[0])
