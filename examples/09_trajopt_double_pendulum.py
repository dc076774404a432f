"""Double-pendulum swing-up by trajectory optimisation (CasADi + IPOPT).

PILCO's double pendulum (two 0.5 kg, 0.5 m rods, a motor at each joint,
|tau| <= 3 N m) swings from hanging at rest (q = 0) to upright at rest
(q = (pi, 0)) in 3 s, trading torque against joint speed. Solved by multiple
shooting and by direct collocation, each warm-started from the other to show
they share the optimum; checks the work-energy balance of the plan and writes
a figure of the states and controls and an animation of the swing-up.

    python examples/09_trajopt_double_pendulum.py [--quick] [--out runs/examples]
"""

import argparse
import math
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
from gpcontrol.plotting import animate, plot_trajectory
from gpcontrol.solvers.trajopt import TrajoptOptions, trajopt
from gpcontrol.systems import DoublePendulum

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [q1, q2, dq1, dq2] (q2 relative to the first rod), u = [tau1, tau2], RK4.
T_final = 3.0
N = 40 if args.quick else 120
system = DoublePendulum(dt=T_final / N)

# ---------------------------------------------------------------- cost
# l = dt/2 (|dq|^2 + |tau|^2): a Riemann sum of int (|dq|^2 + |tau|^2) / 2 dt.
upright = np.array([math.pi, 0.0, 0.0, 0.0])
dt = system.dt
cost = QuadraticCost(dt * np.diag([0.0, 0.0, 1.0, 1.0]), dt * np.eye(2), x_target=upright)

# ---------------------------------------------------------------- constraints
x0 = np.zeros(4)
options = TrajoptOptions(x_final=upright)  # torque bounds from system.u_low/u_high

# ---------------------------------------------------------------- solve
ms = trajopt(system, cost, x0, N, method="multiple_shooting", options=options)
col = trajopt(system, cost, x0, N, method="collocation", options=options)
col_from_ms = trajopt(system, cost, x0, N, method="collocation", guess=ms, options=options)
ms_from_col = trajopt(system, cost, x0, N, method="multiple_shooting", guess=col, options=options)
for name, r in (
    ("multiple shooting", ms),
    ("collocation", col),
    ("collocation <- ms", col_from_ms),
    ("ms <- collocation", ms_from_col),
):
    gain = float(np.diff(system.energy(r.X[[0, -1]]))[0])
    work = float(np.sum(r.U * np.diff(r.X[:, :2], axis=0)))  # torques held per interval
    print(
        f"  {name:<18} {r.status:<7} cost {r.cost:8.4f}  {r.iterations:3d} iterations  "
        f"{r.solve_time:5.2f} s (build {r.build_time:4.1f} s)  "
        f"energy gained {gain:.4f} J = work {work:.4f} J"
    )

# ---------------------------------------------------------------- plot
fig = plot_trajectory(system, (ms.X, ms.U), label="multiple shooting", title="double pendulum")
plot_trajectory(system, (col.X, col.U), ax=fig.axes, label="collocation", color="C3")
for ax, goal in zip(fig.axes[:2], upright[:2], strict=True):
    ax.axhline(goal, color="k", lw=0.6, ls=":")
fig.axes[0].legend(loc="best", fontsize=7)
fig.savefig(out / "09_trajopt_double_pendulum.png", dpi=100)
gif = animate(system, col.X, out / "09_trajopt_double_pendulum.gif")  # knots, real time
print(f"wrote {out / '09_trajopt_double_pendulum.png'} and {gif}")
