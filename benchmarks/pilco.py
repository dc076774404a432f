"""PILCO's data efficiency and wall-clock on gpcontrol's swing-up tasks (issue 6's criterion).

For each seed, one full PILCO run (:func:`gpcontrol.algorithms.pilco.pilco`: one random
rollout, then up to ``--trials`` policy trials, stopping at the first success) on
``gpcontrol pilco``'s task (measurement noise std 0.01, the MATLAB package's settings).
Printed per seed: trials used, whether and when the task was first solved (trial and
interaction seconds, the random rollout included), GP-training and policy-optimisation
seconds summed over trials, wall-clock seconds, and the process's peak resident memory
(``resource.getrusage``; seeds run in one process, so it is the peak so far). Then the
summary: fraction solved within the budget and the median interaction seconds to the
first success (over solved seeds).

Each seed writes a run folder (below); a finished or interrupted seed is resumed from
it (completed seeds cost nothing), so the table can be built one seed at a time:

    OMP_NUM_THREADS=1 python benchmarks/pilco.py cartpole --seeds 1000-1009 --out /tmp/runs/bench

``--propagation`` selects the policy evaluation (:class:`~gpcontrol.algorithms.pilco.PILCOOptions`),
e.g. ``--propagation particles --particles 400`` for MC-PILCO-style particles; the run
folders are ``OUT/SYSTEM-PROPAGATION-seedS``.

Run ``--quick`` for a smoke test (1 trial, 5 line searches, 1 seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.algorithms.pilco import (
    DEFAULT_PARTICLES,
    PROPAGATIONS,
    PILCOOptions,
    TrialRecord,
    pilco,
)
from gpcontrol.envs import ENV_IDS


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def _peak_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def run_seed(system: str, seed: int, options: PILCOOptions, noise: float, out: Path) -> dict:
    """One PILCO run; returns its row of the table."""
    env = gym.make(ENV_IDS[system], measurement_noise_std=noise)
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    t0 = time.perf_counter()

    def progress(r: TrialRecord) -> None:
        print(
            f"  seed {seed} trial {r.trial}: predicted {r.predicted_cost:.2f} actual "
            f"{r.actual_cost:.2f} success {r.success} gp {r.gp_seconds:.0f} s "
            f"policy {r.policy_seconds:.0f} s",
            flush=True,
        )

    result = pilco(env, cost, options=options, seed=seed, out=out, callback=progress)
    wall = time.perf_counter() - t0
    env.close()
    gp_s = sum(r.gp_seconds for r in result.trials)
    pol_s = sum(r.policy_seconds for r in result.trials)
    row = {
        "seed": seed,
        "trials": len(result.trials),
        "solved": result.first_success is not None,
        "first_success": result.first_success,
        "seconds_to_success": result.seconds_to_success,
        "gp_seconds": gp_s,
        "policy_seconds": pol_s,
        "wall_seconds": wall if wall > 1.0 else gp_s + pol_s,  # resumed: recorded times
        "peak_mb": _peak_mb(),
    }
    (out / "benchmark.json").write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", nargs="?", default="cartpole", choices=("cartpole", "pendulum"))
    parser.add_argument("--seeds", default="1000-1009", help="e.g. 1000-1009 or 1,2,5")
    parser.add_argument("--trials", type=int, default=10, help="policy trials after the random one")
    parser.add_argument("--line-searches", type=int, default=150)
    parser.add_argument("--propagation", choices=PROPAGATIONS, default="moment_matching")
    parser.add_argument(
        "--particles", type=int, default=DEFAULT_PARTICLES, help="for --propagation particles"
    )
    parser.add_argument("--noise", type=float, default=0.01, help="measurement noise std")
    parser.add_argument("--out", default="/tmp/runs/bench-pilco")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = _seeds(args.seeds)
    basis = 10 if args.system == "cartpole" else 20
    options = PILCOOptions(
        max_trials=args.trials,
        basis=basis,
        max_line_searches=args.line_searches,
        propagation=args.propagation,
        particles=args.particles,
    )
    if args.quick:
        seeds = seeds[:1]
        options = dataclasses.replace(options, max_trials=1, max_line_searches=5)
    print(f"PILCO {args.system}, seeds {seeds}, propagation {args.propagation}, options {options}")
    rows = []
    for seed in seeds:
        method = args.propagation
        if method == "particles" and args.particles != DEFAULT_PARTICLES:
            method += str(args.particles)
        folder = Path(args.out) / f"{args.system}-{method}-seed{seed}"
        rows.append(run_seed(args.system, seed, options, args.noise, folder))
    print()
    print("seed  trials  solved  first  interaction[s]   gp[s]  policy[s]  wall[s]  peak[MB]")
    for r in rows:
        first = "-" if r["first_success"] is None else str(r["first_success"])
        secs = "-" if r["seconds_to_success"] is None else f"{r['seconds_to_success']:.0f}"
        print(
            f"{r['seed']:4d}  {r['trials']:6d}  {str(r['solved']):>6}  {first:>5}  {secs:>14}"
            f"  {r['gp_seconds']:6.0f}  {r['policy_seconds']:9.0f}  {r['wall_seconds']:7.0f}"
            f"  {r['peak_mb']:8.0f}"
        )
    solved = [r for r in rows if r["solved"]]
    median = statistics.median(r["seconds_to_success"] for r in solved) if solved else None
    print(
        f"solved {len(solved)}/{len(rows)} within {options.max_trials} policy trials "
        f"(+1 random); median interaction to first success: "
        f"{'-' if median is None else f'{median:.0f} s'}; median wall-clock per run "
        f"{statistics.median(r['wall_seconds'] for r in rows):.0f} s"
    )


if __name__ == "__main__":
    main()
