r"""The dynamics protocol every solver is written against.

A solver only needs a discrete-time map and its local linear model,

.. math::

    x_{t+1} = F(x_t, u_t), \qquad
    \delta x_{t+1} \approx A_t\,\delta x_t + B_t\,\delta u_t,\quad
    A_t = \partial_x F(x_t, u_t),\ B_t = \partial_u F(x_t, u_t),

optionally with the second derivatives :math:`\partial^2 F` for DDP. The
affine form used by the LQR backward pass around a point that need not lie on
a trajectory of :math:`F` is

.. math::

    x_{t+1} \approx A_t x_t + B_t u_t + c_t, \qquad
    c_t = F(\bar x_t, \bar u_t) - A_t \bar x_t - B_t \bar u_t .

Every :class:`gpcontrol.systems.System` satisfies :class:`Dynamics` as it is.
:class:`LinearDynamics` and :class:`TimeVaryingLinearDynamics` wrap plain arrays
(a known linear plant, or a fitted local model) so the same solvers run on
them.

A time-varying model also offers ``step_at(t, x, u)``; :func:`simulate` uses it
when present, so open-loop simulation works the same on both kinds.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array

__all__ = [
    "Dynamics",
    "LinearDynamics",
    "TimeVaryingLinearDynamics",
    "linearize_affine",
    "simulate",
]

Array = NDArray[np.float64]


@runtime_checkable
class Dynamics(Protocol):
    r"""A discrete-time controlled map :math:`x_{t+1} = F(x_t, u_t)` with Jacobians.

    .. math::

        x_{t+1} = F(x_t, u_t),\qquad
        A_t = \frac{\partial F}{\partial x}(x_t, u_t),\quad
        B_t = \frac{\partial F}{\partial u}(x_t, u_t)

    Attributes
    ----------
    n, m : int
        State and control dimensions.

    Methods
    -------
    step(x, u)
        ``(..., n), (..., m) -> (..., n)``, batched over leading dimensions.
    linearize(X, U)
        ``(T, n), (T, m) -> (A (T, n, n), B (T, n, m))`` in one batched call.
    second_derivatives(X, U)
        Optional (DDP): an object with ``fxx (T, n, n, n)``, ``fux (T, n, m, n)``,
        ``fuu (T, n, m, m)``, component of :math:`F` first (see
        :class:`gpcontrol.systems.SecondDerivatives`).
    """

    n: int
    m: int

    def step(self, x: ArrayLike, u: ArrayLike) -> Array: ...

    def linearize(self, X: ArrayLike, U: ArrayLike) -> tuple[Array, Array]: ...


def _matrix_or_sequence(name: str, value: ArrayLike, shape: tuple[int, ...]) -> Array:
    arr = as_float_array(name, value)
    if arr.shape != shape and (arr.ndim != len(shape) + 1 or arr.shape[1:] != shape):
        raise ValueError(f"{name} must have shape {shape} or (T, *{shape}), got {arr.shape}")
    return arr


class LinearDynamics:
    r"""Time-invariant affine dynamics.

    .. math::

        x_{t+1} = A x_t + B u_t + c

    Parameters
    ----------
    A : array_like, shape (n, n)
    B : array_like, shape (n, m)
    c : array_like, shape (n,), optional
        Constant drift (zero by default).

    Examples
    --------
    >>> dyn = LinearDynamics([[1.0, 0.1], [0.0, 1.0]], [[0.0], [0.1]])
    >>> dyn.step([0.0, 1.0], [1.0]).tolist()
    [0.1, 1.1]
    """

    def __init__(self, A: ArrayLike, B: ArrayLike, c: ArrayLike | None = None) -> None:
        A_ = as_float_array("A", A)
        if A_.ndim != 2 or A_.shape[0] != A_.shape[1]:
            raise ValueError(f"A must have shape (n, n), got {A_.shape}")
        n = A_.shape[0]
        B_ = as_float_array("B", B)
        if B_.ndim != 2 or B_.shape[0] != n:
            raise ValueError(f"B must have shape ({n}, m), got {B_.shape}")
        c_ = np.zeros(n) if c is None else as_float_array("c", c)
        if c_.shape != (n,):
            raise ValueError(f"c must have shape ({n},), got {c_.shape}")
        self.A, self.B, self.c = A_, B_, c_
        self.n, self.m = n, B_.shape[1]

    def step(self, x: ArrayLike, u: ArrayLike) -> Array:
        """:math:`A x + B u + c`, batched: ``(..., n), (..., m) -> (..., n)``."""
        xa = as_batch("x", x, self.n)
        ua = as_batch("u", u, self.m)
        return xa @ self.A.T + ua @ self.B.T + self.c

    def linearize(self, X: ArrayLike, U: ArrayLike) -> tuple[Array, Array]:
        """Constant Jacobians broadcast to the batch: ``A (..., n, n)``, ``B (..., n, m)``."""
        Xa = as_batch("X", X, self.n)
        Ua = as_batch("U", U, self.m)
        batch = np.broadcast_shapes(Xa.shape[:-1], Ua.shape[:-1])
        return (
            np.broadcast_to(self.A, (*batch, self.n, self.n)).copy(),
            np.broadcast_to(self.B, (*batch, self.n, self.m)).copy(),
        )

    def __repr__(self) -> str:
        return f"LinearDynamics(n={self.n}, m={self.m})"


class TimeVaryingLinearDynamics:
    r"""Time-varying affine dynamics over a horizon ``T``.

    .. math::

        x_{t+1} = A_t x_t + B_t u_t + c_t, \qquad t = 0, \dots, T - 1

    Used for fitted local models (guided policy search) and for LQR problems
    given as arrays. :meth:`step` applies step ``t`` to the ``t``-th row of a
    ``(T, n)`` batch; :meth:`step_at` advances one state at a chosen time.

    Parameters
    ----------
    A : array_like, shape (T, n, n)
    B : array_like, shape (T, n, m)
    c : array_like, shape (T, n), optional
    """

    def __init__(self, A: ArrayLike, B: ArrayLike, c: ArrayLike | None = None) -> None:
        A_ = as_float_array("A", A)
        if A_.ndim != 3 or A_.shape[1] != A_.shape[2]:
            raise ValueError(f"A must have shape (T, n, n), got {A_.shape}")
        T, n = A_.shape[0], A_.shape[1]
        B_ = as_float_array("B", B)
        if B_.ndim != 3 or B_.shape[:2] != (T, n):
            raise ValueError(f"B must have shape ({T}, {n}, m), got {B_.shape}")
        c_ = np.zeros((T, n)) if c is None else as_float_array("c", c)
        if c_.shape != (T, n):
            raise ValueError(f"c must have shape ({T}, {n}), got {c_.shape}")
        self.A, self.B, self.c = A_, B_, c_
        self.T, self.n, self.m = T, n, B_.shape[2]

    def _time_batch(self, name: str, value: ArrayLike, size: int) -> Array:
        arr = as_batch(name, value, size)
        if arr.ndim < 2 or arr.shape[0] != self.T:
            raise ValueError(
                f"{name} must have shape ({self.T}, ..., {size}) (one row per time step), "
                f"got {arr.shape}"
            )
        return arr

    def step(self, x: ArrayLike, u: ArrayLike) -> Array:
        """Row ``t`` of ``x (T, ..., n)`` advanced by step ``t``: ``(T, ..., n)``."""
        xa = self._time_batch("x", x, self.n)
        ua = self._time_batch("u", u, self.m)
        extra = (None,) * (max(xa.ndim, ua.ndim) - 2)
        idx = (slice(None), *extra)
        return (
            np.einsum("t...ij,t...j->t...i", self.A[idx], xa)
            + np.einsum("t...ij,t...j->t...i", self.B[idx], ua)
            + self.c[idx]
        )

    def step_at(self, t: int, x: ArrayLike, u: ArrayLike) -> Array:
        """Advance ``x (..., n)`` by step ``t`` with control ``u (..., m)``."""
        if not 0 <= int(t) < self.T:
            raise ValueError(f"t must lie in [0, {self.T}), got {t}")
        xa = as_batch("x", x, self.n)
        ua = as_batch("u", u, self.m)
        return xa @ self.A[t].T + ua @ self.B[t].T + self.c[t]

    def linearize(self, X: ArrayLike, U: ArrayLike) -> tuple[Array, Array]:
        """The stored ``A (T, n, n)``, ``B (T, n, m)`` (``X``, ``U`` only fix the horizon)."""
        Xa = self._time_batch("X", X, self.n)
        self._time_batch("U", U, self.m)
        if Xa.ndim != 2:
            raise ValueError(f"X must have shape ({self.T}, {self.n}), got {Xa.shape}")
        return self.A.copy(), self.B.copy()

    def __repr__(self) -> str:
        return f"TimeVaryingLinearDynamics(T={self.T}, n={self.n}, m={self.m})"


def linearize_affine(dynamics: Any, X: ArrayLike, U: ArrayLike) -> tuple[Array, Array, Array]:
    r"""Affine model of ``dynamics`` at the points ``(X[t], U[t])``.

    .. math::

        F(x, u) \approx A_t x + B_t u + c_t,\qquad
        c_t = F(\bar x_t, \bar u_t) - A_t \bar x_t - B_t \bar u_t .

    Parameters
    ----------
    dynamics : Dynamics
    X : array_like, shape (T, n)
        Expansion states (e.g. ``X[:-1]`` of a trajectory).
    U : array_like, shape (T, m)

    Returns
    -------
    A : ndarray, shape (T, n, n)
    B : ndarray, shape (T, n, m)
    c : ndarray, shape (T, n)
    """
    n, m = dynamics.n, dynamics.m
    Xa = as_batch("X", X, n)
    Ua = as_batch("U", U, m)
    if Xa.ndim != 2 or Ua.ndim != 2 or Xa.shape[0] != Ua.shape[0]:
        raise ValueError(
            f"X and U must have shapes (T, {n}) and (T, {m}), got {Xa.shape} and {Ua.shape}"
        )
    A, B = dynamics.linearize(Xa, Ua)
    # A time-varying model advances row t by step t, a time-invariant one
    # advances every row by the same map: one batched call either way.
    Fx = dynamics.step(Xa, Ua)
    c = Fx - np.einsum("tij,tj->ti", A, Xa) - np.einsum("tij,tj->ti", B, Ua)
    return np.asarray(A), np.asarray(B), c


def simulate(dynamics: Any, x0: ArrayLike, U: ArrayLike) -> Array:
    r"""Open-loop simulation from ``x0``.

    .. math::

        x_0 = \hat x_0, \qquad x_{t+1} = F_t(x_t, u_t)

    Uses ``dynamics.step_at(t, x, u)`` when the model is time-varying, else
    ``dynamics.step(x, u)``.

    Parameters
    ----------
    dynamics : Dynamics
    x0 : array_like, shape (n,)
    U : array_like, shape (T, m)

    Returns
    -------
    ndarray, shape (T + 1, n)
    """
    n, m = dynamics.n, dynamics.m
    x = as_batch("x0", x0, n)
    Ua = as_batch("U", U, m)
    if x.ndim != 1 or Ua.ndim != 2:
        raise ValueError(
            f"x0 must have shape ({n},) and U shape (T, {m}); got {x.shape}, {Ua.shape}"
        )
    X = np.empty((Ua.shape[0] + 1, n))
    X[0] = x
    step_at = getattr(dynamics, "step_at", None)
    for t in range(Ua.shape[0]):
        X[t + 1] = step_at(t, X[t], Ua[t]) if step_at is not None else dynamics.step(X[t], Ua[t])
    return X


def check_dynamics(dynamics: Any, needs: tuple[str, ...]) -> None:
    """Raise ``TypeError`` unless ``dynamics`` has every attribute in ``needs``."""
    for attr in needs:
        if not hasattr(dynamics, attr):
            raise TypeError(f"dynamics must implement the Dynamics protocol (missing {attr!r})")


def check_start(dynamics: Any, cost: Any, x0: ArrayLike) -> tuple[int, int, Array]:
    """Check that ``cost`` fits ``dynamics`` and ``x0`` is one state; return ``n, m, x0 (n,)``."""
    n, m = int(dynamics.n), int(dynamics.m)
    if (getattr(cost, "n", n), getattr(cost, "m", m)) != (n, m):
        raise ValueError(f"cost is for (n, m) = ({cost.n}, {cost.m}) but dynamics has ({n}, {m})")
    x = as_batch("x0", x0, n)
    if x.ndim != 1:
        raise ValueError(f"x0 must have shape ({n},), got {x.shape}")
    return n, m, x
