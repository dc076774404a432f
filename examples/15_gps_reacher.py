"""Guided policy search on Gymnasium's MuJoCo Reacher-v5: one network, many targets.

The Reacher (a two-link MuJoCo arm, controls in [-1, 1]^2, dt = 0.02 s, 50-step
episodes) starts at rest, stretched along +x, and must bring its fingertip
within 2 cm of a target (the fingertip and target spheres then touch).
Mirror-descent GPS draws 5 episodes per training target (9 targets) from the environment
itself (through gpcontrol.envs.adapt and an EnvSampler that sets qpos, qvel and
the target), fits time-varying linear-Gaussian models to them, improves one
local controller per target under a KL bound, and regresses a
target-conditioned tanh network u = mu([x, target]) onto them; the network is
then tried on held-out targets. Needs MuJoCo (pip install mujoco). Ends in a
figure of success vs rollouts.

    python examples/15_gps_reacher.py [--quick] [--out runs/examples]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gpcontrol.algorithms.reacher import (
    ReacherTask,
    reacher_options,
    run_reacher,
    save_reacher_figure,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out = Path(args.out) / "15_gps_reacher"
torch.set_num_threads(1)

# ---------------------------------------------------------------- task
# 9 training targets (polar grid r in 0.08..0.18 m, phi in 30..120 deg), 8 held out inside.
task = ReacherTask.default()
if args.quick:  # 2 training targets, 2 held-out, a 30-step horizon
    task = ReacherTask(
        task.env, task.x0, task.train_targets[[2, 6]], task.test_targets[[1, 5]], 30,
        task.tolerance, task.cost_weights,
    )  # fmt: skip
print(f"start fingertip {task.fingertip(task.x0).round(3)} m, T = {task.T}, tol {task.tolerance} m")

# ---------------------------------------------------------------- MDGPS on the environment
options = reacher_options(args.seed)  # 15 iterations x 5 episodes per training target (675)
if args.quick:
    options = reacher_options(
        args.seed, iterations=3, samples=3, hidden=(16,), policy_iterations=50
    )
print("iter  rollouts  local  net-train  net-held-out  seconds")
t0 = time.perf_counter()
run = run_reacher(
    task,
    options,
    callback=lambda m: print(
        f"{m.iteration:4d}  {m.rollouts:8d}  {100 * m.local_success:4.0f}%  "
        f"{100 * m.train_success:8.0f}%  {100 * m.test_success:11.0f}%  {m.seconds:7.1f}",
        flush=True,
    ),
)
last = run.metrics[-1]
print(
    f"{time.perf_counter() - t0:.0f} s; final fingertip distances [mm]: "
    f"train {np.round(1000 * np.array(last.train_distances), 1)}, "
    f"held-out {np.round(1000 * np.array(last.test_distances), 1)}"
)

# ---------------------------------------------------------------- figure
path = save_reacher_figure(run.metrics, out / "success.png", tolerance=task.tolerance)
print("wrote", path)
