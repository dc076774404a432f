"""MDGPS pieces (policy linearisation, S-step) and an end-to-end run against the LQR optimum."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gpcontrol.algorithms.gps import (
    MDGPSOptions,
    linearize_policy,
    mdgps,
    mdgps_init,
    mdgps_step,
    s_step_loss,
    train_policy,
)
from gpcontrol.costs import QuadraticCost
from gpcontrol.policies.mlp import GaussianMLPPolicy
from gpcontrol.solvers import LinearDynamics, finite_horizon_lqr


def _affine_weights(policy: GaussianMLPPolicy) -> tuple[np.ndarray, np.ndarray]:
    """``u = W x + b`` of a network without hidden layers, in raw state coordinates."""
    layer = policy.net[0]
    W = layer.weight.detach().numpy() / policy.scale.numpy()
    return W, layer.bias.detach().numpy() - W @ policy.offset.numpy()


def test_linearising_an_affine_network_recovers_its_gains() -> None:
    policy = GaussianMLPPolicy(4, 2, hidden=(), seed=1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 10, 4)) * [1.0, 2.0, 0.5, 3.0] + [1.0, 0.0, -1.0, 2.0]
    policy.set_normalization(X)
    with torch.no_grad():
        policy.cov.copy_(torch.tensor([[0.3, 0.1], [0.1, 0.2]], dtype=torch.float64))
    lin = linearize_policy(policy, X)  # 5 samples per step, prior from all 50 states
    W, b = _affine_weights(policy)
    assert np.abs(lin.K - W).max() < 1e-6
    assert np.abs(lin.k - b).max() < 1e-6
    # No residual: the linearisation's covariance is the policy's own.
    assert np.abs(lin.cov - policy.cov.numpy()).max() < 1e-6


def test_linearising_a_nonlinear_network_gives_its_local_slope() -> None:
    """With tightly clustered states per step (radius 1e-3) and a negligible prior, the fitted
    gain is the network's Jacobian at the cluster (up to curvature times the radius)."""
    policy = GaussianMLPPolicy(3, 2, hidden=(16,), seed=2)
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((6, 3))
    X = centres[None] + 1e-3 * rng.standard_normal((8, 6, 3))
    lin = linearize_policy(policy, X, strength=1e-12)
    for t in range(6):
        J = torch.autograd.functional.jacobian(policy, torch.from_numpy(X[:, t].mean(0)))
        assert np.abs(lin.K[t] - J.numpy()).max() < 1e-2 * np.abs(J.numpy()).max()


def test_s_step_loss_is_the_precision_weighted_squared_error() -> None:
    policy = GaussianMLPPolicy(3, 2, hidden=(8,), seed=3)
    rng = np.random.default_rng(2)
    x, target = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    W = rng.standard_normal((7, 2, 2))
    P = W @ np.swapaxes(W, 1, 2) + 0.1 * np.eye(2)
    loss = s_step_loss(policy, *(torch.from_numpy(a) for a in (x, target, P)))
    d = policy.mean(x) - target
    want = np.mean([d[i] @ P[i] @ d[i] for i in range(7)])
    assert abs(float(loss.detach()) - want) < 1e-12 * max(1.0, want)
    # Autograd through the network matches finite differences (float64 gradcheck).
    xt, tt, Pt = (torch.from_numpy(a).requires_grad_() for a in (x, target, P))
    assert torch.autograd.gradcheck(lambda a, b, c: s_step_loss(policy, a, b, c), (xt, tt, Pt))


def test_train_policy_fits_affine_targets_and_sets_the_covariance() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 3))
    W_true, b_true = rng.standard_normal((2, 3)), rng.standard_normal(2)
    target = x @ W_true.T + b_true
    G = rng.standard_normal((400, 2, 2))
    P = G @ np.swapaxes(G, 1, 2) + np.eye(2)
    policy = GaussianMLPPolicy(3, 2, hidden=(), seed=4)
    losses = train_policy(policy, x, target, P, iterations=600, lr=0.05, batch_size=400, seed=0)
    assert losses[-1] < 1e-6 * losses[0]
    W, b = _affine_weights(policy)
    assert np.abs(W - W_true).max() < 1e-8 and np.abs(b - b_true).max() < 1e-8
    np.testing.assert_allclose(policy.cov.numpy(), np.linalg.inv(P.mean(0)), rtol=1e-10)


def _point_mass() -> tuple[LinearDynamics, QuadraticCost, np.ndarray, np.ndarray]:
    """A planar point mass (double integrator, dt = 0.1) with a quadratic cost to the origin."""
    dt = 0.1
    A = np.block([[np.eye(2), dt * np.eye(2)], [np.zeros((2, 2)), np.eye(2)]])
    B = np.vstack([0.5 * dt**2 * np.eye(2), dt * np.eye(2)])
    Q, R, Qf = np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2), np.diag([50.0, 50.0, 5.0, 5.0])
    return LinearDynamics(A, B), QuadraticCost(Q, R, Qf=Qf), A, B


_X0S = np.array([[1.0, 0.0, 0.0, 0.0], [-1.0, -1.0, 0.0, 0.0]])


def _options(**changes) -> MDGPSOptions:
    """The point-mass run: 6 iterations of 5 noisy rollouts per start, a 16-unit network."""
    base = dict(
        iterations=6,
        samples=5,
        hidden=(16,),
        policy_iterations=400,
        lr=3e-3,
        x0_std=0.01,
        process_noise_std=0.01,
        seed=0,
    )
    return MDGPSOptions(**{**base, **changes})


@pytest.mark.parametrize(("sampling", "step_rule"), [("local", "local"), ("policy", "global")])
def test_mdgps_on_a_point_mass_approaches_the_lqr_optimum(sampling: str, step_rule: str) -> None:
    """Off-policy with the local step rule (the default) and on-policy with the paper's."""
    system, cost, A, B = _point_mass()
    T = 30
    lqr = finite_horizon_lqr(A, B, cost.Q, cost.R, Qf=cost.Qf, T=T)
    optimum = np.array([cost.total(*lqr.rollout(x0)) for x0 in _X0S])
    opt = _options(sampling=sampling, step_rule=step_rule)
    res = mdgps(system, [cost, cost], _X0S, T, options=opt)
    assert res.rollouts == 6 * 2 * 5
    first, last = res.history[0], res.history[-1]
    assert all(s == "converged" for h in res.history for s in h.statuses)
    assert (first.sample_costs > 5 * optimum).all()  # the zero-mean initial controllers
    # The network's noise-free cost: never below the optimum, within 5 % of it at the end.
    for h in res.history:
        assert (h.policy_costs >= optimum * (1 - 1e-9)).all()
    assert (last.policy_costs < 1.05 * optimum).all(), last.policy_costs / optimum
    assert (last.sample_costs < 1.15 * optimum).all()
    # While the network and the controllers improve, the steps grow to the cap.
    np.testing.assert_allclose(res.history[2].epsilon, opt.kl_step * T * opt.step_range[1])


def test_the_global_step_rule_shrinks_the_step_when_the_network_does_not_follow() -> None:
    """step_rule="global" measures the network: a frozen one (learning rate 1e-12)
    never improves, so a condition's step falls to the floor of its range, although
    its local controller could still improve on its own (with the local rule the
    steps stay near the cap)."""
    system, cost, *_ = _point_mass()
    T = 30
    for rule, low in (("global", True), ("local", False)):
        opt = _options(iterations=4, policy_iterations=2, lr=1e-12, step_rule=rule)
        res = mdgps(system, [cost, cost], _X0S, T, options=opt)
        floor = opt.kl_step * T * opt.step_range[0]
        assert np.isclose(res.history[-1].epsilon.min(), floor) == low, res.history[-1].epsilon


def test_mdgps_is_deterministic_under_a_seed() -> None:
    system, cost, *_ = _point_mass()
    x0s = np.array([[1.0, 0.0, 0.0, 0.0]])
    opt = MDGPSOptions(iterations=2, samples=5, hidden=(8,), policy_iterations=30, seed=5)
    a = mdgps(system, [cost], x0s, 10, options=opt)
    b = mdgps(system, [cost], x0s, 10, options=opt)
    for ha, hb in zip(a.history, b.history, strict=True):
        np.testing.assert_array_equal(ha.sample_costs, hb.sample_costs)
        np.testing.assert_array_equal(ha.policy_costs, hb.policy_costs)
    np.testing.assert_array_equal(a.controllers[0].K, b.controllers[0].K)


def test_on_policy_sampling_draws_from_the_network() -> None:
    """With sampling="policy" the second iteration's controls are the network's mean
    at the visited states plus its own noise: with the network's covariance set to
    1e-16 I they equal the mean; the first iteration samples the local controllers."""
    system, cost, *_ = _point_mass()
    x0s = np.array([[1.0, 0.0, 0.0, 0.0]])
    T = 10
    opt = MDGPSOptions(samples=5, hidden=(8,), policy_iterations=20, sampling="policy", seed=2)
    state = mdgps_init(system, [cost], x0s, T, options=opt)
    mdgps_step(system, [cost], x0s, T, state, options=opt)
    X, U = state.samples[0]
    ctrl = state.controllers[0]
    assert np.abs(U - state.policy.mean(X[:, :-1])).max() > 1e-3  # not the network yet
    with torch.no_grad():
        state.policy.cov.copy_(1e-16 * torch.eye(2, dtype=torch.float64))
    frozen = copy.deepcopy(state.policy)
    mdgps_step(system, [cost], x0s, T, state, options=opt)
    X, U = state.samples[0]
    np.testing.assert_allclose(U, frozen.mean(X[:, :-1]), rtol=0, atol=1e-7)
    assert ctrl is not state.controllers[0]  # the C-step still ran


def test_mdgps_validation() -> None:
    system, cost, *_ = _point_mass()
    with pytest.raises(ValueError, match="costs must have one entry"):
        mdgps(system, [cost], np.zeros((2, 4)), 10)
    with pytest.raises(ValueError, match="x0s must have shape"):
        mdgps(system, [cost], np.zeros((1, 3)), 10)
    with pytest.raises(ValueError, match="samples"):
        MDGPSOptions(samples=0)
    with pytest.raises(ValueError, match="step_range"):
        MDGPSOptions(step_range=(2.0, 5.0))
    with pytest.raises(ValueError, match="sampling"):
        MDGPSOptions(sampling="global")
    with pytest.raises(ValueError, match="step_rule"):
        MDGPSOptions(step_rule="policy")
