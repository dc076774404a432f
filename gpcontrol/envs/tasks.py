r"""The built-in control tasks as ready-made :class:`~gpcontrol.envs.core.SystemEnv` s.

Each task fixes a system, a cost :math:`\ell`, a start distribution and a
horizon :math:`H` (the ``max_episode_steps`` of its registration):

* ``gpcontrol/CartPoleSwingUp-v0`` -- dt = 0.1 s, H = 40; saturating
  pole-tip cost :math:`1 - e^{-d^2/(2w^2)}`, w = 0.25 m.
* ``gpcontrol/PendulumSwingUp-v0`` -- dt = 0.1 s, H = 40; saturating tip
  cost, w = 0.5 m.
* ``gpcontrol/MountainCar-v0`` -- dt = 1, H = 999; :math:`\ell = 0.1 u^2`,
  the episode ends at the goal.
* ``gpcontrol/ArmReach-v0`` -- dt = 0.05 s, H = 40; saturating hand-to-target
  cost, w = 0.1 m.
* ``gpcontrol/DoublePendulumSwingUp-v0`` -- dt = 0.05 s, H = 60; saturating
  outer-tip cost, w = 0.5 m.

(:math:`d` is the distance of the tip from its upright/target position; the
exact cost definitions live in :mod:`gpcontrol.costs`.)

Sources. The cart-pole and pendulum follow the PILCO MATLAB package
(Deisenroth & Rasmussen, ICML 2011; ``settings_cp.m``: dt = 0.1, T = 4 s,
:math:`x_0 \sim \mathcal N(0, 0.1^2 I)`, width 0.25; ``settings_pendulum.m``:
dt = 0.1, T = 4 s, :math:`S_0 = 0.01 I`, width 0.5). The double pendulum takes
PILCO's ``settings_dp.m`` start spread (0.01 rad on angles, 0.1 rad/s on
rates), width 0.5 and 3 s horizon, at gpcontrol's dt = 0.05 s. The mountain
car is Gymnasium's ``MountainCarContinuous-v0`` (dynamics, start
:math:`p_0 \sim U(-0.6, -0.4)`, goal :math:`p \ge 0.45, v \ge 0`, 999 steps);
its reward is :math:`-0.1 u^2` of the *clipped* action, and Gymnasium's
+100 on reaching the goal is added only with ``goal_reward=100``. The arm is
benchmark problem (c) (Li & Todorov, ICINCO 2004) at dt = 0.05 s from
:math:`q_0 = (\pi/4, \pi/2)` towards the hand target :math:`(-0.2, 0.45)` m.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from gpcontrol.costs import QuadraticCost, SaturatingCost
from gpcontrol.envs.core import Array, SystemEnv
from gpcontrol.systems import (
    CartPole,
    CartPoleParams,
    ChainParams,
    DoublePendulum,
    MountainCar,
    MountainCarParams,
    Pendulum,
    PendulumParams,
    PlanarArm,
)

__all__ = [
    "CartPoleSwingUp",
    "PendulumSwingUp",
    "MountainCarEnv",
    "ArmReach",
    "DoublePendulumSwingUp",
]


class CartPoleSwingUp(SystemEnv):
    """PILCO's cart-pole swing-up: start hanging, bring the pole tip upright above ``p = 0``.

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
    params : CartPoleParams, optional
        Default :meth:`CartPoleParams.pilco`.
    dt : float
        Control period (PILCO: 0.1 s).
    x0_std : float or array_like, shape (4,)
        Start spread around hanging at rest (PILCO: 0.1).
    width : float
        Width of the saturating pole-tip cost (PILCO: 0.25 m).
    process_noise_std, measurement_noise_std : float or array_like, shape (4,)
        See :class:`~gpcontrol.envs.core.SystemEnv`.
    """

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        params: CartPoleParams | None = None,
        dt: float = 0.1,
        x0_std: ArrayLike = 0.1,
        width: float = 0.25,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
    ) -> None:
        system = CartPole(params, dt=dt)
        super().__init__(
            system,
            SaturatingCost.pole_tip(system, width=width),
            x0_mean=np.zeros(4),
            x0_std=x0_std,
            process_noise_std=process_noise_std,
            measurement_noise_std=measurement_noise_std,
            render_target=(0.0, system.params.pole_length),
            render_mode=render_mode,
        )


class PendulumSwingUp(SystemEnv):
    """PILCO's pendulum swing-up: start hanging, bring the tip upright.

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
    params : PendulumParams, optional
        Default :meth:`PendulumParams.pilco`.
    dt : float
        Control period (PILCO: 0.1 s).
    x0_std : float or array_like, shape (2,)
        Start spread around hanging at rest (PILCO: 0.1).
    width : float
        Width of the saturating tip cost (PILCO: 0.5 m).
    process_noise_std, measurement_noise_std : float or array_like, shape (2,)
    """

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        params: PendulumParams | None = None,
        dt: float = 0.1,
        x0_std: ArrayLike = 0.1,
        width: float = 0.5,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
    ) -> None:
        system = Pendulum(params, dt=dt)
        super().__init__(
            system,
            SaturatingCost.pendulum_tip(system, width=width),
            x0_mean=np.zeros(2),
            x0_std=x0_std,
            process_noise_std=process_noise_std,
            measurement_noise_std=measurement_noise_std,
            render_target=(0.0, system.params.length),
            render_mode=render_mode,
        )


class MountainCarEnv(SystemEnv):
    r"""Gymnasium's ``MountainCarContinuous-v0`` with a quadratic control cost.

    Dynamics, start :math:`p_0 \sim U(-0.6, -0.4),\ v_0 = 0` (same random draw
    as Gymnasium for the same seed) and goal :math:`p \ge 0.45,\ v \ge 0` are
    Gymnasium's. The cost is :math:`\ell = 0.1 u^2` (a
    :class:`~gpcontrol.costs.QuadraticCost` with ``R = 0.2``), so the reward is
    :math:`-0.1 \bar u^2` of the clipped action; Gymnasium squares the raw
    action and adds +100 at the goal, which ``goal_reward=100`` restores.

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
    params : MountainCarParams, optional
    goal_reward : float
        Bonus on the step that reaches the goal (Gymnasium: 100; default 0 so
        that the reward is exactly minus the cost).
    process_noise_std, measurement_noise_std : float or array_like, shape (2,)
    """

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        params: MountainCarParams | None = None,
        goal_reward: float = 0.0,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
    ) -> None:
        system = MountainCar(params)
        goal_p = system.params.goal_position

        def start(rng: np.random.Generator) -> Array:
            return np.array([rng.uniform(low=-0.6, high=-0.4), 0.0])

        def goal(x: Array) -> bool:
            return bool(x[0] >= goal_p and x[1] >= 0.0)

        super().__init__(
            system,
            QuadraticCost(np.zeros((2, 2)), np.array([[0.2]])),
            x0_sampler=start,
            process_noise_std=process_noise_std,
            measurement_noise_std=measurement_noise_std,
            goal=goal,
            goal_reward=goal_reward,
            render_mode=render_mode,
        )


class ArmReach(SystemEnv):
    r"""Li & Todorov's two-link arm reaching a hand target (benchmark problem (c)).

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
    params : ChainParams, optional
        Default :meth:`ChainParams.li_todorov`.
    dt : float
        Control period, s.
    target : array_like, shape (2,)
        Hand target in metres.
    x0_mean : array_like, shape (4,)
        Default :math:`(\pi/4, \pi/2, 0, 0)`.
    x0_std : float or array_like, shape (4,)
        Start spread (gpcontrol's choice: 0.02).
    width : float
        Width of the saturating hand-to-target cost, m.
    process_noise_std, measurement_noise_std : float or array_like, shape (4,)
    """

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        params: ChainParams | None = None,
        dt: float = 0.05,
        target: ArrayLike = (-0.2, 0.45),
        x0_mean: ArrayLike = (math.pi / 4, math.pi / 2, 0.0, 0.0),
        x0_std: ArrayLike = 0.02,
        width: float = 0.1,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
    ) -> None:
        system = PlanarArm(params, dt=dt)
        tgt = np.asarray(target, dtype=np.float64)
        super().__init__(
            system,
            SaturatingCost.end_effector(system, tgt, width=width),
            x0_mean=x0_mean,
            x0_std=x0_std,
            process_noise_std=process_noise_std,
            measurement_noise_std=measurement_noise_std,
            render_target=tgt,
            render_mode=render_mode,
        )


class DoublePendulumSwingUp(SystemEnv):
    """PILCO's double pendulum: start hanging, bring the outer tip upright.

    Parameters
    ----------
    render_mode : {None, "rgb_array"}
    params : ChainParams, optional
        Default :meth:`ChainParams.pilco_double_pendulum`.
    dt : float
        Control period, s.
    x0_std : float or array_like, shape (4,)
        Default ``(0.01, 0.01, 0.1, 0.1)`` (PILCO's ``settings_dp.m``).
    width : float
        Width of the saturating tip cost (PILCO: 0.5 m).
    process_noise_std, measurement_noise_std : float or array_like, shape (4,)
    """

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        params: ChainParams | None = None,
        dt: float = 0.05,
        x0_std: ArrayLike = (0.01, 0.01, 0.1, 0.1),
        width: float = 0.5,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
    ) -> None:
        system = DoublePendulum(params, dt=dt)
        tip = np.array([0.0, float(sum(system.params.lengths))])
        super().__init__(
            system,
            SaturatingCost.end_effector(system, tip, width=width),
            x0_mean=np.zeros(4),
            x0_std=x0_std,
            process_noise_std=process_noise_std,
            measurement_noise_std=measurement_noise_std,
            render_target=tip,
            render_mode=render_mode,
        )
