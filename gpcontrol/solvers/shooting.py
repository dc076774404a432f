r"""Sampling-based planners over open-loop action sequences.

All three planners search the same problem, over a horizon :math:`H`,

.. math::

    \min_{U = (u_0, \dots, u_{H-1})} J(U) = \sum_{t=0}^{H-1} \ell(x_t, u_t) + \ell_T(x_H),
    \quad x_{t+1} = F(x_t, u_t),\ x_0 \text{ given},\quad
    \underline u \le u_t \le \overline u,

without derivatives: they draw :math:`N` sequences :math:`U^{(i)}`, roll all of
them out together (:func:`batch_rollout`: one call of ``dynamics.step`` on an
``(N, n)`` batch and one of ``cost.l`` per time step), and use the costs
:math:`J^{(i)}`:

* **random shooting** keeps the best of :math:`N` sequences drawn uniformly
  in the control box (Nagabandi et al., ICRA 2018, Sec. IV-C), or drawn as
  clipped colored-noise perturbations of the initial guess (see below);
* the **cross-entropy method** (Rubinstein 1999; Botev et al. 2013; as a
  planner in Chua et al., *PETS*, NeurIPS 2018) draws
  :math:`\tilde u^{(i)}_t = \mu_t + \sigma_t \varepsilon^{(i)}_t`, evaluates
  the clipped :math:`U^{(i)} = \Pi(\tilde U^{(i)})`, and refits
  :math:`(\mu, \sigma)` to the draws :math:`\tilde U` of the :math:`K`
  lowest-cost samples (the elites),

  .. math::

      \mu \leftarrow \alpha\mu + (1-\alpha)\,\overline{\tilde U}_{\text{elite}},\qquad
      \sigma \leftarrow \alpha\sigma + (1-\alpha)\,\operatorname{std}(\tilde U_{\text{elite}}).

  Refitting to the unclipped draws lets :math:`\mu_t` move past a bound
  where the optimum saturates (the mean of clipped samples always sits
  inside the box, which biases the refit away from bang-bang optima).
  Optional improvements of Pinneri et al. ("Sample-efficient cross-entropy
  method for real-time planning", *iCEM*, CoRL 2020): temporally correlated
  noise :math:`\varepsilon` with power spectrum :math:`\propto f^{-\beta}`
  (colored noise: :math:`\beta = 0` white, larger :math:`\beta` smoother,
  lower-frequency sequences), a fraction of the elites carried over to the
  next iteration, and (ours) a larger first population for exploration;

* **MPPI** (model predictive path integral control; Williams et al.,
  "Information theoretic MPC for model-based reinforcement learning", ICRA
  2017, Eqs. (25)-(26) with the control cost inside :math:`\ell`) perturbs the
  current sequence, :math:`U^{(i)} = \Pi(U + \varepsilon^{(i)})`,
  :math:`\varepsilon^{(i)}_t \sim \mathcal N(0, \operatorname{diag}\sigma^2)`,
  and averages with exponential weights,

  .. math::

      w_i = \frac{\exp(-(J^{(i)} - J_{\min})/\lambda)}{\sum_j \exp(-(J^{(j)} - J_{\min})/\lambda)},
      \qquad U \leftarrow \textstyle\sum_i w_i U^{(i)} .

Samples are clipped to the box :math:`\Pi` before they are rolled out, so
every evaluated sequence is feasible (and an average of them is too). A
rollout that leaves the finite numbers gets cost :math:`+\infty` and never
wins. Randomness comes only from the ``seed`` argument.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array, check_bounds
from gpcontrol.solvers.dynamics import check_dynamics, check_start

__all__ = [
    "RandomShootingOptions",
    "CEMOptions",
    "MPPIOptions",
    "ShootingResult",
    "batch_rollout",
    "random_shooting",
    "cem",
    "mppi",
]

Array = NDArray[np.float64]
Seed = int | np.random.Generator | None


# ---------------------------------------------------------------------------- options
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _std_option(name: str, value: Any) -> None:
    if value is None:
        return
    arr = as_float_array(name, value)
    if arr.ndim > 1 or (arr <= 0).any():
        raise ValueError(
            f"{name} must be a positive scalar or a vector of shape (m,), got {value!r}"
        )


@dataclasses.dataclass(frozen=True)
class RandomShootingOptions:
    """Knobs of :func:`random_shooting`.

    Attributes
    ----------
    num_samples : int
        Sequences drawn (the initial guess is evaluated as well).
    noise_exponent : float, optional
        ``None`` (default): every :math:`u_t` uniform in the box. A number
        :math:`\beta \\ge 0`: Gaussian perturbations of the initial guess,
        :math:`U^{(i)} = \\Pi(U_{\text{init}} + \\sigma\varepsilon^{(i)})`, with
        colored noise :math:`\varepsilon` of power spectrum :math:`\\propto f^{-\beta}`
        along time (as in :class:`CEMOptions`); smooth sequences reach far
        better plans than i.i.d. ones on swing-up tasks.
    noise_std : float or array_like, shape (m,), optional
        :math:`\\sigma` of the Gaussian perturbations; default a quarter of
        the box width.
    """

    num_samples: int = 1000
    noise_exponent: float | None = None
    noise_std: float | tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _positive_int("num_samples", self.num_samples)
        if self.noise_exponent is not None and not (
            math.isfinite(self.noise_exponent) and self.noise_exponent >= 0
        ):
            raise ValueError(
                f"noise_exponent must be None or a finite number >= 0, got {self.noise_exponent!r}"
            )
        _std_option("noise_std", self.noise_std)


@dataclasses.dataclass(frozen=True)
class CEMOptions:
    r"""Knobs of :func:`cem`.

    Attributes
    ----------
    num_samples : int
        :math:`N`, sequences per iteration (the current mean is one of them).
    num_elites : int
        :math:`K \le N`, lowest-cost samples the distribution is refitted to.
    iterations : int
        Refits.
    init_std : float or array_like, shape (m,), optional
        Initial :math:`\sigma`; default a quarter of the box width (required if
        the box is unbounded).
    min_std : float
        Stop early once every :math:`\sigma_t` is below this.
    smoothing : float
        :math:`\alpha \in [0, 1)`, weight of the old distribution in a refit
        (momentum).
    noise_exponent : float
        :math:`\beta \ge 0` of the colored sampling noise, power spectrum
        :math:`\propto f^{-\beta}` along time (iCEM, Sec. 3.1): 0 is white
        noise; 2 to 4 give the smooth, low-frequency sequences that pumping
        and swinging tasks need.
    keep_elites : float
        Fraction in [0, 1] of the elites (best first) added unchanged to the
        next iteration's samples (iCEM, Sec. 3.2).
    initial_samples : int, optional
        Samples of the first iteration (default ``num_samples``): a wide first
        population before the distribution narrows.
    """

    num_samples: int = 500
    num_elites: int = 50
    iterations: int = 10
    init_std: float | tuple[float, ...] | None = None
    min_std: float = 1e-3
    smoothing: float = 0.0
    noise_exponent: float = 0.0
    keep_elites: float = 0.0
    initial_samples: int | None = None

    def __post_init__(self) -> None:
        _positive_int("num_samples", self.num_samples)
        _positive_int("num_elites", self.num_elites)
        _positive_int("iterations", self.iterations)
        if self.num_elites > self.num_samples:
            raise ValueError(
                "num_elites must not exceed num_samples, got "
                f"{self.num_elites} > {self.num_samples}"
            )
        _std_option("init_std", self.init_std)
        if not (math.isfinite(self.min_std) and self.min_std >= 0):
            raise ValueError(f"min_std must be a finite number >= 0, got {self.min_std!r}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {self.smoothing!r}")
        if not (math.isfinite(self.noise_exponent) and self.noise_exponent >= 0):
            raise ValueError(
                f"noise_exponent must be a finite number >= 0, got {self.noise_exponent!r}"
            )
        if not 0.0 <= self.keep_elites <= 1.0:
            raise ValueError(f"keep_elites must lie in [0, 1], got {self.keep_elites!r}")
        if self.initial_samples is not None:
            _positive_int("initial_samples", self.initial_samples)
            if self.initial_samples < self.num_elites:
                raise ValueError(
                    "initial_samples must be at least num_elites, got "
                    f"{self.initial_samples} < {self.num_elites}"
                )


@dataclasses.dataclass(frozen=True)
class MPPIOptions:
    r"""Knobs of :func:`mppi`.

    Attributes
    ----------
    num_samples : int
        :math:`N`, perturbed sequences per iteration (the unperturbed one is
        one of them).
    iterations : int
        Weighted updates of the sequence.
    noise_std : float or array_like, shape (m,), optional
        :math:`\sigma` of the perturbations; default a quarter of the box
        width (required if the box is unbounded).
    temperature : float
        :math:`\lambda > 0`, in units of the cost: small values approach
        picking the best sample, large ones plain averaging.
    """

    num_samples: int = 500
    iterations: int = 5
    noise_std: float | tuple[float, ...] | None = None
    temperature: float = 1.0

    def __post_init__(self) -> None:
        _positive_int("num_samples", self.num_samples)
        _positive_int("iterations", self.iterations)
        _std_option("noise_std", self.noise_std)
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(
                f"temperature must be a positive finite number, got {self.temperature!r}"
            )


# ---------------------------------------------------------------------------- result
@dataclasses.dataclass(frozen=True)
class ShootingResult:
    r"""Result of a sampling planner (arrays read-only).

    Attributes
    ----------
    U : ndarray, shape (H, m)
        Planned controls (inside the box).
    X : ndarray, shape (H + 1, n)
        Their rollout from ``x0``.
    cost : float
        :math:`J(U)`.
    cost_history : tuple of float
        :math:`J` of the initial guess, then of the returned candidate after
        every iteration (best so far for random shooting and CEM, the current
        sequence for MPPI).
    iterations : int
    evaluations : int
        Sequences rolled out in total.
    method : str
        ``"random_shooting"``, ``"cem"`` or ``"mppi"``.
    seconds : float
        Wall-clock time of the solve.
    """

    U: Array
    X: Array
    cost: float
    cost_history: tuple[float, ...]
    iterations: int
    evaluations: int
    method: str
    seconds: float

    def __post_init__(self) -> None:
        for arr in (self.U, self.X):
            arr.flags.writeable = False


# ---------------------------------------------------------------------------- primitives
def batch_rollout(dynamics: Any, cost: Any, x0: ArrayLike, U: ArrayLike) -> tuple[Array, Array]:
    r"""Roll out ``N`` control sequences at once and return their states and costs.

    .. math::

        x^{(i)}_0 = x_0,\quad x^{(i)}_{t+1} = F(x^{(i)}_t, u^{(i)}_t),\quad
        J^{(i)} = \sum_{t<H} \ell(x^{(i)}_t, u^{(i)}_t) + \ell_T(x^{(i)}_H),

    with one ``dynamics.step`` (``step_at(t, ...)`` for a time-varying model)
    and one ``cost.l`` call per time step on the whole ``(N, n)`` batch. A
    sequence whose state stops being finite is frozen at its last finite state
    and gets :math:`J^{(i)} = +\infty`.

    Parameters
    ----------
    dynamics : Dynamics
        ``n``, ``m`` and a batched ``step(x (N, n), u (N, m))``.
    cost : Cost
        Batched ``l(x, u)`` and ``l_T(x)``.
    x0 : array_like, shape (n,)
    U : array_like, shape (N, H, m)

    Returns
    -------
    X : ndarray, shape (N, H + 1, n)
    J : ndarray, shape (N,)
        Costs, ``inf`` for diverged rollouts.
    """
    n, m = int(dynamics.n), int(dynamics.m)
    x = as_batch("x0", x0, n)
    if x.ndim != 1:
        raise ValueError(f"x0 must have shape ({n},), got {x.shape}")
    Ua = as_float_array("U", U)
    if Ua.ndim != 3 or Ua.shape[2] != m:
        raise ValueError(f"U must have shape (N, H, {m}), got {Ua.shape}")
    return _batch_rollout(dynamics, cost, x, Ua)


def _batch_rollout(dynamics: Any, cost: Any, x0: Array, U: Array) -> tuple[Array, Array]:
    N, H, _ = U.shape
    X = np.empty((N, H + 1, x0.shape[0]))
    X[:, 0] = x0
    J = np.zeros(N)
    alive = np.ones(N, dtype=bool)
    step_at = getattr(dynamics, "step_at", None)
    with np.errstate(all="ignore"):
        for t in range(H):
            J += np.asarray(cost.l(X[:, t], U[:, t]), dtype=np.float64)
            if step_at is not None:
                nxt = np.asarray(step_at(t, X[:, t], U[:, t]), dtype=np.float64)
            else:
                nxt = np.asarray(dynamics.step(X[:, t], U[:, t]), dtype=np.float64)
            bad = ~np.isfinite(nxt).all(axis=1)
            if bad.any():
                nxt[bad] = X[bad, t]
                alive &= ~bad
            X[:, t + 1] = nxt
        J += np.asarray(cost.l_T(X[:, H]), dtype=np.float64)
    J[~alive | ~np.isfinite(J)] = np.inf
    return X, J


def _colored_noise_basis(H: int, beta: float) -> Array:
    r"""Linear map from i.i.d. standard normals to stationary colored noise of length ``H``.

    .. math::

        \varepsilon_t = \frac{1}{c}\,\operatorname{irfft}\bigl(f_k^{-\beta/2}(a_k + i b_k)\bigr)_t,
        \qquad a_k, b_k \sim \mathcal N(0, 1),\quad f_k = \max(k / H, 1 / H),

    (the real-only constant and Nyquist terms get twice the variance, so that
    :math:`\beta = 0` is exactly white)

    the spectral method of Timmer & Koenig (*Astron. Astrophys.* 300, 1995)
    as used by iCEM (Pinneri et al., CoRL 2020), with :math:`c` chosen so that
    :math:`\operatorname{Var}\varepsilon_t = 1` (the process is circulant, so
    the variance is the same at every :math:`t`).

    Returns
    -------
    L : ndarray, shape (H, 2 * (H // 2 + 1))
        ``eps = L @ z`` with ``z`` standard normal.
    """
    nf = H // 2 + 1
    f = np.maximum(np.fft.rfftfreq(H), 1.0 / H)
    amp = f ** (-beta / 2.0)
    # irfft drops the imaginary part of the constant (and, H even, the Nyquist)
    # term: doubling their variance makes beta = 0 exactly white.
    amp[0] *= math.sqrt(2.0)
    if H % 2 == 0:
        amp[-1] *= math.sqrt(2.0)
    basis = np.zeros((2 * nf, nf), dtype=np.complex128)
    basis[:nf] = np.diag(amp)
    basis[nf:] = 1j * np.diag(amp)
    L = np.fft.irfft(basis, n=H, axis=1).T  # (H, 2 nf)
    return L / np.linalg.norm(L[0])


def _noise(
    rng: np.random.Generator, beta: float, N: int, H: int, m: int, L: Array | None = None
) -> Array:
    """``(N, H, m)`` standard normals, colored along time when ``beta > 0`` (basis ``L``)."""
    if beta == 0:
        return rng.standard_normal((N, H, m))
    if L is None:
        L = _colored_noise_basis(H, beta)
    return np.einsum("hk,nkm->nhm", L, rng.standard_normal((N, L.shape[1], m)))


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {seed!r}")


def _setup(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike,
    u_low: ArrayLike | None,
    u_high: ArrayLike | None,
) -> tuple[Array, Array, Array, Array]:
    check_dynamics(dynamics, ("n", "m", "step"))
    for attr in ("l", "l_T"):
        if not callable(getattr(cost, attr, None)):
            raise TypeError(f"cost must provide {attr}(...) (see gpcontrol.costs.Cost)")
    n, m, x = check_start(dynamics, cost, x0)
    U = as_float_array("U_init", U_init)
    if U.ndim == 1 and m == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[1] != m or U.shape[0] < 1:
        raise ValueError(f"U_init must have shape (H, {m}) with H >= 1, got {U.shape}")
    lo = getattr(dynamics, "u_low", None) if u_low is None else u_low
    hi = getattr(dynamics, "u_high", None) if u_high is None else u_high
    lo = np.full(m, -np.inf) if lo is None else np.broadcast_to(lo, (m,))
    hi = np.full(m, np.inf) if hi is None else np.broadcast_to(hi, (m,))
    lo_, hi_ = check_bounds("u_low", lo, "u_high", hi, m)
    return x, np.clip(U, lo_, hi_), lo_, hi_


def _std(name: str, value: Any, lo: Array, hi: Array) -> Array:
    m = lo.shape[0]
    if value is None:
        width = hi - lo
        if not np.isfinite(width).all():
            raise ValueError(f"{name} is required when the control box is unbounded")
        return width / 4.0
    arr = np.broadcast_to(as_float_array(name, value), (m,)).astype(np.float64)
    return arr


def _result(
    dynamics: Any,
    cost: Any,
    x0: Array,
    U: Array,
    history: list[float],
    iterations: int,
    evaluations: int,
    method: str,
    t0: float,
) -> ShootingResult:
    X, J = _batch_rollout(dynamics, cost, x0, U[None])
    if not math.isfinite(J[0]):
        raise FloatingPointError(f"{method}: every evaluated sequence diverged (non-finite cost)")
    return ShootingResult(
        U=U.copy(),
        X=X[0],
        cost=float(J[0]),
        cost_history=tuple(history),
        iterations=iterations,
        evaluations=evaluations,
        method=method,
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------- planners
def random_shooting(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike,
    *,
    u_low: ArrayLike | None = None,
    u_high: ArrayLike | None = None,
    options: RandomShootingOptions | None = None,
    seed: Seed = None,
) -> ShootingResult:
    r"""Best of ``num_samples`` control sequences drawn in the box.

    .. math::

        U^\star = \arg\min_{i} J(U^{(i)}),\qquad
        u^{(i)}_t \sim \mathcal U[\underline u, \overline u]\ \text{i.i.d.}
        \ \text{or}\ U^{(i)} = \Pi(U_{\text{init}} + \sigma\varepsilon^{(i)}),\quad
        U^{(0)} = U_{\text{init}},

    evaluated in one :func:`batch_rollout` (Nagabandi et al., "Neural network
    dynamics for model-based deep RL with model-free fine-tuning", ICRA 2018;
    the colored-noise draws follow iCEM, Pinneri et al., CoRL 2020).

    Parameters
    ----------
    dynamics : Dynamics
        ``n``, ``m``, batched ``step``; its ``u_low``/``u_high`` are the
        default box.
    cost : Cost
    x0 : array_like, shape (n,)
    U_init : array_like, shape (H, m)
        Sets the horizon and is a candidate itself (e.g. a shifted plan in MPC).
    u_low, u_high : array_like, shape (m,), optional
        Control box; must be finite here.
    options : RandomShootingOptions, optional
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ShootingResult
    """
    t0 = time.perf_counter()
    opts = options or RandomShootingOptions()
    if not isinstance(opts, RandomShootingOptions):
        raise TypeError(f"options must be a RandomShootingOptions, got {type(opts).__name__}")
    x, U0, lo, hi = _setup(dynamics, cost, x0, U_init, u_low, u_high)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError("random_shooting needs a finite control box (u_low, u_high)")
    rng = _rng(seed)
    H, m = U0.shape
    N = opts.num_samples
    samples = np.empty((N + 1, H, m))
    samples[0] = U0
    if opts.noise_exponent is None:
        samples[1:] = lo + (hi - lo) * rng.random((N, H, m))
    else:
        sigma = _std("noise_std", opts.noise_std, lo, hi)
        samples[1:] = np.clip(U0 + sigma * _noise(rng, opts.noise_exponent, N, H, m), lo, hi)
    _, J = _batch_rollout(dynamics, cost, x, samples)
    best = int(np.argmin(J))
    history = [float(J[0]), float(J[best])]
    return _result(dynamics, cost, x, samples[best], history, 1, N + 1, "random_shooting", t0)


def cem(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike,
    *,
    u_low: ArrayLike | None = None,
    u_high: ArrayLike | None = None,
    options: CEMOptions | None = None,
    seed: Seed = None,
) -> ShootingResult:
    r"""Cross-entropy method over control sequences, with box clipping.

    .. math::

        \tilde U^{(i)} = \mu + \sigma \odot \varepsilon^{(i)},\quad
        U^{(i)} = \Pi(\tilde U^{(i)}),\quad
        \mathcal E = \text{the } K \text{ lowest } J(U^{(i)}),\quad
        \mu \leftarrow \alpha\mu + (1-\alpha)\operatorname{mean}_{\mathcal E} \tilde U,\quad
        \sigma \leftarrow \alpha\sigma + (1-\alpha)\operatorname{std}_{\mathcal E} \tilde U

    (Rubinstein, *Methodol. Comput. Appl. Probab.* 1(2), 1999; as an MPC
    planner: Chua et al., NeurIPS 2018, Sec. 5), with :math:`(\mu, \sigma)`
    refitted to the elites' unclipped draws, and optionally colored noise
    :math:`\varepsilon`, kept elites and a larger first population (iCEM,
    Pinneri et al., CoRL 2020; see :class:`CEMOptions`). The returned sequence
    is the best one evaluated; sample 0 of every iteration is the (clipped)
    current mean.

    Parameters
    ----------
    dynamics : Dynamics
    cost : Cost
    x0 : array_like, shape (n,)
    U_init : array_like, shape (H, m)
        Initial mean :math:`\mu` (sets the horizon).
    u_low, u_high : array_like, shape (m,), optional
        Control box (default: the dynamics' ``u_low``/``u_high``, else unbounded).
    options : CEMOptions, optional
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ShootingResult
    """
    t0 = time.perf_counter()
    opts = options or CEMOptions()
    if not isinstance(opts, CEMOptions):
        raise TypeError(f"options must be a CEMOptions, got {type(opts).__name__}")
    x, mu, lo, hi = _setup(dynamics, cost, x0, U_init, u_low, u_high)
    rng = _rng(seed)
    H, m = mu.shape
    sigma = np.broadcast_to(_std("init_std", opts.init_std, lo, hi), (H, m)).copy()
    N, K, alpha = opts.num_samples, opts.num_elites, opts.smoothing
    beta = opts.noise_exponent
    L = _colored_noise_basis(H, beta) if beta > 0 else None
    n_keep = int(opts.keep_elites * K)
    kept = np.empty((0, H, m))
    best_U, best_J = mu.copy(), math.inf
    history: list[float] = []
    evaluations = 0
    iterations = 0
    for it in range(opts.iterations):
        n_draw = opts.initial_samples if it == 0 and opts.initial_samples else N
        eps = _noise(rng, beta, n_draw, H, m, L)
        draws = np.concatenate([mu + sigma * eps, kept])
        draws[0] = mu
        samples = np.clip(draws, lo, hi)
        _, J = _batch_rollout(dynamics, cost, x, samples)
        evaluations += draws.shape[0]
        iterations += 1
        if it == 0:
            history.append(float(J[0]))
        order = np.argsort(J, kind="stable")
        if J[order[0]] < best_J:
            best_J, best_U = float(J[order[0]]), samples[order[0]].copy()
        history.append(best_J)
        elite_idx = order[:K][np.isfinite(J[order[:K]])]
        if elite_idx.size == 0:
            raise FloatingPointError("cem: every sampled sequence diverged (non-finite cost)")
        elites = draws[elite_idx]  # refit to the unclipped draws (module docstring)
        kept = elites[:n_keep].copy()
        mu = alpha * mu + (1 - alpha) * elites.mean(axis=0)
        sigma = alpha * sigma + (1 - alpha) * elites.std(axis=0)
        if (sigma < opts.min_std).all():
            break
    return _result(dynamics, cost, x, best_U, history, iterations, evaluations, "cem", t0)


def mppi(
    dynamics: Any,
    cost: Any,
    x0: ArrayLike,
    U_init: ArrayLike,
    *,
    u_low: ArrayLike | None = None,
    u_high: ArrayLike | None = None,
    options: MPPIOptions | None = None,
    seed: Seed = None,
) -> ShootingResult:
    r"""Model predictive path integral control: exponentially weighted perturbations.

    .. math::

        U^{(i)} = \Pi(U + \varepsilon^{(i)}),\quad
        w_i \propto \exp\!\bigl(-(J(U^{(i)}) - \min_j J(U^{(j)}))/\lambda\bigr),\quad
        U \leftarrow \textstyle\sum_i w_i U^{(i)}

    (Williams et al., ICRA 2017, Eqs. (25)-(26), with the control penalty
    carried by :math:`\ell`). Sample 0 is the unperturbed sequence, so the
    update never ignores the current plan. The returned sequence is the last
    update (a convex combination of feasible sequences, clipped to the box
    against rounding).

    Parameters
    ----------
    dynamics : Dynamics
    cost : Cost
    x0 : array_like, shape (n,)
    U_init : array_like, shape (H, m)
        Initial sequence (sets the horizon).
    u_low, u_high : array_like, shape (m,), optional
        Control box (default: the dynamics' ``u_low``/``u_high``, else unbounded).
    options : MPPIOptions, optional
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ShootingResult
    """
    t0 = time.perf_counter()
    opts = options or MPPIOptions()
    if not isinstance(opts, MPPIOptions):
        raise TypeError(f"options must be a MPPIOptions, got {type(opts).__name__}")
    x, U, lo, hi = _setup(dynamics, cost, x0, U_init, u_low, u_high)
    rng = _rng(seed)
    H, m = U.shape
    sigma = _std("noise_std", opts.noise_std, lo, hi)
    N, lam = opts.num_samples, opts.temperature
    history: list[float] = []
    evaluations = 0
    for it in range(opts.iterations):
        samples = U + sigma * rng.standard_normal((N, H, m))
        samples[0] = U
        np.clip(samples, lo, hi, out=samples)
        _, J = _batch_rollout(dynamics, cost, x, samples)
        evaluations += N
        if it == 0:
            history.append(float(J[0]))
        finite = np.isfinite(J)
        if not finite.any():
            raise FloatingPointError("mppi: every sampled sequence diverged (non-finite cost)")
        w = np.zeros(N)
        w[finite] = np.exp(-(J[finite] - J[finite].min()) / lam)
        w /= w.sum()
        # A convex combination of in-box samples, clipped against rounding.
        U = np.clip(np.einsum("i,ihm->hm", w, samples), lo, hi)
        if it > 0:
            history.append(float(J[0]))
    res = _result(dynamics, cost, x, U, history, opts.iterations, evaluations + 1, "mppi", t0)
    return dataclasses.replace(res, cost_history=(*res.cost_history, res.cost))
