r"""Trajectory-centric model-based RL with local linear models (LQR-FLM without a network).

One time-varying linear-Gaussian controller
:math:`p(u_t \mid x_t) = \mathcal N(K_t x_t + k_t, C_t)` is improved on the
real system by repeating, until a success test passes or a rollout budget ends:

1. draw :math:`N` rollouts of :math:`p` on the system (start spread, process
   and measurement noise, control limits);
2. fit time-varying linear-Gaussian dynamics
   :math:`x_{t+1} \sim \mathcal N(F_t [x_t; u_t] + f_t, \Sigma_t)` by regression
   with a normal-inverse-Wishart prior from a Gaussian mixture over the
   :math:`(x, u, x')` tuples of the last few iterations
   (:func:`~gpcontrol.models.tvlg.fit_tvlg`);
3. take the KL-constrained step (:func:`~gpcontrol.solvers.lqr_flm.lqr_flm`)

   .. math::

       p \leftarrow \arg\min_{p'} \mathbb E_{p'}\Big[\sum_t \ell(x_t, u_t) + \ell_T(x_T)\Big]
       \quad\text{s.t.}\quad
       \sum_t \mathbb E_{p'(x_t)} \mathrm{KL}\big(p'(\cdot\mid x_t)\,\|\,p(\cdot\mid x_t)\big)
       \le \epsilon,

   with :math:`\ell` replaced by its second-order expansion averaged over the samples;
4. adapt :math:`\epsilon = \epsilon_0 T \nu` from the improvement the previous
   step predicted under its model and the improvement measured under the new
   model (:func:`~gpcontrol.solvers.lqr_flm.adapt_step_size`).

Levine & Abbeel (NIPS 2014), "Learning neural network policies with guided
policy search under unknown dynamics", section 3; Chebotar et al. (ICML 2017)
name this loop LQR-FLM. The cost only needs ``quadratize``; where its Hessian
is indefinite (e.g. PILCO's saturating cost far from the target) the KL term
:math:`\eta C_t^{-1}` keeps :math:`\tilde Q_{uu}` positive definite and the
:math:`\eta` search of :func:`lqr_flm` raises :math:`\eta` until it is.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array, check_int, check_nonnegative, check_positive
from gpcontrol.models.tvlg import DynamicsPrior, fit_tvlg
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy
from gpcontrol.solvers.lqr_flm import (
    LQRFLMOptions,
    QuadraticTrajectoryCost,
    adapt_step_size,
    forward_marginals,
    lqr_flm,
)

__all__ = ["LocalSearchOptions", "LocalSearchIteration", "LocalSearchResult", "local_search"]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class LocalSearchOptions:
    r"""Options of :func:`local_search`.

    Attributes
    ----------
    samples : int
        Rollouts per iteration :math:`N`.
    max_rollouts : int
        Rollout budget (success checks included).
    kl_step : float
        :math:`\epsilon_0`, KL per time step; :math:`\epsilon = \epsilon_0 T \nu`.
    step_range : (float, float)
        Clip of the multiplier :math:`\nu`.
    prior_iterations : int
        The mixture prior is fitted to the samples of this many recent iterations.
    x0_std, process_noise_std, measurement_noise_std : float
        Start spread, additive process noise and observation noise (the controller
        acts on, and the model is fitted to, the noisy observations).
    seed : int
    """

    samples: int = 5
    max_rollouts: int = 200
    kl_step: float = 1.0
    step_range: tuple[float, float] = (0.05, 20.0)
    prior_iterations: int = 3
    x0_std: float = 0.0
    process_noise_std: float = 0.0
    measurement_noise_std: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples", "max_rollouts", "prior_iterations"):
            check_int(name, getattr(self, name))
        check_positive("kl_step", self.kl_step)
        for name in ("x0_std", "process_noise_std", "measurement_noise_std"):
            check_nonnegative(name, getattr(self, name))
        lo, hi = self.step_range
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"step_range must satisfy 0 < low <= 1 <= high, got {self.step_range}")


@dataclasses.dataclass(frozen=True)
class LocalSearchIteration:
    """Record of one iteration (its samples, then the C-step).

    Attributes
    ----------
    rollouts : int
        Rollouts on the system so far (this iteration's included).
    interaction_seconds : float
        ``rollouts * T * dt``.
    sample_cost : float
        Mean true cost of this iteration's samples.
    success_rate : float
        Fraction of this iteration's samples that pass ``success`` (0 without one).
    mean_success : bool
        Whether one noise-free rollout of the controller's mean passes (not counted
        as interaction; a diagnostic).
    mean_cost : float
        True cost of that rollout.
    epsilon, kl : float
        KL bound and KL reached in the C-step.
    status : str
        C-step status.
    seconds : float
        Wall-clock of the iteration.
    """

    rollouts: int
    interaction_seconds: float
    sample_cost: float
    success_rate: float
    mean_success: bool
    mean_cost: float
    epsilon: float
    kl: float
    status: str
    seconds: float


@dataclasses.dataclass(frozen=True, eq=False)
class LocalSearchResult:
    """Result of :func:`local_search`.

    Attributes
    ----------
    controller : LinearGaussianPolicy
        The last controller.
    history : tuple of LocalSearchIteration
    solved : bool
        A sample rollout passed ``success``.
    first_success_rollouts : int or None
        Rollouts drawn up to and including the iteration of the first successful sample.
    first_success_seconds : float or None
        The same in interaction seconds.
    """

    controller: LinearGaussianPolicy
    history: tuple[LocalSearchIteration, ...]
    solved: bool
    first_success_rollouts: int | None
    first_success_seconds: float | None


def _rollouts(
    system: Any,
    controller: Any,
    x0: Array,
    T: int,
    N: int,
    opt: LocalSearchOptions,
    rng: np.random.Generator,
    *,
    noiseless: bool = False,
) -> tuple[Array, Array, Array]:
    """``N`` rollouts; returns observed states, applied controls and true states."""
    n, m = x0.shape[0], int(system.m)
    lo = np.broadcast_to(np.asarray(getattr(system, "u_low", -np.inf), dtype=float), (m,))
    hi = np.broadcast_to(np.asarray(getattr(system, "u_high", np.inf), dtype=float), (m,))
    Xt = np.empty((N, T + 1, n))
    Y = np.empty((N, T + 1, n))
    U = np.empty((N, T, m))
    sx0, sw, sv = (0.0, 0.0, 0.0) if noiseless else (
        opt.x0_std, opt.process_noise_std, opt.measurement_noise_std,
    )  # fmt: skip
    Xt[:, 0] = x0 + sx0 * rng.standard_normal((N, n))
    for t in range(T + 1):
        Y[:, t] = Xt[:, t] + sv * rng.standard_normal((N, n))
        if t == T:
            break
        U[:, t] = np.clip(controller(Y[:, t], t), lo, hi)
        Xt[:, t + 1] = system.step(Xt[:, t], U[:, t]) + sw * rng.standard_normal((N, n))
    if not (np.isfinite(Xt).all() and np.isfinite(U).all()):
        raise FloatingPointError("a rollout diverged (non-finite state or control)")
    return Y, U, Xt


def _costs(cost: Any, X: Array, U: Array) -> Array:
    return np.asarray(cost.l(X[:, :-1], U)).sum(-1) + np.asarray(cost.l_T(X[:, -1]))


def local_search(
    system: Any,
    cost: Any,
    x0: ArrayLike,
    T: int,
    init_controller: LinearGaussianPolicy,
    *,
    success: Callable[[Array], bool] | None = None,
    options: LocalSearchOptions | None = None,
    callback: Callable[[LocalSearchIteration], None] | None = None,
    report_cost: Any = None,
) -> LocalSearchResult:
    r"""Improve a linear-Gaussian controller on a system with local linear models (LQR-FLM).

    Per iteration: sample, fit TVLG dynamics with a mixture prior over the recent
    iterations' tuples, take the KL-constrained LQG step and adapt its size
    (module docstring):

    .. math::

        p_{i+1} = \arg\min_p \mathbb E_{p, \hat f_i}[J]
        \ \text{s.t.}\ \textstyle\sum_t \mathbb E\,\mathrm{KL}(p \,\|\, p_i) \le \epsilon_i,
        \qquad
        \nu_{i+1} = \nu_i\,
            \frac{\Delta_{\mathrm{pred}}}{2(\Delta_{\mathrm{pred}} - \Delta_{\mathrm{act}})}
        \ (\text{clipped}),

    Levine & Abbeel (NIPS 2014), eqs. (1)-(3) and section 3.1. Stops after the first
    iteration in which a sample passes ``success``, or when the next batch would
    exceed ``max_rollouts``.

    Parameters
    ----------
    system : System
        Batched ``step(x (N, n), u (N, m)) -> (N, n)``, ``n``, ``m``, ``dt``
        (and optionally ``u_low``, ``u_high``: controls are clipped).
    cost : Cost
        With ``l``, ``l_T`` and ``quadratize``/``quadratize_terminal``.
    x0 : array_like, shape (n,)
        Mean start state (spread ``options.x0_std``).
    T : int
        Horizon.
    init_controller : LinearGaussianPolicy
        :math:`p_0` with ``(T, n, m)`` matching.
    success : callable, optional
        ``success(X (T + 1, n)) -> bool`` on the *true* states of one rollout.
    options : LocalSearchOptions, optional
    callback : callable, optional
        Called with every iteration's record.
    report_cost : Cost, optional
        Cost recorded in the history (default ``cost``), e.g. PILCO's saturating cost
        while a quadratic ``cost`` drives the optimiser.

    Returns
    -------
    LocalSearchResult
    """
    opt = LocalSearchOptions() if options is None else options
    n, m = int(system.n), int(system.m)
    x0a = as_float_array("x0", x0)
    if x0a.shape != (n,):
        raise ValueError(f"x0 must have shape ({n},), got {x0a.shape}")
    check_int("T", T)
    if not isinstance(init_controller, LinearGaussianPolicy):
        raise TypeError(
            f"init_controller must be a LinearGaussianPolicy, got {type(init_controller).__name__}"
        )
    if (init_controller.T, init_controller.n, init_controller.m) != (T, n, m):
        raise ValueError(
            f"init_controller must have (T, n, m) = {(T, n, m)}, got "
            f"{(init_controller.T, init_controller.n, init_controller.m)}"
        )
    if int(cost.n) != n or int(cost.m) != m:
        raise ValueError(f"cost must have (n, m) = {(n, m)}, got {(cost.n, cost.m)}")
    if opt.samples > opt.max_rollouts:
        raise ValueError(f"options.samples ({opt.samples}) exceeds max_rollouts")
    dt = float(getattr(system, "dt", 1.0))
    rcost = cost if report_cost is None else report_cost
    rng = np.random.default_rng(opt.seed)
    x0_cov = (opt.x0_std**2 + opt.measurement_noise_std**2 + 1e-8) * np.eye(n)
    ctrl = init_controller
    nu = 1.0
    previous: tuple[Any, QuadraticTrajectoryCost, float] | None = None
    recent: list[tuple[Array, Array]] = []
    history: list[LocalSearchIteration] = []
    rollouts = 0
    first: int | None = None
    eta: float | None = None
    while rollouts + opt.samples <= opt.max_rollouts:
        t0 = time.perf_counter()
        it = len(history)
        Y, U, Xt = _rollouts(system, ctrl.seeded(rng), x0a, T, opt.samples, opt, rng)
        rollouts += opt.samples
        costs = _costs(rcost, Xt, U)
        ok = [bool(success(Xt[i])) for i in range(opt.samples)] if success is not None else []
        recent = [*recent, (Y, U)][-opt.prior_iterations :]
        Xp = np.concatenate([r[0] for r in recent])
        Up = np.concatenate([r[1] for r in recent])
        prior = DynamicsPrior.fit(Xp, Up, seed=opt.seed + it)
        dyn = fit_tvlg(Y, U, prior=prior)
        cmodel = QuadraticTrajectoryCost.from_cost(cost, Y, U)
        old_value = cmodel.expected(forward_marginals(dyn, ctrl, x0a, x0_cov))
        if previous is not None:
            pdyn, pcost, pold = previous
            pred = pold - pcost.expected(forward_marginals(pdyn, ctrl, x0a, x0_cov))
            nu = adapt_step_size(
                nu, pred, pold - old_value, epsilon_min=opt.step_range[0],
                epsilon_max=opt.step_range[1],
            )  # fmt: skip
        eps = opt.kl_step * T * nu
        res = lqr_flm(
            dyn, cmodel, ctrl, x0a, x0_cov, epsilon=eps, options=LQRFLMOptions(eta_init=eta)
        )
        if res.policy is not None:
            ctrl = res.policy
            eta = res.eta
        else:
            logger.warning("local_search: iteration %d keeps its controller (%s)", it, res.message)
        previous = (dyn, cmodel, old_value)
        Ym, Um, Xm = _rollouts(system, ctrl.as_deterministic(), x0a, T, 1, opt, rng, noiseless=True)
        rec = LocalSearchIteration(
            rollouts=rollouts,
            interaction_seconds=rollouts * T * dt,
            sample_cost=float(costs.mean()),
            success_rate=float(np.mean(ok)) if ok else 0.0,
            mean_success=bool(success(Xm[0])) if success is not None else False,
            mean_cost=float(_costs(rcost, Xm, Um)[0]),
            epsilon=float(eps),
            kl=float(res.kl),
            status=res.status,
            seconds=time.perf_counter() - t0,
        )
        history.append(rec)
        logger.info(
            "local_search %d: rollouts %d cost %.4f success %.2f eps %.3g kl %.3g %s",
            it, rollouts, rec.sample_cost, rec.success_rate, eps, rec.kl, res.status,
        )  # fmt: skip
        if callback is not None:
            callback(rec)
        if any(ok):
            first = rollouts
            break
    return LocalSearchResult(
        controller=ctrl,
        history=tuple(history),
        solved=first is not None,
        first_success_rollouts=first,
        first_success_seconds=None if first is None else first * T * dt,
    )
