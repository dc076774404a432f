r"""A resumable MDGPS run on the arm-reaching task, with metrics and figures.

:func:`run_reaching` runs :func:`~gpcontrol.algorithms.gps.mdgps_step` on a
:class:`~gpcontrol.algorithms.reach.ReachingTask` and, after every
iteration :math:`i`, measures

* local success: the share of training targets :math:`g_c` whose local
  controller's mean :math:`u = K_t x + k_t` ends with
  :math:`\lVert p(q_T) - g_c\rVert < \delta`;
* network success on the training and on the held-out targets, with the
  noise-free network :math:`u = \mu_\theta([x, g])`;

and, with a run folder, writes a checkpoint from which an interrupted run
resumes and continues exactly as an uninterrupted one with the same seed::

    folder/
      config.json        task and options (checked on resume)
      metrics.json       one record per finished iteration (written last: a run
                         interrupted while saving resumes from the previous one)
      checkpoint/iter_NNN/  controllers.npz, policy.pt (state_dict), state.npz
                         (step multipliers, last C-step predictions), rng.json
      data/iter_NNN.npz  the iteration's samples X (M, N, T+1, n), U (M, N, T, m)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from gpcontrol.algorithms.gps import (
    MDGPSIteration,
    MDGPSOptions,
    MDGPSState,
    StepPrediction,
    mdgps_init,
    mdgps_step,
)
from gpcontrol.algorithms.reach import (
    ReachingPolicy,
    ReachingTask,
    final_distances,
    rollout_controller,
)
from gpcontrol.models.tvlg import TVLGDynamics
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy
from gpcontrol.policies.mlp import GaussianMLPPolicy
from gpcontrol.solvers.lqr_flm import QuadraticTrajectoryCost

__all__ = [
    "ReachingMetrics",
    "ReachingRun",
    "evaluate_reaching",
    "run_reaching",
    "save_reaching_figures",
    "reaching_options",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class ReachingMetrics:
    """Metrics after one iteration (JSON-ready through :meth:`to_json`).

    Attributes
    ----------
    iteration, rollouts : int
    local_success, train_success, test_success : float
        Shares of targets reached (local controllers; network on training and
        held-out targets).
    local_distances, train_distances, test_distances : tuple of float
        Final hand distances, metres.
    sample_cost, policy_cost : float
        Mean true cost of the samples and of the network on the training targets.
    kl, epsilon : tuple of float
    statuses : tuple of str
    seconds : float
        Wall-clock of the iteration including the evaluation.
    """

    iteration: int
    rollouts: int
    local_success: float
    train_success: float
    test_success: float
    local_distances: tuple[float, ...]
    train_distances: tuple[float, ...]
    test_distances: tuple[float, ...]
    sample_cost: float
    policy_cost: float
    kl: tuple[float, ...]
    epsilon: tuple[float, ...]
    statuses: tuple[str, ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReachingMetrics:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**fields)


@dataclasses.dataclass(frozen=True, eq=False)
class ReachingRun:
    """Result of :func:`run_reaching`: the final MDGPS state and every iteration's metrics."""

    task: ReachingTask
    state: MDGPSState
    metrics: tuple[ReachingMetrics, ...]
    folder: Path | None


def evaluate_reaching(
    task: ReachingTask, state: MDGPSState
) -> tuple[Array, Array, Array, Array, Array]:
    r"""Final hand distances of the local controllers and of the network.

    Returns
    -------
    local : ndarray, shape (M,)
        Local controllers' means on their training targets.
    train, test : ndarray, shapes (M,), (K,)
        Noise-free network on the training and held-out targets.
    X_train, X_test : ndarray, shapes (M, T + 1, n), (K, T + 1, n)
        The network's rollouts.
    """
    local = np.array(
        [
            final_distances(task, rollout_controller(task, c.as_deterministic())[0][-1:], g[None])[
                0
            ]
            for c, g in zip(state.controllers, task.train_targets, strict=True)
        ]
    )

    def network(G: Array) -> tuple[Array, Array]:
        X = np.stack(
            [
                rollout_controller(task, state.policy.controller(deterministic=True, context=g))[0]
                for g in G
            ]
        )
        return final_distances(task, X[:, -1], G), X

    train, X_train = network(task.train_targets)
    test, X_test = network(task.test_targets)
    return local, train, test, X_train, X_test


def _metrics(
    task: ReachingTask, state: MDGPSState, record: MDGPSIteration, seconds: float
) -> ReachingMetrics:
    local, train, test, _, _ = evaluate_reaching(task, state)
    tol = task.tolerance
    return ReachingMetrics(
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
        seconds=seconds,
    )


def reaching_options(seed: int = 0, **changes: Any) -> MDGPSOptions:
    r"""MDGPS options for :meth:`ReachingTask.default`.

    12 iterations of 5 samples per target, :math:`\epsilon_0 = 0.2` nats
    per step with multipliers in ``[0.2, 3]``, initial torque variance
    0.05 N^2 m^2, a (64, 64) tanh network and 300 Adam steps per S-step
    (tuned on seed 0 only), with on-policy samples and the MDGPS paper's
    global step rule (``sampling="policy"``, ``step_rule="global"``; chosen
    on seeds 0-4 over the off-policy defaults, checked on seeds 5-9, see
    docs/gps.md); ``changes`` override any field.
    """
    base = MDGPSOptions(
        iterations=12,
        samples=5,
        kl_step=0.2,
        step_range=(0.2, 3.0),
        init_variance=0.05,
        hidden=(64, 64),
        policy_iterations=300,
        seed=seed,
        sampling="policy",
        step_rule="global",
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------- checkpoint
def _config(task: ReachingTask, options: MDGPSOptions) -> dict[str, Any]:
    """Everything a resumed run must share (the iteration budget may grow)."""
    opts = dataclasses.asdict(options)
    opts.pop("iterations")
    return {"task": task.describe(), "options": opts}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _save(folder: Path, state: MDGPSState, metrics: list[ReachingMetrics]) -> None:
    it = state.iteration
    ck = folder / "checkpoint" / f"iter_{it:03d}"
    ck.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    np.savez(
        folder / "data" / f"iter_{it:03d}.npz",
        X=np.stack([s[0] for s in state.samples]),
        U=np.stack([s[1] for s in state.samples]),
    )
    ctrl = state.controllers
    np.savez(
        ck / "controllers.npz",
        K=np.stack([c.K for c in ctrl]),
        k=np.stack([c.k for c in ctrl]),
        cov=np.stack([c.cov for c in ctrl]),
    )
    torch.save(state.policy.state_dict(), ck / "policy.pt")
    arrays: dict[str, Any] = {
        "iteration": it,
        "rollouts": state.rollouts,
        "multipliers": state.multipliers,
        "has_previous": np.array([p is not None for p in state.previous]),
    }
    for c, p in enumerate(state.previous):
        if p is None:
            continue
        arrays.update({f"F{c}": p.dynamics.F, f"f{c}": p.dynamics.f, f"S{c}": p.dynamics.Sigma})
        q = p.cost
        arrays.update({f"C{c}": q.C, f"c{c}": q.c, f"c0{c}": q.c0})
        arrays.update({f"CT{c}": q.C_T, f"cT{c}": q.c_T, f"c0T{c}": q.c0_T, f"old{c}": p.old_value})
    hist = [
        {f.name: _plain(getattr(h, f.name)) for f in dataclasses.fields(h)} for h in state.history
    ]
    np.savez(ck / "state.npz", **arrays)
    _write_json(ck / "rng.json", {"rng": state.rng.bit_generator.state, "history": hist})
    _write_json(folder / "metrics.json", [m.to_json() for m in metrics])  # last: commits


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    return list(v) if isinstance(v, tuple) else v


def _load(folder: Path, state: MDGPSState) -> list[ReachingMetrics]:
    metrics = [
        ReachingMetrics.from_json(d) for d in json.loads((folder / "metrics.json").read_text())
    ]
    ck = folder / "checkpoint" / f"iter_{len(metrics):03d}"
    z = np.load(ck / "state.npz")
    if int(z["iteration"]) != len(metrics):
        raise ValueError(
            f"{folder}: checkpoint is at iteration {int(z['iteration'])} but metrics.json has "
            f"{len(metrics)} records; the folder is inconsistent"
        )
    c_npz = np.load(ck / "controllers.npz")
    state.controllers[:] = [
        LinearGaussianPolicy(K, k, cov)
        for K, k, cov in zip(c_npz["K"], c_npz["k"], c_npz["cov"], strict=True)
    ]
    state.policy.load_state_dict(torch.load(ck / "policy.pt", weights_only=True))
    state.multipliers[:] = z["multipliers"]
    state.rollouts = int(z["rollouts"])
    for c, has in enumerate(z["has_previous"]):
        if not has:
            continue
        n = int(z[f"F{c}"].shape[1])
        dyn = TVLGDynamics(z[f"F{c}"], z[f"f{c}"], z[f"S{c}"])
        cost = QuadraticTrajectoryCost(
            C=z[f"C{c}"], c=z[f"c{c}"], c0=z[f"c0{c}"],
            C_T=z[f"CT{c}"], c_T=z[f"cT{c}"], c0_T=float(z[f"c0T{c}"]), n=n,
        )  # fmt: skip
        state.previous[c] = StepPrediction(dyn, cost, float(z[f"old{c}"]))
    saved = json.loads((ck / "rng.json").read_text())
    state.rng.bit_generator.state = saved["rng"]
    state.history[:] = [
        MDGPSIteration(
            sample_costs=np.array(h["sample_costs"]),
            policy_costs=np.array(h["policy_costs"]),
            epsilon=np.array(h["epsilon"]),
            kl=np.array(h["kl"]),
            statuses=tuple(h["statuses"]),
            s_step_loss=float(h["s_step_loss"]),
            seconds=float(h["seconds"]),
        )
        for h in saved["history"]
    ]
    return metrics


# ---------------------------------------------------------------------------- the loop
def run_reaching(
    task: ReachingTask,
    options: MDGPSOptions,
    *,
    folder: str | os.PathLike[str] | None = None,
    callback: Callable[[ReachingMetrics], None] | None = None,
    policy: GaussianMLPPolicy | None = None,
) -> ReachingRun:
    r"""MDGPS on a reaching task with a target-conditioned :class:`ReachingPolicy`.

    .. math::

        \text{conditions } c = 1..M:\ (x_0, g_c),\qquad
        \pi_\theta(u \mid x, g) = \mathcal N(\mu_\theta([x, g]), \Sigma_\pi)

    Runs ``options.iterations`` iterations of
    :func:`~gpcontrol.algorithms.gps.mdgps_step` (Montgomery & Levine,
    NIPS 2016) on the torque-limited arm, evaluating after each
    (:class:`ReachingMetrics`). With ``folder``, every iteration is
    checkpointed, and a folder holding a checkpoint of the same task and
    options (but any ``iterations``) is resumed from its last finished iteration.

    Parameters
    ----------
    task : ReachingTask
    options : MDGPSOptions
    folder : path, optional
        Run folder.
    callback : callable, optional
        Called with each iteration's metrics (also the ones loaded on resume).
    policy : GaussianMLPPolicy, optional
        The network, with ``n + 2`` inputs ``[x, g]``; default a
        :class:`ReachingPolicy` with ``options.hidden`` and ``options.seed``
        (a plain :class:`~gpcontrol.policies.mlp.GaussianMLPPolicy` is the
        ablation without the hand-offset feature).

    Returns
    -------
    ReachingRun
    """
    if not isinstance(task, ReachingTask):
        raise TypeError(f"task must be a ReachingTask, got {type(task).__name__}")
    if not isinstance(options, MDGPSOptions):
        raise TypeError(f"options must be MDGPSOptions, got {type(options).__name__}")
    M = len(task.train_targets)
    x0s = np.tile(task.x0, (M, 1))
    costs = [task.cost(g) for g in task.train_targets]
    dyn = task.dynamics
    if policy is None:
        policy = ReachingPolicy(task.system, options.hidden, seed=options.seed)
    state = mdgps_init(
        dyn, costs, x0s, task.T, options=options, contexts=task.train_targets, policy=policy
    )
    metrics: list[ReachingMetrics] = []
    path = None if folder is None else Path(folder)
    if path is not None:
        config = _config(task, options)
        config_json = json.loads(json.dumps(config))
        cfg_file = path / "config.json"
        if (path / "metrics.json").exists():
            old = json.loads(cfg_file.read_text())
            if old != config_json:
                raise ValueError(f"{path} holds a run with another configuration; use a new folder")
            metrics = _load(path, state)
            logger.info("resuming %s after iteration %d", path, len(metrics))
        else:
            path.mkdir(parents=True, exist_ok=True)
            _write_json(cfg_file, config)
        if callback is not None:
            for m in metrics:
                callback(m)
    while state.iteration < options.iterations:
        t0 = time.perf_counter()
        record = mdgps_step(
            dyn, costs, x0s, task.T, state, options=options, contexts=task.train_targets
        )
        m = _metrics(task, state, record, time.perf_counter() - t0)
        metrics.append(m)
        if path is not None:
            _save(path, state, metrics)
        if callback is not None:
            callback(m)
    return ReachingRun(task, state, tuple(metrics), path)


# ---------------------------------------------------------------------------- figures
def save_reaching_figures(
    run: ReachingRun,
    folder: str | os.PathLike[str],
    *,
    ceiling_success: float | None = None,
) -> list[Path]:
    r"""Write ``success.png`` (success vs rollouts) and ``reaching.png`` (the network's reaches).

    ``success.png`` plots the shares of targets reached against the number
    of rollouts; ``reaching.png`` draws, for every training (solid) and
    held-out (dashed) target, the hand path of the noise-free network and
    the arm's final pose, with the tolerance disc around the target.

    Parameters
    ----------
    run : ReachingRun
    folder : path
    ceiling_success : float, optional
        iLQR's success share, drawn as a horizontal line.

    Returns
    -------
    list of pathlib.Path
    """
    from matplotlib.patches import Circle

    from gpcontrol.plotting import new_figure

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    task, ms = run.task, run.metrics
    fig = new_figure(6.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    r = [m.rollouts for m in ms]
    for key, label in (
        ("local_success", "local controllers (train)"),
        ("train_success", "network, training targets"),
        ("test_success", "network, held-out targets"),
    ):
        ax.plot(r, [100 * getattr(m, key) for m in ms], marker="o", label=label)
    if ceiling_success is not None:
        ax.axhline(100 * ceiling_success, color="k", ls=":", label="iLQR, true dynamics")
    ax.set_xlabel("rollouts")
    ax.set_ylabel(f"targets reached within {task.tolerance:g} m [%]")
    ax.set_ylim(-5, 105)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    paths = [out / "success.png"]
    fig.savefig(paths[0])

    _, _, _, X_train, X_test = evaluate_reaching(task, run.state)
    fig = new_figure(6.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    start = task.system.points(task.x0)
    ax.plot(start[:, 0], start[:, 1], color="0.6", lw=3, label="start pose")
    for X, G, style in ((X_train, task.train_targets, "-"), (X_test, task.test_targets, "--")):
        for x, g in zip(X, G, strict=True):
            hand = task.system.end_effector(x)
            ok = np.linalg.norm(hand[-1] - g) < task.tolerance
            color = "tab:green" if ok else "tab:red"
            ax.plot(hand[:, 0], hand[:, 1], style, color=color, lw=1)
            pose = task.system.points(x[-1])
            ax.plot(pose[:, 0], pose[:, 1], color=color, lw=1.5, alpha=0.5)
            disc = Circle(tuple(g), task.tolerance, fill=False, color="0.7", lw=0.4)
            ax.add_patch(disc)
            ax.plot(*g, marker="*" if style == "-" else ".", color="k")
    ax.plot([0.0], [0.0], "ks", label="shoulder")
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(
        f"network after {ms[-1].rollouts} rollouts: train {100 * ms[-1].train_success:.0f} %, "
        f"held-out {100 * ms[-1].test_success:.0f} %"
        if ms
        else "network"
    )
    ax.legend(loc="lower left")
    paths.append(out / "reaching.png")
    fig.savefig(paths[1])
    return paths
