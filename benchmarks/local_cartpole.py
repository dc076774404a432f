"""LQR-FLM (local TVLG models, no global policy) on PILCO's cart-pole swing-up (issue 7).

The scenario is PILCO's (``gpcontrol pilco`` / ``benchmarks/pilco.py``): the PILCO cart-pole,
dt = 0.1 s, H = 40 steps, start N(0, 0.1^2 I), |u| <= 10 N, measurement noise std 0.01, success =
the pole tip within the cost width (0.25 m) of the upright target for the last 1 s (10 steps)
of an actual (noisy) rollout, :func:`gpcontrol.algorithms.pilco.swing_up_success`.

The saturating cost is flat (gradient ~ 0) far from the target, so LQR-FLM's second-order
expansion gives it nothing to descend: the optimiser uses a quadratic cost toward the upright
state, while success and the recorded cost are PILCO's saturating cost. Printed per seed:
solved, rollouts and interaction seconds to the first successful sample rollout, wall-clock;
then the medians next to PILCO's measured figures.

    OMP_NUM_THREADS=1 python benchmarks/local_cartpole.py --seeds 1000-1003 --budget 400
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from gpcontrol.algorithms.local_search import LocalSearchOptions, local_search
from gpcontrol.algorithms.pilco import swing_up_success
from gpcontrol.costs import QuadraticCost, SaturatingCost
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy
from gpcontrol.systems import CartPole

T = 40
# PILCO on the same seeds (benchmarks/pilco.py at 4e1805e, docs/pilco.md): seed -> (trial of
# first success, interaction s)
PILCO: dict[int, tuple[int, float] | None] = {
    1000: (4, 20.0), 1001: (6, 28.0), 1002: (3, 16.0), 1003: (8, 36.0), 1004: (4, 20.0),
    1005: (5, 24.0), 1006: (5, 24.0), 1007: None, 1008: (10, 44.0), 1009: (6, 28.0),
}  # fmt: skip


def problem() -> tuple[CartPole, QuadraticCost, SaturatingCost]:
    """The system, the optimiser's quadratic cost and PILCO's saturating cost."""
    system = CartPole()
    sat = SaturatingCost.pole_tip(system, 0.25)
    quad = QuadraticCost(
        np.diag([1.0, 4.0, 0.1, 0.1]),
        np.array([[1e-2]]),
        x_target=[0.0, np.pi, 0.0, 0.0],
        Qf=np.diag([10.0, 40.0, 1.0, 1.0]),
    )
    return system, quad, sat


def run_seed(seed: int, budget: int, samples: int, kl_step: float, init_std: float) -> dict:
    system, quad, sat = problem()
    init = LinearGaussianPolicy.from_gains(np.zeros((1, 4)), np.zeros(1), init_std**2, T=T)
    opt = LocalSearchOptions(
        samples=samples, max_rollouts=budget, kl_step=kl_step, x0_std=0.1,
        measurement_noise_std=0.01, seed=seed,
    )  # fmt: skip
    t0 = time.perf_counter()
    res = local_search(
        system, quad, np.zeros(4), T, init, options=opt, report_cost=sat,
        success=lambda X: swing_up_success(sat, X, 10),
    )  # fmt: skip
    return {
        "seed": seed,
        "solved": res.solved,
        "rollouts": res.first_success_rollouts,
        "seconds_to_success": res.first_success_seconds,
        "rollouts_used": res.history[-1].rollouts,
        "best_sample_cost": min(h.sample_cost for h in res.history),
        "best_success_rate": max(h.success_rate for h in res.history),
        "wall_seconds": time.perf_counter() - t0,
        "history": [[h.rollouts, h.interaction_seconds, h.sample_cost, h.success_rate,
                     h.mean_cost, h.mean_success] for h in res.history],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1000-1009")
    parser.add_argument("--budget", type=int, default=400, help="rollouts per seed")
    parser.add_argument("--samples", type=int, default=10, help="rollouts per iteration")
    parser.add_argument("--kl-step", type=float, default=1.0)
    parser.add_argument("--init-std", type=float, default=3.0)
    parser.add_argument("--out", default="/tmp/runs/bench-local")
    args = parser.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        row = run_seed(seed, args.budget, args.samples, args.kl_step, args.init_std)
        (out / f"seed{seed}.json").write_text(json.dumps(row))
        rows.append(row)
        print(
            f"seed {seed}: solved {row['solved']} rollouts {row['rollouts']} interaction "
            f"{row['seconds_to_success']} s, best success rate {row['best_success_rate']:.2f}, "
            f"best sample cost {row['best_sample_cost']:.2f}, wall {row['wall_seconds']:.0f} s",
            flush=True,
        )
    solved = [r for r in rows if r["solved"]]
    med = statistics.median(r["seconds_to_success"] for r in solved) if solved else None
    wall = statistics.median(r["wall_seconds"] for r in rows)
    print(
        f"LQR-FLM: solved {len(solved)}/{len(rows)} within {args.budget} rollouts "
        f"({args.budget * T * 0.1:.0f} s); median interaction to first success: "
        f"{'-' if med is None else f'{med:.0f} s'}; median wall {wall:.0f} s"
    )
    pilco = [PILCO.get(s) for s in seeds]
    done = [p[1] for p in pilco if p is not None]
    print(
        f"PILCO (measured, same seeds): solved {len(done)}/{len(seeds)}; median interaction to "
        f"first success: {'-' if not done else f'{statistics.median(done):.0f} s'}"
    )


if __name__ == "__main__":
    main()
