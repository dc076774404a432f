"""Kalman filter and RTS smoother against brute-force conditioning of one big Gaussian.

The oracle stacks the whole trajectory ``(x_0..x_T, y_0..y_{T-1})`` as an affine
function of the independent Gaussians ``(x_0, w_0.., v_0..)``, forms its joint
mean and covariance densely, and conditions with a plain linear solve: no
recursion is shared with the code under test.
"""

from __future__ import annotations

import control
import mpmath
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gpcontrol.solvers.kalman import dlqe, kalman_filter, kalman_smoother


# ---------------------------------------------------------------------------- oracle
def _random_model(rng: np.random.Generator, n: int, p: int, m: int, T: int, varying: bool) -> dict:
    def mat(*shape: int, scale: float = 1.0) -> np.ndarray:
        lead = (T,) if varying else ()
        return scale * rng.standard_normal((*lead, *shape))

    def cov(k: int, scale: float) -> np.ndarray:
        lead = (T,) if varying else ()
        F = rng.standard_normal((*lead, k, k))
        return scale * (F @ np.swapaxes(F, -1, -2) / k + 0.2 * np.eye(k))

    F0 = rng.standard_normal((n, n))
    return dict(
        A=mat(n, n, scale=0.6),
        C=mat(p, n),
        W=cov(n, 0.3),
        V=cov(p, 0.5),
        B=mat(n, m),
        U=rng.standard_normal((T, m)),
        c=mat(n, scale=0.3),
        d=mat(p, scale=0.3),
        m0=rng.standard_normal(n),
        P0=F0 @ F0.T / n + 0.1 * np.eye(n),
    )


def _at(M: np.ndarray, t: int, ndim: int) -> np.ndarray:
    return M[t] if M.ndim > ndim else M


def _joint_gaussian(model: dict, T: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Mean and covariance of ``(x_0, ..., x_T, y_0, ..., y_{T-1})`` stacked."""
    A0, C0 = model["A"], model["C"]
    n, p = A0.shape[-1], C0.shape[-2]
    nz = n + T * n + T * p  # independent blocks: x_0, w_0..w_{T-1}, v_0..v_{T-1}
    mu_z = np.concatenate([model["m0"], np.zeros(T * (n + p))])
    Sz = np.zeros((nz, nz))
    Sz[:n, :n] = model["P0"]
    for t in range(T):
        i = n + t * n
        Sz[i : i + n, i : i + n] = _at(model["W"], t, 2)
        j = n + T * n + t * p
        Sz[j : j + p, j : j + p] = _at(model["V"], t, 2)
    rows_x = [np.hstack([np.eye(n), np.zeros((n, nz - n))])]
    off_x = [np.zeros(n)]
    rows_y, off_y = [], []
    for t in range(T):
        A, C = _at(model["A"], t, 2), _at(model["C"], t, 2)
        Ev = np.zeros((p, nz))
        Ev[:, n + T * n + t * p : n + T * n + (t + 1) * p] = np.eye(p)
        rows_y.append(C @ rows_x[t] + Ev)
        off_y.append(C @ off_x[t] + _at(model["d"], t, 1))
        Ew = np.zeros((n, nz))
        Ew[:, n + t * n : n + (t + 1) * n] = np.eye(n)
        rows_x.append(A @ rows_x[t] + Ew)
        B = _at(model["B"], t, 2)
        off_x.append(A @ off_x[t] + B @ model["U"][t] + _at(model["c"], t, 1))
    M = np.vstack(rows_x + rows_y)
    a = np.concatenate(off_x + off_y)
    return M @ mu_z + a, M @ Sz @ M.T, n, p


def _condition(mu: np.ndarray, S: np.ndarray, idx: np.ndarray, obs: np.ndarray, value: np.ndarray):
    """Mean and covariance of ``z[idx]`` given ``z[obs] = value``."""
    if obs.size == 0:
        return mu[idx], S[np.ix_(idx, idx)]
    Soo = S[np.ix_(obs, obs)]
    Sio = S[np.ix_(idx, obs)]
    gain = np.linalg.solve(Soo, Sio.T).T
    mean = mu[idx] + gain @ (value - mu[obs])
    cov = S[np.ix_(idx, idx)] - gain @ Sio.T
    return mean, cov


def _sample_observations(model: dict, T: int, rng: np.random.Generator) -> np.ndarray:
    mu, S, n, p = _joint_gaussian(model, T)
    z = rng.multivariate_normal(mu, S)
    return z[(T + 1) * n :].reshape(T, p)


def _kwargs(model: dict) -> dict:
    return {k: model[k] for k in ("B", "U", "c", "d", "m0", "P0")}


# ---------------------------------------------------------------------------- filter & smoother
@pytest.mark.parametrize("varying", [False, True])
@pytest.mark.parametrize(("n", "p", "m", "T"), [(1, 1, 1, 4), (3, 2, 1, 6), (4, 1, 2, 5)])
def test_filter_and_smoother_equal_joint_gaussian_conditioning(
    n: int, p: int, m: int, T: int, varying: bool
) -> None:
    rng = np.random.default_rng(10 * n + p + 100 * varying)
    model = _random_model(rng, n, p, m, T, varying)
    Y = _sample_observations(model, T, rng)
    mu, S, _, _ = _joint_gaussian(model, T)
    x_idx = [np.arange(t * n, (t + 1) * n) for t in range(T + 1)]
    y_off = (T + 1) * n

    def y_idx(k: int) -> np.ndarray:  # indices of y_0..y_{k-1}
        return np.arange(y_off, y_off + k * p)

    sm = kalman_smoother(Y, model["A"], model["C"], model["W"], model["V"], **_kwargs(model))
    kf = sm.filter
    for t in range(T):
        mean, cov = _condition(mu, S, x_idx[t], y_idx(t + 1), Y[: t + 1].ravel())
        np.testing.assert_allclose(kf.filtered_means[t], mean, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(kf.filtered_covs[t], cov, rtol=1e-9, atol=1e-10)
    for t in range(T + 1):
        mean, cov = _condition(mu, S, x_idx[t], y_idx(t), Y[:t].ravel())
        np.testing.assert_allclose(kf.predicted_means[t], mean, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(kf.predicted_covs[t], cov, rtol=1e-9, atol=1e-10)
    all_x = np.concatenate(x_idx[:T])
    mean, cov = _condition(mu, S, all_x, y_idx(T), Y.ravel())
    np.testing.assert_allclose(sm.smoothed_means.ravel(), mean, rtol=1e-9, atol=1e-10)
    for t in range(T):
        blk = slice(t * n, (t + 1) * n)
        np.testing.assert_allclose(sm.smoothed_covs[t], cov[blk, blk], rtol=1e-9, atol=1e-10)
    for t in range(T - 1):
        nxt, cur = slice((t + 1) * n, (t + 2) * n), slice(t * n, (t + 1) * n)
        np.testing.assert_allclose(sm.cross_covs[t], cov[nxt, cur], rtol=1e-9, atol=1e-10)
    # The log-likelihood is the joint Gaussian log-density of all observations.
    ys = y_idx(T)
    ref = multivariate_normal(mu[ys], S[np.ix_(ys, ys)]).logpdf(Y.ravel())
    assert kf.log_likelihood == pytest.approx(ref, rel=1e-10, abs=1e-10)
    assert sm.log_likelihood == kf.log_likelihood
    for P in (kf.filtered_covs, kf.predicted_covs, sm.smoothed_covs):
        np.testing.assert_array_equal(P, np.swapaxes(P, -1, -2))  # exactly symmetric


def test_known_start_without_process_noise_uses_the_singular_path() -> None:
    """P0 = 0 and W = 0 make every predicted covariance singular (no Cholesky)."""
    rng = np.random.default_rng(3)
    model = _random_model(rng, 2, 1, 1, 5, varying=False)
    model["P0"] = np.zeros((2, 2))
    model["W"] = np.zeros((2, 2))
    Y = rng.standard_normal((5, 1))
    sm = kalman_smoother(Y, model["A"], model["C"], model["W"], model["V"], **_kwargs(model))
    mu, S, n, _ = _joint_gaussian(model, 5)
    # The state is deterministic: every posterior equals the noise-free trajectory.
    for t in range(5):
        np.testing.assert_allclose(sm.smoothed_means[t], mu[t * n : (t + 1) * n], atol=1e-12)
        np.testing.assert_allclose(sm.smoothed_covs[t], 0.0, atol=1e-12)
    ys = np.arange(6 * n, 6 * n + 5)
    ref = multivariate_normal(mu[ys], S[np.ix_(ys, ys)]).logpdf(Y.ravel())
    assert sm.log_likelihood == pytest.approx(ref, rel=1e-10)


def test_results_are_read_only() -> None:
    res = kalman_filter(np.ones((3, 1)), [[1.0]], [[1.0]], [[0.1]], [[0.2]], m0=[0.0], P0=[[1.0]])
    with pytest.raises(ValueError, match="read-only"):
        res.filtered_means[0, 0] = 1.0


# ---------------------------------------------------------------------------- numerics
def _ill_conditioned_case() -> dict:
    """A very uncertain prior measured repeatedly through a nearly noise-free sensor.

    P0 has eigenvalues 1e8, 1 and 1e-2 in a rotated frame; the sensor noise
    variance is 1e-8. This is the classic setting in which the short form
    P - G C P loses positive semi-definiteness in floating point.
    """
    c, s = np.cos(0.3), np.sin(0.3)
    R1 = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    R2 = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    Rot = R1 @ R2
    P0 = Rot @ np.diag([1e8, 1.0, 1e-2]) @ Rot.T
    P0 = 0.5 * (P0 + P0.T)
    C = np.array([[1.0, 0.7, -0.4]])
    return dict(A=np.eye(3), C=C, W=np.zeros((3, 3)), V=np.array([[1e-8]]), P0=P0)


def test_joseph_form_keeps_covariances_psd_where_the_short_form_fails() -> None:
    case = _ill_conditioned_case()
    T = 8
    res = kalman_filter(
        np.zeros((T, 1)), case["A"], case["C"], case["W"], case["V"], m0=np.zeros(3), P0=case["P0"]
    )
    # Reference: the short update P - G C P in float64 (what the Joseph form avoids).
    P = case["P0"].copy()
    short_min = np.inf
    for _ in range(T):
        S = case["C"] @ P @ case["C"].T + case["V"]
        G = P @ case["C"].T / S
        P = P - G @ case["C"] @ P
        P = 0.5 * (P + P.T)
        short_min = min(short_min, np.linalg.eigvalsh(P)[0])
    assert short_min < 0.0, "the case is meant to break the short form"
    for Pf in res.filtered_covs:
        np.testing.assert_array_equal(Pf, Pf.T)
        assert np.linalg.eigvalsh(Pf)[0] >= 0.0
    # Against the same recursion in 50-digit arithmetic, even the smallest
    # eigenvalue (~1e-9 next to 1e8 in P0) is right; the short form's is off 100x.
    mpmath.mp.dps = 50
    Pm, Cm = mpmath.matrix(case["P0"].tolist()), mpmath.matrix(case["C"].tolist())
    Vm = mpmath.mpf(case["V"][0, 0])
    for t in range(T):
        Sm = (Cm * Pm * Cm.T)[0, 0] + Vm
        Pm = Pm - Pm * Cm.T * Cm * Pm / Sm
        exact = np.linalg.eigvalsh(np.array(Pm.tolist(), dtype=float))
        np.testing.assert_allclose(np.linalg.eigvalsh(res.filtered_covs[t]), exact, rtol=1e-3)


# ---------------------------------------------------------------------------- steady state
@pytest.mark.parametrize(("n", "p"), [(2, 1), (4, 2), (6, 3)])
def test_dlqe_matches_python_control(n: int, p: int) -> None:
    rng = np.random.default_rng(n + 7 * p)
    A = rng.standard_normal((n, n)) / np.sqrt(n) * 1.1
    C = rng.standard_normal((p, n))
    G = rng.standard_normal((n, 2))
    QN = np.array([[1.0, 0.2], [0.2, 0.5]])
    F = rng.standard_normal((p, p))
    V = F @ F.T / p + 0.3 * np.eye(p)
    W = G @ QN @ G.T + 1e-3 * np.eye(n)
    W = 0.5 * (W + W.T)
    V = 0.5 * (V + V.T)
    res = dlqe(A, C, W, V)
    L_ctl, P_ctl, E_ctl = control.dlqe(A, np.eye(n), C, W, V)
    np.testing.assert_allclose(res.L, np.asarray(L_ctl), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.P, np.asarray(P_ctl), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        np.sort_complex(res.eigenvalues), np.sort_complex(np.asarray(E_ctl)), rtol=1e-8, atol=1e-10
    )
    assert np.abs(res.eigenvalues).max() < 1.0
    np.testing.assert_allclose(res.L, A @ res.K, rtol=1e-10, atol=1e-12)


def test_time_varying_filter_converges_to_dlqe() -> None:
    rng = np.random.default_rng(5)
    n, p = 3, 1
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    C = rng.standard_normal((p, n))
    W, V = 0.1 * np.eye(n), np.array([[0.3]])
    ss = dlqe(A, C, W, V)
    res = kalman_filter(np.zeros((300, p)), A, C, W, V, m0=np.zeros(n), P0=np.eye(n))
    np.testing.assert_allclose(res.predicted_covs[-1], ss.P, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.filtered_covs[-1], ss.P_filtered, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.gains[-1], ss.K, rtol=1e-9, atol=1e-12)


def test_dlqe_reports_undetectable_pair_in_estimation_terms() -> None:
    A = np.diag([1.5, 0.5])
    C = np.array([[0.0, 1.0]])  # the unstable mode is not observed
    with pytest.raises(ValueError, match=r"\(A, C\) is not detectable"):
        dlqe(A, C, np.eye(2), [[1.0]])
    with pytest.raises(ValueError, match="V must be positive definite"):
        dlqe(np.eye(2) * 0.5, [[1.0, 0.0]], np.eye(2), [[0.0]])


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_reported_by_name() -> None:
    Y = np.zeros((4, 1))
    good = dict(m0=np.zeros(2), P0=np.eye(2))
    A, C, W, V = np.eye(2), np.ones((1, 2)), np.eye(2), np.eye(1)
    with pytest.raises(ValueError, match=r"A must have shape"):
        kalman_filter(Y, np.eye(3)[:2], C, W, V, **good)
    with pytest.raises(ValueError, match=r"C must have shape \(p, 2\)"):
        kalman_filter(Y, A, np.ones((1, 3)), W, V, **good)
    with pytest.raises(ValueError, match=r"A must have shape \(2, 2\) or \(4, 2, 2\)"):
        kalman_filter(Y, np.stack([A] * 3), C, W, V, **good)
    with pytest.raises(ValueError, match="W must be positive semi-definite at t = 2"):
        Ws = np.stack([W] * 4)
        Ws[2] = -np.eye(2)
        kalman_filter(Y, A, C, Ws, V, **good)
    with pytest.raises(ValueError, match="P0 must be symmetric"):
        kalman_filter(Y, A, C, W, V, m0=np.zeros(2), P0=[[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="m0 must have shape"):
        kalman_filter(Y, A, C, W, V, m0=np.zeros(3), P0=np.eye(2))
    with pytest.raises(ValueError, match="Y contains NaN"):
        kalman_filter(np.full((4, 1), np.nan), A, C, W, V, **good)
    with pytest.raises(ValueError, match="give both B and U"):
        kalman_filter(Y, A, C, W, V, B=np.ones((2, 1)), **good)
    with pytest.raises(ValueError, match=r"U must have shape \(4, 1\)"):
        kalman_filter(Y, A, C, W, V, B=np.ones((2, 1)), U=np.ones((3, 1)), **good)
    with pytest.raises(ValueError, match=r"Y must have shape \(4, 1\)"):
        kalman_filter(np.zeros((4, 2)), A, C, W, V, **good)
    # A singular innovation covariance is a LinAlgError (a ValueError) naming the step.
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite at t = 0"):
        kalman_filter(Y, A, C, W, [[0.0]], m0=np.zeros(2), P0=np.zeros((2, 2)))
