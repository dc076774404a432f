"""Learn a GP model of the pendulum and propagate a Gaussian belief through it.

Fits one SE-ARD GP per state dimension to 200 random transitions of PILCO's
pendulum (targets x' - x, the angle entering as sin/cos), compares its held-out
one-step log-likelihood with a least-squares linear-Gaussian model, then
propagates a Gaussian initial state through the GP under a squashed linear
policy by exact moment matching (PILCO), compares it with GP particles, and draws
the predicted mean +- 2 sigma against 20 rollouts of the real pendulum from the
same initial distribution.

    python examples/03_gp_model.py [--quick] [--out runs/examples]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gpcontrol.models import (
    GPDynamics,
    linear_policy_moments,
    propagate_horizon,
    propagate_particles,
    squashed,
)
from gpcontrol.plotting import plot_trajectory
from gpcontrol.systems import Pendulum

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short run for CI")
parser.add_argument("--out", default="runs/examples", help="output directory")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# ---------------------------------------------------------------- data
# x = [theta, dtheta] (theta = 0 hanging), u = [tau], |tau| <= 2.5 N m, dt = 0.05 s.
system = Pendulum()
noise = 0.01  # std of the state measurement noise on x'


def transitions(size: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform([-np.pi, -6.0], [np.pi, 6.0], size=(size, 2))
    U = rng.uniform(system.u_low, system.u_high, size=(size, 1))
    X_next = system.step(X, U) + noise * rng.standard_normal(X.shape)
    return np.hstack([X, U]), X_next - X


XU, dX = transitions(200)
XU_test, dX_test = transitions(500)

# ---------------------------------------------------------------- model
model = GPDynamics.for_system(system)
report = model.fit(
    XU, dX, restarts=1 if args.quick else 3, seed=0, max_iter=50 if args.quick else 150
)
print(f"fit: loss {report.loss:.3f}, {report.iterations} iterations, {report.seconds:.1f} s")
print(f"     signal-to-noise {np.round(report.snr, 1)}, jitter {report.jitter:g}")

with torch.no_grad():
    mean, var = model.predict(torch.as_tensor(XU_test), include_noise=True)
resid = dX_test - mean.numpy()
ll_gp = np.mean(np.sum(-0.5 * np.log(2 * np.pi * var.numpy()) - 0.5 * resid**2 / var.numpy(), 1))

F = model.features(torch.as_tensor(XU)).numpy()
F_test = model.features(torch.as_tensor(XU_test)).numpy()
F, F_test = np.hstack([F, np.ones((len(F), 1))]), np.hstack([F_test, np.ones((len(F_test), 1))])
A = np.linalg.lstsq(F, dX, rcond=None)[0]
Sigma = np.cov((dX - F @ A).T, bias=True)
r = np.linalg.solve(np.linalg.cholesky(Sigma), (dX_test - F_test @ A).T)
ll_lin = np.mean(-0.5 * (r**2).sum(0)) - 0.5 * np.linalg.slogdet(2 * np.pi * Sigma)[1]
print(f"held-out one-step log-likelihood per transition: GP {ll_gp:.2f}, linear {ll_lin:.2f}")

# ---------------------------------------------------------------- belief propagation
# u = u_max sin(K x + k): a damping policy, squashed to the torque bound.
T = 20 if args.quick else 40
u_max = float(system.u_high[0])
K = torch.tensor([[-1.0, -0.6]], dtype=torch.float64, requires_grad=True)
k = torch.tensor([0.0], dtype=torch.float64)
policy = squashed(linear_policy_moments(K, k), u_max)
mu0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
S0 = torch.diag(torch.tensor([0.1, 0.1], dtype=torch.float64) ** 2)

t0 = time.perf_counter()
belief = propagate_horizon(model, mu0, S0, policy, T)
t1 = time.perf_counter()
# what PILCO's policy search needs: d(sum of predicted angle variances)/dK, by autograd
(dJ_dK,) = torch.autograd.grad(torch.diagonal(belief.cov, dim1=-2, dim2=-1)[:, 0].sum(), K)
t2 = time.perf_counter()
std = torch.sqrt(torch.diagonal(belief.cov, dim1=-2, dim2=-1)).detach()
mean_T = belief.mean.detach()
print(
    f"moment matching over {T} steps: forward {1e3 * (t1 - t0):.0f} ms, "
    f"gradient {1e3 * (t2 - t1):.0f} ms, dJ/dK = {dJ_dK.numpy().round(4)}"
)


def act(x: np.ndarray) -> np.ndarray:
    return u_max * np.sin(x @ K.detach().numpy().T + k.numpy())


with torch.no_grad():
    particles = propagate_particles(
        model, mu0, S0, lambda x: torch.as_tensor(act(x.numpy())), T, particles=2000, seed=1
    )
print(
    f"after {T} steps: moment matching mean {mean_T[-1].numpy().round(3)}, "
    f"std {std[-1].numpy().round(3)}; GP particles mean {particles[-1].mean(0).numpy().round(3)}, "
    f"std {particles[-1].std(0).numpy().round(3)}"
)

# ---------------------------------------------------------------- real rollouts and figure
rollouts = []
for x0 in rng.multivariate_normal(mu0.numpy(), S0.numpy(), size=20):
    states, controls = [x0], []
    for _ in range(T):
        controls.append(act(states[-1]))
        states.append(system.step(states[-1], controls[-1]))
    rollouts.append((np.array(states), np.array(controls)))
fig = plot_trajectory(system, rollouts[0], color="0.6", label="real rollouts")
for X_real, U_real in rollouts[1:]:
    plot_trajectory(system, (X_real, U_real), ax=fig.axes, color="0.6")
plot_trajectory(system, None, mean=mean_T.numpy(), std=std.numpy(), ax=fig.axes, color="C1")
inside = np.mean([np.abs(X_real - mean_T.numpy()) <= 2.0 * std.numpy() for X_real, _ in rollouts])
fig.suptitle("GP belief, mean +- 2 sd, vs 20 real rollouts")
print(f"fraction of real states inside the +-2 sigma band: {inside:.2f}")
# Moment matching keeps one Gaussian: it tracks the particles closely while the belief is
# unimodal and under-covers once the rollouts split over the top (after about 1 s here).
path = out / "03_gp_model.png"
fig.savefig(path)
print(f"wrote {path}")
