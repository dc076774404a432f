r"""Figures of trajectories, predictions and learning progress; animations.

:func:`plot_trajectory` draws every state :math:`x_i(t)` and control
:math:`u_j(t)` against time, optionally with a predictive band

.. math::

    \mu_i(t) \pm 2\,\sigma_i(t),

the central 95 % interval of a Gaussian prediction (e.g. a GP model's
multi-step forecast), so that a real rollout can be checked against what a
model expected. :func:`animate` turns a state sequence into a GIF with the
drawings of :mod:`gpcontrol.envs.rendering`.

Every function returns a :class:`matplotlib.figure.Figure` built on the Agg
canvas (or a file path); nothing touches pyplot's global state or calls
``show``, so this works headless and inside other applications.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array, check_positive
from gpcontrol.envs.rendering import draw_state, view_limits
from gpcontrol.rollout import Trajectory
from gpcontrol.systems import CartPole, System

__all__ = ["plot_trajectory", "plot_learning_curve", "animate", "new_figure"]

Array = NDArray[np.float64]


def new_figure(width: float = 8.0, height: float = 6.0, dpi: int = 100) -> Figure:
    """An empty :class:`~matplotlib.figure.Figure` on its own Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _layout(
    layout: System | tuple[Sequence[str], Sequence[str]] | None, n: int, m: int
) -> tuple[list[str], list[str], System | None]:
    if isinstance(layout, System):
        return list(layout.state_names), list(layout.control_names), layout
    if layout is None:
        return [f"x{i}" for i in range(n)], [f"u{j}" for j in range(m)], None
    if (
        isinstance(layout, tuple)
        and len(layout) == 2
        and not any(isinstance(v, str) for v in layout)
    ):
        s, c = [str(v) for v in layout[0]], [str(v) for v in layout[1]]
        return s, c, None
    raise TypeError(
        "system_or_names must be a System, a pair (state_names, control_names) or None, "
        f"got {type(layout).__name__}"
    )


def _optional(name: str, value: ArrayLike | None, shape: tuple[int, ...]) -> Array | None:
    if value is None:
        return None
    arr = as_float_array(name, value)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def plot_trajectory(
    system_or_names: System | tuple[Sequence[str], Sequence[str]] | None,
    trajectory: Trajectory | tuple[ArrayLike, ArrayLike] | None = None,
    *,
    dt: float | None = None,
    mean: ArrayLike | None = None,
    std: ArrayLike | None = None,
    control_mean: ArrayLike | None = None,
    control_std: ArrayLike | None = None,
    ax: Sequence[Axes] | None = None,
    label: str | None = None,
    color: Any = None,
    title: str | None = None,
) -> Figure:
    r"""Plot states and controls against time, with optional :math:`\mu \pm 2\sigma` bands.

    Parameters
    ----------
    system_or_names : System, (state_names, control_names) or None
        Panel labels; a system also adds its finite control bounds as dashed lines.
    trajectory : Trajectory or (X, U), optional
        ``X (T+1, n)`` states and ``U (T, m)`` controls. May be omitted when a
        prediction (``mean``) is given.
    dt : float, optional
        Time step; default the trajectory's or the system's, else 1 (steps).
    mean, std : array_like, shape (T+1, n), optional
        Predicted state mean and standard deviation; drawn as a line and a
        band :math:`\mu \pm 2\sigma` (``std`` needs ``mean``).
    control_mean, control_std : array_like, shape (T, m), optional
        The same for controls (e.g. a policy's output distribution).
    ax : sequence of matplotlib Axes, optional
        ``n + m`` axes to draw into (e.g. ``fig.axes`` of an earlier call, to
        overlay trajectories); default a new figure.
    label : str, optional
        Legend entry of the trajectory.
    color : matplotlib colour, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = U = None
    traj_dt = None
    if isinstance(trajectory, Trajectory):
        X, U, traj_dt = trajectory.states, trajectory.controls, trajectory.dt
    elif trajectory is not None:
        if not (isinstance(trajectory, tuple) and len(trajectory) == 2):
            raise TypeError("trajectory must be a Trajectory or a pair (X, U)")
        X = as_float_array("X", trajectory[0])
        U = as_float_array("U", trajectory[1])
        if X.ndim != 2 or U.ndim != 2 or U.shape[0] != X.shape[0] - 1:
            raise ValueError(f"X must have shape (T+1, n) and U (T, m); got {X.shape}, {U.shape}")
    if X is None and mean is None:
        raise ValueError("give a trajectory, a prediction (mean), or both")
    if X is not None and U is not None:
        T, n, m = U.shape[0], X.shape[1], U.shape[1]
        snames, cnames, system = _layout(system_or_names, n, m)
    else:
        M0 = as_float_array("mean", mean)
        if M0.ndim != 2:
            raise ValueError(f"mean must have shape (T+1, n), got {M0.shape}")
        T, n = M0.shape[0] - 1, M0.shape[1]
        CM0 = None if control_mean is None else as_float_array("control_mean", control_mean)
        m = CM0.shape[-1] if CM0 is not None and CM0.ndim == 2 else 0
        snames, cnames, system = _layout(system_or_names, n, m)
        if system_or_names is not None and CM0 is None:
            m = len(cnames)  # empty control panels (bounds only)
    if len(snames) != n or len(cnames) != m:
        raise ValueError(
            f"names give {len(snames)} states and {len(cnames)} controls, data has n={n}, m={m}"
        )
    M = _optional("mean", mean, (T + 1, n))
    S = _optional("std", std, (T + 1, n))
    CM = _optional("control_mean", control_mean, (T, m))
    CS = _optional("control_std", control_std, (T, m))
    for name, s, mu in (("std", S, M), ("control_std", CS, CM)):
        if s is not None and mu is None:
            raise ValueError(f"{name} needs the matching mean")
        if s is not None and (s < 0).any():
            raise ValueError(f"{name} must be non-negative")
    if dt is None:
        dt = traj_dt if traj_dt is not None else (system.dt if system is not None else None)
    step = 1.0 if dt is None else check_positive("dt", dt)
    t = np.arange(T + 1) * step
    xlabel = "step" if dt is None else "time [s]"

    panels = n + m
    if ax is None:
        ncols = 2 if panels > 3 else 1
        nrows = math.ceil(panels / ncols)
        fig = new_figure(4.2 * ncols, 1.9 * nrows + 0.4)
        axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
        for extra in axes[panels:]:
            extra.set_visible(False)
        axes = axes[:panels]
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) < panels or not all(isinstance(a, Axes) for a in axes[:panels]):
            raise ValueError(f"ax must hold at least n + m = {panels} matplotlib Axes")
        axes = axes[:panels]
        fig = axes[0].figure

    def band(a: Axes, tt: Array, mu: Array, sd: Array | None, c: Any) -> None:
        a.plot(tt, mu, ls="--", color=c, lw=1.2, label="prediction" if a is axes[0] else None)
        if sd is not None:
            a.fill_between(tt, mu - 2 * sd, mu + 2 * sd, color=c, alpha=0.2, lw=0)

    base_color = color if color is not None else "C0"
    for i in range(n):
        a = axes[i]
        if X is not None:
            a.plot(t, X[:, i], color=base_color, lw=1.5, label=label if i == 0 else None)
        if M is not None:
            band(a, t, M[:, i], None if S is None else S[:, i], "C1" if color is None else color)
        a.set_ylabel(snames[i])
    tu = t[:-1]
    for j in range(m):
        a = axes[n + j]
        if U is not None and T > 0:
            a.step(
                np.append(tu, t[-1]),
                np.append(U[:, j], U[-1, j]),
                where="post",
                color=base_color,
                lw=1.5,
            )
        if CM is not None:
            band(
                a, tu, CM[:, j], None if CS is None else CS[:, j], "C1" if color is None else color
            )
        if system is not None:
            for bound in (system.u_low[j], system.u_high[j]):
                if np.isfinite(bound):
                    a.axhline(bound, color="0.5", ls=":", lw=1)
        a.set_ylabel(cnames[j])
    for a in axes:
        a.grid(True, alpha=0.3)
        a.set_xlabel(xlabel)
    if label is not None or M is not None:
        axes[0].legend(loc="best", fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig


def plot_learning_curve(
    costs: ArrayLike,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    xlabel: str = "episode",
    ylabel: str = "total cost",
) -> Figure:
    """Plot the cost of successive episodes; several runs as median and min-max range.

    Parameters
    ----------
    costs : array_like, shape (E,) or (R, E)
        One value per episode, for one run or ``R`` runs (e.g. seeds).
    ax : matplotlib Axes, optional
    label : str, optional
    xlabel, ylabel : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    C = as_float_array("costs", costs)
    if C.ndim == 1:
        C = C[None]
    if C.ndim != 2 or C.shape[1] == 0:
        raise ValueError(f"costs must have shape (E,) or (R, E) with E >= 1, got {C.shape}")
    if ax is None:
        fig = new_figure(5.0, 3.2)
        a = fig.add_subplot()
    else:
        a = ax
        fig = a.figure  # type: ignore[assignment]
    e = np.arange(1, C.shape[1] + 1)
    line = a.plot(e, np.median(C, axis=0), marker="o", ms=3, label=label)[0]
    if C.shape[0] > 1:
        a.fill_between(e, C.min(axis=0), C.max(axis=0), color=line.get_color(), alpha=0.2, lw=0)
    a.set_xlabel(xlabel)
    a.set_ylabel(ylabel)
    a.grid(True, alpha=0.3)
    if label is not None:
        a.legend(loc="best", fontsize=8)
    return fig


def animate(
    system: System,
    X: ArrayLike,
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    target: ArrayLike | None = None,
    every: int = 1,
    width: int = 400,
    height: int = 300,
) -> Path:
    """Write an animated GIF of the state sequence ``X`` (headless, Pillow).

    Parameters
    ----------
    system : System
        Decides the drawing (see :func:`gpcontrol.envs.rendering.draw_state`).
    X : array_like, shape (T+1, n)
        States, one frame each (before subsampling).
    path : str or PathLike
        Output file, usually ``*.gif``.
    fps : float, optional
        Frames per second; default real time, ``1 / (dt * every)``, capped to [1, 50].
    target : array_like, shape (2,), optional
        Planar point marked in every frame.
    every : int
        Keep every ``every``-th state (and always the last): ``ceil(T+1 / every)``
        frames, plus the last one when it is not already included.
    width, height : int
        Frame size in pixels.

    Notes
    -----
    The view is fixed for the whole animation (it fits every state), except
    for a cart-pole that travels further than four pole lengths: the view then
    follows the cart.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if not isinstance(system, System):
        raise TypeError(f"system must be a gpcontrol System, got {type(system).__name__}")
    Xa = as_float_array("X", X)
    if Xa.ndim != 2 or Xa.shape[1] != system.n or Xa.shape[0] < 1:
        raise ValueError(f"X must have shape (T+1, {system.n}), got {Xa.shape}")
    if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    idx = list(range(0, Xa.shape[0], int(every)))
    if idx[-1] != Xa.shape[0] - 1:
        idx.append(Xa.shape[0] - 1)
    rate = fps if fps is not None else min(50.0, max(1.0, 1.0 / (system.dt * every)))
    rate = check_positive("fps", rate)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    axis = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    limits: tuple[float, float, float, float] | None = view_limits(system, Xa)
    if isinstance(system, CartPole) and np.ptp(Xa[:, 0]) > 2.0 * system.params.pole_length:
        limits = None  # a long ride: the view follows the cart (the sleepers show the motion)
    writer = PillowWriter(fps=rate)  # type: ignore[arg-type]  # any positive rate works
    with writer.saving(fig, str(out), dpi):
        for k in idx:
            draw_state(axis, system, Xa[k], target=target, limits=limits, time=k * system.dt)
            writer.grab_frame()
    return out
