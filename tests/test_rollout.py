"""Rollouts and datasets.

Oracles: a hand-written loop over ``env.step`` and over the raw system map;
differences recomputed from the stored episodes; a save/load round trip that
must be bit-exact; Monte Carlo moments of the random policy.
"""

from __future__ import annotations

import dataclasses
import json
import math

import gymnasium as gym
import numpy as np
import pytest

import gpcontrol
import gpcontrol.envs  # noqa: F401 - registers the environments
from gpcontrol.costs import QuadraticCost
from gpcontrol.envs import SystemEnv
from gpcontrol.rollout import Dataset, Trajectory, random_policy, rollout
from gpcontrol.systems import CartPole, Pendulum

K = np.array([[2.0, -3.0, 1.5, -0.5]])
k = np.array([0.3])


def linear_policy(x: np.ndarray, t: int) -> np.ndarray:
    return K @ x + k


def test_rollout_matches_manual_loop_and_system_map() -> None:
    env = gym.make("gpcontrol/CartPoleSwingUp-v0")
    traj = rollout(env, linear_policy, seed=4)

    # Manual loop over the same environment.
    obs, info = env.reset(seed=4)
    X, U, R = [obs], [], []
    done = False
    while not done:
        u = np.clip(K @ obs + k, -10.0, 10.0)
        obs, r, term, trunc, info = env.step(u)
        X.append(obs)
        U.append(u)
        R.append(r)
        done = term or trunc
    np.testing.assert_array_equal(traj.states, np.array(X))
    np.testing.assert_array_equal(traj.controls, np.array(U))
    np.testing.assert_array_equal(traj.rewards, np.array(R))
    assert traj.T == 40 and traj.truncated and not traj.terminated
    assert traj.dt == 0.1 and traj.seed == 4
    assert traj.state_names == ("p", "theta", "dp", "dtheta")

    # The raw system map from the same start, with the policy's clipped control.
    system = CartPole(dt=0.1)
    x = traj.states[0]
    for t in range(traj.T):
        u = np.clip(K @ x + k, -10.0, 10.0)
        np.testing.assert_array_equal(traj.controls[t], u)
        x = system.step(x, u)
        np.testing.assert_array_equal(traj.states[t + 1], x)

    # Costs: -rewards, then the terminal cost of the final state.
    cost = env.unwrapped.cost
    np.testing.assert_array_equal(traj.costs[:-1], -traj.rewards)
    assert traj.costs[-1] == float(cost.l_T(traj.states[-1]))
    assert traj.total_cost == pytest.approx(cost.total(traj.states, traj.controls), rel=1e-12)
    np.testing.assert_array_equal(traj.true_states, traj.states)


def test_one_argument_policy_and_time_indexed_policy() -> None:
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    U_plan = np.linspace(-4.0, 4.0, 40)[:, None]  # beyond the 2.5 N m bound at both ends
    traj = rollout(env, lambda x, t: U_plan[t], seed=0)
    np.testing.assert_array_equal(traj.controls, np.clip(U_plan, -2.5, 2.5))
    traj1 = rollout(env, lambda x: -2.0 * x[1:], seed=0, steps=7)
    assert traj1.T == 7 and traj1.truncated and not traj1.terminated
    np.testing.assert_allclose(
        traj1.controls[:, 0], np.clip(-2.0 * traj1.states[:-1, 1], -2.5, 2.5)
    )


def test_rollout_stops_at_termination() -> None:
    env = gym.make("gpcontrol/MountainCar-v0")
    traj = rollout(env, lambda x: np.sign(x[1:]) + (x[1:] == 0), seed=0)
    assert traj.terminated and not traj.truncated and traj.T < 999
    assert traj.states[-1, 0] >= 0.45
    assert traj.states.shape == (traj.T + 1, 2) and traj.costs.shape == (traj.T + 1,)


def test_rollout_of_a_foreign_gymnasium_env() -> None:
    env = gym.make("Pendulum-v1")
    traj = rollout(env, lambda x: np.array([0.5]), seed=1, steps=12)
    assert traj.states.dtype == np.float64 and traj.states.shape == (13, 3)
    assert traj.true_states is None and traj.dt == 0.05  # Pendulum-v1 exposes its dt
    assert traj.costs[-1] == 0.0
    np.testing.assert_array_equal(traj.costs[:-1], -traj.rewards)
    # Same as Gymnasium's own loop.
    obs, _ = env.reset(seed=1)
    for t in range(12):
        obs, r, *_ = env.step(np.array([0.5], dtype=np.float32))
        np.testing.assert_array_equal(traj.states[t + 1], obs.astype(np.float64))
        assert traj.rewards[t] == pytest.approx(float(r))


def test_rollout_validation() -> None:
    env = SystemEnv(Pendulum(), QuadraticCost(np.eye(2), np.eye(1)))
    with pytest.raises(ValueError, match="steps is required"):
        rollout(env, lambda x: np.zeros(1))
    with pytest.raises(ValueError, match="shape"):
        rollout(env, lambda x: np.zeros(2), steps=3)
    with pytest.raises(ValueError, match="non-finite"):
        rollout(env, lambda x: np.array([np.nan]), steps=3)
    with pytest.raises(ValueError, match="steps"):
        rollout(env, lambda x: np.zeros(1), steps=-1)
    with pytest.raises(TypeError, match="Box"):
        rollout(gym.make("CartPole-v1"), lambda x: 0, steps=3)


def test_trajectory_is_frozen_and_validated() -> None:
    traj = Trajectory(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(3), np.zeros(2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        traj.seed = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        traj.states[0, 0] = 1.0
    with pytest.raises(ValueError, match="costs"):
        Trajectory(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="T\\+1"):
        Trajectory(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros(4), np.zeros(3))


# --------------------------------------------------------------------------- Dataset
def _trajectories(n_episodes: int = 3) -> list[Trajectory]:
    env = gym.make("gpcontrol/PendulumSwingUp-v0", process_noise_std=0.01)
    base = env.unwrapped
    out = []
    for e in range(n_episodes):
        pol = random_policy(base.system.u_low, base.system.u_high, seed=e)
        out.append(rollout(env, pol, seed=e, steps=10 + 5 * e))
    return out


def test_dataset_inputs_targets_and_boundaries() -> None:
    trajs = _trajectories()
    data = Dataset.for_system(gym.make("gpcontrol/PendulumSwingUp-v0").unwrapped.system)
    for tr in trajs:
        data.add(tr)
    assert len(data) == 10 + 15 + 20 and data.n_episodes == 3
    np.testing.assert_array_equal(data.episode_bounds, [0, 10, 25, 45])
    for e, tr in enumerate(trajs):
        rows = slice(data.episode_bounds[e], data.episode_bounds[e + 1])
        for t in range(tr.T):
            i = rows.start + t
            np.testing.assert_array_equal(
                data.inputs[i], np.concatenate([tr.states[t], tr.controls[t]])
            )
            np.testing.assert_array_equal(data.targets[i], tr.states[t + 1] - tr.states[t])
            np.testing.assert_array_equal(data.next_states[i], tr.states[t + 1])
        X, U = data.episode(e)
        np.testing.assert_array_equal(X, tr.states)
        np.testing.assert_array_equal(U, tr.controls)


def test_dataset_round_trip_is_exact(tmp_path) -> None:  # noqa: ANN001
    data = Dataset.for_system(Pendulum(dt=0.1))
    for tr in _trajectories():
        data.add(tr)
    path = data.save(tmp_path / "pend")
    assert path.suffix == ".npz" and path.exists()
    back = Dataset.load(path)
    for attr in ("inputs", "targets", "states", "controls", "next_states", "episode_bounds"):
        assert np.array_equal(getattr(back, attr), getattr(data, attr)), attr
    assert back.state_names == data.state_names and back.control_names == data.control_names
    assert back.system_name == "pendulum" and back.dt == 0.1
    header = back.header()
    assert header["gpcontrol_version"] == gpcontrol.__version__
    assert header["transitions"] == 45 and header["episodes"] == 3


def test_dataset_add_validation() -> None:
    data = Dataset(2, 1, state_names=("a", "b"))
    with pytest.raises(ValueError, match="states"):
        data.add((np.zeros((4, 3)), np.zeros((3, 1))))
    with pytest.raises(ValueError, match="controls"):
        data.add((np.zeros((4, 2)), np.zeros((4, 1))))
    with pytest.raises(ValueError, match="no transitions"):
        data.add((np.zeros((1, 2)), np.zeros((0, 1))))
    with pytest.raises(ValueError, match="state_names"):
        data.add(Trajectory(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(3), np.zeros(2)))
    with pytest.raises(TypeError):
        data.add(np.zeros((3, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        Dataset(0, 1)
    with pytest.raises(ValueError, match="state_names"):
        Dataset(2, 1, state_names=("a",))


def _rewrite(path, **changes) -> None:  # noqa: ANN001
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["header"][()]))
    for key, value in changes.items():
        if key in header:
            header[key] = value
        elif value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format": "something else"}, "format"),
        ({"format_version": 99}, "format_version"),
        ({"transitions": 7}, "transitions"),
        ({"controls": np.zeros((3, 1))}, "controls"),
        ({"states": np.zeros((5, 2), dtype=np.float32)}, "float64"),
        ({"episode_lengths": None}, "missing"),
        ({"n": 3}, "state_names must have 3"),
        ({"n": 3, "state_names": ["a", "b", "c"]}, "array states has shape"),
        ({"state_names": ["only_one"]}, "state_names"),
    ],
)
def test_dataset_load_validates_header(tmp_path, changes: dict, match: str) -> None:  # noqa: ANN001
    data = Dataset(2, 1)
    data.add((np.arange(10.0).reshape(5, 2), np.ones((4, 1))))
    path = data.save(tmp_path / "d.npz")
    _rewrite(path, **changes)
    with pytest.raises(ValueError, match=match):
        Dataset.load(path)


def test_dataset_load_missing_file(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(FileNotFoundError):
        Dataset.load(tmp_path / "nothing.npz")


def test_random_policy_is_seeded_uniform() -> None:
    lo, hi = np.array([-1.0, 0.0]), np.array([3.0, 0.5])
    a, b = random_policy(lo, hi, seed=3), random_policy(lo, hi, seed=3)
    N = 4000
    S = np.array([a(None, t) for t in range(N)])
    np.testing.assert_array_equal(S[:5], np.array([b(None, t) for t in range(5)]))
    assert np.all(S >= lo) and np.all(S <= hi)
    # Uniform: mean (lo+hi)/2, sd (hi-lo)/sqrt(12); 4 standard errors.
    sd = (hi - lo) / math.sqrt(12)
    assert np.all(np.abs(S.mean(axis=0) - (lo + hi) / 2) < 4 * sd / math.sqrt(N))
    with pytest.raises(ValueError, match="low"):
        random_policy([1.0], [0.0])


def test_unnamed_dataset_adopts_the_first_trajectory_names() -> None:
    trajs = _trajectories(2)
    data = Dataset.from_trajectories(trajs)
    assert data.state_names == ("theta", "dtheta") and data.dt == 0.1
    assert len(data) == 25
    foreign = Trajectory(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="state_names"):
        data.add(foreign)
