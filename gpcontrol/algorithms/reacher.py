r"""Gymnasium's MuJoCo ``Reacher-v5`` with guided policy search: state, cost, task, run.

The Reacher is a two-link planar arm in MuJoCo (links :math:`l_1 = 0.1` m,
:math:`l_2 = 0.11` m to the fingertip, joint damping and armature, motors of
gear 200 with controls in :math:`[-1, 1]^2`, two RK4 steps of 0.01 s per
environment step, :math:`\Delta t = 0.02` s). GPS learns on the state

.. math::

    x = (q_1, q_2, \dot q_1, \dot q_2)

read from the MuJoCo data (:func:`reacher_state`; the angles unwrapped, so
that rollouts are continuous), and the fingertip is

.. math::

    p(q) = l_1 (\cos q_1, \sin q_1) + l_2 (\cos(q_1 + q_2), \sin(q_1 + q_2)) .

Each training target :math:`g_c` is one MDGPS condition: the rollout resets
the environment to the start :math:`x_0` with target :math:`g_c`
(:func:`set_reacher_state`: ``qpos = (q, g)``, ``qvel = (dq, 0, 0)``
through ``env.unwrapped.set_state``) and steps it for :math:`T` steps, with
the l1/l2 fingertip cost of :class:`~gpcontrol.algorithms.reach.EndEffectorCost`

.. math::

    \ell(x, u) = \tfrac{w_u}2 \lVert u\rVert^2 + w_r\,\rho(\lVert p(q) - g\rVert),\qquad
    \ell_T(x) = w_T\,\rho(\lVert p(q) - g\rVert) + \tfrac{w_v}2 \lVert\dot q\rVert^2 .

The network :math:`u = \mu_\theta([x, g])` sees the target, and a reach
succeeds when the final fingertip distance is below 0.02 m (the fingertip
and target spheres have radii 0.01 and 0.009 m: they touch). MuJoCo is an
optional dependency of gpcontrol: it is imported only when a task is built.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array, check_nonnegative, check_positive
from gpcontrol.algorithms.gps import MDGPSOptions, MDGPSState, mdgps_init, mdgps_step
from gpcontrol.algorithms.gps_env import EnvSampler
from gpcontrol.algorithms.reach import EndEffectorCost
from gpcontrol.algorithms.reach_run import ReachingMetrics
from gpcontrol.envs.adapter import TaskEnv, adapt
from gpcontrol.policies.mlp import GaussianMLPPolicy, tanh_mlp

__all__ = [
    "require_mujoco",
    "make_reacher",
    "reacher_state",
    "set_reacher_state",
    "reacher_links",
    "ReacherCost",
    "ReacherPolicy",
    "ReacherTask",
    "ReacherRun",
    "reacher_options",
    "evaluate_reacher",
    "run_reacher",
    "save_reacher_figure",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


# ---------------------------------------------------------------------------- MuJoCo access
_INSTALL = (
    "the Reacher-v5 task needs MuJoCo, an optional dependency of gpcontrol: "
    "pip install mujoco imageio (or pip install 'gpcontrol[mujoco]')"
)


def require_mujoco() -> Any:
    """Import and return :mod:`mujoco`, or raise an ImportError saying how to install it."""
    try:
        import mujoco
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return mujoco


def make_reacher() -> Any:
    """``gymnasium.make("Reacher-v5")``, with an ImportError naming the install command.

    Gymnasium's MuJoCo environments also import ``imageio`` (for rendering).
    """
    require_mujoco()
    import gymnasium as gym

    try:
        return gym.make("Reacher-v5")
    except (ImportError, gym.error.DependencyNotInstalled) as err:
        raise ImportError(f"{_INSTALL} ({err})") from err


def _reacher(env: Any) -> Any:
    base = env.unwrapped
    data, model = getattr(base, "data", None), getattr(base, "model", None)
    if data is None or model is None or model.nq != 4 or model.nu != 2:
        raise ValueError(
            "env must be Gymnasium's MuJoCo Reacher (model with nq = 4, nu = 2), "
            f"got {type(base).__name__}"
        )
    return base


def reacher_state(observation: Any, env: Any) -> Array:
    r"""The learning state :math:`x = (q_1, q_2, \dot q_1, \dot q_2)` of a Reacher env.

    Read from ``env.unwrapped.data`` (``qpos[:2]``, ``qvel[:2]``; the angles
    unwrapped) and checked against the observation's
    :math:`(\cos q, \sin q)` and :math:`\dot q` entries. (The observation's
    last two entries, fingertip minus target, come from body positions that
    MuJoCo last computed at an intermediate stage of its RK4 step, not at the
    final state, so they are off by up to about a millimetre at speed; the
    cost uses :math:`p(q)` of the state itself.)

    .. math::

        y = (\cos q, \sin q, g, \dot q, p(q) - g) \ \mapsto\ x = (q, \dot q)

    Parameters
    ----------
    observation : array_like, shape (10,)
    env : gymnasium.Env
        ``Reacher-v5`` (possibly wrapped).

    Returns
    -------
    ndarray, shape (4,)
    """
    base = _reacher(env)
    y = as_float_array("observation", observation).reshape(-1)
    if y.shape != (10,):
        raise ValueError(f"observation must have shape (10,) (Reacher-v5), got {y.shape}")
    q = np.array(base.data.qpos[:2], dtype=np.float64)
    dq = np.array(base.data.qvel[:2], dtype=np.float64)
    if np.abs(np.concatenate([np.cos(q), np.sin(q), dq]) - y[[0, 1, 2, 3, 6, 7]]).max() > 1e-6:
        raise ValueError("observation does not match env.unwrapped.data (is this Reacher-v5?)")
    return np.concatenate([q, dq])


def set_reacher_state(env: Any, x: ArrayLike, target: ArrayLike) -> Array:
    r"""Put a Reacher env into state ``x (4,)`` with target ``g (2,)``; return the observation.

    .. math::

        \texttt{qpos} = (q_1, q_2, g_x, g_y),\qquad
        \texttt{qvel} = (\dot q_1, \dot q_2, 0, 0)

    through ``env.unwrapped.set_state`` (which runs ``mj_forward``); the
    target's slide joints have reference positions equal to the target
    body's position, so ``qpos[2:]`` is the target's world position, as in
    Gymnasium's own ``reset``. Call it right after ``env.reset()`` so that
    the rest of the MuJoCo data (warm starts) is reset too.
    """
    base = _reacher(env)
    xa = as_float_array("x", x).reshape(-1)
    g = as_float_array("target", target).reshape(-1)
    if xa.shape != (4,) or g.shape != (2,):
        raise ValueError(f"x and target must have shapes (4,), (2,), got {xa.shape}, {g.shape}")
    base.set_state(np.concatenate([xa[:2], g]), np.concatenate([xa[2:], np.zeros(2)]))
    base.goal = g.copy()
    return np.asarray(base._get_obs(), dtype=np.float64)


def reacher_links(env: Any) -> tuple[float, float]:
    r"""Link lengths :math:`(l_1, l_2)` read from the Reacher's MuJoCo model.

    :math:`l_1` is the offset of ``body1`` in ``body0``, :math:`l_2` of
    ``fingertip`` in ``body1`` (both along the link's x axis); ``body0`` must
    sit at the world origin in the plane.
    """
    model = _reacher(env).model
    pos = {model.body(i).name: np.array(model.body_pos[i]) for i in range(model.nbody)}
    if not {"body0", "body1", "fingertip"} <= pos.keys() or np.abs(pos["body0"][:2]).max() > 0:
        raise ValueError(
            "env's model has no Reacher chain body0 -> body1 -> fingertip at the origin"
        )
    l1, l2 = pos["body1"], pos["fingertip"]
    if abs(l1[1]) > 0 or abs(l2[1]) > 0:
        raise ValueError("Reacher links must lie along their body's x axis")
    return float(l1[0]), float(l2[0])


# ---------------------------------------------------------------------------- the cost
class ReacherCost(EndEffectorCost):
    r"""Fingertip-to-target distance (l1/l2 penalty) with a control penalty, for the Reacher.

    .. math::

        \ell(x, u) = \tfrac{w_u}2 \lVert u\rVert^2 + w_r\,\rho(d),\qquad
        \ell_T(x) = w_T\,\rho(d) + \tfrac{w_v}2 \lVert \dot q\rVert^2,\qquad
        \rho(d) = \tfrac{w_2}2 d^2 + w_1\sqrt{\alpha + d^2},

    :math:`d = \lVert p(q) - g\rVert` with the two-link fingertip
    :math:`p(q)` of the module docstring (Levine & Abbeel, NIPS 2014, l1/l2
    penalty). The derivatives are those of
    :class:`~gpcontrol.algorithms.reach.EndEffectorCost` (Gauss-Newton by
    default); only the kinematics differ (links from the MuJoCo model, base
    angle 0).

    Parameters
    ----------
    lengths : (float, float)
        :math:`(l_1, l_2)`, metres (:func:`reacher_links`).
    target : array_like, shape (2,)
    control_weight, running_weight, terminal_weight, l2, l1, alpha, velocity_weight : float
        As in :class:`~gpcontrol.algorithms.reach.EndEffectorCost`.
    gauss_newton : bool
    """

    def __init__(
        self,
        lengths: tuple[float, float],
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
        lens = as_float_array("lengths", lengths).reshape(-1)
        if lens.shape != (2,) or (lens <= 0).any():
            raise ValueError(f"lengths must be two positive link lengths, got {lengths!r}")
        g = as_float_array("target", target).reshape(-1)
        if g.shape != (2,):
            raise ValueError(f"target must have shape (2,), got {np.shape(target)}")
        self.n, self.m, self.links = 4, 2, 2
        self.lengths, self.base_angle, self.target = lens, 0.0, g
        self.control_weight = check_positive("control_weight", control_weight)
        self.running_weight = check_nonnegative("running_weight", running_weight)
        self.terminal_weight = check_nonnegative("terminal_weight", terminal_weight)
        self.l2 = check_nonnegative("l2", l2)
        self.l1 = check_nonnegative("l1", l1)
        self.alpha = check_positive("alpha", alpha)
        self.velocity_weight = check_nonnegative("velocity_weight", velocity_weight)
        self.gauss_newton = bool(gauss_newton)

    def __repr__(self) -> str:
        return f"ReacherCost(target={self.target.tolist()}, lengths={self.lengths.tolist()})"


# ---------------------------------------------------------------------------- the network
class ReacherPolicy(GaussianMLPPolicy):
    r"""Target-conditioned network for the Reacher: input :math:`z = [q, \dot q, g]`.

    .. math::

        \mu_\theta(z) = \mathrm{MLP}\big((z - o)/s,\ (g - p(q))/\lambda\big),

    the normalised input plus the fingertip-to-target offset (scale
    :math:`\lambda`), as :class:`~gpcontrol.algorithms.reach.ReachingPolicy`
    does for the planar arm.

    Parameters
    ----------
    lengths : (float, float)
    hidden : sequence of int
    seed : int
    offset_scale : float
        :math:`\lambda > 0`, metres.
    """

    def __init__(
        self,
        lengths: tuple[float, float],
        hidden: tuple[int, ...] = (64, 64),
        *,
        seed: int = 0,
        offset_scale: float = 0.05,
    ) -> None:
        super().__init__(6, 2, hidden, seed=seed)
        lens = as_float_array("lengths", lengths).reshape(-1)
        if lens.shape != (2,):
            raise ValueError(f"lengths must have shape (2,), got {lens.shape}")
        self.register_buffer("lengths", torch.from_numpy(lens.copy()))
        self.offset_scale = check_positive("offset_scale", offset_scale)
        self.net = tanh_mlp([8, *(int(h) for h in hidden), 2], seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean for inputs ``x (..., 6)`` = ``[q, dq, g]``."""
        phi = torch.cumsum(x[..., :2], dim=-1)
        lengths: Any = self.lengths
        tip = torch.stack([(lengths * phi.cos()).sum(-1), (lengths * phi.sin()).sum(-1)], -1)
        feature = (x[..., -2:] - tip) / self.offset_scale
        z = (x - self.offset) / self.scale  # type: ignore[operator]
        return self.net(torch.cat([z, feature], dim=-1))


# ---------------------------------------------------------------------------- the task
@dataclasses.dataclass(frozen=True, eq=False)
class ReacherTask:
    r"""Reaching several targets from one start with Gymnasium's ``Reacher-v5``.

    Attributes
    ----------
    env : TaskEnv
        ``Reacher-v5`` adapted with :func:`reacher_state` (``n = 4``, angles 0 and 1).
    x0 : ndarray, shape (4,)
        Start state.
    train_targets : ndarray, shape (M, 2)
    test_targets : ndarray, shape (K, 2)
        Held-out targets, only evaluated.
    T : int
        Horizon (environment steps, at most the episode length 50).
    tolerance : float
        Success: final fingertip distance below it, metres.
    cost_weights : dict
        Keyword arguments of :class:`ReacherCost`.
    """

    env: TaskEnv
    x0: Array
    train_targets: Array
    test_targets: Array
    T: int
    tolerance: float = 0.02
    cost_weights: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def default(cls, *, T: int = 50, tolerance: float = 0.02, grid: int = 3) -> ReacherTask:
        r"""The issue-7 Reacher task: start at rest at :math:`q = 0`, 9 + 8 targets.

        The start is the centre of Gymnasium's start distribution (arm
        stretched along :math:`+x`, fingertip at (0.21, 0) m). In polar
        coordinates :math:`g = r(\cos\varphi, \sin\varphi)`, the training
        targets are the ``grid`` x ``grid`` points with :math:`r` evenly from
        0.08 to 0.18 m and :math:`\varphi` evenly from :math:`\pi/6` to
        :math:`2\pi/3` (``grid = 2``: only the 4 corners, which generalise
        much worse), and the held-out targets the interior points
        :math:`r \in \{0.105, 0.155\}` m,
        :math:`\varphi \in \{\pi/4, 3\pi/8, \pi/2, 5\pi/8\}`; all lie in
        Gymnasium's target disc :math:`\lVert g\rVert < 0.2` m.
        """
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
        env = adapt(
            make_reacher(),
            x0_mean=np.zeros(4),
            state_fn=reacher_state,
            angle_indices=(0, 1),
            state_names=("q1", "q2", "dq1", "dq2"),
            control_names=("a1", "a2"),
        )

        def polar(r: Array, phi: Array) -> Array:
            return np.array([[a * np.cos(b), a * np.sin(b)] for a in r for b in phi])

        train = polar(np.linspace(0.08, 0.18, grid), np.linspace(np.pi / 6, 2 * np.pi / 3, grid))
        held = polar(np.array([0.105, 0.155]), np.pi * np.array([2, 3, 4, 5]) / 8)
        return cls(
            env,
            np.zeros(4),
            train,
            held,
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
        if not isinstance(self.env, TaskEnv):
            raise TypeError(f"env must be a TaskEnv, got {type(self.env).__name__}")
        _reacher(self.env)
        x0 = as_float_array("x0", self.x0).reshape(-1)
        if x0.shape != (4,):
            raise ValueError(f"x0 must have shape (4,), got {np.shape(self.x0)}")
        for name in ("train_targets", "test_targets"):
            v = as_float_array(name, getattr(self, name))
            if v.ndim != 2 or v.shape[1] != 2:
                raise ValueError(f"{name} must have shape (K, 2), got {v.shape}")
            object.__setattr__(self, name, v)
        if len(self.train_targets) == 0:
            raise ValueError("train_targets must hold at least one target")
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"T must be a positive integer, got {self.T!r}")
        horizon = self.env.task.horizon
        if horizon is not None and self.T > horizon:
            raise ValueError(f"T = {self.T} exceeds the env's episode of {horizon} steps")
        check_positive("tolerance", self.tolerance)
        object.__setattr__(self, "x0", x0)

    @property
    def lengths(self) -> tuple[float, float]:
        """Link lengths from the MuJoCo model."""
        return reacher_links(self.env)

    def cost(self, target: ArrayLike) -> ReacherCost:
        """:class:`ReacherCost` of one target with the task's weights."""
        return ReacherCost(self.lengths, target, **self.cost_weights)

    def fingertip(self, x: ArrayLike) -> Array:
        """Fingertip :math:`p(q)` for states ``(..., 4)``, metres, ``(..., 2)``."""
        return ReacherCost(self.lengths, np.zeros(2)).hand(x)

    def sampler(self, targets: ArrayLike) -> EnvSampler:
        """An :class:`~gpcontrol.algorithms.gps_env.EnvSampler`, condition c at ``targets[c]``."""
        G = as_batch("targets", targets, 2)

        def reset_to(env: TaskEnv, condition: int, x0: Array) -> Array:
            env.reset()
            return set_reacher_state(env, x0, G[condition])

        return EnvSampler(self.env, reset_to)

    def final_distances(self, X_final: ArrayLike, targets: ArrayLike) -> Array:
        r""":math:`\lVert p(q_T) - g\rVert` for final states ``(K, 4)`` and targets ``(K, 2)``."""
        tip = self.fingertip(as_batch("X_final", X_final, 4))
        return np.asarray(np.linalg.norm(tip - as_float_array("targets", targets), axis=-1))


# ---------------------------------------------------------------------------- the run
@dataclasses.dataclass(frozen=True, eq=False)
class ReacherRun:
    """Result of :func:`run_reacher`: the final MDGPS state and every iteration's metrics."""

    task: ReacherTask
    state: MDGPSState
    metrics: tuple[ReachingMetrics, ...]


def reacher_options(seed: int = 0, **changes: Any) -> MDGPSOptions:
    r"""MDGPS options for :meth:`ReacherTask.default` (tuned on seed 0 only).

    15 iterations of 5 samples per target (675 episodes for 9 targets),
    :math:`\epsilon_0 = 0.2` nats per step with multipliers in ``[0.2, 3]``,
    initial control variance 0.05 (standard deviation 0.22 of the [-1, 1]
    box; with 0.01 the local controllers of the target folded close to the
    base, :math:`r = 0.08` m at 120 degrees, stalled 6-10 cm short on seeds
    0 and 1), a (64, 64) tanh network and 300 Adam steps per S-step;
    ``changes`` override any field.
    """
    base = MDGPSOptions(
        iterations=15,
        samples=5,
        kl_step=0.2,
        step_range=(0.2, 3.0),
        init_variance=0.05,
        hidden=(64, 64),
        policy_iterations=300,
        seed=seed,
    )
    return dataclasses.replace(base, **changes)


def evaluate_reacher(task: ReacherTask, state: MDGPSState) -> tuple[Array, Array, Array]:
    r"""Final fingertip distances of the noise-free local controllers and network.

    Returns
    -------
    local : ndarray, shape (M,)
        Local controllers' means :math:`u = K_t x + k_t` on their training targets.
    train, test : ndarray, shapes (M,), (K,)
        The network :math:`u = \mu_\theta([x, g])` on the training and held-out targets.
    """
    rng = np.random.default_rng(0)  # unused by the env sampler

    def finals(G: Array, controllers: list[Any]) -> Array:
        sampler = task.sampler(G)
        X = np.stack(
            [
                sampler.sample_rollouts(c, ctrl, task.x0, task.T, 1, rng)[0][0, -1]
                for c, ctrl in enumerate(controllers)
            ]
        )
        return task.final_distances(X, G)

    local = finals(task.train_targets, [c.as_deterministic() for c in state.controllers])

    def network(G: Array) -> Array:
        return finals(G, [state.policy.controller(deterministic=True, context=g) for g in G])

    return local, network(task.train_targets), network(task.test_targets)


def run_reacher(
    task: ReacherTask,
    options: MDGPSOptions,
    *,
    callback: Callable[[ReachingMetrics], None] | None = None,
    policy: GaussianMLPPolicy | None = None,
) -> ReacherRun:
    r"""MDGPS on ``Reacher-v5`` with a target-conditioned network.

    .. math::

        \text{conditions } c = 1..M:\ (x_0, g_c),\qquad
        \pi_\theta(u \mid x, g) = \mathcal N(\mu_\theta([x, g]), \Sigma_\pi)

    Runs ``options.iterations`` iterations of
    :func:`~gpcontrol.algorithms.gps.mdgps_step` (Montgomery & Levine,
    NIPS 2016) with rollouts drawn from the environment
    (:meth:`ReacherTask.sampler`), and measures after each the success of
    the local controllers and of the network on training and held-out
    targets (:class:`~gpcontrol.algorithms.reach_run.ReachingMetrics`).

    Parameters
    ----------
    task : ReacherTask
    options : MDGPSOptions
    callback : callable, optional
        Called with each iteration's metrics.
    policy : GaussianMLPPolicy, optional
        With 6 inputs ``[x, g]``; default :class:`ReacherPolicy`.

    Returns
    -------
    ReacherRun
    """
    if not isinstance(task, ReacherTask):
        raise TypeError(f"task must be a ReacherTask, got {type(task).__name__}")
    if not isinstance(options, MDGPSOptions):
        raise TypeError(f"options must be MDGPSOptions, got {type(options).__name__}")
    G = task.train_targets
    x0s = np.tile(task.x0, (len(G), 1))
    costs = [task.cost(g) for g in G]
    sampler = task.sampler(G)
    if policy is None:
        policy = ReacherPolicy(task.lengths, options.hidden, seed=options.seed)
    state = mdgps_init(sampler, costs, x0s, task.T, options=options, contexts=G, policy=policy)
    metrics: list[ReachingMetrics] = []
    tol = task.tolerance
    while state.iteration < options.iterations:
        t0 = time.perf_counter()
        record = mdgps_step(sampler, costs, x0s, task.T, state, options=options, contexts=G)
        local, train, test = evaluate_reacher(task, state)
        m = ReachingMetrics(
            iteration=state.iteration,
            rollouts=state.rollouts,
            local_success=float(np.mean(local < tol)),
            train_success=float(np.mean(train < tol)),
            test_success=float(np.mean(test < tol)),
            local_distances=tuple(local.tolist()),
            train_distances=tuple(train.tolist()),
            test_distances=tuple(test.tolist()),
            sample_cost=float(np.mean(record.sample_costs)),
            policy_cost=float(np.mean(record.policy_costs)),
            kl=tuple(record.kl.tolist()),
            epsilon=tuple(record.epsilon.tolist()),
            statuses=record.statuses,
            seconds=time.perf_counter() - t0,
        )
        metrics.append(m)
        if callback is not None:
            callback(m)
    return ReacherRun(task, state, tuple(metrics))


def save_reacher_figure(
    metrics: tuple[ReachingMetrics, ...] | list[ReachingMetrics],
    path: str | Path,
    *,
    tolerance: float = 0.02,
) -> Path:
    r"""Success vs rollouts: shares of targets within ``tolerance`` after each iteration.

    .. math::

        s_i = \tfrac1K \textstyle\sum_k \mathbb 1[\lVert p(q_T^{(k)}) - g_k\rVert < \delta]

    for the local controllers and for the network on training and held-out targets.
    """
    from gpcontrol.plotting import new_figure

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = new_figure(6.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    r = [m.rollouts for m in metrics]
    for key, label in (
        ("local_success", "local controllers (train)"),
        ("train_success", "network, training targets"),
        ("test_success", "network, held-out targets"),
    ):
        ax.plot(r, [100 * getattr(m, key) for m in metrics], marker="o", label=label)
    ax.set_xlabel("rollouts (Reacher-v5 episodes)")
    ax.set_ylabel(f"targets reached within {tolerance:g} m [%]")
    ax.set_ylim(-5, 105)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(out)
    return out
