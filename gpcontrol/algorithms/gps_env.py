r"""Rollouts for guided policy search drawn from a Gymnasium environment.

MDGPS (:func:`gpcontrol.algorithms.gps.mdgps`) fits local models to
rollouts of its linear-Gaussian controllers started from each condition's
fixed start :math:`\bar x_{0,c}`. On an environment the rollout of
condition :math:`c` is

.. math::

    y_0 = \mathrm{reset}_c(\text{env}, \bar x_{0,c}),\qquad x_0 = s(y_0, \text{env}),

    u_t = \pi(x_t, t),\qquad
    y_{t+1} = \text{env.step}\big(\mathrm{clip}(u_t, u_{\mathrm{low}}, u_{\mathrm{high}})\big),
    \qquad x_{t+1} = s(y_{t+1}, \text{env}),

where the environment is a :class:`~gpcontrol.envs.adapter.TaskEnv` (from
:func:`gpcontrol.envs.adapt`) whose learning task gives the state map
:math:`s`, the control box and the action repeat, and
:math:`\mathrm{reset}_c` is the user's function that resets the environment
and puts it into the condition's start (e.g. joint positions, velocities and
target of a MuJoCo model through ``env.unwrapped.set_state``). The samples
record the commanded controls; the clip is part of the unknown dynamics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gpcontrol.envs.adapter import TaskEnv

__all__ = ["EnvSampler"]

Array = NDArray[np.float64]
ResetFn = Callable[[TaskEnv, int, Array], Any]


class EnvSampler:
    r"""A :class:`~gpcontrol.algorithms.gps.RolloutSampler` on an adapted Gymnasium env.

    .. math::

        x_0 = s(\mathrm{reset}_c(\text{env}, \bar x_{0,c}), \text{env}),\qquad
        x_{t+1} = s\big(\text{env.step}(\mathrm{clip}(\pi(x_t, t))), \text{env}\big)

    Rollouts run one after the other on the one environment (each starts with
    ``reset_to``). Pass the sampler as ``system`` to
    :func:`~gpcontrol.algorithms.gps.mdgps`.

    Parameters
    ----------
    env : TaskEnv
        From :func:`gpcontrol.envs.adapt` (state map, control box, action repeat).
    reset_to : callable
        ``reset_to(env, condition, x0 (n,)) -> observation``: reset ``env`` and
        set it to the start of ``condition`` with state ``x0``; returns the
        observation there (the state map reads it).

    Raises
    ------
    TypeError
        ``env`` is not a ``TaskEnv`` or ``reset_to`` is not callable.
    """

    def __init__(self, env: TaskEnv, reset_to: ResetFn) -> None:
        if not isinstance(env, TaskEnv):
            raise TypeError(
                "env must be a TaskEnv (wrap it with gpcontrol.envs.adapt), "
                f"got {type(env).__name__}"
            )
        if not callable(reset_to):
            raise TypeError("reset_to must be callable as reset_to(env, condition, x0) -> obs")
        self.env = env
        self.task = env.task
        self.reset_to = reset_to
        self.n, self.m = self.task.n, self.task.m

    def start(self, condition: int, x0: Array) -> Array:
        """Reset to ``condition`` and return the state read back, shape ``(n,)``."""
        obs = self.reset_to(self.env, int(condition), np.asarray(x0, dtype=np.float64))
        return self.task.state(obs, self.env)

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
        """``N`` rollouts of ``controller (x (n,), t) -> u (m,)`` from ``condition``.

        ``rng`` and ``noiseless`` are unused: the controller holds its noise,
        the environment its own randomness, and every rollout starts exactly
        where ``reset_to`` puts it.

        Returns
        -------
        X : ndarray, shape (N, T + 1, n)
        U : ndarray, shape (N, T, m)
            Commanded controls (before the clip).

        Raises
        ------
        ValueError
            The episode ends before ``T`` steps, or ``x0`` has the wrong shape.
        """
        x0a = np.asarray(x0, dtype=np.float64).reshape(-1)
        if x0a.shape != (self.n,):
            raise ValueError(f"x0 must have shape ({self.n},), got {np.shape(x0)}")
        lo, hi = self.task.u_low, self.task.u_high
        X = np.empty((N, T + 1, self.n))
        U = np.empty((N, T, self.m))
        for i in range(N):
            X[i, 0] = self.start(condition, x0a)
            for t in range(T):
                u = np.asarray(controller(X[i, t], t), dtype=np.float64).reshape(-1)
                if u.shape != (self.m,):
                    raise ValueError(f"the controller must return shape ({self.m},), got {u.shape}")
                U[i, t] = u
                X[i, t + 1], _, terminated, truncated, _ = self.env.step(np.clip(u, lo, hi))
                if (terminated or truncated) and t < T - 1:
                    raise ValueError(
                        f"the episode ended after {t + 1} steps, before the horizon T = {T}"
                    )
        return X, U
