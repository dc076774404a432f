"""Speed of exact moment matching (gpcontrol.models.moment_match) against the loop reference.

One moment-matching step (M, S, C of an E-output SE-ARD GP at a Gaussian input), forward
and forward + backward (gradient of a scalar of all outputs with respect to the input mean
and covariance), for N training points, D = 6 inputs and E = 4 outputs. Reported:

* median wall time of the batched implementation and of the slow reference
  (``_reference_moment_match``: loops over outputs and training points) and their ratio;
* a 40-step PILCO horizon: belief propagation (trig features, sine-squashed linear policy,
  moment matching) through a cart-pole GP model fitted on 300 random transitions (D = 6
  features, E = 4 outputs), forward and with the gradient with respect to the policy, and
  the same horizon with the linearised and unscented approximations for comparison;
* PILCO's policy-search objective itself: ``gpcontrol.algorithms.pilco.expected_return``
  over 40 steps with the squashed RBF policy (10 bases) and the saturating pole-tip cost,
  with its gradient with respect to every policy parameter (one L-BFGS evaluation), for
  cart-pole GPs fitted on N = 20, 100 and 300 transitions (at small N the per-step
  overhead of the policy, feature and glue operations dominates, not the N x N work);
* the leading-order flop count of the forward pass,
  ``P N^2 (2 D + 6) + 2 E N^2`` with ``P = E (E + 1) / 2`` output pairs
  (cross term, exponent assembly, two weighted reductions, the trace), and the achieved
  rate as a fraction of this machine's float64 matmul peak measured on the spot (a
  nominal rate: above N ~ 220 only the upper blocks of the E symmetric diagonal pairs
  are formed, so fewer operations run).

Timing follows /work/shared/benchmarks/PROBLEMS.md (torch pinned to one thread, one warm-up,
median of repeats), measured as CPU time of the thread so that a busy shared machine does not
inflate it. Run:  python benchmarks/moment_matching.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from gpcontrol.algorithms.pilco import expected_return
from gpcontrol.costs import SaturatingCost
from gpcontrol.models import GPDynamics, linear_policy_moments, propagate_horizon, squashed
from gpcontrol.models.moments import GPTerms, _reference_moment_match, moment_match
from gpcontrol.policies.rbf import RBFPolicy
from gpcontrol.systems import CartPole

f64 = torch.float64


def problem(
    N: int, D: int = 6, E: int = 4, seed: int = 0
) -> tuple[GPTerms, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=f64)
    ell = 1.0 + torch.rand(E, D, generator=g, dtype=f64)
    sf2 = 0.5 + torch.rand(E, generator=g, dtype=f64)
    d = (X[None, :, None] - X[None, None]) / ell[:, None, None]
    K = sf2[:, None, None] * torch.exp(-0.5 * (d**2).sum(-1)) + 1e-2 * torch.eye(N, dtype=f64)
    L = torch.linalg.cholesky(K)
    y = torch.randn(E, N, 1, generator=g, dtype=f64)
    gp = GPTerms(
        X=X,
        beta=torch.cholesky_solve(y, L).squeeze(-1),
        W=torch.cholesky_inverse(L),
        lengthscales=ell,
        signal_var=sf2,
        noise_var=torch.full((E,), 1e-2, dtype=f64),
    )
    m = 0.3 * torch.randn(D, generator=g, dtype=f64)
    A = torch.randn(D, D, generator=g, dtype=f64)
    s = 0.2 * A @ A.T / D
    return gp, m, s


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU time of the calling thread (torch runs on it alone: one intra-op thread).

    CPU time rather than wall time, because the benchmark machine is shared: wall time
    counts the waits for a core, thread CPU time does not.
    """
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times)


def matmul_peak() -> float:
    """Float64 flop/s of a 1000 x 1000 matmul on one thread."""
    a = torch.randn(1000, 1000, dtype=f64)
    t = median_time(lambda: a @ a, 5)
    return 2e9 / t


def flops(N: int, D: int, E: int) -> float:
    P = E * (E + 1) // 2
    return float(P * N * N * (2 * D + 6) + 2 * E * N * N)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument(
        "--part",
        choices=("all", "step", "horizon", "pilco"),
        default="all",
        help="one moment-matching step, the propagated horizons, the PILCO objective rows",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part in ("all", "step"):
        step(args.quick)
    if args.part in ("all", "horizon"):
        horizon(T=20 if args.quick else 40, quick=args.quick)
    if args.part in ("all", "pilco"):
        pilco_objective(T=40, sizes=(20, 100, 300), quick=args.quick)


def step(quick: bool) -> None:
    """Time one moment-matching step against the loop reference, per N."""
    sizes = [100, 300] if quick else [100, 300, 1000]
    D, E = 6, 4
    peak = matmul_peak()
    print(f"torch {torch.__version__}, 1 thread, float64 matmul peak {peak / 1e9:.2f} Gflop/s")
    header = (
        f"{'N':>5} {'fwd ms':>8} {'fwd+bwd ms':>11} {'ref fwd ms':>11} {'ref f+b ms':>11} "
        f"{'ratio f':>8} {'ratio f+b':>9} {'Mflop':>7} {'% peak':>7}"
    )
    print(header)
    for N in sizes:
        gp, m0, s0 = problem(N, D, E)
        m = m0.clone().requires_grad_()
        s = s0.clone().requires_grad_()

        def forward(fn=moment_match, gp=gp, m=m, s=s) -> None:
            with torch.no_grad():
                fn(gp, m, s)

        def forward_backward(fn=moment_match, gp=gp, m=m, s=s) -> None:
            out = fn(gp, m, s)
            (out.M.sum() + out.S.sum() + out.C.sum()).backward()

        reps = 5 if quick else 20
        t_f = median_time(forward, reps)
        t_fb = median_time(forward_backward, reps)
        ref_reps = 1 if N >= 1000 else 3
        t_rf = median_time(lambda: forward(_reference_moment_match), ref_reps)
        t_rfb = median_time(lambda: forward_backward(_reference_moment_match), ref_reps)
        fl = flops(N, D, E)
        print(
            f"{N:>5} {t_f * 1e3:>8.2f} {t_fb * 1e3:>11.2f} {t_rf * 1e3:>11.1f} "
            f"{t_rfb * 1e3:>11.1f} {t_rf / t_f:>8.0f} {t_rfb / t_fb:>9.0f} {fl / 1e6:>7.1f} "
            f"{100 * fl / t_f / peak:>6.1f}%"
        )


def cartpole_model(N: int, quick: bool = False) -> tuple[GPDynamics, float]:
    """A cart-pole GP fitted on ``N`` random transitions; returns it and the fit time."""
    system = CartPole()
    rng = np.random.default_rng(0)
    X = rng.uniform([-1.0, -np.pi, -2.0, -6.0], [1.0, np.pi, 2.0, 6.0], size=(N, 4))
    U = rng.uniform(system.u_low, system.u_high, size=(N, 1))
    dX = system.step(X, U) - X + 0.01 * rng.standard_normal((N, 4))
    model = GPDynamics.for_system(system)
    report = model.fit(np.hstack([X, U]), dX, restarts=1, seed=0, max_iter=20 if quick else 60)
    return model, report.seconds


def pilco_objective(
    T: int = 40, sizes: tuple[int, ...] = (20, 100, 300), quick: bool = False
) -> None:
    """Time PILCO's objective ``J`` over ``T`` steps with its policy gradient, per model size."""
    system = CartPole()
    mu0 = torch.zeros(4, dtype=f64)
    S0 = 0.01 * torch.eye(4, dtype=f64)
    policy = RBFPolicy(4, 1, system.u_high, basis=10, angle_indices=(1,), seed=0)
    cost = SaturatingCost.pole_tip(system)
    print(f"{T}-step PILCO objective J (RBF policy, 10 bases) and its gradient, cart-pole GP:")
    print(f"{'N':>5} {'J ms':>8} {'J+grad ms':>10} {'per step ms':>12}")
    for N in sizes:
        model, _ = cartpole_model(N, quick)

        def value(model: GPDynamics = model) -> None:
            with torch.no_grad():
                expected_return(model, policy, cost, mu0, S0, T)

        def value_and_gradient(model: GPDynamics = model) -> None:
            policy.zero_grad()
            expected_return(model, policy, cost, mu0, S0, T).backward()

        reps = 3 if quick else 7
        t_f = median_time(value, reps)
        t_fb = median_time(value_and_gradient, reps)
        print(f"{N:>5} {t_f * 1e3:>8.0f} {t_fb * 1e3:>10.0f} {t_fb / T * 1e3:>12.2f}")


def horizon(T: int = 40, N: int = 300, quick: bool = False) -> None:
    """Time a T-step moment-matching rollout through a fitted cart-pole GP, with its gradient."""
    system = CartPole()
    model, fit_seconds = cartpole_model(N, quick)
    K = (
        0.1 * torch.randn(1, 4, generator=torch.Generator().manual_seed(1), dtype=f64)
    ).requires_grad_()
    k = torch.zeros(1, dtype=f64, requires_grad=True)
    mu0 = torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=f64)
    S0 = 0.01 * torch.eye(4, dtype=f64)

    def forward() -> None:
        with torch.no_grad():
            policy = squashed(linear_policy_moments(K, k), float(system.u_high[0]))
            propagate_horizon(model, mu0, S0, policy, T)

    def forward_backward(method: str = "moment_matching") -> None:
        policy = squashed(linear_policy_moments(K, k), float(system.u_high[0]))
        belief = propagate_horizon(model, mu0, S0, policy, T, method=method)
        torch.diagonal(belief.cov, dim1=-2, dim2=-1).sum().backward()

    reps = 2 if quick else 5
    t_f = median_time(forward, reps)
    t_fb = median_time(forward_backward, reps)
    print(
        f"{T}-step horizon, cart-pole GP (N = {N}, fit {fit_seconds:.1f} s): "
        f"forward {t_f * 1e3:.0f} ms, forward + gradient {t_fb * 1e3:.0f} ms "
        f"({t_fb / T * 1e3:.1f} ms per step)"
    )
    policy_rbf = RBFPolicy(4, 1, system.u_high, basis=10, angle_indices=(1,), seed=0)
    cost = SaturatingCost.pole_tip(system)

    def pilco_objective() -> None:
        policy_rbf.zero_grad()
        expected_return(model, policy_rbf, cost, mu0, S0, T).backward()

    t_j = median_time(pilco_objective, reps)
    print(
        f"{T}-step PILCO objective (expected_return, RBF policy with 10 bases, saturating "
        f"cost) + gradient w.r.t. the policy: {t_j * 1e3:.0f} ms ({t_j / T * 1e3:.1f} ms per step)"
    )
    for method in ("linearized", "unscented"):
        t_m = median_time(functools.partial(forward_backward, method), reps)
        print(
            f"{T}-step horizon, {method} propagation (gpcontrol.models.approximate): "
            f"forward + gradient {t_m * 1e3:.0f} ms (moment matching / this: {t_fb / t_m:.1f})"
        )


if __name__ == "__main__":
    main()
