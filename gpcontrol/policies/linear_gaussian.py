r"""Time-varying linear-Gaussian controllers, the local policies of guided policy search.

A controller over a horizon :math:`T` is

.. math::

    p(u \mid x, t) = \mathcal N\big(u;\ K_t x + k_t,\ C_t\big), \qquad t = 0, \dots, T-1,

with gains :math:`K_t \in \mathbb R^{m \times n}`, offsets :math:`k_t` and
positive definite covariances :math:`C_t`. Its log-density is

.. math::

    \log p(u \mid x, t) = -\tfrac12 r^\top C_t^{-1} r - \tfrac12 \log\det C_t
        - \tfrac m2 \log 2\pi, \qquad r = u - K_t x - k_t .

For two such controllers and a Gaussian state :math:`x \sim \mathcal
N(\mu, \Sigma)`, the expected KL divergence has the closed form (with
:math:`\Delta K = K^{\mathrm{old}}_t - K_t`, :math:`\Delta k = k^{\mathrm{old}}_t - k_t`,
:math:`P = (C^{\mathrm{old}}_t)^{-1}`)

.. math::

    \mathbb E_x\, \mathrm{KL}\big(p(\cdot\mid x) \,\|\, p^{\mathrm{old}}(\cdot\mid x)\big)
    = \tfrac12\Big[\operatorname{tr}(P C_t) - m + \log\frac{\det C^{\mathrm{old}}_t}{\det C_t}
      + (\Delta K \mu + \Delta k)^\top P (\Delta K \mu + \Delta k)
      + \operatorname{tr}(\Delta K^\top P\, \Delta K\, \Sigma)\Big],

the Gaussian KL of Kullback & Leibler averaged over :math:`x` (the mean
difference is affine in :math:`x`, so its quadratic form has the expectation
above). Guided policy search bounds the sum of these terms over time
(Levine & Abbeel, NIPS 2014; Montgomery & Levine, NIPS 2016).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import cho_solve, solve_triangular

from gpcontrol._validation import as_batch, as_float_array, check_positive, readonly_copy

__all__ = ["LinearGaussianPolicy", "expected_kl"]

Array = NDArray[np.float64]


def _generator(rng: int | np.random.Generator | None) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"rng must be an int seed or a numpy.random.Generator, got {rng!r}")
    return np.random.default_rng(int(rng))


def _covariances(name: str, value: ArrayLike, T: int, m: int) -> Array:
    """A variance, variances ``(m,)``, an ``(m, m)`` or a ``(T, m, m)`` covariance as (T, m, m)."""
    arr = as_float_array(name, value)
    if arr.ndim == 0:
        check_positive(name, float(arr))
        return np.broadcast_to(float(arr) * np.eye(m), (T, m, m)).copy()
    if arr.shape == (m,):
        if (arr <= 0).any():
            raise ValueError(f"{name} given as variances must be positive, got {arr.tolist()}")
        return np.broadcast_to(np.diag(arr), (T, m, m)).copy()
    if arr.shape == (m, m):
        return np.broadcast_to(arr, (T, m, m)).copy()
    if arr.shape == (T, m, m):
        return arr
    raise ValueError(
        f"{name} must be a variance, shape ({m},), ({m}, {m}) or ({T}, {m}, {m}), got {arr.shape}"
    )


class LinearGaussianPolicy:
    r"""Time-varying linear-Gaussian controller :math:`u \sim \mathcal N(K_t x + k_t, C_t)`.

    The arrays are stored read-only; the object is immutable except for the
    random generator used by :meth:`__call__`.

    Parameters
    ----------
    K : array_like, shape (T, m, n)
        Feedback gains (``u = K x + k``).
    k : array_like, shape (T, m)
        Offsets.
    cov : array_like, shape (T, m, m)
        Symmetric positive definite covariances :math:`C_t`.
    rng : int or numpy.random.Generator, optional
        Generator (or seed) that :meth:`__call__` samples with.
    deterministic : bool
        If True, :meth:`__call__` returns the mean :math:`K_t x + k_t`.

    Attributes
    ----------
    T, n, m : int
    chol : ndarray, shape (T, m, m)
        Lower Cholesky factors of :math:`C_t`.
    precision : ndarray, shape (T, m, m)
        :math:`C_t^{-1}`.
    logdet : ndarray, shape (T,)
        :math:`\log\det C_t`.

    Examples
    --------
    >>> import numpy as np
    >>> pi = LinearGaussianPolicy.from_gains(-np.ones((1, 2)), np.zeros(1), 0.1, T=5, rng=0)
    >>> pi([1.0, 0.0], 0).shape
    (1,)
    """

    def __init__(
        self,
        K: ArrayLike,
        k: ArrayLike,
        cov: ArrayLike,
        *,
        rng: int | np.random.Generator | None = None,
        deterministic: bool = False,
    ) -> None:
        K_ = as_float_array("K", K)
        if K_.ndim != 3 or 0 in K_.shape:
            raise ValueError(f"K must have shape (T, m, n) with T, m, n >= 1, got {K_.shape}")
        T, m, n = K_.shape
        k_ = as_float_array("k", k)
        if k_.shape != (T, m):
            raise ValueError(f"k must have shape ({T}, {m}), got {k_.shape}")
        C = as_float_array("cov", cov)
        if C.shape != (T, m, m):
            raise ValueError(f"cov must have shape ({T}, {m}, {m}), got {C.shape}")
        scale = np.maximum(1.0, np.abs(C).max(axis=(1, 2)))
        asym = np.abs(C - np.swapaxes(C, 1, 2)).max(axis=(1, 2))
        if (asym > 1e-8 * scale).any():
            t = int(np.argmax(asym / scale))
            raise ValueError(f"cov must be symmetric; cov[{t}] is not")
        C = 0.5 * (C + np.swapaxes(C, 1, 2))
        L = np.empty_like(C)
        for t in range(T):
            try:
                L[t] = np.linalg.cholesky(C[t])
            except np.linalg.LinAlgError:
                lam = np.linalg.eigvalsh(C[t])[0]
                raise ValueError(
                    f"cov must be positive definite; cov[{t}] has smallest eigenvalue {lam:.3e}"
                ) from None
        eye = np.eye(m)
        prec = np.stack([cho_solve((L[t], True), eye) for t in range(T)])
        self.K, self.k, self.cov = readonly_copy(K_), readonly_copy(k_), readonly_copy(C)
        self.chol = readonly_copy(L)
        self.precision = readonly_copy(0.5 * (prec + np.swapaxes(prec, 1, 2)))
        self.logdet = readonly_copy(2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1))
        self.T, self.m, self.n = int(T), int(m), int(n)
        self.rng = _generator(rng)
        self.deterministic = bool(deterministic)

    # -- constructors ------------------------------------------------------------
    @classmethod
    def from_gains(
        cls,
        K: ArrayLike,
        k: ArrayLike,
        cov: ArrayLike,
        *,
        T: int | None = None,
        rng: int | np.random.Generator | None = None,
        deterministic: bool = False,
    ) -> LinearGaussianPolicy:
        r"""Controller from constant or time-varying gains and a chosen covariance.

        Parameters
        ----------
        K : array_like, shape (m, n) or (T, m, n)
        k : array_like, shape (m,) or (T, m)
        cov : float or array_like, shape (m,), (m, m) or (T, m, m)
            A variance :math:`\sigma^2` (:math:`C_t = \sigma^2 I`), per-control
            variances, or full covariances.
        T : int, optional
            Horizon; required when ``K`` and ``k`` are constant.
        rng, deterministic
            As in the constructor.
        """
        K_ = as_float_array("K", K)
        k_ = as_float_array("k", k)
        horizon = None if T is None else _horizon(T)
        if K_.ndim == 3:
            if horizon is not None and K_.shape[0] != horizon:
                raise ValueError(f"K has {K_.shape[0]} steps, T = {horizon}")
            horizon = K_.shape[0]
        elif K_.ndim != 2:
            raise ValueError(f"K must have shape (m, n) or (T, m, n), got {K_.shape}")
        if horizon is None and k_.ndim == 2:
            horizon = k_.shape[0]
        if horizon is None:
            raise ValueError("T is required when K and k are time-invariant")
        m, n = K_.shape[-2:]
        if k_.shape not in ((m,), (horizon, m)):
            raise ValueError(f"k must have shape ({m},) or ({horizon}, {m}), got {k_.shape}")
        return cls(
            np.broadcast_to(K_, (horizon, m, n)),
            np.broadcast_to(k_, (horizon, m)),
            _covariances("cov", cov, horizon, m),
            rng=rng,
            deterministic=deterministic,
        )

    @classmethod
    def from_lqr(
        cls,
        result: Any,
        cov: ArrayLike,
        *,
        T: int | None = None,
        rng: int | np.random.Generator | None = None,
        deterministic: bool = False,
    ) -> LinearGaussianPolicy:
        r"""Controller around an LQR/iLQR solution: :math:`\mathcal N(K_t x + k_t, C_t)`.

        Parameters
        ----------
        result : object with ``K`` and optionally ``k``
            A :class:`~gpcontrol.solvers.FiniteHorizonLQRResult`,
            :class:`~gpcontrol.solvers.TVLQRResult` or
            :class:`~gpcontrol.solvers.ILQRResult` (``K (T, m, n)``, ``k (T, m)``),
            or an infinite-horizon :class:`~gpcontrol.solvers.LQRResult`
            (``K (m, n)``, no offset; then ``T`` is required).
        cov : float or array_like
            As in :meth:`from_gains`.
        T : int, optional
        rng, deterministic
            As in the constructor.
        """
        K = getattr(result, "K", None)
        if K is None:
            raise TypeError(f"result must have a gain attribute K, got {type(result).__name__}")
        K_ = as_float_array("result.K", K)
        k = getattr(result, "k", None)
        k_ = np.zeros(K_.shape[:-1]) if k is None else as_float_array("result.k", k)
        return cls.from_gains(K_, k_, cov, T=T, rng=rng, deterministic=deterministic)

    @classmethod
    def from_pd(
        cls,
        Kp: ArrayLike,
        Kd: ArrayLike,
        cov: ArrayLike,
        *,
        T: int,
        q_target: ArrayLike | None = None,
        u_offset: ArrayLike | None = None,
        rng: int | np.random.Generator | None = None,
        deterministic: bool = False,
    ) -> LinearGaussianPolicy:
        r"""PD controller on a state :math:`x = [q, \dot q]`, with Gaussian exploration.

        .. math::

            u = K_p (q^* - q) - K_d \dot q + u_0 + \varepsilon,\qquad
            \varepsilon \sim \mathcal N(0, C),

        i.e. :math:`K = [-K_p,\ -K_d]`, :math:`k = K_p q^* + u_0`. Needs a
        fully actuated system (``m`` controls for ``m`` positions, ``n = 2m``).

        Parameters
        ----------
        Kp, Kd : float or array_like, shape (m, m) or (m,)
            Gains (scalars and vectors become diagonal matrices).
        cov : float or array_like
            As in :meth:`from_gains`.
        T : int
        q_target : array_like, shape (m,), optional
            :math:`q^*` (default 0).
        u_offset : array_like, shape (m,), optional
            :math:`u_0`, e.g. gravity compensation (default 0).
        rng, deterministic
            As in the constructor.
        """
        Kp_ = _gain_matrix("Kp", Kp)
        m = Kp_.shape[0]
        Kd_ = _gain_matrix("Kd", Kd, m)
        q = np.zeros(m) if q_target is None else as_batch("q_target", q_target, m)
        u0 = np.zeros(m) if u_offset is None else as_batch("u_offset", u_offset, m)
        if q.shape != (m,) or u0.shape != (m,):
            raise ValueError(f"q_target and u_offset must have shape ({m},)")
        K = np.hstack([-Kp_, -Kd_])
        return cls.from_gains(
            K, Kp_ @ q + u0, cov, T=_horizon(T), rng=rng, deterministic=deterministic
        )

    def seeded(self, rng: int | np.random.Generator) -> LinearGaussianPolicy:
        """The same controller, sampling in :meth:`__call__` from ``rng`` (a seed or generator)."""
        out = self._copy()
        out.rng = _generator(rng)
        out.deterministic = False
        return out

    def as_deterministic(self) -> LinearGaussianPolicy:
        """The same controller whose :meth:`__call__` returns the mean :math:`K_t x + k_t`."""
        out = self._copy()
        out.deterministic = True
        return out

    def _copy(self) -> LinearGaussianPolicy:
        out = object.__new__(LinearGaussianPolicy)
        out.__dict__.update(self.__dict__)
        return out

    # -- evaluation ---------------------------------------------------------------
    def _time(self, t: Any) -> int:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or not 0 <= int(t) < self.T:
            raise ValueError(f"t must be an integer in [0, {self.T}), got {t!r}")
        return int(t)

    def mean(self, x: ArrayLike, t: int) -> Array:
        r""":math:`K_t x + k_t` for ``x (..., n)``; returns ``(..., m)``."""
        ti = self._time(t)
        xa = as_batch("x", x, self.n)
        return xa @ self.K[ti].T + self.k[ti]

    def sample(self, x: ArrayLike, t: int, rng: int | np.random.Generator) -> Array:
        r"""Draw :math:`u \sim \mathcal N(K_t x + k_t, C_t)` for ``x (..., n)``; shape ``(..., m)``.

        Parameters
        ----------
        x : array_like, shape (..., n)
        t : int
        rng : int or numpy.random.Generator
        """
        gen = _generator(rng)
        if gen is None:
            raise TypeError("rng must be an int seed or a numpy.random.Generator")
        mu = self.mean(x, t)
        return mu + gen.standard_normal(mu.shape) @ self.chol[int(t)].T

    def __call__(self, x: ArrayLike, t: int) -> Array:
        """Control for a rollout: the mean if deterministic, else a sample from the bound generator.

        Raises
        ------
        ValueError
            Stochastic controller without a generator (build it with ``rng=``,
            call :meth:`seeded`, or use :meth:`as_deterministic`).
        """
        if self.deterministic:
            return self.mean(x, t)
        if self.rng is None:
            raise ValueError(
                "this LinearGaussianPolicy has no random generator: pass rng=seed, call "
                ".seeded(seed), or use .as_deterministic()"
            )
        return self.sample(x, t, self.rng)

    def log_prob(self, x: ArrayLike, u: ArrayLike, t: int | None = None) -> Array:
        r"""Log-density :math:`\log \mathcal N(u;\ K_t x + k_t,\ C_t)`.

        Parameters
        ----------
        x : array_like, shape (..., n), or (..., T, n) when ``t`` is None
        u : array_like, shape (..., m), or (..., T, m) when ``t`` is None
        t : int, optional
            Time step; if None, the second-to-last axis of ``x`` and ``u``
            runs over all ``T`` steps (a trajectory's states ``X[:-1]``).

        Returns
        -------
        ndarray, shape (...) or (..., T)
        """
        xa = as_batch("x", x, self.n)
        ua = as_batch("u", u, self.m)
        const = 0.5 * self.m * np.log(2.0 * np.pi)
        if t is not None:
            ti = self._time(t)
            r = ua - (xa @ self.K[ti].T + self.k[ti])
            z = solve_triangular(self.chol[ti], r.reshape(-1, self.m).T, lower=True).T
            quad = (z**2).sum(-1).reshape(r.shape[:-1])
            return -0.5 * quad - 0.5 * self.logdet[ti] - const
        if xa.ndim < 2 or ua.ndim < 2 or xa.shape[-2] != self.T or ua.shape[-2] != self.T:
            raise ValueError(
                f"without t, x and u must have shapes (..., {self.T}, {self.n}) and "
                f"(..., {self.T}, {self.m}); got {xa.shape} and {ua.shape}"
            )
        r = ua - (np.einsum("tij,...tj->...ti", self.K, xa) + self.k)
        quad = np.einsum("...ti,tij,...tj->...t", r, self.precision, r)
        return -0.5 * quad - 0.5 * self.logdet - const

    def __repr__(self) -> str:
        mode = "deterministic" if self.deterministic else ("seeded" if self.rng else "unseeded")
        return f"LinearGaussianPolicy(T={self.T}, n={self.n}, m={self.m}, {mode})"


def _horizon(T: Any) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    return int(T)


def _gain_matrix(name: str, value: ArrayLike, m: int | None = None) -> Array:
    arr = as_float_array(name, value)
    if arr.ndim == 0:
        arr = arr * np.eye(1 if m is None else m)
    elif arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (m is not None and arr.shape[0] != m):
        want = "(m, m)" if m is None else f"({m}, {m})"
        raise ValueError(
            f"{name} must be a scalar, a vector or a matrix of shape {want}, got {arr.shape}"
        )
    return arr


def expected_kl(
    new: LinearGaussianPolicy,
    old: LinearGaussianPolicy,
    state_mean: ArrayLike,
    state_cov: ArrayLike,
) -> Array:
    r"""Per-step expected KL divergence :math:`\mathbb E_{x_t} \mathrm{KL}(p \,\|\, \bar p)`.

    For :math:`x_t \sim \mathcal N(\mu_t, \Sigma_t)` (the state marginals
    under the new controller, as in the trust region of LQR-FLM, Levine &
    Abbeel, NIPS 2014):

    .. math::

        \mathrm{KL}_t = \tfrac12\Big[\operatorname{tr}(P C_t) - m
          + \log\det C^{\mathrm{old}}_t - \log\det C_t
          + (\Delta K \mu_t + \Delta k)^\top P (\Delta K \mu_t + \Delta k)
          + \operatorname{tr}(\Delta K^\top P\, \Delta K\, \Sigma_t)\Big],

    :math:`P = (C^{\mathrm{old}}_t)^{-1}`, :math:`\Delta K = K^{\mathrm{old}}_t - K_t`,
    :math:`\Delta k = k^{\mathrm{old}}_t - k_t`.

    Parameters
    ----------
    new, old : LinearGaussianPolicy
        Same ``T``, ``n``, ``m``.
    state_mean : array_like, shape (T, n)
    state_cov : array_like, shape (T, n, n)
        Symmetric positive semi-definite.

    Returns
    -------
    ndarray, shape (T,)
        Non-negative (clipped at 0 against rounding).
    """
    for name, pol in (("new", new), ("old", old)):
        if not isinstance(pol, LinearGaussianPolicy):
            raise TypeError(f"{name} must be a LinearGaussianPolicy, got {type(pol).__name__}")
    if (new.T, new.n, new.m) != (old.T, old.n, old.m):
        raise ValueError(
            f"new and old differ in (T, n, m): {(new.T, new.n, new.m)} vs {(old.T, old.n, old.m)}"
        )
    T, n, m = new.T, new.n, new.m
    mu = as_float_array("state_mean", state_mean)
    S = as_float_array("state_cov", state_cov)
    if mu.shape != (T, n):
        raise ValueError(f"state_mean must have shape ({T}, {n}), got {mu.shape}")
    if S.shape != (T, n, n):
        raise ValueError(f"state_cov must have shape ({T}, {n}, {n}), got {S.shape}")
    P = old.precision
    dK = old.K - new.K
    dm = np.einsum("tij,tj->ti", dK, mu) + (old.k - new.k)
    PdK = P @ dK
    kl = 0.5 * (
        np.einsum("tij,tji->t", P, new.cov)
        - m
        + old.logdet
        - new.logdet
        + np.einsum("ti,tij,tj->t", dm, P, dm)
        + np.einsum("tji,tjk,tki->t", dK, PdK, S)  # tr(dK' P dK S)
    )
    return np.maximum(kl, 0.0)
