"""Optimal-control solvers on the standard problems of benchmarks/PROBLEMS.md.

Runs, one after another with every thread pool pinned to one thread:

* (a) cart-pole, (b) pendulum, (c) arm2: gpcontrol's iLQR and DDP (compiled
  kernels when a C compiler is present; also iLQR on the pure CasADi/NumPy
  fallback), and CasADi + IPOPT multiple shooting (``expand=True``) as the
  peer. crocoddyl and mpc.pytorch are reported as skipped when not installed.
* (d) random discrete LQR: gpcontrol ``dlqr``, ``scipy.linalg.solve_discrete_are``
  and python-control ``dlqr``.

Every solver gets the same discrete-time problem (RK4, dt, N, cost with the
``dt * 0.5`` weighting, bounds) and the same initial guess (U = 0; for multiple
shooting X = the rollout of U = 0). Times are the median of ``--repeats`` cold
solves after one warm-up; one-time compile/setup is reported separately.

Usage::

    python benchmarks/solvers.py                # all problems, 5 repeats
    python benchmarks/solvers.py --repeats 9 --problems cartpole lqr
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg as sla  # noqa: E402

from gpcontrol.costs import QuadraticCost  # noqa: E402
from gpcontrol.solvers import ILQROptions, ddp, dlqr, ilqr  # noqa: E402
from gpcontrol.systems import (  # noqa: E402
    CartPole,
    CartPoleParams,
    Pendulum,
    PendulumParams,
    PlanarArm,
)

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover - optional
    pass


# ---------------------------------------------------------------------------- problems
@dataclass
class Problem:
    name: str
    system: Any
    cost: QuadraticCost
    x0: np.ndarray
    T: int
    u_max: float

    @property
    def lo(self) -> np.ndarray:
        return -self.u_max * np.ones(self.system.m)

    @property
    def hi(self) -> np.ndarray:
        return self.u_max * np.ones(self.system.m)


def _make(name: str, system: Any, x0, xg, Q, R, Qf, T: int, u_max: float) -> Problem:
    """J = sum dt * 0.5 ((x-xg)'Q(x-xg) + u'Ru) + 0.5 (x_N-xg)'Qf(x_N-xg)."""
    dt = system.dt
    cost = QuadraticCost(dt * np.diag(Q), dt * np.diag(R), x_target=xg, Qf=np.diag(Qf))
    return Problem(name, system, cost, np.asarray(x0, float), T, u_max)


def cartpole() -> Problem:
    """(a) Kelly's cart-pole: point mass on a massless pole, dt = 0.02, N = 100."""
    sys_ = CartPole(CartPoleParams.kelly(), dt=0.02)
    return _make(
        "cartpole",
        sys_,
        [0, 0, 0, 0],
        [1.0, np.pi, 0, 0],
        [0, 0, 0, 0],
        [1.0],
        [1e3, 1e3, 1e2, 1e2],
        100,
        20.0,
    )


def pendulum() -> Problem:
    """(b) Pendulum-v1 rod; gpcontrol measures theta from hanging (theta_bench = theta - pi)."""
    sys_ = Pendulum(PendulumParams.benchmark(), dt=0.05)
    # x0 = [pi, 0], xg = [0, 0] in the benchmark's angle from upright.
    return _make(
        "pendulum", sys_, [0.0, 0.0], [np.pi, 0.0], [1.0, 0.1], [0.001], [100.0, 10.0], 100, 2.0
    )


def arm2() -> Problem:
    """(c) Li & Todorov two-link arm reaching (-0.20, 0.45), dt = 0.01, N = 100."""
    sys_ = PlanarArm(dt=0.01)
    q = sys_.inverse_kinematics([-0.20, 0.45])
    return _make(
        "arm2",
        sys_,
        [np.pi / 4, np.pi / 2, 0, 0],
        [q[0], q[1], 0, 0],
        [0, 0, 0, 0],
        [0.1, 0.1],
        [1e3, 1e3, 10, 10],
        100,
        5.0,
    )


def _check_models(rng: np.random.Generator) -> None:
    """The systems' ODEs equal the formulas of PROBLEMS.md at random points."""
    cp = cartpole().system
    m1, m2, l, g = 1.0, 0.3, 0.5, 9.81
    pe = pendulum().system
    arm = arm2().system
    for _ in range(5):
        x = rng.uniform(-3, 3, 4)
        F = rng.uniform(-20, 20)
        s, c = math.sin(x[1]), math.cos(x[1])
        D = m1 + m2 * (1 - c * c)
        dd1 = (l * m2 * s * x[3] ** 2 + F + m2 * g * c * s) / D
        dd2 = -(l * m2 * c * s * x[3] ** 2 + F * c + (m1 + m2) * g * s) / (l * D)
        np.testing.assert_allclose(cp.derivative(x, [F]), [x[2], x[3], dd1, dd2], rtol=1e-12)
        th, w, u = rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-2, 2)
        up = th - math.pi  # benchmark angle (0 = upright)
        ref = [w, 3 * 10.0 / 2 * math.sin(up) + 3.0 * u]
        np.testing.assert_allclose(pe.derivative([th, w], [u]), ref, rtol=1e-12, atol=1e-12)
        q, dq, tau = rng.uniform(-2, 2, 2), rng.uniform(-2, 2, 2), rng.uniform(-5, 5, 2)
        I1, I2, mm2, l1, s2 = 0.025, 0.045, 1.1, 0.30, 0.16
        d1, d2, d3 = I1 + I2 + mm2 * l1**2, mm2 * l1 * s2, I2
        M = np.array(
            [
                [d1 + 2 * d2 * math.cos(q[1]), d3 + d2 * math.cos(q[1])],
                [d3 + d2 * math.cos(q[1]), d3],
            ]
        )
        Cv = np.array(
            [
                -d2 * math.sin(q[1]) * (2 * dq[0] * dq[1] + dq[1] ** 2),
                d2 * math.sin(q[1]) * dq[0] ** 2,
            ]
        )
        Bf = np.array([[0.05, 0.025], [0.025, 0.05]])
        ddq = np.linalg.solve(M, tau - Cv - Bf @ dq)
        np.testing.assert_allclose(
            arm.derivative(np.concatenate([q, dq]), tau), np.concatenate([dq, ddq]), rtol=1e-10
        )


# ---------------------------------------------------------------------------- solvers
@dataclass
class Row:
    problem: str
    solver: str
    seconds: float
    iterations: int | str
    cost: float
    setup: float = 0.0
    note: str = ""


def _median_time(solve: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = solve()  # warm-up (compiles kernels, fills caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = solve()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_gpcontrol(p: Problem, method: str, backend: str, repeats: int) -> Row:
    fn = ilqr if method == "ilqr" else ddp
    opts = ILQROptions(backend=backend, max_iterations=500)
    U0 = np.zeros((p.T, p.system.m))
    first = fn(p.system, p.cost, p.x0, U0, u_low=p.lo, u_high=p.hi, options=opts)
    setup = first.timings["setup"]  # CasADi codegen + C compile (disk-cached) on first use
    med, res = _median_time(
        lambda: fn(p.system, p.cost, p.x0, U0, u_low=p.lo, u_high=p.hi, options=opts), repeats
    )
    per_it = med / max(res.iterations, 1)
    phases = {k: v / max(res.iterations, 1) for k, v in res.timings.items()}
    note = (
        f"{res.status}; backend {res.backend}; {per_it * 1e3:.3f} ms/it "
        f"(lin {phases['linearize'] * 1e3:.3f}, bwd {phases['backward'] * 1e3:.3f}, "
        f"fwd {phases['forward'] * 1e3:.3f})"
    )
    label = f"gpcontrol {method}" + ("" if backend == "auto" else f" [{backend}]")
    return Row(p.name, label, med, res.iterations, res.cost, setup, note)


def run_ipopt(p: Problem, repeats: int) -> Row:
    """Multiple shooting, one RK4 step per interval, expand=True, IPOPT defaults."""
    sys_, n, m, T = p.system, p.system.n, p.system.m, p.T
    t0 = time.perf_counter()
    X = ca.SX.sym("X", n, T + 1)
    U = ca.SX.sym("U", m, T)
    J = 0
    g = [X[:, 0] - p.x0]
    for t in range(T):
        J += p.cost.casadi(X[:, t], U[:, t])
        g.append(X[:, t + 1] - sys_.discrete(X[:, t], U[:, t]))
    J += p.cost.casadi_terminal(X[:, T])
    nlp = {"x": ca.vertcat(ca.vec(X), ca.vec(U)), "f": J, "g": ca.vertcat(*g)}
    solver = ca.nlpsol(
        "ms",
        "ipopt",
        nlp,
        {"expand": True, "print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes"},
    )
    setup = time.perf_counter() - t0
    U0 = np.zeros((T, m))
    w0 = np.concatenate([sys_.simulate(p.x0, U0).ravel(), U0.ravel()])
    lbx = np.concatenate([np.full(n * (T + 1), -np.inf), np.tile(p.lo, T)])
    ubx = np.concatenate([np.full(n * (T + 1), np.inf), np.tile(p.hi, T)])
    med, sol = _median_time(lambda: solver(x0=w0, lbx=lbx, ubx=ubx, lbg=0, ubg=0), repeats)
    stats = solver.stats()
    return Row(
        p.name,
        "CasADi+IPOPT (MS)",
        med,
        int(stats["iter_count"]),
        float(sol["f"]),
        setup,
        stats["return_status"],
    )


def optional_peers(p: Problem) -> list[Row]:
    rows = []
    for module, label in (("crocoddyl", "crocoddyl BoxFDDP"), ("mpc", "mpc.pytorch box-DDP")):
        if importlib.util.find_spec(module) is None:
            rows.append(Row(p.name, label, math.nan, "-", math.nan, note="not installed: skipped"))
        else:
            rows.append(
                Row(p.name, label, math.nan, "-", math.nan, note="installed; runner not written")
            )
    return rows


# ---------------------------------------------------------------------------- LQR (d)
def lqr_rows(repeats: int) -> list[str]:
    lines = []
    header = (
        f"{'(n, m)':>9} {'rho':>5} {'solver':<22} {'time ms':>9} {'DARE resid':>11} "
        f"{'|K - K_scipy|/|K_scipy|':>24}"
    )
    lines.append(header)
    try:
        import control  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - optional
        control = None
    for n, m in ((4, 1), (12, 4), (50, 10)):
        for rho in (1.05, 0.95):
            rng = np.random.default_rng(0)
            A = rng.standard_normal((n, n))
            A *= rho / np.abs(np.linalg.eigvals(A)).max()
            B = rng.standard_normal((n, m))
            Q, R = np.eye(n), np.eye(m)

            def scipy_gain(A=A, B=B, Q=Q, R=R):
                P = sla.solve_discrete_are(A, B, Q, R)
                return P, -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)

            t_sp, (P_sp, K_sp) = _median_time(scipy_gain, repeats)
            entries = [("scipy solve_discrete_are", t_sp, P_sp, K_sp)]
            t_gp, res = _median_time(functools.partial(dlqr, A, B, Q, R), repeats)
            entries.append(("gpcontrol dlqr", t_gp, res.P, res.K))
            if control is not None:
                t_ct, (K_ct, S_ct, _) = _median_time(
                    functools.partial(control.dlqr, A, B, Q, R), repeats
                )
                entries.append(("python-control dlqr", t_ct, np.asarray(S_ct), -np.asarray(K_ct)))
            for label, t, P, K in entries:
                Kp = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
                resid = A.T @ P @ A - P + Q + (A.T @ P @ B) @ Kp
                rel = np.linalg.norm(resid) / max(1.0, np.linalg.norm(P))
                dK = np.linalg.norm(K - K_sp) / np.linalg.norm(K_sp)
                size = str((n, m))
                lines.append(
                    f"{size:>9} {rho:>5} {label:<22} {t * 1e3:>9.3f} {rel:>11.2e} {dK:>24.2e}"
                )
    return lines


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--problems",
        nargs="+",
        default=["cartpole", "pendulum", "arm2", "lqr"],
        choices=["cartpole", "pendulum", "arm2", "lqr"],
    )
    parser.add_argument("--no-fallback", action="store_true", help="skip the no-compiler rows")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    _check_models(np.random.default_rng(1))
    builders = {"cartpole": cartpole, "pendulum": pendulum, "arm2": arm2}
    rows: list[Row] = []
    for name in args.problems:
        if name == "lqr":
            continue
        p = builders[name]()
        ref = run_ipopt(p, args.repeats)
        rows.append(ref)
        rows.append(run_gpcontrol(p, "ilqr", "auto", args.repeats))
        rows.append(run_gpcontrol(p, "ddp", "auto", args.repeats))
        if not args.no_fallback:
            rows.append(run_gpcontrol(p, "ilqr", "casadi", args.repeats))
        rows.extend(optional_peers(p))
    if rows:
        print(
            f"{'problem':<9} {'solver':<28} {'time ms':>9} {'iters':>6} {'final cost':>18} "
            f"{'rel. to IPOPT':>13} {'t / t_IPOPT':>11} {'setup s':>8}  notes"
        )
        ipopt = {r.problem: r for r in rows if r.solver.startswith("CasADi")}
        for r in rows:
            base = ipopt[r.problem]
            rel = (r.cost - base.cost) / abs(base.cost) if math.isfinite(r.cost) else math.nan
            ratio = r.seconds / base.seconds if math.isfinite(r.seconds) else math.nan
            print(
                f"{r.problem:<9} {r.solver:<28} {r.seconds * 1e3:>9.2f} {r.iterations!s:>6} "
                f"{r.cost:>18.10g} {rel:>13.1e} {ratio:>11.3f} {r.setup:>8.2f}  {r.note}"
            )
    if "lqr" in args.problems:
        print()
        print("\n".join(lqr_rows(args.repeats)))


if __name__ == "__main__":
    main()
