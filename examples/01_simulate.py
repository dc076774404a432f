"""Simulate the cart-pole swing-up task with an energy-pumping policy.

Builds PILCO's cart-pole environment, swings the pole up by pumping energy into
it (no learning yet: this is the baseline every later example improves on),
and writes a state/control figure and an animation.

    python examples/01_simulate.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import gpcontrol.envs  # noqa: F401 - registers gpcontrol/CartPoleSwingUp-v0
from gpcontrol.plotting import animate, plot_trajectory
from gpcontrol.rollout import rollout

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [p, theta, dp, dtheta], theta = 0 hanging; u = [F], |F| <= 10 N; dt = 0.1 s.
steps = 20 if args.quick else 60
env = gym.make("gpcontrol/CartPoleSwingUp-v0", max_episode_steps=steps)
system = env.unwrapped.system
prm = system.params
m, lc, g = prm.pole_mass, prm.lc, prm.gravity
J = m * lc**2 + prm.inertia  # pole inertia about the hinge
E_up = m * g * lc  # pole energy when upright and at rest


# ---------------------------------------------------------------- policy
# The pole's energy E = J dtheta^2 / 2 - m g lc cos(theta) changes at the rate
# dE/dt = -m lc cos(theta) dtheta * (cart acceleration), so accelerating the cart
# against dtheta cos(theta) pumps energy in until E reaches E_up; a weak spring
# keeps the cart near the middle of the track.
def energy_pumping(x: np.ndarray, t: int) -> np.ndarray:
    p, theta, dp, dtheta = x
    E = 0.5 * J * dtheta**2 - m * g * lc * np.cos(theta)
    return np.array([20.0 * (E_up - E) * (-dtheta * np.cos(theta)) - 1.0 * p - 0.5 * dp])


# ---------------------------------------------------------------- simulate
traj = rollout(env, energy_pumping, seed=0)
height = -np.cos(traj.states[:, 1]) * prm.pole_length  # tip height above the hinge
print(f"{traj.T} steps of {traj.dt} s, total saturating cost {traj.total_cost:.2f}")
print(f"highest pole tip: {height.max():+.3f} m (upright: {prm.pole_length:+.3f} m)")

# ---------------------------------------------------------------- plot and animate
fig = plot_trajectory(system, traj, title="cart-pole, energy pumping")
fig.savefig(out / "01_simulate.png", dpi=100)
gif = animate(system, traj.states, out / "01_simulate.gif", target=(0.0, prm.pole_length))
print(f"wrote {out / '01_simulate.png'} and {gif}")
