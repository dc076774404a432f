"""MDGPS on Gymnasium's MuJoCo Reacher-v5: fingertip kinematics against MuJoCo, the env
sampler against the env's own trajectories, the cost's derivatives, an end-to-end run and
bad inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("mujoco")
gym = pytest.importorskip("gymnasium")

from gpcontrol.algorithms.gps import RolloutSampler, mdgps  # noqa: E402
from gpcontrol.algorithms.gps_env import EnvSampler  # noqa: E402
from gpcontrol.algorithms.reacher import (  # noqa: E402
    ReacherCost,
    ReacherPolicy,
    ReacherTask,
    reacher_links,
    reacher_options,
    reacher_state,
    run_reacher,
    set_reacher_state,
)


@pytest.fixture(scope="module")
def task() -> ReacherTask:
    return ReacherTask.default()


def test_fingertip_kinematics_match_mujoco_body_position(task: ReacherTask) -> None:
    """Oracle: MuJoCo's forward kinematics (data.xpos of the fingertip and target bodies)."""
    env = task.env
    base: Any = env.unwrapped
    tip_id = base.model.body("fingertip").id
    target_id = base.model.body("target").id
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(20):
        x = np.concatenate(
            [rng.uniform(-np.pi, np.pi, 1), rng.uniform(-3, 3, 1), rng.normal(size=2)]
        )
        g = rng.uniform(-0.2, 0.2, 2)
        set_reacher_state(env, x, g)
        np.testing.assert_allclose(task.fingertip(x), base.data.xpos[tip_id][:2], atol=1e-12)
        np.testing.assert_allclose(base.data.xpos[target_id][:2], g, atol=1e-12)
    assert reacher_links(env) == (0.1, 0.11)


def test_env_sampler_reproduces_the_envs_own_open_loop_trajectory(task: ReacherTask) -> None:
    """Oracle: a fresh Reacher-v5 stepped by hand with the same actions from the same state."""
    rng = np.random.default_rng(1)
    T = 30
    U = rng.uniform(-1.2, 1.2, (T, 2))  # some outside the box: the sampler clips them
    x0 = np.array([0.3, -0.5, 0.2, -0.1])
    g = task.train_targets[1]
    X, Us = task.sampler(task.train_targets).sample_rollouts(
        1, lambda x, t: U[t], x0, T, 2, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(Us[0], U)
    np.testing.assert_array_equal(X[0], X[1])  # deterministic env, open loop
    ref: Any = gym.make("Reacher-v5")
    ref.reset(seed=123)
    ref.unwrapped.set_state(np.concatenate([x0[:2], g]), np.concatenate([x0[2:], np.zeros(2)]))
    qpos, qvel, obs = [ref.unwrapped.data.qpos[:2].copy()], [], np.zeros(10)
    for t in range(T):
        obs, *_ = ref.step(np.clip(U[t], -1.0, 1.0))
        qpos.append(ref.unwrapped.data.qpos[:2].copy())
        qvel.append(ref.unwrapped.data.qvel[:2].copy())
    np.testing.assert_allclose(X[0, :, :2], np.array(qpos), rtol=0, atol=1e-12)
    np.testing.assert_allclose(X[0, 1:, 2:], np.array(qvel), rtol=0, atol=1e-12)
    # the env's own observation: cos/sin of the angles, target, velocities. (Its last two
    # entries, fingertip - target, come from body positions MuJoCo computed at an
    # intermediate RK4 stage, not at the final state, so they are not compared.)
    np.testing.assert_allclose(obs[:2], np.cos(X[0, -1, :2]), atol=1e-12)
    np.testing.assert_allclose(obs[2:4], np.sin(X[0, -1, :2]), atol=1e-12)
    np.testing.assert_allclose(obs[4:6], g, atol=1e-12)
    np.testing.assert_allclose(obs[6:8], X[0, -1, 2:], atol=1e-12)


def test_reacher_state_reads_the_mujoco_data_and_checks_the_observation(task: ReacherTask) -> None:
    env = task.env
    obs = set_reacher_state(env, [0.1, 0.2, 0.3, 0.4], [0.05, 0.1])
    np.testing.assert_allclose(reacher_state(obs, env), [0.1, 0.2, 0.3, 0.4], atol=1e-12)
    bad = obs.copy()
    bad[0] += 0.1
    with pytest.raises(ValueError, match="does not match"):
        reacher_state(bad, env)
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        reacher_state(obs[:5], env)


def test_reacher_cost_gradient_matches_finite_differences(task: ReacherTask) -> None:
    cost = ReacherCost(
        task.lengths, [0.1, 0.12], gauss_newton=False, control_weight=0.3, velocity_weight=0.2
    )
    rng = np.random.default_rng(2)
    X, U = rng.uniform(-2, 2, (5, 4)), rng.normal(size=(5, 2))
    q, qT = cost.quadratize(X, U), cost.quadratize_terminal(X[0])
    h = 1e-6
    for i in range(5):
        fd = [
            (float(cost.l(X[i] + h * e, U[i])) - float(cost.l(X[i] - h * e, U[i]))) / (2 * h)
            for e in np.eye(4)
        ]
        np.testing.assert_allclose(q.lx[i], fd, atol=1e-7)
    fdT = [
        (float(cost.l_T(X[0] + h * e)) - float(cost.l_T(X[0] - h * e))) / (2 * h) for e in np.eye(4)
    ]
    np.testing.assert_allclose(qT.lx, fdT, atol=1e-7)


def test_policy_offset_feature_uses_the_fingertip(task: ReacherTask) -> None:
    """The network's fingertip feature equals the cost's kinematics."""
    import torch

    policy = ReacherPolicy(task.lengths, hidden=(), seed=0)
    captured: dict[str, Any] = {}
    policy.net.register_forward_hook(lambda m, inp, out: captured.setdefault("z", inp[0]))
    x = np.array([0.4, -0.7, 0.0, 0.0, 0.05, 0.1])
    policy(torch.from_numpy(x))
    feature = captured["z"].detach().numpy()[-2:] * policy.offset_scale
    np.testing.assert_allclose(feature, x[-2:] - task.fingertip(x[:4]), atol=1e-12)


@pytest.mark.slow
def test_mdgps_on_reacher_reaches_the_training_targets(task: ReacherTask) -> None:
    """End to end on two training targets (0.18 m at 30 and 120 degrees): the local
    controllers and the network get there."""
    small = ReacherTask(
        task.env, task.x0, task.train_targets[[6, 8]], task.test_targets[:1], 50,
        task.tolerance, task.cost_weights,
    )  # fmt: skip
    opt = reacher_options(0, iterations=10, hidden=(32,), policy_iterations=200, init_variance=0.01)
    run = run_reacher(small, opt)
    first, last = run.metrics[0], run.metrics[-1]
    assert last.rollouts == 10 * 2 * 5
    assert max(last.local_distances) < small.tolerance
    assert max(last.train_distances) < small.tolerance
    assert max(last.local_distances) < 0.5 * max(first.local_distances)


def test_bad_inputs(task: ReacherTask) -> None:
    sampler = task.sampler(task.train_targets)
    rng = np.random.default_rng(0)
    assert isinstance(sampler, RolloutSampler)
    with pytest.raises(TypeError, match="TaskEnv"):
        EnvSampler(gym.make("Reacher-v5"), lambda env, c, x0: None)
    with pytest.raises(TypeError, match="callable"):
        EnvSampler(task.env, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before the horizon"):
        sampler.sample_rollouts(0, lambda x, t: np.zeros(2), task.x0, 51, 1, rng)
    with pytest.raises(ValueError, match=r"x0 must have shape \(4,\)"):
        sampler.sample_rollouts(0, lambda x, t: np.zeros(2), np.zeros(3), 5, 1, rng)
    with pytest.raises(ValueError, match=r"controller must return shape \(2,\)"):
        sampler.sample_rollouts(0, lambda x, t: np.zeros(3), task.x0, 5, 1, rng)
    with pytest.raises(ValueError, match="target must have shape"):
        ReacherCost(task.lengths, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="lengths"):
        ReacherCost((0.1, -0.1), [0.1, 0.2])
    with pytest.raises(ValueError, match="T = 60 exceeds"):
        ReacherTask(task.env, task.x0, task.train_targets, task.test_targets, 60)
    with pytest.raises(ValueError, match=r"train_targets must have shape \(K, 2\)"):
        ReacherTask(task.env, task.x0, np.zeros((2, 3)), task.test_targets, 10)
    with pytest.raises(TypeError, match="TaskEnv"):
        ReacherTask(gym.make("Reacher-v5"), task.x0, task.train_targets, task.test_targets, 10)
    with pytest.raises(ValueError, match="Reacher"):
        set_reacher_state(gym.make("Pendulum-v1"), np.zeros(4), np.zeros(2))
    with pytest.raises(ValueError, match=r"sample_rollouts must return"):

        class Broken:
            n, m = 4, 2

            def sample_rollouts(self, condition, controller, x0, T, N, rng, **kw):  # noqa: ANN001, ANN003, ANN201
                return np.zeros((N, T, 4)), np.zeros((N, T, 2))

        mdgps(Broken(), [task.cost(task.train_targets[0])], task.x0[None], 5)


def test_missing_mujoco_raises_an_import_error_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mujoco", None)  # makes `import mujoco` fail
    with pytest.raises(ImportError, match="pip install mujoco"):
        ReacherTask.default()


def test_a_sampler_that_steps_a_known_system_reproduces_the_system_path() -> None:
    """Oracle: MDGPS through the RolloutSampler protocol equals MDGPS on ``system.step``.

    The sampler below steps the same system and draws from ``rng`` in the same order
    as the system path (which draws start noise even at ``x0_std = 0``), and adds its
    process noise only when not ``noiseless``, so the two runs must agree exactly:
    the dispatch, the shapes and the evaluation flag are what is tested.
    """
    from gpcontrol.algorithms.gps import MDGPSOptions
    from gpcontrol.costs import QuadraticCost
    from gpcontrol.solvers import LinearDynamics

    dt = 0.1
    A = np.block([[np.eye(2), dt * np.eye(2)], [np.zeros((2, 2)), np.eye(2)]])
    B = np.vstack([0.5 * dt**2 * np.eye(2), dt * np.eye(2)])
    system = LinearDynamics(A, B)
    cost = QuadraticCost(np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2), Qf=10 * np.eye(4))
    w = 0.01

    class Sampler:
        n, m = 4, 2

        def sample_rollouts(self, condition, controller, x0, T, N, rng, *, noiseless=False):  # noqa: ANN001, ANN201
            X, U = np.empty((N, T + 1, 4)), np.empty((N, T, 2))
            X[:, 0] = x0 + 0.0 * rng.standard_normal((N, 4))
            for t in range(T):
                U[:, t] = controller(X[:, t], t)
                X[:, t + 1] = system.step(X[:, t], U[:, t])
                if not noiseless:
                    X[:, t + 1] += w * rng.standard_normal((N, 4))
            return X, U

    x0s = np.array([[1.0, -0.5, 0.0, 0.0], [-0.8, 0.6, 0.0, 0.0]])
    opt = MDGPSOptions(
        iterations=2, samples=4, hidden=(8,), policy_iterations=30, process_noise_std=w
    )
    a = mdgps(system, [cost, cost], x0s, 12, options=opt)
    b = mdgps(Sampler(), [cost, cost], x0s, 12, options=opt)
    assert a.rollouts == b.rollouts == 2 * 2 * 4
    for ha, hb in zip(a.history, b.history, strict=True):
        np.testing.assert_array_equal(ha.sample_costs, hb.sample_costs)
        np.testing.assert_array_equal(ha.policy_costs, hb.policy_costs)
    for ca, cb in zip(a.controllers, b.controllers, strict=True):
        np.testing.assert_array_equal(ca.K, cb.K)
        np.testing.assert_array_equal(ca.k, cb.k)
