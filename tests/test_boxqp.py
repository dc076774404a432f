"""Projected-Newton box QP against exhaustive active-set enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize as so

from gpcontrol.solvers import box_qp

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _enumerated_solution(
    H: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The unique KKT point of a strictly convex box QP, found by trying all 3^m active sets.

    Returns the minimiser and the mask of coordinates held at a bound with a
    nonzero multiplier (the clamped set).
    """
    m = g.shape[0]
    for pattern in itertools.product((0, -1, 1), repeat=m):
        state = np.array(pattern)
        if np.any((state == -1) & ~np.isfinite(lo)) or np.any((state == 1) & ~np.isfinite(hi)):
            continue
        x = np.where(state == -1, lo, np.where(state == 1, hi, 0.0))
        f = state == 0
        if f.any():
            rhs = -(g[f] + H[np.ix_(f, ~f)] @ x[~f])
            x[f] = np.linalg.solve(H[np.ix_(f, f)], rhs)
        grad = g + H @ x
        ok = (
            np.all(x[f] >= lo[f] - 1e-12)
            and np.all(x[f] <= hi[f] + 1e-12)
            and np.all(grad[state == -1] >= 0)
            and np.all(grad[state == 1] <= 0)
        )
        if ok:
            return x, ~f
    raise AssertionError("no KKT point found")  # impossible for a strictly convex QP


def _random_problem(rng: np.random.Generator, m: int) -> tuple[np.ndarray, ...]:
    W = rng.standard_normal((m, m))
    H = W @ W.T + 0.1 * np.eye(m)
    g = 3.0 * rng.standard_normal(m)
    lo = -rng.uniform(0.1, 2.0, m)
    hi = rng.uniform(0.1, 2.0, m)
    # Some one-sided and unbounded coordinates.
    lo[rng.random(m) < 0.15] = -np.inf
    hi[rng.random(m) < 0.15] = np.inf
    return H, g, lo, hi


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
def test_box_qp_matches_enumerated_active_sets(m: int) -> None:
    rng = np.random.default_rng(m)
    n_active = 0
    for _ in range(60):
        H, g, lo, hi = _random_problem(rng, m)
        x_ref, clamped_ref = _enumerated_solution(H, g, lo, hi)
        res = box_qp(H, g, lo, hi)
        scale = max(1.0, float(np.abs(x_ref).max()))
        np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-9 * scale)
        np.testing.assert_array_equal(res.clamped, clamped_ref)
        np.testing.assert_array_equal(res.free, ~clamped_ref)
        f = res.free
        if f.any():
            L = res.cholesky
            np.testing.assert_allclose(L, np.tril(L))
            np.testing.assert_allclose(L @ L.T, H[np.ix_(f, f)], rtol=1e-12, atol=1e-12)
        else:
            assert res.status == "all_clamped"
        assert np.all(res.x >= lo) and np.all(res.x <= hi)
        n_active += int(res.clamped.any())
    assert n_active >= 10  # the random problems exercise the bounds


def test_box_qp_agrees_with_scipy_bounded_minimiser() -> None:
    rng = np.random.default_rng(42)
    m = 8
    for _ in range(10):
        H, g, lo, hi = _random_problem(rng, m)
        res = box_qp(H, g, lo, hi)
        ref = so.minimize(
            lambda x, H=H, g=g: 0.5 * x @ H @ x + g @ x,
            np.clip(np.zeros(m), lo, hi),
            jac=lambda x, H=H, g=g: H @ x + g,
            bounds=list(zip(lo, hi, strict=True)),
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
        )
        f_ours = 0.5 * res.x @ H @ res.x + g @ res.x
        assert f_ours <= ref.fun + 1e-9 * max(1.0, abs(ref.fun))
        np.testing.assert_allclose(res.x, ref.x, atol=1e-5)


def test_warm_start_does_not_change_the_solution() -> None:
    rng = np.random.default_rng(3)
    H, g, lo, hi = _random_problem(rng, 5)
    base = box_qp(H, g, lo, hi)
    for _ in range(5):
        warm = box_qp(H, g, lo, hi, x0=5 * rng.standard_normal(5))
        np.testing.assert_allclose(warm.x, base.x, atol=1e-10)
        np.testing.assert_array_equal(warm.free, base.free)
    # Warm-starting at the solution finishes at once.
    assert box_qp(H, g, lo, hi, x0=base.x).iterations <= 2


def test_unbounded_box_gives_the_newton_point() -> None:
    rng = np.random.default_rng(4)
    H, g, _, _ = _random_problem(rng, 4)
    res = box_qp(H, g, np.full(4, -np.inf), np.full(4, np.inf))
    np.testing.assert_allclose(res.x, -np.linalg.solve(H, g), rtol=1e-12)
    assert res.free.all() and res.status == "converged"


def test_box_qp_errors() -> None:
    H = np.eye(2)
    with pytest.raises(ValueError, match="lower must not exceed upper"):
        box_qp(H, [0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="H must be symmetric"):
        box_qp([[1.0, 1.0], [0.0, 1.0]], [0.0, 0.0], [-1, -1], [1, 1])
    with pytest.raises(ValueError, match=r"H must have shape \(2, 2\)"):
        box_qp(np.eye(3), [0.0, 0.0], [-1, -1], [1, 1])
    with pytest.raises(ValueError, match="g contains NaN"):
        box_qp(H, [np.nan, 0.0], [-1, -1], [1, 1])
    with pytest.raises(ValueError, match="not positive definite"):
        box_qp([[1.0, 0.0], [0.0, -1.0]], [1.0, 0.0], [-1, -np.inf], [1, np.inf])
