"""Guided policy search: one network learns to reach many targets with a planar arm.

Li & Todorov's two-link arm (|tau| <= 5 N m, dt = 0.05 s, T = 50) starts at
rest and must put its hand within 5 cm of a target. Mirror-descent GPS (MDGPS)
fits time-varying linear-Gaussian models to 5 rollouts per training target,
improves one local controller per target under a KL bound (LQR-FLM), and
regresses a target-conditioned tanh network u = mu([x, target]) onto them. The
network is then tried on held-out targets it never trained on; iLQR on the
true dynamics gives the ceiling. Writes the success-vs-rollouts curve and a
figure of the arm reaching every target.

    python examples/14_gps_arm.py [--quick] [--out runs/examples]
"""

import argparse
import time
from pathlib import Path

import torch

from gpcontrol.algorithms.reach import ReachingTask, ilqr_ceiling
from gpcontrol.algorithms.reach_run import reaching_options, run_reaching, save_reaching_figures

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out = Path(args.out) / "14_gps_arm"
torch.set_num_threads(1)

# ---------------------------------------------------------------- task
# 4 training targets at the corners of a 20 cm square, 16 held-out targets inside it.
task = ReachingTask.default()
if args.quick:  # 2 training and 4 held-out targets, a short horizon
    task = ReachingTask(
        task.system, task.x0, task.train_targets[:2], task.test_targets[::4], 20,
        task.tolerance, task.cost_weights,
    )  # fmt: skip
print(f"start hand {task.system.end_effector(task.x0).round(3)} m, T = {task.T}")

# ---------------------------------------------------------------- ceiling: iLQR, true model
t0 = time.perf_counter()
ceiling = ilqr_ceiling(task, task.train_targets if args.quick else None)
print(
    f"iLQR ceiling: {100 * ceiling.success.mean():.0f}% of targets "
    f"({time.perf_counter() - t0:.1f} s)"
)

# ---------------------------------------------------------------- MDGPS
options = reaching_options(args.seed)  # 12 iterations x 5 rollouts per target
if args.quick:
    options = reaching_options(args.seed, iterations=2, hidden=(16,), policy_iterations=100)
print("iter  rollouts  local  net-train  net-held-out")
run = run_reaching(
    task,
    options,
    folder=out / f"run-{'quick' if args.quick else 'full'}-seed{args.seed}",
    callback=lambda m: print(
        f"{m.iteration:4d}  {m.rollouts:8d}  {100 * m.local_success:4.0f}%  "
        f"{100 * m.train_success:8.0f}%  {100 * m.test_success:11.0f}%",
        flush=True,
    ),
)

# ---------------------------------------------------------------- figures
paths = save_reaching_figures(run, out, ceiling_success=float(ceiling.success.mean()))
print("wrote", *paths)
