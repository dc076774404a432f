"""Trajectory optimisation on the remaining problems of issue 4, against independent oracles.

Oracles: Pontryagin's bang-bang structure of the minimum-time mountain car,
solved independently by a one-dimensional search over the switching time
with scipy's adaptive integrator; the same problem with and without the arm's
joint limits (the limit binds, and costs more, exactly when the unconstrained
optimum crosses it); the work-energy identity of a frictionless double
pendulum, :math:`E(x_N) - E(x_0) = \\sum_k u_k^\\top (q_{k+1} - q_k)` for
piecewise-constant torques; two transcriptions landing on the same local
optimum, each warm-started from the other.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from gpcontrol.costs import QuadraticCost
from gpcontrol.solvers.trajopt import Constraint, TrajoptOptions, TrajoptResult, trajopt
from gpcontrol.solvers.trajopt import ODESystem as ReExportedODESystem
from gpcontrol.systems import (
    CartPole,
    CartPoleParams,
    DoublePendulum,
    MountainCar,
    MountainCarParams,
    PlanarArm,
)
from gpcontrol.systems.ode_system import ODESystem

METHODS = ("multiple_shooting", "collocation")


def test_ode_system_is_reexported_from_trajopt() -> None:
    assert ReExportedODESystem is ODESystem


# ------------------------------------------------------- continuous mountain car
def test_continuous_mountain_car_is_gymnasium_in_seconds() -> None:
    """Substituting t = tau s in Gymnasium's ODE: accelerations scale by 1 / tau^2."""
    gym_params, cont = MountainCarParams(), MountainCar.continuous()
    tau = 0.1
    x = np.array([[-0.5, 0.01], [0.2, -0.03]])
    u = np.array([[0.7], [-1.0]])
    ode_gym = MountainCar(gym_params).derivative(x, u)  # per Gymnasium step
    ode_cont = cont.derivative(x * [1.0, 1.0 / tau], u)  # velocity in m/s
    np.testing.assert_allclose(ode_cont[:, 1], ode_gym[:, 1] / tau**2, rtol=1e-12)
    np.testing.assert_allclose(ode_cont[:, 0], x[:, 1] / tau, rtol=1e-12)
    assert cont.integrator == "rk4" and cont.dt == 0.1
    assert np.all(np.isinf(cont.x_low)) and np.all(np.isinf(cont.x_high))  # no clip, no wall
    assert cont.params.power < cont.params.gravity  # under-powered: it must swing back


def _bang_bang_arrival(system: MountainCar, x0: np.ndarray, goal: float) -> tuple[float, float]:
    """Fastest arrival at ``p = goal`` with a = -1 then a = +1, over the switching time.

    The ODE is written out again in NumPy (an independent copy of the model).
    """
    P, g, w = system.params.power, system.params.gravity, system.params.hill_frequency

    def rhs(a: float):  # noqa: ANN202
        return lambda t, x: [x[1], P * a - g * math.cos(w * x[0])]

    def arrival(t1: float) -> float:
        def hit(t: float, x: np.ndarray) -> float:
            return float(x[0] - goal)

        hit.terminal = True  # type: ignore[attr-defined]
        hit.direction = 1  # type: ignore[attr-defined]
        back = solve_ivp(rhs(-1.0), (0.0, t1), x0, rtol=1e-11, atol=1e-12)
        forth = solve_ivp(
            rhs(1.0),
            (t1, t1 + 100.0),
            back.y[:, -1],
            events=hit,
            rtol=1e-11,
            atol=1e-12,
        )
        return float(forth.t_events[0][0]) if forth.t_events[0].size else math.inf

    best = minimize_scalar(arrival, bounds=(0.5, 4.0), method="bounded", options={"xatol": 1e-9})
    return float(best.x), float(best.fun)


def test_minimum_time_continuous_mountain_car() -> None:
    system = MountainCar.continuous()
    goal = system.params.goal_position
    x0 = np.array([-0.5, 0.0])
    opts = TrajoptOptions(
        free_final_time=True,
        final_time=10.0,
        final_time_bounds=(0.1, 100.0),
        constraints=(Constraint.terminal(lambda x: x[0], lower=goal, upper=np.inf),),
    )
    switch, t_min = _bang_bang_arrival(system, x0, goal)
    for method in METHODS:
        r = trajopt(system, None, x0, 50, method=method, options=opts)
        assert r.status == "solved", r.message
        assert r.cost == pytest.approx(r.final_time, rel=1e-12)  # J = T
        # RK4 / collocation with h = T/50: the time agrees to the discretisation error
        assert r.final_time == pytest.approx(t_min, rel=1e-5)
        assert r.X[-1, 0] >= goal - 1e-9
        # one switch from full reverse to full throttle, within one interval of scipy's
        assert np.all(np.abs(np.abs(r.U[:, 0]) - 1.0) < 1e-5)
        k = np.flatnonzero(np.diff(np.sign(r.U[:, 0])))
        assert k.size == 1 and r.U[0, 0] < 0 and abs(r.t[k[0] + 1] - switch) <= r.t[1]


# ------------------------------------------------------------ minimum-time cart-pole
def test_minimum_time_cart_pole_swing_up() -> None:
    """Kelly's cart-pole, |F| <= 20 N: upright at rest over the start as fast as possible."""
    system = CartPole(CartPoleParams.kelly(), dt=0.04)
    target = [0.0, math.pi, 0.0, 0.0]
    opts = TrajoptOptions(
        free_final_time=True, final_time=2.0, final_time_bounds=(0.1, 10.0), x_final=target
    )
    runs = {m: trajopt(system, None, np.zeros(4), 50, method=m, options=opts) for m in METHODS}
    for r in runs.values():
        assert r.status == "solved", r.message
        np.testing.assert_allclose(r.X[-1], target, atol=1e-9)
        assert np.mean(np.abs(r.U[:, 0]) > 20.0 - 1e-4) > 0.7  # mostly bang-bang
    t_ms, t_col = (runs[m].final_time for m in METHODS)
    assert t_ms == pytest.approx(t_col, rel=1e-5)  # two transcriptions, one optimum
    # minimality: with 1 % less time the target is out of reach, with 1 % more it is not
    col = runs["collocation"]
    fixed = {s: TrajoptOptions(final_time=s * col.final_time, x_final=target) for s in (0.99, 1.01)}
    shorter, longer = (
        trajopt(system, None, np.zeros(4), 50, method="collocation", guess=col, options=fixed[s])
        for s in (0.99, 1.01)
    )
    assert shorter.status == "infeasible" and longer.status == "solved"


# ------------------------------------------------------------ arm with joint limits
def _arm_problem(method: str, limits: bool) -> tuple[PlanarArm, TrajoptResult]:
    """Li-Todorov arm, elbow bent near its 2.8 rad limit, shoulder swings 2 rad in 1 s."""
    arm = PlanarArm(dt=0.02)
    effort = QuadraticCost(np.zeros((4, 4)), arm.dt * 0.2 * np.eye(2))  # 0.1 int |tau|^2 dt
    free = np.full(4, np.inf)
    target = [2.0, 2.6, 0.0, 0.0]
    opts = (
        TrajoptOptions(x_final=target)
        if limits
        else TrajoptOptions(x_final=target, x_low=-free, x_high=free)
    )
    r = trajopt(arm, effort, [0.0, 2.6, 0.0, 0.0], 50, method=method, options=opts)
    assert r.status == "solved", r.message
    return arm, r


@pytest.mark.parametrize("method", METHODS)
def test_arm_point_to_point_with_active_joint_limit(method: str) -> None:
    arm, limited = _arm_problem(method, limits=True)
    _, free = _arm_problem(method, limits=False)
    elbow_max = arm.x_high[1]
    assert elbow_max == pytest.approx(2.8)  # PlanarArm()'s default elbow limit
    assert free.X[:, 1].max() > elbow_max + 0.01  # unconstrained, the elbow overshoots
    # the limit binds (an interior-point iterate stays inside by ~ complementarity / multiplier)
    assert limited.X[:, 1].max() == pytest.approx(elbow_max, abs=1e-6)
    assert np.all(limited.X[:, :2] >= arm.x_low[:2] - 1e-9)
    assert np.all(limited.X[:, :2] <= arm.x_high[:2] + 1e-9)
    if method == "collocation":  # also between the knots
        assert limited.collocation_states[:, :, 1].max() <= elbow_max + 1e-9
    assert limited.cost > free.cost  # an active constraint costs something
    np.testing.assert_allclose(limited.X[-1], [2.0, 2.6, 0.0, 0.0], atol=1e-9)
    if method == "multiple_shooting":
        np.testing.assert_allclose(arm.simulate(limited.X[0], limited.U), limited.X, atol=1e-6)


# ---------------------------------------------------------- double-pendulum swing-up
UPRIGHT = (math.pi, 0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def double_pendulum_runs() -> tuple[DoublePendulum, QuadraticCost, dict[str, TrajoptResult]]:
    """3 s swing-up from hanging at rest to upright at rest; effort plus joint speeds."""
    system = DoublePendulum(dt=0.05)
    dt = system.dt
    cost = QuadraticCost(dt * np.diag([0.0, 0.0, 1.0, 1.0]), dt * np.eye(2), x_target=UPRIGHT)
    opts = TrajoptOptions(x_final=UPRIGHT)
    runs = {m: trajopt(system, cost, np.zeros(4), 60, method=m, options=opts) for m in METHODS}
    return system, cost, runs


@pytest.mark.parametrize("method", METHODS)
def test_double_pendulum_swing_up(double_pendulum_runs, method: str) -> None:
    system, _, runs = double_pendulum_runs
    r = runs[method]
    assert r.status == "solved", r.message
    np.testing.assert_allclose(r.X[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(r.X[-1], UPRIGHT, atol=1e-9)
    assert np.all(np.abs(r.U) <= system.u_high + 1e-9)
    assert np.abs(r.U[:, 0]).max() == pytest.approx(system.u_high[0], abs=1e-6)  # bound active
    # frictionless: the energy gained, m g (0.5 + 1.5) m = 9.82 J (centres of mass rise
    # 0.5 m and 1.5 m), is the work of the piecewise-constant torques, sum_k u_k.(q_{k+1} - q_k)
    gain = float(np.diff(system.energy(r.X[[0, -1]]))[0])
    work = float(np.sum(r.U * np.diff(r.X[:, :2], axis=0)))
    assert gain == pytest.approx(9.82, rel=1e-12)
    assert work == pytest.approx(gain, abs=1e-3)  # 1e-4 relative: RK4 at h = 0.05 s
    if method == "multiple_shooting":  # each step is the system's own (an open-loop replay
        # of an unstable swing-up would amplify the 1e-10 defects past any fixed tolerance)
        np.testing.assert_allclose(system.step(r.X[:-1], r.U), r.X[1:], atol=1e-8)


def test_double_pendulum_methods_share_the_optimum(double_pendulum_runs) -> None:
    """Each transcription, warm-started from the other's solution, returns to its own optimum."""
    system, cost, runs = double_pendulum_runs
    opts = TrajoptOptions(x_final=UPRIGHT)
    ms, col = runs["multiple_shooting"], runs["collocation"]
    assert ms.cost == pytest.approx(col.cost, rel=2e-3)  # discretisation gap
    for method, other, own in (("collocation", ms, col), ("multiple_shooting", col, ms)):
        again = trajopt(system, cost, np.zeros(4), 60, method=method, guess=other, options=opts)
        assert again.status == "solved" and again.iterations <= 12
        assert again.cost == pytest.approx(own.cost, rel=1e-7)
        np.testing.assert_allclose(again.U, own.U, atol=1e-4)
