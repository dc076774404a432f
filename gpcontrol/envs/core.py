r"""A Gymnasium environment built from any known-physics system and a cost.

Given a :class:`~gpcontrol.systems.base.System` with discrete map :math:`F`
and a cost :math:`\ell`, :class:`SystemEnv` simulates

.. math::

    x_0 &\sim \mathcal N(\mu_0, \operatorname{diag}\sigma_0^2)
          \quad (\text{or a user sampler}),\\
    \bar u_t &= \operatorname{clip}(u_t, u_{\mathrm{low}}, u_{\mathrm{high}}),\\
    x_{t+1} &= \Pi\bigl(F(x_t, \bar u_t) + \sigma_w \odot w_t\bigr),
          \qquad w_t \sim \mathcal N(0, I),\\
    y_t &= x_t + \sigma_v \odot v_t, \qquad v_t \sim \mathcal N(0, I),\\
    r_t &= -\ell(x_t, \bar u_t) \;(+\, r_{\mathrm{goal}} \text{ when the goal is reached}),

where the agent observes :math:`y_t` (the true state :math:`x_t` is in
``info["state"]``) and :math:`\Pi` projects onto the system's state box
:math:`[x_{\mathrm{low}}, x_{\mathrm{high}}]` when it has finite entries: a
coordinate is clipped, and when a position :math:`q_i` sits on a bound its
velocity :math:`\dot q_i` is zeroed if it points outwards (an inelastic stop,
as at the left wall of Gymnasium's mountain car). Episodes end with
``terminated=True`` when an optional goal predicate holds for
:math:`x_{t+1}`; their length is set by a
:class:`gymnasium.wrappers.TimeLimit` (``max_episode_steps``), never inside
the environment. All randomness comes from ``self.np_random`` (seeded by
``reset(seed=...)``), so an episode is a deterministic function of its seed
and actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array
from gpcontrol.envs.rendering import Renderer
from gpcontrol.systems import System

__all__ = ["SystemEnv", "make_env"]

Array = NDArray[np.float64]


def _std_vector(name: str, value: ArrayLike | None, n: int) -> Array:
    if value is None:
        return np.zeros(n)
    arr = as_float_array(name, value)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative, got {arr.tolist()}")
    return arr.copy()


class SystemEnv(gym.Env[NDArray[np.float64], NDArray[np.float64]]):
    r"""Gymnasium environment simulating a :class:`~gpcontrol.systems.base.System`.

    See the module docstring for the equations.

    Parameters
    ----------
    system : System
        The physics; ``system.dt`` is the control period.
    cost : Cost
        Anything with ``n``, ``m``, ``l(x, u) -> float`` and ``l_T(x) -> float``
        (see :mod:`gpcontrol.costs`). The reward is :math:`-\ell(x_t, \bar u_t)`.
    x0_mean : array_like, shape (n,), optional
        :math:`\mu_0`, default zeros.
    x0_std : float or array_like, shape (n,), optional
        :math:`\sigma_0 \ge 0`, default zeros (a fixed start).
    x0_sampler : callable, optional
        ``x0_sampler(rng) -> x0`` of shape ``(n,)`` drawing the start from a
        ``numpy.random.Generator``; replaces the Gaussian (give one or the other).
    process_noise_std : float or array_like, shape (n,)
        :math:`\sigma_w \ge 0`, added to the next state.
    measurement_noise_std : float or array_like, shape (n,)
        :math:`\sigma_v \ge 0`, added to the observation only.
    goal : callable, optional
        ``goal(x) -> bool`` on the true next state; ends the episode with
        ``terminated=True``.
    goal_reward : float
        :math:`r_{\mathrm{goal}}`, added to the reward of the step that reaches the goal.
    render_target : array_like, shape (2,), optional
        Planar point marked in rendered frames (reaching target, goal tip).
    render_mode : {None, "rgb_array"}

    Attributes
    ----------
    system, cost
    action_space : gymnasium.spaces.Box
        ``[u_low, u_high]``, float64; out-of-range actions are clipped.
    observation_space : gymnasium.spaces.Box
        float64; bounded by ``[x_low, x_high]`` in coordinates without
        measurement noise, unbounded otherwise.

    Examples
    --------
    >>> from gpcontrol.systems import Pendulum
    >>> from gpcontrol.costs import QuadraticCost
    >>> env = SystemEnv(Pendulum(), QuadraticCost(np.eye(2), np.eye(1)), x0_std=0.1)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype
    ((2,), dtype('float64'))
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        system: System,
        cost: Any,
        *,
        x0_mean: ArrayLike | None = None,
        x0_std: ArrayLike | None = None,
        x0_sampler: Callable[[np.random.Generator], ArrayLike] | None = None,
        process_noise_std: ArrayLike | None = None,
        measurement_noise_std: ArrayLike | None = None,
        goal: Callable[[Array], bool] | None = None,
        goal_reward: float = 0.0,
        render_target: ArrayLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(system, System):
            raise TypeError(f"system must be a gpcontrol System, got {type(system).__name__}")
        if not (callable(getattr(cost, "l", None)) and callable(getattr(cost, "l_T", None))):
            raise TypeError(f"cost must provide l(x, u) and l_T(x), got {type(cost).__name__}")
        n, m = system.n, system.m
        for attr, want in (("n", n), ("m", m)):
            got = getattr(cost, attr, want)
            if got != want:
                raise ValueError(f"cost.{attr} = {got} does not match system.{attr} = {want}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        if x0_sampler is not None and (x0_mean is not None or x0_std is not None):
            raise ValueError("give either x0_sampler or x0_mean/x0_std, not both")
        if x0_sampler is not None and not callable(x0_sampler):
            raise TypeError("x0_sampler must be callable as x0_sampler(rng) -> x0")
        if goal is not None and not callable(goal):
            raise TypeError("goal must be callable as goal(x) -> bool")
        self.system = system
        self.cost = cost
        self.x0_mean = (
            np.zeros(n) if x0_mean is None else as_batch("x0_mean", x0_mean, n).reshape(n).copy()
        )
        self.x0_std = _std_vector("x0_std", x0_std, n)
        self.x0_sampler = x0_sampler
        self.process_noise_std = _std_vector("process_noise_std", process_noise_std, n)
        self.measurement_noise_std = _std_vector("measurement_noise_std", measurement_noise_std, n)
        self.goal = goal
        self.goal_reward = float(as_float_array("goal_reward", goal_reward))
        self.render_target = (
            None if render_target is None else as_float_array("render_target", render_target)
        )
        self.render_mode = render_mode
        self.metadata = {
            "render_modes": ["rgb_array"],
            "render_fps": int(round(1.0 / system.dt)) if system.dt < 1.0 else 30,
        }

        self.action_space = spaces.Box(
            low=system.u_low.copy(), high=system.u_high.copy(), dtype=np.float64
        )
        noisy = self.measurement_noise_std > 0
        obs_low = np.where(noisy, -np.inf, system.x_low)
        obs_high = np.where(noisy, np.inf, system.x_high)
        self.observation_space = spaces.Box(low=obs_low, high=obs_high, dtype=np.float64)

        self._x: Array | None = None
        self._t = 0
        self._renderer: Renderer | None = None

    # ----------------------------------------------------------------- helpers
    @property
    def dt(self) -> float:
        """Control period of the underlying system."""
        return self.system.dt

    @property
    def state(self) -> Array | None:
        """Copy of the true (noise-free) state, ``None`` before :meth:`reset`."""
        return None if self._x is None else self._x.copy()

    @property
    def t(self) -> int:
        """Steps taken since the last reset."""
        return self._t

    def _project(self, x: Array) -> Array:
        lo, hi = self.system.x_low, self.system.x_high
        if np.isinf(lo).all() and np.isinf(hi).all():
            return x
        y = np.clip(x, lo, hi)
        n = self.system.n
        if n % 2 == 0:
            k = n // 2
            q, dq = y[:k], y[k:]
            at_low = (q <= lo[:k]) & (dq < 0)
            at_high = (q >= hi[:k]) & (dq > 0)
            dq[at_low | at_high] = 0.0
        return y

    def _observe(self, x: Array) -> Array:
        if (self.measurement_noise_std > 0).any():
            return x + self.measurement_noise_std * self.np_random.standard_normal(self.system.n)
        return x.copy()

    def _sample_start(self) -> Array:
        n = self.system.n
        if self.x0_sampler is not None:
            x0 = as_batch("x0_sampler(rng)", self.x0_sampler(self.np_random), n)
            if x0.shape != (n,):
                raise ValueError(f"x0_sampler(rng) must return shape ({n},), got {x0.shape}")
            return x0.copy()
        return self.x0_mean + self.x0_std * self.np_random.standard_normal(n)

    # -------------------------------------------------------------- Gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        """Start an episode; ``options={"x0": x0}`` fixes the true initial state.

        Returns
        -------
        observation : ndarray, shape (n,)
        info : dict
            ``state`` (true state, shape ``(n,)``) and ``t`` (0).
        """
        super().reset(seed=seed)
        n = self.system.n
        if options is not None and options.get("x0") is not None:
            x0 = as_batch("options['x0']", options["x0"], n)
            if x0.shape != (n,):
                raise ValueError(f"options['x0'] must have shape ({n},), got {x0.shape}")
            x0 = x0.copy()
        else:
            x0 = self._sample_start()
        self._x = self._project(x0)
        self._t = 0
        return self._observe(self._x), {"state": self._x.copy(), "t": 0}

    def step(self, action: ArrayLike) -> tuple[Array, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one (clipped) action.

        Parameters
        ----------
        action : array_like, shape (m,)
            Clipped to ``[u_low, u_high]`` before use.

        Returns
        -------
        observation : ndarray, shape (n,)
        reward : float
            :math:`-\\ell(x_t, \\bar u_t)` (plus ``goal_reward`` on reaching the goal).
        terminated : bool
            The goal predicate holds at the next state.
        truncated : bool
            Always ``False`` (time limits come from the ``TimeLimit`` wrapper).
        info : dict
            ``state`` true next state ``(n,)``, ``u`` applied control ``(m,)``,
            ``cost`` :math:`\\ell(x_t, \\bar u_t)`, ``t`` step index after the step.
        """
        if self._x is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        m = self.system.m
        u = as_float_array("action", action)
        if u.size != m or u.ndim > 1:
            raise ValueError(f"action must have shape ({m},), got shape {u.shape}")
        u = np.clip(u.reshape(m), self.system.u_low, self.system.u_high)
        x = self._x
        cost = float(np.asarray(self.cost.l(x, u)))
        x_next = self.system.step(x, u)
        if (self.process_noise_std > 0).any():
            x_next = x_next + self.process_noise_std * self.np_random.standard_normal(x.shape[0])
        if not np.isfinite(x_next).all():
            raise FloatingPointError(
                f"{self.system.name} state became non-finite at step {self._t}: "
                f"x = {x.tolist()}, u = {u.tolist()} -> {x_next.tolist()}"
            )
        x_next = self._project(x_next)
        self._x = x_next
        self._t += 1
        terminated = bool(self.goal(x_next)) if self.goal is not None else False
        reward = -cost + (self.goal_reward if terminated else 0.0)
        info = {"state": x_next.copy(), "u": u.copy(), "cost": cost, "t": self._t}
        return self._observe(x_next), float(reward), terminated, False, info

    def terminal_cost(self) -> float:
        """Terminal cost :math:`\\ell_T(x)` of the current true state."""
        if self._x is None:
            raise gym.error.ResetNeeded("call reset() before terminal_cost()")
        return float(np.asarray(self.cost.l_T(self._x)))

    def render(self) -> Any:
        """Picture of the true state: ``uint8`` array ``(H, W, 3)`` in ``"rgb_array"`` mode."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._x is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        if self._renderer is None:
            self._renderer = Renderer(self.system, target=self.render_target)
        return self._renderer.rgb(self._x, time=self._t * self.system.dt)

    def close(self) -> None:
        """Release the off-screen figure (safe to call twice)."""
        self._renderer = None


def make_env(
    system: System,
    cost: Any,
    *,
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> gym.Env[NDArray[np.float64], NDArray[np.float64]]:
    """Build a :class:`SystemEnv` for a user's own system and cost.

    Parameters
    ----------
    system : System
    cost : Cost
    max_episode_steps : int, optional
        Wrap the environment in :class:`gymnasium.wrappers.TimeLimit` so that
        episodes are truncated after this many steps.
    **kwargs
        Passed to :class:`SystemEnv` (``x0_mean``, ``x0_std``, noise, ``goal``,
        ``render_mode``, ...).

    Returns
    -------
    gymnasium.Env
        The environment, possibly time-limited.
    """
    env: gym.Env[NDArray[np.float64], NDArray[np.float64]] = SystemEnv(system, cost, **kwargs)
    if max_episode_steps is not None:
        steps = max_episode_steps
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {steps!r}")
        env = gym.wrappers.TimeLimit(env, max_episode_steps=int(max_episode_steps))
    return env
