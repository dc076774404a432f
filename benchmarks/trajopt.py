"""Speed of gpcontrol's trajectory optimisation (CasADi + IPOPT) on the standard problems.

For every problem and method it prints the build time (NLP, derivatives and
IPOPT set-up, paid once), the median solve time over ``--repeats`` cold solves
(from the default guess, after one warm-up), IPOPT's iteration count and the
optimal cost. The cart-pole swing-up is also written the naive way — CasADi
``Opti`` with ``MX`` expressions and no ``expand`` — as the baseline; the
ratio of median solve times is printed at the end.

Run (threads pinned to 1 inside the script)::

    python benchmarks/trajopt.py            # 7 repeats
    python benchmarks/trajopt.py --quick    # 3 repeats, no slow problems

Problems (see ``/work/shared/benchmarks/PROBLEMS.md`` for (a)-(c)):

* ``cartpole``: Kelly's minimum-effort swing-up, 1 m in 2 s, N = 100 (problem (a)'s
  system with the terminal state imposed exactly, as in Kelly 2017).
* ``cartpole_min_time``: the same swing-up as fast as possible with |F| <= 20 N.
* ``pendulum``: problem (b), swing-up with |tau| <= 2 (angle 0 = hanging here).
* ``arm``: problem (c), two-link reaching.
* ``mountaincar_min_time``: Gymnasium's mountain car (ODE, RK4), minimum time to p >= 0.45.
* ``arm_joint_limit``: the arm swings its shoulder 2 rad in 1 s, elbow on its 2.8 rad limit.
* ``mountaincar_continuous_min_time``: ``MountainCar.continuous()`` (seconds, RK4), minimum time.
* ``double_pendulum``: swing-up of PILCO's double pendulum in 3 s, effort plus joint speeds.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402

from gpcontrol.solvers.collocation import collocation_scheme  # noqa: E402
from gpcontrol.solvers.trajopt import Constraint, TrajoptOptions, TrajoptProblem  # noqa: E402
from gpcontrol.systems import (  # noqa: E402
    CartPole,
    CartPoleParams,
    DoublePendulum,
    MountainCar,
    Pendulum,
    PendulumParams,
    PlanarArm,
)

try:
    from gpcontrol.costs import QuadraticCost
except ImportError:  # until gpcontrol.costs lands: the same l = 1/2 dx'Q dx + 1/2 u'R u

    class QuadraticCost:  # type: ignore[no-redef]
        def __init__(self, Q: Any, R: Any, *, x_target: Any = None, Qf: Any = None) -> None:
            self.Q, self.R = np.atleast_2d(Q), np.atleast_2d(R)
            self.n, self.m = self.Q.shape[0], self.R.shape[0]
            self.xg = np.zeros(self.n) if x_target is None else np.asarray(x_target, float)
            self.Qf = np.zeros_like(self.Q) if Qf is None else np.atleast_2d(Qf)

        def casadi(self, x: Any, u: Any) -> Any:
            dx = x - self.xg
            return 0.5 * ca.bilin(self.Q, dx, dx) + 0.5 * ca.bilin(self.R, u, u)

        def casadi_terminal(self, x: Any) -> Any:
            dx = x - self.xg
            return 0.5 * ca.bilin(self.Qf, dx, dx)


KELLY_TARGET = (1.0, math.pi, 0.0, 0.0)
Problem = tuple[Any, Any, np.ndarray, int, TrajoptOptions]  # system, cost, x0, N, options


def problems(
    quick: bool,
) -> dict[str, Callable[[], Problem]]:
    """name -> factory of (system, cost, x0, N, options)."""

    def cartpole() -> Problem:
        sys = CartPole(CartPoleParams.kelly(), dt=0.02)
        return (
            sys,
            QuadraticCost(np.zeros((4, 4)), [[2 * 0.02]]),
            np.zeros(4),
            100,
            TrajoptOptions(x_final=KELLY_TARGET),
        )

    def cartpole_min_time() -> Problem:
        sys = CartPole(CartPoleParams.kelly(), dt=0.02)
        return (
            sys,
            None,
            np.zeros(4),
            100,
            TrajoptOptions(
                x_final=KELLY_TARGET, free_final_time=True, final_time_bounds=(0.1, 10.0)
            ),
        )

    def pendulum() -> Problem:
        dt = 0.05
        sys = Pendulum(PendulumParams.benchmark(), dt=dt)
        cost = QuadraticCost(
            dt * np.diag([1.0, 0.1]),
            [[dt * 0.001]],
            x_target=[math.pi, 0.0],
            Qf=np.diag([100.0, 10.0]),
        )
        return sys, cost, np.zeros(2), 100, TrajoptOptions()

    def arm() -> Problem:
        dt = 0.01
        sys = PlanarArm(dt=dt)
        q_goal = sys.inverse_kinematics([-0.20, 0.45])
        cost = QuadraticCost(
            np.zeros((4, 4)),
            dt * np.diag([0.1, 0.1]),
            x_target=[*q_goal, 0.0, 0.0],
            Qf=np.diag([1e3, 1e3, 10.0, 10.0]),
        )
        return sys, cost, np.array([math.pi / 4, math.pi / 2, 0.0, 0.0]), 100, TrajoptOptions()

    def mountaincar_min_time() -> Problem:
        sys = MountainCar()
        goal = Constraint.terminal(lambda x: x[0], lower=0.45, upper=math.inf)
        return (
            sys,
            None,
            np.array([-0.5, 0.0]),
            50,
            TrajoptOptions(
                free_final_time=True,
                final_time=100.0,
                final_time_bounds=(1.0, 1000.0),
                constraints=(goal,),
            ),
        )

    def double_pendulum() -> Problem:
        dt = 0.05
        sys = DoublePendulum(dt=dt)
        upright = [math.pi, 0.0, 0.0, 0.0]
        cost = QuadraticCost(dt * np.diag([0.0, 0.0, 1.0, 1.0]), dt * np.eye(2), x_target=upright)
        return (sys, cost, np.zeros(4), 60, TrajoptOptions(x_final=upright))

    def arm_joint_limit() -> Problem:
        sys = PlanarArm(dt=0.02)
        cost = QuadraticCost(np.zeros((4, 4)), sys.dt * 0.2 * np.eye(2))
        opts = TrajoptOptions(x_final=[2.0, 2.6, 0.0, 0.0])  # the elbow limit 2.8 binds
        return sys, cost, np.array([0.0, 2.6, 0.0, 0.0]), 50, opts

    def mountaincar_continuous_min_time() -> Problem:
        goal = Constraint.terminal(lambda x: x[0], lower=0.45, upper=math.inf)
        opts = TrajoptOptions(
            free_final_time=True,
            final_time=10.0,
            final_time_bounds=(0.1, 100.0),
            constraints=(goal,),
        )
        return MountainCar.continuous(), None, np.array([-0.5, 0.0]), 50, opts

    out = {"cartpole": cartpole, "pendulum": pendulum, "mountaincar_min_time": mountaincar_min_time}
    if not quick:
        out.update(
            cartpole_min_time=cartpole_min_time,
            arm=arm,
            arm_joint_limit=arm_joint_limit,
            mountaincar_continuous_min_time=mountaincar_continuous_min_time,
            double_pendulum=double_pendulum,
        )
    return out


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU (process) time of ``fn()`` over ``repeats`` calls after a warm-up.

    The CPU time is what the solve costs when it has a core to itself; on a
    machine shared with other jobs the wall time also counts the waiting.
    """
    out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def naive_cartpole(N: int, degree: int = 3) -> tuple[ca.Opti, Callable[[], Any]]:
    """Kelly's swing-up by Legendre collocation, written with Opti and MX, no expand."""
    m1, m2, l, g, dt = 1.0, 0.3, 0.5, 9.81, 2.0 / N
    sc = collocation_scheme(degree, "legendre")

    def f(x: ca.MX, u: ca.MX) -> ca.MX:
        s, c = ca.sin(x[1]), ca.cos(x[1])
        D = m1 + m2 * (1 - c**2)
        ddq1 = (l * m2 * s * x[3] ** 2 + u + m2 * g * c * s) / D
        ddq2 = -(l * m2 * c * s * x[3] ** 2 + u * c + (m1 + m2) * g * s) / (l * D)
        return ca.vertcat(x[2], x[3], ddq1, ddq2)

    opti = ca.Opti()
    X = opti.variable(4, N + 1)
    U = opti.variable(1, N)
    J = 0
    opti.subject_to(X[:, 0] == 0)
    guess = np.outer(KELLY_TARGET, np.linspace(0.0, 1.0, N + 1))  # same guess as gpcontrol's
    opti.set_initial(X, guess)
    for k in range(N):
        Xc = opti.variable(4, degree)
        opti.set_initial(Xc, guess[:, [k]] + np.outer(guess[:, k + 1] - guess[:, k], sc.tau[1:]))
        nodes = [X[:, k]] + [Xc[:, j] for j in range(degree)]
        for j in range(1, degree + 1):
            slope = sum(sc.C[r, j] * nodes[r] for r in range(degree + 1))
            opti.subject_to(dt * f(nodes[j], U[:, k]) == slope)
            J = J + sc.B[j] * dt * U[:, k] ** 2
            opti.subject_to(opti.bounded(-2.0, nodes[j][0], 2.0))
        opti.subject_to(X[:, k + 1] == sum(sc.D[r] * nodes[r] for r in range(degree + 1)))
        opti.subject_to(opti.bounded(-20.0, U[:, k], 20.0))
        opti.subject_to(opti.bounded(-2.0, X[0, k + 1], 2.0))
    opti.subject_to(X[:, N] == ca.DM(KELLY_TARGET))
    opti.minimize(J)
    opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "sb": "yes"})
    return opti, opti.solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats, fewer problems")
    args = parser.parse_args()
    repeats = 3 if args.quick else max(5, args.repeats)

    print(
        f"gpcontrol trajopt benchmark: median of {repeats} cold solves, threads pinned to 1, "
        f"casadi {getattr(ca, '__version__', '?')}"
    )
    header = (
        f"{'problem':<22}{'method':<19}{'N':>4}{'build s':>9}{'wall s':>9}{'cpu s':>9}"
        f"{'iters':>7}{'cost':>13}  status"
    )
    print(header)
    print("-" * len(header))
    ours = {}
    for name, make in problems(args.quick).items():
        for method in ("multiple_shooting", "collocation"):
            system, cost, x0, N, opts = make()
            t0 = time.perf_counter()
            problem = TrajoptProblem(system, cost, N, method=method, options=opts)
            build = time.perf_counter() - t0
            wall, cpu, r = timed(functools.partial(problem.solve, x0), repeats)
            ours[name, method] = (wall, cpu)
            print(
                f"{name:<22}{method:<19}{N:>4}{build:>9.3f}{wall:>9.4f}{cpu:>9.4f}"
                f"{r.iterations:>7}{r.cost:>13.6g}  {r.status}"
            )
            if name == "cartpole" and method == "collocation":
                warm_x0 = x0 + np.array([0.01, 0.0, 0.0, 0.0])
                warm = functools.partial(problem.solve, warm_x0, guess=r)
                wall, cpu, rw = timed(warm, repeats)
                print(
                    f"{'  re-solve x0+0.01':<22}{'warm start':<19}{N:>4}{'':>9}{wall:>9.4f}"
                    f"{cpu:>9.4f}{rw.iterations:>7}{rw.cost:>13.6g}  {rw.status}"
                )

    t0 = time.perf_counter()
    opti, solve = naive_cartpole(100)
    sol = solve()
    first = time.perf_counter() - t0
    wall, cpu, sol = timed(solve, repeats)
    iters = sol.stats()["iter_count"]
    print(
        f"{'cartpole (naive Opti)':<22}{'collocation MX':<19}{100:>4}{first - wall:>9.3f}"
        f"{wall:>9.4f}{cpu:>9.4f}{iters:>7}{float(sol.value(opti.f)):>13.6g}  "
        f"{sol.stats()['return_status']}"
    )
    our_wall, our_cpu = ours["cartpole", "collocation"]
    print(
        f"\ncart-pole collocation N=100: gpcontrol {our_wall * 1e3:.1f} ms wall "
        f"({our_cpu * 1e3:.1f} ms CPU) vs naive Opti/MX {wall * 1e3:.1f} ms wall "
        f"({cpu * 1e3:.1f} ms CPU): {wall / our_wall:.1f}x faster by wall time, "
        f"{cpu / our_cpu:.1f}x by CPU time (goal: < 100 ms and >= 3x)"
    )


if __name__ == "__main__":
    main()
