"""Oracles for the Gymnasium adapter: task extraction, action repeat, state map, errors.

The oracles are independent of the adapter: the environment stepped by hand
(the same seed and held actions), gpcontrol's exact ``Pendulum-v1`` map
(:meth:`Pendulum.gymnasium`, itself checked against Gymnasium in
``test_systems_gymnasium.py``) and the fields of a gpcontrol system.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.envs.adapter import LearningTask, TaskEnv, adapt, learning_task, pendulum_v1_state
from gpcontrol.models.gp import GPDynamics
from gpcontrol.rollout import random_policy, rollout
from gpcontrol.systems import Pendulum


def _pendulum_v1(**kwargs: Any) -> TaskEnv:
    defaults: dict[str, Any] = {
        "state_fn": pendulum_v1_state,
        "x0_mean": [math.pi, 0.0],
        "x0_std": [1.8, 0.6],
        "angle_indices": [0],
    }
    return adapt(gym.make("Pendulum-v1"), **(defaults | kwargs))


# ------------------------------------------------------------------ task extraction
def test_system_env_gives_its_task_automatically() -> None:
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    base: Any = env.unwrapped
    same, task = learning_task(env)
    assert same is env  # nothing to wrap: the learner steps the env itself
    system = base.system
    assert (task.n, task.m, task.dt) == (system.n, system.m, system.dt)
    assert task.angle_indices == tuple(system.angle_indices)
    np.testing.assert_array_equal(task.u_low, system.u_low)
    np.testing.assert_array_equal(task.u_high, system.u_high)
    np.testing.assert_array_equal(task.x0_mean, base.x0_mean)
    np.testing.assert_array_equal(task.x0_cov, np.diag(base.x0_std**2))
    assert task.horizon == env.spec.max_episode_steps  # type: ignore[union-attr]
    assert task.action_repeat == 1 and task.state_fn is None
    assert task.state_names == system.state_names
    assert task.control_names == system.control_names


def test_adapted_system_env_keeps_the_system_defaults_and_scales_dt() -> None:
    env = gym.make("gpcontrol/CartPoleSwingUp-v0")
    system: Any = env.unwrapped.system  # type: ignore[attr-defined]
    wrapped = adapt(env, action_repeat=2)
    task = wrapped.task
    assert task.dt == pytest.approx(2 * system.dt) and task.horizon == 40 // 2
    assert task.angle_indices == system.angle_indices
    assert learning_task(wrapped) == (wrapped, task)
    # the true state is passed on only when the state is not mapped
    assert "state" in wrapped.reset(seed=0)[1] and "state" in wrapped.step([0.0])[4]
    mapped = adapt(env, state_fn=lambda y, e: y[::-1], x0_mean=np.zeros(4))
    obs, info = mapped.reset(seed=0)
    np.testing.assert_array_equal(obs, env.unwrapped.state[::-1])  # type: ignore[attr-defined]
    assert "state" not in info and "state" not in mapped.step([0.0])[4]
    # a wrapper around the TaskEnv still finds it
    outer = gym.wrappers.RecordEpisodeStatistics(wrapped)
    assert learning_task(outer)[0] is wrapped


def test_user_arguments_describe_a_gymnasium_env() -> None:
    env = _pendulum_v1(action_repeat=3, horizon=40, state_names=["theta", "dtheta"])
    task = env.task
    assert (task.n, task.m) == (2, 1)
    assert task.dt == pytest.approx(3 * 0.05) and task.horizon == 40
    np.testing.assert_array_equal(task.u_high, [2.0])
    np.testing.assert_array_equal(task.x0_cov, np.diag([1.8**2, 0.6**2]))
    np.testing.assert_allclose(task.x0_std, [1.8, 0.6])
    assert env.observation_space.shape == (2,)
    # default horizon: the env's 200 steps in whole repeats
    assert _pendulum_v1(action_repeat=3).task.horizon == 200 // 3
    # learning on observations: the state is the observation, dt given by the user
    car = adapt(gym.make("MountainCarContinuous-v0"), x0_mean=[-0.5, 0.0], dt=1.0)
    assert car.task.n == 2 and car.task.horizon == 999 and car.task.angle_indices == ()
    obs, _ = car.reset(seed=3)
    raw, _ = gym.make("MountainCarContinuous-v0").reset(seed=3)
    np.testing.assert_array_equal(obs, raw)


def test_task_stands_in_for_a_system() -> None:
    task = _pendulum_v1().task
    gp = GPDynamics.for_system(task)
    assert (gp.n, gp.m, tuple(gp.angle_indices)) == (2, 1, (0,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.dt = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        task.x0_mean[0] = 1.0  # read-only


# ------------------------------------------------------------------ TaskEnv behaviour
def test_action_repeat_sums_rewards_and_matches_the_env_stepped_by_hand() -> None:
    """A whole Pendulum-v1 episode through repeat 3 equals 200 held steps of the raw env."""
    env = _pendulum_v1(action_repeat=3)
    traj = rollout(env, random_policy([-2.0], [2.0], seed=4), seed=11)
    assert traj.T == 67 and traj.truncated  # 66 full repeats, then 2 steps to the time limit
    raw = gym.make("Pendulum-v1")
    raw.reset(seed=11)
    rewards: list[float] = []
    states = [np.array(raw.unwrapped.state)]  # type: ignore[attr-defined]
    for u in np.repeat(traj.controls, 3, axis=0)[:200]:
        _, r, _, _, _ = raw.step(u)
        rewards.append(float(r))
        states.append(np.array(raw.unwrapped.state))  # type: ignore[attr-defined]
    assert traj.rewards.sum() == pytest.approx(sum(rewards), rel=1e-12)
    per_repeat = np.add.reduceat(np.array(rewards[:198]), np.arange(0, 198, 3))
    np.testing.assert_allclose(traj.rewards[:66], per_repeat)
    expected = np.array(states[0:199:3] + [states[200]]) + [math.pi, 0.0]  # t = 0, 3, .., 198, 200
    np.testing.assert_allclose(traj.states, expected, rtol=0, atol=1e-12)


def test_pendulum_state_follows_gpcontrols_exact_pendulum_v1_map() -> None:
    env = _pendulum_v1(action_repeat=2)
    x, _ = env.reset(seed=5)
    ours = Pendulum.gymnasium()
    rng = np.random.default_rng(5)
    for _ in range(30):
        u = rng.uniform(-2.0, 2.0, size=1)
        x_next, _, _, _, info = env.step(u)
        np.testing.assert_allclose(x_next, ours.step(ours.step(x, u), u), rtol=0, atol=1e-9)
        assert info["substeps"] == 2
        x = x_next
    # the observation is checked against the state it is read with
    obs = np.array([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="does not match"):
        pendulum_v1_state(obs, env)


# ------------------------------------------------------------------ errors name the argument
class _DiscreteObs(gym.Env[Any, np.ndarray]):
    observation_space: Any = gym.spaces.Discrete(3)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float64)


class _NoDt(gym.Env[np.ndarray, np.ndarray]):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(2), {}


def test_errors_name_the_argument() -> None:
    with pytest.raises(TypeError, match="observation_space"):
        adapt(_DiscreteObs(), x0_mean=[0.0], dt=0.1)
    with pytest.raises(TypeError, match="action_space"):
        adapt(gym.make("CartPole-v1"), x0_mean=np.zeros(4), dt=0.02)
    with pytest.raises(ValueError, match="x0_mean is required"):
        adapt(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match=r"x0_mean must have shape \(3,\)"):
        adapt(gym.make("Pendulum-v1"), x0_mean=[0.0, 0.0])
    with pytest.raises(ValueError, match="dt is required"):
        adapt(_NoDt(), x0_mean=[0.0, 0.0])
    with pytest.raises(ValueError, match="x0_std or x0_cov"):
        _pendulum_v1(x0_cov=np.eye(2))
    with pytest.raises(ValueError, match="x0_cov"):
        _pendulum_v1(x0_std=None, x0_cov=[[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="angle_indices"):
        _pendulum_v1(angle_indices=[2])
    with pytest.raises(ValueError, match="action_repeat"):
        _pendulum_v1(action_repeat=0)
    with pytest.raises(TypeError, match="state_fn"):
        _pendulum_v1(state_fn="theta")
    with pytest.raises(TypeError, match="adapt"):
        learning_task(gym.make("Pendulum-v1"))
    wrong = adapt(gym.make("Pendulum-v1"), state_fn=lambda y, env: y[:1], x0_mean=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"state_fn\(observation, env\) must return shape \(2,\)"):
        wrong.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        _pendulum_v1().step(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        LearningTask(1, 1, 0.1, (), np.array([-np.inf]), np.ones(1), np.zeros(1), np.zeros((1, 1)))


def test_pilco_refuses_a_raw_gymnasium_env_before_any_work() -> None:
    from gpcontrol.algorithms.pilco import pilco

    with pytest.raises(TypeError, match="adapt"):
        pilco(gym.make("Pendulum-v1"), cost=None)


def test_pilco_runs_one_trial_on_an_adapted_env(tmp_path: Any) -> None:
    """The loop accepts the adapter: shapes of its data follow the task (repeat 3, H = 5)."""
    from gpcontrol.algorithms.pilco import PILCOOptions, pilco
    from gpcontrol.costs import SaturatingCost

    torch.set_num_threads(1)
    env = _pendulum_v1(action_repeat=3, horizon=5)
    cost = SaturatingCost.pendulum_tip(Pendulum.gymnasium(), width=0.5)
    opts = PILCOOptions(
        max_trials=1, basis=3, max_line_searches=2, policy_restarts=0, gp_max_iter=5
    )
    result = pilco(env, cost, options=opts, seed=0, out=tmp_path)
    assert [t.states.shape for t in result.trajectories] == [(6, 2), (6, 2)]
    assert result.trials[0].interaction_seconds == pytest.approx(2 * 5 * 0.15)
