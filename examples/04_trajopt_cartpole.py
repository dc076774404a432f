"""Cart-pole swing-up by trajectory optimisation (CasADi + IPOPT), Kelly's benchmark.

Moves the cart 1 m and swings the pole upright in exactly 2 s with the least
effort int F^2 dt, |F| <= 20 N and |p| <= 2 m (Kelly, SIAM Review 2017, Sec. 6),
by direct collocation and by multiple shooting; prints how the two converge to
the same optimum as the grid is refined, and writes a figure of the states and
controls, the collocation result (.npz) and an animation.

    python examples/04_trajopt_cartpole.py [--quick] [--out runs/examples]
"""

import argparse
import math
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
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
# x = [p, theta, dp, dtheta] (theta = 0 hanging, pi upright), u = [F].
# Kelly's parameters: 1 kg cart, 0.3 kg point mass on a 0.5 m massless pole,
# |F| <= 20 N and |p| <= 2 m (the system's u_low/u_high and x_low/x_high).
T_final = 2.0
N = 25 if args.quick else 50


def model(N: int) -> CartPole:
    return CartPole(CartPoleParams.kelly(), dt=T_final / N)


# ---------------------------------------------------------------- cost
# l(x, u) = 1/2 u'Ru with R = 2 dt, i.e. l = dt F^2: multiple shooting sums it
# over the knots, collocation averages it over each interval, and both
# approximate the effort int_0^T F^2 dt in N^2 s.
def effort(N: int) -> QuadraticCost:
    return QuadraticCost(np.zeros((4, 4)), [[2.0 * T_final / N]])


# ---------------------------------------------------------------- constraints
# Start at rest, hanging; end exactly at rest, upright, 1 m to the right.
x0 = np.zeros(4)
options = TrajoptOptions(x_final=[1.0, math.pi, 0.0, 0.0])

# ---------------------------------------------------------------- solve
system = model(N)
col = trajopt(system, effort(N), x0, N, method="collocation", options=options)
ms = trajopt(system, effort(N), x0, N, method="multiple_shooting", options=options)
replay = np.abs(system.simulate(x0, ms.U) - ms.X).max()
print(f"N = {N}, T = {T_final} s")
for name, r in (("collocation", col), ("multiple shooting", ms)):
    print(
        f"  {name:<18} {r.status:<7} effort {r.cost:8.4f} N^2 s  {r.iterations:3d} iterations  "
        f"{r.solve_time * 1e3:6.1f} ms  interpolation error {r.interpolation_error:.1e}"
    )
print(f"  multiple shooting replayed with system.step: max state error {replay:.1e}")

if not args.quick:
    print("refining the grid (the gap between the methods shrinks with N):")
    for n_grid in (25, 50, 100, 200):
        sys_n = model(n_grid)
        costs = [
            trajopt(sys_n, effort(n_grid), x0, n_grid, method=method, options=options).cost
            for method in ("collocation", "multiple_shooting")
        ]
        print(
            f"  N = {n_grid:3d}: collocation {costs[0]:.5f}  multiple shooting {costs[1]:.5f}  "
            f"gap {abs(costs[0] - costs[1]):.1e}"
        )

saved = col.save(out / "04_trajopt_cartpole.npz")

# ---------------------------------------------------------------- plot
fig = plot_trajectory(
    system,
    (ms.X, ms.U),
    label="multiple shooting (knots)",
    title=f"cart-pole swing-up, minimum effort {col.cost:.2f} N^2 s",
)
t_fine = np.linspace(0.0, T_final, 20 * N + 1)
X_fine = col.interpolate(t_fine)
for i, ax in enumerate(fig.axes[: system.n]):
    ax.plot(t_fine, X_fine[:, i], "--", lw=1.0, color="C3", label="collocation interpolant")
fig.axes[0].legend(loc="best", fontsize=7)
fig.savefig(out / "04_trajopt_cartpole.png", dpi=100)
gif = animate(  # the knots, in real time (the frame label is k * system.dt)
    system, col.X, out / "04_trajopt_cartpole.gif", target=(1.0, system.params.pole_length)
)
print(f"wrote {out / '04_trajopt_cartpole.png'}, {gif} and {saved}")
