"""Physics oracles for the known-physics systems, written from the papers' equations.

* Cart-pole: Kelly's point-mass equations (SIAM Review 2017, Sec. 6; benchmark
  (a)) and PILCO's uniform-rod equations (Deisenroth & Rasmussen 2011, in the
  explicit form of the PILCO package's ``dynamics_cp.m``), against
  ``CartPole.derivative``, which solves the 2x2 Lagrange system instead.
* Pendulum: PILCO's rod and Gymnasium's ``3 g / (2 l) sin(theta_gym) + 3 / (m l^2) u``.
* Two-link arm: Li & Todorov's ``M(q) ddq + C(q, dq) + B dq = tau``.
* Double pendulum and a three-link arm: an independent Lagrangian built here
  numerically (mass matrix from centre-of-mass Jacobians, Christoffel symbols by
  finite differences of M), energy conservation under a fine RK4, and the power
  balance ``dE/dt = dq' S tau - dq' B dq`` for every system.
* RK4 order: energy drift and state error against an adaptive DOP853 reference
  fall as ``dt^4`` (RK4) and ``dt^1`` (Euler, semi-implicit Euler).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import three_link_params
from scipy.integrate import solve_ivp

from gpcontrol.systems import (
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

RTOL = 1e-12


def _random_states(rng, lo, hi, size):
    return rng.uniform(lo, hi, size=(size, len(lo)))


# --------------------------------------------------------------------- cart-pole
def kelly_cartpole(x, u, m1=1.0, m2=0.3, l=0.5, g=9.81):
    """Kelly (2017) Sec. 6, point mass m2 on a massless pole of length l."""
    q2, dq2 = x[:, 1], x[:, 3]
    F = u[:, 0]
    s, c = np.sin(q2), np.cos(q2)
    D = m1 + m2 * (1 - c**2)
    ddq1 = (l * m2 * s * dq2**2 + F + m2 * g * c * s) / D
    ddq2 = -(l * m2 * c * s * dq2**2 + F * c + (m1 + m2) * g * s) / (l * D)
    return np.column_stack([x[:, 2], dq2, ddq1, ddq2])


def pilco_cartpole(x, u, M=0.5, m=0.5, l=0.5, b=0.1, g=9.82):
    """PILCO's cart-pole (uniform rod of length l, cart friction b)."""
    th, dp, dth = x[:, 1], x[:, 2], x[:, 3]
    F = u[:, 0]
    s, c = np.sin(th), np.cos(th)
    ddp = (2 * m * l * dth**2 * s + 3 * m * g * s * c + 4 * F - 4 * b * dp) / (
        4 * (M + m) - 3 * m * c**2
    )
    ddth = (-3 * m * l * dth**2 * s * c - 6 * (M + m) * g * s - 6 * (F - b * dp) * c) / (
        4 * l * (M + m) - 3 * m * l * c**2
    )
    return np.column_stack([dp, dth, ddp, ddth])


@pytest.mark.parametrize(
    ("params", "oracle"),
    [(CartPoleParams.kelly(), kelly_cartpole), (CartPoleParams.pilco(), pilco_cartpole)],
    ids=["kelly", "pilco"],
)
def test_cartpole_matches_published_equations(params, oracle):
    sys = CartPole(params)
    rng = np.random.default_rng(10)
    X = _random_states(rng, [-2, -4, -3, -8], [2, 4, 3, 8], 200)
    U = rng.uniform(-20, 20, size=(200, 1))
    np.testing.assert_allclose(sys.derivative(X, U), oracle(X, U), rtol=RTOL, atol=1e-12)


# ---------------------------------------------------------------------- pendulum
def test_pendulum_pilco_matches_rod_equation():
    m, l, b, g = 1.0, 1.0, 0.01, 9.82
    sys = Pendulum(PendulumParams.pilco())
    rng = np.random.default_rng(11)
    X = _random_states(rng, [-7, -10], [7, 10], 200)
    U = rng.uniform(-3, 3, size=(200, 1))
    ddth = (U[:, 0] - b * X[:, 1] - m * g * l * np.sin(X[:, 0]) / 2) / (m * l**2 / 3)
    np.testing.assert_allclose(
        sys.derivative(X, U), np.column_stack([X[:, 1], ddth]), rtol=RTOL, atol=1e-12
    )


@pytest.mark.parametrize(
    "sys",
    [Pendulum.gymnasium(), Pendulum(PendulumParams.benchmark())],
    ids=["gymnasium", "benchmark"],
)
def test_pendulum_matches_gymnasium_equation(sys):
    m, l, g = 1.0, 1.0, 10.0
    rng = np.random.default_rng(12)
    X = _random_states(rng, [-7, -10], [7, 10], 200)
    U = rng.uniform(-3, 3, size=(200, 1))
    th_gym = X[:, 0] - np.pi
    ddth = 3 * g / (2 * l) * np.sin(th_gym) + 3 / (m * l**2) * U[:, 0]
    np.testing.assert_allclose(
        sys.derivative(X, U), np.column_stack([X[:, 1], ddth]), rtol=1e-10, atol=1e-12
    )


# -------------------------------------------------------------------- mountain car
def test_mountaincar_matches_gymnasium_equation():
    sys = MountainCar()
    rng = np.random.default_rng(13)
    X = _random_states(rng, [-1.2, -0.07], [0.6, 0.07], 100)
    U = rng.uniform(-1, 1, size=(100, 1))
    acc = 0.0015 * U[:, 0] - 0.0025 * np.cos(3 * X[:, 0])
    np.testing.assert_allclose(
        sys.derivative(X, U), np.column_stack([X[:, 1], acc]), rtol=RTOL, atol=1e-15
    )


# -------------------------------------------------------------------- two-link arm
def li_todorov_arm(x, u):
    """Li & Todorov (ICINCO 2004): ddq = M^-1 (tau - C - B dq)."""
    m2, l1, s2 = 1.1, 0.30, 0.16
    I1, I2 = 0.025, 0.045
    Bf = np.array([[0.05, 0.025], [0.025, 0.05]])
    d1, d2, d3 = I1 + I2 + m2 * l1**2, m2 * l1 * s2, I2
    out = np.empty_like(x)
    for t, (_, q2, dq1, dq2) in enumerate(x):
        c2, s2_ = math.cos(q2), math.sin(q2)
        Mq = np.array([[d1 + 2 * d2 * c2, d3 + d2 * c2], [d3 + d2 * c2, d3]])
        C = np.array([-d2 * s2_ * (2 * dq1 * dq2 + dq2**2), d2 * s2_ * dq1**2])
        dq = np.array([dq1, dq2])
        out[t] = np.concatenate([dq, np.linalg.solve(Mq, u[t] - C - Bf @ dq)])
    return out


def test_arm_matches_li_todorov_equations():
    sys = PlanarArm()
    rng = np.random.default_rng(14)
    X = _random_states(rng, [-3, -3, -5, -5], [3, 3, 5, 5], 200)
    U = rng.uniform(-5, 5, size=(200, 2))
    np.testing.assert_allclose(sys.derivative(X, U), li_todorov_arm(X, U), rtol=1e-10, atol=1e-10)


def test_double_pendulum_matches_two_link_equations_with_gravity():
    """Two uniform rods hanging down: the arm's M and C plus the gravity torque."""
    m, l, g = 0.5, 0.5, 9.82
    s, J = l / 2, m * l**2 / 3  # centre of mass and inertia about the proximal joint
    d1, d2, d3 = 2 * J + m * l**2, m * l * s, J
    sys = DoublePendulum()
    rng = np.random.default_rng(15)
    X = _random_states(rng, [-4, -4, -6, -6], [4, 4, 6, 6], 100)
    U = rng.uniform(-3, 3, size=(100, 2))
    expected = np.empty_like(X)
    for t, (q1, q2, dq1, dq2) in enumerate(X):
        Mq = np.array(
            [[d1 + 2 * d2 * np.cos(q2), d3 + d2 * np.cos(q2)], [d3 + d2 * np.cos(q2), d3]]
        )
        C = np.array([-d2 * np.sin(q2) * (2 * dq1 * dq2 + dq2**2), d2 * np.sin(q2) * dq1**2])
        G = np.array(
            [
                m * g * s * np.sin(q1) + m * g * (l * np.sin(q1) + s * np.sin(q1 + q2)),
                m * g * s * np.sin(q1 + q2),
            ]
        )
        expected[t, :2] = dq1, dq2
        expected[t, 2:] = np.linalg.solve(Mq, U[t] - C - G)
    np.testing.assert_allclose(sys.derivative(X, U), expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------- n-link chains: numerical Lagrangian
class NumericChain:
    """A planar chain's equations of motion, assembled numerically (independent code).

    ``M(q) = sum_i m_i Jc_i' Jc_i + Ic_i Jw_i' Jw_i`` with ``Jc_i`` the Jacobian of
    the centre of mass of link ``i`` and ``Jw_i`` that of its absolute angle;
    Coriolis forces from Christoffel symbols of finite differences of ``M``.
    """

    def __init__(self, p: ChainParams):
        self.p = p
        self.N = p.n_links

    def com_jacobians(self, q):
        p, N = self.p, self.N
        phi = p.base_angle + np.cumsum(q)
        t = np.stack([-np.sin(phi), np.cos(phi)], axis=1)  # d(direction_j)/d(phi_j)
        Jc = np.zeros((N, 2, N))
        for i in range(N):
            for k in range(i + 1):
                v = p.com_distances[i] * t[i]
                for j in range(k, i):
                    v = v + p.lengths[j] * t[j]
                Jc[i, :, k] = v
        return Jc

    def mass_matrix(self, q):
        p, N = self.p, self.N
        Jc = self.com_jacobians(q)
        M = np.zeros((N, N))
        for i in range(N):
            Jw = np.array([1.0] * (i + 1) + [0.0] * (N - i - 1))
            Ic = p.inertias[i] - p.masses[i] * p.com_distances[i] ** 2
            M += p.masses[i] * Jc[i].T @ Jc[i] + Ic * np.outer(Jw, Jw)
        return M

    def accel(self, q, dq, u):
        p, N = self.p, self.N
        h = 1e-6
        dM = np.stack(
            [
                (self.mass_matrix(q + h * e) - self.mass_matrix(q - h * e)) / (2 * h)
                for e in np.eye(N)
            ],
            axis=-1,
        )  # dM[i, j, k] = d M_ij / d q_k
        gamma = 0.5 * (dM + dM.transpose(0, 2, 1) - dM.transpose(2, 0, 1))
        coriolis = np.einsum("ijk,j,k->i", gamma, dq, dq)
        gravity = sum(p.masses[i] * p.gravity * self.com_jacobians(q)[i, 1] for i in range(N))
        S = np.eye(N)[:, np.flatnonzero(p.actuated)]
        rhs = S @ u - np.array(p.friction) @ dq - coriolis - gravity
        return np.linalg.solve(self.mass_matrix(q), rhs)


def _three_link(friction: bool = True) -> ChainParams:
    p = three_link_params()
    return p if friction else dataclasses.replace(p, friction=((0.0,) * 3,) * 3)


CHAINS = {
    "arm3": lambda: PlanarArm(_three_link()),
    "acrobot": lambda: DoublePendulum(
        dataclasses.replace(
            ChainParams.pilco_double_pendulum(), actuated=(False, True), max_torque=(3.0,)
        )
    ),
    "arm": PlanarArm,
    "double_pendulum": DoublePendulum,
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chain_matches_numerical_lagrangian(name):
    sys = CHAINS[name]()
    oracle = NumericChain(sys.params)
    N = oracle.N
    rng = np.random.default_rng(16)
    X = _random_states(rng, [-np.pi] * N + [-3.0] * N, [np.pi] * N + [3.0] * N, 30)
    U = rng.uniform(sys.u_low, sys.u_high, size=(30, sys.m))
    got = sys.derivative(X, U)
    for t in range(30):
        q, dq = X[t, :N], X[t, N:]
        np.testing.assert_allclose(
            sys.mass_matrix(q), oracle.mass_matrix(q), rtol=1e-12, atol=1e-14
        )
        np.testing.assert_allclose(got[t, :N], dq, rtol=0, atol=0)
        np.testing.assert_allclose(got[t, N:], oracle.accel(q, dq, U[t]), rtol=1e-7, atol=1e-8)


# -------------------------------------------------------------- energy and power
def _power(sys: System, X, U):
    """Input power minus dissipation, ``dE/dt`` implied by each system's physics."""
    p = sys.params
    if isinstance(sys, CartPole):
        return U[:, 0] * X[:, 2] - p.friction * X[:, 2] ** 2
    if isinstance(sys, Pendulum):
        return U[:, 0] * X[:, 1] - p.damping * X[:, 1] ** 2
    if isinstance(sys, MountainCar):  # energy per unit mass
        return p.power * U[:, 0] * X[:, 1] - p.friction * X[:, 1] ** 2
    N = p.n_links
    S = np.eye(N)[:, np.flatnonzero(p.actuated)]
    dq = X[:, N:]
    return np.einsum("ti,ij,tj->t", dq, S, U) - np.einsum(
        "ti,ij,tj->t", dq, np.array(p.friction), dq
    )


def test_power_balance(known_system):
    """dE/dt along the ODE (finite differences of ``energy``) equals input power - dissipation."""
    sys = known_system.system
    X, U = known_system.sample(np.random.default_rng(17), 20)
    f = sys.derivative(X, U)
    h = 1e-6
    dE = (sys.energy(X + h * f) - sys.energy(X - h * f)) / (2 * h)
    expected = _power(sys, X, U)
    scale = 1.0 + np.abs(f).max() * np.abs(X).max()
    np.testing.assert_allclose(dE, expected, rtol=1e-6, atol=1e-7 * scale)


@pytest.mark.parametrize(
    "sys",
    [
        DoublePendulum(dt=0.01, substeps=10),
        PlanarArm(_three_link(friction=False), dt=0.01, substeps=10),
    ],
    ids=["double_pendulum", "arm3"],
)
def test_chain_conserves_energy_without_friction_and_torque(sys):
    N = sys.params.n_links
    x0 = np.concatenate([np.linspace(2.0, -1.0, N), np.linspace(0.5, 1.5, N)])
    X = sys.simulate(x0, np.zeros((300, sys.m)))  # 3 s of chaotic motion
    E = sys.energy(X)
    swing = np.ptp(sys.energy(np.concatenate([X[:, :N], 0 * X[:, N:]], axis=1)))  # range of V
    assert swing > 1.0  # the motion is large: potential energy varies by joules
    # RK4 with h = 1 ms at joint speeds up to ~45 rad/s: drift <= ~3e-7 J here; a wrong or
    # missing term of the equations (e.g. 1% of a Coriolis force) drifts by ~0.1-1 J.
    assert np.abs(E - E[0]).max() < 1e-6 * swing


# ------------------------------------------------------------------- RK4 order
def _slope(h, err):
    return np.polyfit(np.log(h), np.log(err), 1)[0]


CONSERVATIVE = {
    "pendulum": (
        lambda **kw: Pendulum(PendulumParams(damping=0.0), **kw),
        np.array([2.0, 1.0]),
    ),
    "cartpole": (
        lambda **kw: CartPole(CartPoleParams(friction=0.0), **kw),
        np.array([0.0, 2.0, 0.3, 1.0]),
    ),
}


@pytest.mark.parametrize("name", sorted(CONSERVATIVE))
def test_rk4_energy_drift_is_fourth_order(name):
    make, x0 = CONSERVATIVE[name]
    dts = 0.05 / 2.0 ** np.arange(5)
    drift = []
    for dt in dts:
        sys = make(dt=dt)
        X = sys.simulate(x0, np.zeros((round(1.0 / dt), 1)))  # 1 s horizon
        E = sys.energy(X)
        drift.append(np.abs(E - E[0]).max())
    assert 3.5 <= _slope(dts, drift) <= 4.5
    assert 3.5 <= math.log2(drift[-2] / drift[-1]) <= 4.5


@pytest.mark.parametrize("name", sorted(CONSERVATIVE))
@pytest.mark.parametrize(
    ("integrator", "substeps", "order"),
    [
        ("rk4", [1, 2, 4, 8, 16], 4),
        ("euler", [16, 32, 64, 128, 256], 1),
        ("semi_implicit_euler", [16, 32, 64, 128, 256], 1),
    ],
)
def test_global_error_order_against_dop853(name, integrator, substeps, order):
    """Max state error over 1 s against an adaptive DOP853 solution at rtol 1e-13."""
    make, x0 = CONSERVATIVE[name]
    dt, T = 0.05, 20
    f = make(dt=dt).derivative
    ref = solve_ivp(
        lambda t, x: f(x, [0.0]),
        (0.0, T * dt),
        x0,
        method="DOP853",
        rtol=1e-13,
        atol=1e-13,
        t_eval=np.arange(T + 1) * dt,
    ).y.T
    err = []
    for S in substeps:
        X = make(dt=dt, integrator=integrator, substeps=S).simulate(x0, np.zeros((T, 1)))
        err.append(np.abs(X - ref).max())
    h = dt / np.array(substeps)
    assert order - 0.5 <= _slope(h, err) <= order + 0.5
    assert order - 0.5 <= math.log2(err[-2] / err[-1]) <= order + 0.5
