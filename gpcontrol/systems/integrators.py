r"""Fixed-step integrators that turn an ODE into a discrete-time map.

Given continuous dynamics :math:`\dot x = f(x, u)` with the control held
constant over a step of length :math:`\Delta t`, each function here returns an
expression for :math:`x_{t+1} = F(x_t, u_t)`.

* :func:`rk4` -- classical fourth-order Runge-Kutta, optionally with
  ``substeps`` equal sub-steps (global error :math:`O(\Delta t^4)`):

  .. math::

      k_1 = f(x, u),\; k_2 = f(x + \tfrac{h}{2} k_1, u),\;
      k_3 = f(x + \tfrac{h}{2} k_2, u),\; k_4 = f(x + h k_3, u),\;
      x^+ = x + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4).

* :func:`euler` -- explicit Euler, :math:`x^+ = x + h f(x, u)`.
* :func:`semi_implicit_euler` -- for states ordered ``[q, dq]`` whose ODE has
  :math:`\dot q = dq`: the velocity is updated first and the position uses the
  *new* velocity (the scheme of Gymnasium's classic-control envs):

  .. math::

      dq^+ = \mathrm{clip}(dq + h\,\ddot q(q, dq, u)),\qquad q^+ = q + h\, dq^+ .

The functions are written with ``+``, ``*`` and slicing only, so they work on
CasADi ``SX``/``MX`` expressions (the intended use) and on NumPy arrays alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import casadi as ca

__all__ = ["rk4", "euler", "semi_implicit_euler", "INTEGRATORS"]

Expr = Any
ODE = Callable[[Expr, Expr], Expr]


def rk4(f: ODE, x: Expr, u: Expr, dt: float | Expr, substeps: int = 1) -> Expr:
    """One step of length ``dt`` of classical RK4, split into ``substeps`` sub-steps.

    Parameters
    ----------
    f : callable ``(x, u) -> xdot``
    x : expression, shape (n,)
    u : expression, shape (m,)
    dt : float or expression
        Step length (a symbol for free-final-time problems).
    substeps : int

    Returns
    -------
    expression, shape (n,)
    """
    h = dt / substeps
    for _ in range(substeps):
        k1 = f(x, u)
        k2 = f(x + (h / 2) * k1, u)
        k3 = f(x + (h / 2) * k2, u)
        k4 = f(x + h * k3, u)
        x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def euler(f: ODE, x: Expr, u: Expr, dt: float | Expr, substeps: int = 1) -> Expr:
    """Explicit Euler, ``substeps`` sub-steps of length ``dt / substeps``."""
    h = dt / substeps
    for _ in range(substeps):
        x = x + h * f(x, u)
    return x


def semi_implicit_euler(
    f: ODE,
    x: Expr,
    u: Expr,
    dt: float,
    substeps: int = 1,
    *,
    n_q: int,
    clip_velocity: Callable[[Expr], Expr] | None = None,
) -> Expr:
    """Semi-implicit (symplectic) Euler for a state ``x = [q (n_q), dq (n_q)]``.

    ``clip_velocity`` is applied to the new velocity before the position update
    (Gymnasium's pendulum and mountain car clip their speed there).
    """
    h = dt / substeps
    for _ in range(substeps):
        q, dq = x[:n_q], x[n_q:]
        ddq = f(x, u)[n_q:]
        dq_new = dq + h * ddq
        if clip_velocity is not None:
            dq_new = clip_velocity(dq_new)
        x = ca.vertcat(q + h * dq_new, dq_new)
    return x


INTEGRATORS = ("rk4", "euler", "semi_implicit_euler")
