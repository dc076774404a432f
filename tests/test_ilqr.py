"""iLQR/DDP against IPOPT on the same discrete-time problem, closed forms and a slow reference."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from gpcontrol.costs import QuadraticCost
from gpcontrol.solvers import (
    ILQROptions,
    ILQRResult,
    LinearDynamics,
    TimeVaryingLinearDynamics,
    _kernels,
    box_qp,
    ddp,
    finite_horizon_lqr,
    ilqr,
)
from gpcontrol.solvers.lqr import _riccati_backward
from gpcontrol.systems import CartPole, CartPoleParams, Pendulum, PlanarArm

HAVE_COMPILER = _kernels.riccati_library() is not None


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def ipopt_solution(system, cost, x0, T, u_low, u_high) -> tuple[np.ndarray, np.ndarray, float]:
    """The same discrete-time problem by multiple shooting with CasADi Opti + IPOPT."""
    n, m = system.n, system.m
    opti = ca.Opti()
    X = opti.variable(n, T + 1)
    U = opti.variable(m, T)
    J = 0
    for t in range(T):
        J += cost.casadi(X[:, t], U[:, t])
        opti.subject_to(X[:, t + 1] == system.discrete(X[:, t], U[:, t]))
        opti.subject_to(opti.bounded(u_low, U[:, t], u_high))
    J += cost.casadi_terminal(X[:, T])
    opti.subject_to(X[:, 0] == x0)
    opti.minimize(J)
    opti.set_initial(X, system.simulate(x0, np.zeros((T, m))).T)
    opti.solver(
        "ipopt",
        {"expand": True, "print_time": False},
        {"print_level": 0, "sb": "yes", "tol": 1e-10},
    )
    sol = opti.solve()
    return (
        np.asarray(sol.value(X)).T,
        np.asarray(sol.value(U)).reshape(m, T).T,
        float(sol.value(J)),
    )


# ---------------------------------------------------------------------------- problems
def cartpole_problem() -> tuple:
    """PILCO cart-pole, dt = 0.05, T = 100, |F| <= 10: swing up from hanging to upright."""
    system = CartPole(CartPoleParams.pilco(), dt=0.05)
    goal = np.array([0.0, np.pi, 0.0, 0.0])
    cost = QuadraticCost(
        system.dt * np.diag([0.0, 0.0, 0.1, 0.1]),
        system.dt * np.eye(1),
        x_target=goal,
        Qf=np.diag([1e3, 1e3, 1e2, 1e2]),
    )
    return system, cost, np.zeros(4), 100, goal


def pendulum_problem() -> tuple:
    """PILCO pendulum with |tau| <= 2.5 < m g l_c = 4.91: it must pump; the bound is active."""
    system = Pendulum(dt=0.05)
    goal = np.array([np.pi, 0.0])
    cost = QuadraticCost(
        system.dt * np.diag([1.0, 0.1]),
        system.dt * 0.1 * np.eye(1),
        x_target=goal,
        Qf=np.diag([100.0, 10.0]),
    )
    return system, cost, np.zeros(2), 80, goal


@pytest.fixture(scope="module")
def cartpole_ipopt() -> tuple:
    system, cost, x0, T, _ = cartpole_problem()
    return ipopt_solution(system, cost, x0, T, system.u_low, system.u_high)


@pytest.fixture(scope="module")
def pendulum_ipopt() -> tuple:
    system, cost, x0, T, _ = pendulum_problem()
    return ipopt_solution(system, cost, x0, T, system.u_low, system.u_high)


# ---------------------------------------------------------------------------- swing-ups
@pytest.mark.parametrize("solver", [ilqr, ddp])
def test_cartpole_swing_up_matches_ipopt(solver, cartpole_ipopt) -> None:
    system, cost, x0, T, goal = cartpole_problem()
    res = solver(
        system,
        cost,
        x0,
        np.zeros((T, 1)),
        u_low=system.u_low,
        u_high=system.u_high,
        options=ILQROptions(max_iterations=1000),
    )
    assert res.status == "converged", res.message
    end = res.X[-1]
    assert abs(end[1] - np.pi) < 0.05 and abs(end[0]) < 0.1
    assert np.abs(end[2:]).max() < 0.1
    assert np.all(np.abs(res.U) <= 10.0)
    _, _, J_ipopt = cartpole_ipopt
    assert res.cost == pytest.approx(J_ipopt, rel=1e-4)
    # The returned trajectory is the rollout of the returned controls.
    np.testing.assert_allclose(system.simulate(x0, res.U), res.X, rtol=1e-9, atol=1e-9)
    assert res.cost == pytest.approx(cost.total(res.X, res.U), rel=1e-12)


@pytest.mark.parametrize("solver", [ilqr, ddp])
def test_pendulum_pumps_with_active_torque_bound_and_matches_ipopt(solver, pendulum_ipopt) -> None:
    system, cost, x0, T, goal = pendulum_problem()
    p = system.params
    assert system.u_high[0] < p.mass * p.gravity * p.lc  # cannot lift it directly
    res = solver(system, cost, x0, np.zeros((T, 1)), u_low=system.u_low, u_high=system.u_high)
    assert res.status == "converged", res.message
    assert abs(res.X[-1, 0] - np.pi) < 0.05 and abs(res.X[-1, 1]) < 0.1
    assert np.all(np.abs(res.U) <= system.u_high[0])
    at_bound = np.isclose(np.abs(res.U[:, 0]), system.u_high[0], rtol=0, atol=1e-12)
    assert at_bound.sum() >= 5  # the bound is active at the optimum
    _, U_ipopt, J_ipopt = pendulum_ipopt
    assert res.cost == pytest.approx(J_ipopt, rel=1e-4)
    # Same active set as IPOPT, up to IPOPT's interior-point tolerance.
    ipopt_at_bound = np.abs(U_ipopt[:, 0]) > system.u_high[0] - 1e-6
    assert (at_bound != ipopt_at_bound).sum() <= 2
    # Clamped controls get no feedback (Tassa et al. 2014).
    np.testing.assert_array_equal(res.K[at_bound], 0.0)


def test_ddp_converges_in_no_more_iterations_than_ilqr_near_the_optimum() -> None:
    system = CartPole(CartPoleParams.kelly(), dt=0.02)
    goal = np.array([1.0, np.pi, 0.0, 0.0])
    cost = QuadraticCost(
        np.zeros((4, 4)), system.dt * np.eye(1), x_target=goal, Qf=np.diag([1e3, 1e3, 1e2, 1e2])
    )
    x0, T = np.zeros(4), 100
    lo, hi = -20.0 * np.ones(1), 20.0 * np.ones(1)
    opt = ddp(system, cost, x0, np.zeros((T, 1)), u_low=lo, u_high=hi)
    assert opt.converged
    rng = np.random.default_rng(0)
    U0 = np.clip(opt.U + 0.05 * rng.standard_normal(opt.U.shape), lo, hi)
    near_ilqr = ilqr(system, cost, x0, U0, u_low=lo, u_high=hi)
    near_ddp = ddp(system, cost, x0, U0, u_low=lo, u_high=hi)
    assert near_ilqr.converged and near_ddp.converged
    assert near_ddp.iterations <= near_ilqr.iterations
    assert near_ddp.cost == pytest.approx(opt.cost, rel=1e-9)
    assert near_ilqr.cost == pytest.approx(opt.cost, rel=1e-6)


# ---------------------------------------------------------------------------- LQ oracles
def _lq_problem(seed: int, T: int = 20) -> tuple:
    rng = np.random.default_rng(seed)
    n, m = 4, 2
    A = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    B = 0.1 * rng.standard_normal((n, m))
    goal = rng.standard_normal(n)
    Q, R, Qf = np.eye(n), 0.1 * np.eye(m), 10 * np.eye(n)
    return (
        LinearDynamics(A, B),
        QuadraticCost(Q, R, x_target=goal, Qf=Qf),
        rng.standard_normal(n),
        T,
    )


def test_lq_problem_is_solved_exactly_in_one_iteration() -> None:
    dyn, cost, x0, T = _lq_problem(1)
    res = ilqr(dyn, cost, x0, np.zeros((T, 2)))
    assert res.converged and res.iterations <= 2 and len(res.cost_history) == 2
    lq = finite_horizon_lqr(
        dyn.A,
        dyn.B,
        cost.Q,
        cost.R,
        q=-cost.Q @ cost.x_target,
        Qf=cost.Qf,
        qf=-cost.Qf @ cost.x_target,
        T=T,
    )
    X, U = lq.rollout(x0)
    np.testing.assert_allclose(res.U, U, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.K, lq.K, rtol=1e-9, atol=1e-10)


def test_box_constrained_lq_matches_the_condensed_box_qp() -> None:
    """With linear dynamics the problem is a QP in U; solve it densely with box_qp."""
    dyn, cost, x0, T = _lq_problem(2, T=15)
    n, m = dyn.n, dyn.m
    # x = S x0 + G U: stack the condensed dynamics.
    S = np.zeros(((T + 1) * n, n))
    G = np.zeros(((T + 1) * n, T * m))
    S[:n] = np.eye(n)
    for t in range(T):
        S[(t + 1) * n : (t + 2) * n] = dyn.A @ S[t * n : (t + 1) * n]
        G[(t + 1) * n : (t + 2) * n] = dyn.A @ G[t * n : (t + 1) * n]
        G[(t + 1) * n : (t + 2) * n, t * m : (t + 1) * m] = dyn.B
    W = np.kron(np.eye(T + 1), cost.Q)
    W[-n:, -n:] = cost.Qf
    xg = np.tile(cost.x_target, T + 1)
    H = G.T @ W @ G + np.kron(np.eye(T), cost.R)
    g = G.T @ W @ (S @ x0 - xg)
    bound = 0.3
    ref = box_qp(H, g, -bound * np.ones(T * m), bound * np.ones(T * m))
    assert ref.clamped.sum() >= 3
    res = ilqr(
        dyn, cost, x0, np.zeros((T, m)), u_low=-bound * np.ones(m), u_high=bound * np.ones(m)
    )
    assert res.converged
    np.testing.assert_allclose(res.U.reshape(-1), ref.x, atol=1e-7)
    res_ddp = ddp_on_linear(dyn, cost, x0, T, bound)
    np.testing.assert_allclose(res_ddp.U.reshape(-1), ref.x, atol=1e-7)


def ddp_on_linear(dyn, cost, x0, T, bound):
    """DDP needs second derivatives; a linear map has none."""

    class WithZeroCurvature(LinearDynamics):
        def second_derivatives(self, X, U):
            k = X.shape[0]
            return type(
                "D",
                (),
                {
                    "fxx": np.zeros((k, self.n, self.n, self.n)),
                    "fux": np.zeros((k, self.n, self.m, self.n)),
                    "fuu": np.zeros((k, self.n, self.m, self.m)),
                },
            )()

    d = WithZeroCurvature(dyn.A, dyn.B)
    m = dyn.m
    return ddp(d, cost, x0, np.zeros((T, m)), u_low=-bound * np.ones(m), u_high=bound * np.ones(m))


def test_time_varying_linear_dynamics_use_step_at() -> None:
    rng = np.random.default_rng(5)
    T, n, m = 12, 3, 1
    A = np.eye(n) + 0.1 * rng.standard_normal((T, n, n))
    B = rng.standard_normal((T, n, m))
    c = 0.1 * rng.standard_normal((T, n))
    dyn = TimeVaryingLinearDynamics(A, B, c)
    cost = QuadraticCost(np.eye(n), np.eye(m), Qf=np.eye(n))
    x0 = rng.standard_normal(n)
    res = ilqr(dyn, cost, x0, np.zeros((T, m)))
    lq = finite_horizon_lqr(A, B, np.eye(n), np.eye(m), c=c, Qf=np.eye(n))
    X, U = lq.rollout(x0)
    assert res.backend == "numpy"
    np.testing.assert_allclose(res.U, U, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.X, X, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------- warm start
def test_warm_start_from_a_result_finishes_at_once() -> None:
    system, cost, x0, T, _ = pendulum_problem()
    first = ilqr(system, cost, x0, np.zeros((T, 1)), u_low=system.u_low, u_high=system.u_high)
    again = ilqr(system, cost, x0, first, u_low=system.u_low, u_high=system.u_high)
    assert again.converged and again.iterations <= 2
    assert again.cost == pytest.approx(first.cost, rel=1e-10)
    # The affine law u = K x + k reproduces U on X.
    np.testing.assert_allclose(
        np.einsum("tij,tj->ti", first.K, first.X[:-1]) + first.k, first.U, atol=1e-12
    )
    # From the control sequence as well.
    again_u = ilqr(system, cost, x0, first.U, u_low=system.u_low, u_high=system.u_high)
    assert again_u.iterations <= 2


# ---------------------------------------------------------------------------- backends
@pytest.mark.parametrize("solver", [ilqr, ddp])
def test_backends_agree_with_the_protocol_reference(solver) -> None:
    """CasADi and compiled paths reproduce the plain-protocol NumPy reference iteration."""
    system = CartPole(CartPoleParams.kelly(), dt=0.02)
    cost = QuadraticCost(
        np.zeros((4, 4)),
        system.dt * np.eye(1),
        x_target=[1.0, np.pi, 0.0, 0.0],
        Qf=np.diag([1e3, 1e3, 1e2, 1e2]),
    )
    T = 60
    lo, hi = -15.0 * np.ones(1), 15.0 * np.ones(1)
    backends = ["numpy", "casadi"] + (["compiled"] if HAVE_COMPILER else [])
    rng = np.random.default_rng(4)
    # One iteration from several starts (each phase, bound handling included), and a
    # few iterations of iLQR from rest. Longer DDP runs far from the optimum are
    # chaotic: rounding can flip a line-search decision.
    starts = [(np.zeros((T, 1)), 8 if solver is ilqr else 3)] + [
        (np.clip(8 * rng.standard_normal((T, 1)), lo, hi), 1) for _ in range(3)
    ]
    for U0, iters in starts:
        runs = {}
        for backend in backends:
            runs[backend] = solver(
                system,
                cost,
                np.zeros(4),
                U0,
                u_low=lo,
                u_high=hi,
                options=ILQROptions(max_iterations=iters, backend=backend),
            )
            assert runs[backend].backend == backend
        ref = runs["numpy"]
        for backend in backends[1:]:
            np.testing.assert_allclose(runs[backend].cost_history, ref.cost_history, rtol=1e-8)
            np.testing.assert_allclose(runs[backend].U, ref.U, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(runs[backend].K, ref.K, rtol=1e-6, atol=1e-8)


def _random_backward_problem(rng, T, n, m):
    n1, N = n + 1, n + 1 + m
    F = np.zeros((T, n1, N))
    F[:, :n, :n] = np.eye(n) + 0.2 * rng.standard_normal((T, n, n))
    F[:, :n, n1:] = rng.standard_normal((T, n, m))
    F[:, n, n] = 1.0
    W = rng.standard_normal((T, N, N))
    C = W @ np.swapaxes(W, 1, 2) / N
    C[:, n, n] = 0.0
    VT = np.eye(n1)
    VT[n, n] = 0.0
    S = rng.standard_normal((T, n, N, N))
    F2 = 0.05 * (S + np.swapaxes(S, 2, 3))
    F2[:, :, n, :] = 0.0
    F2[:, :, :, n] = 0.0
    lower = -rng.uniform(0.05, 0.5, (T, m))
    upper = rng.uniform(0.05, 0.5, (T, m))
    return F, C, VT, F2, lower, upper


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler")
@pytest.mark.parametrize(("n", "m"), [(4, 1), (5, 3)])
@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("second", [False, True])
@pytest.mark.parametrize(("mu", "state_reg"), [(0.0, True), (0.3, True), (0.3, False)])
def test_compiled_backward_pass_equals_numpy_reference(
    n, m, bounded, second, mu, state_reg
) -> None:
    rng = np.random.default_rng(10 * n + m)
    T = 25
    F, C, VT, F2, lower, upper = _random_backward_problem(rng, T, n, m)
    ref = _riccati_backward(
        F,
        C,
        VT,
        m,
        mu=mu,
        state_regularization=state_reg,
        lower=lower if bounded else None,
        upper=upper if bounded else None,
        F2=F2 if second else None,
    )
    assert ref.failed_at == -1
    cb = _kernels.CBackward(_kernels.riccati_library(), T, n, m, second)
    cb.F[...], cb.C[...], cb.VT[...] = F, C, VT
    if second:
        assert cb.F2 is not None
        cb.F2[...] = F2
    cb.lower[...], cb.upper[...] = lower, upper
    assert cb(mu, state_reg, bounded, False, second) == -1
    np.testing.assert_allclose(cb.G, ref.G, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cb.V, ref.V, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cb.dV, ref.expected_terms(), rtol=1e-9, atol=1e-12)
    if bounded:
        assert ref.free is not None
        np.testing.assert_array_equal(cb.free.astype(bool), ref.free)
        assert (~ref.free).any()


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler")
def test_compiled_backward_pass_reports_non_convex_step() -> None:
    rng = np.random.default_rng(3)
    T, n, m = 10, 3, 2
    F, C, VT, _, _, _ = _random_backward_problem(rng, T, n, m)
    C[6, n + 1 :, n + 1 :] = -5.0 * np.eye(m)
    ref = _riccati_backward(F, C, VT, m)
    cb = _kernels.CBackward(_kernels.riccati_library(), T, n, m, False)
    cb.F[...], cb.C[...], cb.VT[...] = F, C, VT
    assert ref.failed_at == 6
    assert cb(0.0, True, False, False, False) == 6


# ---------------------------------------------------------------------------- failures
class _NaNAboveCost:
    """A quadratic cost whose value is NaN once any |u| exceeds a threshold (no CasADi form)."""

    def __init__(self, inner: QuadraticCost, threshold: float) -> None:
        self.inner, self.threshold = inner, threshold
        self.n, self.m = inner.n, inner.m

    def total(self, X, U):
        return np.nan if np.abs(U).max() > self.threshold else self.inner.total(X, U)

    def quadratize(self, X, U):
        return self.inner.quadratize(X, U)

    def quadratize_terminal(self, x):
        return self.inner.quadratize_terminal(x)


def test_nan_cost_gives_diverged_status_with_reason_not_nans() -> None:
    system, cost, x0, _, _ = pendulum_problem()
    bad = _NaNAboveCost(cost, threshold=0.0)  # every step away from U = 0 is NaN
    res = ilqr(system, bad, x0, np.zeros((20, 1)), options=ILQROptions(max_iterations=100))
    assert res.status == "diverged"
    assert "no step" in res.message and "mu_max" in res.message
    assert np.isfinite(res.X).all() and np.isfinite(res.U).all() and np.isfinite(res.cost)


class _BlowUpDynamics(LinearDynamics):
    """Linear dynamics whose Jacobians turn NaN away from the origin."""

    def linearize(self, X, U):
        A, B = super().linearize(X, U)
        if np.abs(U).max() > 0:
            A = A * np.nan
        return A, B


def test_non_finite_derivatives_give_diverged_status() -> None:
    dyn = _BlowUpDynamics(np.eye(2), np.eye(2)[:, :1])
    cost = QuadraticCost(np.eye(2), np.eye(1), x_target=[1.0, 0.0])
    res = ilqr(dyn, cost, np.zeros(2), np.zeros((10, 1)))
    assert res.status == "diverged"
    assert "not finite" in res.message
    assert np.isfinite(res.X).all()


def test_initial_rollout_that_overflows_is_an_error() -> None:
    dyn = LinearDynamics(1e200 * np.eye(2), np.ones((2, 1)))
    cost = QuadraticCost(np.eye(2), np.eye(1))
    with pytest.raises(ValueError, match="non-finite rollout"):
        ilqr(dyn, cost, np.ones(2), np.zeros((5, 1)))


def test_input_validation() -> None:
    system, cost, x0, T, _ = pendulum_problem()
    U = np.zeros((T, 1))
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., 2\)"):
        ilqr(system, cost, np.zeros(3), U)
    with pytest.raises(ValueError, match=r"U_init must have shape \(T, 1\)"):
        ilqr(system, cost, x0, np.zeros((T, 2)))
    with pytest.raises(ValueError, match="U_init contains NaN"):
        ilqr(system, cost, x0, np.full((T, 1), np.nan))
    with pytest.raises(ValueError, match="u_low must not exceed u_high"):
        ilqr(system, cost, x0, U, u_low=[1.0], u_high=[-1.0])
    with pytest.raises(ValueError, match=r"cost is for \(n, m\)"):
        ilqr(system, QuadraticCost(np.eye(3), np.eye(1)), x0, U)
    with pytest.raises(TypeError, match="second_derivatives"):
        ddp(LinearDynamics(np.eye(2), np.ones((2, 1))), cost, x0, U)
    with pytest.raises(TypeError, match="Dynamics protocol"):
        ilqr(object(), cost, x0, U)
    with pytest.raises(ValueError, match="backend 'casadi' needs"):
        ilqr(
            LinearDynamics(np.eye(2), np.ones((2, 1))),
            cost,
            x0,
            U,
            options=ILQROptions(backend="casadi"),
        )
    for bad in (
        {"max_iterations": -1},
        {"mu_factor": 1.0},
        {"regularization": "both"},
        {"line_search": (1.0, 2.0)},
        {"backend": "gpu"},
        {"rtol": float("nan")},
    ):
        with pytest.raises(ValueError):
            ILQROptions(**bad)


def test_result_is_frozen() -> None:
    dyn, cost, x0, T = _lq_problem(3, T=5)
    res = ilqr(dyn, cost, x0, np.zeros((T, 2)))
    assert isinstance(res, ILQRResult)
    with pytest.raises(AttributeError):
        res.cost = 0.0  # type: ignore[misc]
    assert set(res.timings) >= {"linearize", "quadratize", "backward", "forward", "total"}


def test_cached_kernels_are_released_after_errors_and_shared_safely_across_threads() -> None:
    import threading

    from gpcontrol.solvers.ilqr import _CASADI_CACHE

    system, cost, x0, T, _ = pendulum_problem()
    box = {"u_low": system.u_low, "u_high": system.u_high}
    with pytest.raises(ValueError, match="non-finite rollout"):
        ilqr(system, cost, x0, np.full((T, 1), 1e200))
    reference = ilqr(system, cost, x0, np.zeros((T, 1)), **box)
    assert all(not entry[1].lock.locked() for entry in _CASADI_CACHE[system].values())
    results: list = [None] * 4

    def solve(i: int) -> None:
        results[i] = ilqr(system, cost, x0, np.zeros((T, 1)), **box)

    threads = [threading.Thread(target=solve, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for res in results:
        np.testing.assert_array_equal(res.U, reference.U)
        assert res.cost_history == reference.cost_history


@pytest.mark.parametrize("solver", [ilqr, pytest.param(ddp, marks=pytest.mark.slow)])
def test_arm_reaches_ten_random_targets_and_matches_ipopt(solver) -> None:
    """Li & Todorov's two-link arm, 1 s, |tau| <= 5 N m (benchmark problem (c) style).

    IPOPT is solved for the first two targets (each ~0.5 s), for both solvers.
    Each target is a new cost, so the compiled kernels are rebuilt per target
    (~1 s each): the DDP case is marked slow.
    """
    system = PlanarArm()
    rng = np.random.default_rng(7)
    x0 = np.array([np.pi / 4, np.pi / 2, 0.0, 0.0])
    T = 100
    for i in range(10):
        q = np.array([rng.uniform(0.0, np.pi / 2), rng.uniform(0.4, 2.4)])
        target = system.end_effector(np.concatenate([q, [0.0, 0.0]]))
        goal = np.concatenate([system.inverse_kinematics(target), [0.0, 0.0]])
        cost = QuadraticCost(
            np.zeros((4, 4)),
            system.dt * 0.1 * np.eye(2),
            x_target=goal,
            Qf=np.diag([1e3, 1e3, 10.0, 10.0]),
        )
        res = solver(system, cost, x0, np.zeros((T, 2)), u_low=system.u_low, u_high=system.u_high)
        assert res.converged, res.message
        hand = system.end_effector(res.X[-1])
        assert np.linalg.norm(hand - target) < 0.01
        assert np.abs(res.X[-1, 2:]).max() < 0.1
        if i < 2:
            _, _, J_ipopt = ipopt_solution(system, cost, x0, T, system.u_low, system.u_high)
            assert res.cost == pytest.approx(J_ipopt, rel=1e-4)
