"""MDGPS on Gymnasium's MuJoCo Reacher-v5 (issue 7): success vs rollouts and seconds per seed.

Task (gpcontrol.algorithms.reacher.ReacherTask.default): Reacher-v5 through
gpcontrol.envs.adapt, state (q1, q2, dq1, dq2) read from the MuJoCo data, start
at rest at q = 0, T = 50 (one episode), 9 training targets (a 3 x 3 polar grid;
--train-grid 2: its 4 corners) and 8 held-out targets, success = final
fingertip distance < 0.02 m. For each seed it runs
MDGPS (5 episodes per training target and iteration, drawn from the env) and
prints, per iteration, the rollouts, the local controllers' success on the
training targets and the noise-free network's success on training and
held-out targets; then the first iteration at which each goal was met and the
seconds per seed. Needs MuJoCo (pip install mujoco).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/gps_reacher.py 0 1 2 3 4 [--iterations 15]
        [--samples 5] [--init-variance 0.05] [--kl-step 0.2] [--train-grid 3]
        [--sampling {local,policy}] [--step-rule {local,global}]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gpcontrol.algorithms.reach_run import ReachingMetrics  # noqa: E402
from gpcontrol.algorithms.reacher import ReacherTask, reacher_options, run_reacher  # noqa: E402


def first(metrics: list[ReachingMetrics], ok) -> str:  # noqa: ANN001
    for m in metrics:
        if ok(m):
            return f"iteration {m.iteration} ({m.rollouts} rollouts)"
    return "not met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None, help="episodes per target")
    parser.add_argument("--init-variance", type=float, default=None)
    parser.add_argument("--kl-step", type=float, default=None)
    parser.add_argument("--sampling", choices=("local", "policy"), default=None)
    parser.add_argument("--step-rule", choices=("local", "global"), default=None)
    parser.add_argument(
        "--train-grid",
        type=int,
        default=3,
        help="k: train on the k x k polar grid of ReacherTask.default (2 = the 4 corners)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = ReacherTask.default(grid=args.train_grid)
    print(f"{len(task.train_targets)} training targets, {len(task.test_targets)} held out")
    summary = []
    for seed in args.seeds:
        given = {
            "iterations": args.iterations,
            "samples": args.samples,
            "init_variance": args.init_variance,
            "kl_step": args.kl_step,
            "sampling": args.sampling,
            "step_rule": args.step_rule,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        opt = reacher_options(seed, **changes)
        print(f"seed {seed}: {opt}")
        print("  iter  rollouts  local  net-train  net-held-out  seconds")

        def line(m: ReachingMetrics) -> None:
            print(
                f"  {m.iteration:4d}  {m.rollouts:8d}  {100 * m.local_success:4.0f}%  "
                f"{100 * m.train_success:8.0f}%  {100 * m.test_success:11.0f}%  {m.seconds:7.1f}",
                flush=True,
            )

        t0, c0 = time.perf_counter(), time.process_time()
        run = run_reacher(task, opt, callback=line)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        ms = list(run.metrics)
        print(f"  local 100%: {first(ms, lambda m: m.local_success >= 1.0)}")
        print(f"  network 100% train: {first(ms, lambda m: m.train_success >= 1.0)}")
        print(f"  network >= 50% held-out: {first(ms, lambda m: m.test_success >= 0.5)}")
        print(
            "  final distances [mm]: train "
            f"{np.round(1000 * np.array(ms[-1].train_distances), 1).tolist()}, held-out "
            f"{np.round(1000 * np.array(ms[-1].test_distances), 1).tolist()}"
        )
        print(f"  wall-clock {seconds:.1f} s, CPU {cpu:.1f} s (this process)")
        summary.append((seed, ms[-1], seconds))
    print("seed  rollouts  final local  final train  final held-out  seconds")
    for seed, m, s in summary:
        print(
            f"{seed:4d}  {m.rollouts:8d}  {100 * m.local_success:10.0f}%  "
            f"{100 * m.train_success:10.0f}%  {100 * m.test_success:13.0f}%  {s:7.1f}"
        )
    final = np.array([[m.local_success, m.train_success, m.test_success] for _, m, _ in summary])
    print(
        f"mean over {len(summary)} seeds: local {100 * final[:, 0].mean():.0f}%, "
        f"train {100 * final[:, 1].mean():.0f}%, held-out {100 * final[:, 2].mean():.0f}%; "
        f"median seconds per seed: {np.median([s for *_, s in summary]):.1f}"
    )


if __name__ == "__main__":
    main()
