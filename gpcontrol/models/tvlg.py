r"""Time-varying linear-Gaussian dynamics fitted from a few trajectories with a mixture prior.

The model is one affine-Gaussian transition per time step,

.. math::

    p(x_{t+1} \mid x_t, u_t) = \mathcal N\big(F_t \xi_t + f_t,\ \Sigma_t\big),
    \qquad \xi_t = \begin{bmatrix} x_t \\ u_t \end{bmatrix},\quad t = 0, \dots, T-1,

with :math:`F_t \in \mathbb R^{n \times (n+m)}`. It is fitted from :math:`N`
trajectories by estimating, for every step, the joint Gaussian of
:math:`z = (\xi_t, x_{t+1}) \in \mathbb R^{2n+m}` and conditioning it on
:math:`\xi_t`:

.. math::

    F_t = \hat\Sigma_{y\xi} \hat\Sigma_{\xi\xi}^{-1},\qquad
    f_t = \bar y - F_t \bar\xi,\qquad
    \Sigma_t = \hat\Sigma_{yy} - F_t \hat\Sigma_{\xi\xi} F_t^\top,
    \qquad y = x_{t+1}.

With :math:`N < n + m + 1` samples per step the sample covariance
:math:`\hat\Sigma_{\xi\xi}` is singular and plain regression is undetermined.
Guided policy search (Levine & Abbeel, NIPS 2014; Levine, Finn, Darrell &
Abbeel, JMLR 17(39), 2016, appendix on dynamics fitting) regularises it with a
normal-inverse-Wishart prior whose scale comes from a Gaussian mixture fitted
to the tuples :math:`z` of *all* steps pooled together
(:class:`DynamicsPrior`). At step :math:`t` the mixture is collapsed to one
Gaussian :math:`\mathcal N(\mu_0, \Sigma_0)` by the average responsibilities
of that step's tuples (:meth:`~gpcontrol.models.gmm.GaussianMixture.local_moments`),
and the covariance estimate counts it as :math:`n_0` pseudo-observations:

.. math::

    \hat\Sigma = \frac{S_t + n_0 \Sigma_0
        + \frac{N n_0}{N + n_0} (\bar z - \mu_0)(\bar z - \mu_0)^\top}{N + n_0},
    \qquad S_t = \sum_{i=1}^{N} (z_i - \bar z)(z_i - \bar z)^\top .

This is the posterior scale matrix of a normal-inverse-Wishart prior with
:math:`\kappa_0 = \nu_0 = n_0` and :math:`\Psi_0 = n_0\Sigma_0`, normalised by
the total count :math:`N + n_0`. The mean stays the sample mean
:math:`\bar z`: the step's operating point is well determined by :math:`N`
samples, while the pooled prior mean is not specific to the step. Along
directions the samples span, the data dominate as :math:`N` grows (the prior's
weight is :math:`n_0 / (N + n_0)`); along directions they miss, the prior's
regression fills in. A small ridge on :math:`\hat\Sigma_{\xi\xi}` guards the
solve.

:class:`TVLGDynamics` is frozen and implements the
:class:`~gpcontrol.solvers.Dynamics` protocol with the time-indexed
convention of :class:`~gpcontrol.solvers.TimeVaryingLinearDynamics`:
``step(x, u)`` advances row ``t`` of a ``(T, ..., n)`` batch by step ``t``
(the mean transition), ``step_at(t, x, u)`` one state at a chosen time.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import cho_solve, solve_triangular

from gpcontrol._validation import as_batch, as_float_array, check_positive, readonly_copy
from gpcontrol.models.gmm import GaussianMixture, fit_gmm, select_gmm

if TYPE_CHECKING:
    from gpcontrol.solvers.dynamics import TimeVaryingLinearDynamics

__all__ = [
    "TVLGDynamics",
    "DynamicsPrior",
    "fit_tvlg",
    "transition_tuples",
    "default_components",
    "conditional_gaussian_fit",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------- the model
@dataclasses.dataclass(frozen=True, eq=False)
class TVLGDynamics:
    r"""Time-varying linear-Gaussian dynamics :math:`\mathcal N(F_t [x_t; u_t] + f_t, \Sigma_t)`.

    Satisfies the :class:`~gpcontrol.solvers.Dynamics` protocol; like
    :class:`~gpcontrol.solvers.TimeVaryingLinearDynamics` its methods are
    *time-indexed*: :meth:`step` advances row ``t`` of a ``(T, ..., n)`` batch
    by step ``t``, :meth:`step_at` advances a state at a chosen ``t``. Both
    return the mean :math:`F_t \xi + f_t`; :meth:`sample_at` adds the noise.

    Parameters
    ----------
    F : array_like, shape (T, n, n + m)
        :math:`F_t = [A_t\ B_t]`.
    f : array_like, shape (T, n)
        Offsets.
    Sigma : array_like, shape (T, n, n)
        Transition noise covariances, symmetric positive semi-definite (a
        fitted model's are positive definite).
    n : int
        State dimension (taken from ``F``; not a constructor argument).

    Attributes
    ----------
    T, n, m : int
        Horizon, state and control dimensions.
    """

    F: Array
    f: Array
    Sigma: Array
    T: int = dataclasses.field(init=False)
    n: int = dataclasses.field(init=False)
    m: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        F = as_float_array("F", self.F)
        if F.ndim != 3 or F.shape[0] < 1 or F.shape[2] <= F.shape[1]:
            raise ValueError(f"F must have shape (T, n, n + m) with T, m >= 1, got {F.shape}")
        T, n = F.shape[:2]
        m = F.shape[2] - n
        f = as_float_array("f", self.f)
        if f.shape != (T, n):
            raise ValueError(f"f must have shape ({T}, {n}), got {f.shape}")
        S = as_float_array("Sigma", self.Sigma)
        if S.shape != (T, n, n):
            raise ValueError(f"Sigma must have shape ({T}, {n}, {n}), got {S.shape}")
        scale = max(1.0, float(np.abs(S).max()))
        if np.abs(S - np.swapaxes(S, 1, 2)).max() > 1e-8 * scale:
            raise ValueError("Sigma must be symmetric at every step")
        S = 0.5 * (S + np.swapaxes(S, 1, 2))
        lam = np.linalg.eigvalsh(S)[:, 0]
        if (lam < -1e-10 * scale).any():
            t = int(np.argmin(lam))
            raise ValueError(
                f"Sigma must be positive semi-definite; Sigma[{t}] has eigenvalue {lam[t]:.3e}"
            )
        setattr_ = object.__setattr__
        setattr_(self, "F", readonly_copy(F))
        setattr_(self, "f", readonly_copy(f))
        setattr_(self, "Sigma", readonly_copy(S))
        setattr_(self, "T", int(T))
        setattr_(self, "n", int(n))
        setattr_(self, "m", int(m))

    # -- views ---------------------------------------------------------------------
    @property
    def A(self) -> Array:  # noqa: N802 - math name
        """:math:`A_t = F_t[:, :n]`, shape ``(T, n, n)``."""
        return self.F[:, :, : self.n]

    @property
    def B(self) -> Array:  # noqa: N802 - math name
        """:math:`B_t = F_t[:, n:]`, shape ``(T, n, m)``."""
        return self.F[:, :, self.n :]

    @property
    def c(self) -> Array:
        """The offsets :math:`f_t` under the name the LQR solvers use, ``(T, n)``."""
        return self.f

    def as_linear(self) -> TimeVaryingLinearDynamics:
        """The mean dynamics as a :class:`~gpcontrol.solvers.TimeVaryingLinearDynamics`."""
        # Imported here: gpcontrol.solvers imports this module (LQR-FLM).
        from gpcontrol.solvers.dynamics import TimeVaryingLinearDynamics

        return TimeVaryingLinearDynamics(self.A, self.B, self.f)

    @functools.cached_property
    def _mean(self) -> TimeVaryingLinearDynamics:
        """The mean map, built once; the Dynamics protocol below delegates to it."""
        return self.as_linear()

    # -- Dynamics protocol --------------------------------------------------------

    def step(self, x: ArrayLike, u: ArrayLike) -> Array:
        r"""Mean transition of row ``t`` by step ``t``: :math:`F_t [x_t; u_t] + f_t`.

        Parameters
        ----------
        x : array_like, shape (T, ..., n)
        u : array_like, shape (T, ..., m)

        Returns
        -------
        ndarray, shape (T, ..., n)
        """
        return self._mean.step(x, u)

    def _at(self, t: int, x: ArrayLike, u: ArrayLike) -> tuple[int, Array, Array]:
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < self.T:
            raise ValueError(f"t must be an integer in [0, {self.T}), got {t!r}")
        return int(t), as_batch("x", x, self.n), as_batch("u", u, self.m)

    def step_at(self, t: int, x: ArrayLike, u: ArrayLike) -> Array:
        r"""Mean :math:`F_t [x; u] + f_t` for ``x (..., n)``, ``u (..., m)`` at step ``t``."""
        t, xa, ua = self._at(t, x, u)
        return self._mean.step_at(t, xa, ua)

    def sample_at(
        self, t: int, x: ArrayLike, u: ArrayLike, rng: np.random.Generator | int
    ) -> Array:
        r"""Draw :math:`x_{t+1} \sim \mathcal N(F_t [x; u] + f_t, \Sigma_t)`, batched ``(..., n)``.

        Parameters
        ----------
        t : int
        x : array_like, shape (..., n)
        u : array_like, shape (..., m)
        rng : numpy.random.Generator or int
            Generator (or seed) for the noise.
        """
        t, xa, ua = self._at(t, x, u)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        mean = self._mean.step_at(t, xa, ua)
        lam, V = np.linalg.eigh(self.Sigma[t])  # works for singular (PSD) noise too
        root = V * np.sqrt(np.clip(lam, 0.0, None))
        return mean + gen.standard_normal(mean.shape) @ root.T

    def linearize(self, X: ArrayLike, U: ArrayLike) -> tuple[Array, Array]:
        """Per-step Jacobians ``A (T, n, n)``, ``B (T, n, m)``; ``X (T, n)``, ``U (T, m)`` fix T."""
        return self._mean.linearize(X, U)

    def log_prob(self, X: ArrayLike, U: ArrayLike) -> Array:
        r"""Transition log-densities :math:`\log p(x_{t+1} \mid x_t, u_t)` along trajectories.

        Parameters
        ----------
        X : array_like, shape (..., T + 1, n)
        U : array_like, shape (..., T, m)

        Returns
        -------
        ndarray, shape (..., T)

        Raises
        ------
        numpy.linalg.LinAlgError
            Some :math:`\Sigma_t` is singular.
        """
        Xa, Ua = _check_trajectories(X, U, self.n, self.m, batched=False)
        if Ua.shape[-2] != self.T:
            raise ValueError(f"U must have {self.T} steps, got {Ua.shape[-2]}")
        mean = np.einsum("tij,...tj->...ti", self.A, Xa[..., :-1, :])
        mean += np.einsum("tij,...tj->...ti", self.B, Ua) + self.f
        r = Xa[..., 1:, :] - mean
        L = np.linalg.cholesky(self.Sigma)  # raises LinAlgError if singular
        sol = np.empty_like(r)
        for t in range(self.T):
            sol[..., t, :] = solve_triangular(L[t], r[..., t, :].T, lower=True).T
        half_logdet = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1)
        return -0.5 * (sol**2).sum(-1) - half_logdet - 0.5 * self.n * np.log(2.0 * np.pi)

    def __repr__(self) -> str:
        return f"TVLGDynamics(T={self.T}, n={self.n}, m={self.m})"


# ---------------------------------------------------------------------------- data
def _check_trajectories(
    X: ArrayLike, U: ArrayLike, n: int | None, m: int | None, *, batched: bool = True
) -> tuple[Array, Array]:
    Xa = as_float_array("X", X)
    Ua = as_float_array("U", U)
    want = "(N, T + 1, n)" if batched else "(..., T + 1, n)"
    if (Xa.ndim != 3 if batched else Xa.ndim < 2) or (n is not None and Xa.shape[-1] != n):
        raise ValueError(f"X must have shape {want}, got {Xa.shape}")
    if (
        Ua.ndim != Xa.ndim
        or Ua.shape[:-2] != Xa.shape[:-2]
        or Ua.shape[-2] != Xa.shape[-2] - 1
        or Ua.shape[-2] < 1
        or (m is not None and Ua.shape[-1] != m)
        or Ua.shape[-1] < 1
    ):
        lead = ", ".join(str(s) for s in Xa.shape[:-2])
        lead = f"{lead}, " if lead else ""
        raise ValueError(
            f"U must have shape ({lead}{Xa.shape[-2] - 1}, m) (one control fewer than states), "
            f"got {Ua.shape}"
        )
    return Xa, Ua


def transition_tuples(X: ArrayLike, U: ArrayLike) -> Array:
    r"""Stack :math:`z = (x_t, u_t, x_{t+1})` for every sample and step.

    Parameters
    ----------
    X : array_like, shape (N, T + 1, n)
    U : array_like, shape (N, T, m)

    Returns
    -------
    ndarray, shape (N, T, 2n + m)
    """
    Xa, Ua = _check_trajectories(X, U, None, None)
    return np.concatenate([Xa[:, :-1], Ua, Xa[:, 1:]], axis=-1)


# ---------------------------------------------------------------------------- the prior
def default_components(points: int, *, per_component: int = 40, max_components: int = 20) -> int:
    """Mixture size :math:`\\min(K_{\\max}, \\max(1, \\lfloor P / P_k \\rfloor))` for P points."""
    return int(min(max_components, max(1, points // per_component)))


@dataclasses.dataclass(frozen=True, eq=False)
class DynamicsPrior:
    r"""Gaussian mixture over transition tuples :math:`z = (x_t, u_t, x_{t+1})`, the TVLG prior.

    Attributes
    ----------
    mixture : GaussianMixture
        Over :math:`\mathbb R^{2n+m}`.
    n, m : int
        State and control dimensions.
    """

    mixture: GaussianMixture
    n: int
    m: int

    def __post_init__(self) -> None:
        if not isinstance(self.mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(self.mixture).__name__}")
        if self.n < 1 or self.m < 1 or self.mixture.dim != 2 * self.n + self.m:
            raise ValueError(
                f"mixture dimension {self.mixture.dim} must equal 2n + m = {2 * self.n + self.m}"
            )

    @classmethod
    def fit(
        cls,
        X: ArrayLike,
        U: ArrayLike,
        *,
        n_components: int | None = None,
        seed: int | np.random.Generator = 0,
        max_iterations: int = 100,
        regularization: float = 1e-6,
    ) -> DynamicsPrior:
        r"""Fit the mixture to all tuples of the given trajectories, pooled across time.

        Parameters
        ----------
        X : array_like, shape (N, T + 1, n)
            States of any number of trajectories (e.g. the last few iterations'
            samples; only the tuples matter, not their time index).
        U : array_like, shape (N, T, m)
        n_components : int, optional
            Fixed mixture size. By default it is chosen by BIC
            (:func:`~gpcontrol.models.gmm.select_gmm`) among
            :math:`1, \dots,` :func:`default_components` of the number of
            tuples (one component per 40 tuples, at most 20). A mixture whose
            components cut through one linear regime biases the slopes of
            the regression inside each component (the cut is partly on
            :math:`x_{t+1}`), so extra components are only worth it when the
            data really have several regimes; BIC makes that call.
        seed, max_iterations, regularization
            As in :func:`~gpcontrol.models.gmm.fit_gmm`.

        Returns
        -------
        DynamicsPrior
        """
        Xa, Ua = _check_trajectories(X, U, None, None)
        Z = np.concatenate([Xa[:, :-1], Ua, Xa[:, 1:]], axis=-1)
        flat = Z.reshape(-1, Z.shape[-1])
        reg = regularization
        if n_components is None:
            K = default_components(flat.shape[0])
            gmm = select_gmm(flat, K, seed=seed, max_iterations=max_iterations, regularization=reg)
        else:
            gmm = fit_gmm(
                flat, n_components, seed=seed, max_iterations=max_iterations, regularization=reg
            )
        return cls(gmm, int(Xa.shape[-1]), int(Ua.shape[-1]))

    def evaluate(self, points: ArrayLike) -> tuple[Array, Array]:
        r"""Prior mean and covariance :math:`(\mu_0, \Sigma_0)` for the tuples ``points (P, 2n+m)``.

        The mixture collapsed by the points' average responsibilities
        (:meth:`~gpcontrol.models.gmm.GaussianMixture.local_moments`).
        """
        return self.mixture.local_moments(points)


# ---------------------------------------------------------------------------- the fit
def conditional_gaussian_fit(
    Z: ArrayLike,
    p: int,
    *,
    prior: GaussianMixture | None = None,
    strength: float = 1.0,
    regularization: float = 0.0,
    require_pd: bool = True,
) -> tuple[Array, Array, Array]:
    r"""Per-step linear-Gaussian regression of ``Z[..., p:]`` on ``Z[..., :p]``, with a prior.

    For each step :math:`t`, the joint covariance of :math:`z = (a, b)`,
    :math:`a \in \mathbb R^p`, is estimated as

    .. math::

        \hat\Sigma = \frac{S_t + n_0 \Sigma_0
            + \frac{N n_0}{N + n_0} (\bar z - \mu_0)(\bar z - \mu_0)^\top}{N + n_0}
            + \lambda \begin{bmatrix} I_p & 0 \\ 0 & 0 \end{bmatrix}

    (:math:`(\mu_0, \Sigma_0)` the prior mixture collapsed at the step's
    points; :math:`\hat\Sigma = S_t / N` without a prior) and conditioned:
    :math:`b \mid a \sim \mathcal N(G_t a + g_t, \Sigma_{b|a,t})` with
    :math:`G_t = \hat\Sigma_{ba}\hat\Sigma_{aa}^{-1}`,
    :math:`g_t = \bar b - G_t \bar a`,
    :math:`\Sigma_{b|a} = \hat\Sigma_{bb} - G_t \hat\Sigma_{aa} G_t^\top`.
    Used for the dynamics (:func:`fit_tvlg`, :math:`a = (x_t, u_t)`,
    :math:`b = x_{t+1}`) and for linearising a global policy in guided
    policy search (:math:`a = x_t`, :math:`b = u_t`).

    Parameters
    ----------
    Z : array_like, shape (N, T, p + q)
        Joint samples per step.
    p : int
        Number of leading input coordinates.
    prior : GaussianMixture, optional
        Over :math:`\mathbb R^{p+q}`.
    strength : float
        :math:`n_0 > 0`.
    regularization : float
        :math:`\lambda \ge 0`.
    require_pd : bool
        Raise if a conditional covariance is not positive definite (else
        only positive semi-definiteness is enforced, by clipping
        eigenvalues at zero).

    Returns
    -------
    G : ndarray, shape (T, q, p)
    g : ndarray, shape (T, q)
    Sigma : ndarray, shape (T, q, q)

    Raises
    ------
    numpy.linalg.LinAlgError
        :math:`\hat\Sigma_{aa}` (or, with ``require_pd``, :math:`\Sigma_{b|a}`)
        is not positive definite at some step; the message names the step.
    """
    Za = as_float_array("Z", Z)
    if Za.ndim != 3 or not 1 <= p < Za.shape[-1]:
        raise ValueError(
            f"Z must have shape (N, T, p + q) with 1 <= p = {p} < p + q, got {Za.shape}"
        )
    if prior is not None and prior.dim != Za.shape[-1]:
        raise ValueError(f"prior has dimension {prior.dim}, Z has {Za.shape[-1]}")
    N, T, D = Za.shape
    q = D - p
    n0 = check_positive("strength", strength)
    G = np.empty((T, q, p))
    g = np.empty((T, q))
    Sig = np.empty((T, q, q))
    for t in range(T):
        zt = Za[:, t]
        zbar = zt.mean(0)
        d = zt - zbar
        S = d.T @ d
        if prior is None:
            cov = S / N
        else:
            mu0, Sigma0 = prior.local_moments(zt)
            e = zbar - mu0
            cov = (S + n0 * Sigma0 + (N * n0 / (N + n0)) * np.outer(e, e)) / (N + n0)
        cov = 0.5 * (cov + cov.T)
        Saa = cov[:p, :p] + regularization * np.eye(p)
        try:
            L = np.linalg.cholesky(Saa)
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"the input covariance at step t = {t} is not positive definite; "
                "use a prior or a larger regularization"
            ) from exc
        Gt = cho_solve((L, True), cov[:p, p:]).T
        W = solve_triangular(L, cov[:p, p:], lower=True)
        St = cov[p:, p:] - W.T @ W
        St = 0.5 * (St + St.T)
        if require_pd:
            try:
                np.linalg.cholesky(St)
            except np.linalg.LinAlgError as exc:
                raise np.linalg.LinAlgError(
                    f"the fitted conditional covariance at step t = {t} is not positive "
                    "definite (noise-free or degenerate data); use a prior"
                ) from exc
        else:
            lam, V = np.linalg.eigh(St)
            St = (V * np.clip(lam, 0.0, None)) @ V.T
        G[t] = Gt
        g[t] = zbar[p:] - Gt @ zbar[:p]
        Sig[t] = St
    return G, g, Sig


def fit_tvlg(
    X: ArrayLike,
    U: ArrayLike,
    *,
    prior: DynamicsPrior | Literal["gmm"] | None = "gmm",
    strength: float = 1.0,
    n_components: int | None = None,
    seed: int | np.random.Generator = 0,
    regularization: float = 1e-6,
) -> TVLGDynamics:
    r"""Fit :math:`p(x_{t+1} \mid x_t, u_t) = \mathcal N(F_t \xi_t + f_t, \Sigma_t)` per step.

    Estimates the joint covariance of :math:`z = (x_t, u_t, x_{t+1})` at every
    step with the normal-inverse-Wishart prior of the module docstring,

    .. math::

        \hat\Sigma = \frac{S_t + n_0 \Sigma_0
            + \frac{N n_0}{N + n_0} (\bar z - \mu_0)(\bar z - \mu_0)^\top}{N + n_0}
            + \lambda \begin{bmatrix} I_{n+m} & 0 \\ 0 & 0 \end{bmatrix},

    and conditions it on :math:`\xi = (x, u)`:
    :math:`F_t = \hat\Sigma_{y\xi}\hat\Sigma_{\xi\xi}^{-1}`,
    :math:`f_t = \bar y - F_t \bar \xi`,
    :math:`\Sigma_t = \hat\Sigma_{yy} - F_t \hat\Sigma_{\xi\xi} F_t^\top`
    (Levine & Abbeel, NIPS 2014; Levine et al., JMLR 2016). Without a prior
    (``prior=None``) it is the maximum-likelihood regression
    :math:`\hat\Sigma = S_t / N`, which needs :math:`N \ge n + m + 1`.

    Parameters
    ----------
    X : array_like, shape (N, T + 1, n)
        States of ``N`` trajectories.
    U : array_like, shape (N, T, m)
        Their controls.
    prior : DynamicsPrior, "gmm" or None
        ``"gmm"`` (default) fits :meth:`DynamicsPrior.fit` to these
        trajectories; pass a :class:`DynamicsPrior` fitted to a larger pool
        (e.g. earlier iterations), or None for no prior.
    strength : float
        :math:`n_0 > 0`, the prior's weight in pseudo-observations.
    n_components : int, optional
        Mixture size when ``prior="gmm"`` (see :meth:`DynamicsPrior.fit`).
    seed : int or numpy.random.Generator
        Seed of the mixture fit when ``prior="gmm"``; the result is a
        deterministic function of the data and the seed.
    regularization : float
        Ridge :math:`\lambda \ge 0` on :math:`\hat\Sigma_{\xi\xi}`.

    Returns
    -------
    TVLGDynamics
        With positive definite :math:`\Sigma_t`.

    Raises
    ------
    ValueError
        Bad shapes or values; fewer than ``n + m + 1`` samples without a
        prior; a prior of the wrong dimension.
    numpy.linalg.LinAlgError
        :math:`\hat\Sigma_{\xi\xi}` or :math:`\Sigma_t` is not positive
        definite at some step (message names the step), e.g. noise-free data
        without a prior.
    """
    Xa, Ua = _check_trajectories(X, U, None, None)
    N, n, m = Xa.shape[0], Xa.shape[-1], Ua.shape[-1]
    n0 = check_positive("strength", strength)
    lam = float(regularization)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"regularization must be a non-negative number, got {regularization!r}")
    if isinstance(prior, str):
        if prior != "gmm":
            raise ValueError(f"prior must be a DynamicsPrior, 'gmm' or None, got {prior!r}")
        prior_obj: DynamicsPrior | None = DynamicsPrior.fit(
            Xa, Ua, n_components=n_components, seed=seed
        )
    elif prior is None:
        prior_obj = None
        if N < n + m + 1:
            raise ValueError(
                f"too few samples for unregularised regression: need N >= n + m + 1 = "
                f"{n + m + 1} trajectories, got {N}; pass prior='gmm'"
            )
    elif isinstance(prior, DynamicsPrior):
        if (prior.n, prior.m) != (n, m):
            raise ValueError(f"prior is for (n, m) = ({prior.n}, {prior.m}), data have ({n}, {m})")
        prior_obj = prior
    else:
        raise TypeError(f"prior must be a DynamicsPrior, 'gmm' or None, got {type(prior).__name__}")

    Z = np.concatenate([Xa[:, :-1], Ua, Xa[:, 1:]], axis=-1)  # (N, T, D)
    mixture = None if prior_obj is None else prior_obj.mixture
    F, f, Sig = conditional_gaussian_fit(
        Z, n + m, prior=mixture, strength=n0, regularization=lam, require_pd=True
    )
    return TVLGDynamics(F, f, Sig)
