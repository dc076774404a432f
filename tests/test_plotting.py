"""Figures and animations: the drawn data is the given data, GIFs have one frame per state.

Oracles: the line and band coordinates read back from the matplotlib
artists; frame counts and sizes read back with Pillow; pyplot's global state
left untouched.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from PIL import Image

from gpcontrol.envs import Renderer
from gpcontrol.plotting import animate, plot_learning_curve, plot_trajectory
from gpcontrol.rollout import Trajectory
from gpcontrol.systems import CartPole, DoublePendulum, MountainCar, Pendulum, PlanarArm


def _data(T: int = 12, n: int = 4, m: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T + 1, n)), rng.standard_normal((T, m))


def test_plot_trajectory_draws_the_given_states_and_controls() -> None:
    system = CartPole()
    X, U = _data()
    fig = plot_trajectory(system, (X, U))
    assert isinstance(fig, Figure)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == system.n + system.m
    t = np.arange(13) * system.dt
    for i in range(system.n):
        line = axes[i].get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), t)
        np.testing.assert_array_equal(line.get_ydata(), X[:, i])
        assert axes[i].get_ylabel() == system.state_names[i]
    step = axes[4].get_lines()[0]
    np.testing.assert_array_equal(step.get_ydata()[:-1], U[:, 0])
    # Control bounds drawn as horizontal lines at +-10 N.
    levels = {float(line.get_ydata()[0]) for line in axes[4].get_lines()[1:]}
    assert levels == {-10.0, 10.0}


def test_prediction_band_is_mean_plus_minus_two_std() -> None:
    X, U = _data(T=20, n=2)
    mean = X + 0.1
    std = np.abs(X) * 0.2 + 0.05
    alone = plot_trajectory((("a", "b"), ()), None, mean=mean, std=std, dt=0.5)
    assert len([a for a in alone.axes if a.get_visible()]) == 2
    with pytest.raises(TypeError, match="pair"):
        plot_trajectory(("a", "b"), None, mean=mean)  # type: ignore[arg-type]
    fig = plot_trajectory((("a", "b"), ("u",)), (X, U), mean=mean, std=std, dt=0.5)
    for i, ax in enumerate(fig.axes[:2]):
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1
        verts = bands[0].get_paths()[0].vertices
        lo, hi = mean[:, i] - 2 * std[:, i], mean[:, i] + 2 * std[:, i]
        assert verts[:, 1].min() == pytest.approx(lo.min())
        assert verts[:, 1].max() == pytest.approx(hi.max())
        # Every band edge point lies on mu +- 2 sigma at its time.
        for x, y in verts:
            j = int(round(x / 0.5))
            assert np.isclose(y, lo[j]) or np.isclose(y, hi[j])


def test_overlay_into_existing_axes_and_trajectory_input() -> None:
    X, U = _data(n=2)
    traj = Trajectory(X, U, np.zeros(13), np.zeros(12), dt=0.05, state_names=("theta", "dtheta"))
    fig = plot_trajectory(Pendulum(), traj, label="first")
    before = len(fig.axes[0].get_lines())
    same = plot_trajectory(Pendulum(), (X + 1, U), ax=fig.axes, label="second")
    assert same is fig
    assert len(fig.axes[0].get_lines()) == before + 1
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), np.arange(13) * 0.05)


def test_plot_trajectory_validation() -> None:
    X, U = _data(n=2)
    with pytest.raises(ValueError, match="names give"):
        plot_trajectory(CartPole(), (X, U))
    with pytest.raises(ValueError, match="std needs"):
        plot_trajectory(None, (X, U), std=np.ones_like(X))
    with pytest.raises(ValueError, match="non-negative"):
        plot_trajectory(None, (X, U), mean=X, std=-np.ones_like(X))
    with pytest.raises(ValueError, match="mean must have shape"):
        plot_trajectory(None, (X, U), mean=X[:-1])
    with pytest.raises(ValueError, match="trajectory, a prediction"):
        plot_trajectory(None, None)
    with pytest.raises(ValueError, match="n \\+ m"):
        plot_trajectory(None, (X, U), ax=[])


def test_learning_curve_median_and_range() -> None:
    C = np.array([[5.0, 3.0, 1.0], [7.0, 2.0, 1.5], [6.0, 4.0, 0.5]])
    fig = plot_learning_curve(C, label="pilco")
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), np.median(C, axis=0))
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == C.min() and band.max() == C.max()
    with pytest.raises(ValueError, match="costs"):
        plot_learning_curve(np.zeros((2, 0)))


@pytest.mark.parametrize("every", [1, 4])
def test_animate_writes_one_frame_per_state(tmp_path, every: int) -> None:  # noqa: ANN001
    system = Pendulum(dt=0.1)
    X = system.simulate([0.5, 0.0], np.zeros((10, 1)))
    out = animate(system, X, tmp_path / "sub" / "p.gif", every=every, width=200, height=150)
    expected = len(range(0, 11, every)) + (0 if 10 % every == 0 else 1)
    with Image.open(out) as im:
        assert im.n_frames == expected
        assert im.size == (200, 150)
        assert im.info["duration"] == int(1000 / min(50, 1 / (0.1 * every)))


@pytest.mark.parametrize("system", [CartPole(), MountainCar(), PlanarArm(), DoublePendulum()])
def test_animate_every_system(tmp_path, system) -> None:  # noqa: ANN001
    X = np.tile(np.clip(np.zeros(system.n), system.x_low, system.x_high), (3, 1))
    X[1, 0] += 0.3
    out = animate(system, X, tmp_path / "a.gif", fps=5)
    with Image.open(out) as im:
        assert im.n_frames == 3


def test_animate_validation(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="X must have shape"):
        animate(Pendulum(), np.zeros((3, 4)), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="every"):
        animate(Pendulum(), np.zeros((3, 2)), tmp_path / "x.gif", every=0)
    with pytest.raises(TypeError, match="System"):
        animate("pendulum", np.zeros((3, 2)), tmp_path / "x.gif")  # type: ignore[arg-type]


def test_renderer_shapes_and_target() -> None:
    r = Renderer(PlanarArm(), width=160, height=120, target=(-0.2, 0.45))
    img = r.rgb([0.5, 1.0, 0.0, 0.0])
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    plain = Renderer(PlanarArm(), width=160, height=120).rgb([0.5, 1.0, 0.0, 0.0])
    assert not np.array_equal(img, plain)  # the target marker is drawn
    with pytest.raises(ValueError, match="width"):
        Renderer(Pendulum(), width=4)


def test_no_pyplot_state_is_touched(tmp_path) -> None:  # noqa: ANN001
    backend = matplotlib.get_backend()
    X, U = _data(n=2)
    plot_trajectory(Pendulum(), (X, U))
    animate(Pendulum(), X, tmp_path / "x.gif", width=100, height=80)
    assert matplotlib.get_backend() == backend
    import matplotlib.pyplot as plt  # imported only now, to inspect its registry

    assert plt.get_fignums() == []
