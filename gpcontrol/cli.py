"""The ``gpcontrol`` command line.

``gpcontrol systems [--json]``
    List every built-in system: state and control layout, bounds, time step,
    integrator, physical parameters and the registered environment id.

``gpcontrol simulate SYSTEM [--policy random|zero] [--steps N] [--seed S]
[--gif out.gif] [--png out.png] [--data out.npz] [--every K]``
    Run a simple policy in the system's registered environment, print a
    progress line every tenth of the run and a summary (total cost), and
    optionally write an animation, a state/control figure and the data.

``gpcontrol pilco SYSTEM [--seed S] [--out DIR] [--trials N] [--line-searches L]
[--basis B] [--noise STD] [--propagation moment_matching|linearized|unscented|mean|particles]
[--particles P]``
    Learn a swing-up with PILCO in the system's environment (measurement noise
    std 0.01 by default, as PILCO's scenarios): one random rollout, then up to
    N policy trials; prints one line per trial (interaction seconds, predicted
    vs actual cost, success, GP and policy time), and writes the checkpoint, the
    learning curve, predicted-vs-actual trajectory figures and ``final.gif``
    (the last rollout) to DIR (a run folder with a checkpoint is resumed).
    ``--propagation mean`` is the certainty-equivalent ablation;
    ``--propagation particles`` evaluates the policy on P reparameterised
    particles (MC-PILCO), the same draws for every evaluation of a trial.

``gpcontrol solve SYSTEM [--method ddp|ilqr] [--horizon T] [--episodes N] [--out DIR] [--gif]``
    Swing ``cartpole``, ``pendulum`` or ``double_pendulum`` up from hanging
    with control-limited DDP or iLQR on the true dynamics (quadratic cost,
    dt = 0.05 s), print the convergence, replay the solver's feedback law
    ``u = K x + k`` from perturbed starts under process noise against the open
    loop plan, and write the trajectory and convergence figures.

``gpcontrol gps arm [--iterations N] [--samples S] [--seed S] [--out DIR] [--ceiling] [--quick]``
    Guided policy search (MDGPS) on planar-arm reaching (dt = 0.05 s, T = 50,
    4 training and 16 held-out targets): one progress line per iteration
    (rollouts, local and network success, costs), a resumable run folder with a
    checkpoint after every iteration, and the success-vs-rollouts and reaching
    figures. By default on-policy MDGPS with the paper's step-size rule;
    ``--sampling local --step-rule local`` gives the off-policy variant
    (:class:`~gpcontrol.algorithms.gps.MDGPSOptions`).

Example::

    gpcontrol simulate cartpole --policy random --steps 40 --seed 0 --gif runs/cp.gif
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser"]


def _fmt(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _system_records() -> list[dict[str, Any]]:
    from gpcontrol.envs import ENV_IDS
    from gpcontrol.systems import SYSTEMS, make_system

    records = []
    for name in SYSTEMS:
        system = make_system(name)
        rec = system.describe()
        rec["x_low"] = system.x_low.tolist()
        rec["x_high"] = system.x_high.tolist()
        rec["env_id"] = ENV_IDS.get(name)
        records.append(_jsonable(rec))
    return records


def _print_systems(records: list[dict[str, Any]]) -> None:
    header = ("name", "class", "n", "m", "dt", "state", "control", "u bounds", "environment")
    rows = []
    for r in records:
        angles = set(r["angles"])
        state = ", ".join(s + ("*" if s in angles else "") for s in r["state"])
        ubounds = "  ".join(
            f"[{_fmt(float(lo))}, {_fmt(float(hi))}]"
            for lo, hi in zip(r["u_low"], r["u_high"], strict=True)
        )
        rows.append(
            (
                r["name"],
                r["class"],
                str(len(r["state"])),
                str(len(r["control"])),
                f"{r['dt']:g}",
                state,
                ", ".join(r["control"]),
                ubounds,
                r["env_id"] or "-",
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    print(line(header).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row).rstrip())
    print("(* angle: enters models and policies as sin/cos)")
    for r in records:
        print(f"\n{r['name']}  (integrator {r['integrator']}, {r['substeps']} substep(s))")
        finite = [
            f"{s} in [{_fmt(float(lo))}, {_fmt(float(hi))}]"
            for s, lo, hi in zip(r["state"], r["x_low"], r["x_high"], strict=True)
            if math.isfinite(float(lo)) or math.isfinite(float(hi))
        ]
        print("  state bounds: " + (", ".join(finite) if finite else "none"))
        for key, value in r["params"].items():
            print(f"  {key:<16} {value}")


def _cmd_systems(args: argparse.Namespace) -> int:
    records = _system_records()
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        _print_systems(records)
    return 0


def _resolve_env_id(name: str) -> str:
    import gymnasium as gym

    from gpcontrol.envs import ENV_IDS

    if name in ENV_IDS:
        return ENV_IDS[name]
    if name in ENV_IDS.values() or name in gym.registry:
        return name
    raise ValueError(
        f"unknown system {name!r}; choose one of {sorted(ENV_IDS)} or a registered environment id"
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from gpcontrol.plotting import animate, plot_trajectory
    from gpcontrol.rollout import Dataset, random_policy, rollout

    env_id = _resolve_env_id(args.system)
    kwargs: dict[str, Any] = {}
    if args.steps is not None:
        kwargs["max_episode_steps"] = args.steps
    env = gym.make(env_id, **kwargs)
    base = env.unwrapped
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    steps = args.steps if args.steps is not None else spec_steps
    if steps is None:
        raise ValueError(f"{env_id} has no time limit; give --steps")
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{env_id} must have a Box action space, got {space}")
    if args.policy == "random":
        policy = random_policy(space.low, space.high, seed=args.seed)
    else:
        zero = np.zeros(space.shape)

        def policy(x: Any, t: int) -> Any:
            return zero

    every = max(1, steps // 10)
    running = [0.0]
    started = time.perf_counter()
    print(f"simulating {env_id} for {steps} steps, policy={args.policy}, seed={args.seed}")

    def progress(t: int, x: Any, u: Any, reward: float) -> None:
        running[0] -= reward
        if (t + 1) % every == 0 or t + 1 == steps:
            state = ", ".join(f"{v:+.3f}" for v in x)
            print(f"  step {t + 1:>5}/{steps}  cost so far {running[0]:10.4f}  x = [{state}]")

    traj = rollout(env, policy, steps=steps, seed=args.seed, callback=progress)
    elapsed = time.perf_counter() - started
    status = "terminated (goal)" if traj.terminated else "time limit" if traj.truncated else "done"
    print(
        f"summary: {traj.T} steps ({status}), total cost {traj.total_cost:.4f} "
        f"(running {traj.costs[:-1].sum():.4f} + terminal {traj.costs[-1]:.4f}), "
        f"{elapsed:.2f} s"
    )
    system = getattr(base, "system", None)
    X = traj.true_states if traj.true_states is not None else traj.states
    if args.gif is not None:
        if system is None:
            raise ValueError("--gif needs a gpcontrol environment (its system draws the frames)")
        out = animate(
            system, X, args.gif, target=getattr(base, "render_target", None), every=args.every
        )
        frames = len(range(0, X.shape[0], args.every)) + int((X.shape[0] - 1) % args.every != 0)
        print(f"wrote {out} ({frames} frames)")
    if args.png is not None:
        fig = plot_trajectory(system if system is not None else None, traj, title=env_id)
        fig.savefig(args.png, dpi=100)
        print(f"wrote {args.png}")
    if args.data is not None:
        data = (
            Dataset.for_system(system)
            if system is not None
            else Dataset(traj.n, traj.m, dt=traj.dt)
        )
        if traj.T > 0:
            data.add(traj)
        print(f"wrote {data.save(args.data)}")
    env.close()
    return 0


def _cmd_pilco(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import torch

    from gpcontrol.algorithms.pilco import PILCOOptions, TrialRecord, pilco, save_figures

    torch.set_num_threads(1)
    from gpcontrol.plotting import animate

    env_id = _resolve_env_id(args.system)
    noise = {"measurement_noise_std": args.noise} if env_id.startswith("gpcontrol/") else {}
    env = gym.make(env_id, **noise)
    base: Any = env.unwrapped
    if getattr(base, "system", None) is None or not hasattr(base.cost, "task_point"):
        raise ValueError(f"{env_id}: pilco needs a gpcontrol environment with a saturating cost")
    basis = args.basis if args.basis is not None else (20 if base.system.n == 2 else 10)
    options = PILCOOptions(
        max_trials=args.trials,
        basis=basis,
        max_line_searches=args.line_searches,
        propagation=args.propagation,
        particles=args.particles,
    )
    out = args.out if args.out is not None else f"runs/pilco-{args.system}-seed{args.seed}"
    evaluation = options.propagation + (
        f" ({options.particles})" if options.propagation == "particles" else ""
    )
    print(f"PILCO on {env_id}, seed {args.seed}, {basis} RBF bases, {evaluation}, run folder {out}")
    print(TrialRecord.HEADER)
    live = sys.stdout.isatty()

    def searching(trial: int, evaluations: int, best: float) -> None:
        # a live line on a terminal; in a log, one line per 50 evaluations
        text = f"  trial {trial}: policy search, {evaluations} evaluations, best J = {best:.3f}"
        if live:
            print("\r" + text, end="", flush=True)
        elif evaluations % 50 == 0:
            print(text, flush=True)

    def line(r: TrialRecord) -> None:
        print(("\r\033[K" if live else "") + r.row(), flush=True)

    result = pilco(
        env, base.cost, options=options, seed=args.seed, out=out, callback=line, progress=searching
    )
    paths = save_figures(result, base.system, out)
    saved = sorted(Path(out).glob("prediction_*.npz"))
    states = None
    if result.trajectories:
        last = result.trajectories[-1]
        states = last.true_states if last.true_states is not None else last.states
    elif saved:  # a finished run re-opened: its last rollout from the run folder
        states = np.load(saved[-1])["states"]
    if states is not None:
        target = getattr(base, "render_target", None)
        paths.append(animate(base.system, states, Path(out) / "final.gif", target=target))
    if result.first_success is not None:
        print(
            f"solved: first success at trial {result.first_success} after "
            f"{result.seconds_to_success:.1f} s of interaction"
        )
    else:
        print(f"not solved within {args.trials} trials")
    print(f"wrote {len(paths)} figures to {out}")
    env.close()
    return 0


# ----------------------------------------------------------------------------- solve
#: Swing-up tasks of ``gpcontrol solve``: system factory, horizon, goal and the
#: diagonal cost weights of l = dt/2 (x'Qx + u'Ru) + 1/2 (x-g)'Qf(x-g).
_SOLVE_TASKS: dict[str, dict[str, Any]] = {
    "cartpole": {
        "system": "cartpole",
        "goal": [0.0, math.pi, 0.0, 0.0],
        "Q": [0.0, 0.0, 0.1, 0.1],
        "R": [1.0],
        "Qf": [1e3, 1e3, 1e2, 1e2],
        "angle": 1,
    },
    "pendulum": {
        "system": "pendulum",
        "goal": [math.pi, 0.0],
        "Q": [0.0, 0.1],
        "R": [1.0],
        "Qf": [1e3, 1e2],
        "angle": 0,
    },
    "double_pendulum": {
        "system": "double_pendulum",
        "goal": [math.pi, 0.0, 0.0, 0.0],
        "Q": [0.0, 0.0, 0.1, 0.1],
        "R": [1.0, 1.0],
        "Qf": [1e3, 1e3, 1e2, 1e2],
        "angle": 0,
    },
}


def _cmd_solve(args: argparse.Namespace) -> int:
    from gpcontrol.costs import QuadraticCost
    from gpcontrol.plotting import animate, new_figure, plot_trajectory
    from gpcontrol.solvers import ILQROptions, ddp, ilqr
    from gpcontrol.systems import make_system

    task = _SOLVE_TASKS[args.system]
    system = make_system(task["system"], dt=args.dt)
    T, n = args.horizon, system.n
    goal = np.array(task["goal"])
    cost = QuadraticCost(
        system.dt * np.diag(task["Q"]),
        system.dt * np.diag(task["R"]),
        x_target=goal,
        Qf=np.diag(task["Qf"]),
    )
    solver = ddp if args.method == "ddp" else ilqr
    print(
        f"{args.method.upper()} swing-up of the {system.name}: T = {T} steps of {system.dt} s, "
        f"|u| <= {system.u_high.tolist()}"
    )
    result = solver(
        system,
        cost,
        np.zeros(n),
        np.zeros((T, system.m)),
        u_low=system.u_low,
        u_high=system.u_high,
        options=ILQROptions(max_iterations=args.iterations),
    )
    for i in range(0, len(result.cost_history), max(1, len(result.cost_history) // 8)):
        print(f"  iteration {i:4d}  cost {result.cost_history[i]:12.6f}")
    print(
        f"{result.status}: cost {result.cost:.6f} after {result.iterations} iterations, "
        f"{result.timings['total']:.2f} s (backend {result.backend}); final state "
        f"{np.array2string(result.X[-1], precision=3, sign='+')}"
    )
    if result.status == "diverged":
        print(f"solver diverged: {result.message}", file=sys.stderr)
        return 1

    # Closed loop: the solver's feedback u = K x + k from perturbed starts under
    # process noise, against the open-loop plan.
    rng = np.random.default_rng(args.seed)
    angle = int(task["angle"])
    finals: dict[str, list[float]] = {"open loop": [], "feedback": []}
    paths: list[np.ndarray] = []
    print(f"closed loop: {args.episodes} episodes, start std 0.05, process noise std {args.noise}")
    for episode in range(args.episodes):
        start = rng.normal(0.0, 0.05, n)
        w = rng.normal(0.0, args.noise, (T, n))
        for mode in finals:
            x = start.copy()
            visited = [x]
            for t in range(T):
                u = result.U[t] if mode == "open loop" else result.K[t] @ x + result.k[t]
                x = system.step(x, system.clip_control(u)) + w[t]
                visited.append(x)
            finals[mode].append(abs(x[angle] - goal[angle]))
            if mode == "feedback":
                paths.append(np.array(visited))
        print(
            f"  episode {episode + 1:3d}/{args.episodes}  final angle error: open loop "
            f"{finals['open loop'][-1]:.3f} rad, feedback {finals['feedback'][-1]:.3f} rad"
        )
    for mode, errors in finals.items():
        solved = sum(e < args.tolerance for e in errors)
        print(f"{mode:>9}: {solved}/{args.episodes} episodes end within {args.tolerance} rad")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_trajectory(system, (result.X, result.U), label="optimum", title=f"{system.name}")
    t_axis = np.arange(T + 1) * system.dt
    for i, X in enumerate(paths):
        fig.axes[angle].plot(
            t_axis, X[:, angle], color="C1", lw=0.6, label="feedback" if i == 0 else None
        )
    fig.axes[angle].legend(fontsize=8)
    png = out / f"solve_{system.name}.png"
    fig.savefig(png, dpi=100)
    fig2 = new_figure(width=5.0, height=3.5)
    ax = fig2.subplots()
    ax.semilogy(np.array(result.cost_history) - result.cost + 1e-12)
    ax.set(xlabel="iteration", ylabel="J - J*", title=f"{args.method.upper()} convergence")
    conv = out / f"solve_{system.name}_convergence.png"
    fig2.savefig(conv, dpi=100)
    written = [png, conv]
    if args.gif:
        written.append(
            animate(system, result.X, out / f"solve_{system.name}.gif", fps=1 / system.dt)
        )
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ----------------------------------------------------------------------------- gps
def _cmd_gps(args: argparse.Namespace) -> int:
    import torch

    from gpcontrol.algorithms.reach import ReachingTask, ilqr_ceiling
    from gpcontrol.algorithms.reach_run import (
        ReachingMetrics,
        reaching_options,
        run_reaching,
        save_reaching_figures,
    )

    torch.set_num_threads(1)
    task = ReachingTask.default(T=args.horizon)
    if args.quick:
        task = ReachingTask(
            task.system, task.x0, task.train_targets[:2], task.test_targets[::4], task.T,
            task.tolerance, task.cost_weights,
        )  # fmt: skip
    options = reaching_options(
        args.seed,
        iterations=args.iterations,
        samples=args.samples,
        kl_step=args.kl_step,
        init_variance=args.init_variance,
        hidden=tuple(args.hidden),
        policy_iterations=args.policy_iterations,
        **{k: v for k in ("sampling", "step_rule") if (v := getattr(args, k)) is not None},
    )
    out = args.out if args.out is not None else f"runs/gps-arm-seed{args.seed}"
    print(
        f"MDGPS arm reaching: {len(task.train_targets)} training / {len(task.test_targets)} "
        f"held-out targets, T = {task.T}, dt = {task.system.dt} s, seed {args.seed}, "
        f"run folder {out}"
    )
    print("iter  rollouts  local  net-train  net-held-out  sample-cost  policy-cost  time[s]")
    t0 = time.perf_counter()

    def line(m: ReachingMetrics) -> None:
        print(
            f"{m.iteration:4d}  {m.rollouts:8d}  {100 * m.local_success:4.0f}%  "
            f"{100 * m.train_success:8.0f}%  {100 * m.test_success:11.0f}%  "
            f"{m.sample_cost:11.3f}  {m.policy_cost:11.3f}  {m.seconds:7.1f}",
            flush=True,
        )

    run = run_reaching(task, options, folder=out, callback=line)
    seconds = time.perf_counter() - t0
    ceiling = None
    if args.ceiling:
        c = ilqr_ceiling(task)
        ceiling = float(c.success.mean())
        M = len(task.train_targets)
        print(
            f"iLQR ceiling (true dynamics): {100 * ceiling:.0f}% of all targets, "
            f"median final distance {1000 * float(np.median(c.distances)):.2f} mm, "
            f"mean cost on the training targets {float(c.costs[:M].mean()):.3f}"
        )
    paths = save_reaching_figures(run, out, ceiling_success=ceiling)
    last = run.metrics[-1]
    print(
        f"after {last.rollouts} rollouts: local {100 * last.local_success:.0f}%, network "
        f"{100 * last.train_success:.0f}% train / {100 * last.test_success:.0f}% held-out "
        f"({seconds:.1f} s this session); wrote {', '.join(str(p) for p in paths)}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gpcontrol`` command."""
    parser = argparse.ArgumentParser(
        prog="gpcontrol",
        description="Model-based control with Gaussian processes and optimal control.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_sys = sub.add_parser("systems", help="list the built-in systems")
    p_sys.add_argument("--json", action="store_true", help="machine-readable output")
    p_sys.set_defaults(func=_cmd_systems)

    p_sim = sub.add_parser("simulate", help="run a simple policy in a system's environment")
    p_sim.add_argument("system", help="system name (see `gpcontrol systems`) or environment id")
    p_sim.add_argument("--policy", choices=("random", "zero"), default="random")
    p_sim.add_argument("--steps", type=_positive_int, default=None, help="default: env horizon")
    p_sim.add_argument("--seed", type=int, default=0)
    p_sim.add_argument("--gif", default=None, help="write an animation to this file")
    p_sim.add_argument("--png", default=None, help="write a state/control figure to this file")
    p_sim.add_argument("--data", default=None, help="save the transitions as a .npz Dataset")
    p_sim.add_argument("--every", type=_positive_int, default=1, help="GIF: keep every k-th frame")
    p_sim.set_defaults(func=_cmd_simulate)

    p_pilco = sub.add_parser("pilco", help="learn a swing-up with PILCO")
    p_pilco.add_argument("system", help="system name (pendulum, cartpole) or environment id")
    p_pilco.add_argument("--seed", type=int, default=0)
    p_pilco.add_argument("--out", default=None, help="run folder (default runs/pilco-SYSTEM-seedS)")
    p_pilco.add_argument("--trials", type=_positive_int, default=10, help="policy trials")
    p_pilco.add_argument("--line-searches", type=_positive_int, default=150, help="L-BFGS budget")
    p_pilco.add_argument("--basis", type=_positive_int, default=None, help="RBF basis functions")
    p_pilco.add_argument(
        "--noise", type=float, default=0.01, help="measurement noise std (gpcontrol envs)"
    )
    p_pilco.add_argument(
        "--propagation",
        choices=("moment_matching", "linearized", "unscented", "mean", "particles"),
        default="moment_matching",
        help="policy evaluation ('mean': certainty-equivalent ablation; 'particles': MC-PILCO)",
    )
    p_pilco.add_argument(
        "--particles",
        type=_positive_int,
        default=400,
        help="particles of --propagation particles (default 400)",
    )
    p_pilco.set_defaults(func=_cmd_pilco)

    p_solve = sub.add_parser(
        "solve", help="swing a system up with iLQR/DDP and track it under noise"
    )
    p_solve.add_argument("system", choices=sorted(_SOLVE_TASKS), help="system name")
    p_solve.add_argument("--method", choices=("ddp", "ilqr"), default="ddp")
    p_solve.add_argument("--dt", type=float, default=0.05, help="control period, s")
    p_solve.add_argument("--horizon", type=_positive_int, default=100, help="steps")
    p_solve.add_argument("--iterations", type=_positive_int, default=1000, help="solver budget")
    p_solve.add_argument("--episodes", type=_positive_int, default=20, help="noisy replays")
    p_solve.add_argument("--noise", type=float, default=0.01, help="process noise std")
    p_solve.add_argument("--tolerance", type=float, default=0.1, help="success: angle error, rad")
    p_solve.add_argument("--seed", type=int, default=0)
    p_solve.add_argument("--out", default="runs/solve", help="output folder")
    p_solve.add_argument("--gif", action="store_true", help="also write an animation")
    p_solve.set_defaults(func=_cmd_solve)

    p_gps = sub.add_parser("gps", help="guided policy search (MDGPS) with a network policy")
    p_gps.add_argument("task", choices=("arm",), help="task: planar-arm reaching")
    p_gps.add_argument("--iterations", type=_positive_int, default=12)
    p_gps.add_argument("--samples", type=_positive_int, default=5, help="rollouts per target")
    p_gps.add_argument("--horizon", type=_positive_int, default=50, help="steps of 0.05 s")
    p_gps.add_argument("--kl-step", type=float, default=0.2, help="KL bound per time step")
    p_gps.add_argument("--init-variance", type=float, default=0.05, help="initial torque variance")
    p_gps.add_argument(
        "--hidden", type=_positive_int, nargs="*", default=[64, 64], help="network widths"
    )
    p_gps.add_argument("--policy-iterations", type=_positive_int, default=300, help="S-step")
    p_gps.add_argument(
        "--sampling",
        choices=("local", "policy"),
        default=None,
        help="rollouts from the local controllers (off-policy) or the network (on-policy, default)",
    )
    p_gps.add_argument(
        "--step-rule",
        choices=("local", "global"),
        default=None,
        help="step size from the local controllers' or the linearised network's (default) gain",
    )
    p_gps.add_argument("--seed", type=int, default=0)
    p_gps.add_argument("--out", default=None, help="run folder (default runs/gps-arm-seedS)")
    p_gps.add_argument("--ceiling", action="store_true", help="also run the iLQR ceiling")
    p_gps.add_argument(
        "--quick", action="store_true", help="2 training / 4 held-out targets (smoke test)"
    )
    p_gps.set_defaults(func=_cmd_gps)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpcontrol`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        parser.error(str(exc))
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
