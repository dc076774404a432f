r"""Known-physics systems: one CasADi ODE, many numeric views of it.

A :class:`System` is defined by a single continuous-time ODE written once with
CasADi symbols,

.. math::

    \dot x = f(x, u; \theta), \qquad x \in \mathbb R^n,\ u \in \mathbb R^m,

with physical parameters :math:`\theta` in a frozen dataclass. Every other view
is generated from that one expression, so they can never disagree:

* the discrete map :math:`x_{t+1} = F(x_t, u_t)` for a chosen ``dt`` and
  integrator (:mod:`gpcontrol.systems.integrators`), as a CasADi function for
  trajectory optimisation (:meth:`System.discrete`);
* a NumPy :meth:`System.step` batched over any leading shape ``(..., n)``;
* exact Jacobians :math:`A_t = \partial F/\partial x`,
  :math:`B_t = \partial F/\partial u` over a whole trajectory
  (:meth:`System.linearize`), and second derivatives for DDP
  (:meth:`System.second_derivatives`).

Batched evaluation uses one call of a CasADi ``map`` of the expanded ``SX``
function instead of a Python loop (one CasADi call from Python costs tens of
microseconds, which would dominate a 100-step linearisation).

Conventions: states are ordered ``[q, dq]`` (generalised positions, then their
velocities); angles are in radians and stay unwrapped; arrays are float64 and
time-major.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections import OrderedDict
from typing import Any, ClassVar

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, check_bounds, check_positive
from gpcontrol.systems.integrators import INTEGRATORS, euler, rk4, semi_implicit_euler

__all__ = ["System", "Linearization", "SecondDerivatives"]

Array = NDArray[np.float64]


class Linearization(tuple):  # noqa: SLOT001 - light named pair without NamedTuple generics
    """``(A, B)``: Jacobians ``A (..., n, n)`` and ``B (..., n, m)`` of the discrete map."""

    __slots__ = ()

    def __new__(cls, A: Array, B: Array) -> Linearization:
        return super().__new__(cls, (A, B))

    @property
    def A(self) -> Array:  # noqa: N802 - math name
        return self[0]

    @property
    def B(self) -> Array:  # noqa: N802 - math name
        return self[1]


@dataclasses.dataclass(frozen=True)
class SecondDerivatives:
    """Second derivatives of the discrete map :math:`F` (component ``i`` first).

    Attributes
    ----------
    fxx : ndarray, shape (..., n, n, n)
        ``fxx[..., i, j, k] = d^2 F_i / dx_j dx_k``.
    fux : ndarray, shape (..., n, m, n)
        ``fux[..., i, a, k] = d^2 F_i / du_a dx_k``.
    fuu : ndarray, shape (..., n, m, m)
        ``fuu[..., i, a, b] = d^2 F_i / du_a du_b``.
    """

    fxx: Array
    fux: Array
    fuu: Array


# SX functions (already "expanded"); common-subexpression elimination shortens the
# generated instruction lists by ~10-25 % (the Jacobians of the chains most).
_CSE = {"cse": True}


def _rowmajor(M: ca.SX) -> ca.SX:
    """Flatten a CasADi matrix row by row into a column (NumPy's C order)."""
    return ca.reshape(M.T, M.numel(), 1)


class _Batched:
    """A CasADi function of ``(x, u)`` evaluated on NumPy batches ``(N, n), (N, m)``.

    Outputs are declared as row-major flattened columns with their NumPy
    shapes, so one mapped call returns ``(size, N)`` blocks that reshape to
    ``(N, *shape)`` without copying per element.
    """

    _MAX_CACHE = 16

    def __init__(self, fn: ca.Function, shapes: list[tuple[int, ...]]):
        self.fn = fn
        self.shapes = shapes
        self._maps: OrderedDict[int, ca.Function] = OrderedDict()

    def _mapped(self, N: int) -> ca.Function:
        fn = self._maps.get(N)
        if fn is None:
            fn = self.fn.map(N, "serial")
            self._maps[N] = fn
            if len(self._maps) > self._MAX_CACHE:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(N)
        return fn

    def __call__(self, x: Array, u: Array) -> list[Array]:
        N = x.shape[0]
        if N == 0:
            return [np.zeros((0, *s)) for s in self.shapes]
        fn = self.fn if N == 1 else self._mapped(N)
        out = fn.call([x.T, u.T])
        return [np.asarray(o).T.reshape((N, *s)) for o, s in zip(out, self.shapes, strict=True)]


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, non-finite floats become strings (``"inf"``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class System(abc.ABC):
    r"""Base class of known-physics systems :math:`\dot x = f(x, u; \theta)`.

    Subclasses set the class attributes and implement :meth:`_ode` with CasADi
    symbols; everything numeric is generated from it.

    Parameters
    ----------
    params : dataclass
        Physical parameters (frozen dataclass of the subclass's type).
    dt : float
        Step of the discrete map, seconds (> 0).
    integrator : {"rk4", "euler", "semi_implicit_euler"}
        Discretisation scheme (see :mod:`gpcontrol.systems.integrators`).
    substeps : int
        Integrator sub-steps per ``dt`` (>= 1).

    Attributes
    ----------
    n, m : int
        State and control dimensions.
    state_names, control_names : tuple of str
    angle_indices : tuple of int
        Indices of states that are angles (they enter GPs and policies through
        ``(sin, cos)``).
    u_low, u_high : ndarray, shape (m,)
        Control bounds (the environments clip to them).
    x_low, x_high : ndarray, shape (n,)
        State bounds used by trajectory optimisation (``inf`` where none).
    """

    name: ClassVar[str] = "system"
    # Layout; a class may set these per instance when it depends on the parameters.
    state_names: tuple[str, ...] = ()
    control_names: tuple[str, ...] = ()
    angle_indices: tuple[int, ...] = ()
    params_type: ClassVar[type] = object

    def __init__(
        self,
        params: Any = None,
        *,
        dt: float,
        integrator: str = "rk4",
        substeps: int = 1,
    ) -> None:
        if params is None:
            params = self.params_type()
        if not isinstance(params, self.params_type):
            raise TypeError(
                f"params must be a {self.params_type.__name__}, got {type(params).__name__}"
            )
        self.params: Any = params  # an instance of params_type
        self.dt = check_positive("dt", dt)
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
        if isinstance(substeps, bool) or not isinstance(substeps, int | np.integer) or substeps < 1:
            raise ValueError(f"substeps must be an integer >= 1, got {substeps!r}")
        self.integrator = integrator
        self.substeps = int(substeps)
        self.n = len(self.state_names)
        self.m = len(self.control_names)
        if self.n % 2 and integrator == "semi_implicit_euler":
            raise ValueError("semi_implicit_euler needs a state ordered [q, dq] of even size")
        lo, hi = self._control_bounds()
        self.u_low, self.u_high = check_bounds("u_low", lo, "u_high", hi, self.m)
        xlo, xhi = self._state_bounds()
        self.x_low, self.x_high = check_bounds("x_low", xlo, "x_high", xhi, self.n)
        self._build()

    # ------------------------------------------------------------------ physics
    @abc.abstractmethod
    def _ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        """Continuous-time dynamics ``xdot = f(x, u)`` as a CasADi expression (n,)."""

    @abc.abstractmethod
    def _control_bounds(self) -> tuple[ArrayLike, ArrayLike]:
        """Return ``(u_low, u_high)`` from the parameters."""

    def _state_bounds(self) -> tuple[ArrayLike, ArrayLike]:
        """Return ``(x_low, x_high)``; unbounded by default."""
        return np.full(self.n, -np.inf), np.full(self.n, np.inf)

    def _clip_velocity(self, dq: ca.SX) -> ca.SX:
        """Speed limit applied after each velocity update (Gymnasium twins); identity here."""
        return dq

    def _project(self, x_next: ca.SX) -> ca.SX:
        """Optional projection of the next state (e.g. an inelastic wall); identity here."""
        return x_next

    def _points(self, x: ca.SX) -> ca.SX:
        """Planar positions of the mechanism's points, a ``(k, 2)`` expression (for drawing)."""
        return ca.SX.zeros(0, 2)

    def _energy(self, x: ca.SX) -> ca.SX | None:
        """Total mechanical energy, where defined."""
        return None

    # ------------------------------------------------------------- generation
    def _build(self) -> None:
        n, m = self.n, self.m
        x = ca.SX.sym("x", n)
        u = ca.SX.sym("u", m)
        xdot = self._ode(x, u)
        self._f_ode = ca.Function("f", [x, u], [xdot], ["x", "u"], ["xdot"])
        f = self._f_ode
        if self.integrator == "rk4":
            x_next = rk4(f, x, u, self.dt, self.substeps)
        elif self.integrator == "euler":
            x_next = euler(f, x, u, self.dt, self.substeps)
        else:
            x_next = semi_implicit_euler(
                f, x, u, self.dt, self.substeps, n_q=n // 2, clip_velocity=self._clip_velocity
            )
        if self.integrator != "semi_implicit_euler":
            x_next = ca.vertcat(x_next[: n // 2], self._clip_velocity(x_next[n // 2 :]))
        x_next = self._project(x_next)
        self._F = ca.Function("F", [x, u], [x_next], ["x", "u"], ["x_next"], _CSE)

        A = ca.jacobian(x_next, x)
        B = ca.jacobian(x_next, u)
        self._step = _Batched(self._F, [(n,)])
        self._ode_batched = _Batched(ca.Function("f", [x, u], [xdot], _CSE), [(n,)])
        self._jac = _Batched(
            ca.Function("AB", [x, u], [_rowmajor(A), _rowmajor(B)], _CSE),
            [(n, n), (n, m)],
        )
        self._sym = (x, u, x_next)
        self._hess: _Batched | None = None
        points = self._points(x)
        k = points.size1()
        self._n_points = k
        self._points_fn = _Batched(
            ca.Function("points", [x, u], [_rowmajor(points)]).expand(), [(k, 2)]
        )
        energy = self._energy(x)
        self._energy_fn = (
            None
            if energy is None
            else _Batched(ca.Function("energy", [x, u], [energy]).expand(), [()])
        )

    def _build_hessians(self) -> _Batched:
        x, u, x_next = self._sym
        n, m = self.n, self.m
        rows_xx, rows_ux, rows_uu = [], [], []
        for i in range(n):
            gx = ca.gradient(x_next[i], x)
            gu = ca.gradient(x_next[i], u)
            rows_xx.append(_rowmajor(ca.jacobian(gx, x)))
            rows_ux.append(_rowmajor(ca.jacobian(gu, x)))
            rows_uu.append(_rowmajor(ca.jacobian(gu, u)))
        fn = ca.Function(
            "second_derivatives",
            [x, u],
            [ca.vertcat(*rows_xx), ca.vertcat(*rows_ux), ca.vertcat(*rows_uu)],
            _CSE,
        )
        return _Batched(fn, [(n, n, n), (n, m, n), (n, m, m)])

    # ------------------------------------------------------------- public API
    def ode(self, x: Any, u: Any) -> Any:
        """Continuous-time right-hand side :math:`f(x, u)` on CasADi symbols or DM.

        Parameters
        ----------
        x : casadi SX/MX/DM or array, shape (n,)
        u : casadi SX/MX/DM or array, shape (m,)
        """
        return self._f_ode(x, u)

    def discrete(self, x: Any, u: Any) -> Any:
        """Discrete map :math:`F(x, u)` on CasADi symbols (for trajectory optimisation)."""
        return self._F(x, u)

    @property
    def casadi_function(self) -> ca.Function:
        """The expanded CasADi ``Function('F', [x, u], [x_next])``."""
        return self._F

    def _pair(
        self, x: ArrayLike, u: ArrayLike, names: tuple[str, str] = ("x", "u")
    ) -> tuple[Array, Array, tuple[int, ...]]:
        nx, nu = names
        xa = as_batch(nx, x, self.n, what=f"{self.name} state {list(self.state_names)}")
        ua = as_batch(nu, u, self.m, what=f"{self.name} control {list(self.control_names)}")
        try:
            batch = np.broadcast_shapes(xa.shape[:-1], ua.shape[:-1])
        except ValueError:
            raise ValueError(
                f"batch shapes of {nx} {xa.shape[:-1]} and {nu} {ua.shape[:-1]} do not broadcast "
                "(linearize a trajectory with X[:-1] of shape (T, n) and U of shape (T, m))"
            ) from None
        xb = np.broadcast_to(xa, (*batch, self.n)).reshape(-1, self.n)
        ub = np.broadcast_to(ua, (*batch, self.m)).reshape(-1, self.m)
        return xb, ub, batch

    def step(self, x: ArrayLike, u: ArrayLike) -> Array:
        """Advance the discrete map one step: :math:`x_{t+1} = F(x_t, u_t)`.

        Controls are *not* clipped here (solvers see the smooth map); the
        environments clip to ``[u_low, u_high]``.

        Parameters
        ----------
        x : array_like, shape (..., n)
        u : array_like, shape (..., m)
            Leading shapes broadcast against each other.

        Returns
        -------
        ndarray, shape (..., n)
        """
        xb, ub, batch = self._pair(x, u)
        return self._step(xb, ub)[0].reshape((*batch, self.n))

    def derivative(self, x: ArrayLike, u: ArrayLike) -> Array:
        """Continuous-time :math:`\\dot x = f(x, u)`, batched like :meth:`step`."""
        xb, ub, batch = self._pair(x, u)
        return self._ode_batched(xb, ub)[0].reshape((*batch, self.n))

    def linearize(self, X: ArrayLike, U: ArrayLike) -> Linearization:
        """Exact Jacobians of the discrete map at every point of a trajectory.

        .. math::

            A_t = \\frac{\\partial F}{\\partial x}(x_t, u_t),\\qquad
            B_t = \\frac{\\partial F}{\\partial u}(x_t, u_t)

        Parameters
        ----------
        X : array_like, shape (..., n)
            States, e.g. ``X[:-1]`` of a trajectory, shape ``(T, n)``.
        U : array_like, shape (..., m)

        Returns
        -------
        Linearization
            ``(A, B)`` with ``A (..., n, n)`` and ``B (..., n, m)``.
        """
        xb, ub, batch = self._pair(X, U, ("X", "U"))
        A, B = self._jac(xb, ub)
        return Linearization(
            A.reshape((*batch, self.n, self.n)), B.reshape((*batch, self.n, self.m))
        )

    def second_derivatives(self, X: ArrayLike, U: ArrayLike) -> SecondDerivatives:
        """Second derivatives of the discrete map (for DDP), batched like :meth:`linearize`.

        Returns
        -------
        SecondDerivatives
            ``fxx (..., n, n, n)``, ``fux (..., n, m, n)``, ``fuu (..., n, m, m)``.
        """
        if self._hess is None:
            self._hess = self._build_hessians()
        xb, ub, batch = self._pair(X, U, ("X", "U"))
        fxx, fux, fuu = self._hess(xb, ub)
        n, m = self.n, self.m
        return SecondDerivatives(
            fxx.reshape((*batch, n, n, n)),
            fux.reshape((*batch, n, m, n)),
            fuu.reshape((*batch, n, m, m)),
        )

    def simulate(self, x0: ArrayLike, U: ArrayLike) -> Array:
        """Open-loop rollout :math:`x_{t+1} = F(x_t, u_t)` from ``x0``.

        Parameters
        ----------
        x0 : array_like, shape (..., n)
        U : array_like, shape (T, ..., m)
            Controls, time first; the remaining shape broadcasts with ``x0``'s batch.

        Returns
        -------
        ndarray, shape (T + 1, ..., n)
        """
        x = as_batch("x0", x0, self.n)
        Ua = as_batch("U", U, self.m)
        if Ua.ndim < 2:
            raise ValueError(f"U must have shape (T, ..., {self.m}), got {Ua.shape}")
        try:
            np.broadcast_shapes(x.shape[:-1], Ua.shape[1:-1])
        except ValueError:
            raise ValueError(
                f"batch shapes of x0 {x.shape[:-1]} and U[t] {Ua.shape[1:-1]} do not broadcast"
            ) from None
        X = [x]
        for t in range(Ua.shape[0]):
            x = self.step(x, Ua[t])
            X.append(x)
        return np.stack(np.broadcast_arrays(*X))

    def points(self, x: ArrayLike) -> Array:
        """Planar positions of the mechanism's drawable points.

        Returns
        -------
        ndarray, shape (..., k, 2)
            E.g. cart-pole: ``[cart, pole tip]``; arm: ``[base, elbow, ..., hand]``.
        """
        xa = as_batch("x", x, self.n)
        batch = xa.shape[:-1]
        xb = xa.reshape(-1, self.n)
        pts = self._points_fn(xb, np.zeros((xb.shape[0], self.m)))[0]
        return pts.reshape((*batch, self._n_points, 2))

    def energy(self, x: ArrayLike) -> Array:
        """Total mechanical energy, shape ``(...)``; raises if the system defines none."""
        if self._energy_fn is None:
            raise NotImplementedError(f"{self.name} defines no energy")
        xa = as_batch("x", x, self.n)
        xb = xa.reshape(-1, self.n)
        return self._energy_fn(xb, np.zeros((xb.shape[0], self.m)))[0].reshape(xa.shape[:-1])

    def clip_control(self, u: ArrayLike) -> Array:
        """Clip controls to ``[u_low, u_high]``; shape ``(..., m)``."""
        return np.clip(as_batch("u", u, self.m), self.u_low, self.u_high)

    def describe(self) -> dict[str, Any]:
        """A plain-data summary: name, layout, bounds, integrator and parameters."""
        return {
            "name": self.name,
            "class": type(self).__name__,
            "state": list(self.state_names),
            "control": list(self.control_names),
            "angles": [self.state_names[i] for i in self.angle_indices],
            "u_low": self.u_low.tolist(),
            "u_high": self.u_high.tolist(),
            "dt": self.dt,
            "integrator": self.integrator,
            "substeps": self.substeps,
            "params": _plain(dataclasses.asdict(self.params)),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(params={self.params!r}, dt={self.dt}, "
            f"integrator={self.integrator!r}, substeps={self.substeps})"
        )
