"""Model predictive control: robustness of iLQR-MPC on the cart-pole, warm starts, planners.

The robustness test runs the controller as a policy in ``gpcontrol.rollout.rollout``
on the PILCO cart-pole (pole 0.5 kg) while its internal model has a 0.6 kg pole
(+20 %), with process noise on the velocities, over 50 seeded episodes; the
same seeds run open loop with the first plan fall over, so the test can fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpcontrol.costs import QuadraticCost
from gpcontrol.envs import make_env
from gpcontrol.rollout import rollout
from gpcontrol.solvers import ILQROptions, dlqr, ilqr
from gpcontrol.solvers.mpc import MPC
from gpcontrol.solvers.shooting import CEMOptions
from gpcontrol.systems import CartPole, CartPoleParams, Pendulum

DT = 0.05
STEPS = 80  # 4 s
UPRIGHT = np.array([0.0, np.pi, 0.0, 0.0])
BAND = np.deg2rad(20.0)  # |theta - pi| allowed in the second half of an episode


def _setup(mass_factor: float) -> dict[str, Any]:
    plant = CartPole(dt=DT)
    model = CartPole(CartPoleParams(pole_mass=mass_factor * plant.params.pole_mass), dt=DT)
    Q = DT * np.diag([1.0, 10.0, 0.1, 0.1])
    R = DT * 0.01 * np.eye(1)
    A, B = model.linearize(UPRIGHT, [0.0])
    lq = dlqr(A, B, Q, R)  # infinite-horizon cost-to-go of the model as terminal cost
    cost = QuadraticCost(Q, R, x_target=UPRIGHT, Qf=lq.P)
    env = make_env(
        plant,
        cost,
        x0_mean=UPRIGHT - [0.0, 0.2, 0.0, 0.0],
        x0_std=[0.05, 0.05, 0.1, 0.1],
        process_noise_std=[0.0, 0.0, 0.1, 0.1],
    )
    return dict(plant=plant, model=model, cost=cost, env=env, K=lq.K)


@pytest.fixture(scope="module")
def cartpole() -> dict[str, Any]:
    """Plant pole 0.5 kg, model pole 0.6 kg."""
    return _setup(1.2)


def _stabilised(states: np.ndarray) -> bool:
    second = states[states.shape[0] // 2 :]
    return bool((np.abs(second[:, 1] - np.pi) < BAND).all() and (np.abs(second[:, 0]) < 1.0).all())


@pytest.mark.parametrize("mass_factor", [0.8, 1.2])
def test_ilqr_mpc_stabilises_cartpole_with_wrong_pole_mass_under_noise(mass_factor: float) -> None:
    case = _setup(mass_factor)
    env, model, cost = case["env"], case["model"], case["cost"]
    mpc = MPC(model, cost, 15, options=ILQROptions(max_iterations=10))
    outcomes = []
    for seed in range(50):
        traj = rollout(env, mpc, steps=STEPS, seed=seed)
        assert traj.true_states is not None
        outcomes.append(_stabilised(traj.true_states))
    assert all(outcomes), f"failed seeds: {[s for s, ok in enumerate(outcomes) if not ok]}"


def test_the_same_problem_fails_open_loop(cartpole: dict[str, Any]) -> None:
    """Negative control: one long plan of the wrong model, applied without re-planning."""
    env, model, cost = cartpole["env"], cartpole["model"], cartpole["cost"]
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        plan = ilqr(model, cost, obs, np.zeros((STEPS, 1)), u_low=model.u_low, u_high=model.u_high)
        traj = rollout(env, lambda x, t, U=plan.U: U[t], steps=STEPS, seed=seed)
        assert traj.true_states is not None
        assert not _stabilised(traj.true_states)


def test_warm_start_shifts_the_previous_ilqr_plan(cartpole: dict[str, Any]) -> None:
    model, cost = cartpole["model"], cartpole["cost"]
    seen: list[Any] = []

    def recording_ilqr(dynamics: Any, cost: Any, x0: Any, U_init: Any, **kw: Any) -> Any:
        seen.append(U_init)
        return ilqr(dynamics, cost, x0, U_init, **kw)

    mpc = MPC(model, cost, 12, planner=recording_ilqr, options=ILQROptions(max_iterations=50))
    x0 = UPRIGHT - [0.0, 0.1, 0.0, 0.0]
    u0 = mpc(x0, 0)
    cold = ilqr(model, cost, x0, np.zeros((12, 1)), u_low=model.u_low, u_high=model.u_high,
                options=ILQROptions(max_iterations=50))  # fmt: skip
    np.testing.assert_allclose(u0, cold.U[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(seen[0], np.zeros((12, 1)))
    first = mpc.last_result
    mpc(first.X[1], 1)
    warm = seen[1]
    np.testing.assert_array_equal(warm.U, np.vstack([first.U[1:], first.U[-1:]]))
    np.testing.assert_array_equal(warm.X, np.vstack([first.X[1:], first.X[-1:]]))
    np.testing.assert_array_equal(warm.K, np.concatenate([first.K[1:], first.K[-1:]]))
    # Starting exactly on the shifted plan, the warm start is already near-optimal.
    assert mpc.last_result.iterations <= 3
    # t = 0 starts a new episode from the cold guess again.
    mpc(x0, 0)
    np.testing.assert_array_equal(seen[2], np.zeros((12, 1)))


def test_callable_cold_start_guess_avoids_the_swing_through_optimum(
    cartpole: dict[str, Any],
) -> None:
    """From 0.5 rad, iLQR started at U = 0 lets the pole fall through (a local optimum);
    started from the rollout of the model's LQR law it keeps the pole up."""
    model, cost, K = cartpole["model"], cartpole["cost"], cartpole["K"]
    x0 = UPRIGHT - [0.0, 0.5, 0.0, 0.0]
    calls: list[np.ndarray] = []

    def lqr_rollout(x: np.ndarray) -> np.ndarray:
        calls.append(x.copy())
        U = np.empty((15, 1))
        for t in range(15):
            U[t] = np.clip(K @ (x - UPRIGHT), model.u_low, model.u_high)
            x = model.step(x, U[t])
        return U

    opts = ILQROptions(max_iterations=50)
    cold = MPC(model, cost, 15, options=opts)
    guided = MPC(model, cost, 15, options=opts, U_init=lqr_rollout)
    cold(x0, 0)
    guided(x0, 0)
    assert cold.last_result.X[:, 1].min() < np.pi / 2  # the plan swings the pole down
    assert np.abs(guided.last_result.X[:, 1] - np.pi).max() < 0.51  # never worse than x0
    assert guided.last_result.cost < 0.1 * cold.last_result.cost
    np.testing.assert_array_equal(calls[0], x0)
    guided(guided.last_result.X[1], 1)
    assert len(calls) == 1  # warm-started afterwards


def test_cem_mpc_is_reproducible_and_balances_the_pendulum() -> None:
    system = Pendulum(dt=0.05)
    target = np.array([np.pi, 0.0])
    cost = QuadraticCost(np.diag([1.0, 0.1]), 0.01 * np.eye(1), x_target=target)
    env = make_env(system, cost, x0_mean=target - [0.3, 0.0])
    mpc = MPC(system, cost, 10, planner="cem", options=CEMOptions(100, 10, 4), seed=0)
    a = rollout(env, mpc, steps=30, seed=0)
    b = rollout(env, mpc, steps=30, seed=0)  # t = 0 resets and re-seeds the planner
    np.testing.assert_array_equal(a.controls, b.controls)
    passive = rollout(env, lambda x, t: np.zeros(1), steps=30, seed=0)
    assert a.total_cost < 0.2 * passive.total_cost
    assert abs(a.states[-1, 0] - np.pi) < 0.1


def test_bad_arguments_are_reported(cartpole: dict[str, Any]) -> None:
    model, cost = cartpole["model"], cartpole["cost"]
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        MPC(model, cost, 0)
    with pytest.raises(ValueError, match="planner must be one of"):
        MPC(model, cost, 5, planner="newton")
    with pytest.raises(TypeError, match="must be a ILQROptions|must be a CEMOptions"):
        MPC(model, cost, 5, planner="cem", options=ILQROptions())
    with pytest.raises(ValueError, match=r"U_init must have shape \(5, 1\)"):
        MPC(model, cost, 5, U_init=np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"cost is for \(n, m\) = \(2, 1\)"):
        MPC(model, QuadraticCost(np.eye(2), np.eye(1)), 5)
    mpc = MPC(model, cost, 5)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\)"):
        mpc(np.zeros(3), 0)
