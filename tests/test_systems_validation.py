"""Input validation, kinematics and plain-data description of the known-physics systems.

* Bad parameters and arguments raise ``ValueError``/``TypeError`` naming the argument.
* Hypothesis throws malformed input (wrong ndim or size, NaN, inf, empty,
  complex, strings, huge integers, ragged lists, ...) at every public method of
  every system: only ``ValueError``/``TypeError`` may escape, and whatever is
  accepted gives float64 output of the documented shape.
* ``points``/``end_effector`` against forward kinematics written here;
  ``inverse_kinematics`` round-trips through ``end_effector``.
* ``describe()`` is strict JSON.
"""

from __future__ import annotations

import json
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from conftest import three_link_params
from hypothesis import given
from hypothesis import strategies as st

from gpcontrol.systems import (
    SYSTEMS,
    CartPole,
    CartPoleParams,
    ChainParams,
    DoublePendulum,
    MountainCar,
    MountainCarParams,
    Pendulum,
    PendulumParams,
    PlanarArm,
    make_system,
)

CLASSES = [CartPole, Pendulum, MountainCar, PlanarArm, DoublePendulum]


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: CartPoleParams(cart_mass=-1.0), "cart_mass"),
        (lambda: CartPoleParams(pole_mass=0.0), "pole_mass"),
        (lambda: CartPoleParams(pole_length=-0.5), "pole_length"),
        (lambda: CartPoleParams(friction=-0.1), "friction"),
        (lambda: CartPoleParams(pole_mass="heavy"), "pole_mass"),  # type: ignore[arg-type]
        (lambda: PendulumParams(mass=-1.0), "mass"),
        (lambda: PendulumParams(length=-1.0), "length"),
        (lambda: PendulumParams(length=math.inf), "length"),
        (lambda: PendulumParams(damping=math.nan), "damping"),
        (lambda: MountainCarParams(power=-0.0015), "power"),
        (lambda: MountainCarParams(min_position=1.0), "min_position"),
        (lambda: ChainParams(masses=(1.4, -1.1)), "masses"),
        (lambda: ChainParams(lengths=(0.3, -0.33)), "lengths"),
        (lambda: ChainParams(lengths=(0.3, math.inf)), "lengths"),
        (lambda: ChainParams(masses=(1.0, 2.0, 3.0)), "lengths"),  # 3 masses, 2 lengths
        (lambda: ChainParams(inertias=(0.001, 0.045)), "inertias"),  # below m s^2
        (lambda: ChainParams(friction=((0.0, 1.0), (-1.0, -0.1))), "friction"),
        (lambda: ChainParams(actuated=(False, False)), "actuated"),
    ],
)
def test_bad_physical_parameters_are_rejected_by_name(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"dt": -0.1}, ValueError, "dt"),
        ({"dt": 0.0}, ValueError, "dt"),
        ({"dt": math.nan}, ValueError, "dt"),
        ({"dt": math.inf}, ValueError, "dt"),
        ({"dt": "0.1"}, TypeError, "dt"),
        ({"dt": None}, TypeError, "dt"),
        ({"substeps": 2.5}, ValueError, "substeps"),
        ({"substeps": 0}, ValueError, "substeps"),
        ({"substeps": "2"}, ValueError, "substeps"),
        ({"substeps": True}, ValueError, "substeps"),
        ({"integrator": "rk5"}, ValueError, "integrator"),
        ({"params": PendulumParams()}, TypeError, "params"),
        ({"params": {"mass": 1.0}}, TypeError, "params"),
    ],
)
def test_bad_constructor_arguments_are_rejected_by_name(cls, kwargs, error, name):
    if cls is Pendulum and isinstance(kwargs.get("params"), PendulumParams):
        kwargs = {"params": CartPoleParams()}
    with pytest.raises(error, match=name):
        cls(**kwargs)


def test_make_system_builds_every_registered_system_and_rejects_unknown_names():
    for name, cls in SYSTEMS.items():
        assert type(make_system(name, dt=0.02)) is cls
    with pytest.raises(ValueError, match="unknown system"):
        make_system("acrobat")


# ------------------------------------------------------------------- arguments
def test_bad_arguments_are_rejected_by_name(known_system):
    sys = known_system.system
    n, m = sys.n, sys.m
    x, u = np.zeros(n), np.zeros(m)
    with pytest.raises(ValueError, match=rf"^x must have shape \(\.\.\., {n}\)"):
        sys.step(np.zeros(n + 1), u)
    with pytest.raises(ValueError, match=rf"^u must have shape \(\.\.\., {m}\)"):
        sys.step(x, np.zeros(m + 1))
    with pytest.raises(ValueError, match=rf"^X must have shape \(\.\.\., {n}\)"):
        sys.linearize(np.zeros((5, n - 1)), np.zeros((5, m)))
    with pytest.raises(ValueError, match=rf"^U must have shape \(\.\.\., {m}\)"):
        sys.second_derivatives(np.zeros((5, n)), np.zeros((5, m + 1)))
    with pytest.raises(ValueError, match="^x contains NaN"):
        sys.step(np.full(n, np.nan), u)
    with pytest.raises(ValueError, match="^u contains inf"):
        sys.derivative(x, np.full(m, -np.inf))
    with pytest.raises(ValueError, match="^X contains inf"):
        sys.linearize(np.full((2, n), np.inf), u)
    with pytest.raises(ValueError, match="X .* and U .* do not broadcast"):
        sys.linearize(np.zeros((3, n)), np.zeros((4, m)))
    with pytest.raises(ValueError, match="x .* and u .* do not broadcast"):
        sys.step(np.zeros((2, 3, n)), np.zeros((4, m)))
    with pytest.raises(ValueError, match="^U must have shape"):
        sys.simulate(x, u)  # a single control, not a sequence
    with pytest.raises(ValueError, match="x0 .* and U.* do not broadcast"):
        sys.simulate(np.zeros((2, n)), np.zeros((5, 3, m)))
    with pytest.raises(ValueError, match="^x0 contains NaN"):
        sys.simulate(np.full(n, np.nan), np.zeros((5, m)))
    with pytest.raises(ValueError, match="^x must be a real numeric array"):
        sys.points("upright")
    with pytest.raises(ValueError, match="^x must be a real numeric array"):
        sys.energy(np.zeros(n, dtype=complex))


# -------------------------------------------------------------- hypothesis fuzz
def _shapes():
    return hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_huge_ints = st.sampled_from([10**400, -(10**309)])  # beyond float64
_junk_scalars = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.integers(),
    _huge_ints,
    _floats,
    st.complex_numbers(),
)
MALFORMED = st.one_of(
    hnp.arrays(np.float64, _shapes(), elements=_floats),
    hnp.arrays(np.float64, _shapes(), elements=st.floats(-10, 10)),
    hnp.arrays(
        st.sampled_from([np.dtype(t) for t in ("i8", "u1", "?", "c16", "f4", "U3", "S2")]),
        _shapes(),
    ),
    st.lists(_junk_scalars, max_size=6),
    st.lists(st.lists(st.floats(-1, 1), max_size=4), max_size=3),  # ragged or empty
    _junk_scalars,
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _call_all(sys, bad):
    """Every public numeric method with ``bad`` in each argument position."""
    n, m = sys.n, sys.m
    x, u = np.zeros(n), np.zeros(m)
    U = np.zeros((2, m))
    calls = [
        ("step", lambda: sys.step(bad, u), (n,)),
        ("step", lambda: sys.step(x, bad), (n,)),
        ("derivative", lambda: sys.derivative(bad, u), (n,)),
        ("linearize", lambda: sys.linearize(bad, u).A, (n, n)),
        ("linearize", lambda: sys.linearize(x, bad).B, (n, m)),
        ("second_derivatives", lambda: sys.second_derivatives(bad, u).fxx, (n, n, n)),
        ("second_derivatives", lambda: sys.second_derivatives(x, bad).fux, (n, m, n)),
        ("simulate", lambda: sys.simulate(bad, U), (n,)),
        ("simulate", lambda: sys.simulate(x, bad), (n,)),
        ("points", lambda: sys.points(bad), (2,)),
        ("energy", lambda: sys.energy(bad), ()),
        ("clip_control", lambda: sys.clip_control(bad), (m,)),
    ]
    for method, call, trailing in calls:
        try:
            out = call()
        except (ValueError, TypeError):
            continue
        # Accepted input: float64 output of the documented trailing shape.
        assert out.dtype == np.float64, method
        assert out.shape[out.ndim - len(trailing) :] == trailing, (method, out.shape)


@given(bad=MALFORMED)
def test_malformed_input_raises_only_value_or_type_errors(known_system, bad):
    _call_all(known_system.system, bad)


# ------------------------------------------------------------------ kinematics
def test_points_match_forward_kinematics():
    rng = np.random.default_rng(30)
    X = rng.uniform(-3, 3, size=(20, 4))
    cp = CartPole()
    l = cp.params.pole_length
    tip = np.column_stack([X[:, 0] + l * np.sin(X[:, 1]), -l * np.cos(X[:, 1])])
    np.testing.assert_allclose(cp.points(X)[:, 1], tip, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cp.points(X)[:, 0], np.column_stack([X[:, 0], 0 * X[:, 0]]))
    pend = Pendulum()
    np.testing.assert_allclose(
        pend.points(X[:, :2])[:, 1],
        np.column_stack([np.sin(X[:, 0]), -np.cos(X[:, 0])]),
        rtol=1e-13,
    )
    car = MountainCar()
    np.testing.assert_allclose(
        car.points(X[:, :2])[:, 0],
        np.column_stack([X[:, 0], 0.45 * np.sin(3 * X[:, 0]) + 0.55]),
        rtol=1e-13,
    )
    arm = PlanarArm()
    q1, q2 = X[:, 0], X[:, 1]
    hand = np.column_stack(
        [0.30 * np.cos(q1) + 0.33 * np.cos(q1 + q2), 0.30 * np.sin(q1) + 0.33 * np.sin(q1 + q2)]
    )
    np.testing.assert_allclose(arm.end_effector(X), hand, rtol=1e-13, atol=1e-15)
    # Three links hanging from a base angle of -pi/2: joints by cumulative sums.
    arm3 = PlanarArm(three_link_params())
    Y = rng.uniform(-3, 3, size=(20, 6))
    phi = -np.pi / 2 + np.cumsum(Y[:, :3], axis=1)
    seg = np.array(arm3.params.lengths) * np.stack([np.cos(phi), np.sin(phi)], axis=-1).transpose(
        2, 0, 1
    )
    joints = np.concatenate([np.zeros((2, 20, 1)), np.cumsum(seg, axis=-1)], axis=-1)
    np.testing.assert_allclose(arm3.points(Y), joints.transpose(1, 2, 0), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "params", [ChainParams.li_todorov(), ChainParams.pilco_double_pendulum()], ids=["arm", "rods"]
)
@pytest.mark.parametrize("elbow_up", [True, False])
def test_inverse_kinematics_round_trips_through_end_effector(params, elbow_up):
    arm = PlanarArm(params)
    l1, l2 = params.lengths
    rng = np.random.default_rng(31)
    r = rng.uniform(abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3, 50)
    angle = rng.uniform(-np.pi, np.pi, 50)
    for target in np.column_stack([r * np.cos(angle), r * np.sin(angle)]):
        q = arm.inverse_kinematics(target, elbow_up=elbow_up)
        assert q.shape == (2,) and (q[1] > 0) == elbow_up
        hand = arm.end_effector(np.concatenate([q, [0.0, 0.0]]))
        np.testing.assert_allclose(hand, target, rtol=0, atol=1e-12)


def test_inverse_kinematics_of_benchmark_c_target():
    arm = PlanarArm()
    q = arm.inverse_kinematics([-0.20, 0.45])
    np.testing.assert_allclose(arm.end_effector([*q, 0, 0]), [-0.20, 0.45], atol=1e-12)


@pytest.mark.parametrize(
    "target",
    [[0.64, 0.0], [0.0, -0.7], [0.02, 0.0], [0.0, 0.0]],
    ids=["far", "far2", "near", "base"],
)
def test_inverse_kinematics_rejects_out_of_reach_targets(target):
    # Reach of the Li-Todorov arm: |0.30 - 0.33| = 0.03 <= r <= 0.63.
    with pytest.raises(ValueError, match="out of reach"):
        PlanarArm().inverse_kinematics(target)


def test_inverse_kinematics_rejects_bad_targets_and_arms():
    with pytest.raises(ValueError, match="target"):
        PlanarArm().inverse_kinematics([0.3])
    with pytest.raises(ValueError, match="target"):
        PlanarArm().inverse_kinematics([0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="target contains NaN"):
        PlanarArm().inverse_kinematics([np.nan, 0.2])
    with pytest.raises(ValueError, match="two links"):
        PlanarArm(three_link_params()).inverse_kinematics([0.3, 0.2])


# -------------------------------------------------------------------- describe
@pytest.mark.parametrize(
    "sys",
    [
        CartPole(),  # track_limit = inf
        PlanarArm(ChainParams(joint_limits=((-np.inf, np.inf), (0.0, 2.8)))),  # nested inf
    ],
    ids=["cartpole_inf_track", "arm_inf_limits"],
)
def test_describe_is_strict_json_even_with_infinite_parameters(sys):
    d = sys.describe()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d


def test_describe_is_strict_json_and_consistent(known_system):
    sys = known_system.system
    d = sys.describe()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["state"] == list(sys.state_names) and len(d["control"]) == sys.m
    assert d["dt"] == sys.dt and d["integrator"] == sys.integrator
    assert d["u_low"] == sys.u_low.tolist() and d["u_high"] == sys.u_high.tolist()
    assert set(d["params"]) == {f.name for f in sys.params.__dataclass_fields__.values()}
