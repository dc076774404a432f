"""PILCO learns the pendulum swing-up from a few seconds of interaction.

The pendulum (m = 1 kg, l = 1 m, b = 0.01, |u| <= 2.5 Nm, dt = 0.1 s, 40 steps)
starts hanging; the saturating cost (width 0.5 m) rewards the tip being
upright. PILCO (Deisenroth & Rasmussen 2011) alternates: fit a GP to all data,
optimise an RBF policy through the GP's moment-matched predictions, try it once.

    python examples/06_pilco_pendulum.py --out runs/pilco_pendulum
    python examples/06_pilco_pendulum.py --quick      # 2 short trials, < 60 s
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import gymnasium as gym
import torch

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.algorithms.pilco import PILCOOptions, TrialRecord, pilco, save_figures

torch.set_num_threads(1)
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="2 short trials with a tiny budget")
parser.add_argument("--out", default="runs/06_pilco_pendulum", help="run folder")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

# ---------------------------------------------------------------- task and settings
env = gym.make("gpcontrol/PendulumSwingUp-v0")
system, cost = env.unwrapped.system, env.unwrapped.cost  # type: ignore[attr-defined]
options = PILCOOptions(basis=20, max_trials=10, max_line_searches=50, policy_restarts=1)
if args.quick:  # a smoke run: short horizon, few bases, a handful of line searches
    options = dataclasses.replace(
        options, basis=5, max_trials=2, max_line_searches=3, horizon=20, gp_max_iter=30
    )

# ---------------------------------------------------------------- learn
started = time.perf_counter()
print(TrialRecord.HEADER)


def show(r: TrialRecord) -> None:
    print(r.row(), flush=True)


result = pilco(env, cost, options=options, seed=args.seed, out=args.out, callback=show)

# ---------------------------------------------------------------- report and figures
paths = save_figures(result, system, args.out)
if result.first_success is not None:
    print(f"solved at trial {result.first_success}: {result.seconds_to_success:.1f} s of data")
else:
    print(f"not solved in {len(result.trials)} trials")
print(f"{time.perf_counter() - started:.1f} s wall-clock; figures: {[str(p) for p in paths]}")
