"""MDGPS on planar-arm reaching (issue 7): success vs rollouts and wall-clock per seed.

Task (gpcontrol.algorithms.reach.ReachingTask.default): Li & Todorov's two-link
arm, dt = 0.05 s (5 RK4 sub-steps), T = 50, one start pose, 4 training targets,
16 held-out targets, success = final hand distance < 0.05 m. For each seed it
runs MDGPS (5 samples per target and iteration) and prints, per iteration, the
rollouts, the local controllers' success on the training targets and the
noise-free network's success on training and held-out targets; then the first
iteration at which each goal was met and the seconds per seed. The iLQR
ceiling (true dynamics, every target) is printed once.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/gps.py 0 1 2 3 4 [--iterations 12] [--ceiling]
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

from gpcontrol.algorithms.reach import ReachingTask, ilqr_ceiling  # noqa: E402
from gpcontrol.algorithms.reach_run import (  # noqa: E402
    ReachingMetrics,
    reaching_options,
    run_reaching,
)


def first(metrics: list[ReachingMetrics], ok) -> str:  # noqa: ANN001
    for m in metrics:
        if ok(m):
            return f"iteration {m.iteration} ({m.rollouts} rollouts)"
    return "not met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--out", default=None, help="keep run folders under this directory")
    parser.add_argument("--sampling", choices=("local", "policy"), default=None)
    parser.add_argument("--step-rule", choices=("local", "global"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = ReachingTask.default()
    if args.ceiling:
        t0 = time.perf_counter()
        c = ilqr_ceiling(task)
        print(
            f"iLQR ceiling: {100 * c.success.mean():.0f}% of {len(c.success)} targets, max final "
            f"distance {1000 * c.distances.max():.3f} mm, {time.perf_counter() - t0:.1f} s"
        )
    summary = []
    for seed in args.seeds:
        variant = {"sampling": args.sampling, "step_rule": args.step_rule}
        opt = reaching_options(
            seed,
            iterations=args.iterations,
            **{k: v for k, v in variant.items() if v is not None},  # else reaching_options'
        )
        print(f"seed {seed}")
        print("  iter  rollouts  local  net-train  net-held-out  seconds")

        def line(m: ReachingMetrics) -> None:
            print(
                f"  {m.iteration:4d}  {m.rollouts:8d}  {100 * m.local_success:4.0f}%  "
                f"{100 * m.train_success:8.0f}%  {100 * m.test_success:11.0f}%  {m.seconds:7.1f}",
                flush=True,
            )

        folder = None if args.out is None else os.path.join(args.out, f"seed{seed}")
        t0, c0 = time.perf_counter(), time.process_time()
        run = run_reaching(task, opt, folder=folder, callback=line)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        ms = list(run.metrics)
        local = first(ms[:8], lambda m: m.local_success >= 0.95)
        net = first(ms, lambda m: m.train_success >= 0.9 and m.test_success >= 0.8)
        print(f"  local >= 95% within 8 iterations: {local}")
        print(f"  network >= 90% train and >= 80% held-out: {net}")
        print(f"  wall-clock {seconds:.1f} s, CPU {cpu:.1f} s (this process)")
        summary.append((seed, ms[-1], seconds))
    print("seed  final local  final train  final held-out  seconds")
    for seed, m, s in summary:
        print(
            f"{seed:4d}  {100 * m.local_success:10.0f}%  {100 * m.train_success:10.0f}%  "
            f"{100 * m.test_success:13.0f}%  {s:7.1f}"
        )
    print(f"median seconds per seed: {np.median([s for *_, s in summary]):.1f}")


if __name__ == "__main__":
    main()
