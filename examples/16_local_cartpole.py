"""LQR-FLM with local linear models on PILCO's cart-pole swing-up, next to PILCO.

A time-varying linear-Gaussian controller is improved on the noisy cart-pole
(PILCO's scenario: dt = 0.1 s, 40 steps, start N(0, 0.1^2 I), |u| <= 10 N,
measurement noise 0.01) by sampling rollouts, fitting TVLG dynamics with a
mixture prior, and taking KL-bounded LQG steps (LQR-FLM) on a quadratic cost
toward the upright state. Success and the plotted cost are PILCO's: the
saturating pole-tip cost (width 0.25 m), solved when the tip stays within the
width for the last second. The figure plots cost and success rate against
interaction seconds, with PILCO's measured first successes marked.

    python examples/16_local_cartpole.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gpcontrol.algorithms.local_search import LocalSearchOptions, local_search
from gpcontrol.algorithms.pilco import swing_up_success
from gpcontrol.costs import QuadraticCost, SaturatingCost
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy
from gpcontrol.systems import CartPole

T = 40
# PILCO on the same scenario, 10 held-out seeds (benchmarks/pilco.py, docs/pilco.md):
# 9 solved, first success after 16 to 44 s of interaction, median 24 s.
PILCO_SECONDS = (16.0, 24.0, 44.0)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
parser.add_argument("--seed", type=int, default=1000)
args = parser.parse_args()
out = Path(args.out) / "16_local_cartpole"
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- the problem
system = CartPole()  # PILCO's cart-pole, dt = 0.1 s
sat = SaturatingCost.pole_tip(system, 0.25)  # success and the plotted cost
# the optimiser's cost: the saturating cost is flat far from upright (no gradient to follow)
quad = QuadraticCost(
    np.diag([1.0, 4.0, 0.1, 0.1]),
    np.array([[1e-2]]),
    x_target=[0.0, np.pi, 0.0, 0.0],
    Qf=np.diag([10.0, 40.0, 1.0, 1.0]),
)
init = LinearGaussianPolicy.from_gains(np.zeros((1, 4)), np.zeros(1), 9.0, T=T)
options = LocalSearchOptions(
    samples=10, max_rollouts=40 if args.quick else 400, kl_step=1.0, x0_std=0.1,
    measurement_noise_std=0.01, seed=args.seed,
)  # fmt: skip
print("rollouts  interaction[s]  sample-cost  success  mean-cost")
res = local_search(
    system, quad, np.zeros(4), T, init, options=options, report_cost=sat,
    success=lambda X: swing_up_success(sat, X, 10),
    callback=lambda h: print(
        f"{h.rollouts:8d}  {h.interaction_seconds:14.0f}  {h.sample_cost:11.2f}  "
        f"{h.success_rate:7.2f}  {h.mean_cost:9.2f}", flush=True,
    ),
)  # fmt: skip
print(
    f"solved: {res.solved}"
    + (f" after {res.first_success_rollouts} rollouts ({res.first_success_seconds:.0f} s)"
       if res.solved else f" (not within {options.max_rollouts} rollouts)")
)  # fmt: skip

secs = np.array([h.interaction_seconds for h in res.history])
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
ax1.plot(secs, [h.sample_cost for h in res.history], "o-", label="LQR-FLM samples (mean)")
ax1.plot(secs, [h.mean_cost for h in res.history], "s--", label="LQR-FLM mean controller")
ax1.set_ylabel("saturating cost per rollout")
ax2.plot(secs, [h.success_rate for h in res.history], "o-", label="LQR-FLM sample success rate")
lo, median, hi = PILCO_SECONDS
for ax in (ax1, ax2):
    ax.axvspan(lo, hi, color="C3", alpha=0.15)
    ax.axvline(median, color="C3", ls=":", lw=1)
ax2.plot([median], [1.0], "*", color="C3", ms=12, label="PILCO: first success, 9/10 seeds")
ax2.set_xlabel("interaction seconds on the system")
ax2.set_ylabel("success rate")
ax2.set_ylim(-0.05, 1.05)
ax1.set_xscale("symlog", linthresh=10)
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
fig.suptitle("Cart-pole swing-up: LQR-FLM (local models) vs PILCO")
fig.tight_layout()
path = out / "cost_success.png"
fig.savefig(path, dpi=100)
print("wrote", path)
