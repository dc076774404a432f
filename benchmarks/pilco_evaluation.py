"""Cost of one PILCO policy evaluation: moment matching against particles.

One evaluation of ``gpcontrol.algorithms.pilco.expected_return`` and its gradient with
respect to every policy parameter (what L-BFGS asks for at each step of the policy search)
on the pendulum swing-up: H = 40 steps, the 20-basis RBF policy of ``gpcontrol pilco``,
the saturating tip cost, a GP fitted on ``N`` transitions of random rollouts (past 300
points the GP is sparse with 300 inducing inputs). Reported per ``N``: CPU seconds of
moment matching and of ``propagation="particles"`` with ``P`` particles, and the two
values of J.

Timing follows /work/shared/benchmarks/PROBLEMS.md (torch pinned to one thread, one
warm-up, median of repeats, CPU time of the thread). Run:

    OMP_NUM_THREADS=1 python benchmarks/pilco_evaluation.py [--quick]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from moment_matching import median_time  # this folder: median thread CPU time after a warm-up

import gpcontrol  # noqa: F401  (registers the environments)
from gpcontrol.algorithms.pilco import _policy_lengthscales, expected_return
from gpcontrol.envs.adapter import learning_task
from gpcontrol.models.gp import GPDynamics
from gpcontrol.policies.rbf import RBFPolicy
from gpcontrol.rollout import random_policy, rollout

H = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", default="1,5,10", help="random rollouts of 40 steps")
    parser.add_argument("--particles", default="100,400,1000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rollouts = [int(r) for r in args.rollouts.split(",")]
    counts = [int(p) for p in args.particles.split(",")]
    if args.quick:
        rollouts, counts, args.repeats = [1], [100], 1
    env, task = learning_task(gym.make("gpcontrol/PendulumSwingUp-v0"))
    cost = env.unwrapped.cost  # type: ignore[attr-defined]
    mean0 = torch.as_tensor(np.array(task.x0_mean, dtype=np.float64))
    cov0 = torch.as_tensor(np.array(task.x0_cov, dtype=np.float64))
    policy = RBFPolicy(
        2,
        1,
        np.array(task.u_high, dtype=np.float64),
        basis=20,
        angle_indices=(0,),
        init_mean=mean0.numpy(),
        init_std=np.array(task.x0_std, dtype=np.float64),
        init_lengthscales=_policy_lengthscales(2, (0,)),
        seed=3,
    )
    print(f"{'N':>4}  {'method':>16}  {'P':>5}  {'J':>7}  {'CPU s/eval':>10}")
    for r in rollouts:
        trajs = [
            rollout(env, random_policy(task.u_low, task.u_high, seed=j), seed=j, steps=H)
            for j in range(r)
        ]
        X = np.concatenate([np.hstack([t.states[:-1], t.controls]) for t in trajs])
        Y = np.concatenate([np.diff(t.states, axis=0) for t in trajs])
        gp = GPDynamics.for_system(task)
        gp.fit(X, Y, restarts=1, max_iter=30)
        for method, P in [("moment_matching", 0)] + [("particles", p) for p in counts]:
            extra = {"particles": P} if P else {}

            def evaluate(gp: GPDynamics = gp, method: str = method, extra: dict = extra) -> float:  # type: ignore[type-arg]
                policy.zero_grad()
                J = expected_return(gp, policy, cost, mean0, cov0, H, method=method, **extra)
                J.backward()
                return float(J.detach())

            s = median_time(evaluate, args.repeats)
            shown = str(P) if P else "-"
            print(f"{X.shape[0]:4d}  {method:>16}  {shown:>5}  {evaluate():7.3f}  {s:10.3f}")


if __name__ == "__main__":
    main()
