"""Pendulum swing-up with a weak motor by trajectory optimisation (CasADi + IPOPT).

The motor (|tau| <= 2 N m) cannot hold the pendulum out horizontally (m g l_c =
5 N m), so the optimal plan pumps energy in a few swings. Benchmark (b):
quadratic cost to the upright over 5 s, solved by multiple shooting and by
direct collocation with the upright at rest as a terminal constraint; writes a
figure of the states and controls and an animation of the swing-up.

    python examples/07_trajopt_pendulum.py [--quick] [--out runs/examples]
"""

import argparse
import math
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
from gpcontrol.plotting import animate, plot_trajectory
from gpcontrol.solvers.trajopt import TrajoptOptions, trajopt
from gpcontrol.systems import Pendulum, PendulumParams

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [theta, dtheta] (theta = 0 hanging, pi upright), u = [tau], RK4 steps.
T_final = 5.0
N = 50 if args.quick else 100
system = Pendulum(PendulumParams.benchmark(), dt=T_final / N)
p = system.params
print(f"|tau| <= {p.max_torque} N m < m g l_c = {p.mass * p.gravity * p.lc:.2f} N m")

# ---------------------------------------------------------------- cost
# l = dt/2 [(x - xg)' Q (x - xg) + R tau^2], Q = diag(1, 0.1), R = 0.01: a
# Riemann sum of the continuous-time cost (collocation averages l per interval).
upright = np.array([math.pi, 0.0])
dt = system.dt
cost = QuadraticCost(dt * np.diag([1.0, 0.1]), [[dt * 0.01]], x_target=upright)

# ---------------------------------------------------------------- constraints
# Start hanging at rest, end upright at rest; |tau| <= 2 from system.u_low/u_high.
x0 = np.zeros(2)
options = TrajoptOptions(x_final=upright)

# ---------------------------------------------------------------- solve
results = {
    method: trajopt(system, cost, x0, N, method=method, options=options)
    for method in ("multiple_shooting", "collocation")
}
for method, r in results.items():
    swings = np.count_nonzero(np.diff(np.sign(r.X[1:-1, 1])))
    print(
        f"  {method:<18} {r.status:<7} cost {r.cost:8.4f}  {r.iterations:3d} iterations  "
        f"{r.solve_time * 1e3:6.1f} ms  max|tau| {np.abs(r.U).max():.3f}  "
        f"{swings} velocity reversals  interpolation error {r.interpolation_error:.1e}"
    )
ms, col = results["multiple_shooting"], results["collocation"]
replay = np.abs(system.simulate(x0, ms.U) - ms.X).max()
print(f"  multiple shooting replayed with system.step: max state error {replay:.1e}")

# ---------------------------------------------------------------- plot
fig = plot_trajectory(system, (ms.X, ms.U), label="multiple shooting", title="pendulum swing-up")
plot_trajectory(system, (col.X, col.U), ax=fig.axes, label="collocation", color="C3")
fig.axes[0].axhline(math.pi, color="k", lw=0.6, ls=":")
fig.axes[0].legend(loc="best", fontsize=7)
fig.savefig(out / "07_trajopt_pendulum.png", dpi=100)
gif = animate(system, col.X, out / "07_trajopt_pendulum.gif")  # knots, real time
print(f"wrote {out / '07_trajopt_pendulum.png'} and {gif}")
