r"""Planar serial chains of rigid links: the reaching arm and the double pendulum.

State ``x = [q_1..q_N, dq_1..dq_N]`` with *relative* joint angles: link
:math:`i` points at the absolute angle
:math:`\varphi_i = \varphi_0 + \sum_{j \le i} q_j` (``base_angle``
:math:`\varphi_0` is 0 for an arm in the horizontal plane, :math:`-\pi/2` for
a chain hanging down). Controls are torques on the actuated joints.

Link :math:`i` has mass :math:`m_i`, length :math:`l_i`, centre of mass at
:math:`s_i` from its proximal joint and inertia :math:`J_i` *about that joint*
(Li & Todorov's convention). The kinetic and potential energies are

.. math::

    T = \sum_i \tfrac12 m_i \lVert \dot c_i\rVert^2 + \tfrac12 (J_i - m_i s_i^2)\,
        \dot\varphi_i^2, \qquad V = \sum_i m_i g\, c_{i,y},

and Lagrange's equations, generated symbolically with CasADi, read

.. math::

    M(q)\ddot q + h(q, \dot q) + \nabla V(q) + B\dot q = S\tau,
    \quad M = \nabla^2_{\dot q} T,\quad
    h = \tfrac{\partial^2 T}{\partial \dot q\, \partial q}\dot q - \nabla_q T,

with :math:`S` selecting the actuated joints. For two links this is exactly
the arm model of Li & Todorov (ICINCO 2004): :math:`M_{11} = d_1 + 2 d_2\cos
q_2`, :math:`M_{12} = d_3 + d_2 \cos q_2`, :math:`M_{22} = d_3` with
:math:`d_1 = J_1 + J_2 + m_2 l_1^2`, :math:`d_2 = m_2 l_1 s_2`, :math:`d_3 = J_2`.

Members of the family:

* :meth:`ChainParams.li_todorov` -- the two-link arm of benchmark problem (c)
  (horizontal plane, no gravity, joint friction, both joints actuated).
* :meth:`ChainParams.pilco_double_pendulum` -- PILCO's double pendulum: two
  0.5 kg, 0.5 m uniform rods under g = 9.82, hanging down at ``q = 0``,
  upright at ``q = (pi, 0)``, a torque at each joint.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike

from gpcontrol._validation import as_float_array, check_nonnegative
from gpcontrol.systems.base import System

__all__ = ["ChainParams", "PlanarArm", "DoublePendulum"]


def _tuple(name: str, value: Any, size: int | None = None) -> tuple[float, ...]:
    arr = as_float_array(name, value, allow_nonfinite=True).reshape(-1)
    if size is not None and arr.size != size:
        raise ValueError(f"{name} must have {size} entries (one per link), got {arr.size}")
    return tuple(float(v) for v in arr)


@dataclasses.dataclass(frozen=True)
class ChainParams:
    """Parameters of a planar chain of ``N`` links (SI units; one entry per link).

    Attributes
    ----------
    masses, lengths, com_distances : tuple of float
        :math:`m_i`, :math:`l_i`, :math:`s_i` (proximal joint to centre of mass).
    inertias : tuple of float
        :math:`J_i`, inertia of link ``i`` about its *proximal joint*.
    friction : tuple of tuple of float
        Viscous joint friction matrix :math:`B` (N x N), N m s.
    gravity : float
        :math:`g`, acting along ``-y``.
    base_angle : float
        :math:`\\varphi_0`, absolute direction of link 1 at ``q_1 = 0``.
    actuated : tuple of bool
        Which joints carry a motor; controls are their torques, in order.
    max_torque : tuple of float
        Torque bound of each actuated joint.
    joint_limits : tuple of (low, high) or None
        Joint angle ranges (used by trajectory optimisation and the env).
    """

    masses: tuple[float, ...] = (1.4, 1.1)
    lengths: tuple[float, ...] = (0.30, 0.33)
    com_distances: tuple[float, ...] = (0.11, 0.16)
    inertias: tuple[float, ...] = (0.025, 0.045)
    friction: tuple[tuple[float, ...], ...] = ((0.05, 0.025), (0.025, 0.05))
    gravity: float = 0.0
    base_angle: float = 0.0
    actuated: tuple[bool, ...] = (True, True)
    max_torque: tuple[float, ...] = (5.0, 5.0)
    joint_limits: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        N = len(_tuple("masses", self.masses))
        if N < 1:
            raise ValueError("masses must name at least one link")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        set_("masses", _tuple("masses", self.masses, N))
        set_("lengths", _tuple("lengths", self.lengths, N))
        set_("com_distances", _tuple("com_distances", self.com_distances, N))
        set_("inertias", _tuple("inertias", self.inertias, N))
        for name in ("masses", "lengths"):
            if not all(0 < v < math.inf for v in getattr(self, name)):
                raise ValueError(f"{name} must be positive and finite, got {getattr(self, name)}")
        if not all(math.isfinite(v) for v in self.inertias):
            raise ValueError(f"inertias must be finite, got {self.inertias}")
        for i in range(N):
            if not 0 <= self.com_distances[i] <= self.lengths[i]:
                raise ValueError(
                    f"com_distances[{i}] must lie in [0, lengths[{i}]], got {self.com_distances[i]}"
                )
            if self.inertias[i] < self.masses[i] * self.com_distances[i] ** 2 - 1e-12:
                raise ValueError(
                    f"inertias[{i}] (about the joint) must be at least masses[{i}] * "
                    f"com_distances[{i}]**2 = {self.masses[i] * self.com_distances[i] ** 2:.4g}"
                )
        B = as_float_array("friction", self.friction)
        if B.shape != (N, N):
            raise ValueError(f"friction must have shape ({N}, {N}), got {B.shape}")
        if np.linalg.eigvalsh(0.5 * (B + B.T)).min() < -1e-12:
            raise ValueError("friction must be positive semi-definite (it may not add energy)")
        set_("friction", tuple(tuple(float(v) for v in row) for row in B))
        check_nonnegative("gravity", self.gravity)
        act = tuple(bool(a) for a in self.actuated)
        if len(act) != N or not any(act):
            raise ValueError(f"actuated must have {N} entries with at least one True, got {act}")
        set_("actuated", act)
        tau = _tuple("max_torque", self.max_torque, sum(act))
        if min(tau) <= 0:
            raise ValueError(f"max_torque must be positive, got {tau}")
        set_("max_torque", tau)
        if self.joint_limits is not None:
            lim = as_float_array("joint_limits", self.joint_limits, allow_nonfinite=True)
            if lim.shape != (N, 2) or (lim[:, 0] > lim[:, 1]).any():
                raise ValueError(
                    f"joint_limits must be {N} pairs (low <= high), got {lim.tolist()}"
                )
            set_("joint_limits", tuple((float(a), float(b)) for a, b in lim))

    @property
    def n_links(self) -> int:
        return len(self.masses)

    @classmethod
    def li_todorov(cls) -> ChainParams:
        """Two-link arm of Li & Todorov (ICINCO 2004), benchmark problem (c).

        m = (1.4, 1.1) kg, l = (0.30, 0.33) m, s = (0.11, 0.16) m,
        J = (0.025, 0.045) kg m^2, B = [[0.05, 0.025], [0.025, 0.05]] N m s,
        horizontal plane (no gravity), |tau| <= 5 N m. The joint limits
        (shoulder [-pi/2, pi], elbow [0, 2.8]) are gpcontrol's choice of a
        human-like range.
        """
        return cls(joint_limits=((-math.pi / 2, math.pi), (0.0, 2.8)))

    @classmethod
    def pilco_double_pendulum(cls) -> ChainParams:
        """PILCO's double pendulum: two 0.5 kg, 0.5 m uniform rods, g = 9.82, no friction.

        Both joints are actuated; the torque bound of 3 N m per joint is
        gpcontrol's choice.
        """
        m, l = 0.5, 0.5
        return cls(
            masses=(m, m),
            lengths=(l, l),
            com_distances=(l / 2, l / 2),
            inertias=(m * l**2 / 3, m * l**2 / 3),
            friction=((0.0, 0.0), (0.0, 0.0)),
            gravity=9.82,
            base_angle=-math.pi / 2,
            actuated=(True, True),
            max_torque=(3.0, 3.0),
        )


class _Chain(System):
    """Shared machinery of planar chains; see the module docstring."""

    params_type = ChainParams

    def __init__(
        self,
        params: ChainParams | None = None,
        *,
        dt: float,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        p = params if params is not None else self._default_params()
        if not isinstance(p, ChainParams):
            raise TypeError(f"params must be a ChainParams, got {type(p).__name__}")
        N = p.n_links
        # Layout depends on the parameters, so it is set per instance.
        self.state_names = tuple(f"q{i + 1}" for i in range(N)) + tuple(
            f"dq{i + 1}" for i in range(N)
        )
        self.control_names = tuple(f"tau{i + 1}" for i in range(N) if p.actuated[i])
        self.angle_indices = tuple(range(N))
        super().__init__(p, dt=dt, integrator=integrator, substeps=substeps)

    @classmethod
    def _default_params(cls) -> ChainParams:
        return ChainParams()

    # kinematics ---------------------------------------------------------------
    def _absolute_angles(self, q: Any) -> list[Any]:
        phis, acc = [], self.params.base_angle
        for i in range(self.params.n_links):
            acc = acc + q[i]
            phis.append(acc)
        return phis

    def _joint_positions(self, q: Any) -> list[tuple[Any, Any]]:
        pts: list[tuple[Any, Any]] = [(0.0, 0.0)]
        for li, phi in zip(self.params.lengths, self._absolute_angles(q), strict=True):
            x0, y0 = pts[-1]
            pts.append((x0 + li * ca.cos(phi), y0 + li * ca.sin(phi)))
        return pts

    def _energies(self, x: ca.SX) -> tuple[ca.SX, ca.SX]:
        p = self.params
        N = p.n_links
        q, dq = x[:N], x[N:]
        joints = self._joint_positions(q)
        phis = self._absolute_angles(q)
        T = ca.SX(0)
        V = ca.SX(0)
        for i in range(N):
            cx = joints[i][0] + p.com_distances[i] * ca.cos(phis[i])
            cy = joints[i][1] + p.com_distances[i] * ca.sin(phis[i])
            c = ca.vertcat(cx, cy)
            cdot = ca.jtimes(c, q, dq)
            dphi = ca.sum1(dq[: i + 1])
            ic = p.inertias[i] - p.masses[i] * p.com_distances[i] ** 2
            T = T + 0.5 * p.masses[i] * ca.dot(cdot, cdot) + 0.5 * ic * dphi**2
            V = V + p.masses[i] * p.gravity * cy
        return T, V

    def mass_matrix(self, q: ArrayLike) -> np.ndarray:
        """Inertia matrix :math:`M(q)`, shape ``(N, N)``, at one configuration."""
        N = self.params.n_links
        qa = as_float_array("q", q).reshape(-1)
        if qa.size != N:
            raise ValueError(f"q must have shape ({N},), got {np.shape(q)}")
        return np.asarray(self._mass_fn(np.concatenate([qa, np.zeros(N)])))

    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        p = self.params
        N = p.n_links
        q, dq = x[:N], x[N:]
        T, V = self._energies(x)
        M = ca.hessian(T, dq)[0]
        h = ca.jtimes(ca.gradient(T, dq), q, dq) - ca.gradient(T, q)
        S = np.zeros((N, len(self.control_names)))
        cols = [i for i in range(N) if p.actuated[i]]
        for k, i in enumerate(cols):
            S[i, k] = 1.0
        B = np.array(p.friction)
        rhs = ca.mtimes(S, u) - ca.mtimes(B, dq) - h - ca.gradient(V, q)
        ddq = ca.solve(M, rhs)
        self._mass_fn = ca.Function("M", [x], [M])
        return ca.vertcat(dq, ddq)

    def _control_bounds(self) -> tuple[Any, Any]:
        tau = np.array(self.params.max_torque)
        return -tau, tau

    def _state_bounds(self) -> tuple[Any, Any]:
        N = self.params.n_links
        lo, hi = np.full(2 * N, -np.inf), np.full(2 * N, np.inf)
        if self.params.joint_limits is not None:
            lim = np.array(self.params.joint_limits)
            lo[:N], hi[:N] = lim[:, 0], lim[:, 1]
        return lo, hi

    def _points(self, x: ca.SX) -> ca.SX:
        pts = self._joint_positions(x[: self.params.n_links])
        return ca.vertcat(*[ca.horzcat(a, b) for a, b in pts])

    def _energy(self, x: ca.SX) -> ca.SX:
        T, V = self._energies(x)
        return T + V

    def end_effector(self, x: ArrayLike) -> np.ndarray:
        """Tip of the last link, shape ``(..., 2)``."""
        return self.points(x)[..., -1, :]


class PlanarArm(_Chain):
    """Torque-driven planar arm (default: Li & Todorov's two-link arm, dt = 0.01 s).

    Parameters
    ----------
    params : ChainParams, optional
        Defaults to :meth:`ChainParams.li_todorov`; any number of links works
        (the symbolic equations grow quickly past three or four links).
    dt : float
    integrator, substeps
        See :class:`~gpcontrol.systems.base.System`.
    """

    name = "arm"

    def __init__(
        self,
        params: ChainParams | None = None,
        *,
        dt: float = 0.01,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        super().__init__(params, dt=dt, integrator=integrator, substeps=substeps)

    @classmethod
    def _default_params(cls) -> ChainParams:
        return ChainParams.li_todorov()

    def inverse_kinematics(self, target: ArrayLike, *, elbow_up: bool = True) -> np.ndarray:
        """Joint angles ``(q1, q2)`` that put a two-link arm's hand at ``target``.

        .. math::

            \\cos q_2 = \\frac{r^2 - l_1^2 - l_2^2}{2 l_1 l_2},\\quad
            q_1 = \\operatorname{atan2}(y, x) - \\operatorname{atan2}(l_2 \\sin q_2,
            l_1 + l_2\\cos q_2) - \\varphi_0,

        with :math:`q_2 > 0` for ``elbow_up``. Raises ``ValueError`` when the
        target is out of reach or the arm does not have two links.
        """
        p = self.params
        if p.n_links != 2:
            raise ValueError("inverse_kinematics is closed-form for two links only")
        xy = as_float_array("target", target).reshape(-1)
        if xy.size != 2:
            raise ValueError(f"target must be a hand position (x, y), got {xy.size} values")
        tx, ty = xy
        l1, l2 = p.lengths
        c2 = (tx**2 + ty**2 - l1**2 - l2**2) / (2 * l1 * l2)
        if not -1.0 <= c2 <= 1.0:
            raise ValueError(f"target {tx, ty} is out of reach (|r| must lie in [|l1-l2|, l1+l2])")
        q2 = math.acos(c2) * (1 if elbow_up else -1)
        q1 = math.atan2(ty, tx) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
        return np.array([q1 - p.base_angle, q2])


class DoublePendulum(_Chain):
    """PILCO's double pendulum (two actuated rods hanging down at ``q = 0``), dt = 0.05 s.

    Upright is ``q = (pi, 0)``. Pass ``ChainParams(..., actuated=(False, True))``
    for an acrobot.
    """

    name = "double_pendulum"

    def __init__(
        self,
        params: ChainParams | None = None,
        *,
        dt: float = 0.05,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        super().__init__(params, dt=dt, integrator=integrator, substeps=substeps)

    @classmethod
    def _default_params(cls) -> ChainParams:
        return ChainParams.pilco_double_pendulum()
