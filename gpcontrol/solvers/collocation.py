r"""Orthogonal collocation on one interval: nodes, differentiation and quadrature.

On an interval :math:`[t_k, t_k + h]` the state is approximated by the
polynomial of degree :math:`d` through :math:`d + 1` nodes at the normalised
times :math:`0 = \tau_0 < \tau_1 < \dots < \tau_d \le 1`,

.. math::

    x(t_k + \tau h) \approx p(\tau) = \sum_{j=0}^{d} \ell_j(\tau)\, x_{k,j},
    \qquad \ell_j(\tau) = \prod_{r \ne j} \frac{\tau - \tau_r}{\tau_j - \tau_r},

where :math:`\tau_1..\tau_d` are the roots of the shifted Legendre polynomial
(Gauss points) or the Radau IIA points (:math:`\tau_d = 1`). Three constant
tables turn that polynomial into the equations of direct collocation:

.. math::

    C_{jr} = \ell_j'(\tau_r), \qquad D_j = \ell_j(1), \qquad B_j = \int_0^1 \ell_j(\tau)\,d\tau,

so that the collocation equations read
:math:`h\, f(x_{k,r}, u_k) = \sum_j C_{jr} x_{k,j}` for :math:`r = 1..d`,
the interval ends at :math:`x_{k+1} = \sum_j D_j x_{k,j}`, and an integral
over the interval is :math:`\int_{t_k}^{t_k+h} l\,dt \approx h \sum_j B_j
l(x_{k,j}, u_k)`. Gauss-Legendre collocation of degree :math:`d` has order
:math:`2d` at the interval ends, Radau IIA order :math:`2d - 1` (Hairer &
Wanner, *Solving Ordinary Differential Equations II*, Sec. IV.5; Biegler,
*Nonlinear Programming*, SIAM 2010, Sec. 10.2).
"""

from __future__ import annotations

import dataclasses

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CollocationScheme",
    "collocation_scheme",
    "collocation_interval",
    "lagrange_basis",
    "hermite_basis",
    "SCHEMES",
]

Array = NDArray[np.float64]

#: Node families accepted by :func:`collocation_scheme`.
SCHEMES = ("legendre", "radau")


@dataclasses.dataclass(frozen=True, eq=False)
class CollocationScheme:
    """Constant tables of one collocation scheme on the unit interval.

    Attributes
    ----------
    degree : int
        :math:`d`, number of collocation points per interval.
    scheme : str
        ``"legendre"`` or ``"radau"``.
    tau : ndarray, shape (d + 1,)
        Nodes :math:`\\tau_0 = 0, \\tau_1, ..., \\tau_d`.
    C : ndarray, shape (d + 1, d + 1)
        ``C[j, r]`` = derivative of basis polynomial ``j`` at node ``r``.
    D : ndarray, shape (d + 1,)
        Basis polynomials at :math:`\\tau = 1` (continuity coefficients).
    B : ndarray, shape (d + 1,)
        Quadrature weights on :math:`[0, 1]` (they sum to 1; ``B[0] = 0``).
    """

    degree: int
    scheme: str
    tau: Array
    C: Array
    D: Array
    B: Array


def collocation_scheme(degree: int = 3, scheme: str = "legendre") -> CollocationScheme:
    """Nodes and the differentiation, continuity and quadrature tables.

    .. math::

        C_{jr} = \\ell_j'(\\tau_r),\\quad D_j = \\ell_j(1),\\quad
        B_j = \\int_0^1 \\ell_j(\\tau)\\, d\\tau

    Parameters
    ----------
    degree : int
        Number of collocation points ``d >= 1`` (at most 9).
    scheme : {"legendre", "radau"}
        Gauss-Legendre or Radau IIA nodes.

    Returns
    -------
    CollocationScheme
    """
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or not 1 <= degree <= 9:
        raise ValueError(f"degree must be an integer in [1, 9], got {degree!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    d = int(degree)
    tau = np.array([0.0, *ca.collocation_points(d, scheme)])
    C = np.zeros((d + 1, d + 1))
    D = np.zeros(d + 1)
    B = np.zeros(d + 1)
    for j in range(d + 1):
        basis = np.poly1d([1.0])
        for r in range(d + 1):
            if r != j:
                basis *= np.poly1d([1.0, -tau[r]]) / (tau[j] - tau[r])
        D[j] = basis(1.0)
        C[j] = np.polyder(basis)(tau)
        B[j] = np.polyint(basis)(1.0)
    return CollocationScheme(degree=d, scheme=scheme, tau=tau, C=C, D=D, B=B)


def lagrange_basis(tau: ArrayLike, s: ArrayLike) -> Array:
    """Values of the Lagrange basis polynomials on ``tau`` at the points ``s``.

    .. math::

        L_{ij} = \\ell_j(s_i) = \\prod_{r \\ne j} \\frac{s_i - \\tau_r}{\\tau_j - \\tau_r}

    Parameters
    ----------
    tau : array_like, shape (r,)
        Distinct nodes.
    s : array_like, shape (...)
        Evaluation points.

    Returns
    -------
    ndarray, shape (..., r)
    """
    nodes = np.asarray(tau, dtype=np.float64).reshape(-1)
    pts = np.asarray(s, dtype=np.float64)
    out = np.ones((*pts.shape, nodes.size))
    for j in range(nodes.size):
        for r in range(nodes.size):
            if r != j:
                out[..., j] *= (pts - nodes[r]) / (nodes[j] - nodes[r])
    return out


def hermite_basis(s: ArrayLike) -> Array:
    """Cubic Hermite basis on ``[0, 1]``: values and slopes at both ends.

    .. math::

        h_{00} = 2s^3 - 3s^2 + 1,\\ h_{10} = s^3 - 2s^2 + s,\\
        h_{01} = -2s^3 + 3s^2,\\ h_{11} = s^3 - s^2

    Parameters
    ----------
    s : array_like, shape (...)

    Returns
    -------
    ndarray, shape (..., 4)
        ``[h00, h10, h01, h11]``: weights of ``x(0)``, ``x'(0)``, ``x(1)``, ``x'(1)``.
    """
    t = np.asarray(s, dtype=np.float64)
    return np.stack(
        [2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2], axis=-1
    )


def collocation_interval(sc: CollocationScheme, f: ca.Function, l_fn: ca.Function) -> ca.Function:
    """One collocation interval as a CasADi function ``(x_k, X_c (n, d), u_k, h)``.

    .. math::

        r_j = h f(x_{k,j}, u_k) - \\sum_{i=0}^{d} C_{ij} x_{k,i},\\quad
        x_{k+1} = \\sum_i D_i x_{k,i},\\quad \\bar l_k = \\sum_j B_j l(x_{k,j}, u_k)

    Parameters
    ----------
    sc : CollocationScheme
    f : casadi.Function
        ``f(x, u) -> xdot``.
    l_fn : casadi.Function
        ``l(x, u) -> scalar`` running cost.

    Returns
    -------
    casadi.Function
        Outputs ``r`` (``n d``, the residuals column by column), ``x_{k+1}``
        (``n``) and :math:`\\bar l_k` (scalar); the collocation equations are ``r = 0``.
        This is the running-cost average over the interval
        (:math:`\\approx \\frac1h \\int l\\,dt`), the scaling of
        :mod:`gpcontrol.solvers.trajopt`.
    """
    n, m = f.size1_in(0), f.size1_in(1)
    d = sc.degree
    x, u, h = ca.SX.sym("x", n), ca.SX.sym("u", m), ca.SX.sym("h")
    xc = ca.SX.sym("xc", n, d)
    nodes = ca.horzcat(x, xc)
    slopes = ca.mtimes(nodes, ca.DM(sc.C[:, 1:]))
    fvals = ca.horzcat(*[f(xc[:, j], u) for j in range(d)])
    quad = sum(float(sc.B[j + 1]) * l_fn(xc[:, j], u) for j in range(d))
    x_end = ca.mtimes(nodes, ca.DM(sc.D))
    return ca.Function("interval", [x, xc, u, h], [ca.vec(h * fvals - slopes), x_end, quad])
