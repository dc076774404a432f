"""Minimum-time mountain car by trajectory optimisation with a free final time.

Two variants of the same valley: Gymnasium's MountainCarContinuous-v0
constants (time in env steps, |v| <= 0.07, track [-1.2, 0.6]) and gpcontrol's
PILCO-style continuous-time car (seconds, RK4, no speed clip or wall). From
rest at p = -0.5, reach p >= 0.45 as fast as possible with |a| <= 1: the
optimum is bang-bang (back up, then full throttle). The Gymnasium plan is
replayed in the real environment; writes a figure of both plans.

    python examples/10_min_time_mountain_car.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from gpcontrol.plotting import animate, new_figure, plot_trajectory
from gpcontrol.solvers.trajopt import Constraint, TrajoptOptions, trajopt
from gpcontrol.systems import MountainCar, MountainCarParams

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [p, v], u = [a]: dv/dt = P a - g cos(3 p). Trajopt integrates the ODE with
# h = T / N (RK4 or collocation) for any final time T.
N = 50 if args.quick else 150
variants = {
    "Gymnasium (steps)": MountainCar.gymnasium(),
    "continuous (s)": MountainCar.continuous(),
}

# ---------------------------------------------------------------- cost
# No running cost: with a free final time the objective is time_weight * T = T.

# ---------------------------------------------------------------- constraints
# Terminal p_N >= 0.45; bounds |a| <= 1 and the variant's state bounds.
x0 = np.array([-0.5, 0.0])
goal = Constraint.terminal(lambda x: x[0], lower=0.45, upper=np.inf)

# ---------------------------------------------------------------- solve
plans = {}
for name, system in variants.items():
    T_guess = 100.0 * system.dt if system.dt == 1.0 else 10.0
    options = TrajoptOptions(
        free_final_time=True,
        final_time=T_guess,
        final_time_bounds=(0.01 * T_guess, 10.0 * T_guess),
        constraints=(goal,),
    )
    for method in ("multiple_shooting", "collocation"):
        r = trajopt(system, None, x0, N, method=method, options=options)
        switch = r.t[1:-1][np.diff(np.sign(r.U[:, 0])) != 0]
        print(
            f"  {name:<18} {method:<18} {r.status:<7} T = {r.final_time:9.4f}  "
            f"switch at {np.round(switch, 3)}  {r.iterations:3d} iterations"
        )
        plans[name, method] = r

# The Gymnasium plan in the real env: hold u(t) for each one-step interval.
env = gym.make("MountainCarContinuous-v0")
env.reset(seed=0)
env.unwrapped.state = x0.copy()  # type: ignore[attr-defined]
plan = plans["Gymnasium (steps)", "collocation"]
for k in range(int(np.ceil(plan.final_time)) + 5):
    u = plan.control(min(k + 0.5, plan.final_time))
    _, _, terminated, _, _ = env.step(u.astype(np.float32))
    if terminated:
        break
print(f"  Gymnasium env reaches the goal after {k + 1} steps (plan: T = {plan.final_time:.2f})")

# ---------------------------------------------------------------- plot
fig = new_figure(9.0, 6.5)
axes = fig.subplots(3, 2)
for col, (name, system) in enumerate(variants.items()):
    r = plans[name, "collocation"]
    plot_trajectory(system, (r.X, r.U), dt=r.t[1], ax=axes[:, col], label=name)
    axes[0, col].axhline(0.45, color="k", lw=0.6, ls=":")
    axes[0, col].set_title(f"{name}: minimum time {r.final_time:.3f}", fontsize=9)
    for ax in axes[:, col]:
        ax.set_xlabel("time [steps]" if system.dt == 1.0 else "time [s]")
fig.savefig(out / "10_min_time_mountain_car.png", dpi=100)
cont = plans["continuous (s)", "collocation"]
viewer = MountainCar(MountainCarParams.continuous(), dt=cont.t[1])  # frame time = interval
gif = animate(viewer, cont.X, out / "10_min_time_mountain_car.gif")  # real time
print(f"wrote {out / '10_min_time_mountain_car.png'} and {gif}")
