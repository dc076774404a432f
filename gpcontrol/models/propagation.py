r"""Belief propagation through a GP dynamics model by moment matching (PILCO).

Problem. Given a Gaussian state belief :math:`x_t \sim \mathcal N(\mu_t, \Sigma_t)`,
a policy and a :class:`~gpcontrol.models.GPDynamics` model
:math:`x_{t+1} = x_t + \Delta(z_t)`, :math:`z_t = \phi(x_t, u_t)`, find the
Gaussian :math:`\mathcal N(\mu_{t+1}, \Sigma_{t+1})` with the mean and
covariance of :math:`x_{t+1}` (Deisenroth, Fox & Rasmussen, IEEE TPAMI 37(2),
2015, Sec. 4 and Fig. 4; the PILCO MATLAB package ``propagate.m``). One step:

1. control moments :math:`(M_u, S_u, C_u)` from the policy, with
   :math:`C_u = \Sigma_t^{-1}\operatorname{cov}(x_t, u_t)`, so the joint of
   :math:`[x_t, u_t]` has cross-covariance :math:`\Sigma_t C_u`;
2. exact moments of the GP features :math:`z = [x_{\text{other}}, \sin
   x_{\text{ang}}, \cos x_{\text{ang}}, u]` of that Gaussian
   (:func:`gpcontrol.gaussian.trig_moments`), and cross-covariance
   :math:`\operatorname{cov}(x, z)`;
3. exact moment matching of the GP at :math:`z \sim \mathcal N(m_z, s_z)`
   (:func:`gpcontrol.models.moment_match`): :math:`M, S` and
   :math:`C = s_z^{-1}\operatorname{cov}(z, \Delta)`;
4. :math:`\mu_{t+1} = \mu_t + M`,
   :math:`\Sigma_{t+1} = \Sigma_t + S + \Sigma_{x\Delta} + \Sigma_{x\Delta}^\top`,
   :math:`\Sigma_{x\Delta} = \operatorname{cov}(x, z)\,C`.

Each stage is exact given a Gaussian input; the approximation is that the
non-Gaussian intermediate distributions (of ``z`` when angles or a squashed
policy are involved) are replaced by Gaussians with the same two moments, and
that :math:`\operatorname{cov}(x, \Delta)` is taken through that Gaussian.
Without angles and with a linear(-Gaussian) policy, ``z`` is exactly Gaussian
and the one-step moments are exact.

Squashing (bounded controls) :math:`u = u_{\max}\sin\tilde u` and PILCO's
third-order :math:`u = u_{\max}(9\sin\tilde u + \sin 3\tilde u)/8` (``gSat``)
have exact moments for a Gaussian :math:`\tilde u`
(:func:`squash_moments`); their input-output term follows from Stein's lemma,
:math:`\operatorname{cov}(\tilde u, g(\tilde u)) = s\,\mathbb E[g'(\tilde u)]`,
so no inverse of a (possibly singular) covariance is ever formed.

Monte Carlo counterpart (:func:`propagate_particles`): particles
:math:`x^{(i)}_{t+1} = x^{(i)}_t + \mu_\Delta(z^{(i)}_t)
+ \sigma_\Delta(z^{(i)}_t)\odot\xi^{(i)}_{t+1}` from fixed standard-normal
draws :math:`\xi` (:func:`particle_noise`), reparameterised so that the
particles are differentiable too.

Everything is torch float64 and differentiable with respect to the initial
belief and any policy parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from gpcontrol._validation import check_int
from gpcontrol.gaussian import _as_tensor, check_covariance, trig_moments
from gpcontrol.models._fused_trig import TrigPlan, trig_features, trig_plan
from gpcontrol.models.moments import GPTerms, _moment_match

__all__ = [
    "ControlMoments",
    "PolicyMoments",
    "BeliefTrajectory",
    "linear_policy_moments",
    "squash_moments",
    "squashed",
    "propagate",
    "propagate_horizon",
    "particle_noise",
    "propagate_particles",
]


@dataclasses.dataclass(frozen=True)
class ControlMoments:
    r"""Moments of a control :math:`u` at a Gaussian state :math:`x \sim \mathcal N(\mu, \Sigma)`.

    Attributes
    ----------
    M : Tensor, shape (m,)
        :math:`\mathbb E[u]`.
    S : Tensor, shape (m, m)
        :math:`\operatorname{cov}(u)`.
    C : Tensor, shape (n, m)
        :math:`\Sigma^{-1}\operatorname{cov}(x, u)` (PILCO's convention; for a
        policy of ``x`` through a jointly Gaussian intermediate it is
        :math:`\mathbb E[\partial u/\partial x]^\top`).
    """

    M: Tensor
    S: Tensor
    C: Tensor


class PolicyMoments(Protocol):
    """A policy's moment map ``(mean (n,), cov (n, n)) -> ControlMoments``."""

    def __call__(self, mean: Tensor, cov: Tensor) -> ControlMoments: ...


class _Dynamics(Protocol):
    n: int
    m: int
    angle_indices: tuple[int, ...]
    other_indices: tuple[int, ...]

    def terms(self) -> GPTerms: ...

    def predict(self, inputs: Any, *, include_noise: bool = False) -> tuple[Tensor, Tensor]: ...


@dataclasses.dataclass(frozen=True)
class BeliefTrajectory:
    """Gaussian state beliefs over a horizon.

    Attributes
    ----------
    mean : Tensor, shape (T+1, n)
    cov : Tensor, shape (T+1, n, n)
    """

    mean: Tensor
    cov: Tensor


def _t(value: Any) -> Tensor:
    return (
        value.to(torch.float64)
        if isinstance(value, Tensor)
        else torch.as_tensor(np.asarray(value, dtype=np.float64))
    )


def linear_policy_moments(K: Any, k: Any, noise_cov: Any = None) -> PolicyMoments:
    r"""Moment map of the linear-Gaussian policy :math:`u = K x + k + \varepsilon`.

    With :math:`\varepsilon \sim \mathcal N(0, \Sigma_u)` independent of :math:`x`:

    .. math::

        M_u = K\mu + k,\qquad S_u = K\Sigma K^\top + \Sigma_u,\qquad C_u = K^\top.

    Parameters
    ----------
    K : Tensor, shape (m, n)
    k : Tensor, shape (m,)
    noise_cov : Tensor, shape (m, m), optional
        :math:`\Sigma_u` (default zero).

    Returns
    -------
    PolicyMoments
        Differentiable in ``K`` and ``k`` when they are tensors requiring grad.
    """
    Kt, kt = _t(K), _t(k)
    if Kt.ndim != 2 or kt.shape != (Kt.shape[0],):
        raise ValueError(
            f"K must be (m, n) and k (m,), got {tuple(Kt.shape)} and {tuple(kt.shape)}"
        )
    Su = (
        torch.zeros(Kt.shape[0], Kt.shape[0], dtype=torch.float64)
        if noise_cov is None
        else check_covariance("noise_cov", noise_cov, Kt.shape[0])
    )

    def moments(mean: Tensor, cov: Tensor) -> ControlMoments:
        S = Kt @ cov @ Kt.T + Su
        return ControlMoments(M=Kt @ mean + kt, S=0.5 * (S + S.T), C=Kt.T)

    return moments


def squash_moments(mean: Any, cov: Any, u_max: Any, *, kind: str = "sin") -> ControlMoments:
    r"""Exact moments of a squashed Gaussian control.

    For :math:`\tilde u \sim \mathcal N(m, s)` and, per component,

    .. math::

        \text{``sin''}:\ u = u_{\max}\sin\tilde u, \qquad
        \text{``gsat''}:\ u = u_{\max}\tfrac{9\sin\tilde u + \sin 3\tilde u}{8}

    (PILCO's ``gSin``/``gSat``, Deisenroth 2010 appendix), the mean and
    covariance follow from the exact moments of :math:`[\sin\tilde u, \sin 3\tilde u]`
    (:func:`gpcontrol.gaussian.trig_moments`), and by Stein's lemma
    :math:`s^{-1}\operatorname{cov}(\tilde u, u) = \operatorname{diag}(\mathbb E[g'(\tilde u)])`
    with :math:`\mathbb E[\cos(c\,\tilde u_i)] = e^{-c^2 s_{ii}/2}\cos(c\,m_i)`.

    Parameters
    ----------
    mean : Tensor, shape (m,)
    cov : Tensor, shape (m, m)
        Symmetric positive semi-definite.
    u_max : float or Tensor, shape (m,)
        Positive bounds.
    kind : {"sin", "gsat"}

    Returns
    -------
    ControlMoments
        ``M (m,)``, ``S (m, m)``, ``C (m, m)`` with ``C = s^{-1} cov(u_tilde, u)`` (diagonal).
    """
    mu = _t(mean)
    if mu.ndim != 1:
        raise ValueError(f"mean must have shape (m,), got {tuple(mu.shape)}")
    m = mu.shape[0]
    s = check_covariance("cov", cov, m)
    um = _t(u_max).expand(m) if _t(u_max).ndim == 0 else _t(u_max)
    if um.shape != (m,) or bool((um.detach() <= 0).any()):
        raise ValueError(f"u_max must be positive, scalar or shape ({m},), got {u_max!r}")
    if kind == "sin":
        coeff = [(1.0, 1.0)]  # (frequency c, weight w): u = u_max sum_c w sin(c u_tilde)
    elif kind == "gsat":
        coeff = [(1.0, 9.0 / 8.0), (3.0, 1.0 / 8.0)]
    else:
        raise ValueError(f"kind must be 'sin' or 'gsat', got {kind!r}")
    eye = torch.eye(m, dtype=torch.float64)
    L = torch.cat([c * eye for c, _ in coeff])  # (r m, m): angles c * u_tilde
    mean_phi, cov_phi = trig_moments(mu, s, L)
    r = len(coeff)
    sin_idx = slice(m, m + r * m)
    A = torch.cat([w * torch.diag(um) for _, w in coeff], dim=1)  # (m, r m)
    M = A @ mean_phi[sin_idx]
    S = A @ cov_phi[sin_idx, sin_idx] @ A.T
    # Stein: E[g'] = u_max sum_c w c E[cos(c u_tilde)], E[cos(c u_tilde)] = e^{-c^2 s_ii/2} cos(c m)
    dg = sum(
        w * c * torch.exp(-0.5 * c**2 * torch.diagonal(s)) * torch.cos(c * mu) for c, w in coeff
    )
    C = torch.diag(um * dg)
    return ControlMoments(M=M, S=0.5 * (S + S.T), C=C)


def squashed(policy: PolicyMoments, u_max: Any, *, kind: str = "sin") -> PolicyMoments:
    r"""Compose a policy's moment map with the squashing :func:`squash_moments`.

    .. math::

        (M, S, C) = \text{squash}(M_{\tilde u}, S_{\tilde u}),\qquad
        C_u = C_{\tilde u}\, C_{\text{squash}},

    since :math:`\operatorname{cov}(x, u) = \operatorname{cov}(x, \tilde u)\,
    s_{\tilde u}^{-1}\operatorname{cov}(\tilde u, u)` for jointly Gaussian
    :math:`(x, \tilde u)` (Stein's lemma).
    """

    def moments(mean: Tensor, cov: Tensor) -> ControlMoments:
        pre = policy(mean, cov)
        sq = squash_moments(pre.M, pre.S, u_max, kind=kind)
        return ControlMoments(M=sq.M, S=sq.S, C=pre.C @ sq.C)

    return moments


def _feature_plan(model: _Dynamics) -> TrigPlan:
    """Index constants of ``z = [x_other, sin x_ang, cos x_ang, u]`` from ``[x, u]`` (cached)."""
    n, m = model.n, model.m
    ang = tuple(model.angle_indices)
    k = len(ang)
    idx = (
        tuple(model.other_indices)
        + tuple(range(n + m, n + m + 2 * k))  # sin, cos
        + tuple(range(n, n + m))  # u
    )
    return trig_plan(n + m, ang, idx)


def _feature_moments(model: _Dynamics, m_xu: Tensor, S_xu: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Moments of ``z`` and ``cov(x, z)`` from a Gaussian ``[x, u]`` (validated, symmetric)."""
    mean_z, cov_z, J = trig_features(m_xu, S_xu, _feature_plan(model))
    return mean_z, cov_z, S_xu[: model.n] @ J


def propagate(
    model: _Dynamics,
    mean: Any,
    cov: Any,
    policy: PolicyMoments,
    *,
    include_noise: bool = False,
    method: str = "moment_matching",
) -> tuple[Tensor, Tensor]:
    r"""One moment-matching step :math:`(\mu_t, \Sigma_t) \to (\mu_{t+1}, \Sigma_{t+1})`.

    .. math::

        \mu_{t+1} = \mu_t + M,\qquad
        \Sigma_{t+1} = \Sigma_t + S + \operatorname{cov}(x, z)\,C
            + C^\top\operatorname{cov}(z, x)

    (module docstring; TPAMI 2015 eqs. (10)-(12)).

    Parameters
    ----------
    model : GPDynamics
        A fitted model (anything with ``n, m, angle_indices, other_indices`` and
        ``terms()`` in raw feature units).
    mean : Tensor, shape (n,)
    cov : Tensor, shape (n, n)
        Symmetric positive semi-definite.
    policy : PolicyMoments
        E.g. :func:`linear_policy_moments`, optionally :func:`squashed`.
    include_noise : bool
        Add the GP's observation-noise variance to the state covariance
        (predict a noisy measured state rather than the latent one).
    method : {"moment_matching", "linearized", "unscented"}
        Exact moment matching (default), or the EKF-style / unscented
        approximations of :func:`gpcontrol.models.approximate.propagate_joint`
        applied to the same joint Gaussian of ``[x, u]``.

    Returns
    -------
    mean : Tensor, shape (n,)
    cov : Tensor, shape (n, n)
    """
    if method not in ("moment_matching", "linearized", "unscented"):
        raise ValueError(
            f"method must be 'moment_matching', 'linearized' or 'unscented', got {method!r}"
        )
    n, m = model.n, model.m
    mu = _t(mean)
    if mu.shape != (n,):
        raise ValueError(f"mean must have shape ({n},), got {tuple(mu.shape)}")
    Sigma = check_covariance("cov", cov, n)
    u = _control(policy, mu, Sigma, n, m)
    if method != "moment_matching":
        from gpcontrol.models.approximate import propagate_joint  # lazy: it imports this module

        m_xu, S_xu = _joint(mu, Sigma, u)
        S_xu = 0.5 * (S_xu + S_xu.T)
        return propagate_joint(model, m_xu, S_xu, method=method, include_noise=include_noise)
    return _moment_matching_step(model, mu, Sigma, u, include_noise)


def _control(policy: PolicyMoments, mu: Tensor, Sigma: Tensor, n: int, m: int) -> ControlMoments:
    """The policy's control moments, with their shapes checked."""
    u = policy(mu, Sigma)
    if u.M.shape != (m,) or u.S.shape != (m, m) or u.C.shape != (n, m):
        raise ValueError(
            f"policy must return M ({m},), S ({m}, {m}), C ({n}, {m}); got "
            f"{tuple(u.M.shape)}, {tuple(u.S.shape)}, {tuple(u.C.shape)}"
        )
    return u


def _joint(mu: Tensor, Sigma: Tensor, u: ControlMoments) -> tuple[Tensor, Tensor]:
    """Mean and covariance of ``[x, u]``: cross-covariance ``Sigma C_u``."""
    Sxu = Sigma @ u.C
    m_xu = torch.cat([mu, u.M])
    S_xu = torch.cat([torch.cat([Sigma, Sxu], 1), torch.cat([Sxu.T, u.S], 1)], 0)
    return m_xu, S_xu


def _moment_matching_step(
    model: _Dynamics, mu: Tensor, Sigma: Tensor, u: ControlMoments, include_noise: bool
) -> tuple[Tensor, Tensor]:
    """Steps 2-4 of the module docstring on a validated belief and control moments.

    ``Sigma`` and ``u.S`` are symmetric, so the joint covariance is, and every
    term of the new covariance is exactly symmetric: no symmetrisation is needed.
    """
    m_xu, S_xu = _joint(mu, Sigma, u)
    mean_z, cov_z, cov_xz = _feature_moments(model, m_xu, S_xu)
    gm = _moment_match(model.terms(), mean_z, cov_z, include_noise=include_noise)
    Sx_delta = cov_xz @ gm.C
    return mu + gm.M, Sigma + gm.S + (Sx_delta + Sx_delta.T)


def propagate_horizon(
    model: _Dynamics,
    mean0: Any,
    cov0: Any,
    policy: PolicyMoments,
    T: int,
    *,
    include_noise: bool = False,
    method: str = "moment_matching",
) -> BeliefTrajectory:
    r"""``T`` steps of :func:`propagate`: beliefs :math:`\mathcal N(\mu_t, \Sigma_t)`, t = 0..T.

    .. math::

        (\mu_{t+1}, \Sigma_{t+1}) = \operatorname{propagate}(\mu_t, \Sigma_t), \quad t = 0..T-1.

    ``method`` is passed to every step (:func:`propagate`). With exact moment
    matching the intermediate beliefs are not re-validated step by step: every
    propagated mean and covariance is checked once, in one batched test, at the
    end (NaN, inf or a covariance that is not positive semi-definite raises
    ``ValueError``), which keeps the per-step cost to the arithmetic.

    Raises
    ------
    ValueError
        On an invalid start belief, ``T`` or ``method``, a policy returning
        moments of the wrong shapes, or a propagated belief that is not finite
        or not positive semi-definite.

    Returns
    -------
    BeliefTrajectory
        ``mean (T+1, n)``, ``cov (T+1, n, n)``, differentiable in the initial
        belief and the policy's parameters.
    """
    check_int("T", T, 0)
    if method not in ("moment_matching", "linearized", "unscented"):
        raise ValueError(
            f"method must be 'moment_matching', 'linearized' or 'unscented', got {method!r}"
        )
    n, m = model.n, model.m
    mu, Sigma = _t(mean0), check_covariance("cov0", cov0, n)
    if mu.shape != (n,):
        raise ValueError(f"mean0 must have shape ({n},), got {tuple(mu.shape)}")
    means, covs = [mu], [Sigma]
    for _ in range(T):
        if method == "moment_matching":
            # the beliefs are validated all at once below, not step by step
            u = _control(policy, mu, Sigma, n, m)
            mu, Sigma = _moment_matching_step(model, mu, Sigma, u, include_noise)
        else:
            mu, Sigma = propagate(
                model, mu, Sigma, policy, include_noise=include_noise, method=method
            )
        means.append(mu)
        covs.append(Sigma)
    mean, cov = torch.stack(means), torch.stack(covs)
    if T:
        # one batched check of every propagated belief: NaN, inf or a covariance that
        # lost positive semi-definiteness is an error, never a silent result
        _ = _as_tensor("propagated mean", mean.detach())
        check_covariance("propagated cov", cov.detach(), n)
    return BeliefTrajectory(mean=mean, cov=cov)


def particle_noise(T: int, particles: int, n: int, seed: int | torch.Generator = 0) -> Tensor:
    r"""Standard normal draws of :func:`propagate_particles`: start spread and model errors.

    .. math::

        \xi^{(i)}_t \sim \mathcal N(0, I_n),\qquad t = 0..T,\ i = 1..P,

    drawn in one call, ``torch.randn((T + 1, P, n), generator=g)`` with
    ``g = torch.Generator().manual_seed(seed)`` for an integer ``seed``
    (``seed`` itself when it is a generator, which is then advanced).
    :math:`\xi_0` places the start particles, :math:`\xi_t` the model error of
    step :math:`t`. The same ``seed`` gives the same draws: the common random
    numbers that make a particle objective a deterministic function of the
    policy parameters.

    Parameters
    ----------
    T : int
        Steps, ``>= 0``.
    particles : int
        :math:`P \ge 1`.
    n : int
        State dimension.
    seed : int or torch.Generator

    Returns
    -------
    Tensor, shape (T+1, particles, n)
    """
    check_int("T", T, 0)
    check_int("particles", particles)
    check_int("n", n)
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    return torch.randn((T + 1, particles, n), generator=gen, dtype=torch.float64)


def propagate_particles(
    model: _Dynamics,
    mean0: Any,
    cov0: Any,
    policy: Callable[[Tensor], Tensor],
    T: int,
    *,
    particles: int = 1000,
    seed: int | torch.Generator = 0,
    include_noise: bool = False,
    noise: Tensor | None = None,
) -> Tensor:
    r"""Monte Carlo belief propagation through the GP's marginal predictive distribution.

    .. math::

        x^{(i)}_0 = \mu_0 + \Sigma_0^{1/2}\xi^{(i)}_0,\quad
        u^{(i)}_t = \pi(x^{(i)}_t),\quad
        x^{(i)}_{t+1} = x^{(i)}_t + \mu_\Delta(z^{(i)}_t)
            + \operatorname{diag}(\sigma_\Delta(z^{(i)}_t))\,\xi^{(i)}_{t+1},\
        \xi \sim \mathcal N(0, I)

    with :math:`\Sigma_0^{1/2} = V\Lambda^{1/2}V^\top` the symmetric square root
    (unique, defined for a singular :math:`\Sigma_0`) and independent draws of
    the model error at every step, as in the particle comparisons of the PILCO
    papers and MC-PILCO's simulated rollouts (Amadio et al., IEEE T-RO
    2022). A reference for the moment-matched beliefs, not an exact
    sample of GP function draws. Every sample is a reparameterised function of
    the fixed draws :math:`\xi`, so the states are differentiable by autograd in
    the policy's parameters and :math:`\mu_0` (MC-PILCO's gradient estimate).

    Parameters
    ----------
    model : GPDynamics
        A fitted model (``predict`` gives the mean and variance of :math:`\Delta`).
    mean0 : Tensor, shape (n,)
    cov0 : Tensor, shape (n, n)
        Symmetric positive semi-definite.
    policy : callable
        Batched ``x (P, n) -> u (P, m)``.
    T : int
        Steps, ``>= 0``.
    particles : int
        :math:`P`; ignored when ``noise`` is given.
    seed : int or torch.Generator
        Source of the draws (:func:`particle_noise`); ignored when ``noise`` is given.
    include_noise : bool
        Add the GP's observation-noise variance to :math:`\sigma_\Delta^2`.
    noise : Tensor, shape (T+1, P, n), optional
        Pre-drawn :math:`\xi` (e.g. from :func:`particle_noise`): ``noise[0]``
        places the start particles, ``noise[t]`` is step ``t``'s model error.

    Returns
    -------
    Tensor, shape (T+1, P, n)
    """
    n = model.n
    check_int("T", T, 0)
    if noise is None:
        xi = particle_noise(T, particles, n, seed)
    else:
        xi = _t(noise)
        if xi.ndim != 3 or xi.shape[0] != T + 1 or xi.shape[2] != n or xi.shape[1] < 1:
            raise ValueError(f"noise must have shape ({T + 1}, P, {n}), got {tuple(xi.shape)}")
    Sigma = check_covariance("cov0", cov0, n)
    mu = _t(mean0)
    if mu.shape != (n,):
        raise ValueError(f"mean0 must have shape ({n},), got {tuple(mu.shape)}")
    evals, evecs = torch.linalg.eigh(Sigma)
    root = (evecs * evals.clamp_min(0.0).sqrt()) @ evecs.T  # symmetric: Sigma^{1/2}
    x = mu + xi[0] @ root  # root is symmetric: xi_0 root = (root xi_0)^T
    out = [x]
    for t in range(1, T + 1):
        u = policy(x)
        d_mean, d_var = model.predict(torch.cat([x, u], -1), include_noise=include_noise)
        x = x + d_mean + d_var.sqrt() * xi[t]
        out.append(x)
    return torch.stack(out)
