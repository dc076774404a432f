r"""Cart-pole: a cart on a track with a free pole on a hinge.

State ``x = [p, theta, dp, dtheta]`` (cart position m, pole angle rad with
``theta = 0`` hanging down and ``theta = pi`` upright, their rates);
control ``u = [F]`` (horizontal force on the cart, N).

The pole has mass :math:`m`, centre of mass at distance :math:`l_c` from the
hinge and inertia :math:`I` about its centre of mass; the cart has mass
:math:`M` and viscous friction :math:`b`. With :math:`J = m l_c^2 + I`,
:math:`s = \sin\theta`, :math:`c = \cos\theta`, Lagrange's equations give

.. math::

    \begin{bmatrix} M + m & m l_c c \\ m l_c c & J \end{bmatrix}
    \begin{bmatrix} \ddot p \\ \ddot\theta \end{bmatrix}
    =
    \begin{bmatrix} F - b\dot p + m l_c s\,\dot\theta^2 \\ -m g l_c s \end{bmatrix}.

Two members of this family are used across the literature:

* a uniform rod of length :math:`l` (:math:`l_c = l/2`, :math:`I = m l^2/12`),
  which gives PILCO's cart-pole equations (Deisenroth & Rasmussen, ICML 2011;
  the PILCO MATLAB package ``dynamics_cp.m``): :meth:`CartPoleParams.pilco`;
* a point mass at the tip (:math:`l_c = l`, :math:`I = 0`), which gives the
  equations of Kelly, SIAM Review 59(4) 2017, Sec. 6:
  :meth:`CartPoleParams.kelly`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import casadi as ca
import numpy as np

from gpcontrol._validation import check_nonnegative, check_positive
from gpcontrol.systems.base import System

__all__ = ["CartPole", "CartPoleParams"]


@dataclasses.dataclass(frozen=True)
class CartPoleParams:
    """Physical parameters of the cart-pole (SI units).

    The default is PILCO's cart-pole (Deisenroth & Rasmussen 2011; PILCO
    MATLAB package, ``scenarios/cartPole``): 0.5 kg cart, 0.5 kg uniform rod of
    length 0.5 m, friction 0.1 N s/m, g = 9.82 m/s^2, force bound 10 N.

    Attributes
    ----------
    cart_mass : float
        :math:`M`, kg.
    pole_mass : float
        :math:`m`, kg.
    pole_length : float
        :math:`l`, m (hinge to tip; the tip is what costs measure).
    com_distance : float or None
        :math:`l_c`, hinge to pole centre of mass; ``None`` means ``l / 2`` (rod).
    pole_inertia : float or None
        :math:`I` about the centre of mass; ``None`` means ``m l^2 / 12`` (rod).
    friction : float
        :math:`b`, viscous cart friction, N s/m.
    gravity : float
        :math:`g`, m/s^2.
    max_force : float
        Force bound, ``|F| <= max_force``.
    track_limit : float
        ``|p| <= track_limit`` for trajectory optimisation (``inf``: none).
    """

    cart_mass: float = 0.5
    pole_mass: float = 0.5
    pole_length: float = 0.5
    com_distance: float | None = None
    pole_inertia: float | None = None
    friction: float = 0.1
    gravity: float = 9.82
    max_force: float = 10.0
    track_limit: float = float("inf")

    def __post_init__(self) -> None:
        for name in ("cart_mass", "pole_mass", "pole_length", "gravity", "max_force"):
            check_positive(name, getattr(self, name))
        check_nonnegative("friction", self.friction)
        if self.com_distance is not None:
            check_positive("com_distance", self.com_distance)
        if self.pole_inertia is not None:
            check_nonnegative("pole_inertia", self.pole_inertia)
        if not self.track_limit > 0:
            raise ValueError(f"track_limit must be positive, got {self.track_limit!r}")

    @property
    def lc(self) -> float:
        """Hinge to centre of mass, m."""
        return self.pole_length / 2 if self.com_distance is None else self.com_distance

    @property
    def inertia(self) -> float:
        """Pole inertia about its centre of mass, kg m^2."""
        if self.pole_inertia is None:
            return self.pole_mass * self.pole_length**2 / 12
        return self.pole_inertia

    @classmethod
    def pilco(cls) -> CartPoleParams:
        """PILCO's cart-pole (uniform rod, friction 0.1, g = 9.82, |F| <= 10 N)."""
        return cls()

    @classmethod
    def kelly(cls) -> CartPoleParams:
        """Kelly (SIAM Review 2017, Sec. 6): 1 kg cart, 0.3 kg point mass at 0.5 m,
        no friction, g = 9.81, |F| <= 20 N, |p| <= 2 m. Also benchmark problem (a)."""
        return cls(
            cart_mass=1.0,
            pole_mass=0.3,
            pole_length=0.5,
            com_distance=0.5,
            pole_inertia=0.0,
            friction=0.0,
            gravity=9.81,
            max_force=20.0,
            track_limit=2.0,
        )


class CartPole(System):
    """Cart-pole swing-up system; see the module docstring for the equations.

    Parameters
    ----------
    params : CartPoleParams, optional
        Defaults to PILCO's cart-pole.
    dt : float
        Control period, s (PILCO uses 0.1).
    integrator, substeps
        See :class:`~gpcontrol.systems.base.System`.

    Examples
    --------
    >>> sys = CartPole(dt=0.1)
    >>> sys.step([0.0, 0.0, 0.0, 0.0], [1.0]).shape
    (4,)
    """

    name = "cartpole"
    state_names = ("p", "theta", "dp", "dtheta")
    control_names = ("F",)
    angle_indices = (1,)
    params_type = CartPoleParams

    def __init__(
        self,
        params: CartPoleParams | None = None,
        *,
        dt: float = 0.1,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        super().__init__(params, dt=dt, integrator=integrator, substeps=substeps)

    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        p = self.params
        M, m, lc, g, b = p.cart_mass, p.pole_mass, p.lc, p.gravity, p.friction
        J = m * lc**2 + p.inertia
        theta, dp, dtheta = x[1], x[2], x[3]
        s, c = ca.sin(theta), ca.cos(theta)
        r1 = u[0] - b * dp + m * lc * s * dtheta**2
        r2 = -m * g * lc * s
        det = (M + m) * J - (m * lc * c) ** 2
        ddp = (J * r1 - m * lc * c * r2) / det
        ddtheta = ((M + m) * r2 - m * lc * c * r1) / det
        return ca.vertcat(dp, dtheta, ddp, ddtheta)

    def _control_bounds(self) -> tuple[Any, Any]:
        return [-self.params.max_force], [self.params.max_force]

    def _state_bounds(self) -> tuple[Any, Any]:
        lim = self.params.track_limit
        return [-lim, -np.inf, -np.inf, -np.inf], [lim, np.inf, np.inf, np.inf]

    def _points(self, x: ca.SX) -> ca.SX:
        l = self.params.pole_length
        tip_x = x[0] + l * ca.sin(x[1])
        tip_y = -l * ca.cos(x[1])
        return ca.vertcat(ca.horzcat(x[0], 0), ca.horzcat(tip_x, tip_y))

    def _energy(self, x: ca.SX) -> ca.SX:
        p = self.params
        M, m, lc = p.cart_mass, p.pole_mass, p.lc
        theta, dp, dtheta = x[1], x[2], x[3]
        kinetic = (
            0.5 * (M + m) * dp**2
            + m * lc * ca.cos(theta) * dp * dtheta
            + 0.5 * (m * lc**2 + p.inertia) * dtheta**2
        )
        return kinetic - m * p.gravity * lc * ca.cos(theta)
