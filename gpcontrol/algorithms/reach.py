r"""Planar-arm reaching with guided policy search: cost, task, success and the iLQR ceiling.

A torque-driven planar arm (:class:`~gpcontrol.systems.PlanarArm`) starts at
rest in one pose :math:`x_0` and must bring its hand :math:`p(q)` to a target
:math:`g \in \mathbb R^2` within :math:`T` steps. Each target is one MDGPS
condition with the cost

.. math::

    \ell(x, u) = \tfrac{w_u}2 \lVert u\rVert^2 + w_r\,\rho(\lVert p(q) - g\rVert),
    \qquad
    \ell_T(x) = w_T\,\rho(\lVert p(q) - g\rVert) + \tfrac{w_v}2 \lVert \dot q\rVert^2,

    \rho(d) = \tfrac{w_2}2 d^2 + w_1 \sqrt{\alpha + d^2},

the "l1/l2" distance penalty used for reaching in guided policy search
(Levine & Abbeel, NIPS 2014; the GPS reference code's end-effector cost):
the quadratic part pulls from afar, the square-root part keeps a nearly
constant pull near the target, where a quadratic flattens out.

The network policy sees the target, :math:`u = \mu_\theta([x, g])`, so that
one network trained on a few *training* targets reaches *held-out* ones
(:func:`gpcontrol.algorithms.gps.mdgps` with ``contexts``). A reach
succeeds when the final hand distance is below a tolerance (0.05 m). The
ceiling is iLQR on the true dynamics for each target
(:func:`ilqr_ceiling`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import casadi as ca
import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array, check_nonnegative, check_positive
from gpcontrol.costs import Cost
from gpcontrol.policies.mlp import GaussianMLPPolicy, tanh_mlp
from gpcontrol.systems import PlanarArm

__all__ = [
    "EndEffectorCost",
    "ReachingPolicy",
    "ReachingTask",
    "final_distances",
    "rollout_controller",
    "ilqr_ceiling",
    "CeilingResult",
    "TorqueLimitedArm",
]

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------- the cost
class EndEffectorCost(Cost):
    r"""Hand-to-target distance (l1/l2 penalty) with a torque penalty, for a planar arm.

    .. math::

        \ell(x, u) = \tfrac{w_u}2 \lVert u\rVert^2 + w_r\,\rho(d),\qquad
        \ell_T(x) = w_T\,\rho(d) + \tfrac{w_v}2 \lVert \dot q\rVert^2,\qquad
        \rho(d) = \tfrac{w_2}2 d^2 + w_1\sqrt{\alpha + d^2},

    with :math:`d = \lVert p(q) - g\rVert` and the forward kinematics
    :math:`p(q) = \sum_i l_i (\cos\varphi_i, \sin\varphi_i)`,
    :math:`\varphi_i = \varphi_0 + \sum_{j\le i} q_j` (the l1/l2 penalty of
    Levine & Abbeel, NIPS 2014).

    :meth:`~gpcontrol.costs.Cost.quadratize` returns the exact gradient and,
    by default, the Gauss-Newton Hessian :math:`J^\top \nabla^2_p\rho\, J`
    (:math:`J = \partial p / \partial q`), which is positive semi-definite
    because :math:`\rho` is convex in :math:`p`; ``gauss_newton=False``
    adds the curvature term :math:`\sum_k \partial_{p_k}\rho\,\nabla^2_q p_k`
    for the exact Hessian.

    Parameters
    ----------
    system : PlanarArm
        Any number of links; the state is ``[q (N,), dq (N,)]``.
    target : array_like, shape (2,)
        :math:`g`, metres.
    control_weight : float
        :math:`w_u > 0`.
    running_weight, terminal_weight : float
        :math:`w_r, w_T \ge 0`.
    l2, l1 : float
        :math:`w_2, w_1 \ge 0`.
    alpha : float
        :math:`\alpha > 0`, square metres (the l1 part is smooth for
        :math:`d \lesssim \sqrt\alpha`).
    velocity_weight : float
        :math:`w_v \ge 0`.
    gauss_newton : bool
    """

    def __init__(
        self,
        system: PlanarArm,
        target: ArrayLike,
        *,
        control_weight: float = 1e-3,
        running_weight: float = 1.0,
        terminal_weight: float = 10.0,
        l2: float = 1.0,
        l1: float = 1.0,
        alpha: float = 1e-4,
        velocity_weight: float = 0.0,
        gauss_newton: bool = True,
    ) -> None:
        if not isinstance(system, PlanarArm):
            raise TypeError(f"system must be a PlanarArm, got {type(system).__name__}")
        p: Any = system.params
        self.n, self.m = int(system.n), int(system.m)
        self.links = int(p.n_links)
        self.lengths = np.asarray(p.lengths, dtype=float)
        self.base_angle = float(p.base_angle)
        g = as_float_array("target", target).reshape(-1)
        if g.shape != (2,):
            raise ValueError(f"target must have shape (2,), got {np.shape(target)}")
        self.target = g
        self.control_weight = check_positive("control_weight", control_weight)
        self.running_weight = check_nonnegative("running_weight", running_weight)
        self.terminal_weight = check_nonnegative("terminal_weight", terminal_weight)
        self.l2 = check_nonnegative("l2", l2)
        self.l1 = check_nonnegative("l1", l1)
        self.alpha = check_positive("alpha", alpha)
        self.velocity_weight = check_nonnegative("velocity_weight", velocity_weight)
        self.gauss_newton = bool(gauss_newton)

    def __repr__(self) -> str:
        return f"EndEffectorCost(target={self.target.tolist()}, links={self.links})"

    # kinematics --------------------------------------------------------------
    def hand(self, x: ArrayLike) -> Array:
        """Hand position :math:`p(q)`; ``x (..., n) -> (..., 2)``."""
        return self._kinematics(as_batch("x", x, self.n, what="state"))[0]

    def _kinematics(self, x: Array) -> tuple[Array, Array, Array]:
        """Hand ``(..., 2)``, Jacobian ``(..., 2, N)`` and ``d2p (..., 2, N, N)``."""
        N = self.links
        phi = self.base_angle + np.cumsum(x[..., :N], axis=-1)  # (..., N)
        c, s = self.lengths * np.cos(phi), self.lengths * np.sin(phi)
        hand = np.stack([c.sum(-1), s.sum(-1)], axis=-1)
        # Tail sums: d p / d q_j = sum_{i >= j} l_i (-sin phi_i, cos phi_i).
        tc = np.flip(np.cumsum(np.flip(c, -1), -1), -1)
        ts = np.flip(np.cumsum(np.flip(s, -1), -1), -1)
        J = np.stack([-ts, tc], axis=-2)  # (..., 2, N)
        idx = np.maximum.outer(np.arange(N), np.arange(N))  # d2p/dq_j dq_k: tail from max(j, k)
        H = np.stack([-tc[..., idx], -ts[..., idx]], axis=-3)  # (..., 2, N, N)
        return hand, J, H

    def _rho(self, e: Array) -> tuple[Array, Array, Array]:
        """:math:`\\rho`, its gradient ``(..., 2)`` and Hessian ``(..., 2, 2)`` in the offset."""
        d2 = (e**2).sum(-1)
        r = np.sqrt(self.alpha + d2)
        val = 0.5 * self.l2 * d2 + self.l1 * r
        grad = (self.l2 + self.l1 / r)[..., None] * e
        eye = np.eye(2)
        hess = (self.l2 + self.l1 / r)[..., None, None] * eye - (self.l1 / r**3)[
            ..., None, None
        ] * (e[..., :, None] * e[..., None, :])
        return val, grad, hess

    def _state_terms(self, x: Array, w: float) -> tuple[Array, Array, Array]:
        N, n = self.links, self.n
        hand, J, H = self._kinematics(x)
        val, g, Hp = self._rho(hand - self.target)
        batch = x.shape[:-1]
        lx = np.zeros((*batch, n))
        lxx = np.zeros((*batch, n, n))
        lx[..., :N] = w * np.einsum("...k,...kj->...j", g, J)
        hq = np.einsum("...ki,...kl,...lj->...ij", J, Hp, J)
        if not self.gauss_newton:
            hq = hq + np.einsum("...k,...kij->...ij", g, H)
        lxx[..., :N, :N] = w * hq
        return w * val, lx, lxx

    # hooks ---------------------------------------------------------------------
    def _l(self, x: Array, u: Array) -> Array:
        hand = self._kinematics(x)[0]
        val = self._rho(hand - self.target)[0]
        return self.running_weight * val + 0.5 * self.control_weight * (u**2).sum(-1)

    def _l_T(self, x: Array) -> Array:  # noqa: N802 - math name
        hand = self._kinematics(x)[0]
        dq = x[..., self.links :]
        return self.terminal_weight * self._rho(hand - self.target)[
            0
        ] + 0.5 * self.velocity_weight * (dq**2).sum(-1)

    def _quadratize(self, x: Array, u: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        c, cx, cxx = self._state_terms(x, self.running_weight)
        batch = x.shape[:-1]
        l = c + 0.5 * self.control_weight * (u**2).sum(-1)
        lu = self.control_weight * u
        luu = np.broadcast_to(self.control_weight * np.eye(self.m), (*batch, self.m, self.m)).copy()
        return l, cx, lu, cxx, np.zeros((*batch, self.m, self.n)), luu

    def _quadratize_terminal(self, x: Array) -> tuple[Array, Array, Array]:
        c, cx, cxx = self._state_terms(x, self.terminal_weight)
        N = self.links
        dq = x[..., N:]
        c = c + 0.5 * self.velocity_weight * (dq**2).sum(-1)
        cx[..., N:] += self.velocity_weight * dq
        cxx[..., N:, N:] += self.velocity_weight * np.eye(self.n - N)
        return c, cx, cxx

    def _casadi_rho(self, x: Any) -> Any:
        phi = self.base_angle
        px, py = 0.0, 0.0
        for i in range(self.links):
            phi = phi + x[i]
            px = px + self.lengths[i] * ca.cos(phi)
            py = py + self.lengths[i] * ca.sin(phi)
        d2 = (px - self.target[0]) ** 2 + (py - self.target[1]) ** 2
        return 0.5 * self.l2 * d2 + self.l1 * ca.sqrt(self.alpha + d2)

    def _casadi(self, x: Any, u: Any) -> Any:
        return self.running_weight * self._casadi_rho(x) + 0.5 * self.control_weight * ca.sumsqr(u)

    def _casadi_terminal(self, x: Any) -> Any:
        dq = x[self.links :]
        return self.terminal_weight * self._casadi_rho(x) + 0.5 * self.velocity_weight * ca.sumsqr(
            dq
        )


# ---------------------------------------------------------------------------- the network
class ReachingPolicy(GaussianMLPPolicy):
    r"""Target-conditioned network for a planar arm: input :math:`z = [q, \dot q, g]`.

    .. math::

        \mu_\theta(z) = \mathrm{MLP}\big(\,(z - o)/s,\ (g - p(q))/\lambda\,\big),

    i.e. the normalised input of :class:`~gpcontrol.policies.mlp.GaussianMLPPolicy`
    plus the hand-to-target offset :math:`g - p(q)` (forward kinematics
    :math:`p`, scale :math:`\lambda` in metres), a fixed feature that makes
    the map from targets to torques smoother to learn from few targets.

    Parameters
    ----------
    system : PlanarArm
    hidden : sequence of int
    seed : int
    offset_scale : float
        :math:`\lambda > 0`.
    """

    def __init__(
        self,
        system: PlanarArm,
        hidden: tuple[int, ...] = (64, 64),
        *,
        seed: int = 0,
        offset_scale: float = 0.1,
    ) -> None:
        if not isinstance(system, PlanarArm):
            raise TypeError(f"system must be a PlanarArm, got {type(system).__name__}")
        n, m = int(system.n), int(system.m)
        super().__init__(n + 2, m, hidden, seed=seed)
        p: Any = system.params
        self.links = int(p.n_links)
        self.base_angle = float(p.base_angle)
        self.register_buffer("lengths", torch.tensor(p.lengths, dtype=torch.float64))
        self.offset_scale = check_positive("offset_scale", offset_scale)
        self.net = tanh_mlp([n + 4, *(int(h) for h in hidden), m], seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean for inputs ``x (..., n + 2)`` = ``[q, dq, g]``."""
        phi = self.base_angle + torch.cumsum(x[..., : self.links], dim=-1)
        lengths: Any = self.lengths
        hand = torch.stack([(lengths * phi.cos()).sum(-1), (lengths * phi.sin()).sum(-1)], -1)
        feature = (x[..., -2:] - hand) / self.offset_scale
        z = (x - self.offset) / self.scale  # type: ignore[operator]
        return self.net(torch.cat([z, feature], dim=-1))


# ---------------------------------------------------------------------------- the task
class TorqueLimitedArm:
    r"""The arm with its torques clipped to the box, :math:`x' = f(x, \mathrm{clip}(u))`.

    Guided policy search treats the saturation as part of the unknown
    dynamics; the samples record the commanded torques.

    Parameters
    ----------
    system : PlanarArm
    """

    def __init__(self, system: PlanarArm) -> None:
        self.system = system
        self.n, self.m = int(system.n), int(system.m)

    def step(self, x: ArrayLike, u: ArrayLike) -> Array:
        """``(..., n), (..., m) -> (..., n)`` with ``u`` clipped to ``[u_low, u_high]``."""
        return self.system.step(x, self.system.clip_control(u))


@dataclasses.dataclass(frozen=True, eq=False)
class ReachingTask:
    r"""Reaching from one start pose to several targets with a planar arm.

    Attributes
    ----------
    system : PlanarArm
    x0 : ndarray, shape (n,)
        Start state (at rest).
    train_targets : ndarray, shape (M, 2)
        Targets trained on (the MDGPS conditions).
    test_targets : ndarray, shape (K, 2)
        Held-out targets, only evaluated.
    T : int
        Horizon.
    tolerance : float
        Success: final hand distance below it, metres.
    cost_weights : dict
        Keyword arguments of :class:`EndEffectorCost`.
    """

    system: PlanarArm
    x0: Array
    train_targets: Array
    test_targets: Array
    T: int
    tolerance: float = 0.05
    cost_weights: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def default(
        cls,
        *,
        dt: float = 0.05,
        T: int = 50,
        substeps: int = 5,
        tolerance: float = 0.05,
    ) -> ReachingTask:
        r"""The issue-7 task: Li & Todorov's arm, dt = 0.05 s, T = 50, 4 + 16 targets.

        The hand starts at rest at :math:`(0, 0.2)` m (elbow up). The training
        targets are the corners of the square of half-side 0.1 m centred at
        :math:`c = (0, 0.4)` m; the held-out targets are the 4 x 4 grid
        :math:`c + 0.1\,(a, b)`, :math:`a, b \in \{-0.75, -0.25, 0.25, 0.75\}`,
        inside it (0.14 to 0.32 m from the start). ``substeps`` RK4 steps per
        control period (5 gives the default 0.01 s internal step; the hand
        error against a 0.5 ms reference stays below 1 mm over a 2.5 s
        random-torque run, against 0.3 m with one step).
        """
        system = PlanarArm(dt=dt, substeps=substeps)
        x0 = np.concatenate([system.inverse_kinematics([0.0, 0.2]), np.zeros(2)])
        centre, half = np.array([0.0, 0.4]), 0.1
        corners = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
        grid = np.array([-0.75, -0.25, 0.25, 0.75])
        held = np.array([[a, b] for a in grid for b in grid])
        return cls(
            system,
            x0,
            centre + half * corners,
            centre + half * held,
            int(T),
            check_positive("tolerance", tolerance),
            {
                "control_weight": 1e-2,
                "running_weight": 1.0,
                "terminal_weight": 50.0,
                "velocity_weight": 0.1,
            },
        )

    def __post_init__(self) -> None:
        if not isinstance(self.system, PlanarArm):
            raise TypeError(f"system must be a PlanarArm, got {type(self.system).__name__}")
        n = self.system.n
        x0 = as_float_array("x0", self.x0).reshape(-1)
        if x0.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {np.shape(self.x0)}")
        for name in ("train_targets", "test_targets"):
            v = as_float_array(name, getattr(self, name))
            if v.ndim != 2 or v.shape[1] != 2:
                raise ValueError(f"{name} must have shape (K, 2), got {v.shape}")
            object.__setattr__(self, name, v)
        if len(self.train_targets) == 0:
            raise ValueError("train_targets must hold at least one target")
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"T must be a positive integer, got {self.T!r}")
        object.__setattr__(self, "x0", x0)

    @property
    def dynamics(self) -> TorqueLimitedArm:
        """The torque-limited arm the samples run on."""
        return TorqueLimitedArm(self.system)

    def cost(self, target: ArrayLike) -> EndEffectorCost:
        """:class:`EndEffectorCost` of one target with the task's weights."""
        return EndEffectorCost(self.system, target, **self.cost_weights)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (recorded in run folders)."""
        return {
            "system": self.system.describe(),
            "x0": self.x0.tolist(),
            "train_targets": self.train_targets.tolist(),
            "test_targets": self.test_targets.tolist(),
            "T": self.T,
            "tolerance": self.tolerance,
            "cost_weights": dict(self.cost_weights),
        }


def rollout_controller(task: ReachingTask, controller: Any) -> tuple[Array, Array]:
    r"""Noise-free rollout :math:`x_{t+1} = f(x_t, \mathrm{clip}(\pi(x_t, t)))` from ``task.x0``.

    Parameters
    ----------
    task : ReachingTask
    controller : callable
        ``(x (n,), t) -> u (m,)``.

    Returns
    -------
    X : ndarray, shape (T + 1, n)
    U : ndarray, shape (T, m)
        The applied (clipped) torques.
    """
    dyn = task.dynamics
    X = np.empty((task.T + 1, dyn.n))
    U = np.empty((task.T, dyn.m))
    X[0] = task.x0
    for t in range(task.T):
        U[t] = task.system.clip_control(controller(X[t], t))
        X[t + 1] = task.system.step(X[t], U[t])
    if not np.isfinite(X).all():
        raise FloatingPointError("the rollout diverged (non-finite state)")
    return X, U


def final_distances(task: ReachingTask, X_final: ArrayLike, targets: ArrayLike) -> Array:
    r""":math:`\lVert p(q_T) - g\rVert` for final states ``(K, n)`` and targets ``(K, 2)``."""
    hand = task.system.end_effector(as_batch("X_final", X_final, task.system.n))
    return np.asarray(np.linalg.norm(hand - as_float_array("targets", targets), axis=-1))


@dataclasses.dataclass(frozen=True)
class CeilingResult:
    """iLQR on the true dynamics for every target (:func:`ilqr_ceiling`).

    Attributes
    ----------
    targets : ndarray, shape (K, 2)
    distances : ndarray, shape (K,)
        Final hand distances.
    costs : ndarray, shape (K,)
    success : ndarray of bool, shape (K,)
    X : ndarray, shape (K, T + 1, n)
    U : ndarray, shape (K, T, m)
        Torques, inside the box.
    converged : ndarray of bool, shape (K,)
    """

    targets: Array
    distances: Array
    costs: Array
    success: NDArray[np.bool_]
    X: Array
    U: Array
    converged: NDArray[np.bool_]


def ilqr_ceiling(task: ReachingTask, targets: ArrayLike | None = None) -> CeilingResult:
    r"""The ceiling: control-limited iLQR on the true arm for each target.

    .. math::

        \min_{U,\ |u_t| \le \bar u} \sum_t \ell_g(x_t, u_t) + \ell_{T,g}(x_T),
        \qquad x_{t+1} = f(x_t, u_t),\ x_0 = \text{task.x0},

    from zero torques (:func:`gpcontrol.solvers.ilqr`).

    Parameters
    ----------
    task : ReachingTask
    targets : array_like, shape (K, 2), optional
        Default: training then held-out targets.
    """
    from gpcontrol.solvers import ilqr

    G = (
        np.concatenate([task.train_targets, task.test_targets])
        if targets is None
        else as_float_array("targets", targets)
    )
    if G.ndim != 2 or G.shape[1] != 2:
        raise ValueError(f"targets must have shape (K, 2), got {G.shape}")
    sys_ = task.system
    Xs, Us, costs, conv = [], [], [], []
    for g in G:
        res = ilqr(
            sys_, task.cost(g), task.x0, np.zeros((task.T, sys_.m)),
            u_low=sys_.u_low, u_high=sys_.u_high,
        )  # fmt: skip
        Xs.append(res.X)
        Us.append(res.U)
        costs.append(res.cost)
        conv.append(res.converged)
    X = np.stack(Xs)
    d = final_distances(task, X[:, -1], G)
    return CeilingResult(G, d, np.array(costs), d < task.tolerance, X, np.stack(Us), np.array(conv))
