r"""PILCO: probabilistic inference for learning control (Deisenroth & Rasmussen, ICML 2011).

Problem. Learn a policy :math:`\pi_\theta` minimising the expected cost of a
``H``-step episode from a start belief :math:`x_0 \sim \mathcal N(\mu_0, \Sigma_0)`,

.. math::

    J(\theta) = \sum_{t=1}^{H} \gamma^{t-1}\,\mathbb E_{x_t}[c(x_t)],

where :math:`p(x_t)` is the moment-matched Gaussian belief through a GP model
of the dynamics (:func:`gpcontrol.models.propagate_horizon`) and
:math:`\mathbb E[c]` is the saturating cost's Gaussian expectation; or,
selectable per run (:class:`PILCOOptions` ``propagation``), a linearised,
unscented or certainty-equivalent belief, or the average cost of
reparameterised particle rollouts of the GP with common random numbers
(MC-PILCO; Amadio et al., IEEE T-RO 2022, arXiv:2101.12115). The loop
(Deisenroth, Fox & Rasmussen, IEEE TPAMI 37(2), 2015, Alg. 1): ``J`` random
rollouts; then repeat {fit the GP on all data; minimise :math:`J(\theta)` by
L-BFGS with analytic (autograd) gradients; apply :math:`\pi_\theta` once; add
the data} until the task is solved ``K`` times in a row or the trial budget
ends. Every trial is checkpointed (JSON + ``.npz`` + the policy's
``state_dict``) and a run resumes from its folder; each trial's randomness is
seeded from ``(seed, trial)``, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from gpcontrol._validation import check_int
from gpcontrol.costs import SaturatingCost
from gpcontrol.gaussian import check_covariance
from gpcontrol.models.gp import GPDynamics
from gpcontrol.models.propagation import (
    BeliefTrajectory,
    PolicyMoments,
    propagate_horizon,
    propagate_particles,
)
from gpcontrol.policies.linear import LinearPolicy
from gpcontrol.policies.rbf import RBFPolicy
from gpcontrol.rollout import Trajectory, random_policy, rollout

__all__ = [
    "DEFAULT_PARTICLES",
    "expected_return",
    "predict_beliefs",
    "particle_states",
    "PolicySearchResult",
    "optimise_policy",
    "PILCOOptions",
    "TrialRecord",
    "PILCOResult",
    "pilco",
    "swing_up_success",
    "save_figures",
]

logger = logging.getLogger(__name__)

#: Particles of ``propagation="particles"`` unless set (:class:`PILCOOptions`).
DEFAULT_PARTICLES = 400


def _moments_of(policy: Any) -> PolicyMoments:
    if hasattr(policy, "moment_map"):  # gpcontrol's policies: parameter work done once
        return policy.moment_map()  # type: ignore[no-any-return]
    fn = getattr(policy, "moments", policy)
    if not callable(fn):
        raise TypeError("policy must have a moments(mean, cov) method or be a PolicyMoments")
    return fn  # type: ignore[no-any-return]


def predict_beliefs(
    gp: GPDynamics,
    policy: Any,
    mean0: Any,
    cov0: Any,
    horizon: int,
    *,
    method: str = "moment_matching",
    particles: int = DEFAULT_PARTICLES,
    seed: int = 0,
) -> BeliefTrajectory:
    r"""Beliefs :math:`\mathcal N(\mu_t, \Sigma_t)`, ``t = 0..H``, under ``policy``.

    .. math::

        (\mu_{t+1}, \Sigma_{t+1}) = \operatorname{propagate}(\mu_t, \Sigma_t, \pi)

    (TPAMI 2015 Sec. 4). ``policy`` is a :class:`~gpcontrol.policies.rbf.RBFPolicy`,
    :class:`~gpcontrol.policies.linear.LinearPolicy` or a ``PolicyMoments``;
    ``method`` selects the propagation of :func:`gpcontrol.models.propagate`
    (exact moment matching by default, ``"linearized"``, ``"unscented"``), or
    ``"mean"``: certainty-equivalent propagation that drops all uncertainty
    (the GP's predictive variance and the start spread),
    :math:`\mu_{t+1} = \mu_t + \mathbb E[\Delta(\mu_t, \pi(\mu_t))]`,
    :math:`\Sigma_t = 0` (TPAMI 2015 Sec. 6's deterministic-model ablation), or
    ``"particles"``: the sample mean and covariance of ``particles`` Monte Carlo
    rollouts of the GP (:func:`particle_states`),

    .. math::

        \mu_t = \tfrac1P \textstyle\sum_i x_t^{(i)},\qquad
        \Sigma_t = \tfrac1{P-1} \textstyle\sum_i (x_t^{(i)} - \mu_t)(x_t^{(i)} - \mu_t)^\top

    (:math:`\Sigma_t = 0` for :math:`P = 1`), from the same draws as
    :func:`expected_return` with the same ``seed``.

    Parameters
    ----------
    particles : int
        :math:`P` (``method="particles"`` only).
    seed : int
        Seed of the particle draws (``method="particles"`` only).

    Returns
    -------
    BeliefTrajectory
        ``mean (H+1, n)``, ``cov (H+1, n, n)``.
    """
    if method == "mean":
        return _mean_beliefs(gp, policy, mean0, horizon)
    if method == "particles":
        X = particle_states(gp, policy, mean0, cov0, horizon, particles=particles, seed=seed)
        mean = X.mean(1)
        d = X - mean[:, None, :]
        cov = d.mT @ d / max(particles - 1, 1)  # (H+1, n, n)
        return BeliefTrajectory(mean=mean, cov=0.5 * (cov + cov.mT))
    extra: dict[str, Any] = {} if method == "moment_matching" else {"method": method}
    return propagate_horizon(gp, mean0, cov0, _moments_of(policy), horizon, **extra)


def particle_states(
    gp: GPDynamics,
    policy: Any,
    mean0: Any,
    cov0: Any,
    horizon: int,
    *,
    particles: int = DEFAULT_PARTICLES,
    seed: int = 0,
) -> Tensor:
    r"""Reparameterised particle rollouts of the GP under a deterministic policy (MC-PILCO).

    .. math::

        x_0^{(i)} = \mu_0 + \Sigma_0^{1/2}\xi_0^{(i)},\qquad
        x_{t+1}^{(i)} = x_t^{(i)} + \mu_\Delta(x_t^{(i)}, \pi(x_t^{(i)}))
            + \sigma_\Delta(x_t^{(i)}, \pi(x_t^{(i)}))\odot\xi_{t+1}^{(i)},\qquad
        \xi \sim \mathcal N(0, I)

    (:func:`gpcontrol.models.propagate_particles`; MC-PILCO, Amadio et al.,
    IEEE T-RO 2022). The draws :math:`\xi` come from
    :func:`gpcontrol.models.particle_noise` with a generator seeded with
    ``seed`` on every call: the same ``seed`` gives the same draws (common
    random numbers), so the states are a deterministic, differentiable
    function of the policy parameters.

    Parameters
    ----------
    gp : GPDynamics
    policy : torch.nn.Module
        Batched deterministic control ``x (P, n) -> u (P, m)``
        (:class:`~gpcontrol.policies.rbf.RBFPolicy`,
        :class:`~gpcontrol.policies.linear.LinearPolicy`: angles enter through
        their sines and cosines, squashed to the bounds).
    mean0 : Tensor, shape (n,)
    cov0 : Tensor, shape (n, n)
    horizon : int
    particles : int
        :math:`P \ge 1`.
    seed : int

    Returns
    -------
    Tensor, shape (H+1, P, n)
    """
    check_int("particles", particles)
    if not isinstance(policy, torch.nn.Module):
        raise TypeError(
            "method='particles' needs a policy module with a batched forward x (P, n) -> u (P, m) "
            f"(RBFPolicy, LinearPolicy), got {type(policy).__name__}"
        )
    # The GP's cached posterior is detached from its hyperparameters; keep autograd from
    # tracking them through predict (about a quarter of a backward pass, and stray .grad).
    tracked = [p for p in gp.parameters() if p.requires_grad]
    try:
        for p in tracked:
            p.requires_grad_(False)
        # gpcontrol's policies: the parameter work (RBF weights) once per rollout
        control: Callable[[Tensor], Tensor] = getattr(policy, "control_map", lambda: policy)()
        return propagate_particles(
            gp, mean0, cov0, control, horizon, particles=particles, seed=int(seed)
        )
    finally:
        for p in tracked:
            p.requires_grad_(True)


def _mean_beliefs(gp: GPDynamics, policy: Any, mean0: Any, horizon: int) -> BeliefTrajectory:
    """Certainty-equivalent rollout of the GP mean: ``x_{t+1} = x_t + E[Delta(x_t, pi(x_t))]``."""
    mu = torch.as_tensor(mean0, dtype=torch.float64)
    n = mu.shape[-1]
    zero = torch.zeros(n, n, dtype=torch.float64)
    means = [mu]
    for _ in range(horizon):
        if isinstance(policy, torch.nn.Module) and hasattr(policy, "angle_indices"):
            u = policy(mu)
        else:
            u = _moments_of(policy)(mu, zero).M
        delta, _ = gp.predict(torch.cat([mu, u.reshape(-1)]))
        mu = mu + delta
        means.append(mu)
    mean = torch.stack(means)
    return BeliefTrajectory(mean=mean, cov=torch.zeros(horizon + 1, n, n, dtype=torch.float64))


def expected_return(
    gp: GPDynamics,
    policy: Any,
    cost: Any,
    mean0: Any,
    cov0: Any,
    horizon: int,
    *,
    discount: float = 1.0,
    method: str = "moment_matching",
    particles: int = DEFAULT_PARTICLES,
    seed: int = 0,
) -> Tensor:
    r"""Expected cost :math:`J = \sum_{t=1}^{H}\gamma^{t-1}\mathbb E[c(x_t)]` of ``policy``.

    .. math::

        J(\theta) = \sum_{t=1}^{H} \gamma^{t-1}\,
            \mathbb E_{x_t \sim \mathcal N(\mu_t, \Sigma_t)}[c(x_t)]

    (TPAMI 2015 eqs. (2)-(3), Sec. 5.1) with the beliefs of
    :func:`predict_beliefs`; or, for ``method="particles"``, the Monte Carlo
    estimate over the particle rollouts of :func:`particle_states`
    (MC-PILCO, Amadio et al., IEEE T-RO 2022),

    .. math::

        \hat J(\theta) = \frac1P \sum_{i=1}^{P} \sum_{t=1}^{H} \gamma^{t-1}\,c(x_t^{(i)}),

    whose gradient is the reparameterisation (pathwise) gradient through every
    particle. The draws are common random numbers: seeded with ``seed`` afresh on
    every call, so :math:`\hat J` is a deterministic, smooth function of
    :math:`\theta` that L-BFGS can minimise (over random seeds it is an
    unbiased estimate of the particle model's expected cost, with no Gaussian
    approximation of the beliefs).
    Differentiable by autograd in the policy's parameters and the start mean
    (and the start covariance, for the Gaussian propagations).

    Parameters
    ----------
    gp : GPDynamics
        A fitted dynamics model.
    policy : RBFPolicy or LinearPolicy or PolicyMoments
        A policy module for ``method="particles"``.
    cost : Cost
        Anything with ``expected(mean (..., n), cov (..., n, n))`` returning
        ``(expectation, variance)`` (e.g. :class:`~gpcontrol.costs.SaturatingCost`);
        with a zero covariance it is the cost at a state (particles).
    mean0 : Tensor, shape (n,)
    cov0 : Tensor, shape (n, n)
    horizon : int
        :math:`H \ge 1`.
    discount : float
        :math:`\gamma \in (0, 1]`.
    method : str
        Belief propagation (:func:`predict_beliefs`), or ``"particles"``.
    particles : int
        :math:`P \ge 1` (``method="particles"`` only).
    seed : int
        Seed of the particle draws (``method="particles"`` only).

    Returns
    -------
    Tensor, shape ()
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if not 0.0 < float(discount) <= 1.0:
        raise ValueError(f"discount must be in (0, 1], got {discount!r}")
    weights = float(discount) ** torch.arange(horizon, dtype=torch.float64)
    if method == "particles":
        X = particle_states(gp, policy, mean0, cov0, horizon, particles=particles, seed=seed)
        x = X[1:].reshape(-1, X.shape[-1])  # (H P, n)
        zero = torch.zeros(x.shape[0], x.shape[1], x.shape[1], dtype=torch.float64)
        c = cost.expected(x, zero).expectation.reshape(horizon, particles)  # c(x_t^(i))
        return (weights @ c).mean()
    beliefs = predict_beliefs(gp, policy, mean0, cov0, horizon, method=method)
    ec = cost.expected(beliefs.mean[1:], beliefs.cov[1:]).expectation  # (H,)
    return (weights * ec).sum()


@dataclasses.dataclass(frozen=True)
class PolicySearchResult:
    """Outcome of :func:`optimise_policy` (the policy holds the best parameters).

    Attributes
    ----------
    value : float
        Best :math:`J(\\theta)` found.
    initial_value : float
        :math:`J` at the starting parameters.
    iterations : int
        L-BFGS iterations (line searches) used, over all restarts.
    evaluations : int
        Objective evaluations.
    restarts : int
        Restarts from perturbed parameters that were run.
    failures : int
        Evaluations that raised or returned a non-finite value.
    history : tuple of float
        Best value after each run (first run, then each restart).
    seconds : float
    trace : tuple of float
        The objective at every successful evaluation, in order.
    converged : int
        Runs stopped early because the best value stalled (``patience``).
    """

    value: float
    initial_value: float
    iterations: int
    evaluations: int
    restarts: int
    failures: int
    history: tuple[float, ...]
    seconds: float
    trace: tuple[float, ...] = ()
    converged: int = 0


def optimise_policy(
    objective: Callable[[], Tensor],
    policy: torch.nn.Module,
    *,
    max_line_searches: int = 150,
    restarts: int = 2,
    perturbation: float = 0.1,
    tolerance: float = 1e-6,
    seed: int = 0,
    patience: int | None = None,
    patience_tolerance: float = 1e-3,
    on_evaluation: Callable[[int, float], None] | None = None,
) -> PolicySearchResult:
    r"""Minimise ``objective()`` over ``policy``'s parameters by L-BFGS with restarts.

    .. math::

        \theta^\star = \arg\min_\theta J(\theta), \qquad
        \theta^{(r)}_0 = \theta^{\text{best}} + \epsilon\,(|\theta^{\text{best}}| + 1)\odot\xi,\
        \xi \sim \mathcal N(0, I)

    L-BFGS with a strong-Wolfe line search (``torch.optim.LBFGS``; PILCO's
    ``minimize`` uses a similar budget of line searches, TPAMI 2015 Sec. 5.1).
    As ``minimize``, a run uses its whole budget: when L-BFGS stops early (no
    acceptable step), it starts afresh from the best point, and the run ends
    after two fresh starts in a row without progress.
    A run that raises (e.g. a failed Cholesky), produces a non-finite value, or
    improves on its start by less than ``tolerance`` counts as stalled; up to
    ``restarts`` further runs start from perturbed best parameters. The best
    parameters seen are loaded into ``policy`` at the end.

    Parameters
    ----------
    objective : callable
        ``() -> Tensor`` scalar, differentiable in ``policy.parameters()``.
    policy : torch.nn.Module
    max_line_searches : int
        L-BFGS iteration budget per run.
    restarts : int
        Maximum number of restarts after a stalled or failed run.
    perturbation : float
        :math:`\epsilon`.
    tolerance : float
        Minimal improvement for a run not to count as stalled.
    seed : int
    patience : int, optional
        Stop a run early (as converged, not stalled) once ``patience``
        consecutive evaluations improved the run's best value by less than
        ``patience_tolerance`` in total (relative to ``max(1, |best|)``).
        Default: run the whole budget.
    patience_tolerance : float
    on_evaluation : callable, optional
        ``on_evaluation(evaluations, best)`` after every successful evaluation:
        the number of objective evaluations so far (all runs) and the best value
        (progress display).

    Returns
    -------
    PolicySearchResult
    """
    if isinstance(max_line_searches, bool) or int(max_line_searches) < 1:
        raise ValueError(f"max_line_searches must be >= 1, got {max_line_searches!r}")
    if isinstance(restarts, bool) or int(restarts) < 0:
        raise ValueError(f"restarts must be >= 0, got {restarts!r}")
    t0 = time.perf_counter()
    params = [p for p in policy.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(int(seed))
    counters = {"evals": 0, "fails": 0, "since": 0, "converged": 0}
    trace: list[float] = []
    anchor = {"value": math.inf}
    best: dict[str, Any] = {"value": math.inf, "state": None}

    def snapshot(value: float) -> None:
        if math.isfinite(value) and value < best["value"]:
            best["value"] = value
            best["state"] = [p.detach().clone() for p in params]

    def closure() -> Tensor:
        opt.zero_grad()
        counters["evals"] += 1
        try:
            J = objective()
            if not bool(torch.isfinite(J)):
                raise FloatingPointError("non-finite objective")
            J.backward()
            if not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params):
                raise FloatingPointError("non-finite gradient")
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            counters["fails"] += 1
            logger.info("optimise_policy: evaluation failed (%s)", exc)
            raise _EvaluationError from exc
        value = float(J.detach())
        trace.append(value)
        snapshot(value)
        if on_evaluation is not None:
            on_evaluation(counters["evals"], best["value"])
        if patience is not None:
            a = anchor["value"]
            if not math.isfinite(a) or value < a - patience_tolerance * max(1.0, abs(a)):
                anchor["value"], counters["since"] = best["value"], 0
            else:
                counters["since"] += 1
                if counters["since"] >= int(patience):
                    raise _Converged
        return J

    with torch.no_grad():
        initial = float(objective())
    snapshot(initial)
    iterations, runs, history = 0, 0, []
    for run in range(int(restarts) + 1):
        if run > 0:
            with torch.no_grad():
                for p, b in zip(params, best["state"], strict=True):
                    noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
                    p.copy_(b + perturbation * (b.abs() + 1.0) * noise)
        start = best["value"]
        anchor["value"], counters["since"] = math.inf, 0
        failed, stop, used, idle = False, False, 0, 0
        # Like PILCO's ``minimize``: when L-BFGS stops before the budget (its line search
        # found no step), start afresh (steepest descent) from the best point; give up
        # after two fresh starts in a row without progress.
        while used < int(max_line_searches) and idle < 2 and not (failed or stop):
            if used:
                with torch.no_grad():
                    for p, b in zip(params, best["state"], strict=True):
                        p.copy_(b)
            left = int(max_line_searches) - used
            segment_start = best["value"]
            opt = torch.optim.LBFGS(
                params,
                lr=1.0,
                max_iter=left,
                max_eval=int(2.5 * left),
                tolerance_grad=1e-9,
                tolerance_change=1e-12,
                history_size=50,
                line_search_fn="strong_wolfe",
            )
            try:
                opt.step(closure)
            except _EvaluationError:
                failed = True
            except _Converged:
                counters["converged"] += 1
                stop = True
            used += max(1, int(opt.state[params[0]].get("n_iter", 0)))
            idle = idle + 1 if segment_start - best["value"] < tolerance else 0
        iterations += used
        runs = run
        history.append(best["value"])
        if not failed and start - best["value"] >= tolerance:
            break  # a successful run: improved, no failure
    if best["state"] is None:
        raise RuntimeError("optimise_policy: no finite objective value was ever reached")
    with torch.no_grad():
        for p, b in zip(params, best["state"], strict=True):
            p.copy_(b)
    return PolicySearchResult(
        value=float(best["value"]),
        initial_value=initial,
        iterations=iterations,
        evaluations=counters["evals"],
        restarts=runs,
        failures=counters["fails"],
        history=tuple(history),
        seconds=time.perf_counter() - t0,
        trace=tuple(trace),
        converged=counters["converged"],
    )


class _EvaluationError(Exception):
    """An objective evaluation failed; aborts the current L-BFGS run."""


class _Converged(Exception):
    """The best value stalled for ``patience`` evaluations; ends the current run."""


# ----------------------------------------------------------------------------- the loop
#: Policy evaluations selectable in :class:`PILCOOptions` (``"mean"``: certainty equivalence;
#: ``"particles"``: Monte Carlo rollouts of the GP, :func:`particle_states`).
PROPAGATIONS = ("moment_matching", "linearized", "unscented", "mean", "particles")


@dataclasses.dataclass(frozen=True)
class PILCOOptions:
    """Settings of :func:`pilco` (defaults: PILCO's pendulum / cart-pole scenarios).

    Attributes
    ----------
    random_rollouts : int
        ``J`` rollouts with uniformly random controls before learning.
    max_trials : int
        Budget of policy trials after the random ones.
    solved_consecutive : int
        Stop after this many consecutive successful trials (``K``).
    horizon : int or None
        Planning horizon; default the env's ``max_episode_steps``.
    policy : {"rbf", "linear"}
    basis : int
        Basis functions of the RBF policy.
    max_line_searches : int
        L-BFGS budget per policy optimisation.
    policy_restarts : int
    policy_patience : int, optional
        End a policy optimisation early once this many evaluations in a row
        improved :math:`J` by less than 0.1 % (:func:`optimise_policy`'s
        ``patience``); default: the full line-search budget, as PILCO.
    gp_restarts : int
    gp_max_iter : int
    discount : float
    success_seconds : float
        Success: the last ``success_seconds`` of the rollout within the cost width.
    propagation : {"moment_matching", "linearized", "unscented", "mean", "particles"}
        Policy evaluation (:func:`expected_return`): a Gaussian belief
        propagation (:func:`predict_beliefs`), ``"mean"``, the
        certainty-equivalent ablation, or ``"particles"``, MC-PILCO-style
        reparameterised particles with common random numbers: every evaluation
        of trial ``k``'s policy search uses the same draws, from a generator
        seeded from ``(seed, k)`` (:func:`particle_states`), so the objective is
        deterministic within a policy search and fresh in the next trial.
    particles : int
        Particles of ``propagation="particles"``.
    """

    random_rollouts: int = 1
    max_trials: int = 10
    solved_consecutive: int = 1
    horizon: int | None = None
    policy: str = "rbf"
    basis: int = 10
    max_line_searches: int = 150
    policy_restarts: int = 2
    policy_patience: int | None = None
    gp_restarts: int = 1
    gp_max_iter: int = 100
    discount: float = 1.0
    success_seconds: float = 1.0
    propagation: str = "moment_matching"
    particles: int = DEFAULT_PARTICLES

    def __post_init__(self) -> None:
        for name in ("random_rollouts", "max_trials", "solved_consecutive", "basis"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.policy not in ("rbf", "linear"):
            raise ValueError(f"policy must be 'rbf' or 'linear', got {self.policy!r}")
        if self.horizon is not None and (not isinstance(self.horizon, int) or self.horizon < 1):
            raise ValueError(f"horizon must be None or an integer >= 1, got {self.horizon!r}")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {self.propagation!r}")
        check_int("particles", self.particles)


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One policy trial (``trial`` counts from 1; 0 are the random rollouts).

    Attributes
    ----------
    trial : int
    interaction_seconds : float
        Total interaction time so far, random rollouts included.
    predicted_cost : float
        :math:`J(\\theta)` predicted by the model before the rollout.
    actual_cost : float
        :math:`\\sum_{t=1}^H c(x_t)` on the true states (the observations when
        the env does not report them).
    success : bool
    gp_seconds : float
        GP training time.
    policy_seconds : float
        Policy optimisation time.
    line_searches : int
    """

    trial: int
    interaction_seconds: float
    predicted_cost: float
    actual_cost: float
    success: bool
    gp_seconds: float
    policy_seconds: float
    line_searches: int

    #: Column titles matching :meth:`row` (progress tables of the CLI and examples).
    HEADER: ClassVar[str] = "trial  interaction[s]  predicted  actual  success  gp[s]  policy[s]"

    def row(self) -> str:
        """This trial as one line of a progress table under :attr:`HEADER`."""
        return (
            f"{self.trial:5d}  {self.interaction_seconds:14.1f}  {self.predicted_cost:9.3f}  "
            f"{self.actual_cost:6.3f}  {str(self.success):>7}  {self.gp_seconds:5.1f}  "
            f"{self.policy_seconds:9.1f}"
        )


@dataclasses.dataclass(frozen=True)
class PILCOResult:
    """Outcome of :func:`pilco`.

    Attributes
    ----------
    trials : tuple of TrialRecord
    policy : torch.nn.Module
        The last optimised policy.
    model : GPDynamics
        The last fitted model.
    trajectories : tuple of Trajectory
        Every rollout, random ones first (after a resume, only those of this process).
    predictions : tuple of BeliefTrajectory
        The predicted beliefs of each trial run in this process.
    solved : bool
    first_success : int or None
        First successful trial.
    seconds_to_success : float or None
        Interaction seconds up to and including it.
    """

    trials: tuple[TrialRecord, ...]
    policy: torch.nn.Module
    model: GPDynamics
    trajectories: tuple[Trajectory, ...]
    predictions: tuple[BeliefTrajectory, ...]
    solved: bool
    first_success: int | None
    seconds_to_success: float | None


def swing_up_success(cost: SaturatingCost, X: Any, steps: int) -> bool:
    r"""Whether the last ``steps`` states are within the cost width of the target.

    .. math::

        \lVert z(x_t) - z^*\rVert < \sigma_c \quad \text{for } t = T-\text{steps}+1, \dots, T.
    """
    Xa = np.asarray(X, dtype=np.float64)
    dist = np.linalg.norm(cost.task_point(Xa[-steps:]) - cost.target, axis=-1)
    return bool(np.all(dist < cost.width))


def _policy_lengthscales(n: int, angle_indices: Any) -> np.ndarray:
    """PILCO's initial RBF-policy length-scales: 1 on raw states, 0.7 on sines and cosines."""
    k = len(tuple(angle_indices))
    return np.concatenate([np.ones(n - k), np.full(2 * k, 0.7)])


def _particle_seed(seed: int, trial: int) -> int:
    """Seed of trial ``trial``'s particle draws: its own stream of ``(seed, trial)``."""
    state = np.random.SeedSequence([int(seed) % 2**63, int(trial), 1]).generate_state(1, np.uint64)
    return int(state[0]) % 2**63


def _latent(traj: Trajectory) -> np.ndarray:
    """The true states of a rollout when the env reports them, else the observations."""
    return traj.true_states if traj.true_states is not None else traj.states


def _state_cost(cost: Any, X: np.ndarray) -> float:
    x = torch.as_tensor(np.array(X[1:], dtype=np.float64))
    zero = torch.zeros(x.shape[0], x.shape[1], x.shape[1], dtype=torch.float64)
    return float(cost.expected(x, zero).expectation.sum())


def _save(
    out: Path,
    records: list[TrialRecord],
    trajs: list[dict[str, np.ndarray]],
    policy: torch.nn.Module,
    meta: dict[str, Any],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "data.npz",
        states=np.stack([t["states"] for t in trajs]),
        controls=np.stack([t["controls"] for t in trajs]),
    )
    torch.save(policy.state_dict(), out / "policy.pt")
    payload = {"meta": meta, "trials": [dataclasses.asdict(r) for r in records]}
    tmp = out / "checkpoint.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out / "checkpoint.json")  # the JSON is written last: it marks a complete trial


def pilco(
    env: gym.Env[Any, Any],
    cost: Any,
    *,
    options: PILCOOptions | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    callback: Callable[[TrialRecord], None] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> PILCOResult:
    r"""Run PILCO on ``env`` (TPAMI 2015, Alg. 1) and return the trial records.

    .. math::

        \theta_{k+1} = \arg\min_\theta \sum_{t=1}^H \gamma^{t-1}\,
            \mathbb E_{p(x_t \mid \theta, \mathcal D_k)}[c(x_t)],\qquad
        \mathcal D_{k+1} = \mathcal D_k \cup \text{rollout}(\pi_{\theta_{k+1}})

    Parameters
    ----------
    env : gymnasium.Env
        A gpcontrol env (its ``unwrapped.system`` gives the angles, bounds and
        start distribution ``x0_mean``, ``x0_std``), or any Gymnasium env with
        ``Box`` spaces wrapped by :func:`gpcontrol.envs.adapt`, whose
        :class:`~gpcontrol.envs.LearningTask` gives the same.
    cost : SaturatingCost
        The cost the policy minimises (with ``expected`` and, for the success
        test, ``task_point``, ``target``, ``width``).
    options : PILCOOptions, optional
    seed : int
        Seeds trial ``k``'s env reset, GP fit and policy restarts from ``(seed, k)``.
    out : path, optional
        Run folder: ``checkpoint.json`` (trial records), ``data.npz`` (all
        rollouts), ``policy.pt``, ``prediction_KK.npz`` (trial ``K``'s predicted
        ``mean``/``cov``, the latent ``states`` of its rollout and the policy
        search's ``trace`` of objective values, its ``controls``); an existing
        checkpoint is resumed.
    callback : callable, optional
        Called with each new :class:`TrialRecord` (progress display).
    progress : callable, optional
        ``progress(trial, evaluations, best_J)`` during each policy search
        (:func:`optimise_policy`'s ``on_evaluation``), for a live display.

    Returns
    -------
    PILCOResult
    """
    opts = options or PILCOOptions()
    from gpcontrol.envs.adapter import learning_task

    # a SystemEnv, or any Box env wrapped by gpcontrol.envs.adapt; the task stands in for
    # the system below (n, m, dt, angle_indices, u_low, u_high)
    env, system = learning_task(env)
    n, m, dt = system.n, system.m, float(system.dt)
    horizon = opts.horizon or system.horizon
    if horizon is None:
        raise ValueError("give options.horizon for an env without max_episode_steps")
    mean0 = torch.as_tensor(np.array(system.x0_mean, dtype=np.float64))
    std0 = torch.as_tensor(np.array(system.x0_std, dtype=np.float64))
    cov0 = check_covariance("cov0", torch.as_tensor(np.array(system.x0_cov)), n)
    u_max = np.array(system.u_high, dtype=np.float64)  # a writable copy (torch wraps it)
    steps_ok = max(1, round(opts.success_seconds / dt))

    def make_policy() -> torch.nn.Module:
        if opts.policy == "linear":
            return LinearPolicy(n, m, u_max, angle_indices=system.angle_indices, seed=seed)
        return RBFPolicy(
            n,
            m,
            u_max,
            basis=opts.basis,
            angle_indices=system.angle_indices,
            init_mean=mean0.numpy(),
            init_std=std0.numpy(),
            init_lengthscales=_policy_lengthscales(n, system.angle_indices),
            seed=seed,
        )

    policy = make_policy()
    records: list[TrialRecord] = []
    data: list[dict[str, np.ndarray]] = []
    trajectories: list[Trajectory] = []
    predictions: list[BeliefTrajectory] = []
    folder = None if out is None else Path(out)
    if folder is not None and (folder / "checkpoint.json").exists():
        payload = json.loads((folder / "checkpoint.json").read_text())
        records = [TrialRecord(**r) for r in payload["trials"]]
        npz = np.load(folder / "data.npz")
        data = [
            {"states": s, "controls": u}
            for s, u in zip(npz["states"], npz["controls"], strict=True)
        ]
        policy.load_state_dict(torch.load(folder / "policy.pt"))
        logger.info("pilco: resumed %s after trial %d", folder, len(records))
    meta = {"seed": seed, "options": dataclasses.asdict(opts)}

    def run(pol: Any, k: int) -> Trajectory:
        traj = rollout(env, pol, steps=horizon, seed=int(seed) * 10_000 + k)
        trajectories.append(traj)
        data.append({"states": traj.states, "controls": traj.controls})
        return traj

    for j in range(len(data), opts.random_rollouts):
        run(random_policy(system.u_low, system.u_high, seed=seed * 10_000 + 5000 + j), j)
    if folder is not None and not records:
        _save(folder, records, data, policy, meta)
    model = GPDynamics.for_system(system)
    streak = 0
    for r in records:
        streak = streak + 1 if r.success else 0
    while len(records) < opts.max_trials and streak < opts.solved_consecutive:
        k = len(records) + 1
        inputs = np.concatenate([np.hstack([d["states"][:-1], d["controls"]]) for d in data])
        targets = np.concatenate([np.diff(d["states"], axis=0) for d in data])
        model = GPDynamics.for_system(system)
        fit = model.fit(
            inputs,
            targets,
            restarts=opts.gp_restarts,
            max_iter=opts.gp_max_iter,
            seed=seed * 10_000 + k,
        )

        # particles: the same draws (common random numbers) for every evaluation of trial k
        draws = {"particles": opts.particles, "seed": _particle_seed(seed, k)}

        def objective(model: GPDynamics = model, draws: dict[str, int] = draws) -> Tensor:
            return expected_return(
                model,
                policy,
                cost,
                mean0,
                cov0,
                horizon,
                discount=opts.discount,
                method=opts.propagation,
                **draws,
            )

        search = optimise_policy(
            objective,
            policy,
            max_line_searches=opts.max_line_searches,
            restarts=opts.policy_restarts,
            seed=seed * 10_000 + k,
            patience=opts.policy_patience,
            on_evaluation=None if progress is None else functools.partial(progress, k),
        )
        with torch.no_grad():
            beliefs = predict_beliefs(
                model, policy, mean0, cov0, horizon, method=opts.propagation, **draws
            )
            predictions.append(beliefs)
        traj = run(policy, opts.random_rollouts + k - 1)
        ok = swing_up_success(cost, _latent(traj), steps_ok)
        streak = streak + 1 if ok else 0
        rec = TrialRecord(
            trial=k,
            interaction_seconds=len(data) * horizon * dt,
            predicted_cost=search.value,
            actual_cost=_state_cost(cost, _latent(traj)),
            success=ok,
            gp_seconds=fit.seconds,
            policy_seconds=search.seconds,
            line_searches=search.iterations,
        )
        records.append(rec)
        if folder is not None:
            np.savez(
                folder / f"prediction_{k:02d}.npz",
                mean=beliefs.mean.numpy(),
                cov=beliefs.cov.numpy(),
                states=_latent(traj),
                controls=traj.controls,
                trace=np.asarray(search.trace),
            )
            _save(folder, records, data, policy, meta)
        if callback is not None:
            callback(rec)
    first = next((r for r in records if r.success), None)
    return PILCOResult(
        trials=tuple(records),
        policy=policy,
        model=model,
        trajectories=tuple(trajectories),
        predictions=tuple(predictions),
        solved=streak >= opts.solved_consecutive,
        first_success=None if first is None else first.trial,
        seconds_to_success=None if first is None else first.interaction_seconds,
    )


def save_figures(result: PILCOResult, system: Any, folder: str | Path) -> list[Path]:
    r"""Write the learning curve and, per trial, the predicted belief against the rollout.

    .. math::

        \mu_t \pm 2\sqrt{\operatorname{diag}\Sigma_t}\quad\text{vs.}\quad x_t^{\text{observed}}

    Parameters
    ----------
    result : PILCOResult
    system : System
        Panel labels and time step.
    folder : path

    Returns
    -------
    list of Path
        ``learning_curve.png`` and ``trial_XX.png`` for the trials run in this
        process, and for earlier trials whose ``prediction_XX.npz`` is in ``folder``.
    """
    import matplotlib.pyplot as plt

    from gpcontrol.plotting import plot_learning_curve, plot_trajectory

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig = plot_learning_curve(
        [r.actual_cost for r in result.trials], label="actual", xlabel="trial", ylabel="cost"
    )
    ax = fig.axes[0]
    trials = np.arange(1, len(result.trials) + 1)
    ax.plot(trials, [r.predicted_cost for r in result.trials], "x--", label="predicted")
    ok = [i for i, r in enumerate(result.trials) if r.success]
    ax.plot(trials[ok], [result.trials[i].actual_cost for i in ok], "g*", ms=12, label="success")
    ax.legend(loc="best", fontsize=8)
    paths.append(out / "learning_curve.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    runs = result.trajectories[len(result.trajectories) - len(result.predictions) :]
    first = len(result.trials) - len(result.predictions) + 1
    for i, (pred, traj) in enumerate(zip(result.predictions, runs, strict=True)):
        std = torch.sqrt(torch.diagonal(pred.cov, dim1=-2, dim2=-1).clamp_min(0.0))
        fig = plot_trajectory(
            system,
            traj,
            mean=pred.mean.numpy(),
            std=std.numpy(),
            title=f"trial {first + i}: predicted (mean +- 2 sd) vs actual",
        )
        paths.append(out / f"trial_{first + i:02d}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    for f in sorted(out.glob("prediction_*.npz")):  # trials of an earlier (resumed) process
        k = int(f.stem.split("_")[-1])
        if first <= k < first + len(result.predictions):
            continue
        saved = np.load(f)
        if "controls" not in saved.files:
            continue
        fig = plot_trajectory(
            system,
            (saved["states"], saved["controls"]),
            dt=float(system.dt),
            mean=saved["mean"],
            std=np.sqrt(np.clip(np.diagonal(saved["cov"], axis1=-2, axis2=-1), 0.0, None)),
            title=f"trial {k}: predicted (mean +- 2 sd) vs actual",
        )
        paths.append(out / f"trial_{k:02d}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
