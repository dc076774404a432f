"""Tests of gpcontrol.algorithms.local_search (LQR-FLM without a global policy)."""

from __future__ import annotations

import numpy as np
import pytest

from gpcontrol.algorithms.local_search import LocalSearchOptions, local_search
from gpcontrol.costs import QuadraticCost
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy

T = 20
A = np.array([[1.0, 0.1], [0.0, 1.0]])
B = np.array([[0.005], [0.1]])
Q = np.diag([1.0, 0.1])
R = np.array([[0.01]])
QF = np.diag([10.0, 1.0])
X0 = np.array([1.0, 0.0])


class _Linear:
    """x' = A x + B u, batched."""

    n, m, dt = 2, 1, 0.1

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return x @ A.T + u @ B.T


def _riccati_cost() -> float:
    """Finite-horizon LQR optimum 1/2 x0' P_0 x0 by the backward Riccati recursion."""
    P = QF
    for _ in range(T):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ (A - B @ K)
    return float(0.5 * X0 @ P @ X0)


def _run(seed: int = 0, budget: int = 60) -> object:
    cost = QuadraticCost(Q, R, Qf=QF)
    init = LinearGaussianPolicy.from_gains(np.zeros((1, 2)), np.zeros(1), 1.0, T=T)
    opt = LocalSearchOptions(samples=5, max_rollouts=budget, kl_step=2.0, x0_std=0.05, seed=seed)
    return local_search(_Linear(), cost, X0, T, init, options=opt)


def test_converges_to_finite_horizon_lqr_cost() -> None:
    res = _run()
    opt_cost = _riccati_cost()
    mean_costs = np.array([h.mean_cost for h in res.history])  # type: ignore[attr-defined]
    # The LQR optimum is a lower bound for every controller's noise-free cost ...
    assert np.all(mean_costs >= opt_cost - 1e-9)
    # ... and the loop reaches it (the initial zero controller costs 5x more).
    init_cost = 0.5 * sum(X0 @ Q @ X0 for _ in range(T)) + 0.5 * X0 @ QF @ X0
    assert init_cost > 4 * opt_cost
    assert mean_costs[-1] <= 1.001 * opt_cost


def test_deterministic_under_seed() -> None:
    a, b = _run(seed=3, budget=15), _run(seed=3, budget=15)
    c = _run(seed=4, budget=15)
    ka, kb, kc = (r.controller.K for r in (a, b, c))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(ka, kb)
    assert not np.array_equal(ka, kc)


def test_success_stops_the_loop() -> None:
    cost = QuadraticCost(Q, R, Qf=QF)
    init = LinearGaussianPolicy.from_gains(np.zeros((1, 2)), np.zeros(1), 1.0, T=T)
    opt = LocalSearchOptions(samples=5, max_rollouts=60, kl_step=2.0, x0_std=0.05)
    res = local_search(
        _Linear(), cost, X0, T, init, options=opt, success=lambda X: abs(X[-1, 0]) < 0.2
    )
    assert res.solved and res.first_success_rollouts == res.history[-1].rollouts
    assert res.first_success_seconds == pytest.approx(res.first_success_rollouts * T * 0.1)
    assert res.history[-1].success_rate > 0
    assert all(h.success_rate == 0 for h in res.history[:-1])


def test_bad_input() -> None:
    cost = QuadraticCost(Q, R, Qf=QF)
    init = LinearGaussianPolicy.from_gains(np.zeros((1, 2)), np.zeros(1), 1.0, T=T)
    with pytest.raises(ValueError, match="x0"):
        local_search(_Linear(), cost, np.zeros(3), T, init)
    with pytest.raises(ValueError, match="T"):
        local_search(_Linear(), cost, X0, 0, init)
    with pytest.raises(ValueError, match="init_controller"):
        local_search(_Linear(), cost, X0, T + 1, init)
    with pytest.raises(TypeError, match="init_controller"):
        local_search(_Linear(), cost, X0, T, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples"):
        LocalSearchOptions(samples=0)
    with pytest.raises(ValueError, match="step_range"):
        LocalSearchOptions(step_range=(2.0, 3.0))
    with pytest.raises(ValueError, match="exceeds"):
        local_search(_Linear(), cost, X0, T, init, options=LocalSearchOptions(max_rollouts=2))
