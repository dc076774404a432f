"""Arm reaching with MDGPS: end-effector cost derivatives, the target-conditioned network,
context handling in MDGPS, the iLQR ceiling, and exact resumption of a run folder."""

from __future__ import annotations

import json
from typing import Any

import casadi as ca
import numpy as np
import pytest
import torch

from gpcontrol.algorithms.gps import MDGPSOptions, linearize_policy, mdgps
from gpcontrol.algorithms.reach import (
    EndEffectorCost,
    ReachingPolicy,
    ReachingTask,
    final_distances,
    ilqr_ceiling,
    rollout_controller,
)
from gpcontrol.algorithms.reach_run import reaching_options, run_reaching
from gpcontrol.policies.mlp import GaussianMLPPolicy, with_context
from gpcontrol.systems import PlanarArm

WEIGHTS: dict[str, Any] = {
    "control_weight": 0.3,
    "running_weight": 1.5,
    "terminal_weight": 7.0,
    "l2": 2.0,
    "l1": 0.5,
    "alpha": 1e-3,
    "velocity_weight": 0.4,
}


def _fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("links", [2, 3])
def test_end_effector_cost_derivatives_match_finite_differences(links: int) -> None:
    if links == 2:
        arm = PlanarArm()
    else:
        from gpcontrol.systems import ChainParams

        arm = PlanarArm(
            ChainParams(
                masses=(1.0, 1.0, 1.0),
                lengths=(0.3, 0.25, 0.2),
                com_distances=(0.15, 0.12, 0.1),
                inertias=(0.03, 0.02, 0.01),
                friction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
                max_torque=(5.0, 5.0, 5.0),
                actuated=(True, True, True),
            )
        )
    rng = np.random.default_rng(links)
    cost = EndEffectorCost(arm, [0.1, 0.35], gauss_newton=False, **WEIGHTS)
    X = rng.uniform(-1.5, 1.5, (6, arm.n))
    U = rng.standard_normal((6, arm.m))
    q = cost.quadratize(X, U)
    qT = cost.quadratize_terminal(X)
    for i in range(6):
        x, u = X[i], U[i]
        lx = _fd_grad(lambda z, u=u: float(cost.l(z, u)), x)
        lu = _fd_grad(lambda v, x=x: float(cost.l(x, v)), u)
        np.testing.assert_allclose(q.lx[i], lx, atol=1e-7)
        np.testing.assert_allclose(q.lu[i], lu, atol=1e-7)
        lxx = np.stack(
            [_fd_grad(lambda z, j=j, u=u: cost.quadratize(z, u).lx[j], x) for j in range(arm.n)]
        )
        np.testing.assert_allclose(q.lxx[i], lxx, atol=1e-6)
        np.testing.assert_allclose(q.luu[i], WEIGHTS["control_weight"] * np.eye(arm.m))
        gT = _fd_grad(lambda z: float(cost.l_T(z)), x)
        np.testing.assert_allclose(qT.lx[i], gT, atol=1e-7)
        HT = np.stack(
            [_fd_grad(lambda z, j=j: cost.quadratize_terminal(z).lx[j], x) for j in range(arm.n)]
        )
        np.testing.assert_allclose(qT.lxx[i], HT, atol=1e-6)
    # The hand position is the system's own end effector, and CasADi agrees with NumPy.
    np.testing.assert_allclose(cost.hand(X), arm.end_effector(X), atol=1e-12)
    xs, us = ca.SX.sym("x", arm.n), ca.SX.sym("u", arm.m)
    f = ca.Function("l", [xs, us], [cost.casadi(xs, us)])
    fT = ca.Function("lT", [xs], [cost.casadi_terminal(xs)])
    for i in range(6):
        assert abs(float(f(X[i], U[i])) - float(cost.l(X[i], U[i]))) < 1e-12
        assert abs(float(fT(X[i])) - float(cost.l_T(X[i]))) < 1e-12


def test_gauss_newton_hessian_is_the_psd_part() -> None:
    arm = PlanarArm()
    rng = np.random.default_rng(7)
    X, U = rng.uniform(-2, 2, (20, 4)), rng.standard_normal((20, 2))
    gn = EndEffectorCost(arm, [0.0, 0.4], **WEIGHTS).quadratize(X, U)
    full = EndEffectorCost(arm, [0.0, 0.4], gauss_newton=False, **WEIGHTS).quadratize(X, U)
    np.testing.assert_allclose(gn.lx, full.lx)
    assert (np.linalg.eigvalsh(gn.lxx) > -1e-12).all()
    # Full Hessians are indefinite somewhere in this range (the curvature term).
    assert (np.linalg.eigvalsh(full.lxx)[:, 0] < -1e-6).any()


def test_end_effector_cost_validation() -> None:
    arm = PlanarArm()
    with pytest.raises(ValueError, match="target"):
        EndEffectorCost(arm, [0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="control_weight"):
        EndEffectorCost(arm, [0.0, 0.1], control_weight=0.0)
    with pytest.raises(TypeError, match="PlanarArm"):
        EndEffectorCost(object(), [0.0, 0.1])  # type: ignore[arg-type]


def test_reaching_policy_sees_the_hand_offset() -> None:
    """The feature is g - p(q): moving the target and the hand together changes only the
    raw-target input, and the torch hand matches the system's forward kinematics."""
    arm = PlanarArm()
    pol = ReachingPolicy(arm, (8,), seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 4))
    g = rng.uniform(-0.3, 0.3, (5, 2))
    z = torch.from_numpy(with_context(x, g))
    phi = torch.cumsum(z[:, :2], -1)
    lengths: Any = pol.lengths
    hand = torch.stack([(lengths * phi.cos()).sum(-1), (lengths * phi.sin()).sum(-1)], -1)
    np.testing.assert_allclose(hand.numpy(), arm.end_effector(x), atol=1e-12)
    assert pol.mean(z.numpy()).shape == (5, 2)
    # Exact gradients through the kinematic feature (float64 gradcheck).
    assert torch.autograd.gradcheck(pol, (z.clone().requires_grad_(),))


def test_linearising_a_context_network_in_the_state_only() -> None:
    """With a context, the linearisation of an affine network is its state block."""
    policy = GaussianMLPPolicy(5, 2, hidden=(), seed=1)  # 3 state inputs + 2 context
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 8, 3))
    ctx = np.array([0.3, -0.7])
    lin = linearize_policy(policy, X, context=ctx)
    net: Any = policy
    W = net.net[0].weight.detach().numpy() / net.scale.numpy()
    b = net.net[0].bias.detach().numpy() - W @ net.offset.numpy()
    assert np.abs(lin.K - W[:, :3]).max() < 1e-6
    assert np.abs(lin.k - (b + W[:, 3:] @ ctx)).max() < 1e-6
    with pytest.raises(ValueError, match="context"):
        linearize_policy(policy, X, context=np.zeros(5))


def test_mdgps_with_contexts_validates_their_shape() -> None:
    from gpcontrol.costs import QuadraticCost
    from gpcontrol.solvers import LinearDynamics

    sys_ = LinearDynamics(np.eye(2), np.eye(2))
    cost = QuadraticCost(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="contexts must have shape"):
        mdgps(sys_, [cost], np.zeros((1, 2)), 5, contexts=np.zeros((2, 1)))


def test_ilqr_ceiling_reaches_every_target_within_the_torque_box() -> None:
    task = ReachingTask.default()
    ceil = ilqr_ceiling(task, task.train_targets[:2])
    assert ceil.success.all(), ceil.distances
    assert (np.abs(ceil.U) <= 5.0 + 1e-12).all()
    # The plan is a real rollout of the arm: replaying its torques open loop gives its states.
    for X, U, g in zip(ceil.X, ceil.U, ceil.targets, strict=True):
        Xr, _ = rollout_controller(task, lambda x, t, U=U: U[t])
        np.testing.assert_allclose(Xr, X, atol=1e-9)
        assert final_distances(task, Xr[-1], g) < task.tolerance
    # Doing nothing does not reach.
    X0, _ = rollout_controller(task, lambda x, t: np.zeros(2))
    assert final_distances(task, X0[-1], task.train_targets[0]) > 0.1


def _tiny_task() -> ReachingTask:
    full = ReachingTask.default(T=8)
    return ReachingTask(
        full.system,
        full.x0,
        full.train_targets[:2],
        full.test_targets[:2],
        8,
        cost_weights=full.cost_weights,
    )


@pytest.mark.parametrize(("sampling", "step_rule"), [("local", "local"), ("policy", "global")])
def test_an_interrupted_run_resumes_exactly(tmp_path, sampling: str, step_rule: str) -> None:
    task = _tiny_task()
    opt = MDGPSOptions(
        iterations=3,
        samples=5,
        hidden=(8,),
        policy_iterations=20,
        init_variance=0.3,
        seed=3,
        sampling=sampling,
        step_rule=step_rule,
    )
    whole = run_reaching(task, opt, folder=tmp_path / "whole")

    class Stop(Exception):
        pass

    def interrupt(m) -> None:
        if m.iteration == 2:
            raise Stop

    with pytest.raises(Stop):
        run_reaching(task, opt, folder=tmp_path / "cut", callback=interrupt)
    assert len(json.loads((tmp_path / "cut" / "metrics.json").read_text())) == 2
    seen: list[int] = []
    resumed = run_reaching(
        task, opt, folder=tmp_path / "cut", callback=lambda m: seen.append(m.iteration)
    )
    assert seen == [1, 2, 3]
    for a, b in zip(whole.metrics, resumed.metrics, strict=True):
        da, db = a.to_json(), b.to_json()
        da.pop("seconds"), db.pop("seconds")
        assert da == db
    for ca_, cb in zip(whole.state.controllers, resumed.state.controllers, strict=True):
        np.testing.assert_array_equal(ca_.K, cb.K)
        np.testing.assert_array_equal(ca_.cov, cb.cov)
    for (ka, va), (kb, vb) in zip(
        whole.state.policy.state_dict().items(),
        resumed.state.policy.state_dict().items(),
        strict=True,
    ):
        assert ka == kb and torch.equal(va, vb)
    data = np.load(tmp_path / "cut" / "data" / "iter_003.npz")
    assert data["X"].shape == (2, 5, 9, 4) and data["U"].shape == (2, 5, 8, 2)
    # A folder with another configuration is refused.
    with pytest.raises(ValueError, match="another configuration"):
        run_reaching(task, MDGPSOptions(iterations=3, seed=4), folder=tmp_path / "cut")


@pytest.mark.slow
def test_mdgps_reaches_training_and_held_out_targets() -> None:
    """Issue 7 end to end on seed 1 with reaching_options (tuned on seed 0, the on-policy
    variant chosen on seeds 0-4): the local controllers reach >= 95 % of the training
    targets within 8 iterations of 5 rollouts per target, and after 12 iterations the
    network reaches >= 90 % of the training and >= 80 % of the 16 held-out targets,
    which it never trained on."""
    task = ReachingTask.default()
    run = run_reaching(task, reaching_options(1))
    ms = run.metrics
    assert [m.rollouts for m in ms] == [20 * (i + 1) for i in range(12)]
    assert max(m.local_success for m in ms[:8]) >= 0.95, [m.local_success for m in ms]
    assert ms[-1].train_success >= 0.9 and ms[-1].test_success >= 0.8, ms[-1]
    # The ceiling (iLQR on the true arm) reaches every target.
    assert ilqr_ceiling(task, task.test_targets[:2]).success.all()
