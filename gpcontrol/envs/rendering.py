r"""Drawing a system's state with matplotlib, headless.

Every built-in system is drawn from its planar points
:math:`P(x) \in \mathbb R^{k \times 2}` (:meth:`~gpcontrol.systems.base.System.points`),
decorated according to the system's type:

* :class:`~gpcontrol.systems.CartPole` -- track, cart and pole;
* :class:`~gpcontrol.systems.Pendulum` -- pivot, rod and bob;
* :class:`~gpcontrol.systems.MountainCar` -- the hill
  :math:`h(p) = 0.45 \sin(\omega p) + 0.55`, the car and the goal flag;
* :class:`~gpcontrol.systems.PlanarArm` and
  :class:`~gpcontrol.systems.DoublePendulum` -- links, joints, reachable
  workspace and (optionally) a target point;
* any other system -- its points as a polyline, or a bar chart of the state
  when it defines no points.

Nothing here touches pyplot's global state: figures are
:class:`matplotlib.figure.Figure` objects drawn on a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, so rendering works
on a machine without a display and never changes the user's backend.
"""

from __future__ import annotations

from typing import Any, cast

import casadi as ca
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array
from gpcontrol.systems import CartPole, DoublePendulum, MountainCar, Pendulum, PlanarArm, System

__all__ = ["draw_state", "view_limits", "Renderer"]

Array = NDArray[np.float64]
Limits = tuple[float, float, float, float]

_LINK = "#1f4e79"
_ACCENT = "#c0392b"
_GROUND = "#7f7f7f"


def view_limits(system: System, X: ArrayLike | None = None) -> Limits:
    """Axis limits ``(xmin, xmax, ymin, ymax)`` that keep the whole picture in view.

    Parameters
    ----------
    system : System
    X : array_like, shape (..., n), optional
        States that must all fit (e.g. a whole trajectory for an animation).
        Without it, limits that fit every configuration of a fixed-base
        mechanism; the cart-pole window is then centred on the origin.

    Returns
    -------
    tuple of float
        ``(xmin, xmax, ymin, ymax)`` with equal scales on both axes intended.
    """
    if isinstance(system, MountainCar):
        p = system.params
        lo = -1.2 if not np.isfinite(p.min_position) else p.min_position
        hi = 0.6 if not np.isfinite(p.max_position) else p.max_position
        return lo - 0.05, hi + 0.05, -0.05, 1.15
    if isinstance(system, CartPole):
        l = system.params.pole_length
        half = max(2.5 * l, 1.0)
        if X is None:
            centre_lo = centre_hi = 0.0
        else:
            Xa = as_batch("X", X, system.n).reshape(-1, system.n)
            centre_lo, centre_hi = float(Xa[:, 0].min()), float(Xa[:, 0].max())
        return centre_lo - half, centre_hi + half, -1.4 * l, 1.4 * l
    if isinstance(system, Pendulum):
        r = 1.25 * system.params.length
        return -r, r, -r, r
    if isinstance(system, PlanarArm | DoublePendulum):
        r = 1.15 * float(sum(system.params.lengths))
        return -r, r, -r, r
    # Generic system: fit its points.
    if system.points(np.zeros(system.n)).shape[-2] == 0:
        return -1.0, 1.0, -1.0, 1.0
    states = np.zeros((1, system.n)) if X is None else as_batch("X", X, system.n)
    pts = system.points(states).reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.2, 1.0)
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def draw_state(
    ax: Axes,
    system: System,
    x: ArrayLike,
    *,
    target: ArrayLike | None = None,
    limits: Limits | None = None,
    time: float | None = None,
) -> None:
    """Draw one state of ``system`` on ``ax`` (the axes are cleared first).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    system : System
    x : array_like, shape (n,)
        The state to draw.
    target : array_like, shape (2,), optional
        A planar point to mark (reaching target, goal tip position).
    limits : tuple of float, optional
        ``(xmin, xmax, ymin, ymax)``; default :func:`view_limits` of this state.
    time : float, optional
        Written in the corner as ``t = ... s``.
    """
    xa = as_batch("x", x, system.n)
    if xa.ndim != 1:
        raise ValueError(f"x must have shape ({system.n},), got {xa.shape}")
    tgt = None if target is None else as_float_array("target", target).reshape(-1)
    if tgt is not None and tgt.shape != (2,):
        raise ValueError(f"target must have shape (2,), got {tgt.shape}")
    _clear(ax)
    if limits is None:
        limits = view_limits(system, xa[None] if isinstance(system, CartPole) else None)
    if isinstance(system, CartPole):
        _draw_cartpole(ax, system, xa, limits)
    elif isinstance(system, Pendulum):
        _draw_pendulum(ax, system, xa)
    elif isinstance(system, MountainCar):
        _draw_mountaincar(ax, system, xa)
    elif isinstance(system, PlanarArm | DoublePendulum):
        _draw_chain(ax, system, xa)
    else:
        _draw_generic(ax, system, xa)
    if tgt is not None:
        ax.plot(tgt[0], tgt[1], marker="x", color=_ACCENT, markersize=10, mew=2.5, zorder=5)
        size = 0.03 * min(limits[1] - limits[0], limits[3] - limits[2])
        ax.add_patch(Circle((float(tgt[0]), float(tgt[1])), size, fill=False, ec=_ACCENT))
    xmin, xmax, ymin, ymax = _fit_aspect(ax, limits)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    if time is not None:
        ax.text(0.02, 0.96, f"t = {time:.2f} s", transform=ax.transAxes, va="top", fontsize=9)


def _clear(ax: Axes) -> None:
    """Remove drawn artists; cheaper than ``Axes.cla`` (which rebuilds the ticks)."""
    for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.texts, *ax.images]:
        artist.remove()


def _fit_aspect(ax: Axes, limits: Limits) -> Limits:
    """Widen ``limits`` so that one data unit has the same length on both axes."""
    xmin, xmax, ymin, ymax = limits
    bbox = ax.get_position(original=True)
    root = cast(Figure, getattr(ax.figure, "figure", ax.figure))  # a SubFigure's root
    fw, fh = root.get_size_inches()
    box_ratio = (bbox.height * fh) / max(bbox.width * fw, 1e-12)
    w, h = xmax - xmin, ymax - ymin
    if h / w < box_ratio:
        pad = (box_ratio * w - h) / 2
        ymin, ymax = ymin - pad, ymax + pad
    else:
        pad = (h / box_ratio - w) / 2
        xmin, xmax = xmin - pad, xmax + pad
    return xmin, xmax, ymin, ymax


def _draw_cartpole(ax: Axes, system: CartPole, x: Array, limits: Limits) -> None:
    l = system.params.pole_length
    (cart, tip) = system.points(x)
    ax.axhline(0.0, color=_GROUND, lw=1.5, zorder=0)
    # Sleepers every 0.25 m make the cart's motion visible when the view follows it.
    s = np.arange(np.floor(limits[0] * 4) / 4, limits[1], 0.25)
    xs = np.stack([s, s, np.full_like(s, np.nan)], axis=1).ravel()
    ys = np.tile([-0.04 * l, 0.0, np.nan], len(s))
    ax.plot(xs, ys, color=_GROUND, lw=1, zorder=0)
    lim = system.params.track_limit
    if np.isfinite(lim):
        for s in (-lim, lim):
            ax.plot([s, s], [-0.2 * l, 0.2 * l], color="k", lw=3)
    w, h = 0.5 * l, 0.25 * l
    ax.add_patch(Rectangle((cart[0] - w / 2, -h / 2), w, h, fc="#d9d9d9", ec="k", zorder=2))
    ax.plot(
        [cart[0], tip[0]], [cart[1], tip[1]], color=_LINK, lw=4, solid_capstyle="round", zorder=3
    )
    ax.add_patch(Circle(tuple(cart), 0.04 * l, fc="k", zorder=4))
    ax.add_patch(Circle(tuple(tip), 0.06 * l, fc=_ACCENT, zorder=4))


def _draw_pendulum(ax: Axes, system: Pendulum, x: Array) -> None:
    l = system.params.length
    pivot, tip = system.points(x)
    ax.plot([0, 0], [0, l], color=_GROUND, lw=1, ls="--", zorder=0)
    ax.plot([pivot[0], tip[0]], [pivot[1], tip[1]], color=_LINK, lw=5, solid_capstyle="round")
    ax.add_patch(Circle(tuple(pivot), 0.04 * l, fc="k", zorder=4))
    ax.add_patch(Circle(tuple(tip), 0.07 * l, fc=_ACCENT, zorder=4))


def _draw_mountaincar(ax: Axes, system: MountainCar, x: Array) -> None:
    p = system.params
    lo, hi, _, _ = view_limits(system)
    ps = np.linspace(lo + 0.05, hi - 0.05, 200)
    hs = np.asarray(system.height(ca.DM(ps))).reshape(-1)
    ax.fill_between(ps, -0.05, hs, color="#e8e2d0", zorder=0)
    ax.plot(ps, hs, color="k", lw=1.5, zorder=1)
    goal_h = float(np.asarray(system.height(ca.DM(p.goal_position))).reshape(-1)[0])
    ax.plot([p.goal_position] * 2, [goal_h, goal_h + 0.12], color="k", lw=1.5)
    ax.add_patch(
        Rectangle((p.goal_position, goal_h + 0.08), 0.06, 0.04, fc="#f1c40f", ec="k", zorder=3)
    )
    car = system.points(x)[0]
    slope = p.hill_frequency * 0.45 * np.cos(p.hill_frequency * x[0])
    angle = float(np.degrees(np.arctan(slope)))
    w, h = 0.12, 0.05
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    corner = car + np.array([-w / 2 * c, -w / 2 * s]) + np.array([-s, c]) * 0.01
    ax.add_patch(Rectangle(tuple(corner), w, h, angle=angle, fc=_LINK, ec="k", zorder=4))


def _draw_chain(ax: Axes, system: PlanarArm | DoublePendulum, x: Array) -> None:
    pts = system.points(x)
    reach = float(sum(system.params.lengths))
    ax.add_patch(Circle((0.0, 0.0), reach, fill=False, ec=_GROUND, ls=":", lw=1, zorder=0))
    ax.plot(pts[:, 0], pts[:, 1], color=_LINK, lw=5, solid_capstyle="round", zorder=2)
    for i, (px, py) in enumerate(pts[:-1]):
        ax.add_patch(Circle((px, py), 0.03 * reach, fc="k" if i == 0 else "w", ec="k", zorder=3))
    ax.add_patch(Circle(tuple(pts[-1]), 0.035 * reach, fc=_ACCENT, zorder=4))


def _draw_generic(ax: Axes, system: System, x: Array) -> None:
    pts = system.points(x)
    if pts.shape[0]:
        ax.plot(pts[:, 0], pts[:, 1], "o-", color=_LINK, lw=3)
        return
    # No geometry: show the state vector as bars inside the unit box.
    scale = max(1.0, float(np.abs(x).max()))
    centres = np.linspace(-0.8, 0.8, system.n) if system.n > 1 else np.zeros(1)
    ax.bar(centres, x / scale, width=1.2 / max(system.n, 1), color=_LINK)
    ax.axhline(0.0, color=_GROUND, lw=1)


class Renderer:
    """A reusable off-screen canvas that turns states into RGB images.

    Parameters
    ----------
    system : System
    width, height : int
        Image size in pixels.
    target : array_like, shape (2,), optional
        Point marked in every frame.

    Examples
    --------
    >>> from gpcontrol.systems import Pendulum
    >>> Renderer(Pendulum(), width=160, height=120).rgb([1.0, 0.0]).shape
    (120, 160, 3)
    """

    def __init__(
        self,
        system: System,
        *,
        width: int = 400,
        height: int = 300,
        target: ArrayLike | None = None,
    ) -> None:
        if int(width) < 16 or int(height) < 16:
            raise ValueError(f"width and height must be at least 16 pixels, got {width}x{height}")
        self.system = system
        self.target = None if target is None else as_float_array("target", target).reshape(-1)
        dpi = 100
        self.figure = Figure(figsize=(int(width) / dpi, int(height) / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax = self.figure.add_axes((0.0, 0.0, 1.0, 1.0))

    def rgb(self, x: ArrayLike, *, time: float | None = None, limits: Limits | None = None) -> Any:
        """Draw state ``x``; returns the image, ``uint8`` of shape ``(height, width, 3)``."""
        draw_state(self.ax, self.system, x, target=self.target, limits=limits, time=time)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()
