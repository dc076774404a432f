"""Optimal-control solvers on the standard problems of benchmarks/PROBLEMS.md.

Runs, one after another with every thread pool pinned to one thread:

* (a) cart-pole, (b) pendulum, (c) arm2: gpcontrol's iLQR and DDP (compiled
  kernels when a C compiler is present; also iLQR on the pure CasADi/NumPy
  fallback), and CasADi + IPOPT multiple shooting (``expand=True``) as the
  peer; crocoddyl's ``SolverBoxFDDP`` on the problem written as Python action
  models, and mpc.pytorch's box-DDP (``mpc.MPC``) on a torch copy of the
  model (cart-pole only by default: one solve takes minutes). Both are
  optional: a missing one is skipped with a printed note
  (``pip install -e ".[bench]"`` for crocoddyl; ``pip install --no-deps mpc==0.0.6``).
* (d) random discrete LQR: gpcontrol ``dlqr``, ``scipy.linalg.solve_discrete_are``
  and python-control ``dlqr``.

Every solver gets the same discrete-time problem (RK4, dt, N, cost with the
``dt * 0.5`` weighting, bounds) and the same initial guess (U = 0; for multiple
shooting X = the rollout of U = 0). Times are the median of ``--repeats`` cold
solves after one warm-up; one-time compile/setup is reported separately.

Usage::

    python benchmarks/solvers.py                # all problems, 5 repeats
    python benchmarks/solvers.py --repeats 9 --problems cartpole lqr
    python benchmarks/solvers.py --problems pendulum --mpc-pytorch pendulum
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
    cpu: float = math.nan  # process CPU seconds (median, like ``seconds``)


def _median_times(solve: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall-clock and median process CPU seconds of ``repeats`` solves after a warm-up.

    On a shared, busy machine the CPU time is the steadier figure (the wall
    clock also counts the time other processes hold the core).
    """
    out = solve()  # warm-up (compiles kernels, fills caches)
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = solve()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def _median_time(solve: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    wall, _, out = _median_times(solve, repeats)
    return wall, out


def run_gpcontrol(p: Problem, method: str, backend: str, repeats: int) -> Row:
    fn = ilqr if method == "ilqr" else ddp
    opts = ILQROptions(backend=backend, max_iterations=500)
    U0 = np.zeros((p.T, p.system.m))
    first = fn(p.system, p.cost, p.x0, U0, u_low=p.lo, u_high=p.hi, options=opts)
    setup = first.timings["setup"]  # CasADi codegen + C compile (disk-cached) on first use
    med, cpu, res = _median_times(
        lambda: fn(p.system, p.cost, p.x0, U0, u_low=p.lo, u_high=p.hi, options=opts), repeats
    )
    per_it = med / max(res.iterations, 1)
    phases = {k: v / max(res.iterations, 1) for k, v in res.timings.items()}
    note = (
        f"{res.status}; backend {res.backend}; {per_it * 1e3:.3f} ms/it, "
        f"{cpu / max(res.iterations, 1) * 1e3:.3f} cpu ms/it "
        f"(lin {phases['linearize'] * 1e3:.3f}, bwd {phases['backward'] * 1e3:.3f}, "
        f"fwd {phases['forward'] * 1e3:.3f})"
    )
    label = f"gpcontrol {method}" + ("" if backend == "auto" else f" [{backend}]")
    return Row(p.name, label, med, res.iterations, res.cost, setup, note, cpu)


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
    med, cpu, sol = _median_times(lambda: solver(x0=w0, lbx=lbx, ubx=ubx, lbg=0, ubg=0), repeats)
    stats = solver.stats()
    return Row(
        p.name,
        "CasADi+IPOPT (MS)",
        med,
        int(stats["iter_count"]),
        float(sol["f"]),
        setup,
        stats["return_status"],
        cpu,
    )


def _time_slow(solve: Callable[[], Any], repeats: int) -> tuple[float, float, Any, str]:
    """Median of ``repeats`` solves, or a single solve when one takes over a second."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = solve()
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    if first > 1.0:
        return first, first_cpu, out, "1 run (over 1 s per solve)"
    med, cpu, out = _median_times(solve, repeats)
    return med, cpu, out, f"median of {repeats}"


def crocoddyl_problem(p: Problem) -> Any:
    """The problem as crocoddyl action models written in Python, as a Python user would.

    A discrete ``ActionModelAbstract`` subclass: ``calc`` evaluates the RK4
    step (one CasADi call) and the quadratic stage cost, ``calcDiff`` the step
    Jacobians (one CasADi call) and the cost derivatives in NumPy. Same
    discrete-time problem, so the costs compare to rounding.
    """
    import crocoddyl  # type: ignore[import-not-found]

    sys_, cost = p.system, p.cost
    n, m = sys_.n, sys_.m
    xs, us = ca.SX.sym("x", n), ca.SX.sym("u", m)
    xn = sys_.discrete(xs, us)
    step = ca.Function("f", [xs, us], [xn]).expand()
    jac = ca.Function("df", [xs, us], [ca.jacobian(xn, xs), ca.jacobian(xn, us)]).expand()
    Q, R, Qf, xg = cost.Q, cost.R, cost.Qf, cost.x_target
    zero_u = np.zeros(m)

    class Running(crocoddyl.ActionModelAbstract):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(crocoddyl.StateVector(n), m, 1)
            self.u_lb, self.u_ub = p.lo.copy(), p.hi.copy()

        def calc(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
            u = zero_u if u is None else u
            dx = x - xg
            data.cost = 0.5 * dx @ Q @ dx + 0.5 * u @ R @ u
            data.xnext[:] = np.asarray(step(x, u)).ravel()

        def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
            u = zero_u if u is None else u
            A, B = jac(x, u)
            data.Fx[...] = np.asarray(A)
            data.Fu[...] = np.asarray(B).reshape(data.Fu.shape)  # (n,) when m = 1
            data.Lx[:] = Q @ (x - xg)
            data.Lu[:] = R @ u
            data.Lxx[...] = Q
            data.Luu[...] = R
            data.Lxu[...] = 0.0

    class Terminal(crocoddyl.ActionModelAbstract):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(crocoddyl.StateVector(n), m, 1)

        def calc(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
            dx = x - xg
            data.cost = 0.5 * dx @ Qf @ dx
            data.xnext[:] = x

        def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
            data.Lx[:] = Qf @ (x - xg)
            data.Lxx[...] = Qf

    running = Running()
    return crocoddyl.ShootingProblem(p.x0.copy(), [running] * p.T, Terminal())


def run_crocoddyl(p: Problem, repeats: int) -> Row:
    """crocoddyl ``SolverBoxFDDP`` from U = 0 (its rollout as the feasible guess)."""
    import crocoddyl

    t0 = time.perf_counter()
    problem = crocoddyl_problem(p)
    setup = time.perf_counter() - t0
    us0 = [np.zeros(p.system.m)] * p.T
    xs0 = problem.rollout(us0)

    def solve() -> Any:
        solver = crocoddyl.SolverBoxFDDP(problem)
        solver.th_stop = 1e-9
        ok = solver.solve(xs0, us0, 1000, True)
        return solver, ok

    sec, cpu, (solver, ok), how = _time_slow(solve, repeats)
    U = np.array(solver.us).reshape(p.T, p.system.m)
    J = p.cost.total(p.system.simulate(p.x0, U), U)  # evaluated by gpcontrol on its map
    note = f"{'converged' if ok else 'NOT converged'}; {how}; Python action model"
    return Row(p.name, "crocoddyl BoxFDDP", sec, int(solver.iter), J, setup, note, cpu)


def _torch_ode(name: str) -> Callable[[Any, Any], Any] | None:
    """The ODEs of PROBLEMS.md (a) and (b) in torch (batched ``(B, n), (B, m)``)."""
    import torch

    if name == "cartpole":

        def cartpole_ode(x: Any, u: Any) -> Any:
            m1, m2, ell, g = 1.0, 0.3, 0.5, 9.81
            s, c = torch.sin(x[:, 1]), torch.cos(x[:, 1])
            D = m1 + m2 * (1 - c * c)
            w2, F = x[:, 3] ** 2, u[:, 0]
            dd1 = (ell * m2 * s * w2 + F + m2 * g * c * s) / D
            dd2 = -(ell * m2 * c * s * w2 + F * c + (m1 + m2) * g * s) / (ell * D)
            return torch.stack([x[:, 2], x[:, 3], dd1, dd2], dim=1)

        return cartpole_ode
    if name == "pendulum":

        def pendulum_ode(x: Any, u: Any) -> Any:
            # gpcontrol's angle is from hanging: theta_bench = theta - pi.
            return torch.stack(
                [x[:, 1], 1.5 * 10.0 * torch.sin(x[:, 0] - math.pi) + 3.0 * u[:, 0]], dim=1
            )

        return pendulum_ode
    return None


def run_mpc_pytorch(p: Problem) -> Row:
    """mpc.pytorch 0.0.6 box-DDP (``mpc.MPC``, autodiff Jacobians), one cold solve.

    mpc.pytorch has no terminal cost: the problem gets T + 1 steps, the last
    one carrying Qf on the state and a 1e-8 weight on its control (which acts
    on nothing, so it is 0 at the optimum and the cost is unchanged).
    """
    import torch
    from mpc import mpc as mpc_mod  # type: ignore[import-not-found]

    maybe_ode = _torch_ode(p.name)
    if maybe_ode is None:
        return Row(p.name, "mpc.pytorch box-DDP", math.nan, "-", math.nan, note="no torch model")
    ode: Callable[[Any, Any], Any] = maybe_ode
    torch.set_num_threads(1)
    n, m, T, h = p.system.n, p.system.m, p.T, p.system.dt

    class RK4(torch.nn.Module):
        def forward(self, x: Any, u: Any) -> Any:
            k1 = ode(x, u)
            k2 = ode(x + h / 2 * k1, u)
            k3 = ode(x + h / 2 * k2, u)
            k4 = ode(x + h * k3, u)
            return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    dx = RK4()
    rng = np.random.default_rng(0)
    xt, ut = rng.uniform(-2, 2, (3, n)), rng.uniform(-2, 2, (3, m))
    np.testing.assert_allclose(  # the torch map is gpcontrol's map
        dx(torch.tensor(xt), torch.tensor(ut)).numpy(), p.system.step(xt, ut), rtol=1e-12
    )
    Q, R, Qf, xg = p.cost.Q, p.cost.R, p.cost.Qf, p.cost.x_target
    C = np.zeros((T + 1, 1, n + m, n + m))
    c = np.zeros((T + 1, 1, n + m))
    C[:T, 0, :n, :n], C[:T, 0, n:, n:], c[:T, 0, :n] = Q, R, -Q @ xg
    C[T, 0, :n, :n], C[T, 0, n:, n:], c[T, 0, :n] = Qf, 1e-8 * np.eye(m), -Qf @ xg
    ctrl = mpc_mod.MPC(
        n,
        m,
        T + 1,
        u_lower=torch.tensor(np.tile(p.lo, (T + 1, 1, 1))),
        u_upper=torch.tensor(np.tile(p.hi, (T + 1, 1, 1))),
        lqr_iter=1000,
        verbose=-1,
        exit_unconverged=False,
        detach_unconverged=False,
        grad_method=mpc_mod.GradMethods.AUTO_DIFF,
        n_batch=1,
        backprop=False,
    )
    count = [0]
    inner = ctrl.solve_lqr_subproblem

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return inner(*args, **kwargs)

    ctrl.solve_lqr_subproblem = counted
    cost = mpc_mod.QuadCost(torch.tensor(C), torch.tensor(c))
    t0, c0 = time.perf_counter(), time.process_time()
    _, u_opt, _ = ctrl(torch.tensor(p.x0[None]), cost, dx)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    U = u_opt[:T, 0].detach().numpy().reshape(T, m)
    J = p.cost.total(p.system.simulate(p.x0, U), U)
    # The last call is mpc.pytorch's final no-op pass, not an iteration.
    return Row(p.name, "mpc.pytorch box-DDP", sec, count[0] - 1, J, 0.0, "1 run (slow)", cpu)


def optional_peers(p: Problem, repeats: int, mpc_pytorch_problems: list[str]) -> list[Row]:
    """crocoddyl and mpc.pytorch rows; a missing package is a printed skip, never an error."""
    rows = []
    if importlib.util.find_spec("crocoddyl") is None:
        print(f"[{p.name}] crocoddyl not installed: skipped (pip install crocoddyl)")
    else:
        rows.append(run_crocoddyl(p, repeats))
    if importlib.util.find_spec("mpc") is None:
        print(f"[{p.name}] mpc.pytorch not installed: skipped (pip install --no-deps mpc==0.0.6)")
    elif p.name not in ("cartpole", "pendulum"):
        print(f"[{p.name}] mpc.pytorch skipped: no torch model of {p.name} written")
    elif p.name not in mpc_pytorch_problems:
        print(f"[{p.name}] mpc.pytorch skipped (slow; add it with --mpc-pytorch {p.name})")
    else:
        rows.append(run_mpc_pytorch(p))
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
    parser.add_argument(
        "--mpc-pytorch",
        nargs="*",
        default=["cartpole"],
        choices=["cartpole", "pendulum"],
        help="problems to run the (minutes-long) mpc.pytorch solve on; default cartpole",
    )
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
        rows.extend(optional_peers(p, args.repeats, args.mpc_pytorch))
    if rows:
        print(
            f"{'problem':<9} {'solver':<28} {'time ms':>10} {'cpu ms':>10} {'iters':>6} "
            f"{'final cost':>18} "
            f"{'rel. to IPOPT':>13} {'t / t_IPOPT':>11} {'t / t_iLQR':>10} {'setup s':>8}  notes"
        )
        ipopt = {r.problem: r for r in rows if r.solver.startswith("CasADi")}
        ilqr_rows = {r.problem: r for r in rows if r.solver == "gpcontrol ilqr"}
        for r in rows:
            base = ipopt[r.problem]
            rel = (r.cost - base.cost) / abs(base.cost) if math.isfinite(r.cost) else math.nan
            ratio = r.seconds / base.seconds if math.isfinite(r.seconds) else math.nan
            ratio_ilqr = r.seconds / ilqr_rows[r.problem].seconds
            print(
                f"{r.problem:<9} {r.solver:<28} {r.seconds * 1e3:>10.2f} {r.cpu * 1e3:>10.2f} "
                f"{r.iterations!s:>6} "
                f"{r.cost:>18.10g} {rel:>13.1e} {ratio:>11.3f} {ratio_ilqr:>10.3g} "
                f"{r.setup:>8.2f}  {r.note}"
            )
    if "lqr" in args.problems:
        print()
        print("\n".join(lqr_rows(args.repeats)))


if __name__ == "__main__":
    main()
