r"""Mirror-descent guided policy search (MDGPS) with a torch neural-network policy.

MDGPS (Montgomery & Levine, NIPS 2016) trains a global policy
:math:`\pi_\theta(u \mid x) = \mathcal N(\mu_\theta(x), \Sigma_\pi)` for
:math:`M` initial conditions by alternating two steps on the samples of each
iteration:

* **C-step.** For every condition :math:`c`, fit local dynamics
  (:func:`~gpcontrol.models.tvlg.fit_tvlg`), linearise the global policy
  around the samples to a linear-Gaussian :math:`\bar\pi_c`
  (:func:`linearize_policy`), and solve

  .. math::

      p_c \leftarrow \arg\min_p \mathbb E_p[J_c]
      \quad\text{s.t.}\quad \sum_t \mathbb E_{p}\,\mathrm{KL}(p \,\|\, \bar\pi_c) \le \epsilon_c

  with :func:`~gpcontrol.solvers.lqr_flm.lqr_flm`;
* **S-step.** Regress the network onto the local controllers' means,
  weighted by their precisions, over all conditions, steps and samples:

  .. math::

      \min_\theta\ \frac{1}{|\mathcal D|}\sum_{(c, t, i)}
        \big(\mu_\theta(x_{cti}) - K_{ct} x_{cti} - k_{ct}\big)^\top C_{ct}^{-1}
        \big(\mu_\theta(x_{cti}) - K_{ct} x_{cti} - k_{ct}\big),

  then set :math:`\Sigma_\pi = \big(\overline{C^{-1}}\big)^{-1}`, the inverse
  of the mean precision (the minimiser of the KL from the local controllers
  to the policy over its covariance).

The step sizes :math:`\epsilon_c = \epsilon_0\, T\, \nu_c` adapt their
multipliers :math:`\nu_c` (:func:`~gpcontrol.solvers.lqr_flm.adapt_step_size`)
from a predicted and an actual improvement. With :math:`\ell_k` the expected
cost under iteration :math:`k`'s fitted dynamics and cost expansion, the
default rule (``step_rule="local"``) measures the local controller,
:math:`\ell_k(p_k) - \ell_k(p_{k+1})` and :math:`\ell_{k+1}(p_k) -
\ell_{k+1}(p_{k+1})`; the MDGPS paper's rule (``"global"``, Montgomery &
Levine, NIPS 2016) measures the linearised network between iterations,
:math:`\ell_k(\bar\pi_k) - \ell_k(\bar\pi_{k+1})` and
:math:`\ell_k(\bar\pi_k) - \ell_{k+1}(\bar\pi_{k+1})`. Samples are drawn from
the local controllers either on a known system's ``step`` (with optional
Gaussian start and process noise) or from any :class:`RolloutSampler`, e.g.
a Gymnasium environment (:class:`gpcontrol.algorithms.gps_env.EnvSampler`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import (
    as_batch,
    as_float_array,
    check_int,
    check_nonnegative,
    check_positive,
)
from gpcontrol.models.gmm import GaussianMixture, select_gmm
from gpcontrol.models.tvlg import (
    DynamicsPrior,
    TVLGDynamics,
    conditional_gaussian_fit,
    default_components,
    fit_tvlg,
)
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy
from gpcontrol.policies.mlp import GaussianMLPPolicy, with_context
from gpcontrol.solvers.lqr_flm import (
    LQRFLMOptions,
    QuadraticTrajectoryCost,
    adapt_step_size,
    forward_marginals,
    lqr_flm,
)

__all__ = [
    "policy_prior",
    "linearize_policy",
    "s_step_loss",
    "train_policy",
    "MDGPSOptions",
    "MDGPSIteration",
    "MDGPSResult",
    "MDGPSState",
    "StepPrediction",
    "RolloutSampler",
    "mdgps",
    "mdgps_init",
    "mdgps_step",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]
Tensor = torch.Tensor


# ---------------------------------------------------------------------------- linearisation
def _state_dim(policy: GaussianMLPPolicy, context: ArrayLike | None) -> int:
    d = 0 if context is None else int(np.shape(context)[-1])
    if d >= policy.n:
        raise ValueError(f"context has {d} entries but the policy sees only {policy.n} inputs")
    return policy.n - d


def policy_prior(
    policy: GaussianMLPPolicy,
    X: ArrayLike,
    *,
    context: ArrayLike | None = None,
    seed: int = 0,
) -> GaussianMixture:
    r"""Gaussian mixture over the pairs :math:`(x, \mu_\theta(x))` of the states ``X (..., n)``.

    The size is chosen by BIC (:func:`~gpcontrol.models.gmm.select_gmm`) with
    a ridge of :math:`10^{-9}` (standardised units): the pairs of a nearly
    affine network lie close to a linear subspace. With ``context (..., d)``
    (broadcast against ``X``) the network's mean is :math:`\mu_\theta([x, c])`
    and the pairs are still :math:`(x, \mu)`.
    """
    if not isinstance(policy, GaussianMLPPolicy):
        raise TypeError(f"policy must be a GaussianMLPPolicy, got {type(policy).__name__}")
    nx = _state_dim(policy, context)
    Xa = as_batch("X", X, nx)
    inputs = Xa if context is None else with_context(Xa, context)
    P = np.concatenate(
        [inputs[..., :nx].reshape(-1, nx), policy.mean(inputs.reshape(-1, policy.n))], axis=-1
    )
    return select_gmm(P, default_components(P.shape[0]), seed=seed, regularization=1e-9)


def linearize_policy(
    policy: GaussianMLPPolicy,
    X: ArrayLike,
    *,
    context: ArrayLike | None = None,
    prior: GaussianMixture | None = None,
    strength: float = 1.0,
    seed: int = 0,
    regularization: float = 1e-10,
) -> LinearGaussianPolicy:
    r"""Linear-Gaussian approximation of the global policy around sample states.

    .. math::

        \bar\pi(u \mid x, t) = \mathcal N(\bar K_t x + \bar k_t,\ \bar C_t)

    At every step the joint of :math:`(x_t, \mu_\theta(x_t))` over the
    samples is regressed as in the dynamics fit
    (:func:`~gpcontrol.models.tvlg.conditional_gaussian_fit`), with a
    Gaussian-mixture prior over the pooled pairs of all steps (Montgomery &
    Levine, NIPS 2016; the policy prior of Levine et al., JMLR 2016):

    .. math::

        \bar K_t = \hat\Sigma_{ux}\hat\Sigma_{xx}^{-1},\quad
        \bar k_t = \bar u_t - \bar K_t \bar x_t,\quad
        \bar C_t = \hat\Sigma_{uu} - \bar K_t\hat\Sigma_{xx}\bar K_t^\top + \Sigma_\pi .

    For an affine network the residual vanishes and :math:`\bar K_t` is its
    weight matrix (up to the ridge ``regularization``).

    Parameters
    ----------
    policy : GaussianMLPPolicy
    X : array_like, shape (N, T, n)
        Sample states (``X[:, :-1]`` of trajectories).
    context : array_like, shape (d,), optional
        Fixed part of the network's input (e.g. the target of the condition):
        the network sees :math:`[x, c]` and is linearised in :math:`x`.
    prior : GaussianMixture, optional
        Over :math:`(x, u)` pairs (:func:`policy_prior`, e.g. fitted once on
        the states of all conditions); default: :func:`policy_prior` of ``X``.
    strength : float
        Prior pseudo-observations :math:`n_0`.
    seed : int
        Mixture-fit seed when ``prior`` is None.
    regularization : float
        Ridge on :math:`\hat\Sigma_{xx}`.

    Returns
    -------
    LinearGaussianPolicy
    """
    if not isinstance(policy, GaussianMLPPolicy):
        raise TypeError(f"policy must be a GaussianMLPPolicy, got {type(policy).__name__}")
    n = _state_dim(policy, context)
    Xa = as_float_array("X", X)
    if Xa.ndim != 3 or Xa.shape[-1] != n:
        raise ValueError(f"X must have shape (N, T, {n}), got {Xa.shape}")
    inputs = Xa if context is None else with_context(Xa, np.reshape(context, (-1,)))
    Z = np.concatenate([Xa, policy.mean(inputs)], axis=-1)
    mixture = policy_prior(policy, Xa, context=context, seed=seed) if prior is None else prior
    K, k, S = conditional_gaussian_fit(
        Z, n, prior=mixture, strength=strength, regularization=regularization, require_pd=False
    )
    cov = S + policy.cov.numpy()[None]  # type: ignore[operator]
    return LinearGaussianPolicy(K, k, 0.5 * (cov + np.swapaxes(cov, 1, 2)))


# ---------------------------------------------------------------------------- S-step
def s_step_loss(policy: GaussianMLPPolicy, x: Tensor, target: Tensor, precision: Tensor) -> Tensor:
    r"""S-step loss: the precision-weighted squared error of the network's mean.

    .. math::

        \mathcal L(\theta) = \frac1B \sum_b d_b^\top P_b d_b,\qquad
        d_b = \mu_\theta(x_b) - \mu_b .

    Parameters
    ----------
    policy : GaussianMLPPolicy
    x : torch.Tensor, shape (B, n)
    target : torch.Tensor, shape (B, m)
        Local controllers' means :math:`K_t x + k_t`.
    precision : torch.Tensor, shape (B, m, m)
        :math:`C_t^{-1}`.
    """
    d = policy(x) - target
    return torch.einsum("bi,bij,bj->b", d, precision, d).mean()


def train_policy(
    policy: GaussianMLPPolicy,
    x: ArrayLike,
    target: ArrayLike,
    precision: ArrayLike,
    *,
    iterations: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    r"""S-step: minimise :func:`s_step_loss` by Adam, then set :math:`\Sigma_\pi = \bar P^{-1}`.

    :math:`\bar P` is the mean of the target precisions.

    Parameters
    ----------
    policy : GaussianMLPPolicy
        Trained in place; its input normalisation is reset to ``x``.
    x : array_like, shape (B, n)
    target : array_like, shape (B, m)
    precision : array_like, shape (B, m, m)
    iterations, batch_size, lr : int, int, float
        Adam steps, minibatch size and learning rate (Kingma & Ba, ICLR 2015).
    seed : int
        Minibatch order.

    Returns
    -------
    list of float
        The full-data loss every 100 steps and at the end.
    """
    n, m = policy.n, policy.m
    xa = as_batch("x", x, n).reshape(-1, n)
    ta = as_batch("target", target, m).reshape(-1, m)
    Pa = as_float_array("precision", precision)
    if Pa.shape != (xa.shape[0], m, m) or ta.shape[0] != xa.shape[0]:
        raise ValueError(
            f"x, target, precision must have shapes (B, {n}), (B, {m}), (B, {m}, {m}); "
            f"got {xa.shape}, {ta.shape}, {Pa.shape}"
        )
    policy.set_normalization(xa)
    X, Y, Pr = (torch.from_numpy(np.ascontiguousarray(a)) for a in (xa, ta, Pa))
    opt = torch.optim.Adam(policy.parameters(), lr=check_positive("lr", lr))
    rng = np.random.default_rng(seed)
    B = X.shape[0]
    losses: list[float] = []
    for i in range(int(iterations)):
        idx = torch.from_numpy(rng.integers(0, B, size=min(int(batch_size), B)))
        opt.zero_grad()
        loss = s_step_loss(policy, X[idx], Y[idx], Pr[idx])
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        if i % 100 == 0:
            with torch.no_grad():
                losses.append(float(s_step_loss(policy, X, Y, Pr)))
    with torch.no_grad():
        losses.append(float(s_step_loss(policy, X, Y, Pr)))
        mean_prec = Pr.mean(0)
        cov = torch.linalg.inv(0.5 * (mean_prec + mean_prec.mT))
        policy.cov.copy_(0.5 * (cov + cov.mT))  # type: ignore[operator]
    return losses


# ---------------------------------------------------------------------------- the loop
@dataclasses.dataclass(frozen=True)
class MDGPSOptions:
    r"""Options of :func:`mdgps`.

    Attributes
    ----------
    iterations : int
    samples : int
        Rollouts per condition and iteration.
    kl_step : float
        :math:`\epsilon_0`, KL per time step; :math:`\epsilon_c = \epsilon_0 T \nu_c`.
    step_range : (float, float)
        Clip of the multipliers :math:`\nu_c`.
    init_variance : float
        Variance of the initial local controllers when none are given.
    x0_std, process_noise_std : float
        Standard deviations of the initial state and of additive process noise.
    hidden : tuple of int
        Network widths.
    policy_iterations, batch_size, lr : int, int, float
        S-step optimisation.
    seed : int
    sampling : {"local", "policy"}
        Where each iteration's rollouts come from: the local controllers
        (off-policy MDGPS) or the network with its covariance :math:`\Sigma_\pi`
        (on-policy MDGPS, Montgomery & Levine, NIPS 2016), whose samples are
        the states the network itself visits. The first iteration always
        samples the initial controllers (the network has not been fitted yet).
    step_rule : {"local", "global"}
        What the step-size adaptation measures (see the module docstring):
        the local controllers before and after the C-step (``"local"``, as in
        LQR-FLM) or the linearised network between iterations (``"global"``,
        the MDGPS paper's rule).
    """

    iterations: int = 10
    samples: int = 5
    kl_step: float = 0.2
    step_range: tuple[float, float] = (0.01, 10.0)
    init_variance: float = 1.0
    x0_std: float = 0.0
    process_noise_std: float = 0.0
    hidden: tuple[int, ...] = (64, 64)
    policy_iterations: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    sampling: str = "local"
    step_rule: str = "local"

    def __post_init__(self) -> None:
        for name in ("iterations", "samples", "policy_iterations", "batch_size"):
            check_int(name, getattr(self, name))
        if self.sampling not in ("local", "policy"):
            raise ValueError(f"sampling must be 'local' or 'policy', got {self.sampling!r}")
        if self.step_rule not in ("local", "global"):
            raise ValueError(f"step_rule must be 'local' or 'global', got {self.step_rule!r}")
        check_positive("kl_step", self.kl_step)
        check_positive("init_variance", self.init_variance)
        check_nonnegative("x0_std", self.x0_std)
        check_nonnegative("process_noise_std", self.process_noise_std)
        check_positive("lr", self.lr)
        lo, hi = self.step_range
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"step_range must satisfy 0 < low <= 1 <= high, got {self.step_range}")


@dataclasses.dataclass(frozen=True)
class MDGPSIteration:
    """Record of one MDGPS iteration.

    Attributes
    ----------
    sample_costs : ndarray, shape (M,)
        Mean true cost of the iteration's samples per condition.
    policy_costs : ndarray, shape (M,)
        True cost of the network's mean from each condition's mean start, after the S-step.
    epsilon : ndarray, shape (M,)
        KL bounds used in the C-step.
    kl : ndarray, shape (M,)
        KL reached.
    statuses : tuple of str
        C-step statuses.
    s_step_loss : float
        Final S-step loss.
    seconds : float
    """

    sample_costs: Array
    policy_costs: Array
    epsilon: Array
    kl: Array
    statuses: tuple[str, ...]
    s_step_loss: float
    seconds: float


@dataclasses.dataclass(frozen=True, eq=False)
class MDGPSResult:
    """Result of :func:`mdgps`: the network, the last local controllers and the history."""

    policy: GaussianMLPPolicy
    controllers: tuple[LinearGaussianPolicy, ...]
    history: tuple[MDGPSIteration, ...]
    rollouts: int


@runtime_checkable
class RolloutSampler(Protocol):
    r"""Where MDGPS draws its rollouts from, when the dynamics are not a known ``step``.

    .. math::

        x_0 = \bar x_{0,c} \ (\text{plus the sampler's own start noise}),\qquad
        u_t = \pi(x_t, t),\qquad x_{t+1} \sim p(\cdot \mid x_t, u_t)

    for :math:`N` independent rollouts of condition :math:`c`. Passed as
    ``system`` to :func:`mdgps`, :func:`mdgps_init` and :func:`mdgps_step`
    instead of a system with ``step``; the options' ``x0_std`` and
    ``process_noise_std`` then do not add noise (``x0_std`` is still the
    start spread the C-step assumes).

    Attributes
    ----------
    n, m : int
        State and control dimensions.
    """

    n: int
    m: int

    def sample_rollouts(
        self,
        condition: int,
        controller: Any,
        x0: Array,
        T: int,
        N: int,
        rng: np.random.Generator,
        *,
        noiseless: bool = False,
    ) -> tuple[Array, Array]:
        """``N`` rollouts of ``controller (x (n,), t) -> u (m,)`` from condition ``condition``.

        Parameters
        ----------
        condition : int
            Index of the condition (e.g. to set its target).
        controller : callable
            ``(x (n,), t) -> u (m,)``; it holds its own noise generator.
        x0 : ndarray, shape (n,)
            The condition's mean start state.
        T, N : int
            Horizon and number of rollouts.
        rng : numpy.random.Generator
            For the sampler's own randomness, if any.
        noiseless : bool
            True when MDGPS evaluates the network's mean: start exactly at
            ``x0`` and add no noise of the sampler's own (an environment's
            intrinsic noise stays).

        Returns
        -------
        X : ndarray, shape (N, T + 1, n)
        U : ndarray, shape (N, T, m)
            The commanded controls.
        """
        ...


def _draw(
    system: Any,
    condition: int,
    controller: Any,
    x0: Array,
    T: int,
    N: int,
    opt: MDGPSOptions,
    rng: np.random.Generator,
    *,
    noiseless: bool = False,
) -> tuple[Array, Array]:
    """Rollouts from a :class:`RolloutSampler`, or from a known ``system.step``.

    ``noiseless`` marks the evaluation of the network's mean (for a known
    system ``opt`` is then already noise-free).
    """
    if not isinstance(system, RolloutSampler):
        return _sample(system, controller, x0, T, N, opt, rng)
    X, U = system.sample_rollouts(condition, controller, x0, T, N, rng, noiseless=noiseless)
    n, m = x0.shape[0], int(system.m)
    X, U = np.asarray(X, dtype=np.float64), np.asarray(U, dtype=np.float64)
    if X.shape != (N, T + 1, n) or U.shape != (N, T, m):
        raise ValueError(
            f"sample_rollouts must return X {(N, T + 1, n)} and U {(N, T, m)}, "
            f"got {X.shape} and {U.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(U).all()):
        raise FloatingPointError("a rollout diverged (non-finite state or control)")
    return X, U


def _sample(
    system: Any,
    controller: Any,
    x0: Array,
    T: int,
    N: int,
    opt: MDGPSOptions,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    n = x0.shape[0]
    X = np.empty((N, T + 1, n))
    U = np.empty((N, T, int(system.m)))
    X[:, 0] = x0 + opt.x0_std * rng.standard_normal((N, n))
    for t in range(T):
        U[:, t] = controller(X[:, t], t)
        X[:, t + 1] = system.step(X[:, t], U[:, t])
        if opt.process_noise_std > 0:
            X[:, t + 1] += opt.process_noise_std * rng.standard_normal((N, n))
    if not np.isfinite(X).all():
        raise FloatingPointError("a rollout diverged (non-finite state)")
    return X, U


def _true_cost(cost: Any, X: Array, U: Array) -> Array:
    return np.asarray(cost.l(X[:, :-1], U)).sum(-1) + np.asarray(cost.l_T(X[:, -1]))


@dataclasses.dataclass(frozen=True, eq=False)
class StepPrediction:
    """What one C-step predicted, kept for the next iteration's step-size adaptation.

    Attributes
    ----------
    dynamics : TVLGDynamics
        The fitted local model the C-step used.
    cost : QuadraticTrajectoryCost
        The cost expansion it used.
    old_value : float
        Expected cost under that model of what the step rule measures before
        the C-step: the local controller, or (``step_rule="global"``) the
        linearised network, the C-step's ``p_old``.
    """

    dynamics: TVLGDynamics
    cost: QuadraticTrajectoryCost
    old_value: float


@dataclasses.dataclass(eq=False)
class MDGPSState:
    """Everything :func:`mdgps_step` carries from one iteration to the next (mutable).

    Saving these fields after an iteration and restoring them resumes a run
    exactly (:mod:`gpcontrol.algorithms.reach` writes them to a run folder).

    Attributes
    ----------
    policy : GaussianMLPPolicy
    controllers : list of LinearGaussianPolicy
        Current local controllers, one per condition.
    multipliers : ndarray, shape (M,)
        Step-size multipliers :math:`\nu_c`.
    previous : list of StepPrediction or None
        Last C-step prediction per condition.
    rng : numpy.random.Generator
        Sampling generator.
    rollouts : int
        Rollouts drawn so far.
    history : list of MDGPSIteration
    samples : list of (ndarray, ndarray)
        The last iteration's samples ``(X (N, T+1, n), U (N, T, m))`` per condition.
    """

    policy: GaussianMLPPolicy
    controllers: list[LinearGaussianPolicy]
    multipliers: Array
    previous: list[StepPrediction | None]
    rng: np.random.Generator
    rollouts: int = 0
    history: list[MDGPSIteration] = dataclasses.field(default_factory=list)
    samples: list[tuple[Array, Array]] = dataclasses.field(default_factory=list)

    @property
    def iteration(self) -> int:
        """Number of completed iterations."""
        return len(self.history)


def _check_problem(
    system: Any, costs: Sequence[Any], x0s: ArrayLike, T: int, contexts: ArrayLike | None
) -> tuple[Array, Array | None]:
    n = int(system.n)
    X0 = as_float_array("x0s", x0s)
    if X0.ndim != 2 or X0.shape[1] != n:
        raise ValueError(f"x0s must have shape (M, {n}), got {X0.shape}")
    M = X0.shape[0]
    if len(costs) != M:
        raise ValueError(f"costs must have one entry per condition ({M}), got {len(costs)}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    if contexts is None:
        return X0, None
    C = as_float_array("contexts", contexts)
    if C.ndim != 2 or C.shape[0] != M or C.shape[1] < 1:
        raise ValueError(f"contexts must have shape (M, d) = ({M}, d), got {C.shape}")
    return X0, C


def mdgps_init(
    system: Any,
    costs: Sequence[Any],
    x0s: ArrayLike,
    T: int,
    *,
    init_controllers: Sequence[LinearGaussianPolicy] | None = None,
    options: MDGPSOptions | None = None,
    contexts: ArrayLike | None = None,
    policy: GaussianMLPPolicy | None = None,
) -> MDGPSState:
    """Initial :class:`MDGPSState` of :func:`mdgps` (arguments as there)."""
    opt = MDGPSOptions() if options is None else options
    n, m = int(system.n), int(system.m)
    X0, C = _check_problem(system, costs, x0s, T, contexts)
    M = X0.shape[0]
    if init_controllers is None:
        ctrl = [
            LinearGaussianPolicy.from_gains(np.zeros((m, n)), np.zeros(m), opt.init_variance, T=T)
            for _ in range(M)
        ]
    else:
        ctrl = list(init_controllers)
        if len(ctrl) != M or any((c.T, c.n, c.m) != (T, n, m) for c in ctrl):
            raise ValueError(
                f"init_controllers must be {M} controllers with (T, n, m) = {(T, n, m)}"
            )
    d = 0 if C is None else C.shape[1]
    if policy is None:
        policy = GaussianMLPPolicy(n + d, m, opt.hidden, seed=opt.seed)
    elif not isinstance(policy, GaussianMLPPolicy) or (policy.n, policy.m) != (n + d, m):
        raise ValueError(f"policy must be a GaussianMLPPolicy with (n, m) = {(n + d, m)}")
    return MDGPSState(policy, ctrl, np.ones(M), [None] * M, np.random.default_rng(opt.seed))


def mdgps_step(
    system: Any,
    costs: Sequence[Any],
    x0s: ArrayLike,
    T: int,
    state: MDGPSState,
    *,
    options: MDGPSOptions | None = None,
    contexts: ArrayLike | None = None,
) -> MDGPSIteration:
    """One MDGPS iteration (samples, C-step, S-step), updating ``state`` in place.

    Arguments as in :func:`mdgps`; returns the iteration's record (also
    appended to ``state.history``). The policy linearisation's mixture prior
    (:func:`policy_prior`) pools the samples of all conditions, except with
    ``contexts``: the network's action at a state then depends on the
    condition, so each condition gets a prior from its own samples.

    .. math::

        \bar\\pi_c(u \\mid x, t) = \\mathcal N(\bar K_{ct} x + \bar k_{ct}, \bar C_{ct})
        \approx \\pi_\theta(u \\mid [x, c])
    """
    opt = MDGPSOptions() if options is None else options
    X0, ctx = _check_problem(system, costs, x0s, T, contexts)
    M, n = X0.shape
    if len(state.controllers) != M:
        raise ValueError(f"state has {len(state.controllers)} controllers for {M} conditions")
    it, rng, policy, ctrl, mult = (
        state.iteration, state.rng, state.policy, state.controllers, state.multipliers,
    )  # fmt: skip
    t0 = time.perf_counter()
    x0_cov = (opt.x0_std**2 + 1e-8) * np.eye(n)

    def sampler(c: int) -> Any:
        if opt.sampling == "policy" and it > 0:
            return policy.controller(rng, context=None if ctx is None else ctx[c])
        return ctrl[c].seeded(rng)

    samples = [_draw(system, c, sampler(c), X0[c], T, opt.samples, opt, rng) for c in range(M)]
    state.rollouts += M * opt.samples
    sample_costs = np.array([_true_cost(costs[c], *samples[c]).mean() for c in range(M)])
    Xall = np.concatenate([s[0] for s in samples])
    Uall = np.concatenate([s[1] for s in samples])
    prior = DynamicsPrior.fit(Xall, Uall, seed=opt.seed + it)
    dyns = [fit_tvlg(X, U, prior=prior) for X, U in samples]
    cost_models = [QuadraticTrajectoryCost.from_cost(costs[c], *samples[c]) for c in range(M)]
    if it == 0:  # catch the network up with the initial controllers
        _s_step(policy, samples, ctrl, opt, ctx, seed=opt.seed)
    states = np.stack([s[0][:, :-1] for s in samples])  # (M, N, T, n)
    # Without contexts one prior over the pooled pairs of all conditions; with them, the
    # network's action at a state depends on the condition, so each gets its own prior.
    if ctx is None:
        shared = policy_prior(policy, states, seed=opt.seed + it)
        pol_priors = [shared] * M
    else:
        pol_priors = [
            policy_prior(policy, states[c], context=ctx[c], seed=opt.seed + it) for c in range(M)
        ]
    lins = [
        linearize_policy(
            policy, states[c], context=None if ctx is None else ctx[c], prior=pol_priors[c]
        )
        for c in range(M)
    ]
    # Step-size adaptation from the last C-step's prediction: for the "global" rule the
    # improvement of the linearised network since then (predicted under that step's model,
    # measured under today's); for "local" the local controller's own improvement.
    for c in range(M):
        prev = state.previous[c]
        if prev is None:
            continue
        now = lins[c] if opt.step_rule == "global" else ctrl[c]
        pred_new = prev.cost.expected(forward_marginals(prev.dynamics, now, X0[c], x0_cov))
        actual_new = cost_models[c].expected(forward_marginals(dyns[c], now, X0[c], x0_cov))
        mult[c] = adapt_step_size(
            mult[c],
            prev.old_value - pred_new,
            prev.old_value - actual_new,
            epsilon_min=opt.step_range[0],
            epsilon_max=opt.step_range[1],
        )
    eps = opt.kl_step * T * mult
    kls, statuses = np.zeros(M), []
    for c in range(M):
        before = lins[c] if opt.step_rule == "global" else ctrl[c]
        old_value = cost_models[c].expected(forward_marginals(dyns[c], before, X0[c], x0_cov))
        res = lqr_flm(
            dyns[c],
            cost_models[c],
            lins[c],
            X0[c],
            x0_cov,
            epsilon=float(eps[c]),
            options=LQRFLMOptions(),
        )
        statuses.append(res.status)
        kls[c] = res.kl
        if res.policy is not None:
            ctrl[c] = res.policy
        else:
            logger.warning("mdgps: condition %d keeps its controller (%s)", c, res.message)
        state.previous[c] = StepPrediction(dyns[c], cost_models[c], old_value)
    loss = _s_step(policy, samples, ctrl, opt, ctx, seed=opt.seed + 1000 + it)
    pol_costs = np.array(
        [
            float(
                _true_cost(
                    costs[c],
                    *_draw(
                        system,
                        c,
                        policy.controller(
                            deterministic=True, context=None if ctx is None else ctx[c]
                        ),
                        X0[c], T, 1, _noiseless(opt), rng, noiseless=True,
                    ),
                )[0]
            )
            for c in range(M)
        ]
    )  # fmt: skip
    record = MDGPSIteration(
        sample_costs, pol_costs, eps.copy(), kls, tuple(statuses), loss, time.perf_counter() - t0
    )
    state.history.append(record)
    state.samples = samples
    logger.info(
        "mdgps iteration %d: sample cost %s, policy cost %s, kl %s",
        it, np.round(sample_costs, 4), np.round(pol_costs, 4), np.round(kls, 4),
    )  # fmt: skip
    return record


def mdgps(
    system: Any,
    costs: Sequence[Any],
    x0s: ArrayLike,
    T: int,
    *,
    init_controllers: Sequence[LinearGaussianPolicy] | None = None,
    options: MDGPSOptions | None = None,
    contexts: ArrayLike | None = None,
    policy: GaussianMLPPolicy | None = None,
) -> MDGPSResult:
    r"""Mirror-descent guided policy search (Montgomery & Levine, NIPS 2016).

    Per iteration (:func:`mdgps_step`): draw ``samples`` rollouts from each
    local controller on ``system`` (plus noise) or from its sampler, fit a shared dynamics prior
    and per-condition TVLG models, linearise the network at the samples,
    take the C-step (KL-constrained LQG toward the linearised network) and
    the S-step (precision-weighted regression), and adapt each condition's
    step from the predicted and actual improvement of the expected cost. On
    the first iteration the network is first fitted to the initial
    controllers.

    .. math::

        p_c \leftarrow \arg\min_p \mathbb E_p[J_c]\ \text{s.t.}\
        \textstyle\sum_t \mathbb E_p \mathrm{KL}(p \,\|\, \bar\pi_c) \le \epsilon_c,
        \qquad \theta \leftarrow \arg\min_\theta \textstyle\sum_{c,t,i}
        \lVert \mu_\theta(x_{cti}, c) - \mu_{p_c}(x_{cti}) \rVert^2_{C_{ct}^{-1}}

    Parameters
    ----------
    system : Dynamics or RolloutSampler
        True dynamics with batched ``step(x, u)`` (e.g. a
        :class:`~gpcontrol.systems.System`), or a :class:`RolloutSampler`
        that draws the rollouts itself (e.g. from a Gymnasium environment,
        :class:`~gpcontrol.algorithms.gps_env.EnvSampler`).
    costs : sequence of Cost
        One cost per condition (length ``M``).
    x0s : array_like, shape (M, n)
        Mean initial state of each condition.
    T : int
        Horizon.
    init_controllers : sequence of LinearGaussianPolicy, optional
        Default: :math:`\mathcal N(0, \sigma^2 I)` with ``init_variance``.
    options : MDGPSOptions, optional
    contexts : array_like, shape (M, d), optional
        Per-condition input appended to the network's state input (e.g. a
        reaching target), so that one network serves every condition and
        generalises to new ones; the network then has ``n + d`` inputs.
    policy : GaussianMLPPolicy, optional
        The network to train (e.g. a subclass with task features), with
        ``n + d`` inputs; default ``GaussianMLPPolicy(n + d, m, hidden)``.

    Returns
    -------
    MDGPSResult
    """
    opt = MDGPSOptions() if options is None else options
    state = mdgps_init(
        system,
        costs,
        x0s,
        T,
        init_controllers=init_controllers,
        options=opt,
        contexts=contexts,
        policy=policy,
    )
    for _ in range(opt.iterations):
        mdgps_step(system, costs, x0s, T, state, options=opt, contexts=contexts)
    return MDGPSResult(state.policy, tuple(state.controllers), tuple(state.history), state.rollouts)


def _noiseless(opt: MDGPSOptions) -> MDGPSOptions:
    return dataclasses.replace(opt, x0_std=0.0, process_noise_std=0.0)


def _s_step(
    policy: GaussianMLPPolicy,
    samples: list[tuple[Array, Array]],
    ctrl: list[LinearGaussianPolicy],
    opt: MDGPSOptions,
    contexts: Array | None,
    *,
    seed: int,
) -> float:
    xs, targets, precs = [], [], []
    for i, ((X, _), c) in enumerate(zip(samples, ctrl, strict=True)):
        S = X[:, :-1]  # (N, T, n)
        inputs = S if contexts is None else with_context(S, contexts[i])
        xs.append(inputs.reshape(-1, inputs.shape[-1]))
        mu = np.einsum("tij,ntj->nti", c.K, S) + c.k
        targets.append(mu.reshape(-1, c.m))
        precs.append(
            np.broadcast_to(c.precision, (S.shape[0], *c.precision.shape)).reshape(-1, c.m, c.m)
        )
    losses = train_policy(
        policy,
        np.concatenate(xs),
        np.concatenate(targets),
        np.concatenate(precs),
        iterations=opt.policy_iterations,
        batch_size=opt.batch_size,
        lr=opt.lr,
        seed=seed,
    )
    if not math.isfinite(losses[-1]):
        raise FloatingPointError("the S-step loss is not finite")
    return losses[-1]
