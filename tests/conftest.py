"""Shared test fixtures: the built-in known-physics systems and hypothesis settings.

``known_system`` is parametrised over every built-in system (defaults, the
documented variants and a three-link arm); each system is built once per
session. ``Case.sample`` draws states from a box where the discrete map is
smooth (away from speed clips and walls) and controls within the bounds.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import settings

from gpcontrol.systems import (
    CartPole,
    CartPoleParams,
    ChainParams,
    DoublePendulum,
    MountainCar,
    Pendulum,
    PendulumParams,
    PlanarArm,
    System,
)

# The tests' tensors are tiny: with more than one intra-op thread, torch spends
# milliseconds synchronising threads on microsecond kernels (a 4x4 Cholesky
# took 10-20 ms instead of 2 us on a busy two-core machine).
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_blas_thread():
    """Small dense problems: BLAS threads only add contention on a shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(1):
        yield


settings.register_profile("default", deadline=None)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def three_link_params() -> ChainParams:
    """A three-link arm in the vertical plane with coupled friction (not a built-in default)."""
    return ChainParams(
        masses=(1.0, 0.8, 0.5),
        lengths=(0.4, 0.35, 0.3),
        com_distances=(0.2, 0.15, 0.12),
        inertias=(0.06, 0.04, 0.02),
        friction=((0.05, 0.01, 0.0), (0.01, 0.05, 0.01), (0.0, 0.01, 0.05)),
        gravity=9.81,
        base_angle=-math.pi / 2,
        actuated=(True, True, True),
        max_torque=(5.0, 5.0, 5.0),
    )


@dataclasses.dataclass(frozen=True)
class Case:
    """A system with a box of states ``[x_lo, x_hi]`` and controls where its map is smooth."""

    name: str
    system: System
    x_lo: np.ndarray
    x_hi: np.ndarray

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``size`` states ``(size, n)`` and in-bound controls ``(size, m)``."""
        s = self.system
        X = rng.uniform(self.x_lo, self.x_hi, size=(size, s.n))
        U = rng.uniform(s.u_low, s.u_high, size=(size, s.m))
        return X, U


_PI = math.pi
_CARTPOLE_BOX = ([-1.0, -_PI, -2.0, -6.0], [1.0, _PI, 2.0, 6.0])
_PENDULUM_BOX = ([-_PI, -6.0], [_PI, 6.0])
_ARM_BOX = ([-1.0, 0.2, -3.0, -3.0], [2.0, 2.6, 3.0, 3.0])

#: name -> (factory, smooth box of states).
SYSTEM_CASES: dict[str, tuple[Callable[[], System], tuple[list[float], list[float]]]] = {
    "cartpole": (CartPole, _CARTPOLE_BOX),
    "cartpole_kelly": (lambda: CartPole(CartPoleParams.kelly(), dt=0.02), _CARTPOLE_BOX),
    "cartpole_euler": (lambda: CartPole(integrator="euler", substeps=3), _CARTPOLE_BOX),
    "pendulum": (Pendulum, _PENDULUM_BOX),
    # |dtheta| <= 6 keeps the next speed below Gymnasium's clip of 8.
    "pendulum_gymnasium": (Pendulum.gymnasium, _PENDULUM_BOX),
    "pendulum_benchmark": (lambda: Pendulum(PendulumParams.benchmark(), dt=0.05), _PENDULUM_BOX),
    # |v| <= 0.05 and p in [-1, 0.4]: the next state stays off the speed clip and the walls.
    "mountaincar": (MountainCar, ([-1.0, -0.05], [0.4, 0.05])),
    "arm": (PlanarArm, _ARM_BOX),
    "double_pendulum": (DoublePendulum, ([-_PI, -_PI, -4.0, -4.0], [_PI, _PI, 4.0, 4.0])),
    "arm3": (
        lambda: PlanarArm(three_link_params()),
        ([-_PI, -_PI, -_PI, -3.0, -3.0, -3.0], [_PI, _PI, _PI, 3.0, 3.0, 3.0]),
    ),
}

_BUILT: dict[str, Case] = {}


def get_case(name: str) -> Case:
    """The session-wide instance of a named case (built on first use)."""
    if name not in _BUILT:
        factory, (lo, hi) = SYSTEM_CASES[name]
        _BUILT[name] = Case(name, factory(), np.array(lo), np.array(hi))
    return _BUILT[name]


@pytest.fixture(scope="session", params=sorted(SYSTEM_CASES))
def known_system(request: pytest.FixtureRequest) -> Case:
    """Every built-in system, with its smooth sampling box."""
    return get_case(request.param)
