"""PILCO learns the cart-pole swing-up (the PILCO MATLAB package's scenario).

Cart and pole 0.5 kg each, pole length l = 0.5 m, friction b = 0.1, |u| <= 10 N,
dt = 0.1 s, 40 steps (4 s), start x0 ~ N(0, 0.1^2 I), measurement noise std 0.01,
saturating cost of width 0.25 m on the pole tip's distance from upright above
p = 0. PILCO (Deisenroth & Rasmussen 2011; TPAMI 2015) starts from one random
rollout and alternates: fit a GP to all transitions, optimise a 10-basis RBF
policy through the GP's moment-matched predictions (L-BFGS, 150 line searches,
warm-started from the previous trial's policy), try it once on the cart-pole.
Success: the last second of a rollout within the cost width.

    python examples/12_pilco_cartpole.py --out runs/12_pilco_cartpole     # ~10-20 min
    python examples/12_pilco_cartpole.py --quick                           # 1 trial, < 60 s

Measured (docs/pilco.md): 9 of 10 held-out seeds (1000-1009) solve the task within 10
trials, median 24 s of interaction; seed 1001 (the default) at trial 5 after 24 s.

The run folder gets ``learning_curve.png``, ``trial_KK.png`` (predicted mean +- 2 sd
against the actual rollout, per trial) and ``final.gif`` (the last rollout).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import gymnasium as gym
import torch

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.algorithms.pilco import PILCOOptions, TrialRecord, pilco, save_figures
from gpcontrol.plotting import animate

torch.set_num_threads(1)
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="1 short trial with a tiny budget")
parser.add_argument("--out", default="runs/12_pilco_cartpole", help="run folder")
parser.add_argument("--seed", type=int, default=1001)
args = parser.parse_args()

# ---------------------------------------------------------------- task and settings
env = gym.make("gpcontrol/CartPoleSwingUp-v0", measurement_noise_std=0.01)
base = env.unwrapped
system, cost = base.system, base.cost  # type: ignore[attr-defined]
options = PILCOOptions(basis=10, max_trials=10, max_line_searches=150)
if args.quick:  # a smoke run: short horizon, a handful of line searches
    options = dataclasses.replace(
        options, max_trials=1, max_line_searches=5, horizon=15, gp_max_iter=30
    )

# ---------------------------------------------------------------- learn
started = time.perf_counter()
print(TrialRecord.HEADER)


def show(r: TrialRecord) -> None:
    print(r.row(), flush=True)


result = pilco(env, cost, options=options, seed=args.seed, out=args.out, callback=show)

# ---------------------------------------------------------------- report and figures
paths = save_figures(result, system, args.out)
last = result.trajectories[-1]
states = last.true_states if last.true_states is not None else last.states
target = getattr(base, "render_target", None)
paths.append(animate(system, states, Path(args.out) / "final.gif", target=target))
if result.first_success is not None:
    print(f"solved at trial {result.first_success}: {result.seconds_to_success:.1f} s of data")
else:
    print(f"not solved in {len(result.trials)} trials")
print(f"{time.perf_counter() - started:.1f} s wall-clock; figures: {[str(p) for p in paths]}")
