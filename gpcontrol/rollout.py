r"""Running a policy in an environment, and the data it produces.

A rollout of a policy :math:`\pi` in an environment with observations
:math:`y_t` and rewards :math:`r_t` records

.. math::

    u_t = \operatorname{clip}\bigl(\pi(y_t, t), u_{\mathrm{low}}, u_{\mathrm{high}}\bigr),
    \qquad c_t = -r_t \quad (t = 0, \dots, T-1),
    \qquad c_T = \ell_T(x_T),

as a :class:`Trajectory` with states ``(T+1, n)``, controls ``(T, m)`` and
costs ``(T+1,)`` (the terminal cost is 0 for environments that define none).

A :class:`Dataset` collects the transitions of many episodes in the form a
dynamics model learns from, inputs and difference targets

.. math::

    \tilde x_i = [x_t, u_t] \in \mathbb R^{n+m}, \qquad
    \Delta_i = x_{t+1} - x_t \in \mathbb R^n,

and saves them losslessly to a ``.npz`` file with a JSON header.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array, names_tuple

__all__ = ["Trajectory", "Dataset", "rollout", "random_policy"]

Array = NDArray[np.float64]
Policy = Callable[..., Any]

_FORMAT = "gpcontrol.Dataset"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- Trajectory
@dataclasses.dataclass(frozen=True)
class Trajectory:
    """One episode: what the agent saw, did and paid.

    Attributes
    ----------
    states : ndarray, shape (T+1, n)
        Observations :math:`y_0, \\dots, y_T` (equal to the states when the
        environment has no measurement noise).
    controls : ndarray, shape (T, m)
        Controls actually applied (the policy's output clipped to the action box).
    costs : ndarray, shape (T+1,)
        :math:`c_t = -r_t` for ``t < T`` and the terminal cost :math:`\\ell_T(x_T)`
        last (0 if the environment defines none); ``costs.sum()`` is the
        episode's total cost.
    rewards : ndarray, shape (T,)
    terminated : bool
        The episode ended at a goal / failure state.
    truncated : bool
        The episode was cut by a time limit (the environment's or ``steps``).
    seed : int or None
        Seed passed to ``env.reset``.
    dt : float or None
        Control period, when the environment knows one.
    true_states : ndarray, shape (T+1, n), or None
        Noise-free states from ``info["state"]``, when the environment reports them.
    state_names, control_names : tuple of str
    """

    states: Array
    controls: Array
    costs: Array
    rewards: Array
    terminated: bool = False
    truncated: bool = False
    seed: int | None = None
    dt: float | None = None
    true_states: Array | None = None
    state_names: tuple[str, ...] = ()
    control_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        X = as_float_array("states", self.states).copy()
        U = as_float_array("controls", self.controls).copy()
        if X.ndim != 2 or U.ndim != 2 or X.shape[0] != U.shape[0] + 1:
            raise ValueError(
                f"states must have shape (T+1, n) and controls (T, m); got {X.shape} and {U.shape}"
            )
        T = U.shape[0]
        c = as_float_array("costs", self.costs).reshape(-1).copy()
        r = as_float_array("rewards", self.rewards).reshape(-1).copy()
        if c.shape != (T + 1,):
            raise ValueError(f"costs must have shape ({T + 1},), got {c.shape}")
        if r.shape != (T,):
            raise ValueError(f"rewards must have shape ({T},), got {r.shape}")
        setattr_ = object.__setattr__
        setattr_(self, "states", X)
        setattr_(self, "controls", U)
        setattr_(self, "costs", c)
        setattr_(self, "rewards", r)
        if self.true_states is not None:
            Xt = as_float_array("true_states", self.true_states).copy()
            Xt.flags.writeable = False
            if Xt.shape != X.shape:
                raise ValueError(f"true_states must have shape {X.shape}, got {Xt.shape}")
            setattr_(self, "true_states", Xt)
        n, m = X.shape[1], U.shape[1]
        sn = self.state_names or tuple(f"x{i}" for i in range(n))
        cn = self.control_names or tuple(f"u{i}" for i in range(m))
        setattr_(self, "state_names", names_tuple("state_names", sn, n))
        setattr_(self, "control_names", names_tuple("control_names", cn, m))
        for arr in (X, U, c, r):
            arr.flags.writeable = False

    @property
    def T(self) -> int:  # noqa: N802 - math name
        """Number of steps."""
        return int(self.controls.shape[0])

    @property
    def n(self) -> int:
        return int(self.states.shape[1])

    @property
    def m(self) -> int:
        return int(self.controls.shape[1])

    @property
    def total_cost(self) -> float:
        """:math:`\\sum_{t=0}^{T} c_t`."""
        return float(self.costs.sum())

    @property
    def times(self) -> Array:
        """Time stamps ``t * dt`` (or step indices without ``dt``), shape ``(T+1,)``."""
        return np.arange(self.T + 1, dtype=np.float64) * (1.0 if self.dt is None else self.dt)


# --------------------------------------------------------------------------- rollout
def _arity(policy: Policy) -> int:
    """1 if the policy takes only ``x``, 2 if it takes ``(x, t)``."""
    fn: Any = policy
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        forward = getattr(policy, "forward", None)  # torch.nn.Module.__call__(*args)
        if forward is not None and forward is not fn:
            return _arity(forward)
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2:
        return 2
    if len(positional) == 1:
        return 1
    raise TypeError("policy must be callable as policy(x, t) or policy(x)")


def _as_control(u: Any, m: int, t: int) -> Array:
    if hasattr(u, "detach"):  # torch tensor
        u = u.detach().cpu().numpy()
    arr = np.asarray(u, dtype=np.float64)
    if arr.size != m or arr.ndim > 1:
        raise ValueError(f"policy returned shape {arr.shape} at step {t}; expected ({m},)")
    arr = arr.reshape(m)
    if not np.isfinite(arr).all():
        raise ValueError(f"policy returned a non-finite control {arr.tolist()} at step {t}")
    return arr


def _box(space: gym.Space[Any], name: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"env.{name} must be a 1-D gymnasium.spaces.Box, got {space!r}")
    return space


def rollout(
    env: gym.Env[Any, Any],
    policy: Policy,
    *,
    steps: int | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    callback: Callable[[int, Array, Array, float], None] | None = None,
) -> Trajectory:
    r"""Run ``policy`` for one episode of ``env`` and record it.

    .. math::

        y_0 = \text{reset}(\text{seed}),\quad
        u_t = \operatorname{clip}(\pi(y_t, t)),\quad
        (y_{t+1}, r_t) = \text{step}(u_t)

    until the episode terminates or is truncated, or ``steps`` steps are done.

    Parameters
    ----------
    env : gymnasium.Env
        Any environment with 1-D ``Box`` observation and action spaces
        (gpcontrol's or a user's own).
    policy : callable
        ``policy(x, t) -> u`` or ``policy(x) -> u`` with ``x`` of shape ``(n,)``
        and ``u`` of shape ``(m,)`` (a scalar when ``m == 1``); torch tensors
        are accepted.
    steps : int, optional
        Maximum number of steps. Required unless the environment is time-limited
        (``env.spec.max_episode_steps``).
    seed : int, optional
        Passed to ``env.reset(seed=...)``.
    options : dict, optional
        Passed to ``env.reset(options=...)`` (e.g. ``{"x0": x0}`` for a
        :class:`~gpcontrol.envs.SystemEnv`).
    callback : callable, optional
        ``callback(t, x, u, reward)`` after every step (progress display).

    Returns
    -------
    Trajectory
    """
    obs_space = _box(env.observation_space, "observation_space")
    act_space = _box(env.action_space, "action_space")
    if not callable(policy):
        raise TypeError(f"policy must be callable, got {type(policy).__name__}")
    if steps is not None:
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        steps = int(steps)
    else:
        spec = getattr(env, "spec", None)
        if spec is None or spec.max_episode_steps is None:
            raise ValueError("steps is required for an environment without a time limit")
    n, m = obs_space.shape[0], act_space.shape[0]
    low = np.asarray(act_space.low, dtype=np.float64)
    high = np.asarray(act_space.high, dtype=np.float64)
    two_args = _arity(policy) == 2

    obs, info = env.reset(seed=seed, options=options)
    X = [np.asarray(obs, dtype=np.float64).copy()]
    true = [info.get("state")] if isinstance(info, dict) else [None]
    U: list[Array] = []
    R: list[float] = []
    terminated = truncated = False
    t = 0
    while steps is None or t < steps:
        u = _as_control(policy(X[-1].copy(), t) if two_args else policy(X[-1].copy()), m, t)
        u = np.clip(u, low, high)
        obs, reward, term, trunc, info = env.step(u)
        X.append(np.asarray(obs, dtype=np.float64).copy())
        true.append(info.get("state") if isinstance(info, dict) else None)
        U.append(u)
        R.append(float(reward))
        if callback is not None:
            callback(t, X[-1], u, float(reward))
        t += 1
        terminated, truncated = bool(term), bool(trunc)
        if terminated or truncated:
            break
    else:
        truncated = t > 0  # stopped by ``steps``: a time limit of the caller's

    base = env.unwrapped
    terminal = float(base.terminal_cost()) if hasattr(base, "terminal_cost") else 0.0
    rewards = np.asarray(R, dtype=np.float64)
    system = getattr(base, "system", None)
    dt = getattr(base, "dt", None)
    true_states = None
    if all(s is not None for s in true):
        true_states = np.asarray(true, dtype=np.float64)
        if true_states.shape != (t + 1, n):
            true_states = None
    return Trajectory(
        states=np.asarray(X).reshape(t + 1, n),
        controls=np.asarray(U, dtype=np.float64).reshape(t, m),
        costs=np.append(-rewards, terminal),
        rewards=rewards,
        terminated=terminated,
        truncated=truncated,
        seed=seed,
        dt=None if dt is None else float(dt),
        true_states=true_states,
        state_names=tuple(system.state_names) if system is not None else (),
        control_names=tuple(system.control_names) if system is not None else (),
    )


def random_policy(
    low: ArrayLike, high: ArrayLike, *, seed: int | np.random.Generator | None = None
) -> Callable[[Array, int], Array]:
    r"""A policy drawing :math:`u_t \sim U(u_{\mathrm{low}}, u_{\mathrm{high}})` independently.

    Parameters
    ----------
    low, high : array_like, shape (m,)
        Finite control bounds (e.g. ``env.action_space.low``/``high``).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    callable
        ``policy(x, t) -> u`` of shape ``(m,)``.
    """
    lo = as_float_array("low", low).reshape(-1)
    hi = as_float_array("high", high).reshape(-1)
    if lo.shape != hi.shape or (lo > hi).any():
        raise ValueError(f"low and high must have equal shapes with low <= high, got {lo}, {hi}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def policy(x: Array, t: int) -> Array:
        return rng.uniform(lo, hi)

    return policy


# --------------------------------------------------------------------------- Dataset
class Dataset:
    r"""Transitions of many episodes, for learning dynamics models.

    Episodes are stored whole (states ``(T_e+1, n)``, controls ``(T_e, m)``);
    the model-facing arrays are derived from them:

    .. math::

        \text{inputs} = [x_t, u_t] \in \mathbb R^{N \times (n+m)}, \qquad
        \text{targets} = x_{t+1} - x_t \in \mathbb R^{N \times n},

    with :math:`N = \sum_e T_e` rows in episode order.

    Parameters
    ----------
    n, m : int
        State and control dimensions.
    state_names, control_names : sequence of str, optional
        Default ``x0..``, ``u0..``.
    system_name : str, optional
        Name of the system the data comes from (saved in the header).
    dt : float, optional

    Examples
    --------
    >>> data = Dataset(2, 1)
    >>> data.add((np.zeros((3, 2)), np.ones((2, 1))))
    >>> data.inputs.shape, data.targets.shape, data.episode_bounds.tolist()
    ((2, 3), (2, 2), [0, 2])
    """

    def __init__(
        self,
        n: int,
        m: int,
        *,
        state_names: Sequence[str] | None = None,
        control_names: Sequence[str] | None = None,
        system_name: str | None = None,
        dt: float | None = None,
    ) -> None:
        for name, v in (("n", n), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.n, self.m = int(n), int(m)
        self._names_given = state_names is not None or control_names is not None
        self.state_names = names_tuple(
            "state_names", state_names or [f"x{i}" for i in range(n)], self.n
        )
        self.control_names = names_tuple(
            "control_names", control_names or [f"u{i}" for i in range(m)], self.m
        )
        self.system_name = None if system_name is None else str(system_name)
        self.dt = None if dt is None else float(dt)
        self._states: list[Array] = []
        self._controls: list[Array] = []

    @classmethod
    def for_system(cls, system: Any) -> Dataset:
        """An empty dataset with the layout, name and ``dt`` of a ``System``."""
        return cls(
            system.n,
            system.m,
            state_names=system.state_names,
            control_names=system.control_names,
            system_name=system.name,
            dt=system.dt,
        )

    # -------------------------------------------------------------- growing
    def add(self, trajectory: Trajectory | tuple[ArrayLike, ArrayLike]) -> None:
        """Append one episode: a :class:`Trajectory` or a pair ``(X (T+1, n), U (T, m))``.

        A dataset created without names takes the names (and ``dt``) of the
        first trajectory added to it; after that, names must match.

        Raises
        ------
        ValueError
            Wrong shapes, non-finite values, no transitions, or names that do
            not match the dataset's.
        """
        if isinstance(trajectory, Trajectory):
            X, U = trajectory.states, trajectory.controls
        elif isinstance(trajectory, tuple) and len(trajectory) == 2:
            X = as_float_array("X", trajectory[0])
            U = as_float_array("U", trajectory[1])
        else:
            raise TypeError(
                f"trajectory must be a Trajectory or a pair (X, U), got {type(trajectory).__name__}"
            )
        if X.ndim != 2 or X.shape[1] != self.n:
            raise ValueError(f"states must have shape (T+1, {self.n}), got {X.shape}")
        if U.ndim != 2 or U.shape[1] != self.m or U.shape[0] != X.shape[0] - 1:
            want = (X.shape[0] - 1, self.m)
            raise ValueError(f"controls must have shape {want}, got {U.shape}")
        if U.shape[0] == 0:
            raise ValueError("the episode has no transitions (T = 0)")
        if isinstance(trajectory, Trajectory):
            if not self._names_given and not self._controls:
                self.state_names = trajectory.state_names
                self.control_names = trajectory.control_names
                self.dt = trajectory.dt if self.dt is None else self.dt
            for what in ("state_names", "control_names"):
                theirs, ours = getattr(trajectory, what), getattr(self, what)
                if theirs != ours:
                    raise ValueError(
                        f"trajectory.{what} {theirs} do not match the dataset's {ours}"
                    )
        self._states.append(np.array(X, dtype=np.float64))
        self._controls.append(np.array(U, dtype=np.float64))

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory], **kwargs: Any) -> Dataset:
        """A dataset holding ``trajectories`` (at least one); ``kwargs`` as for the constructor."""
        trajs = list(trajectories)
        if not trajs or not all(isinstance(t, Trajectory) for t in trajs):
            raise ValueError("trajectories must be a non-empty sequence of Trajectory")
        data = cls(trajs[0].n, trajs[0].m, **kwargs)
        for t in trajs:
            data.add(t)
        return data

    # -------------------------------------------------------------- views
    def __len__(self) -> int:
        """Number of transitions :math:`N`."""
        return sum(U.shape[0] for U in self._controls)

    @property
    def n_episodes(self) -> int:
        return len(self._controls)

    @property
    def episode_bounds(self) -> NDArray[np.int64]:
        """Row offsets ``(E+1,)``: episode ``e`` owns rows ``bounds[e]:bounds[e+1]``."""
        lengths = [U.shape[0] for U in self._controls]
        return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)

    def episode(self, e: int) -> tuple[Array, Array]:
        """States ``(T_e+1, n)`` and controls ``(T_e, m)`` of episode ``e`` (copies)."""
        if not -self.n_episodes <= e < self.n_episodes:
            raise IndexError(f"episode {e} out of range for {self.n_episodes} episodes")
        return self._states[e].copy(), self._controls[e].copy()

    @property
    def states(self) -> Array:
        """:math:`x_t` of every transition, shape ``(N, n)``."""
        return self._stack([X[:-1] for X in self._states], self.n)

    @property
    def controls(self) -> Array:
        """:math:`u_t` of every transition, shape ``(N, m)``."""
        return self._stack(self._controls, self.m)

    @property
    def next_states(self) -> Array:
        """:math:`x_{t+1}` of every transition, shape ``(N, n)``."""
        return self._stack([X[1:] for X in self._states], self.n)

    @property
    def inputs(self) -> Array:
        """:math:`[x_t, u_t]`, shape ``(N, n + m)``."""
        return np.concatenate([self.states, self.controls], axis=1)

    @property
    def targets(self) -> Array:
        """:math:`x_{t+1} - x_t`, shape ``(N, n)``."""
        return self._stack([np.diff(X, axis=0) for X in self._states], self.n)

    @staticmethod
    def _stack(parts: list[Array], width: int) -> Array:
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, width))

    # -------------------------------------------------------------- persistence
    def header(self) -> dict[str, Any]:
        """The JSON header written by :meth:`save`."""
        import gpcontrol

        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "gpcontrol_version": gpcontrol.__version__,
            "n": self.n,
            "m": self.m,
            "state_names": list(self.state_names),
            "control_names": list(self.control_names),
            "system": self.system_name,
            "dt": self.dt,
            "episodes": self.n_episodes,
            "transitions": len(self),
            "shapes": {
                "states": [len(self) + self.n_episodes, self.n],
                "controls": [len(self), self.m],
                "episode_lengths": [self.n_episodes],
            },
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the dataset to ``path`` (``.npz`` appended if missing); returns the path.

        The file holds ``states`` (all episodes' states stacked), ``controls``,
        ``episode_lengths`` and ``header`` (a JSON string); floats are stored
        bit for bit, so :meth:`load` gives back identical arrays.
        """
        p = Path(path)
        if p.suffix != ".npz":
            p = p.with_name(p.name + ".npz")
        states = self._stack(self._states, self.n)
        lengths = np.array([U.shape[0] for U in self._controls], dtype=np.int64)
        np.savez(
            p,
            header=np.array(json.dumps(self.header())),
            states=states,
            controls=self.controls,
            episode_lengths=lengths,
        )
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read a dataset written by :meth:`save`, validating its header against its arrays."""
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no dataset at {p}")
        with np.load(p, allow_pickle=False) as f:
            missing = {"header", "states", "controls", "episode_lengths"} - set(f.files)
            if missing:
                raise ValueError(f"{p} is not a gpcontrol dataset: missing {sorted(missing)}")
            try:
                header = json.loads(str(f["header"][()]))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}: header is not valid JSON ({exc})") from None
            states, controls = f["states"], f["controls"]
            lengths = f["episode_lengths"]
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError(f"{p}: header format must be {_FORMAT!r}")
        if header.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{p}: unsupported format_version {header.get('format_version')!r} "
                f"(this gpcontrol reads {_FORMAT_VERSION})"
            )
        try:
            n, m = int(header["n"]), int(header["m"])
            data = cls(
                n,
                m,
                state_names=header["state_names"],
                control_names=header["control_names"],
                system_name=header.get("system"),
                dt=header.get("dt"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{p}: header lacks a valid field ({exc})") from None
        if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"{p}: episode_lengths must be a 1-D integer array")
        if states.dtype != np.float64 or controls.dtype != np.float64:
            raise ValueError(f"{p}: states and controls must be float64")
        if (lengths < 1).any():
            raise ValueError(f"{p}: every episode must have at least one transition")
        E, N = lengths.shape[0], int(lengths.sum())
        if header.get("episodes") != E or header.get("transitions") != N:
            raise ValueError(
                f"{p}: header says {header.get('episodes')} episodes / "
                f"{header.get('transitions')} transitions, arrays hold {E} / {N}"
            )
        for name, arr, want in (
            ("states", states, (N + E, n)),
            ("controls", controls, (N, m)),
        ):
            if arr.shape != want:
                raise ValueError(f"{p}: array {name} has shape {arr.shape}, header implies {want}")
        s = c = 0
        for T in lengths.tolist():
            data.add((states[s : s + T + 1], controls[c : c + T]))
            s, c = s + T + 1, c + T
        return data

    def __repr__(self) -> str:
        return (
            f"Dataset(n={self.n}, m={self.m}, episodes={self.n_episodes}, "
            f"transitions={len(self)}, system={self.system_name!r})"
        )
