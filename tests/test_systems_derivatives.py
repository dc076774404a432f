"""Jacobians, Hessians, batching and broadcasting of every built-in system.

Oracles: central finite differences of ``step`` for ``linearize`` and of
``linearize`` for ``second_derivatives``; a Python loop over single points
(through the raw ``casadi_function`` too) for the batched evaluation.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

N_POINTS = 6
H = 1e-5  # central differences: truncation ~ H^2 = 1e-10, round-off ~ eps / H = 2e-11
RTOL = 1e-6


def _central_difference(fn, X, U, wrt, h=H):
    """d fn / d (X or U) by central differences, derivative index last.

    ``fn(X, U)`` maps ``(N, n), (N, m)`` to ``(N, *shape)``; returns
    ``(N, *shape, dim)`` with ``dim`` the size of the differentiated argument.
    """
    Z = X if wrt == "x" else U
    cols = []
    for k in range(Z.shape[-1]):
        E = np.zeros_like(Z)
        E[:, k] = h
        if wrt == "x":
            plus, minus = fn(X + E, U), fn(X - E, U)
        else:
            plus, minus = fn(X, U + E), fn(X, U - E)
        cols.append((plus - minus) / (2 * h))
    return np.stack(cols, axis=-1)


def _close(actual, expected, rtol=RTOL, atol_scale=1e-7):
    """rtol on each entry, with an atol relative to the array's magnitude (for ~0 entries)."""
    atol = atol_scale * (1.0 + np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def test_linearize_matches_finite_differences_of_step(known_system):
    sys = known_system.system
    X, U = known_system.sample(np.random.default_rng(0), N_POINTS)
    A, B = sys.linearize(X, U)
    assert A.shape == (N_POINTS, sys.n, sys.n) and B.shape == (N_POINTS, sys.n, sys.m)
    _close(A, _central_difference(sys.step, X, U, "x"))
    _close(B, _central_difference(sys.step, X, U, "u"))


def test_second_derivatives_match_finite_differences_of_linearize(known_system):
    sys = known_system.system
    X, U = known_system.sample(np.random.default_rng(1), N_POINTS)
    d2 = sys.second_derivatives(X, U)
    n, m = sys.n, sys.m
    assert d2.fxx.shape == (N_POINTS, n, n, n)
    assert d2.fux.shape == (N_POINTS, n, m, n)
    assert d2.fuu.shape == (N_POINTS, n, m, m)
    A_fn = lambda X, U: sys.linearize(X, U).A
    B_fn = lambda X, U: sys.linearize(X, U).B
    _close(d2.fxx, _central_difference(A_fn, X, U, "x"))  # d A[i, j] / d x_k
    _close(d2.fux, _central_difference(B_fn, X, U, "x"))  # d B[i, a] / d x_k
    _close(d2.fuu, _central_difference(B_fn, X, U, "u"))  # d B[i, a] / d u_b
    # Symmetry of the Hessians in the two differentiated arguments.
    np.testing.assert_allclose(d2.fxx, np.swapaxes(d2.fxx, -1, -2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d2.fuu, np.swapaxes(d2.fuu, -1, -2), rtol=1e-9, atol=1e-12)


def test_batched_evaluation_equals_a_loop_of_single_points(known_system):
    sys = known_system.system
    X, U = known_system.sample(np.random.default_rng(2), N_POINTS)
    step = sys.step(X, U)
    A, B = sys.linearize(X, U)
    d2 = sys.second_derivatives(X, U)
    deriv = sys.derivative(X, U)
    F = sys.casadi_function
    for t in range(N_POINTS):
        x, u = X[t], U[t]
        np.testing.assert_allclose(step[t], sys.step(x, u), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(step[t], np.asarray(F(x, u)).ravel(), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(deriv[t], sys.derivative(x, u), rtol=1e-14, atol=1e-15)
        A1, B1 = sys.linearize(x, u)
        np.testing.assert_allclose(A[t], A1, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(B[t], B1, rtol=1e-14, atol=1e-15)
        s1 = sys.second_derivatives(x, u)
        for name in ("fxx", "fux", "fuu"):
            np.testing.assert_allclose(
                getattr(d2, name)[t], getattr(s1, name), rtol=1e-14, atol=1e-15
            )


def test_broadcasting_of_states_against_controls(known_system):
    sys = known_system.system
    n, m = sys.n, sys.m
    rng = np.random.default_rng(3)
    X, U = known_system.sample(rng, 5)
    loop = lambda xs, us: np.stack([sys.step(x, u) for x, u in zip(xs, us, strict=True)])

    # (T, n) states against one control (m,).
    out = sys.step(X, U[0])
    assert out.shape == (5, n)
    np.testing.assert_allclose(out, loop(X, np.broadcast_to(U[0], (5, m))), rtol=1e-14)
    # One state (n,) against a control sequence (T, m).
    out = sys.step(X[0], U)
    assert out.shape == (5, n)
    np.testing.assert_allclose(out, loop(np.broadcast_to(X[0], (5, n)), U), rtol=1e-14)
    # Outer product: (3, 1, n) against (5, m) -> (3, 5, n).
    out = sys.step(X[:3, None, :], U)
    assert out.shape == (3, 5, n)
    for i in range(3):
        np.testing.assert_allclose(out[i], sys.step(X[i], U), rtol=1e-14)
    A, B = sys.linearize(X[:3, None, :], U)
    assert A.shape == (3, 5, n, n) and B.shape == (3, 5, n, m)
    np.testing.assert_allclose(A[2, 4], sys.linearize(X[2], U[4]).A, rtol=1e-14)
    d2 = sys.second_derivatives(X[:2, None, :], U[:3])
    assert d2.fxx.shape == (2, 3, n, n, n)
    assert d2.fux.shape == (2, 3, n, m, n)
    assert d2.fuu.shape == (2, 3, n, m, m)
    np.testing.assert_allclose(
        d2.fux[1, 2], sys.second_derivatives(X[1], U[2]).fux, rtol=1e-14, atol=1e-15
    )
    # Zero-size batches give zero-size results of the right trailing shape.
    assert sys.step(np.zeros((0, n)), np.zeros((0, m))).shape == (0, n)
    assert sys.linearize(np.zeros((0, n)), np.zeros(m)).A.shape == (0, n, n)


def test_outputs_are_float64_even_for_integer_input(known_system):
    sys = known_system.system
    n, m = sys.n, sys.m
    x = np.zeros(n, dtype=np.int32)
    u = np.zeros(m, dtype=np.int64)
    A, B = sys.linearize(x, u)
    d2 = sys.second_derivatives(x, u)
    outputs = [sys.step(x, u), sys.derivative(x, u), A, B, d2.fxx, d2.fux, d2.fuu]
    outputs += [sys.simulate(x, np.zeros((2, m), dtype=int)), sys.points(x)]
    for out in outputs:
        assert out.dtype == np.float64
    assert sys.step(x, u).shape == (n,)
    assert A.shape == (n, n) and B.shape == (n, m)
    assert d2.fxx.shape == (n, n, n) and d2.fux.shape == (n, m, n) and d2.fuu.shape == (n, m, m)


def test_simulate_equals_repeated_step_and_broadcasts(known_system):
    sys = known_system.system
    rng = np.random.default_rng(4)
    X0, U = known_system.sample(rng, 4)
    T = U.shape[0]
    X = sys.simulate(X0[0], U)
    assert X.shape == (T + 1, sys.n)
    x = X0[0]
    np.testing.assert_array_equal(X[0], x)
    for t in range(T):
        x = sys.step(x, U[t])
        np.testing.assert_allclose(X[t + 1], x, rtol=1e-14, atol=1e-15)
    # A batch of initial states (B, n) with controls (T, B, m) -> (T + 1, B, n).
    UB = np.broadcast_to(U[:, None, :], (T, 3, sys.m))
    XB = sys.simulate(X0[:3], UB)
    assert XB.shape == (T + 1, 3, sys.n)
    np.testing.assert_allclose(XB[:, 0], sys.simulate(X0[0], U), rtol=1e-14, atol=1e-15)
    # One control sequence (T, m) shared by the batch.
    np.testing.assert_allclose(sys.simulate(X0[:3], U), XB, rtol=1e-14, atol=1e-15)


def test_jacobians_agree_with_a_user_built_casadi_jacobian(known_system):
    """linearize agrees with the Jacobian a user would build on ``System.discrete`` (layout)."""
    sys = known_system.system
    x, u = ca.SX.sym("x", sys.n), ca.SX.sym("u", sys.m)
    y = sys.discrete(x, u)
    jac = ca.Function("J", [x, u], [ca.jacobian(y, x), ca.jacobian(y, u)])
    X, U = known_system.sample(np.random.default_rng(5), 3)
    A, B = sys.linearize(X, U)
    for t in range(3):
        A1, B1 = (np.asarray(v) for v in jac(X[t], U[t]))
        np.testing.assert_allclose(A[t], A1, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(B[t], B1, rtol=1e-13, atol=1e-14)
