"""Minimum-time cart-pole swing-up by trajectory optimisation with a free final time.

Kelly's cart-pole (SIAM Review 2017: 1 kg cart, 0.3 kg point mass at 0.5 m,
|F| <= 20 N) swings from hanging at rest to upright at rest above its start as
fast as possible. Both transcriptions (multiple shooting on RK4, Legendre
collocation) find the same bang-bang optimum; a fixed horizon 1 % shorter is
infeasible and 1 % longer is feasible, which certifies minimality on the grid.
Writes a figure of the optimum and an animation.

    python examples/11_min_time_cartpole.py [--quick] [--out runs/examples]
"""

import argparse
import math
from pathlib import Path

import numpy as np

from gpcontrol.plotting import animate, plot_trajectory
from gpcontrol.solvers.trajopt import TrajoptOptions, trajopt
from gpcontrol.systems import CartPole, CartPoleParams

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [p, theta, dp, dtheta] (theta = 0 hanging), u = [F]; trajopt integrates the
# ODE with h = T / N for any final time T, so dt here only sets the animation step.
N = 40 if args.quick else 100
system = CartPole(CartPoleParams.kelly(), dt=0.04)

# ---------------------------------------------------------------- cost
# No running cost: with a free final time the objective is the final time T.

# ---------------------------------------------------------------- constraints
# Start hanging at rest, end upright at rest at p = 0; |F| <= 20 N, |p| <= 2 m.
x0 = np.zeros(4)
upright = np.array([0.0, math.pi, 0.0, 0.0])
options = TrajoptOptions(
    free_final_time=True, final_time=2.0, final_time_bounds=(0.1, 10.0), x_final=upright
)

# ---------------------------------------------------------------- solve
plans = {}
for method in ("multiple_shooting", "collocation"):
    r = trajopt(system, None, x0, N, method=method, options=options)
    at_bound = np.mean(np.abs(r.U[:, 0]) > system.u_high[0] - 1e-4)
    print(
        f"  {method:<18} {r.status:<7} T* = {r.final_time:.5f} s  {r.iterations:3d} iterations  "
        f"force at its bound {100 * at_bound:.0f} % of the time"
    )
    plans[method] = r
best = plans["collocation"]
for scale in (0.99, 1.01):
    fixed = TrajoptOptions(final_time=scale * best.final_time, x_final=upright)
    check = trajopt(system, None, x0, N, method="collocation", guess=best, options=fixed)
    print(f"  fixed T = {scale:.2f} T*: {check.status}")

# ---------------------------------------------------------------- plot
fig = plot_trajectory(
    system,
    (best.X, best.U),
    dt=best.t[1],
    label="collocation",
    title=f"minimum-time swing-up: T* = {best.final_time:.3f} s",
)
png = out / "11_min_time_cartpole.png"
fig.savefig(png, dpi=100)
viewer = CartPole(CartPoleParams.kelly(), dt=best.t[1])  # one frame per interval, real time
gif = animate(viewer, best.X, out / "11_min_time_cartpole.gif")
print(f"wrote {png} and {gif}")
