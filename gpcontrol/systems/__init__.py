"""Known-physics systems, each defined once as a CasADi ODE.

See :class:`~gpcontrol.systems.base.System` for what every system provides.
"""

from gpcontrol.systems.base import Linearization, SecondDerivatives, System
from gpcontrol.systems.cartpole import CartPole, CartPoleParams
from gpcontrol.systems.chain import ChainParams, DoublePendulum, PlanarArm
from gpcontrol.systems.integrators import euler, rk4, semi_implicit_euler
from gpcontrol.systems.mountaincar import MountainCar, MountainCarParams
from gpcontrol.systems.ode_system import ODESystem
from gpcontrol.systems.pendulum import Pendulum, PendulumParams

__all__ = [
    "System",
    "Linearization",
    "SecondDerivatives",
    "CartPole",
    "CartPoleParams",
    "Pendulum",
    "PendulumParams",
    "MountainCar",
    "MountainCarParams",
    "PlanarArm",
    "DoublePendulum",
    "ChainParams",
    "ODESystem",
    "rk4",
    "euler",
    "semi_implicit_euler",
    "SYSTEMS",
    "make_system",
]

#: Registry of the built-in systems by name, each with its default parameters.
SYSTEMS: dict[str, type[System]] = {
    "cartpole": CartPole,
    "pendulum": Pendulum,
    "mountaincar": MountainCar,
    "arm": PlanarArm,
    "double_pendulum": DoublePendulum,
}


def make_system(name: str, **kwargs: object) -> System:
    """Build a built-in system by name (``"cartpole"``, ``"pendulum"``, ...).

    Keyword arguments go to the system's constructor (``params``, ``dt``, ...).
    """
    try:
        cls = SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r}; choose one of {sorted(SYSTEMS)}") from None
    return cls(**kwargs)  # type: ignore[arg-type]
