"""Linear-Gaussian controllers: sampling, log-density and KL against scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gpcontrol.costs import QuadraticCost
from gpcontrol.envs import make_env
from gpcontrol.policies import LinearGaussianPolicy, expected_kl
from gpcontrol.rollout import rollout
from gpcontrol.solvers import dlqr, finite_horizon_lqr
from gpcontrol.systems import Pendulum


def _random_policy(
    seed: int, T: int = 4, n: int = 3, m: int = 2, **kw: object
) -> LinearGaussianPolicy:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((T, m, m))
    cov = W @ np.swapaxes(W, 1, 2) + 0.2 * np.eye(m)
    return LinearGaussianPolicy(
        rng.standard_normal((T, m, n)),
        rng.standard_normal((T, m)),
        cov,
        **kw,  # type: ignore[arg-type]
    )


def test_samples_match_mean_and_covariance() -> None:
    pi = _random_policy(0)
    x = np.array([0.3, -1.0, 2.0])
    N = 40000
    draws = pi.sample(np.broadcast_to(x, (N, 3)), 2, rng=1)
    assert draws.shape == (N, 2)
    mean = pi.K[2] @ x + pi.k[2]
    C = pi.cov[2]
    assert (np.abs(draws.mean(0) - mean) < 4 * np.sqrt(np.diag(C) / N)).all()
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
    assert (np.abs(np.cov(draws.T) - C) < 4 * se).all()
    np.testing.assert_allclose(pi.mean(x, 2), mean)


def test_log_prob_matches_scipy() -> None:
    pi = _random_policy(1)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5, 4, 3))
    U = rng.standard_normal((5, 4, 2))
    per_step = pi.log_prob(X, U)  # every step at once
    assert per_step.shape == (5, 4)
    for t in range(4):
        at_t = pi.log_prob(X[:, t], U[:, t], t)
        for i in range(5):
            ref = multivariate_normal(pi.K[t] @ X[i, t] + pi.k[t], pi.cov[t]).logpdf(U[i, t])
            assert abs(at_t[i] - ref) < 1e-10
            assert abs(per_step[i, t] - ref) < 1e-10
    np.testing.assert_allclose(
        pi.precision @ pi.cov, np.broadcast_to(np.eye(2), (4, 2, 2)), atol=1e-10
    )
    np.testing.assert_allclose(pi.logdet, np.linalg.slogdet(pi.cov)[1], atol=1e-12)


def test_call_modes_are_explicit_and_reproducible() -> None:
    pi = _random_policy(3)
    x = np.ones(3)
    with pytest.raises(ValueError, match="no random generator"):
        pi(x, 0)
    first, second = pi.seeded(7), pi.seeded(7)
    a = [first(x, t) for t in range(4)]
    b = [second(x, t) for t in range(4)]
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(7)
    for t in range(4):  # __call__ draws exactly what sample draws from the same stream
        np.testing.assert_array_equal(a[t], pi.sample(x, t, gen))
    det = pi.as_deterministic()
    np.testing.assert_array_equal(det(x, 1), pi.mean(x, 1))
    assert pi.deterministic is False and det.deterministic is True  # copies, not mutation
    with pytest.raises(ValueError, match="t must be"):
        det(x, 4)


def test_rollout_in_an_environment_draws_from_the_policy() -> None:
    T = 30
    system = Pendulum()
    env = make_env(system, QuadraticCost(np.eye(2), 0.1 * np.eye(1)), max_episode_steps=T)
    pi = LinearGaussianPolicy.from_pd(0.5, 0.1, 0.01, T=T, q_target=[0.2], rng=3)
    traj = rollout(env, pi, steps=T, seed=0)
    assert traj.controls.shape == (T, 1)
    gen = np.random.default_rng(3)
    for t in range(T):  # recorded controls = the controller's draws at the recorded states
        expected = pi.sample(traj.states[t], t, gen)
        np.testing.assert_allclose(traj.controls[t], expected, atol=1e-12)


def test_constructors() -> None:
    T = 6
    lqr = finite_horizon_lqr(np.eye(2), [[0.0], [1.0]], np.eye(2), np.eye(1), Qf=np.eye(2), T=T)
    pi = LinearGaussianPolicy.from_lqr(lqr, 0.5)
    np.testing.assert_array_equal(pi.K, lqr.K)
    np.testing.assert_array_equal(pi.k, lqr.k)
    np.testing.assert_array_equal(pi.cov, np.full((T, 1, 1), 0.5))
    inf = dlqr([[1.0, 0.1], [0.0, 1.0]], [[0.0], [0.1]], np.eye(2), np.eye(1))
    pi2 = LinearGaussianPolicy.from_lqr(inf, [[0.2]], T=T)
    np.testing.assert_array_equal(pi2.K, np.broadcast_to(inf.K, (T, 1, 2)))
    np.testing.assert_array_equal(pi2.k, np.zeros((T, 1)))
    with pytest.raises(ValueError, match="T is required"):
        LinearGaussianPolicy.from_lqr(inf, 0.2)
    # PD law u = Kp (q* - q) - Kd dq + u0 on a two-joint state [q1, q2, dq1, dq2].
    Kp, Kd = np.array([2.0, 3.0]), np.array([[0.5, 0.1], [0.1, 0.4]])
    q_star, u0 = np.array([0.3, -0.2]), np.array([1.0, 0.5])
    pd = LinearGaussianPolicy.from_pd(Kp, Kd, [0.1, 0.2], T=T, q_target=q_star, u_offset=u0)
    x = np.array([0.1, 0.4, -1.0, 2.0])
    want = np.diag(Kp) @ (q_star - x[:2]) - Kd @ x[2:] + u0
    np.testing.assert_allclose(pd.mean(x, 3), want, atol=1e-12)
    np.testing.assert_array_equal(pd.cov[0], np.diag([0.1, 0.2]))


def test_validation() -> None:
    T, m, n = 3, 2, 2
    K, k = np.zeros((T, m, n)), np.zeros((T, m))
    bad = np.broadcast_to(np.diag([1.0, -1e-3]), (T, m, m))
    with pytest.raises(ValueError, match=r"positive definite; cov\[0\]"):
        LinearGaussianPolicy(K, k, bad)
    with pytest.raises(ValueError, match="symmetric"):
        LinearGaussianPolicy(K, k, np.broadcast_to([[1.0, 0.5], [0.0, 1.0]], (T, m, m)))
    with pytest.raises(ValueError, match="k must have shape"):
        LinearGaussianPolicy(K, k[:-1], np.broadcast_to(np.eye(m), (T, m, m)))
    with pytest.raises(ValueError, match="NaN"):
        LinearGaussianPolicy(K * np.nan, k, np.broadcast_to(np.eye(m), (T, m, m)))
    with pytest.raises(ValueError, match="cov must be a positive"):
        LinearGaussianPolicy.from_gains(K, k, -1.0)
    pi = LinearGaussianPolicy.from_gains(K, k, 1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        pi.mean(np.zeros(3), 0)
    with pytest.raises(ValueError, match="without t"):
        pi.log_prob(np.zeros((2, n)), np.zeros((2, m)))
    with pytest.raises(TypeError, match="rng"):
        pi.seeded("seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pi.K[0, 0, 0] = 1.0  # read-only


# ---------------------------------------------------------------------------- KL
def _joint(
    pi: LinearGaussianPolicy, t: int, mu: np.ndarray, S: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint Gaussian of (x, u) for x ~ N(mu, S), u | x ~ pi(., t)."""
    K = pi.K[t]
    mean = np.concatenate([mu, K @ mu + pi.k[t]])
    cov = np.block([[S, S @ K.T], [K @ S, K @ S @ K.T + pi.cov[t]]])
    return mean, cov


def _gauss_kl(m1: np.ndarray, S1: np.ndarray, m2: np.ndarray, S2: np.ndarray) -> float:
    d = m2 - m1
    return 0.5 * float(
        np.trace(np.linalg.solve(S2, S1))
        - len(m1)
        + d @ np.linalg.solve(S2, d)
        + np.linalg.slogdet(S2)[1]
        - np.linalg.slogdet(S1)[1]
    )


def test_expected_kl_equals_joint_gaussian_kl() -> None:
    """Chain rule: KL of the joints (same x-marginal) = E_x KL of the conditionals."""
    new, old = _random_policy(4), _random_policy(5)
    rng = np.random.default_rng(6)
    mu = rng.standard_normal((4, 3))
    W = rng.standard_normal((4, 3, 3))
    S = W @ np.swapaxes(W, 1, 2) + 0.1 * np.eye(3)
    kl = expected_kl(new, old, mu, S)
    for t in range(4):
        ref = _gauss_kl(*_joint(new, t, mu[t], S[t]), *_joint(old, t, mu[t], S[t]))
        assert abs(kl[t] - ref) < 1e-9 * max(1.0, ref)
    np.testing.assert_allclose(expected_kl(new, new, mu, S), 0.0, atol=1e-12)
    # Monte Carlo over x of the per-state closed form.
    M = 20000
    xs = rng.multivariate_normal(mu[1], S[1], size=M)
    zero = np.zeros(2)
    base = _gauss_kl(zero, new.cov[1], zero, old.cov[1])  # KL at equal means
    d = xs @ (old.K[1] - new.K[1]).T + (old.k[1] - new.k[1])
    per_x = base + 0.5 * np.einsum("pi,ij,pj->p", d, np.linalg.inv(old.cov[1]), d)
    assert abs(per_x.mean() - kl[1]) < 4 * per_x.std() / np.sqrt(M)
    with pytest.raises(ValueError, match="differ"):
        expected_kl(new, _random_policy(0, T=3), mu, S)
