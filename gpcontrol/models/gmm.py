r"""Gaussian mixture models fitted by expectation-maximisation, deterministic under a seed.

A mixture of :math:`K` full-covariance Gaussians in :math:`\mathbb R^D`,

.. math::

    p(z) = \sum_{k=1}^K w_k\, \mathcal N(z;\ \mu_k, \Sigma_k), \qquad
    w_k \ge 0,\ \sum_k w_k = 1,

is fitted to points :math:`z_1, \dots, z_P` by maximising the log-likelihood
with EM (Dempster, Laird & Rubin 1977; Bishop, *Pattern Recognition and
Machine Learning*, Sec. 9.2.2). The E-step computes responsibilities
:math:`r_{ik} \propto w_k \mathcal N(z_i; \mu_k, \Sigma_k)`; the M-step sets

.. math::

    P_k = \sum_i r_{ik},\quad w_k = P_k / P,\quad
    \mu_k = \frac1{P_k}\sum_i r_{ik} z_i,\quad
    \Sigma_k = \frac1{P_k}\sum_i r_{ik}(z_i - \mu_k)(z_i - \mu_k)^\top + \lambda I .

Each EM iteration cannot decrease the (regularised) likelihood. EM runs on
standardised coordinates (every dimension centred and scaled to unit
variance), so the ridge :math:`\lambda` and the k-means++ seeding (Arthur &
Vassilvitskii, SODA 2007) do not depend on the units of each dimension.

The mixture's main client is the dynamics prior of
:mod:`gpcontrol.models.tvlg`, which collapses it to one Gaussian near a set of
query points (:meth:`GaussianMixture.local_moments`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from gpcontrol._validation import as_float_array, check_positive, readonly_copy

__all__ = ["GaussianMixture", "fit_gmm", "select_gmm"]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture:
    r"""A fitted Gaussian mixture :math:`p(z) = \sum_k w_k \mathcal N(z; \mu_k, \Sigma_k)`.

    Attributes
    ----------
    weights : ndarray, shape (K,)
        Mixing weights :math:`w_k` (positive, summing to one).
    means : ndarray, shape (K, D)
    covariances : ndarray, shape (K, D, D)
        Symmetric positive definite.
    log_likelihood : float
        Average log-density of the training points, :math:`\frac1P \sum_i \log p(z_i)`.
    iterations : int
        EM iterations performed.
    converged : bool
        The per-point log-likelihood changed by less than the tolerance.
    history : tuple of float
        Average log-likelihood after every E-step (non-decreasing up to rounding).
    """

    weights: Array
    means: Array
    covariances: Array
    log_likelihood: float = float("nan")
    iterations: int = 0
    converged: bool = True
    history: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        w = as_float_array("weights", self.weights).reshape(-1)
        mu = as_float_array("means", self.means)
        S = as_float_array("covariances", self.covariances)
        K = w.shape[0]
        if K == 0 or mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape ({K}, D), got {mu.shape}")
        D = mu.shape[1]
        if S.shape != (K, D, D):
            raise ValueError(f"covariances must have shape ({K}, {D}, {D}), got {S.shape}")
        if (w < 0).any() or abs(w.sum() - 1.0) > 1e-8:
            raise ValueError("weights must be non-negative and sum to one")
        S = 0.5 * (S + np.swapaxes(S, 1, 2))
        L, ok = _cholesky(S)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"covariances[{bad}] is not positive definite")
        setattr_ = object.__setattr__
        setattr_(self, "weights", readonly_copy(w))
        setattr_(self, "means", readonly_copy(mu))
        setattr_(self, "covariances", readonly_copy(S))
        setattr_(self, "_chol", readonly_copy(L))

    @property
    def n_components(self) -> int:
        """Number of components :math:`K`."""
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        """Dimension :math:`D` of the points."""
        return int(self.means.shape[1])

    def _check_points(self, points: ArrayLike) -> Array:
        Z = as_float_array("points", points)
        if Z.ndim == 0 or Z.shape[-1] != self.dim:
            raise ValueError(f"points must have shape (..., {self.dim}), got {Z.shape}")
        return Z

    def _log_joint(self, Z: Array) -> Array:
        """:math:`\\log w_k + \\log \\mathcal N(z; \\mu_k, \\Sigma_k)`, shape ``(..., K)``."""
        L: Array = self._chol  # type: ignore[attr-defined]
        return np.log(np.maximum(self.weights, 1e-300)) + _log_normal(Z, self.means, L)

    def log_prob(self, points: ArrayLike) -> Array:
        r"""Log-density :math:`\log p(z)` of ``points (..., D)``; returns ``(...)``."""
        Z = self._check_points(points)
        return np.asarray(logsumexp(self._log_joint(Z), axis=-1))

    def responsibilities(self, points: ArrayLike) -> Array:
        r"""Posterior probabilities :math:`r_k(z) = w_k \mathcal N_k(z) / p(z)`, ``(..., K)``."""
        Z = self._check_points(points)
        lj = self._log_joint(Z)
        return np.asarray(np.exp(lj - logsumexp(lj, axis=-1, keepdims=True)))

    @property
    def n_parameters(self) -> int:
        """Free parameters: K - 1 weights, K D means, K D (D + 1) / 2 covariance entries."""
        K, D = self.n_components, self.dim
        return int(K - 1 + K * D + K * D * (D + 1) // 2)

    def bic(self, points: ArrayLike) -> float:
        r"""Bayesian information criterion :math:`-2 \sum_i \log p(z_i) + p \log P` of points.

        Schwarz, *Ann. Statist.* 6(2), 1978; smaller is better.
        """
        Z = self._check_points(points).reshape(-1, self.dim)
        return float(-2.0 * self.log_prob(Z).sum() + self.n_parameters * np.log(Z.shape[0]))

    def local_moments(self, points: ArrayLike | None = None) -> tuple[Array, Array]:
        r"""Mean and covariance of the mixture re-weighted towards ``points``.

        With :math:`\bar r_k` the responsibilities averaged over the query
        points (or the mixing weights when ``points`` is None), the mixture
        :math:`\sum_k \bar r_k \mathcal N(\mu_k, \Sigma_k)` is replaced by the
        single Gaussian with the same first two moments:

        .. math::

            \mu_0 = \sum_k \bar r_k \mu_k, \qquad
            \Sigma_0 = \sum_k \bar r_k \big(\Sigma_k + (\mu_k - \mu_0)(\mu_k - \mu_0)^\top\big).

        Parameters
        ----------
        points : array_like, shape (P, D), optional

        Returns
        -------
        mean : ndarray, shape (D,)
        cov : ndarray, shape (D, D)
        """
        if points is None:
            r = np.array(self.weights)
        else:
            Z = self._check_points(points).reshape(-1, self.dim)
            if Z.shape[0] == 0:
                raise ValueError("points must contain at least one point")
            r = self.responsibilities(Z).mean(axis=0)
        mu0 = r @ self.means
        d = self.means - mu0
        cov = np.einsum("k,kij->ij", r, self.covariances) + (d.T * r) @ d
        return mu0, 0.5 * (cov + cov.T)


def _cholesky(S: Array) -> tuple[Array, NDArray[np.bool_]]:
    """Batched Cholesky ``(K, D, D)``; failed factors are flagged, not raised."""
    L = np.zeros_like(S)
    ok = np.ones(S.shape[0], dtype=bool)
    for k in range(S.shape[0]):
        try:
            L[k] = np.linalg.cholesky(S[k])
        except np.linalg.LinAlgError:
            ok[k] = False
    return L, ok


def _log_normal(Z: Array, mu: Array, L: Array) -> Array:
    """Log-densities of ``Z (..., D)`` under every ``N(mu_k, L_k L_k')``: ``(..., K)``."""
    D = mu.shape[1]
    flat = Z.reshape(-1, D)
    out = np.empty((flat.shape[0], mu.shape[0]))
    for k in range(mu.shape[0]):
        sol = solve_triangular(L[k], (flat - mu[k]).T, lower=True)  # L^{-1}(z - mu), (D, P)
        half_logdet = np.log(np.diag(L[k])).sum()
        out[:, k] = -0.5 * (sol * sol).sum(0) - half_logdet - 0.5 * D * np.log(2.0 * np.pi)
    return out.reshape(*Z.shape[:-1], mu.shape[0])


def _kmeans_pp(Z: Array, K: int, rng: np.random.Generator) -> Array:
    """k-means++ seeding: each new centre drawn with probability proportional to distance**2."""
    P = Z.shape[0]
    centres = np.empty((K, Z.shape[1]))
    centres[0] = Z[rng.integers(P)]
    d2 = ((Z - centres[0]) ** 2).sum(1)
    for j in range(1, K):
        total = d2.sum()
        idx = rng.integers(P) if total <= 0.0 else rng.choice(P, p=d2 / total)
        centres[j] = Z[idx]
        d2 = np.minimum(d2, ((Z - centres[j]) ** 2).sum(1))
    return centres


def _m_step(Z: Array, R: Array, reg: float) -> tuple[Array, Array, Array]:
    Pk = R.sum(0)
    w = Pk / Pk.sum()
    mu = (R.T @ Z) / Pk[:, None]
    D = Z.shape[1]
    S = np.empty((R.shape[1], D, D))
    for k in range(R.shape[1]):
        d = Z - mu[k]
        S[k] = (d.T * R[:, k]) @ d / Pk[k]
        S[k] = 0.5 * (S[k] + S[k].T) + reg * np.eye(D)
    return w, mu, S


def fit_gmm(
    points: ArrayLike,
    n_components: int,
    *,
    seed: int | np.random.Generator = 0,
    max_iterations: int = 100,
    tol: float = 1e-6,
    regularization: float = 1e-6,
) -> GaussianMixture:
    r"""Fit a full-covariance Gaussian mixture by EM with k-means++ initialisation.

    Maximises :math:`\frac1P\sum_i \log \sum_k w_k \mathcal N(z_i; \mu_k, \Sigma_k)`
    with the EM updates of the module docstring (Bishop 2006, Eqs. (9.23)-(9.28)),
    in standardised coordinates with a ridge :math:`\lambda` on every
    covariance. Initial responsibilities are the hard assignment of every
    point to the nearest of :math:`K` k-means++ seeds. A component that loses
    all its points (total responsibility below :math:`10^{-8} P`) is dropped,
    so the result may have fewer than ``n_components`` components.

    Parameters
    ----------
    points : array_like, shape (P, D)
    n_components : int
        :math:`K`, at most ``P``.
    seed : int or numpy.random.Generator
        Randomness of the k-means++ seeding; equal seeds give identical fits.
    max_iterations : int
        EM iterations at most.
    tol : float
        Stop when the average log-likelihood per point changes by less than this.
    regularization : float
        Ridge :math:`\lambda > 0` added to each covariance, in standardised units.

    Returns
    -------
    GaussianMixture
        In the original coordinates of ``points``.

    Raises
    ------
    ValueError
        Wrong shapes, NaN/inf, ``n_components`` not in ``[1, P]``, bad options.
    """
    Zraw = as_float_array("points", points)
    if Zraw.ndim != 2 or Zraw.shape[0] == 0 or Zraw.shape[1] == 0:
        raise ValueError(f"points must have shape (P, D) with P, D >= 1, got {Zraw.shape}")
    P, D = Zraw.shape
    if isinstance(n_components, bool) or int(n_components) != n_components:
        raise TypeError(f"n_components must be an integer, got {n_components!r}")
    K = int(n_components)
    if not 1 <= K <= P:
        raise ValueError(f"n_components must lie in [1, {P}] (the number of points), got {K}")
    if isinstance(max_iterations, bool) or int(max_iterations) != max_iterations:
        raise TypeError(f"max_iterations must be an integer, got {max_iterations!r}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    tol = check_positive("tol", tol)
    reg = check_positive("regularization", regularization)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    centre = Zraw.mean(0)
    scale = Zraw.std(0)
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(Zraw).max())), scale, 1.0)
    Z = (Zraw - centre) / scale

    seeds = _kmeans_pp(Z, K, rng)
    nearest = ((Z[:, None, :] - seeds[None]) ** 2).sum(-1).argmin(1)
    R = np.zeros((P, K))
    R[np.arange(P), nearest] = 1.0
    R = R[:, R.sum(0) > 0]  # duplicate seeds own no point
    history: list[float] = []
    converged = False
    iterations = 0
    w, mu, S = _m_step(Z, R, reg)
    for _ in range(int(max_iterations)):
        iterations += 1
        L, ok = _cholesky(S)
        if not ok.all():  # cannot happen with reg > 0 unless overflow
            raise np.linalg.LinAlgError("a mixture covariance lost positive definiteness in EM")
        lj = np.log(w) + _log_normal(Z, mu, L)
        lse = logsumexp(lj, axis=1)
        history.append(float(lse.mean()))
        R = np.exp(lj - lse[:, None])
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol:
            converged = True
            break
        keep = R.sum(0) > 1e-8 * P
        if not keep.all():
            logger.info("fit_gmm: dropping %d empty component(s)", int((~keep).sum()))
            R = R[:, keep]
            R /= R.sum(1, keepdims=True)
        w, mu, S = _m_step(Z, R, reg)
    if not converged:  # the last M-step moved the parameters: score them
        L, _ = _cholesky(S)
        history.append(float(logsumexp(np.log(w) + _log_normal(Z, mu, L), axis=1).mean()))
    log_scale = float(np.log(scale).sum())
    return GaussianMixture(
        weights=w,
        means=centre + mu * scale,
        covariances=S * scale[None, :, None] * scale[None, None, :],
        log_likelihood=history[-1] - log_scale,
        iterations=iterations,
        converged=converged,
        history=tuple(h - log_scale for h in history),
    )


def select_gmm(
    points: ArrayLike,
    max_components: int,
    *,
    seed: int | np.random.Generator = 0,
    max_iterations: int = 100,
    tol: float = 1e-6,
    regularization: float = 1e-6,
) -> GaussianMixture:
    r"""Fit mixtures with :math:`K = 1, \dots, K_{\max}` components and keep the lowest BIC.

    .. math::

        \hat K = \arg\min_{K \le K_{\max}} \Big( -2 \sum_i \log p_K(z_i) + p_K \log P \Big),

    with :math:`p_K` the number of free parameters (Schwarz 1978). Every
    candidate is fitted by :func:`fit_gmm` with a generator spawned from
    ``seed``, so the selection is deterministic. Candidates stop once the BIC
    has risen twice in a row, or when ``K`` exceeds the number of points.

    Parameters
    ----------
    points : array_like, shape (P, D)
    max_components : int
        :math:`K_{\max} \ge 1`.
    seed, max_iterations, tol, regularization
        As in :func:`fit_gmm`.

    Returns
    -------
    GaussianMixture
    """
    Z = as_float_array("points", points)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"points must have shape (P, D) with P >= 1, got {Z.shape}")
    if isinstance(max_components, bool) or int(max_components) != max_components:
        raise TypeError(f"max_components must be an integer, got {max_components!r}")
    if max_components < 1:
        raise ValueError(f"max_components must be >= 1, got {max_components}")
    root = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    streams = root.spawn(int(max_components))
    best: GaussianMixture | None = None
    best_bic = np.inf
    previous = np.inf
    rises = 0
    for K in range(1, min(int(max_components), Z.shape[0]) + 1):
        gmm = fit_gmm(
            Z,
            K,
            seed=streams[K - 1],
            max_iterations=max_iterations,
            tol=tol,
            regularization=regularization,
        )
        bic = gmm.bic(Z)
        if bic < best_bic:
            best, best_bic = gmm, bic
        rises = rises + 1 if bic > previous else 0
        previous = bic
        if rises >= 2:
            break
    if best is None:  # unreachable: K = 1 is always fitted
        raise RuntimeError("select_gmm fitted no mixture")
    logger.debug("select_gmm: %d component(s), BIC %.6g", best.n_components, best_bic)
    return best
