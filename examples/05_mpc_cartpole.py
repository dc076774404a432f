"""Balance a cart-pole with iLQR model predictive control and a wrong model.

The plant's pole weighs 0.5 kg, the controller's model says 0.6 kg (+20 %), and
process noise kicks the velocities every step. MPC re-plans a 0.75 s horizon
with iLQR at every step and applies only the first force; the same solver run
once over the whole episode and applied open loop lets the pole fall.

    python examples/05_mpc_cartpole.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
from gpcontrol.envs import make_env
from gpcontrol.plotting import new_figure
from gpcontrol.rollout import rollout
from gpcontrol.solvers import ILQROptions, dlqr, ilqr
from gpcontrol.solvers.mpc import MPC
from gpcontrol.systems import CartPole, CartPoleParams

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- plant and model
# x = [p, theta, dp, dtheta], theta = pi upright; u = [F], |F| <= 10 N; dt = 0.05 s.
dt, steps = 0.05, 80
episodes = 4 if args.quick else 20
plant = CartPole(dt=dt)
model = CartPole(CartPoleParams(pole_mass=0.6), dt=dt)  # the controller's belief
upright = np.array([0.0, np.pi, 0.0, 0.0])

# ---------------------------------------------------------------- cost
# A quadratic cost around upright; the terminal weight is the model's
# infinite-horizon LQR cost-to-go, so a short horizon still "sees" the future.
Q = dt * np.diag([1.0, 10.0, 0.1, 0.1])
R = dt * 0.01 * np.eye(1)
A, B = model.linearize(upright, [0.0])
cost = QuadraticCost(Q, R, x_target=upright, Qf=dlqr(A, B, Q, R).P)

env = make_env(
    plant,
    cost,
    x0_mean=upright - [0.0, 0.2, 0.0, 0.0],  # 11 degrees off upright
    x0_std=[0.05, 0.05, 0.1, 0.1],
    process_noise_std=[0.0, 0.0, 0.1, 0.1],
)

# ---------------------------------------------------------------- controllers
mpc = MPC(model, cost, horizon=15, options=ILQROptions(max_iterations=10))


def open_loop_plan(seed: int):
    """iLQR over the whole episode on the model, from the episode's first observation."""
    obs, _ = env.reset(seed=seed)
    plan = ilqr(model, cost, obs, np.zeros((steps, 1)), u_low=model.u_low, u_high=model.u_high)
    return lambda x, t: plan.U[t]


def upright_at_the_end(X: np.ndarray) -> bool:
    second_half = X[X.shape[0] // 2 :]
    return bool((np.abs(second_half[:, 1] - np.pi) < np.deg2rad(20)).all())


# ---------------------------------------------------------------- simulate
runs: dict[str, list] = {"MPC (iLQR, re-planned)": [], "one iLQR plan, open loop": []}
solve_ms: list[float] = []
for seed in range(episodes):
    runs["MPC (iLQR, re-planned)"].append(rollout(env, mpc, steps=steps, seed=seed))
    solve_ms += [1e3 * s for s in mpc.solve_seconds]
    runs["one iLQR plan, open loop"].append(
        rollout(env, open_loop_plan(seed), steps=steps, seed=seed)
    )

for name, trajs in runs.items():
    ok = sum(upright_at_the_end(tr.true_states) for tr in trajs)
    mean_cost = np.mean([tr.total_cost for tr in trajs])
    print(f"{name:26s}: upright in {ok}/{episodes} episodes, mean cost {mean_cost:9.3f}")
print(
    f"MPC solve time per step: median {np.median(solve_ms):.2f} ms, max {np.max(solve_ms):.2f} ms"
)

# ---------------------------------------------------------------- plot
fig = new_figure(9.0, 7.0)
ax_th, ax_p, ax_u, ax_t = fig.subplots(2, 2).ravel()
colors = {"MPC (iLQR, re-planned)": "tab:blue", "one iLQR plan, open loop": "tab:red"}
for name, trajs in runs.items():
    for i, tr in enumerate(trajs):
        label = name if i == 0 else None
        X = tr.true_states
        ax_th.plot(tr.times, np.rad2deg(X[:, 1] - np.pi), color=colors[name], lw=0.8, label=label)
        ax_p.plot(tr.times, X[:, 0], color=colors[name], lw=0.8, label=label)
        if name.startswith("MPC"):  # the open-loop forces only clutter the panel
            ax_u.step(tr.times[:-1], tr.controls[:, 0], where="post", color=colors[name], lw=0.8)
ax_th.set(ylim=(-90, 90), ylabel="pole angle from upright (deg)", xlabel="time (s)")
ax_th.axhspan(-20, 20, color="0.9", zorder=0)
ax_p.set(ylabel="cart position (m)", xlabel="time (s)")
for bound in (model.u_low[0], model.u_high[0]):
    ax_u.axhline(bound, color="k", ls="--", lw=0.8)
ax_u.set(ylabel="MPC force (N)", xlabel="time (s)")
ax_t.hist(solve_ms, bins=30, color="tab:blue")
ax_t.set(xlabel="iLQR solve per MPC step (ms)", ylabel="count")
ax_th.legend(loc="lower left", fontsize=8)
fig.suptitle("cart-pole balance: model pole +20 % heavier, process noise")
fig.savefig(out / "05_mpc_cartpole.png", dpi=100)
print(f"wrote {out / '05_mpc_cartpole.png'}")
