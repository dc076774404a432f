"""Trajectory optimisation (multiple shooting and collocation) against independent oracles.

Oracles: exact polynomial quadrature and differentiation for the collocation
tables; Kelly's cart-pole optimum (58.8 N^2 s) and the agreement of two
independent transcriptions as N grows; re-simulation with the system's own
step; scipy's adaptive integrator for the interpolation error; finite
differences of the optimal cost for the costates; the same constraint written
three ways; infeasibility of a shorter horizon for a minimum-time solution.
"""

from __future__ import annotations

import math
from typing import Any

import casadi as ca
import gymnasium as gym
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import gpcontrol.envs  # noqa: F401 - registers the Gymnasium ids
from gpcontrol.costs import QuadraticCost
from gpcontrol.solvers.collocation import collocation_scheme, lagrange_basis
from gpcontrol.solvers.ilqr import ilqr
from gpcontrol.solvers.lqr import dlqr, tvlqr
from gpcontrol.solvers.trajopt import (
    Constraint,
    ODESystem,
    TrajoptOptions,
    TrajoptProblem,
    TrajoptResult,
    linear_guess,
    trajopt,
)
from gpcontrol.systems import CartPole, CartPoleParams, MountainCar, Pendulum, PendulumParams

KELLY_OPTIMUM = 58.8  # N^2 s, Hermite-Simpson with N = 50 (our CasADi/IPOPT reference), 3 digits
KELLY_TARGET = (1.0, math.pi, 0.0, 0.0)
METHODS = ("multiple_shooting", "collocation")


def kelly(N: int, method: str) -> tuple[CartPole, TrajoptResult]:
    """Kelly's minimum-effort swing-up: 1 m in 2 s, |F| <= 20 N, |p| <= 2 m."""
    dt = 2.0 / N
    system = CartPole(CartPoleParams.kelly(), dt=dt)
    effort = QuadraticCost(np.zeros((4, 4)), [[2.0 * dt]])  # l = dt F^2, so J ~ int F^2 dt
    result = trajopt(
        system, effort, np.zeros(4), N, method=method, options=TrajoptOptions(x_final=KELLY_TARGET)
    )
    assert result.status == "solved", result.message
    return system, result


@pytest.fixture(scope="module")
def kelly_runs() -> dict[tuple[int, str], tuple[CartPole, TrajoptResult]]:
    return {(N, method): kelly(N, method) for N in (25, 50, 100) for method in METHODS}


def pendulum_problem(dt: float = 0.05) -> tuple[Pendulum, QuadraticCost]:
    """Benchmark (b), gpcontrol's angles (theta = pi upright): |tau| <= 2 < m g l_c = 5."""
    system = Pendulum(PendulumParams.benchmark(), dt=dt)
    cost = QuadraticCost(
        dt * np.diag([1.0, 0.1]), [[dt * 0.01]], x_target=[math.pi, 0.0], Qf=np.diag([100.0, 10.0])
    )
    return system, cost


# ------------------------------------------------------------- collocation tables
@pytest.mark.parametrize("scheme,exact_degree", [("legendre", 5), ("radau", 4)])
def test_collocation_tables_are_exact_on_polynomials(scheme: str, exact_degree: int) -> None:
    sc = collocation_scheme(3, scheme)
    rng = np.random.default_rng(0)
    c = rng.normal(size=exact_degree + 1)  # random polynomial of the exact degree
    poly = np.polynomial.Polynomial(c)
    assert sc.B @ poly(sc.tau) == pytest.approx(poly.integ()(1.0) - poly.integ()(0.0), rel=1e-12)
    cubic = np.polynomial.Polynomial(c[:4])  # degree d: represented exactly by the nodes
    np.testing.assert_allclose(
        sc.C.T @ cubic(sc.tau), cubic.deriv()(sc.tau), rtol=1e-11, atol=1e-11
    )
    assert sc.D @ cubic(sc.tau) == pytest.approx(cubic(1.0), rel=1e-12)
    np.testing.assert_allclose(
        lagrange_basis(sc.tau, [0.3]) @ cubic(sc.tau), cubic([0.3]), rtol=1e-12
    )
    if scheme == "radau":
        assert sc.tau[-1] == pytest.approx(1.0)


# ---------------------------------------------------------------- cart-pole (Kelly)
def test_kelly_collocation_matches_reference(kelly_runs) -> None:
    J50 = kelly_runs[50, "collocation"][1].cost
    J100 = kelly_runs[100, "collocation"][1].cost
    # piecewise-constant controls: the cost error is O(h^2); Richardson gives the limit
    limit = J100 + (J100 - J50) / 3
    error_50 = abs(J50 - limit)
    assert abs(limit - KELLY_OPTIMUM) < 0.05  # the reference's own rounding
    assert abs(J50 - KELLY_OPTIMUM) <= error_50 + 0.05


def test_kelly_methods_converge_to_the_same_optimum(kelly_runs) -> None:
    gaps = [
        abs(kelly_runs[N, "multiple_shooting"][1].cost - kelly_runs[N, "collocation"][1].cost)
        for N in (25, 50, 100)
    ]
    assert gaps[1] < gaps[0] / 4 and gaps[2] < gaps[1] / 4, gaps
    for (N, _), (_, r) in kelly_runs.items():
        assert r.X.shape == (N + 1, 4) and r.U.shape == (N, 1) and r.t[-1] == pytest.approx(2.0)
        np.testing.assert_allclose(r.X[-1], KELLY_TARGET, atol=1e-9)
        assert np.all(np.abs(r.U) <= 20.0) and np.all(np.abs(r.X[:, 0]) <= 2.0)
        assert r.constraint_violation < 1e-8


def test_multiple_shooting_replays_with_system_step(kelly_runs) -> None:
    system, r = kelly_runs[50, "multiple_shooting"]
    np.testing.assert_allclose(system.simulate(r.X[0], r.U), r.X, atol=1e-6)
    pend, cost = pendulum_problem()
    rp = trajopt(pend, cost, [0.0, 0.0], 100)
    np.testing.assert_allclose(pend.simulate(rp.X[0], rp.U), rp.X, atol=1e-6)


def test_coarse_solution_warm_starts_a_finer_grid(kelly_runs) -> None:
    coarse = kelly_runs[50, "collocation"][1]  # resampled through its interpolant
    for method in METHODS:
        system, cold = kelly_runs[100, method]
        effort = QuadraticCost(np.zeros((4, 4)), [[2.0 * system.dt]])
        fine = trajopt(
            system,
            effort,
            np.zeros(4),
            100,
            method=method,
            guess=coarse,
            options=TrajoptOptions(x_final=KELLY_TARGET),
        )
        assert fine.status == "solved" and fine.iterations < cold.iterations / 2
        assert fine.cost == pytest.approx(cold.cost, rel=1e-8)


def _scipy_interval_gap(system, r: TrajoptResult) -> float:
    """Max gap between the interpolant and scipy's RK45 (rtol 1e-11) from each knot."""
    N, h = r.U.shape[0], r.final_time / r.U.shape[0]
    gap = 0.0
    for k in range(N):
        sol = solve_ivp(
            lambda t, x, u=r.U[k]: system.derivative(x, u),
            (0.0, h),
            r.X[k],
            t_eval=h * np.array([0.25, 0.5, 0.75, 1.0]),
            rtol=1e-11,
            atol=1e-12,
        )
        planned = r.interpolate(r.t[k] + sol.t)
        gap = max(gap, float(np.abs(planned - sol.y.T).max()))
    return gap


def test_collocation_reports_its_interpolation_error(kelly_runs) -> None:
    system, r = kelly_runs[50, "collocation"]
    assert r.interpolation_error == pytest.approx(_scipy_interval_gap(system, r), rel=1e-3)
    # interpolant of degree 3: the local error falls by at least 2^3 when h halves
    assert kelly_runs[100, "collocation"][1].interpolation_error < r.interpolation_error / 8
    # the interpolant passes through the knots and the collocation points
    np.testing.assert_allclose(r.interpolate(r.t), r.X, atol=1e-9)
    h = r.t[1]
    tc = r.t[:-1, None] + r.collocation_nodes[None, 1:] * h
    np.testing.assert_allclose(r.interpolate(tc), r.collocation_states, atol=1e-12)
    np.testing.assert_array_equal(r.control(r.t[:-1] + h / 2), r.U)
    # multiple shooting: the Hermite interpolant against the same reference
    system, r = kelly_runs[50, "multiple_shooting"]
    assert r.interpolation_error == pytest.approx(_scipy_interval_gap(system, r), rel=1e-3)
    np.testing.assert_allclose(r.interpolate(r.t), r.X, atol=1e-12)


# ------------------------------------------------------------------- pendulum
@pytest.mark.parametrize("method", METHODS)
def test_pendulum_swing_up_with_weak_motor(method: str) -> None:
    system, cost = pendulum_problem()
    p = system.params
    u_max = p.max_torque
    assert u_max < p.mass * p.gravity * p.lc  # cannot lift it in one go
    r = trajopt(
        system, cost, [0.0, 0.0], 100, method=method, options=TrajoptOptions(x_final=[math.pi, 0.0])
    )
    assert r.status == "solved", r.message
    np.testing.assert_allclose(r.X[-1], [math.pi, 0.0], atol=1e-9)
    assert np.abs(r.U).max() == pytest.approx(u_max, abs=1e-6)  # the bound is active
    assert np.abs(r.U).max() <= u_max
    swings = np.count_nonzero(np.diff(np.sign(r.X[1:-1, 1])))  # velocity reversals = pumping
    assert swings >= 2


@pytest.mark.parametrize(
    "method,scheme",
    [("multiple_shooting", "legendre"), ("collocation", "legendre"), ("collocation", "radau")],
)
def test_costates_are_gradients_of_the_optimal_cost(method: str, scheme: str) -> None:
    system, cost = pendulum_problem()
    problem = TrajoptProblem(
        system,
        cost,
        100,
        method=method,
        options=TrajoptOptions(scheme=scheme, x_final=[math.pi, 0.0]),
    )
    x0 = np.array([0.1, 0.2])
    r = problem.solve(x0)
    eps = 1e-5
    grad = np.zeros(2)
    for i in range(2):
        e = np.eye(2)[i] * eps
        grad[i] = (problem.solve(x0 + e, guess=r).cost - problem.solve(x0 - e, guess=r).cost) / (
            2 * eps
        )
    np.testing.assert_allclose(r.costates[0], grad, rtol=1e-4, atol=1e-6)
    assert r.costates.shape == (101, 2)


def test_reuse_and_warm_start() -> None:
    system, cost = pendulum_problem()
    r = trajopt(system, cost, [0.1, 0.2], 100)
    again = trajopt(system, cost, [0.11, 0.2], 100, guess=r)  # multipliers reused
    cold = trajopt(
        system, cost, [0.11, 0.2], 100, guess=r, options=TrajoptOptions(warm_start=False)
    )
    assert r.build_time > 0 and cold.build_time > 0 and again.build_time > 0  # the warm solver
    assert trajopt(system, cost, [0.12, 0.2], 100, guess=again).build_time == 0.0  # cached
    assert again.iterations <= 6 and again.iterations < cold.iterations / 2
    assert again.cost == pytest.approx(cold.cost, rel=1e-7)


def test_ilqr_and_multiple_shooting_agree() -> None:
    """The same discrete-time problem: two independent solvers, each warm-started by the other."""
    system, _ = pendulum_problem()
    dt = system.dt
    cost = QuadraticCost(
        dt * np.diag([1.0, 0.1]), [[dt * 0.01]], x_target=[math.pi, 0.0], Qf=np.diag([100.0, 10.0])
    )
    x0, N = np.array([2.5, 0.0]), 60  # |tau| <= 2 cannot hold it: it swings back and up
    shooting = trajopt(system, cost, x0, N)
    lq = ilqr(system, cost, x0, np.zeros((N, 1)), u_low=system.u_low, u_high=system.u_high)
    assert shooting.status == "solved" and lq.status == "converged"
    assert np.abs(shooting.U).max() == pytest.approx(2.0, abs=1e-6)
    assert shooting.cost == pytest.approx(lq.cost, rel=1e-6)
    assert cost.total(shooting.X, shooting.U) == pytest.approx(shooting.cost, rel=1e-12)
    np.testing.assert_allclose(shooting.U, lq.U, atol=1e-3)
    from_lq = trajopt(system, cost, x0, N, guess=lq)
    from_shooting = ilqr(system, cost, x0, shooting.U, u_low=system.u_low, u_high=system.u_high)
    assert from_lq.iterations <= 4 < shooting.iterations
    assert from_shooting.iterations <= 3 < lq.iterations
    assert from_lq.cost == pytest.approx(lq.cost, rel=1e-8)


# ----------------------------------------------------------- user ODE and constraints
def test_user_casadi_ode_matches_builtin_system() -> None:
    builtin = CartPole(CartPoleParams.kelly(), dt=0.04)
    x, u = ca.MX.sym("x", 4), ca.MX.sym("u", 1)
    f = ca.Function("f", [x, u], [builtin.ode(x, u)])
    user = ODESystem(
        f,
        dt=0.04,
        u_low=[-20.0],
        u_high=[20.0],
        x_low=[-2, -np.inf, -np.inf, -np.inf],
        x_high=[2, np.inf, np.inf, np.inf],
    )
    effort = QuadraticCost(np.zeros((4, 4)), [[0.08]])
    opts = TrajoptOptions(x_final=KELLY_TARGET)
    for method in METHODS:
        a = trajopt(builtin, effort, np.zeros(4), 50, method=method, options=opts)
        b = trajopt(user, effort, np.zeros(4), 50, method=method, options=opts)
        assert b.status == "solved" and b.cost == pytest.approx(a.cost, rel=1e-9)
        np.testing.assert_allclose(b.U, a.U, atol=1e-6)


def test_the_same_constraint_three_ways() -> None:
    system = CartPole(CartPoleParams.kelly(), dt=0.04)
    effort = QuadraticCost(np.zeros((4, 4)), [[0.08]])
    free = trajopt(system, effort, np.zeros(4), 50, options=TrajoptOptions(x_final=KELLY_TARGET))
    cap = 0.8 * free.X[:, 2].max()  # a cart speed limit that binds
    x_high = [2.0, np.inf, cap, np.inf]
    variants = [
        TrajoptOptions(x_final=KELLY_TARGET, x_high=x_high),
        TrajoptOptions(
            x_final=KELLY_TARGET, constraints=(Constraint.path(lambda x, u: x[2] - cap),)
        ),
        TrajoptOptions(
            x_final=KELLY_TARGET,
            constraints=(Constraint.trajectory(lambda X, U: X[:, 2], upper=cap),),
        ),
    ]
    costs = []
    for opts in variants:
        r = trajopt(system, effort, np.zeros(4), 50, options=opts)
        assert r.status == "solved", r.message
        assert r.X[:, 2].max() == pytest.approx(cap, abs=1e-7)
        costs.append(r.cost)
    np.testing.assert_allclose(costs, costs[0], rtol=1e-7)
    assert costs[0] > free.cost


def test_infeasible_target_reports_status() -> None:
    x, u = ca.SX.sym("x", 2), ca.SX.sym("u")
    double_integrator = ODESystem(
        ca.Function("f", [x, u], [ca.vertcat(x[1], u)]), dt=0.1, u_low=[-1.0], u_high=[1.0]
    )
    for method in METHODS:  # 10 m in 1 s with |a| <= 1: at most 0.5 m
        r = trajopt(
            double_integrator,
            None,
            [0.0, 0.0],
            10,
            method=method,
            options=TrajoptOptions(x_final=[10.0, 0.0]),
        )
        assert r.status == "infeasible" and not r.success
        assert r.message == "Infeasible_Problem_Detected"
        assert r.constraint_violation > 0.1


# ---------------------------------------------------------- closed-loop tracking
def test_tvlqr_tracks_the_swing_up_in_the_noisy_env() -> None:
    """Plan on the model, track with TV-LQR in the Gymnasium env under noise: >= 95 of 100."""
    N = 30  # 3 s at PILCO's 0.1 s
    env = gym.make(
        "gpcontrol/CartPoleSwingUp-v0",
        max_episode_steps=N,
        process_noise_std=0.01,
        measurement_noise_std=0.005,
    )  # x0 spread 0.1
    system = env.unwrapped.system  # type: ignore[attr-defined]
    upright = np.array([0.0, math.pi, 0.0, 0.0])
    dt = system.dt
    cost = QuadraticCost(dt * np.diag([1.0, 0.0, 0.1, 0.0]), [[dt * 0.1]], x_target=upright)
    plan = trajopt(
        system,
        cost,
        np.zeros(4),
        N,  # leave 3 N of the 10 N for feedback
        options=TrajoptOptions(x_final=upright, u_low=[-7.0], u_high=[7.0]),
    )
    assert plan.status == "solved", plan.message
    Q, R = np.diag([10.0, 10.0, 1.0, 1.0]), np.array([[0.01]])
    A, B = system.linearize(upright, np.zeros(1))
    controller = tvlqr(system, plan.X, plan.U, Q, R, dlqr(A, B, Q, R).P)

    def run(policy) -> int:
        successes = 0
        for seed in range(100):
            y, info = env.reset(seed=seed)
            for t in range(N):
                y, _, _, _, info = env.step(policy(t, y))
            x = info["state"]
            successes += abs(x[1] - math.pi) < 0.1 and abs(x[0]) < 0.1
        return successes

    assert run(controller.control) >= 95
    assert run(lambda t, y: plan.U[t]) <= 10  # the plan alone does not survive the noise (0)


# ------------------------------------------------------------------ mountain car
def test_minimum_time_mountain_car() -> None:
    system = MountainCar()  # Gymnasium's constants; trajopt uses its ODE with RK4, no clipping
    goal = Constraint.terminal(lambda x: x[0], lower=system.params.goal_position, upper=np.inf)
    opts = TrajoptOptions(
        free_final_time=True, final_time=100.0, final_time_bounds=(1.0, 1000.0), constraints=(goal,)
    )
    x0 = [-0.5, 0.0]
    ms = trajopt(system, None, x0, 50, method="multiple_shooting", options=opts)
    col = trajopt(system, None, x0, 50, method="collocation", options=opts)
    for r in (ms, col):
        assert r.status == "solved", r.message
        assert r.X[-1, 0] >= 0.45 - 1e-9 and r.cost == pytest.approx(r.final_time)
        assert np.mean(np.abs(r.U[:, 0]) > 0.999) > 0.9  # bang-bang
        assert np.all(np.abs(r.X[:, 1]) <= 0.07)
    assert ms.final_time == pytest.approx(col.final_time, rel=1e-4)
    # accurate replay of the piecewise-constant controls reaches the goal
    sol = solve_ivp(
        lambda t, x: system.derivative(x, col.control(min(t, col.final_time))),
        (0.0, col.final_time),
        x0,
        rtol=1e-10,
        atol=1e-12,
        max_step=col.t[1],
    )
    assert sol.y[0, -1] >= 0.45 - 1e-4
    # minimality: 1 % less time is infeasible, 1 % more is feasible
    fixed = lambda T: TrajoptOptions(final_time=T, constraints=(goal,))  # noqa: E731
    shorter = trajopt(
        system, None, x0, 50, method="collocation", options=fixed(0.99 * col.final_time), guess=col
    )
    longer = trajopt(
        system, None, x0, 50, method="collocation", options=fixed(1.01 * col.final_time), guess=col
    )
    assert shorter.status == "infeasible" and longer.status == "solved"


# ----------------------------------------------------------------- save / load, validation
def test_save_load_round_trip(kelly_runs, tmp_path) -> None:
    for method in METHODS:
        r = kelly_runs[25, method][1]
        path = r.save(tmp_path / method)
        assert path.suffix == ".npz"
        back = TrajoptResult.load(path)
        for name in TrajoptResult._ARRAYS:
            np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
        for name in ("cost", "status", "message", "iterations", "method", "interpolation_error"):
            assert getattr(back, name) == getattr(r, name)
        t = np.linspace(0.0, 2.0, 37)
        np.testing.assert_array_equal(back.interpolate(t), r.interpolate(t))


def test_linear_guess() -> None:
    X, U = linear_guess([0.0, 1.0], [2.0, 1.0], 4, 3)
    np.testing.assert_allclose(X[:, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    assert U.shape == (4, 3) and not U.any()


def test_bad_arguments_name_themselves() -> None:
    system, cost = pendulum_problem()
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(x0=[0.0, 0.0, 0.0]), "x0"),
        (dict(horizon=0), "horizon"),
        (dict(method="shooting"), "method"),
        (dict(options=TrajoptOptions(u_low=[3.0], u_high=[1.0])), "u_low"),
        (dict(options=TrajoptOptions(x_final=[1.0])), "x_final"),
        (dict(guess=(np.zeros((5, 2)), np.zeros((4, 1)))), "guess X"),
        (dict(x0=[0.0, 0.0], options=TrajoptOptions(x_low=[1.0, -9.0], x_high=[2.0, 9.0])), "x0"),
    ]
    for kwargs, name in cases:
        args: dict[str, Any] = dict(system=system, cost=cost, x0=[0.0, 0.0], horizon=10)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            trajopt(
                args.pop("system"), args.pop("cost"), args.pop("x0"), args.pop("horizon"), **args
            )
    with pytest.raises(ValueError, match="degree"):
        TrajoptOptions(degree=0)
    with pytest.raises(ValueError, match="final_time_bounds"):
        TrajoptOptions(final_time_bounds=(5.0, 1.0))
    with pytest.raises(ValueError, match="cost.n"):
        trajopt(system, QuadraticCost(np.eye(3), np.eye(1)), [0.0, 0.0], 10)
    with pytest.raises(ValueError, match="path constraint"):
        trajopt(
            system,
            cost,
            [0.0, 0.0],
            10,
            options=TrajoptOptions(
                constraints=(Constraint.path(lambda x, u: x, upper=[1.0, 2.0, 3.0]),)
            ),
        )
    with pytest.raises(TypeError, match="casadi.Function"):
        ODESystem(lambda x, u: x, dt=0.1, u_low=[-1.0], u_high=[1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="system"):
        trajopt(object(), cost, [0.0, 0.0], 10)  # type: ignore[arg-type]
