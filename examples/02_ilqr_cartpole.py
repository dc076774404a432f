"""Cart-pole swing-up with control-limited iLQR and DDP, then feedback under noise.

Swings PILCO's cart-pole (dt = 0.05 s, 100 steps, |F| <= 10 N) from hanging to
upright with iLQR (Gauss-Newton) and DDP (full second order), prints how fast
each converges, and replays the optimum open loop and with the solver's
time-varying feedback u = K x + k from perturbed starts under process noise.
Writes a figure of the trajectory, the convergence and the closed-loop runs.

    python examples/02_ilqr_cartpole.py [--quick] [--out runs/examples]
"""

import argparse
from pathlib import Path

import numpy as np

from gpcontrol.costs import QuadraticCost
from gpcontrol.plotting import animate, new_figure, plot_trajectory
from gpcontrol.solvers import ILQROptions, ddp, ilqr
from gpcontrol.systems import CartPole

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- model
# x = [p, theta, dp, dtheta] (theta = 0 hanging, pi upright), u = [F] in N.
system = CartPole(dt=0.05)  # PILCO's parameters, RK4
T = 100  # 5 s
x0 = np.zeros(4)
goal = np.array([0.0, np.pi, 0.0, 0.0])

# ---------------------------------------------------------------- cost
# l = dt/2 (0.1 dp^2 + 0.1 dtheta^2 + F^2),
# l_T = 1/2 (x - goal)' diag(1e3, 1e3, 1e2, 1e2) (x - goal)
cost = QuadraticCost(
    system.dt * np.diag([0.0, 0.0, 0.1, 0.1]),
    system.dt * np.eye(1),
    x_target=goal,
    Qf=np.diag([1e3, 1e3, 1e2, 1e2]),
)

# ---------------------------------------------------------------- solve
limits = {"u_low": system.u_low, "u_high": system.u_high}
options = ILQROptions(max_iterations=60 if args.quick else 1000)
results = {}
for name, solver in (("iLQR", ilqr), ("DDP", ddp)):
    solver(system, cost, x0, np.zeros((T, 1)), **limits, options=options)  # compile once
    results[name] = res = solver(system, cost, x0, np.zeros((T, 1)), **limits, options=options)
    ms = res.timings["total"] * 1e3
    print(
        f"{name:<5} {res.status:<14} J = {res.cost:.8f}  {res.iterations:4d} iterations  "
        f"{ms:7.1f} ms ({ms / max(res.iterations, 1):.3f} ms/it, backend {res.backend})"
    )
best = min(results.values(), key=lambda r: r.cost)
end = best.X[-1]
print(f"final state {np.round(end, 4)}  (|theta - pi| = {abs(end[1] - np.pi):.1e})")

# ---------------------------------------------------------------- feedback under noise
# The affine law u_t = K_t x_t + k_t reproduces U on X and corrects deviations.
rng = np.random.default_rng(0)
n_runs = 5 if args.quick else 20
noise = 0.01  # std of additive state noise per step
runs: dict[str, list[np.ndarray]] = {"open loop": [], "feedback": []}
for _ in range(n_runs):
    start = x0 + rng.normal(0.0, [0.05, 0.05, 0.05, 0.05])
    w = rng.normal(0.0, noise, (T, 4))
    for mode in runs:
        x = start.copy()
        path = [x]
        for t in range(T):
            u = best.U[t] if mode == "open loop" else best.K[t] @ x + best.k[t]
            x = system.step(x, np.clip(u, system.u_low, system.u_high)) + w[t]
            path.append(x)
        runs[mode].append(np.array(path))
for mode, paths in runs.items():
    err = np.array([abs(P[-1, 1] - np.pi) for P in paths])
    print(f"{mode:<9}: final |theta - pi| median {np.median(err):.3f}, max {err.max():.3f} rad")

# ---------------------------------------------------------------- plot
fig = plot_trajectory(system, (best.X, best.U), label="optimum", title="cart-pole swing-up")
fig.savefig(out / "02_ilqr_cartpole_trajectory.png", dpi=100)
fig2 = new_figure(width=10.0, height=3.5)
axes = fig2.subplots(1, 2)
for name, res in results.items():
    gap = np.array(res.cost_history) - best.cost + 1e-12
    axes[0].semilogy(gap, label=name)
axes[0].set(xlabel="iteration", ylabel="J - J*", title="convergence")
axes[0].legend()
t_axis = np.arange(T + 1) * system.dt
for mode, color in (("open loop", "C1"), ("feedback", "C0")):
    for i, P in enumerate(runs[mode]):
        axes[1].plot(t_axis, P[:, 1], color=color, lw=0.8, label=mode if i == 0 else None)
axes[1].axhline(np.pi, color="k", lw=0.5)
axes[1].set(xlabel="t [s]", ylabel="theta [rad]", title=f"replay with noise std {noise}")
axes[1].legend()
fig2.savefig(out / "02_ilqr_cartpole_convergence.png", dpi=100)
written = [out / "02_ilqr_cartpole_trajectory.png", out / "02_ilqr_cartpole_convergence.png"]
if not args.quick:
    written.append(animate(system, best.X, out / "02_ilqr_cartpole.gif", fps=1 / system.dt))
print("wrote " + ", ".join(str(p) for p in written))
