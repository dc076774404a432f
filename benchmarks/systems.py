"""Throughput of the known-physics systems: batched ``step``/``linearize`` vs a Python loop.

For every built-in system this times

* ``System.step(X, U)`` and ``System.linearize(X, U)`` on a batch of ``N``
  states (one mapped CasADi call), and
* the plain loop a user would write otherwise: one call of the CasADi function
  ``system.casadi_function`` (or of the Jacobian function built from it) per
  point, converting each result to NumPy,

for ``N = 100`` (a trajectory, ``T = 100``) and ``N = 1000`` (a batch), and
prints states per second and the speed-up of the batched call (median of
interleaved samples of at least 20 ms each, after a warm-up; BLAS/OpenMP
threads pinned to 1).

Run::

    python benchmarks/systems.py           # full: 15 samples per timing
    python benchmarks/systems.py --quick   # 3 samples per timing
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402

from gpcontrol.systems import (  # noqa: E402
    CartPole,
    CartPoleParams,
    ChainParams,
    DoublePendulum,
    MountainCar,
    Pendulum,
    PendulumParams,
    PlanarArm,
    System,
)

SIZES = (100, 1000)


def systems() -> dict[str, System]:
    """Every built-in system (defaults and documented variants) and a three-link arm."""
    arm3 = ChainParams(
        masses=(1.0, 0.8, 0.5),
        lengths=(0.4, 0.35, 0.3),
        com_distances=(0.2, 0.15, 0.12),
        inertias=(0.06, 0.04, 0.02),
        friction=((0.05, 0.01, 0.0), (0.01, 0.05, 0.01), (0.0, 0.01, 0.05)),
        gravity=9.81,
        base_angle=-math.pi / 2,
        actuated=(True, True, True),
        max_torque=(5.0, 5.0, 5.0),
    )
    return {
        "cartpole (pilco)": CartPole(),
        "cartpole (kelly)": CartPole(CartPoleParams.kelly(), dt=0.02),
        "pendulum (pilco)": Pendulum(),
        "pendulum (gymnasium)": Pendulum.gymnasium(),
        "pendulum (benchmark)": Pendulum(PendulumParams.benchmark()),
        "mountaincar": MountainCar(),
        "arm (li-todorov)": PlanarArm(),
        "double pendulum": DoublePendulum(),
        "arm, 3 links": PlanarArm(arm3),
    }


def _calls_per_sample(fn: Callable[[], object], min_seconds: float = 0.02) -> int:
    """How many back-to-back calls of ``fn`` take at least ``min_seconds`` (after a warm-up)."""
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_seconds:
            return number
        number *= 2


def median_seconds(
    fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds per call of ``fn_a`` and ``fn_b`` over ``repeats`` interleaved samples.

    Each sample repeats a call for at least 20 ms (so that one preemption by
    the OS does not dominate it); the two functions are sampled alternately so
    that both see the same machine load.
    """
    numbers = (_calls_per_sample(fn_a), _calls_per_sample(fn_b))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, number, times in zip((fn_a, fn_b), numbers, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
    return statistics.median(samples[0]), statistics.median(samples[1])


def loop_step(F: ca.Function, X: np.ndarray, U: np.ndarray) -> np.ndarray:
    out = np.empty_like(X)
    for t in range(X.shape[0]):
        out[t] = F(X[t], U[t]).full().ravel()
    return out


def loop_linearize(J: ca.Function, X: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    N, n = X.shape
    A = np.empty((N, n, n))
    B = np.empty((N, n, U.shape[1]))
    for t in range(N):
        a, b = J(X[t], U[t])
        A[t], B[t] = a.full(), b.full()
    return A, B


def jacobian_function(sys: System) -> ca.Function:
    """``(x, u) -> (dF/dx, dF/du)`` built from ``sys.casadi_function`` as a user would."""
    x, u = ca.SX.sym("x", sys.n), ca.SX.sym("u", sys.m)
    y = sys.casadi_function(x, u)
    return ca.Function("J", [x, u], [ca.jacobian(y, x), ca.jacobian(y, u)])


def run(repeats: int) -> list[tuple[str, str, int, float, float]]:
    rows = []
    rng = np.random.default_rng(0)
    for name, sys in systems().items():
        F, J = sys.casadi_function, jacobian_function(sys)
        for N in SIZES:
            # Interior states (no clipping for the mountain car), in-bound controls.
            X = np.column_stack([rng.uniform(-0.5, 0.5, N) for _ in range(sys.n)])
            if isinstance(sys, MountainCar):
                X = X * [1.0, 0.1] + [-0.5, 0.0]
            U = rng.uniform(sys.u_low, sys.u_high, size=(N, sys.m))
            # The batched and looped results agree (a benchmark of wrong code is no benchmark).
            A_loop = loop_linearize(J, X, U)[0]
            np.testing.assert_allclose(sys.step(X, U), loop_step(F, X, U), rtol=1e-13)
            np.testing.assert_allclose(sys.linearize(X, U).A, A_loop, rtol=1e-12, atol=1e-14)
            for op, batched, looped in (
                ("step", partial(sys.step, X, U), partial(loop_step, F, X, U)),
                ("linearize", partial(sys.linearize, X, U), partial(loop_linearize, J, X, U)),
            ):
                tb, tl = median_seconds(batched, looped, repeats)
                rows.append((name, op, N, N / tb, N / tl))
    return rows


def print_table(rows: list[tuple[str, str, int, float, float]]) -> None:
    head = (
        f"{'system':<22}{'op':<11}{'N':>6}{'batched [states/s]':>21}"
        f"{'loop [states/s]':>18}{'speed-up':>10}"
    )
    print(head)
    print("-" * len(head))
    for name, op, N, batched, looped in rows:
        print(f"{name:<22}{op:<11}{N:>6}{batched:>21,.0f}{looped:>18,.0f}{batched / looped:>9.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples per timing instead of 15")
    args = parser.parse_args()
    repeats = 3 if args.quick else 15
    print(
        f"gpcontrol systems benchmark: median of {repeats} interleaved samples (>= 20 ms each), "
        f"threads pinned to 1; casadi {ca.CasadiMeta.version()}, numpy {np.__version__}, Python "
        f"{platform.python_version()} on {platform.machine()}\n"
    )
    print_table(run(repeats))


if __name__ == "__main__":
    main()
