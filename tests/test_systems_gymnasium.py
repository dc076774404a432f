"""Faithfulness to code no one here wrote: Gymnasium's own classic-control envs.

``Pendulum.gymnasium()`` must reproduce ``Pendulum-v1`` and
``MountainCar.gymnasium()`` must reproduce ``MountainCarContinuous-v0``, step
for step, including the speed clips, the mountain car's track ends and its
inelastic left wall. We set the Gymnasium env's internal state, step it with a
random action, and compare with our discrete map (the env clips the action to
its bounds, so we clip before our ``step``; our pendulum angle is
``theta = theta_gym + pi``).

``MountainCarContinuous-v0`` stores its state as float32 after every step, so
against the untouched env our float64 step must round to exactly the env's
float32 state; a second test runs Gymnasium's own ``step`` with that final cast
disabled (its module's ``np.float32`` replaced by float64) and compares to 1e-12.
"""

from __future__ import annotations

import gymnasium as gym
import gymnasium.envs.classic_control.continuous_mountain_car as gym_mountain_car
import numpy as np
import pytest

from gpcontrol.systems import MountainCar, Pendulum

N_STEPS = 1000


# ------------------------------------------------------------------ Pendulum-v1
def _pendulum_inputs(rng):
    """1,000 random states and actions plus a driven trajectory's worth of states."""
    th = rng.uniform(-3 * np.pi, 3 * np.pi, N_STEPS)  # the env does not wrap its angle
    thdot = rng.uniform(-8.0, 8.0, N_STEPS)
    u = rng.uniform(-4.0, 4.0, N_STEPS)  # beyond the bound of 2: the env clips
    return np.column_stack([th, thdot]), u[:, None]


def _step_gym_pendulum(env, state, action):
    env.state = np.array(state, dtype=np.float64)
    env.step(np.array(action, dtype=np.float64))
    return np.array(env.state, dtype=np.float64)


def test_pendulum_matches_gymnasium_on_random_states():
    env = gym.make("Pendulum-v1").unwrapped
    ours = Pendulum.gymnasium()
    S, U = _pendulum_inputs(np.random.default_rng(20))
    theirs = np.stack([_step_gym_pendulum(env, s, u) for s, u in zip(S, U, strict=True)])
    x = S + [np.pi, 0.0]
    mine = ours.step(x, ours.clip_control(U)) - [np.pi, 0.0]
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)
    # The sample exercises the speed clip and the action clip in both directions.
    assert (theirs[:, 1] == 8.0).sum() >= 10 and (theirs[:, 1] == -8.0).sum() >= 10
    assert (np.abs(U) > 2).sum() >= 400


def test_pendulum_matches_gymnasium_along_a_trajectory():
    """A 1,000-step walk driven by the env, with held random torques (reaches top speed)."""
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=21)
    ours = Pendulum.gymnasium()
    rng = np.random.default_rng(21)
    u = np.array([0.0])
    clipped = 0
    for t in range(N_STEPS):
        if t % 10 == 0:
            u = rng.choice([-3.0, -2.0, 2.0, 3.0, rng.uniform(-3, 3)], size=1)
        state = np.array(env.state, dtype=np.float64)
        env.step(u)
        expected = np.array(env.state)
        got = ours.step(state + [np.pi, 0.0], ours.clip_control(u)) - [np.pi, 0.0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=f"step {t}")
        clipped += abs(expected[1]) == 8.0
    assert clipped >= 5


# ----------------------------------------------------- MountainCarContinuous-v0
TARGETED = np.array(
    [
        # p, v, action: what it exercises
        [-1.19, -0.05, -1.0],  # runs into the left wall: p clipped, v zeroed
        [-1.2, 0.0, -1.0],  # rests on the wall: the slope beats full left throttle
        [-1.2, -0.07, -5.0],  # at the wall at top speed, action beyond its bound
        [-1.18, -0.01, 1.0],  # near the wall but not reaching it
        [0.59, 0.06, 1.0],  # right track end: p clipped, v kept
        [-0.5, 0.069, 1.0],  # speed clip at +0.07
        [-0.5, -0.069, -1.0],  # speed clip at -0.07
        [0.3, 0.07, 2.0],  # already at top speed, action clipped
        [-0.5236, 0.0, 0.0],  # valley floor, rest
    ]
)


def _mountain_car_inputs(rng):
    p = rng.uniform(-1.2, 0.6, N_STEPS)
    v = rng.uniform(-0.07, 0.07, N_STEPS)
    a = rng.uniform(-2.0, 2.0, N_STEPS)
    return np.vstack([np.column_stack([p, v, a]), TARGETED])


def _step_gym_mountain_car(env, p, v, a):
    env.state = np.array([p, v], dtype=np.float64)
    env.step(np.array([a], dtype=np.float64))
    return np.array(env.state, dtype=np.float64)


def _assert_coverage(inputs, expected):
    p_in, (p, v) = inputs[:, 0], expected.T
    wall = np.isclose(p, -1.2, rtol=0, atol=1e-7) & (p_in > -1.2)
    assert (wall & (v == 0.0)).sum() >= 5  # runs into the left wall, speed zeroed
    assert np.isclose(p, 0.6, rtol=0, atol=1e-7).sum() >= 5  # right end
    assert np.isclose(np.abs(v), 0.07, rtol=0, atol=1e-9).sum() >= 10  # speed clip
    assert (np.abs(inputs[:, 2]) > 1).sum() >= 100  # action clip


def test_mountain_car_matches_gymnasium_float32_state():
    """Against the untouched env: our float64 step rounds to exactly its float32 state."""
    env = gym.make("MountainCarContinuous-v0").unwrapped
    ours = MountainCar.gymnasium()
    inputs = _mountain_car_inputs(np.random.default_rng(22))
    theirs = np.stack([_step_gym_mountain_car(env, *row) for row in inputs])
    mine = ours.step(inputs[:, :2], ours.clip_control(inputs[:, 2:]))
    np.testing.assert_array_equal(mine.astype(np.float32), theirs.astype(np.float32))
    _assert_coverage(inputs, theirs)


class _NumpyWithoutFloat32:
    """NumPy, except that ``float32`` is float64 (disables the env's final cast)."""

    float32 = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


def test_mountain_car_matches_gymnasium_in_float64(monkeypatch):
    env = gym.make("MountainCarContinuous-v0").unwrapped
    monkeypatch.setattr(gym_mountain_car, "np", _NumpyWithoutFloat32())
    ours = MountainCar.gymnasium()
    inputs = _mountain_car_inputs(np.random.default_rng(23))
    theirs = np.stack([_step_gym_mountain_car(env, *row) for row in inputs])
    assert env.state.dtype == np.float64
    mine = ours.step(inputs[:, :2], ours.clip_control(inputs[:, 2:]))
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)
    _assert_coverage(inputs, theirs)
    # The targeted rows, exactly: wall hit zeroes the speed, the right end keeps it.
    last = mine[-len(TARGETED) :]
    np.testing.assert_array_equal(last[[0, 2]], [[-1.2, 0.0], [-1.2, 0.0]])
    assert last[1, 0] > -1.2 and last[1, 1] > 0
    assert last[4, 0] == 0.6 and last[4, 1] > 0


@pytest.mark.parametrize("float64", [True, False], ids=["float64", "float32"])
def test_mountain_car_matches_gymnasium_along_a_trajectory(float64, monkeypatch):
    """A 1,000-step walk driven by the env: mostly energy pumping ``a = 1.5 sign(v)``
    (reaches top speed and both track ends; full left throttle for 40 steps after
    reaching the right end), sometimes a random action.

    With the env's float32 state Gymnasium computes partly in float32 (``3 *
    position`` always; the velocity and position updates when the clipped action
    is a Python float), so there we allow the float32 rounding of those terms;
    with the cast disabled the walk must agree to 1e-12.
    """
    if float64:
        monkeypatch.setattr(gym_mountain_car, "np", _NumpyWithoutFloat32())
    env = gym.make("MountainCarContinuous-v0").unwrapped
    env.reset(seed=24)
    ours = MountainCar.gymnasium()
    rng = np.random.default_rng(24)
    states, actions, nexts = [], [], []
    reverse = 0
    for _ in range(N_STEPS):
        p, v = (float(z) for z in env.state)
        reverse = 40 if p >= 0.6 - 1e-6 else max(reverse - 1, 0)
        pump = -1.5 if reverse else 1.5 * (np.sign(v) if v != 0 else rng.choice([-1.0, 1.0]))
        a = np.array([pump if rng.random() < 0.8 else rng.uniform(-1.5, 1.5)])
        states.append(np.array(env.state, dtype=np.float64))
        env.step(a)
        actions.append(a.copy())
        nexts.append(np.array(env.state, dtype=np.float64))
    X, U, Y = np.array(states), np.array(actions), np.array(nexts)
    mine = ours.step(X, ours.clip_control(U))
    if float64:
        np.testing.assert_allclose(mine, Y, rtol=0, atol=1e-12)
    else:  # float32 rounding of the result, of the new velocity, and of 3 * position
        spacing = lambda z: np.spacing(np.abs(z).astype(np.float32)).astype(np.float64)
        bound = spacing(Y) + spacing(Y[:, 1:]) + 0.0025 * spacing(3 * X[:, :1])
        np.testing.assert_array_less(np.abs(mine - Y), bound)
    wall = np.isclose(Y[:, 0], -1.2, rtol=0, atol=1e-7)
    assert (wall & (Y[:, 1] == 0) & (X[:, 0] > -1.2)).sum() >= 2  # the walk hits the left wall
    assert np.isclose(np.abs(Y[:, 1]), 0.07, rtol=0, atol=1e-9).any()  # and reaches top speed
