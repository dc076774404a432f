"""Oracles for PILCO: policy evaluation vs particles, policy search, the loop and its resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import scipy.linalg
import torch

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.algorithms.pilco import (
    PILCOOptions,
    _particle_seed,
    expected_return,
    optimise_policy,
    pilco,
    predict_beliefs,
    save_figures,
    swing_up_success,
)
from gpcontrol.models.gp import GPDynamics
from gpcontrol.models.propagation import particle_noise, propagate_particles
from gpcontrol.policies.rbf import RBFPolicy
from gpcontrol.rollout import random_policy, rollout

torch.set_num_threads(1)
F64 = torch.float64


@pytest.fixture(scope="module")
def near_upright() -> tuple[GPDynamics, RBFPolicy, object, torch.Tensor, torch.Tensor]:
    """A GP of the pendulum fitted on short random rollouts near upright, and a fixed policy."""
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    system, cost = env.unwrapped.system, env.unwrapped.cost  # type: ignore[attr-defined]
    trajs = [
        rollout(
            env,
            random_policy(system.u_low, system.u_high, seed=j),
            seed=j,
            steps=10,
            options={"x0": np.array([np.pi - 0.3 + 0.2 * j, 0.0])},
        )
        for j in range(3)
    ]
    X = np.concatenate([np.hstack([t.states[:-1], t.controls]) for t in trajs])
    Y = np.concatenate([np.diff(t.states, axis=0) for t in trajs])
    gp = GPDynamics.for_system(system)
    gp.fit(X, Y, restarts=1, max_iter=100)
    mean0 = torch.tensor([np.pi - 0.3, 0.0], dtype=F64)
    pol = RBFPolicy(2, 1, 2.5, basis=4, angle_indices=(0,), init_mean=mean0.numpy(), seed=3)
    return gp, pol, cost, mean0, 0.02**2 * torch.eye(2, dtype=F64)


def _assert_within_4se(J, gJ, values, G, groups: int) -> None:  # type: ignore[no-untyped-def]
    """J and its gradient gJ agree with independent estimates within 4 standard errors.

    ``values`` holds per-sample values (their mean estimates J); ``G (groups, p)``
    holds one gradient estimate per independent group.
    """
    se = values.std() / len(values) ** 0.5
    assert abs(float(J.detach()) - float(values.mean())) < 4 * float(se)
    se_g = G.std(0) / groups**0.5
    assert torch.all((gJ - G.mean(0)).abs() < 4 * se_g)
    assert float(gJ.norm()) > 10 * float(se_g.norm() / len(se_g) ** 0.5)  # not a trivial zero


def test_expected_return_matches_particles(near_upright) -> None:  # type: ignore[no-untyped-def]
    """Value and gradient of J against 10,000 particles through the same GP (4 SE).

    Tolerance: the Monte Carlo standard error only. Moment matching is an
    approximation (Gaussian beliefs); the regime (start sd 0.02, H = 5, data
    around the start) keeps the beliefs nearly Gaussian, so its bias is far below
    the SE (measured: value bias ~1e-3 vs SE 1.4e-3 ... gradient |z| < 1).
    """
    gp, pol, cost, mean0, cov0 = near_upright
    H, groups, per_group = 5, 50, 200
    params = list(pol.parameters())
    J = expected_return(gp, pol, cost, mean0, cov0, H)
    gJ = torch.cat([g.flatten() for g in torch.autograd.grad(J, params)])
    values, grads = [], []
    for g in range(groups):
        xs = propagate_particles(gp, mean0, cov0, lambda x: pol(x), H, particles=per_group, seed=g)
        x = xs[1:].reshape(-1, 2)
        zero = torch.zeros(x.shape[0], 2, 2, dtype=F64)
        c = cost.expected(x, zero).expectation.reshape(H, per_group).sum(0)
        values.append(c.detach())
        grads.append(torch.cat([q.flatten() for q in torch.autograd.grad(c.mean(), params)]))
    _assert_within_4se(J, gJ, torch.cat(values), torch.stack(grads), groups)


def test_expected_return_discount_and_validation(near_upright) -> None:  # type: ignore[no-untyped-def]
    """J with discount g over H=2 equals J_1 + g (J_2 - J_1) (J_h the undiscounted h-step value)."""
    gp, pol, cost, mean0, cov0 = near_upright
    with torch.no_grad():
        J1 = expected_return(gp, pol, cost, mean0, cov0, 1)
        J2 = expected_return(gp, pol, cost, mean0, cov0, 2)
        Jd = expected_return(gp, pol, cost, mean0, cov0, 2, discount=0.5)
    torch.testing.assert_close(Jd, J1 + 0.5 * (J2 - J1))
    with pytest.raises(ValueError, match="horizon"):
        expected_return(gp, pol, cost, mean0, cov0, 0)
    with pytest.raises(ValueError, match="discount"):
        expected_return(gp, pol, cost, mean0, cov0, 2, discount=1.5)


def test_mean_propagation_matches_numpy_loop_and_finite_differences(near_upright) -> None:  # type: ignore[no-untyped-def]
    """Certainty-equivalent beliefs equal a slow NumPy loop of x + E[Delta(x, pi(x))]; zero cov.

    The loop goes through the policy's and the GP's NumPy entry points (a separate code
    path); the gradient of J in the policy targets is checked by central differences.
    """
    gp, pol, cost, mean0, cov0 = near_upright
    H = 6
    with torch.no_grad():
        beliefs = predict_beliefs(gp, pol, mean0, cov0, H, method="mean")
    x = mean0.numpy().copy()
    ref = [x.copy()]
    for _ in range(H):
        u = pol(x)
        delta, _ = gp.predict(np.concatenate([x, u]))
        x = x + delta.detach().numpy()
        ref.append(x.copy())
    np.testing.assert_allclose(beliefs.mean.numpy(), np.array(ref), rtol=1e-10, atol=1e-12)
    assert float(beliefs.cov.abs().max()) == 0.0
    J = expected_return(gp, pol, cost, mean0, cov0, H, method="mean")
    (g,) = torch.autograd.grad(J, [pol.targets])
    eps = 1e-6
    fd = torch.zeros_like(g)
    with torch.no_grad():
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                pol.targets[i, j] += eps
                hi = expected_return(gp, pol, cost, mean0, cov0, H, method="mean")
                pol.targets[i, j] -= 2 * eps
                lo = expected_return(gp, pol, cost, mean0, cov0, H, method="mean")
                pol.targets[i, j] += eps
                fd[i, j] = (hi - lo) / (2 * eps)
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-8)
    assert float(g.abs().max()) > 1e-3  # not a trivial zero


# ----------------------------------------------------------------------------- particles
#: A correlated start covariance, so the square root of Sigma_0 is not a plain diagonal.
COV0 = torch.tensor([[4e-4, 1e-4], [1e-4, 9e-4]], dtype=F64)


def test_particle_return_equals_a_plain_monte_carlo_loop(near_upright) -> None:  # type: ignore[no-untyped-def]
    """J, mean and covariance by particles equal a per-particle NumPy loop on the same draws.

    The loop uses the documented draws (one ``torch.randn((H+1, P, n))`` from a generator
    seeded with ``seed``), SciPy's matrix square root, the policy's and the GP's NumPy entry
    points one state at a time and the cost's ``l_T``: a separate code path from the
    batched, autograd one.
    """
    gp, pol, cost, mean0, _ = near_upright
    H, P, seed, gamma = 5, 40, 11, 0.9
    xi = torch.randn((H + 1, P, 2), generator=torch.Generator().manual_seed(seed), dtype=F64)
    xi = xi.numpy()
    root = np.real(scipy.linalg.sqrtm(COV0.numpy()))
    paths = np.zeros((H + 1, P, 2))
    total = np.zeros(P)
    for i in range(P):
        x = mean0.numpy() + root @ xi[0, i]
        paths[0, i] = x
        for t in range(1, H + 1):
            d_mean, d_var = gp.predict(np.concatenate([x, pol(x)]))
            x = x + d_mean.detach().numpy() + np.sqrt(d_var.detach().numpy()) * xi[t, i]
            paths[t, i] = x
            total[i] += gamma ** (t - 1) * float(cost.l_T(x))
    with torch.no_grad():
        J = expected_return(
            gp,
            pol,
            cost,
            mean0,
            COV0,
            H,
            discount=gamma,
            method="particles",
            particles=P,
            seed=seed,
        )
        beliefs = predict_beliefs(
            gp, pol, mean0, COV0, H, method="particles", particles=P, seed=seed
        )
    assert float(J) == pytest.approx(total.mean(), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(beliefs.mean.numpy(), paths.mean(1), rtol=1e-10, atol=1e-12)
    ref_cov = np.stack([np.cov(paths[t].T) for t in range(H + 1)])
    np.testing.assert_allclose(beliefs.cov.numpy(), ref_cov, rtol=1e-8, atol=1e-14)
    assert float(np.abs(ref_cov[-1]).max()) > 10 * float(np.abs(ref_cov[0]).max())  # spread grows


def test_particle_return_agrees_with_moment_matching(near_upright) -> None:  # type: ignore[no-untyped-def]
    """Value and gradient of the particle J over 20 seeds vs moment matching, 4 SE.

    Same regime as ``test_expected_return_matches_particles`` (start sd 0.02, H = 5), where
    moment matching's bias is far below the Monte Carlo error; each seed's estimate with
    500 particles is one independent sample of the particle objective and its gradient.
    """
    gp, pol, cost, mean0, cov0 = near_upright
    H, seeds = 5, 20
    params = list(pol.parameters())
    J = expected_return(gp, pol, cost, mean0, cov0, H)
    gJ = torch.cat([g.flatten() for g in torch.autograd.grad(J, params)])
    values, grads = [], []
    for s in range(seeds):
        Jp = expected_return(
            gp, pol, cost, mean0, cov0, H, method="particles", particles=500, seed=s
        )
        values.append(float(Jp.detach()))
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(Jp, params)]))
    _assert_within_4se(J, gJ, torch.tensor(values, dtype=F64), torch.stack(grads), seeds)


def test_particle_return_common_random_numbers(near_upright) -> None:  # type: ignore[no-untyped-def]
    """The same seed gives bitwise the same J and gradient; another seed or policy does not."""
    gp, pol, cost, mean0, cov0 = near_upright
    params = list(pol.parameters())

    def evaluate(seed: int) -> tuple[float, list[torch.Tensor]]:
        J = expected_return(
            gp, pol, cost, mean0, cov0, 8, method="particles", particles=64, seed=seed
        )
        return float(J.detach()), list(torch.autograd.grad(J, params))

    (a, ga), (b, gb), (c, _) = evaluate(3), evaluate(3), evaluate(4)
    assert a == b and c != a
    for x, y in zip(ga, gb, strict=True):
        assert torch.equal(x, y)
    saved = pol.targets.detach().clone()
    with torch.no_grad():
        pol.targets.add_(0.05)
    try:
        assert evaluate(3)[0] != a
    finally:
        with torch.no_grad():
            pol.targets.copy_(saved)
    assert evaluate(3)[0] == a


def test_propagate_particles_pre_drawn_noise(near_upright) -> None:  # type: ignore[no-untyped-def]
    """Pre-drawn noise gives the seeded run exactly; xi_0 only moves the start, xi_t step t."""
    gp, pol, _, mean0, _ = near_upright
    xi = particle_noise(3, 5, 2, seed=9)
    with torch.no_grad():
        seeded = propagate_particles(gp, mean0, COV0, pol, 3, particles=5, seed=9)
        given = propagate_particles(gp, mean0, COV0, pol, 3, noise=xi)
        xi2 = xi.clone()
        xi2[2] += 1.0
        moved = propagate_particles(gp, mean0, COV0, pol, 3, noise=xi2)
    assert torch.equal(seeded, given)
    assert torch.equal(moved[:2], given[:2]) and not torch.equal(moved[2], given[2])
    with pytest.raises(ValueError, match="noise"):
        propagate_particles(gp, mean0, COV0, pol, 3, noise=xi[:3])


class _Objective(torch.nn.Module):
    """``J`` as a module of the policy, so ``functional_call`` can feed gradcheck's inputs."""

    def __init__(self, gp, policy, cost, mean0) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.gp_model, self.policy, self.cost, self.mean0 = [gp], policy, cost, mean0

    def forward(self) -> torch.Tensor:
        return expected_return(
            self.gp_model[0],
            self.policy,
            self.cost,
            self.mean0,
            COV0,
            3,
            discount=0.8,
            method="particles",
            particles=4,
            seed=2,
        )


def test_particle_return_gradcheck(near_upright) -> None:  # type: ignore[no-untyped-def]
    """Autograd gradient of the common-random-number J equals its finite differences.

    Every policy parameter of a 2-basis RBF policy, 4 particles, H = 3 (``gradcheck``
    in float64, central differences).
    """
    gp, _, cost, mean0, _ = near_upright
    pol = RBFPolicy(2, 1, 2.5, basis=2, angle_indices=(0,), init_mean=mean0.numpy(), seed=5)
    objective = _Objective(gp, pol, cost, mean0)
    names = [f"policy.{n}" for n, _ in pol.named_parameters()]
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in pol.parameters())

    def J(*values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(objective, dict(zip(names, values, strict=True)), ())

    assert torch.autograd.gradcheck(J, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    grads = torch.autograd.grad(J(*inputs), inputs)
    assert max(float(g.abs().max()) for g in grads) > 1e-3  # not a trivial zero


def test_particle_options_and_inputs_are_validated(near_upright) -> None:  # type: ignore[no-untyped-def]
    gp, pol, cost, mean0, cov0 = near_upright
    for bad in (0, -3, 2.5, True, "400"):
        with pytest.raises(ValueError, match="particles"):
            PILCOOptions(propagation="particles", particles=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="particles"):
            expected_return(gp, pol, cost, mean0, cov0, 2, method="particles", particles=bad)  # type: ignore[arg-type]
    assert PILCOOptions(propagation="particles").particles == 400
    with pytest.raises(TypeError, match="particles"):  # a moment map has no batched forward
        predict_beliefs(gp, pol.moment_map(), mean0, cov0, 2, method="particles")


def test_pilco_loop_with_particles_uses_one_draw_per_trial(tmp_path: Path) -> None:
    """Each trial's search evaluates J on the same draws: the recorded best J is exactly the
    particle J of the returned policy with trial k's seed, and its beliefs are those draws'."""
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    opts = dataclasses.replace(TINY, max_trials=1, propagation="particles", particles=30)
    result = pilco(env, cost, options=opts, seed=5, out=tmp_path)
    from gpcontrol.envs.adapter import learning_task

    _, task = learning_task(env)
    mean0 = torch.as_tensor(np.array(task.x0_mean, dtype=np.float64))
    cov0 = torch.as_tensor(np.array(task.x0_cov, dtype=np.float64))
    draws = {"method": "particles", "particles": 30, "seed": _particle_seed(5, 1)}
    with torch.no_grad():
        J = expected_return(result.model, result.policy, cost, mean0, cov0, 10, **draws)  # type: ignore[arg-type]
        beliefs = predict_beliefs(result.model, result.policy, mean0, cov0, 10, **draws)  # type: ignore[arg-type]
    trace = np.load(tmp_path / "prediction_01.npz")["trace"]
    assert trace.min() < trace[0]  # the best J is not the start's: the search moved
    assert result.trials[0].predicted_cost == pytest.approx(float(J), rel=1e-12)
    torch.testing.assert_close(result.predictions[0].mean, beliefs.mean, rtol=0, atol=0)
    torch.testing.assert_close(result.predictions[0].cov, beliefs.cov, rtol=0, atol=0)
    assert float(beliefs.cov[-1].trace()) > 0
    assert _particle_seed(5, 1) != _particle_seed(5, 2) != _particle_seed(6, 1)


class _Quadratic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor([3.0, -2.0], dtype=F64))


def test_optimise_policy_reaches_closed_form_minimum() -> None:
    """J = (theta - a)' A (theta - a) + 1: minimum 1 at a."""
    mod = _Quadratic()
    A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    a = torch.tensor([0.5, 0.25], dtype=F64)

    def objective() -> torch.Tensor:
        d = mod.theta - a
        return d @ A @ d + 1.0

    seen: list[tuple[int, float]] = []
    res = optimise_policy(
        objective, mod, max_line_searches=50, on_evaluation=lambda k, v: seen.append((k, v))
    )
    assert res.value == pytest.approx(1.0, abs=1e-10)
    torch.testing.assert_close(mod.theta.detach(), a, rtol=0, atol=1e-6)
    assert res.initial_value > res.value and res.restarts == 0
    # the progress hook sees every evaluation, counted, with the running best
    assert [k for k, _ in seen] == list(range(1, res.evaluations + 1))
    assert [v for _, v in seen] == list(np.minimum.accumulate(res.trace))
    assert seen[-1][1] == res.value


def test_optimise_policy_restarts_after_failure_and_keeps_best() -> None:
    """An objective that is NaN beyond theta_0 > 2: the run fails, restarts, the best is kept."""
    mod = _Quadratic()
    with torch.no_grad():
        mod.theta.copy_(torch.tensor([1.5, 0.0], dtype=F64))

    def objective() -> torch.Tensor:
        t = mod.theta
        J = (t[0] - 4.0) ** 2 + t[1] ** 2
        return torch.where(t[0] > 2.0, torch.full_like(J, float("nan")), J)

    res = optimise_policy(objective, mod, max_line_searches=20, restarts=3, seed=1)
    assert res.failures >= 1 and res.restarts >= 1
    assert np.isfinite(res.value) and res.value <= res.initial_value
    assert float(mod.theta[0]) <= 2.0
    assert float(objective()) == pytest.approx(res.value)


def test_optimise_policy_patience_stops_a_stalled_run() -> None:
    """Improvements below 0.1 % of |J| for `patience` evaluations end the run early (converged).

    J = 5 + 1e-6 |theta - a|^2: every improvement after the first evaluation is < 1e-5,
    so exactly 1 + patience evaluations are made; without patience L-BFGS keeps going.
    """
    a = torch.tensor([0.5, 0.25], dtype=F64)
    mod = _Quadratic()

    def objective() -> torch.Tensor:
        return 5.0 + 1e-6 * ((mod.theta - a) ** 2).sum()

    res = optimise_policy(objective, mod, max_line_searches=100, restarts=0, patience=7)
    assert res.converged == 1 and res.evaluations == 8 and len(res.trace) == 8
    assert res.value <= min(res.trace) and res.value < res.initial_value
    mod2 = _Quadratic()

    def objective2() -> torch.Tensor:
        return 5.0 + 1e-6 * ((mod2.theta - a) ** 2).sum()

    full = optimise_policy(objective2, mod2, max_line_searches=100, restarts=0)
    assert full.converged == 0 and full.evaluations > 8


TINY = PILCOOptions(
    max_trials=3,
    basis=3,
    max_line_searches=3,
    policy_restarts=0,
    horizon=10,
    gp_max_iter=20,
    solved_consecutive=3,
)


def _strip(records: tuple) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for r in records:
        d = dataclasses.asdict(r)
        for k in ("gp_seconds", "policy_seconds"):
            d.pop(k)
        out.append(d)
    return out


def test_pilco_loop_checkpoints_and_resumes(tmp_path: Path) -> None:
    """A run stopped after 2 trials and resumed equals an uninterrupted 3-trial run."""
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    calls: list[tuple[int, int, float]] = []
    full = pilco(
        env, cost, options=TINY, seed=5, out=tmp_path / "full", progress=lambda *a: calls.append(a)
    )
    assert len(full.trials) == 3
    # the live progress hook reports each trial's policy search, ending at its best J
    assert sorted({c[0] for c in calls}) == [1, 2, 3]
    for r in full.trials:
        last = [c for c in calls if c[0] == r.trial][-1]
        assert last[2] == pytest.approx(r.predicted_cost)
    assert [r.trial for r in full.trials] == [1, 2, 3]
    assert [r.interaction_seconds for r in full.trials] == pytest.approx([2.0, 3.0, 4.0])
    for r, traj in zip(full.trials, full.trajectories[1:], strict=True):
        assert r.success == swing_up_success(cost, traj.states, 10)
        assert np.isfinite(r.predicted_cost) and np.isfinite(r.actual_cost)
    for name in ("checkpoint.json", "data.npz", "policy.pt"):
        assert (tmp_path / "full" / name).exists()
    part = tmp_path / "part"
    pilco(env, cost, options=dataclasses.replace(TINY, max_trials=2), seed=5, out=part)
    resumed = pilco(env, cost, options=TINY, seed=5, out=part)
    assert _strip(resumed.trials) == _strip(full.trials)
    names = sorted(q.name for q in save_figures(resumed, env.unwrapped.system, part))  # type: ignore[attr-defined]
    assert names == ["learning_curve.png", "trial_01.png", "trial_02.png", "trial_03.png"]
    for p, q in zip(resumed.policy.parameters(), full.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="max_trials"):
        PILCOOptions(max_trials=0)
    with pytest.raises(ValueError, match="policy"):
        PILCOOptions(policy="mlp")
    with pytest.raises(ValueError, match="horizon"):
        PILCOOptions(horizon=0)
    with pytest.raises(ValueError, match="propagation"):
        PILCOOptions(propagation="particles-ish")
    with pytest.raises(ValueError, match="particles"):
        PILCOOptions(particles=0)


def test_swing_up_success_oracle() -> None:
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    up = np.tile([np.pi, 0.0], (12, 1))
    assert swing_up_success(cost, up, 10)
    up[-3, 0] = np.pi - 0.6  # tip 2 sin(0.3) = 0.59 m away > width 0.5
    assert not swing_up_success(cost, up, 10)
    assert swing_up_success(cost, up, 2)


@pytest.mark.slow
def test_pilco_learns_pendulum_swing_up() -> None:
    """End to end: the swing-up is solved within 6 trials on seed 2 (never used in development).

    Success is the task's own criterion (last second within the 0.5 m cost width),
    checked on the real env; the budget is smaller than PILCO's (40 line searches).
    """
    env = gym.make("gpcontrol/PendulumSwingUp-v0")
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    options = PILCOOptions(basis=20, max_trials=6, max_line_searches=40, policy_restarts=1)
    result = pilco(env, cost, options=options, seed=2)
    assert result.solved
    assert result.first_success is not None
    last = result.trajectories[-1]
    assert swing_up_success(cost, last.states, 10)
