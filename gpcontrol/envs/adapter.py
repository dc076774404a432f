r"""Any Gymnasium environment with ``Box`` spaces as a model-based learning task.

Model-based learners (:func:`gpcontrol.algorithms.pilco.pilco`) need more than
Gymnasium's interface gives: the state :math:`x \in \mathbb R^n` the dynamics
model learns on, which of its entries are angles, the control period, the
control box and a Gaussian start belief. A :class:`LearningTask` holds exactly
that,

.. math::

    x_{k+1} - x_k = f(x_k, u_k) + w_k, \qquad
    u_k \in [u_{\mathrm{low}}, u_{\mathrm{high}}] \subset \mathbb R^m, \qquad
    x_0 \sim \mathcal N(\mu_0, \Sigma_0),

with one learning step :math:`k` made of ``action_repeat`` = :math:`r`
environment steps holding :math:`u_k` (:math:`\Delta t = r\,\Delta t_{\mathrm{env}}`)
and the state read from the environment by a map :math:`x = s(y, \text{env})`
of its observation :math:`y` (identity by default, i.e. learning directly on
observations). :class:`TaskEnv` is the wrapped environment the learner
interacts with: it observes :math:`x_k` and returns the summed reward

.. math::

    R_k = \sum_{j=0}^{r-1} r_{kr + j},

so an episode's return is still the environment's own return. A gpcontrol
:class:`~gpcontrol.envs.core.SystemEnv` gives its task automatically
(:func:`learning_task`); any other environment is described by the user's
arguments to :func:`adapt`. ``Pendulum-v1``'s observation
:math:`(\cos\vartheta, \sin\vartheta, \dot\vartheta)` (angle from upright) maps
to gpcontrol's pendulum state :math:`(\vartheta + \pi, \dot\vartheta)` by
:func:`pendulum_v1_state`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import (
    as_float_array,
    check_bounds,
    check_positive,
    check_psd,
    names_tuple,
    readonly_copy,
)

__all__ = ["LearningTask", "TaskEnv", "adapt", "learning_task", "pendulum_v1_state"]

Array = NDArray[np.float64]
StateMap = Callable[[Any, gym.Env[Any, Any]], ArrayLike]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class LearningTask:
    r"""What a model-based learner needs to know about an environment.

    .. math::

        x_0 \sim \mathcal N(\mu_0, \Sigma_0), \qquad
        u \in [u_{\mathrm{low}}, u_{\mathrm{high}}], \qquad
        \Delta t = r\,\Delta t_{\mathrm{env}} .

    It has the attributes a :class:`~gpcontrol.systems.base.System` offers to
    the learner (``n``, ``m``, ``dt``, ``angle_indices``, ``u_low``,
    ``u_high``, ``state_names``, ``control_names``), so it can stand in for one
    (e.g. :meth:`gpcontrol.models.gp.GPDynamics.for_system`).

    Attributes
    ----------
    n, m : int
        State and control dimensions.
    dt : float
        Period of one learning step (``action_repeat`` environment steps), s.
    angle_indices : tuple of int
        State entries that are angles (they enter models and policies through
        :math:`(\sin, \cos)`).
    u_low, u_high : ndarray, shape (m,)
        Finite control box.
    x0_mean : ndarray, shape (n,)
        :math:`\mu_0`.
    x0_cov : ndarray, shape (n, n)
        :math:`\Sigma_0`, symmetric positive semi-definite.
    horizon : int or None
        Learning steps per episode (``None``: the caller must give one).
    action_repeat : int
        :math:`r \ge 1`.
    state_fn : callable or None
        ``state_fn(observation, env) -> x (n,)``; ``None`` learns on observations.
    state_names, control_names : tuple of str
    name : str
    """

    n: int
    m: int
    dt: float
    angle_indices: tuple[int, ...]
    u_low: Array
    u_high: Array
    x0_mean: Array
    x0_cov: Array
    horizon: int | None = None
    action_repeat: int = 1
    state_fn: StateMap | None = None
    state_names: tuple[str, ...] = ()
    control_names: tuple[str, ...] = ()
    name: str = "task"

    def __post_init__(self) -> None:
        n, m = _positive_int("n", self.n), _positive_int("m", self.m)
        put = object.__setattr__
        put(self, "n", n)
        put(self, "m", m)
        put(self, "dt", check_positive("dt", self.dt))
        angles = tuple(int(i) for i in self.angle_indices)
        if len(set(angles)) != len(angles) or any(not 0 <= i < n for i in angles):
            raise ValueError(
                f"angle_indices must be distinct indices in [0, {n}), got {self.angle_indices!r}"
            )
        put(self, "angle_indices", angles)
        lo, hi = check_bounds("u_low", self.u_low, "u_high", self.u_high, m)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError(f"the control box must be finite, got u_low={lo}, u_high={hi}")
        put(self, "u_low", readonly_copy(lo))
        put(self, "u_high", readonly_copy(hi))
        mu = as_float_array("x0_mean", self.x0_mean).reshape(-1)
        if mu.shape != (n,):
            raise ValueError(f"x0_mean must have shape ({n},), got {np.shape(self.x0_mean)}")
        put(self, "x0_mean", readonly_copy(mu))
        put(self, "x0_cov", readonly_copy(check_psd("x0_cov", self.x0_cov, n)))
        if self.horizon is not None:
            put(self, "horizon", _positive_int("horizon", self.horizon))
        put(self, "action_repeat", _positive_int("action_repeat", self.action_repeat))
        if self.state_fn is not None and not callable(self.state_fn):
            raise TypeError("state_fn must be callable as state_fn(observation, env) -> x")
        sn = self.state_names or tuple(f"x{i}" for i in range(n))
        cn = self.control_names or tuple(f"u{i}" for i in range(m))
        put(self, "state_names", names_tuple("state_names", sn, n))
        put(self, "control_names", names_tuple("control_names", cn, m))

    @property
    def x0_std(self) -> Array:
        """:math:`\\sqrt{\\operatorname{diag}\\Sigma_0}`, shape ``(n,)``."""
        return np.sqrt(np.diag(self.x0_cov))

    def state(self, observation: Any, env: gym.Env[Any, Any]) -> Array:
        """The learning state :math:`x = s(y, \\text{env})`, shape ``(n,)``, checked."""
        raw = observation if self.state_fn is None else self.state_fn(observation, env)
        x = as_float_array("state_fn(observation, env)", raw).reshape(-1)
        if x.shape != (self.n,):
            raise ValueError(
                f"state_fn(observation, env) must return shape ({self.n},), got {np.shape(raw)}"
            )
        return x


class TaskEnv(gym.Wrapper[Array, Array, Any, Any]):
    r"""An environment seen through a :class:`LearningTask`: state map and action repeat.

    .. math::

        x_k = s(y_{kr}, \text{env}), \qquad R_k = \sum_{j=0}^{r-1} r_{kr+j},

    stopping early inside a repeat when the episode terminates or is truncated.
    ``info`` is the last inner step's, with ``info["substeps"]`` the number of
    inner steps taken; with a state map, an inner ``info["state"]`` (a
    :class:`~gpcontrol.envs.core.SystemEnv`'s true state) is dropped, since it
    is not the mapped state.

    Parameters
    ----------
    env : gymnasium.Env
        With 1-D ``Box`` action space of shape ``(task.m,)``.
    task : LearningTask
    """

    def __init__(self, env: gym.Env[Any, Any], task: LearningTask) -> None:
        if not isinstance(task, LearningTask):
            raise TypeError(f"task must be a LearningTask, got {type(task).__name__}")
        _box_space(env, "action_space", task.m)
        super().__init__(env)
        self.task = task
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(task.n,), dtype=np.float64)

    @property
    def dt(self) -> float:
        """Period of one learning step, s."""
        return self.task.dt

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        """Reset the inner environment and return the learning state ``(n,)``."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self.task.state(obs, self.env), self._info(info)

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        out = dict(info)
        if self.task.state_fn is not None:  # an inner true state is not the mapped state
            out.pop("state", None)
        return out

    def step(self, action: ArrayLike) -> tuple[Array, SupportsFloat, bool, bool, dict[str, Any]]:
        """Hold ``action`` (shape ``(m,)``) for ``action_repeat`` inner steps; sum the rewards."""
        u = as_float_array("action", action).reshape(-1)
        if u.shape != (self.task.m,):
            raise ValueError(f"action must have shape ({self.task.m},), got {np.shape(action)}")
        total, terminated, truncated, j = 0.0, False, False, 0
        obs: Any = None
        info: dict[str, Any] = {}
        while j < self.task.action_repeat and not (terminated or truncated):
            obs, reward, term, trunc, info = self.env.step(u)
            total += float(reward)
            terminated, truncated = bool(term), bool(trunc)
            j += 1
        info = self._info(info)
        info["substeps"] = j
        return self.task.state(obs, self.env), total, terminated, truncated, info


def _box_space(env: Any, which: str, size: int | None = None) -> spaces.Box:
    space = getattr(env, which, None)
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"env.{which} must be a 1-D gymnasium.spaces.Box, got {space!r}")
    if size is not None and space.shape[0] != size:
        raise ValueError(f"env.{which} has shape {space.shape}, the task needs ({size},)")
    return space


def _start_cov(n: int, x0_std: ArrayLike | None, x0_cov: ArrayLike | None) -> Array:
    if x0_std is not None and x0_cov is not None:
        raise ValueError("give x0_std or x0_cov, not both")
    if x0_cov is not None:
        return check_psd("x0_cov", x0_cov, n)
    std = np.zeros(n) if x0_std is None else as_float_array("x0_std", x0_std)
    if std.ndim == 0:
        std = np.full(n, float(std))
    if std.shape != (n,) or (std < 0).any():
        raise ValueError(f"x0_std must be a scalar or a non-negative vector of shape ({n},)")
    return np.diag(std**2)


def _system_env(env: gym.Env[Any, Any]) -> Any:
    base = env.unwrapped
    return base if getattr(base, "system", None) is not None else None


def adapt(
    env: gym.Env[Any, Any],
    *,
    x0_mean: ArrayLike | None = None,
    x0_std: ArrayLike | None = None,
    x0_cov: ArrayLike | None = None,
    state_fn: StateMap | None = None,
    angle_indices: Sequence[int] | None = None,
    dt: float | None = None,
    action_repeat: int = 1,
    horizon: int | None = None,
    state_names: Sequence[str] | None = None,
    control_names: Sequence[str] | None = None,
) -> TaskEnv:
    r"""Wrap a ``Box`` environment as a learning task (:class:`TaskEnv`).

    .. math::

        x = s(y, \text{env}), \qquad \Delta t = r\,\Delta t_{\mathrm{env}}, \qquad
        H = \lfloor H_{\mathrm{env}} / r \rfloor,
        \qquad x_0 \sim \mathcal N(\mu_0, \Sigma_0).

    Arguments left out are taken from a gpcontrol
    :class:`~gpcontrol.envs.core.SystemEnv` (its system's ``dt``, angles and
    names, its start distribution); for any other environment ``x0_mean`` is
    required and ``dt`` defaults to ``env.unwrapped.dt`` when that exists.

    Parameters
    ----------
    env : gymnasium.Env
        1-D ``Box`` observation and action spaces with finite action bounds.
    x0_mean : array_like, shape (n,)
        :math:`\mu_0` of the learning state.
    x0_std : float or array_like, shape (n,), optional
        :math:`\Sigma_0 = \operatorname{diag}(\sigma_0^2)`; default 0.
    x0_cov : array_like, shape (n, n), optional
        :math:`\Sigma_0` (instead of ``x0_std``).
    state_fn : callable, optional
        ``state_fn(observation, env) -> x (n,)``; default: the observation.
    angle_indices : sequence of int, optional
        Angle entries of ``x``; default none (or the system's).
    dt : float, optional
        Period of one environment step, s.
    action_repeat : int
        :math:`r`, environment steps per learning step.
    horizon : int, optional
        Learning steps per episode; default ``max_episode_steps // r``.
    state_names, control_names : sequence of str, optional

    Returns
    -------
    TaskEnv
        ``.task`` is the :class:`LearningTask`.

    Raises
    ------
    TypeError
        The spaces are not 1-D ``Box`` es, or ``state_fn`` is not callable.
    ValueError
        A missing ``x0_mean`` or ``dt``, infinite action bounds, or shapes that
        disagree (naming the argument).
    """
    obs_space = _box_space(env, "observation_space")
    act_space = _box_space(env, "action_space")
    repeat = _positive_int("action_repeat", action_repeat)
    sysenv = _system_env(env)
    system: Any = None if sysenv is None else sysenv.system
    if state_fn is not None and not callable(state_fn):
        raise TypeError("state_fn must be callable as state_fn(observation, env) -> x")
    # without a state map the state is the observation; with one, its size is x0_mean's
    # (state_fn's output is checked against it at every reset and step)
    n = int(obs_space.shape[0]) if state_fn is None else -1
    if x0_mean is None:
        if sysenv is None:
            raise ValueError("x0_mean is required for an env that is not a gpcontrol SystemEnv")
        x0_mean, x0_std = sysenv.x0_mean, sysenv.x0_std if x0_cov is None else None
    mu = as_float_array("x0_mean", x0_mean).reshape(-1)
    if n == -1:
        n = mu.shape[0]
    elif mu.shape != (n,):
        raise ValueError(
            f"x0_mean must have shape ({n},) (the observation's size without a state_fn), "
            f"got {np.shape(x0_mean)}"
        )
    if dt is None:
        dt = getattr(env.unwrapped, "dt", None)
        if dt is None:
            raise ValueError("dt is required: the env has no unwrapped.dt")
    if horizon is None:
        spec = getattr(env, "spec", None)
        steps = None if spec is None else spec.max_episode_steps
        horizon = None if steps is None else max(1, steps // repeat)
    m = int(act_space.shape[0])
    same_layout = system is not None and state_fn is None and n == system.n
    if angle_indices is None:
        angle_indices = tuple(system.angle_indices) if same_layout else ()
    if state_names is None and same_layout:
        state_names = system.state_names
    if control_names is None and system is not None and system.m == m:
        control_names = system.control_names
    task = LearningTask(
        n=n,
        m=m,
        dt=check_positive("dt", dt) * repeat,
        angle_indices=tuple(angle_indices),
        u_low=np.asarray(act_space.low, dtype=np.float64),
        u_high=np.asarray(act_space.high, dtype=np.float64),
        x0_mean=mu,
        x0_cov=_start_cov(n, x0_std, x0_cov),
        horizon=horizon,
        action_repeat=repeat,
        state_fn=state_fn,
        state_names=tuple(state_names or ()),
        control_names=tuple(control_names or ()),
        name=env.spec.id if env.spec is not None else type(env.unwrapped).__name__,
    )
    return TaskEnv(env, task)


def learning_task(env: gym.Env[Any, Any]) -> tuple[gym.Env[Any, Any], LearningTask]:
    r"""The environment to interact with and its :class:`LearningTask`.

    .. math::

        \text{env} \mapsto (\text{env}', \text{task}):\quad
        \text{TaskEnv} \mapsto (\text{itself}, \text{its task}),\quad
        \text{SystemEnv} \mapsto (\text{env}, \text{task of its system}).

    A :class:`TaskEnv` anywhere in the wrapper chain is used as is; a
    gpcontrol :class:`~gpcontrol.envs.core.SystemEnv` gets the task of its
    system (start :math:`\mathcal N(\mu_0, \operatorname{diag}\sigma_0^2)`,
    no action repeat, horizon ``max_episode_steps``).

    Parameters
    ----------
    env : gymnasium.Env

    Returns
    -------
    (gymnasium.Env, LearningTask)

    Raises
    ------
    TypeError
        Any other environment: wrap it with :func:`adapt` first.
    """
    inner: Any = env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, TaskEnv):
            return inner, inner.task
        inner = inner.env
    if _system_env(env) is None:
        raise TypeError(
            "env must be a gpcontrol SystemEnv or be wrapped by gpcontrol.envs.adapt(env, "
            "x0_mean=..., ...) describing its learning task; got "
            f"{type(env.unwrapped).__name__}"
        )
    return env, adapt(env).task


def pendulum_v1_state(observation: Any, env: gym.Env[Any, Any]) -> Array:
    r"""Gymnasium ``Pendulum-v1``'s state in gpcontrol's pendulum convention.

    .. math::

        x = (\vartheta + \pi,\ \dot\vartheta),

    with :math:`\vartheta` Gymnasium's angle from upright, read unwrapped from
    ``env.unwrapped.state`` (so that :math:`x_{k+1} - x_k` is continuous); the
    observation :math:`(\cos\vartheta, \sin\vartheta, \dot\vartheta)` is
    checked against it. ``theta = 0`` is hanging, as in
    :class:`~gpcontrol.systems.Pendulum` (:meth:`~gpcontrol.systems.Pendulum.gymnasium`
    is the same map).

    Parameters
    ----------
    observation : array_like, shape (3,)
    env : gymnasium.Env
        ``Pendulum-v1`` (possibly wrapped).

    Returns
    -------
    ndarray, shape (2,)
    """
    y = as_float_array("observation", observation).reshape(-1)
    state = getattr(env.unwrapped, "state", None)
    if y.shape != (3,) or state is None:
        raise ValueError(
            "pendulum_v1_state needs Pendulum-v1: an observation of shape (3,) and "
            f"env.unwrapped.state; got shape {y.shape}"
        )
    theta, dtheta = (float(v) for v in np.asarray(state, dtype=np.float64).reshape(2))
    if abs(math.cos(theta) - y[0]) > 1e-5 or abs(math.sin(theta) - y[1]) > 1e-5:
        raise ValueError("observation does not match env.unwrapped.state (is this Pendulum-v1?)")
    return np.array([theta + math.pi, dtheta])
