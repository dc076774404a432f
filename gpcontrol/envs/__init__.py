"""Gymnasium environments built from gpcontrol's systems.

Importing :mod:`gpcontrol` registers the built-in tasks with Gymnasium (once,
even if imported again; see :mod:`gpcontrol._registry`), so that
``gymnasium.make("gpcontrol/CartPoleSwingUp-v0")`` works:

====================================  ===========================  =====
id                                    class                        steps
====================================  ===========================  =====
``gpcontrol/CartPoleSwingUp-v0``      :class:`CartPoleSwingUp`     40
``gpcontrol/PendulumSwingUp-v0``      :class:`PendulumSwingUp`     40
``gpcontrol/MountainCar-v0``          :class:`MountainCarEnv`      999
``gpcontrol/ArmReach-v0``             :class:`ArmReach`            40
``gpcontrol/DoublePendulumSwingUp-v0`` :class:`DoublePendulumSwingUp` 60
====================================  ===========================  =====

A user's own system becomes an environment with :func:`make_env`; any other
Gymnasium environment with ``Box`` spaces becomes a learning task (for
:func:`~gpcontrol.algorithms.pilco.pilco`) with :func:`adapt`.
"""

from __future__ import annotations

from gpcontrol._registry import ENV_IDS, register_envs
from gpcontrol.envs.adapter import LearningTask, TaskEnv, adapt, learning_task, pendulum_v1_state
from gpcontrol.envs.core import SystemEnv, make_env
from gpcontrol.envs.rendering import Renderer, draw_state, view_limits
from gpcontrol.envs.tasks import (
    ArmReach,
    CartPoleSwingUp,
    DoublePendulumSwingUp,
    MountainCarEnv,
    PendulumSwingUp,
)

__all__ = [
    "SystemEnv",
    "make_env",
    "CartPoleSwingUp",
    "PendulumSwingUp",
    "MountainCarEnv",
    "ArmReach",
    "DoublePendulumSwingUp",
    "Renderer",
    "draw_state",
    "view_limits",
    "ENV_IDS",
    "register_envs",
    "LearningTask",
    "TaskEnv",
    "adapt",
    "learning_task",
    "pendulum_v1_state",
]
