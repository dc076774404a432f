"""Sampling planners on the pendulum swing-up, against iLQR and a zero-action baseline.

The problem: PILCO's pendulum (m g l_c = 4.91 N m) with |tau| <= 2.5 N m, so it
must pump; dt = 0.1 s, H = 30 steps; quadratic cost around upright.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpcontrol.costs import QuadraticCost
from gpcontrol.solvers import ilqr
from gpcontrol.solvers.shooting import (
    CEMOptions,
    MPPIOptions,
    RandomShootingOptions,
    _colored_noise_basis,
    batch_rollout,
    cem,
    mppi,
    random_shooting,
)
from gpcontrol.systems import Pendulum

H = 30


@pytest.fixture(scope="module")
def swingup() -> dict[str, Any]:
    system = Pendulum(dt=0.1)
    p = system.params
    assert system.u_high[0] < p.mass * p.gravity * p.lc  # the bound forces pumping
    cost = QuadraticCost(
        np.diag([1.0, 0.1]), 0.01 * np.eye(1), x_target=[np.pi, 0.0], Qf=np.diag([100.0, 10.0])
    )
    x0 = np.zeros(2)
    U0 = np.zeros((H, 1))
    zero_cost = cost.total(system.simulate(x0, U0), U0)
    ref = ilqr(system, cost, x0, U0, u_low=system.u_low, u_high=system.u_high)
    assert ref.converged
    return dict(system=system, cost=cost, x0=x0, U0=U0, zero_cost=zero_cost, ilqr=ref)


def _check_consistent(res: Any, sw: dict[str, Any]) -> None:
    """X is the sequential rollout of U and cost its total (independent of batch_rollout)."""
    system, cost = sw["system"], sw["cost"]
    X = system.simulate(sw["x0"], res.U)
    np.testing.assert_allclose(res.X, X, rtol=1e-12, atol=1e-12)
    assert res.cost == pytest.approx(cost.total(X, res.U), rel=1e-12)
    assert (res.U >= system.u_low).all() and (res.U <= system.u_high).all()


def test_random_shooting_beats_zero_actions(swingup: dict[str, Any]) -> None:
    sw = swingup
    res = random_shooting(
        sw["system"], sw["cost"], sw["x0"], sw["U0"], options=RandomShootingOptions(2000), seed=0
    )
    _check_consistent(res, sw)
    assert res.cost < 0.6 * sw["zero_cost"]
    assert res.cost_history[0] == pytest.approx(sw["zero_cost"], rel=1e-12)
    assert res.evaluations == 2001


def test_colored_random_shooting_approaches_ilqr(swingup: dict[str, Any]) -> None:
    """10,000 clipped colored-noise sequences (beta = 3, sigma = 5) land within 30 % of iLQR.

    Measured: ratio to iLQR 1.176 for seed 0; over seeds 0-9 median 1.21,
    range 1.09-1.41. The bound 1.3 is the seed-0 value plus ~10 % margin.
    Uniform i.i.d. sequences stay far off (2.5-3.2x with 20,000 samples,
    seeds 0-2), which the second half checks with a tenth of the budget
    (measured 4.0x for seed 0).
    """
    sw = swingup
    args = (sw["system"], sw["cost"], sw["x0"], sw["U0"])
    colored = random_shooting(
        *args, options=RandomShootingOptions(10_000, noise_exponent=3.0, noise_std=5.0), seed=0
    )
    _check_consistent(colored, sw)
    assert colored.cost < 1.3 * sw["ilqr"].cost
    assert colored.cost >= sw["ilqr"].cost * (1 - 1e-9)  # no better than the local optimum here
    uniform = random_shooting(*args, options=RandomShootingOptions(1000), seed=0)
    assert uniform.cost > 2.0 * sw["ilqr"].cost > colored.cost


def test_cem_swings_up_within_twenty_percent_of_ilqr(swingup: dict[str, Any]) -> None:
    """iCEM-style CEM lands within 20 % of the iLQR optimum, in the same basin.

    Options: colored noise beta = 4, sigma_0 = 5 (twice the half-width, so
    the first samples are near bang-bang), a first population of 10,000, then
    30 refits of 500 samples + 30 % of the 25 elites kept, momentum 0.1:
    about 25,000 rollouts of H = 30 (~1-3 s).

    Measured (a loop over seeds, see the issue-3 report): iLQR
    76.28; this CEM / iLQR = 1.111 for seed 0, over seeds 0-9 median 1.146,
    range 1.032-1.290. The bound 1.2 is the seed-0 value plus ~8 % margin.
    White-noise CEM with 10,000 rollouts (500 x 20, 25 elites) gave 1.61-1.74
    over seeds 0-4 when refitted to the clipped samples, 1.51-1.60 refitted to
    the unclipped draws: its refits stall in the narrow valley of the
    one-pump optimum (iLQR started from its plan still reaches 76.28).
    """
    sw = swingup
    opts = CEMOptions(
        500,
        25,
        30,
        init_std=5.0,
        smoothing=0.1,
        noise_exponent=4.0,
        keep_elites=0.3,
        initial_samples=10_000,
    )
    res = cem(sw["system"], sw["cost"], sw["x0"], sw["U0"], options=opts, seed=0)
    _check_consistent(res, sw)
    assert res.cost < 1.2 * sw["ilqr"].cost
    assert res.cost < 0.2 * sw["zero_cost"]
    assert abs(res.X[-1, 0] - np.pi) < 0.2  # upright at the end of the horizon
    assert list(res.cost_history) == sorted(res.cost_history, reverse=True)  # best so far
    assert res.cost == res.cost_history[-1]
    assert res.evaluations == 10_000 + 29 * (500 + 7)  # the 7 kept elites are re-evaluated
    # CEM's plan lies in the basin of the iLQR optimum: iLQR started there ends there.
    system = sw["system"]
    polished = ilqr(system, sw["cost"], sw["x0"], res.U, u_low=system.u_low, u_high=system.u_high)
    assert polished.converged
    assert polished.cost == pytest.approx(sw["ilqr"].cost, rel=1e-6)


@pytest.mark.parametrize("H", [30, 31])
def test_colored_noise_is_stationary_with_unit_variance_and_white_at_beta_zero(H: int) -> None:
    """Covariance L L' of the colored-noise map: identity at beta = 0, unit diagonal always.

    The lag-one correlation of a circulant process with spectrum f^-beta
    grows with beta (smoother sequences).
    """
    np.testing.assert_allclose(_colored_noise_basis(H, 0.0) @ _colored_noise_basis(H, 0.0).T,
                               np.eye(H), atol=1e-12)  # fmt: skip
    lag_one = []
    for beta in (1.0, 2.0, 4.0):
        L = _colored_noise_basis(H, beta)
        C = L @ L.T
        np.testing.assert_allclose(np.diag(C), 1.0, rtol=1e-12)
        # Circulant: the covariance depends on the lag only.
        np.testing.assert_allclose(np.diag(C, 1), C[0, 1], rtol=1e-10)
        lag_one.append(C[0, 1])
    assert 0 < lag_one[0] < lag_one[1] < lag_one[2] < 1
    # Monte Carlo through the planner's own draw: sample variance within 4 SE of 1.
    rng = np.random.default_rng(0)
    L = _colored_noise_basis(H, 2.0)
    eps = L @ rng.standard_normal((L.shape[1], 20_000))
    se = np.sqrt(2.0 / 20_000)  # SE of a variance estimate of a unit normal
    assert np.all(np.abs(eps.var(axis=1) - 1.0) < 4 * se)


def test_mppi_improves_on_its_initial_sequence(swingup: dict[str, Any]) -> None:
    sw = swingup
    res = mppi(
        sw["system"], sw["cost"], sw["x0"], sw["U0"],
        options=MPPIOptions(400, 8, temperature=10.0), seed=2,
    )  # fmt: skip
    _check_consistent(res, sw)
    assert res.cost_history[0] == pytest.approx(sw["zero_cost"], rel=1e-12)
    assert res.cost < 0.5 * sw["zero_cost"]
    assert len(res.cost_history) == 9
    # Warm-started from the iLQR optimum, MPPI stays close to it.
    polished = mppi(
        sw["system"], sw["cost"], sw["x0"], sw["ilqr"].U,
        options=MPPIOptions(200, 3, noise_std=0.05, temperature=0.1), seed=3,
    )  # fmt: skip
    assert polished.cost < 1.05 * sw["ilqr"].cost


@pytest.mark.parametrize("planner", ["random_shooting", "cem", "mppi"])
def test_same_seed_same_plan(swingup: dict[str, Any], planner: str) -> None:
    sw = swingup
    fn: Any
    opts: Any
    fn, opts = {
        "random_shooting": (random_shooting, RandomShootingOptions(100)),
        "cem": (cem, CEMOptions(60, 6, 3)),
        "mppi": (mppi, MPPIOptions(60, 3)),
    }[planner]
    args = (sw["system"], sw["cost"], sw["x0"], sw["U0"])
    a = fn(*args, options=opts, seed=11)
    b = fn(*args, options=opts, seed=np.random.default_rng(11))
    c = fn(*args, options=opts, seed=12)
    np.testing.assert_array_equal(a.U, b.U)
    assert a.cost_history == b.cost_history
    assert not np.array_equal(a.U, c.U)


class _Recorder:
    """Dynamics wrapper that records every batch passed to ``step``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.n, self.m = inner, inner.n, inner.m
        self.u_low, self.u_high = inner.u_low, inner.u_high
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        self.calls.append((np.shape(x), np.array(u)))
        return self.inner.step(x, u)


@pytest.mark.parametrize("planner", ["random_shooting", "cem", "mppi"])
def test_every_sample_is_clipped_and_evaluated_in_one_call_per_step(
    swingup: dict[str, Any], planner: str
) -> None:
    sw = swingup
    rec = _Recorder(sw["system"])
    lo, hi = np.array([-1.0]), np.array([0.5])
    N, iters = 64, 3
    fn: Any
    opts: Any
    fn, opts = {
        "random_shooting": (random_shooting, RandomShootingOptions(N - 1)),
        "cem": (cem, CEMOptions(N, 8, iters, init_std=3.0, min_std=0.0)),
        "mppi": (mppi, MPPIOptions(N, iters, noise_std=3.0)),
    }[planner]
    res = fn(rec, sw["cost"], sw["x0"], np.ones((H, 1)), u_low=lo, u_high=hi, options=opts, seed=0)
    rounds = 1 if planner == "random_shooting" else iters
    batched = [c for c in rec.calls if c[0][0] == N]
    assert len(batched) == rounds * H  # one call per time step and round
    assert all(shape == (N, 2) for shape, _ in batched)
    every_u = np.concatenate([u.reshape(-1) for _, u in rec.calls])
    assert every_u.min() >= lo[0] and every_u.max() <= hi[0]
    if planner != "random_shooting":  # wide Gaussian samples did hit both bounds
        assert every_u.min() == lo[0] and every_u.max() == hi[0]
    assert (res.U >= lo).all() and (res.U <= hi).all()


class _Cubic:
    """Scalar map x' = u x^3: decays for small u, overflows to inf for large u."""

    n = m = 1

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.asarray(u) * np.asarray(x) ** 3


def test_batch_rollout_matches_a_loop_and_flags_divergence() -> None:
    dyn = _Cubic()
    cost = QuadraticCost(np.eye(1), np.eye(1))
    U = np.empty((3, 6, 1))
    U[0], U[1], U[2] = 1e-3, 10.0, 2e-3  # sequence 1 overflows at t = 5
    X, J = batch_rollout(dyn, cost, [10.0], U)
    assert J.shape == (3,) and X.shape == (3, 7, 1)
    assert np.isinf(J[1]) and np.isfinite(X).all()
    for i in (0, 2):
        x = np.array([10.0])
        total = 0.0
        for t in range(6):
            total += float(cost.l(x, U[i, t]))
            x = dyn.step(x, U[i, t])
            np.testing.assert_allclose(X[i, t + 1], x, rtol=1e-14)
        total += float(cost.l_T(x))
        assert J[i] == pytest.approx(total, rel=1e-13)


def test_bad_input_is_reported(swingup: dict[str, Any]) -> None:
    sw = swingup
    args = (sw["system"], sw["cost"], sw["x0"])
    with pytest.raises(ValueError, match="num_elites must not exceed num_samples"):
        CEMOptions(num_samples=10, num_elites=20)
    with pytest.raises(ValueError, match="noise_exponent must be"):
        CEMOptions(noise_exponent=-1.0)
    with pytest.raises(ValueError, match="noise_exponent must be None or"):
        RandomShootingOptions(noise_exponent=float("nan"))
    with pytest.raises(ValueError, match="noise_std must be a positive"):
        RandomShootingOptions(noise_exponent=2.0, noise_std=-1.0)
    with pytest.raises(ValueError, match="keep_elites must lie"):
        CEMOptions(keep_elites=1.5)
    with pytest.raises(ValueError, match="initial_samples must be at least num_elites"):
        CEMOptions(num_samples=100, num_elites=20, initial_samples=10)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        MPPIOptions(temperature=0.0)
    with pytest.raises(ValueError, match=r"U_init must have shape \(H, 1\)"):
        cem(*args, np.zeros((H, 2)))
    with pytest.raises(ValueError, match="finite control box"):
        random_shooting(*args, sw["U0"], u_low=[-np.inf], u_high=[np.inf])
    with pytest.raises(ValueError, match="init_std is required"):
        cem(*args, sw["U0"], u_low=[-np.inf], u_high=[np.inf])
    with pytest.raises(ValueError, match="u_low must not exceed u_high"):
        mppi(*args, sw["U0"], u_low=[1.0], u_high=[0.0])
    with pytest.raises(ValueError, match=r"cost is for \(n, m\) = \(4, 1\)"):
        cem(sw["system"], QuadraticCost(np.eye(4), np.eye(1)), sw["x0"], sw["U0"])
    with pytest.raises(TypeError, match="options must be a CEMOptions"):
        cem(*args, sw["U0"], options=MPPIOptions())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be"):
        cem(*args, sw["U0"], seed="zero")  # type: ignore[arg-type]
