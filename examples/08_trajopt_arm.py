"""Two-link arm point-to-point motion with joint limits by trajectory optimisation.

Li & Todorov's torque-driven arm (horizontal plane, joint friction, |tau| <=
5 N m) with gpcontrol's human-like joint limits (shoulder [-pi/2, pi], elbow
[0, 2.8] rad) swings its shoulder through 2 rad in 1 s with the elbow bent at
2.6 rad, with the least effort. Without the limits the optimal elbow folds
past 2.8 rad; with them it runs along the limit. Solved by direct collocation
and multiple shooting; writes a figure of both plans and an animation.

    python examples/08_trajopt_arm.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
from gpcontrol.plotting import animate, plot_trajectory
from gpcontrol.solvers.trajopt import TrajoptOptions, trajopt
from gpcontrol.systems import PlanarArm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [q1, q2, dq1, dq2] (shoulder, elbow relative to the upper arm), u = torques.
T_final = 1.0
N = 50 if args.quick else 100
arm = PlanarArm(dt=T_final / N)
print(f"joint limits: q_low {arm.x_low[:2].round(3)}, q_high {arm.x_high[:2].round(3)} rad")

# ---------------------------------------------------------------- cost
# l = dt * 0.1 |tau|^2, so J ~ 0.1 int |tau|^2 dt (N^2 m^2 s).
cost = QuadraticCost(np.zeros((4, 4)), arm.dt * 0.2 * np.eye(2))

# ---------------------------------------------------------------- constraints
# Rest to rest; the joint limits are arm.x_low/x_high (the default), and
# "free" replaces them by +-inf for comparison.
x0 = np.array([0.0, 2.6, 0.0, 0.0])
x_goal = np.array([2.0, 2.6, 0.0, 0.0])
inf = np.full(4, np.inf)
variants = {
    "with limits": TrajoptOptions(x_final=x_goal),
    "free": TrajoptOptions(x_final=x_goal, x_low=-inf, x_high=inf),
}

# ---------------------------------------------------------------- solve
plans = {}
for label, options in variants.items():
    for method in ("collocation", "multiple_shooting"):
        r = trajopt(arm, cost, x0, N, method=method, options=options)
        print(
            f"  {label:<12} {method:<18} {r.status:<7} effort {r.cost:.5f}  "
            f"{r.iterations:3d} iterations  {r.solve_time * 1e3:6.1f} ms  "
            f"max elbow {r.X[:, 1].max():.4f} rad"
        )
        plans[label, method] = r
limited = plans["with limits", "collocation"]
hand = arm.end_effector(limited.X[[0, -1]])
print(f"  hand moves from {hand[0].round(3)} to {hand[1].round(3)} m")

# ---------------------------------------------------------------- plot
fig = plot_trajectory(
    arm,
    (plans["free", "collocation"].X, plans["free", "collocation"].U),
    label="no joint limits",
    color="C7",
    title="two-link arm, 2 rad shoulder swing in 1 s, minimum effort",
)
plot_trajectory(arm, (limited.X, limited.U), ax=fig.axes, label="with joint limits", color="C3")
fig.axes[1].axhline(arm.x_high[1], color="k", lw=0.8, ls=":", label="elbow limit")
fig.axes[0].legend(loc="best", fontsize=7)
fig.axes[1].legend(loc="best", fontsize=7)
fig.savefig(out / "08_trajopt_arm.png", dpi=100)
gif = animate(arm, limited.X, out / "08_trajopt_arm.gif", every=2)  # real time
print(f"wrote {out / '08_trajopt_arm.png'} and {gif}")
