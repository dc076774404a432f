"""Gymnasium environments: API contract, determinism, clipping, noise, reward = -cost, rendering.

Oracles: Gymnasium's own ``check_env``; the raw system map (the noise-free env
must reproduce ``system.step`` bit for bit); Gymnasium's
``MountainCarContinuous-v0`` for the mountain-car task; sample moments of the
noise against their standard errors; an independent formula for the
saturating pole-tip cost.
"""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gpcontrol.envs as genvs
from gpcontrol.costs import QuadraticCost
from gpcontrol.envs import ENV_IDS, SystemEnv, make_env
from gpcontrol.systems import CartPole, Pendulum, PlanarArm

IDS = sorted(ENV_IDS.values())

# Gymnasium's advice for Box spaces that are not [-1, 1] or unbounded; our spaces
# are physical by design.
_EXPECTED_WARNINGS = ("symmetric and normalized", "infinity")


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes_with_rendering(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    unexpected = [
        str(w.message) for w in caught if not any(s in str(w.message) for s in _EXPECTED_WARNINGS)
    ]
    assert unexpected == []
    assert env.observation_space.dtype == np.float64
    assert env.action_space.dtype == np.float64
    base = env.unwrapped
    np.testing.assert_array_equal(env.action_space.low, base.system.u_low)
    np.testing.assert_array_equal(env.action_space.high, base.system.u_high)
    env.close()


def test_registration_is_idempotent() -> None:
    before = {k: gym.registry[k] for k in IDS}
    genvs.register_envs()
    genvs.register_envs()
    assert {k: gym.registry[k] for k in IDS} == before
    assert gym.registry["gpcontrol/CartPoleSwingUp-v0"].max_episode_steps == 40


def _episode(env: gym.Env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    X, R = [obs], []
    for u in actions:
        obs, r, term, trunc, _ = env.step(u)
        X.append(obs)
        R.append(r)
        if term or trunc:
            break
    return np.array(X), np.array(R)


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_episodes_are_deterministic(env_id: str) -> None:
    noise = {"process_noise_std": 0.01, "measurement_noise_std": 0.02}
    env_a, env_b = gym.make(env_id, **noise), gym.make(env_id, **noise)
    rng = np.random.default_rng(0)
    actions = rng.uniform(
        env_a.action_space.low, env_a.action_space.high, size=(15, env_a.action_space.shape[0])
    )
    Xa, Ra = _episode(env_a, 7, actions)
    Xb, Rb = _episode(env_b, 7, actions)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(Ra, Rb)
    Xc, _ = _episode(env_a, 8, actions)
    assert not np.array_equal(Xa[0], Xc[0])


def _stop(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Loop reference of the inelastic stop: clip q_i, zero dq_i when it points outwards."""
    y = x.copy()
    k = len(x) // 2
    for i in range(len(x)):
        y[i] = min(max(y[i], lo[i]), hi[i])
    for i in range(k):
        if (y[i] <= lo[i] and y[k + i] < 0) or (y[i] >= hi[i] and y[k + i] > 0):
            y[k + i] = 0.0
    return y


@pytest.mark.parametrize("env_id", IDS)
def test_noise_free_env_reproduces_the_system_map(env_id: str) -> None:
    env = gym.make(env_id)
    base = env.unwrapped
    lo, hi = base.system.x_low, base.system.x_high
    obs, info = env.reset(seed=3)
    x = info["state"]
    np.testing.assert_array_equal(obs, x)
    rng = np.random.default_rng(1)
    for _ in range(10):
        u = rng.uniform(base.system.u_low, base.system.u_high)
        obs, reward, term, _, info = env.step(u)
        x_ref = _stop(base.system.step(x, u), lo, hi)
        np.testing.assert_array_equal(obs, x_ref)
        assert reward == -float(base.cost.l(x, u))  # reward = -cost at (x_t, u_t)
        x = x_ref
        if term:
            break


def test_actions_are_clipped() -> None:
    env = gym.make("gpcontrol/ArmReach-v0")
    high = env.action_space.high
    low = env.action_space.low
    env.reset(seed=0)
    obs_big, r_big, *_, info_big = env.step(np.array([50.0, -50.0]))
    env.reset(seed=0)
    obs_lim, r_lim, *_, info_lim = env.step(np.array([high[0], low[1]]))
    np.testing.assert_array_equal(obs_big, obs_lim)
    assert r_big == r_lim
    np.testing.assert_array_equal(info_big["u"], [high[0], low[1]])


def test_bad_actions_are_rejected() -> None:
    env = gym.make("gpcontrol/CartPoleSwingUp-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan]))
    fresh = SystemEnv(Pendulum(), QuadraticCost(np.eye(2), np.eye(1)))
    with pytest.raises(gym.error.ResetNeeded):
        fresh.step(np.zeros(1))


def test_reward_is_minus_saturating_tip_cost() -> None:
    """Independent formula: r = -(1 - exp(-|tip - (0, l)|^2 / (2 * 0.25^2)))."""
    env = gym.make("gpcontrol/CartPoleSwingUp-v0")
    system = env.unwrapped.system
    l = system.params.pole_length
    _, info = env.reset(seed=5)
    rng = np.random.default_rng(2)
    for _ in range(20):
        x = info["state"]
        u = rng.uniform(-10, 10, size=1)
        _, reward, _, _, info = env.step(u)
        tip = np.array([x[0] + l * math.sin(x[1]), -l * math.cos(x[1])])
        d2 = float(np.sum((tip - np.array([0.0, l])) ** 2))
        assert reward == pytest.approx(-(1.0 - math.exp(-d2 / (2 * 0.25**2))), abs=1e-12)


def test_start_distribution_matches_pilco_gaussian() -> None:
    env = gym.make("gpcontrol/CartPoleSwingUp-v0")
    env.reset(seed=0)
    N = 3000
    X0 = np.array([env.reset()[0] for _ in range(N)])
    sigma = 0.1
    # mean: SE sigma / sqrt(N); std: SE ~ sigma / sqrt(2N)
    assert np.all(np.abs(X0.mean(axis=0)) < 4 * sigma / math.sqrt(N))
    assert np.all(np.abs(X0.std(axis=0, ddof=1) - sigma) < 4 * sigma / math.sqrt(2 * N))


def test_process_and_measurement_noise_statistics() -> None:
    system = Pendulum()
    sw, sv = np.array([0.05, 0.2]), np.array([0.1, 0.03])
    env = SystemEnv(
        system, QuadraticCost(np.eye(2), np.eye(1)), process_noise_std=sw, measurement_noise_std=sv
    )
    x0, u = np.array([0.4, -0.3]), np.array([0.7])
    x_mean = system.step(x0, u)
    env.reset(seed=11)
    N = 3000
    W, V0, V1 = np.empty((N, 2)), np.empty((N, 2)), np.empty((N, 2))
    for i in range(N):
        obs0, info0 = env.reset(options={"x0": x0})
        obs1, _, _, _, info1 = env.step(u)
        np.testing.assert_array_equal(info0["state"], x0)
        W[i] = info1["state"] - x_mean
        V0[i] = obs0 - info0["state"]
        V1[i] = obs1 - info1["state"]
    for E, s in ((W, sw), (V0, sv), (V1, sv)):
        assert np.all(np.abs(E.mean(axis=0)) < 4 * s / math.sqrt(N))
        assert np.all(np.abs(E.std(axis=0, ddof=1) - s) < 4 * s / math.sqrt(2 * N))
    # Independent components: sample correlation within 4 / sqrt(N) of zero.
    assert abs(np.corrcoef(W[:, 0], W[:, 1])[0, 1]) < 4 / math.sqrt(N)
    assert abs(np.corrcoef(W[:, 0], V1[:, 0])[0, 1]) < 4 / math.sqrt(N)


def test_measurement_noise_unbounds_observation_space() -> None:
    env = gym.make("gpcontrol/MountainCar-v0")
    assert np.isfinite(env.observation_space.low).all()
    noisy = gym.make("gpcontrol/MountainCar-v0", measurement_noise_std=[0.01, 0.0])
    assert noisy.observation_space.low[0] == -np.inf
    assert noisy.observation_space.low[1] == env.observation_space.low[1]


# ------------------------------------------------------------------ mountain car parity
def test_mountain_car_matches_gymnasium() -> None:
    """Same start for the same seed; same steps, rewards and termination as Gymnasium."""
    ours = gym.make("gpcontrol/MountainCar-v0", goal_reward=100.0)
    ref = gym.make("MountainCarContinuous-v0")
    for seed in (0, 1, 2):
        obs_ref, _ = ref.reset(seed=seed)
        obs, _ = ours.reset(seed=seed)
        assert obs[0] == pytest.approx(float(obs_ref[0]), abs=1e-7)  # float32 rounding
        assert obs[1] == 0.0
    ref.reset(seed=4)
    terminated_ref = False
    steps = 0
    while not terminated_ref:
        x = np.asarray(ref.unwrapped.state, dtype=np.float64)
        u = np.array([0.9 if x[1] >= 0 else -0.9])  # pump energy: push along the velocity
        ours.reset(options={"x0": x})
        obs_ref, r_ref, terminated_ref, _, _ = ref.step(u.astype(np.float32))
        obs, r, terminated, _, _ = ours.step(u)
        np.testing.assert_allclose(obs, obs_ref, atol=1e-6)
        assert r == pytest.approx(r_ref, abs=1e-6)
        assert terminated == terminated_ref
        steps += 1
        assert steps < 999
    assert terminated and r > 99  # the goal step carries the bonus


def test_mountain_car_terminates_at_goal_with_reward_minus_cost() -> None:
    env = gym.make("gpcontrol/MountainCar-v0")
    obs, _ = env.reset(seed=0)
    total, t = 0.0, 0
    while True:
        u = np.array([1.0 if obs[1] >= 0 else -1.0])
        obs, r, term, trunc, _ = env.step(u)
        assert r == pytest.approx(-0.1)  # 0.1 u^2 with |u| = 1, no bonus
        total += r
        t += 1
        if term or trunc:
            break
    assert term and not trunc and obs[0] >= 0.45 and t < 999


# ------------------------------------------------------------------ bounds and make_env
def test_state_box_is_enforced_with_inelastic_stop() -> None:
    env = gym.make("gpcontrol/ArmReach-v0")
    base = env.unwrapped
    lo, hi = base.system.x_low, base.system.x_high
    env.reset(seed=0)
    for _ in range(40):  # full torque drives both joints into their upper stops
        obs, *_ = env.step(env.action_space.high)
        assert env.observation_space.contains(obs)
        assert np.all(obs >= lo) and np.all(obs <= hi)
    np.testing.assert_array_equal(obs[:2], hi[:2])
    np.testing.assert_array_equal(obs[2:], [0.0, 0.0])


def test_make_env_for_a_user_system() -> None:
    system = CartPole(dt=0.05)
    cost = QuadraticCost(
        np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(1), x_target=[0, math.pi, 0, 0]
    )
    env = make_env(
        system, cost, max_episode_steps=5, x0_mean=[0, 0.1, 0, 0], render_mode="rgb_array"
    )
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0.1, 0, 0])
    truncated, steps = False, 0
    while not truncated:
        _, _, _, truncated, _ = env.step(np.zeros(1))
        steps += 1
    assert steps == 5
    assert env.render().shape == (300, 400, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"process_noise_std": [-0.1, 0.0]}, "non-negative"),
        ({"measurement_noise_std": [0.1, 0.1, 0.1]}, "shape"),
        ({"x0_mean": [0.0, 0.0, 0.0]}, "x0_mean"),
        ({"x0_mean": [0.0, 0.0], "x0_sampler": lambda rng: np.zeros(2)}, "either"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_system_env_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SystemEnv(Pendulum(), QuadraticCost(np.eye(2), np.eye(1)), **kwargs)


def test_system_env_rejects_mismatched_cost() -> None:
    with pytest.raises(ValueError, match="cost.n"):
        SystemEnv(Pendulum(), QuadraticCost(np.eye(4), np.eye(1)))
    with pytest.raises(TypeError, match="system"):
        SystemEnv("pendulum", QuadraticCost(np.eye(2), np.eye(1)))  # type: ignore[arg-type]


# ------------------------------------------------------------------ rendering
@pytest.mark.parametrize("env_id", IDS)
def test_render_draws_the_state(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (300, 400, 3) and first.dtype == np.uint8
    colours = np.unique(first.reshape(-1, 3), axis=0)
    assert len(colours) > 10  # anti-aliased drawing, not a blank canvas
    assert (first < 128).any() and (first > 200).any()
    for _ in range(8):
        env.step(env.action_space.high)
    second = env.render()
    assert np.mean(np.any(second != first, axis=-1)) > 0.001  # the picture moved
    env.close()


def test_render_without_mode_returns_none() -> None:
    env = SystemEnv(PlanarArm(), QuadraticCost(np.eye(4), np.eye(2)))
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert env.render() is None
