"""The ``gpcontrol`` command line, run in-process through ``main([...])``.

Oracles: the systems' own attributes for the listing; an independent
:func:`~gpcontrol.rollout.rollout` with the same seed for the printed total
cost; the written files read back (Pillow, :class:`~gpcontrol.rollout.Dataset`).
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from gpcontrol.cli import main
from gpcontrol.envs import ENV_IDS
from gpcontrol.rollout import Dataset, random_policy, rollout
from gpcontrol.systems import SYSTEMS


def test_systems_table_lists_every_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["systems"]) == 0
    out = capsys.readouterr().out
    for name, cls in SYSTEMS.items():
        system = cls()
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert ENV_IDS[name] in row
        for s in system.state_names:
            assert s in row
        assert f"{system.dt:g}" in row
    assert "pole_length" in out and "joint_limits" in out


def test_systems_json_matches_the_systems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["systems", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(SYSTEMS)
    for r in records:
        system = SYSTEMS[r["name"]]()
        assert r["state"] == list(system.state_names)
        assert r["control"] == list(system.control_names)
        assert r["dt"] == system.dt
        assert r["u_low"] == system.u_low.tolist() and r["u_high"] == system.u_high.tolist()
        lows = [float(v) for v in r["x_low"]]  # "-inf" strings parse back
        assert lows == system.x_low.tolist()
        assert r["env_id"] == ENV_IDS[r["name"]]


def test_simulate_writes_gif_png_data_and_reports_cost(
    tmp_path,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    gif, png, data = tmp_path / "cp.gif", tmp_path / "cp.png", tmp_path / "cp.npz"
    argv = ["simulate", "cartpole", "--steps", "10", "--seed", "3"]
    argv += ["--gif", str(gif), "--png", str(png), "--data", str(data)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^\s+step\s+\d+/10", out, flags=re.M)) == 10  # one line per N/10
    with Image.open(gif) as im:
        assert im.n_frames == 11
    with Image.open(png) as im:
        assert im.size[0] > 200 and im.size[1] > 200
    loaded = Dataset.load(data)
    assert loaded.inputs.shape == (10, 5) and loaded.system_name == "cartpole"

    # The printed total equals an independent rollout with the same seed and policy.
    env = gym.make(ENV_IDS["cartpole"], max_episode_steps=10)
    pol = random_policy(env.action_space.low, env.action_space.high, seed=3)
    traj = rollout(env, pol, seed=3)
    total = float(re.search(r"total cost (-?[\d.]+)", out).group(1))
    assert total == pytest.approx(traj.total_cost, abs=1e-4)
    np.testing.assert_array_equal(loaded.controls, traj.controls)


def test_simulate_zero_policy_and_frame_subsampling(tmp_path, capsys) -> None:  # noqa: ANN001
    gif, data = tmp_path / "mc.gif", tmp_path / "mc.npz"
    argv = ["simulate", "mountaincar", "--policy", "zero", "--steps", "9", "--every", "4"]
    assert main([*argv, "--gif", str(gif), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "total cost 0.0000" in out
    with Image.open(gif) as im:
        assert im.n_frames == 4  # states 0, 4, 8 and the last one, 9
    np.testing.assert_array_equal(Dataset.load(data).controls, np.zeros((9, 1)))


def test_simulate_accepts_an_environment_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "gpcontrol/ArmReach-v0", "--steps", "3"]) == 0
    assert "summary: 3 steps" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "no_such_system"],
        ["simulate", "cartpole", "--steps", "0"],
        ["simulate", "cartpole", "--policy", "clever"],
        ["pilco", "pendulum", "--propagation", "particles", "--particles", "0"],
        ["pilco", "pendulum", "--propagation", "sampling"],
        [],
    ],
)
def test_bad_arguments_exit_with_status_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_solve_swings_the_pendulum_up_and_feedback_beats_open_loop(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    """The solve job's DDP optimum ends upright and its feedback law survives noise.

    The open-loop plan is the control: replayed from perturbed starts under
    process noise it drifts off upright, so a broken feedback law (wrong sign
    or indexing of u = K x + k) cannot reach the same success count.
    """
    argv = ["solve", "pendulum", "--episodes", "6", "--out", str(tmp_path)]  # noise std 0.01
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "converged" in out
    final = re.search(r"final state \[([^\]]+)\]", out)
    assert final is not None
    theta, dtheta = (float(v) for v in final.group(1).split())
    assert abs(theta - np.pi) < 0.05 and abs(dtheta) < 0.1
    counts = dict(re.findall(r"(open loop|feedback): (\d+)/6 episodes", out))
    assert int(counts["feedback"]) == 6
    assert int(counts["open loop"]) <= 3  # measured: 1 of 20 at this noise
    assert (tmp_path / "solve_pendulum.png").exists()
    assert (tmp_path / "solve_pendulum_convergence.png").exists()


def test_gps_arm_prints_progress_writes_figures_and_resumes(tmp_path, capsys) -> None:  # noqa: ANN001
    """A tiny `gps arm` run: one line per iteration, the run folder and figures; a second call
    with more iterations resumes (its first lines are the stored iterations, identical)."""
    base = ["gps", "arm", "--quick", "--horizon", "8", "--hidden", "8", "--out", str(tmp_path)]
    base += ["--policy-iterations", "20", "--seed", "1"]
    assert main([*base, "--iterations", "1"]) == 0
    first = capsys.readouterr().out
    rows = re.findall(r"^\s+1\s+10\s.*$", first, flags=re.M)
    assert len(rows) == 1  # iteration 1 after 2 targets x 5 rollouts
    assert main([*base, "--iterations", "2"]) == 0
    second = capsys.readouterr().out
    lines = [ln for ln in second.splitlines() if re.match(r"^\s+\d+\s+\d+\s", ln)]
    assert [int(ln.split()[0]) for ln in lines] == [1, 2]
    strip = lambda ln: ln.rsplit(maxsplit=1)[0]  # noqa: E731 - drop the seconds column
    assert strip(lines[0]) == strip(rows[0])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [m["rollouts"] for m in metrics] == [10, 20]
    for name in (
        "success.png",
        "reaching.png",
        "checkpoint/iter_002/policy.pt",
        "data/iter_002.npz",
    ):
        assert (tmp_path / name).exists(), name


def test_pilco_with_particles_records_its_options_and_writes_figures(tmp_path, capsys) -> None:  # noqa: ANN001
    """`pilco --propagation particles --particles P`: the options reach the run (its
    checkpoint's meta), one row per trial is printed and the figures are written."""
    argv = ["pilco", "pendulum", "--seed", "3", "--trials", "1", "--line-searches", "2"]
    argv += [
        "--basis",
        "3",
        "--propagation",
        "particles",
        "--particles",
        "25",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "particles (25)" in out
    assert len(re.findall(r"^\s+1\s+\d+\.\d", out, flags=re.M)) == 1  # trial 1's row
    meta = json.loads((tmp_path / "checkpoint.json").read_text())["meta"]
    assert meta["options"]["propagation"] == "particles" and meta["options"]["particles"] == 25
    for name in ("learning_curve.png", "trial_01.png", "final.gif", "prediction_01.npz"):
        assert (tmp_path / name).exists(), name
