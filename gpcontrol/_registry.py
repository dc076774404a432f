"""Gymnasium registration of gpcontrol's tasks, light enough to run on ``import gpcontrol``.

Only Gymnasium is imported here; the environment classes (and torch, which the
costs use) load when ``gymnasium.make`` first builds one.
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "register_envs"]

#: Registered environment id of each built-in system (keys of ``gpcontrol.systems.SYSTEMS``).
ENV_IDS: dict[str, str] = {
    "cartpole": "gpcontrol/CartPoleSwingUp-v0",
    "pendulum": "gpcontrol/PendulumSwingUp-v0",
    "mountaincar": "gpcontrol/MountainCar-v0",
    "arm": "gpcontrol/ArmReach-v0",
    "double_pendulum": "gpcontrol/DoublePendulumSwingUp-v0",
}

_ENTRY_POINTS: dict[str, tuple[str, int]] = {
    "gpcontrol/CartPoleSwingUp-v0": ("gpcontrol.envs.tasks:CartPoleSwingUp", 40),
    "gpcontrol/PendulumSwingUp-v0": ("gpcontrol.envs.tasks:PendulumSwingUp", 40),
    "gpcontrol/MountainCar-v0": ("gpcontrol.envs.tasks:MountainCarEnv", 999),
    "gpcontrol/ArmReach-v0": ("gpcontrol.envs.tasks:ArmReach", 40),
    "gpcontrol/DoublePendulumSwingUp-v0": ("gpcontrol.envs.tasks:DoublePendulumSwingUp", 60),
}


def register_envs() -> None:
    """Register the built-in tasks with Gymnasium; ids already registered are left alone."""
    for env_id, (entry_point, steps) in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)
