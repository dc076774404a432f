r"""Running and terminal costs: values, derivatives, CasADi expressions, Gaussian moments.

An optimal-control problem over a horizon :math:`T` minimises

.. math::

    J(X, U) = \sum_{t=0}^{T-1} \ell(x_t, u_t) + \ell_T(x_T),

and every solver in gpcontrol asks a :class:`Cost` for one of four views of
:math:`\ell` and :math:`\ell_T`:

* values, batched over any leading shape (:meth:`Cost.l`, :meth:`Cost.l_T`,
  :meth:`Cost.total`);
* exact first and second derivatives along a whole trajectory at once, for
  iLQR/DDP and LQG (:meth:`Cost.quadratize`, :meth:`Cost.quadratize_terminal`);
* CasADi expressions for trajectory optimisation (:meth:`Cost.casadi`);
* the mean and variance of the state cost under a Gaussian state
  :math:`x \sim \mathcal N(\mu, \Sigma)`, in differentiable torch, for PILCO
  (:meth:`Cost.expected`).

Built-in costs: :class:`QuadraticCost` and PILCO's :class:`SaturatingCost`;
``a + b`` and ``s * a`` combine them (:class:`SumCost`, :class:`ScaledCost`).

Internally every built-in state cost is one canonical form on the features
:math:`\phi(x) = [x, \sin(Lx + o), \cos(Lx + o)]`,

.. math::

    c(x) = \alpha + \sum_i \tfrac12 (\phi - r_i)^\top H_i (\phi - r_i)
           + \sum_j \beta_j \exp\!\big(-\tfrac12 \lVert P_j \phi - t_j \rVert^2\big),

plus a quadratic in :math:`u`. Sums and scalings of such forms are again such
forms, so derivatives (chain rule through :math:`\phi`), CasADi expressions and
Gaussian moments are written once. For moments, :math:`\phi(x)` is replaced by
the Gaussian with its exact mean and covariance
(:func:`gpcontrol.gaussian.trig_moments`), after which every term has a closed
form (:func:`gpcontrol.gaussian.expected_exp_quadratic`), including the
cross-covariances between terms that the variance of a sum needs. Without
trigonometric features (:math:`L` empty) the moments are exact; with them they
are PILCO's moment-matching approximation.

References
----------
M. P. Deisenroth, *Efficient Reinforcement Learning using Gaussian Processes*,
KIT Scientific Publishing, 2010 (saturating cost and its Gaussian moments).
M. P. Deisenroth, D. Fox, C. E. Rasmussen, "Gaussian Processes for
Data-Efficient Learning in Robotics and Control", IEEE TPAMI 37(2), 2015.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
import numbers
from typing import Any, NamedTuple

import casadi as ca
import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array, check_positive, check_psd
from gpcontrol.gaussian import (
    _check_gaussian,
    _exp_quadratic,
    _exp_quadratic_tilted,
    _trig_moments,
)
from gpcontrol.systems.cartpole import CartPole
from gpcontrol.systems.chain import DoublePendulum, PlanarArm
from gpcontrol.systems.pendulum import Pendulum

__all__ = [
    "Cost",
    "Quadratization",
    "TerminalQuadratization",
    "CostMoments",
    "QuadraticCost",
    "SaturatingCost",
    "SumCost",
    "ScaledCost",
]

Array = NDArray[np.float64]
Tensor = torch.Tensor


# ----------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class Quadratization:
    r"""Second-order expansion of the running cost along a trajectory.

    .. math::

        \ell(x_t + \delta x, u_t + \delta u) \approx \ell_t + \ell_{x,t}^\top \delta x
        + \ell_{u,t}^\top \delta u + \tfrac12 \delta x^\top \ell_{xx,t} \delta x
        + \delta u^\top \ell_{ux,t} \delta x + \tfrac12 \delta u^\top \ell_{uu,t} \delta u

    Attributes
    ----------
    l : ndarray, shape (T,)
    lx : ndarray, shape (T, n)
    lu : ndarray, shape (T, m)
    lxx : ndarray, shape (T, n, n)
    lux : ndarray, shape (T, m, n)
    luu : ndarray, shape (T, m, m)
        (``T`` stands for any leading batch shape.)
    """

    l: Array
    lx: Array
    lu: Array
    lxx: Array
    lux: Array
    luu: Array


@dataclasses.dataclass(frozen=True)
class TerminalQuadratization:
    """Second-order expansion of the terminal cost: ``l ()``, ``lx (n,)``, ``lxx (n, n)``."""

    l: Array
    lx: Array
    lxx: Array


class CostMoments(NamedTuple):
    r"""Mean and variance of a state cost under :math:`x \sim \mathcal N(\mu, \Sigma)`.

    Attributes
    ----------
    expectation : torch.Tensor, shape (...)
        :math:`\mathbb E[c(x)]`.
    variance : torch.Tensor, shape (...)
        :math:`\operatorname{Var}[c(x)]` (clamped at 0 against rounding).
    """

    expectation: Tensor
    variance: Tensor


# -------------------------------------------------------- canonical forms
def _symmetric(A: Array) -> Array:
    return 0.5 * (A + np.swapaxes(A, -1, -2))


@dataclasses.dataclass(frozen=True, eq=False)
class _Quadratic:
    r""":math:`q(z) = \sum_i \tfrac12 (z - r_i)^\top H_i (z - r_i)` on :math:`\mathbb R^{dim}`."""

    dim: int
    terms: tuple[tuple[Array, Array], ...]

    @functools.cached_property
    def H(self) -> Array:  # noqa: N802 - math name
        return sum((H for H, _ in self.terms), np.zeros((self.dim, self.dim)))

    @functools.cached_property
    def Hr(self) -> Array:  # noqa: N802 - math name
        return sum((H @ r for H, r in self.terms), np.zeros(self.dim))

    @functools.cached_property
    def _torch(self) -> tuple[list[tuple[Tensor, Tensor]], Tensor, Tensor]:
        f = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        return [(f(H), f(r)) for H, r in self.terms], f(self.H), f(self.Hr)

    def value(self, z: Array) -> Array:
        out = np.zeros(z.shape[:-1])
        for H, r in self.terms:
            dz = z - r
            out = out + 0.5 * np.einsum("...i,ij,...j->...", dz, H, dz)
        return out

    def grad(self, z: Array) -> Array:
        return z @ self.H - self.Hr

    def casadi(self, z: Any) -> Any:
        out = 0
        for H, r in self.terms:
            dz = z - ca.DM(r)
            out = out + 0.5 * ca.bilin(ca.sparsify(ca.DM(H)), dz, dz)
        return out

    def scaled(self, s: float) -> _Quadratic:
        return _Quadratic(self.dim, tuple((s * H, r) for H, r in self.terms))

    def embedded(self, idx: NDArray[np.intp], dim: int) -> _Quadratic:
        """Re-express on a larger space where old coordinate ``j`` is new ``idx[j]``."""
        terms = []
        for H, r in self.terms:
            H2 = np.zeros((dim, dim))
            H2[np.ix_(idx, idx)] = H
            r2 = np.zeros(dim)
            r2[idx] = r
            terms.append((H2, r2))
        return _Quadratic(dim, tuple(terms))

    def mean(self, m: Tensor, S: Tensor) -> Tensor:
        r"""Gaussian mean of :math:`q`.

        :math:`\mathbb E[q] = \sum_i \tfrac12[(m - r_i)^\top H_i (m - r_i)
        + \operatorname{tr}(H_i S)]`.
        """
        terms, _, _ = self._torch
        batch = torch.broadcast_shapes(m.shape[:-1], S.shape[:-2])
        out = torch.zeros(batch, dtype=m.dtype, device=m.device)
        for H, r in terms:
            dm = m - r
            out = out + 0.5 * (((dm @ H) * dm).sum(-1) + (H * S).sum((-2, -1)))
        return out

    def variance(self, m: Tensor, S: Tensor) -> Tensor:
        r"""Gaussian variance of :math:`q`.

        :math:`\operatorname{Var}[q] = \tfrac12\operatorname{tr}((HS)^2) + g^\top S g`,
        :math:`g = \nabla q(m)`, :math:`H = \sum_i H_i`.
        """
        _, H, Hr = self._torch
        g = m @ H - Hr
        HS = H @ S
        return 0.5 * (HS * HS.mT).sum((-2, -1)) + ((g.unsqueeze(-2) @ S).squeeze(-2) * g).sum(-1)


@dataclasses.dataclass(frozen=True, eq=False)
class _StateForm:
    r"""Canonical state cost: constant + quadratics + exp-quadratics in :math:`\phi`."""

    n: int
    L: Array  # (k, n)
    offset: Array  # (k,)
    alpha: float
    quad: _Quadratic  # on phi, dim p = n + 2k
    exps: tuple[tuple[float, Array, Array], ...]  # (beta, P (r, p), t (r,))

    @property
    def k(self) -> int:
        return self.L.shape[0]

    @property
    def p(self) -> int:
        return self.n + 2 * self.k

    @functools.cached_property
    def _torch(self) -> tuple[Tensor, Tensor, list[tuple[float, Tensor, Tensor]]]:
        f = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        return f(self.L), f(self.offset), [(beta, f(P), f(t)) for beta, P, t in self.exps]

    # numeric ---------------------------------------------------------------
    def _features(self, x: Array) -> tuple[Array, Array]:
        a = x @ self.L.T + self.offset
        return np.concatenate([x, np.sin(a), np.cos(a)], axis=-1), a

    def value(self, x: Array) -> Array:
        phi, _ = self._features(x)
        c = self.alpha + self.quad.value(phi)
        for beta, P, t in self.exps:
            res = phi @ P.T - t
            c = c + beta * np.exp(-0.5 * (res * res).sum(-1))
        return np.asarray(c, dtype=np.float64)

    def derivatives(self, x: Array) -> tuple[Array, Array, Array]:
        """Value, gradient ``(..., n)`` and Hessian ``(..., n, n)``: chain rule through phi."""
        n, k, p = self.n, self.k, self.p
        batch = x.shape[:-1]
        phi, a = self._features(x)
        c = self.alpha + self.quad.value(phi)
        g = self.quad.grad(phi)
        Hp = np.broadcast_to(self.quad.H, (*batch, p, p)).copy()
        for beta, P, t in self.exps:
            res = phi @ P.T - t
            e = beta * np.exp(-0.5 * (res * res).sum(-1))
            v = res @ P  # P^T (P phi - t)
            c = c + e
            g = g - e[..., None] * v
            Hp += e[..., None, None] * (v[..., :, None] * v[..., None, :] - P.T @ P)
        if k == 0:
            return np.asarray(c, dtype=np.float64), g, _symmetric(Hp)
        sin_a, cos_a = np.sin(a), np.cos(a)
        eye = np.broadcast_to(np.eye(n), (*batch, n, n))
        J = np.concatenate(
            [eye, cos_a[..., :, None] * self.L, -sin_a[..., :, None] * self.L], axis=-2
        )  # d phi / dx, (..., p, n)
        cx = np.einsum("...pi,...p->...i", J, g)
        w = -(g[..., n : n + k] * sin_a + g[..., n + k :] * cos_a)
        cxx = np.einsum("...pi,...pq,...qj->...ij", J, Hp, J) + np.einsum(
            "ki,...k,kj->...ij", self.L, w, self.L
        )
        return np.asarray(c, dtype=np.float64), cx, _symmetric(cxx)

    def casadi(self, x: Any) -> Any:
        if self.k:
            a = ca.DM(self.L) @ x + ca.DM(self.offset)
            phi = ca.vertcat(x, ca.sin(a), ca.cos(a))
        else:
            phi = x
        c = self.alpha + self.quad.casadi(phi)
        for beta, P, t in self.exps:
            res = ca.sparsify(ca.DM(P)) @ phi - ca.DM(t)
            c = c + beta * ca.exp(-0.5 * ca.sumsqr(res))
        return c

    # Gaussian moments ------------------------------------------------------
    def moments(self, mean: Tensor, cov: Tensor) -> CostMoments:
        L, o, exps = self._torch
        L, o = L.to(mean.device), o.to(mean.device)
        m, S = _trig_moments(mean, cov, L, o)
        Eq = self.quad.mean(m, S)
        E = self.alpha + Eq
        V = self.quad.variance(m, S)
        Eg = []
        for beta, P, t in exps:
            tilt = _exp_quadratic_tilted(m, S, P, t)
            Eg.append(tilt.expectation)
            E = E + beta * tilt.expectation
            if self.quad.terms:  # Cov[q, g] = E[g] (E_tilted[q] - E[q])
                V = V + 2.0 * beta * tilt.expectation * (self.quad.mean(tilt.mean, tilt.cov) - Eq)
        for j, (bj, Pj, tj) in enumerate(exps):
            for i in range(j, len(exps)):
                bi, Pi, ti = exps[i]
                Eji = _exp_quadratic(m, S, torch.cat([Pj, Pi]), torch.cat([tj, ti]))
                V = V + (1.0 if i == j else 2.0) * bj * bi * (Eji - Eg[j] * Eg[i])
        batch = torch.broadcast_shapes(mean.shape[:-1], cov.shape[:-2])
        E = torch.as_tensor(E, dtype=torch.float64).expand(batch)
        V = torch.as_tensor(V, dtype=torch.float64).expand(batch)
        return CostMoments(E, V.clamp_min(0.0))

    # algebra ---------------------------------------------------------------
    def scaled(self, s: float) -> _StateForm:
        return dataclasses.replace(
            self,
            alpha=s * self.alpha,
            quad=self.quad.scaled(s),
            exps=tuple((s * beta, P, t) for beta, P, t in self.exps),
        )

    @staticmethod
    def merge(forms: list[_StateForm]) -> _StateForm:
        """One form whose value is the sum; identical angle rows are shared."""
        n = forms[0].n
        rows: list[tuple[tuple[float, ...], float]] = []
        maps: list[NDArray[np.intp]] = []
        for f in forms:
            used: set[int] = set()
            trig: list[int] = []
            for i in range(f.k):
                key = (tuple(f.L[i].tolist()), float(f.offset[i]))
                j = next((j for j, r in enumerate(rows) if r == key and j not in used), None)
                if j is None:
                    rows.append(key)
                    j = len(rows) - 1
                used.add(j)
                trig.append(j)
            maps.append(np.asarray(trig, dtype=np.intp))
        K = len(rows)
        p = n + 2 * K
        L = np.array([r[0] for r in rows], dtype=np.float64).reshape(K, n)
        offset = np.array([r[1] for r in rows], dtype=np.float64)
        quad_terms: list[tuple[Array, Array]] = []
        exps: list[tuple[float, Array, Array]] = []
        for f, tmap in zip(forms, maps, strict=True):
            idx = np.concatenate([np.arange(n), n + tmap, n + K + tmap]).astype(np.intp)
            quad_terms.extend(f.quad.embedded(idx, p).terms)
            for beta, P, t in f.exps:
                P2 = np.zeros((P.shape[0], p))
                P2[:, idx] = P
                exps.append((beta, P2, t))
        return _StateForm(
            n, L, offset, sum(f.alpha for f in forms), _Quadratic(p, tuple(quad_terms)), tuple(exps)
        )


# ------------------------------------------------------------- validation
def _vector(name: str, value: Any, size: int) -> Array:
    v = as_float_array(name, value)
    if v.ndim == 0 and size == 1:
        v = v.reshape(1)
    if v.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {v.shape}")
    return v


def _matrix(name: str, value: Any, want: str) -> Array:
    M = as_float_array(name, value)
    if M.ndim != 2:
        raise ValueError(f"{name} must be a matrix of shape {want}, got shape {M.shape}")
    return M


def _psd(name: str, value: Any, size: int | None = None) -> Array:
    """``check_psd`` that also accepts a scalar for a 1 x 1 matrix."""
    arr = as_float_array(name, value)
    return check_psd(name, arr.reshape(1, 1) if arr.ndim == 0 else arr, size)


def _dim(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _casadi_vector(name: str, value: Any, size: int) -> Any:
    if isinstance(value, ca.SX | ca.MX | ca.DM):
        v = value
    elif isinstance(value, np.ndarray | list | tuple | numbers.Real):
        v = ca.DM(as_float_array(name, value).reshape(-1))
    else:
        raise TypeError(
            f"{name} must be a CasADi SX/MX/DM or a numeric array, got {type(value).__name__}"
        )
    if v.numel() != size or min(v.shape) > 1:
        raise ValueError(f"{name} must be a vector with {size} entries, got shape {v.shape}")
    return v if v.shape[1] == 1 else v.T


# -------------------------------------------------------------- interface
class Cost(abc.ABC):
    r"""A running cost :math:`\ell(x, u)` and terminal cost :math:`\ell_T(x)`.

    The public methods validate their inputs and call protected hooks on clean
    float64 arrays; a custom cost subclasses :class:`Cost`, sets ``n`` and
    ``m`` and implements ``_l``, ``_l_T``, ``_quadratize``,
    ``_quadratize_terminal``, ``_casadi`` and ``_casadi_terminal`` (and
    ``_moments`` for :meth:`expected`).

    .. math::

        J(X, U) = \sum_{t=0}^{T-1} \ell(x_t, u_t) + \ell_T(x_T)

    Costs combine: ``a + b`` is a :class:`SumCost`, ``s * a`` a
    :class:`ScaledCost`; values, derivatives and moments follow.

    Attributes
    ----------
    n, m : int
        State and control dimensions.
    """

    n: int
    m: int
    #: Makes ``array * cost`` raise ``TypeError`` instead of an object array of costs.
    __array_ufunc__ = None

    # hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _l(self, x: Array, u: Array) -> Array:
        """Running cost on validated, broadcast ``(N..., n)``, ``(N..., m)``."""

    @abc.abstractmethod
    def _l_T(self, x: Array) -> Array:  # noqa: N802 - math name
        """Terminal cost on validated ``(..., n)``."""

    @abc.abstractmethod
    def _quadratize(self, x: Array, u: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        """``(l, lx, lu, lxx, lux, luu)`` on validated, broadcast arrays."""

    @abc.abstractmethod
    def _quadratize_terminal(self, x: Array) -> tuple[Array, Array, Array]:
        """``(l, lx, lxx)`` on validated ``(..., n)``."""

    @abc.abstractmethod
    def _casadi(self, x: Any, u: Any) -> Any:
        """Running cost on CasADi column vectors."""

    @abc.abstractmethod
    def _casadi_terminal(self, x: Any) -> Any:
        """Terminal cost on a CasADi column vector."""

    def _moments(self, mean: Tensor, cov: Tensor, terminal: bool) -> CostMoments:
        """State-cost moments on validated tensors; costs without them raise."""
        raise NotImplementedError(f"{type(self).__name__} defines no Gaussian expectations")

    def _forms(self) -> tuple[_StateForm, _StateForm, _Quadratic] | None:
        """Canonical (running, terminal, control) forms, if the cost has them."""
        return None

    # public API ---------------------------------------------------------------
    def _pair(self, x: Any, u: Any, names: tuple[str, str] = ("x", "u")) -> tuple[Array, Array]:
        xa = as_batch(names[0], x, self.n, what="state")
        ua = as_batch(names[1], u, self.m, what="control")
        try:
            batch = np.broadcast_shapes(xa.shape[:-1], ua.shape[:-1])
        except ValueError:
            raise ValueError(
                f"batch shapes of {names[0]} {xa.shape[:-1]} and {names[1]} {ua.shape[:-1]} "
                "do not broadcast"
            ) from None
        return np.broadcast_to(xa, (*batch, self.n)), np.broadcast_to(ua, (*batch, self.m))

    def l(self, x: ArrayLike, u: ArrayLike) -> Array:  # noqa: E743 - the interface's name
        """Running cost :math:`\\ell(x, u)`, batched.

        Parameters
        ----------
        x : array_like, shape (..., n)
        u : array_like, shape (..., m)
            Leading shapes broadcast.

        Returns
        -------
        ndarray, shape (...)
        """
        xa, ua = self._pair(x, u)
        return self._l(xa, ua)

    def l_T(self, x: ArrayLike) -> Array:  # noqa: N802 - math name
        """Terminal cost :math:`\\ell_T(x)`; ``x (..., n) -> (...)``."""
        return self._l_T(as_batch("x", x, self.n, what="state"))

    def total(self, X: ArrayLike, U: ArrayLike) -> float:
        """Trajectory cost :math:`\\sum_{t<T} \\ell(x_t, u_t) + \\ell_T(x_T)`.

        Parameters
        ----------
        X : array_like, shape (T + 1, n)
        U : array_like, shape (T, m)
        """
        Xa = as_float_array("X", X)
        Ua = as_float_array("U", U)
        if Xa.ndim != 2 or Xa.shape[1] != self.n or Xa.shape[0] < 1:
            raise ValueError(f"X must have shape (T + 1, {self.n}), got {Xa.shape}")
        if Ua.ndim != 2 or Ua.shape != (Xa.shape[0] - 1, self.m):
            raise ValueError(
                f"U must have shape (T, {self.m}) = ({Xa.shape[0] - 1}, {self.m}) for X of shape "
                f"{Xa.shape}, got {Ua.shape}"
            )
        return float(self._l(Xa[:-1], Ua).sum() + self._l_T(Xa[-1]))

    def quadratize(self, X: ArrayLike, U: ArrayLike) -> Quadratization:
        r"""Exact value, gradients and Hessians of :math:`\ell` at every ``(x_t, u_t)``.

        Parameters
        ----------
        X : array_like, shape (T, n)
            States (e.g. ``X[:-1]`` of a trajectory); any leading shape works.
        U : array_like, shape (T, m)

        Returns
        -------
        Quadratization
            ``l (T,)``, ``lx (T, n)``, ``lu (T, m)``, ``lxx (T, n, n)``,
            ``lux (T, m, n)``, ``luu (T, m, m)``.
        """
        xa, ua = self._pair(X, U, ("X", "U"))
        return Quadratization(*self._quadratize(xa, ua))

    def quadratize_terminal(self, x: ArrayLike) -> TerminalQuadratization:
        """Value, gradient ``(n,)`` and Hessian ``(n, n)`` of :math:`\\ell_T` (batched too)."""
        return TerminalQuadratization(
            *self._quadratize_terminal(as_batch("x", x, self.n, what="state"))
        )

    def casadi(self, x_sym: Any, u_sym: Any) -> Any:
        """Running cost as a CasADi scalar expression of ``x_sym (n,)`` and ``u_sym (m,)``."""
        return self._casadi(
            _casadi_vector("x_sym", x_sym, self.n), _casadi_vector("u_sym", u_sym, self.m)
        )

    def casadi_terminal(self, x_sym: Any) -> Any:
        """Terminal cost as a CasADi scalar expression of ``x_sym (n,)``."""
        return self._casadi_terminal(_casadi_vector("x_sym", x_sym, self.n))

    def expected(self, mean: Any, cov: Any) -> CostMoments:
        r"""Mean and variance of the *state part* of :math:`\ell` under a Gaussian state.

        .. math::

            \mathbb E[c(x)],\ \operatorname{Var}[c(x)], \qquad x \sim \mathcal N(\mu, \Sigma),

        where :math:`c` is the running cost without its control term. See
        the cost class for the formula and whether it is exact.

        Parameters
        ----------
        mean : array_like or torch.Tensor, shape (..., n)
        cov : array_like or torch.Tensor, shape (..., n, n)
            Symmetric positive semi-definite.

        Returns
        -------
        CostMoments
            ``(expectation, variance)``, float64 tensors of shape ``(...)``,
            differentiable with respect to ``mean`` and ``cov``.
        """
        mu, S = _check_gaussian(mean, cov, self.n)
        return self._moments(mu, S, False)

    def expected_terminal(self, mean: Any, cov: Any) -> CostMoments:
        """Like :meth:`expected`, for the terminal cost :math:`\\ell_T`."""
        mu, S = _check_gaussian(mean, cov, self.n)
        return self._moments(mu, S, True)

    # algebra ------------------------------------------------------------------
    def __add__(self, other: object) -> Cost:
        if isinstance(other, Cost):
            return SumCost(self, other)
        if isinstance(other, numbers.Real) and not isinstance(other, bool) and other == 0:
            return self  # lets sum([...]) start from 0
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, other: object) -> Cost:
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return ScaledCost(self, float(other))
        return NotImplemented

    __rmul__ = __mul__


class _FormCost(Cost):
    """A cost given by canonical forms; implements every hook once (see module docstring)."""

    def __init__(
        self, n: int, m: int, running: _StateForm, terminal: _StateForm, control: _Quadratic
    ) -> None:
        self.n, self.m = n, m
        self._running, self._terminal, self._control = running, terminal, control

    def _forms(self) -> tuple[_StateForm, _StateForm, _Quadratic]:
        return self._running, self._terminal, self._control

    def _l(self, x: Array, u: Array) -> Array:
        return self._running.value(x) + self._control.value(u)

    def _l_T(self, x: Array) -> Array:  # noqa: N802 - math name
        return self._terminal.value(x)

    def _quadratize(self, x: Array, u: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        c, cx, cxx = self._running.derivatives(x)
        batch = x.shape[:-1]
        l = c + self._control.value(u)
        lu = self._control.grad(u)
        luu = np.broadcast_to(self._control.H, (*batch, self.m, self.m)).copy()
        lux = np.zeros((*batch, self.m, self.n))
        return l, cx, lu, cxx, lux, luu

    def _quadratize_terminal(self, x: Array) -> tuple[Array, Array, Array]:
        return self._terminal.derivatives(x)

    def _casadi(self, x: Any, u: Any) -> Any:
        return self._running.casadi(x) + self._control.casadi(u)

    def _casadi_terminal(self, x: Any) -> Any:
        return self._terminal.casadi(x)

    def _moments(self, mean: Tensor, cov: Tensor, terminal: bool) -> CostMoments:
        return (self._terminal if terminal else self._running).moments(mean, cov)


# --------------------------------------------------------------- quadratic
class QuadraticCost(_FormCost):
    r"""Quadratic cost around a target.

    .. math::

        \ell(x, u) = \tfrac12 (x - x_g)^\top Q (x - x_g) + \tfrac12 (u - u_g)^\top R (u - u_g),
        \qquad \ell_T(x) = \tfrac12 (x - x_g)^\top Q_f (x - x_g).

    Gaussian moments (exact) of the state part, with :math:`W = Q` in
    :meth:`~Cost.expected` and :math:`W = Q_f` in :meth:`~Cost.expected_terminal`,
    :math:`x \sim \mathcal N(\mu, \Sigma)`, :math:`d = \mu - x_g`:

    .. math::

        \mathbb E = \tfrac12\big[d^\top W d + \operatorname{tr}(W\Sigma)\big], \qquad
        \operatorname{Var} = \tfrac12 \operatorname{tr}\big((W\Sigma)^2\big) + d^\top W\Sigma W d .

    Parameters
    ----------
    Q : array_like, shape (n, n)
        State weight, symmetric positive semi-definite.
    R : array_like, shape (m, m)
        Control weight, symmetric positive semi-definite (solvers that need it
        positive definite check that themselves).
    x_target : array_like, shape (n,), optional
        :math:`x_g`, default 0.
    u_target : array_like, shape (m,), optional
        :math:`u_g`, default 0.
    Qf : array_like, shape (n, n), optional
        Terminal weight, default ``Q``.

    Examples
    --------
    >>> import numpy as np
    >>> cost = QuadraticCost(np.eye(2), 0.1 * np.eye(1), x_target=[np.pi, 0.0])
    >>> float(cost.l([np.pi, 0.0], [1.0]))
    0.05
    """

    def __init__(
        self,
        Q: ArrayLike,
        R: ArrayLike,
        *,
        x_target: ArrayLike | None = None,
        u_target: ArrayLike | None = None,
        Qf: ArrayLike | None = None,
    ) -> None:
        self.Q = _psd("Q", Q)
        n = self.Q.shape[0]
        if n == 0:
            raise ValueError("Q must be at least 1 x 1")
        self.R = _psd("R", R)
        m = self.R.shape[0]
        if m == 0:
            raise ValueError("R must be at least 1 x 1")
        self.Qf = self.Q if Qf is None else _psd("Qf", Qf, n)
        self.x_target = np.zeros(n) if x_target is None else _vector("x_target", x_target, n)
        self.u_target = np.zeros(m) if u_target is None else _vector("u_target", u_target, m)
        empty = np.zeros((0, n))

        def form(W: Array) -> _StateForm:
            return _StateForm(n, empty, np.zeros(0), 0.0, _Quadratic(n, ((W, self.x_target),)), ())

        super().__init__(
            n, m, form(self.Q), form(self.Qf), _Quadratic(m, ((self.R, self.u_target),))
        )

    def __repr__(self) -> str:
        return f"QuadraticCost(n={self.n}, m={self.m})"


# -------------------------------------------------------------- saturating
class SaturatingCost(_FormCost):
    r"""PILCO's saturating cost on a task-space point, plus an optional control penalty.

    .. math::

        z(x) = C\,\phi(x) + d, \qquad
        \phi(x) = \begin{bmatrix} x \\ \sin(Lx + o) \\ \cos(Lx + o) \end{bmatrix},

        c(x) = 1 - \exp\!\Big(-\frac{\lVert z(x) - z^*\rVert_W^2}{2\sigma_c^2}\Big),
        \qquad \ell(x, u) = c(x) + \tfrac12 u^\top R u, \qquad \ell_T(x) = c(x).

    Without angles (``L`` omitted) :math:`z` is affine in :math:`x` and the
    Gaussian moments of :math:`c` are exact (Deisenroth 2010):

    .. math::

        \mathbb E[c] = 1 - \det(I + \Sigma_z \tilde W)^{-1/2}
            \exp\!\big(-\tfrac12 (\mu_z - z^*)^\top \tilde W (I + \Sigma_z\tilde W)^{-1}
            (\mu_z - z^*)\big), \quad \tilde W = W/\sigma_c^2,

    with :math:`\mathbb E[c^2]` from the same formula with :math:`2\tilde W`.
    With angles, :math:`\phi(x)` is replaced by the Gaussian with its exact
    mean and covariance (:func:`~gpcontrol.gaussian.trig_moments`) before the
    formula is applied, PILCO's approach; the moments are then an
    approximation (exact as :math:`\Sigma \to 0`).

    Parameters
    ----------
    C : array_like, shape (p, n + 2k)
        Task map on the features :math:`\phi` (``(p, n)`` without angles).
    d : array_like, shape (p,), optional
        Task offset, default 0.
    target : array_like, shape (p,), optional
        :math:`z^*`, default 0.
    width : float
        :math:`\sigma_c > 0`.
    W : array_like, shape (p, p), optional
        Symmetric positive semi-definite, nonzero; default identity.
    L : array_like, shape (k, n), optional
        Angle map: the angles are :math:`Lx + o`.
    offset : array_like, shape (k,), optional
        :math:`o`, default 0 (needs ``L``).
    R : array_like, shape (m, m), optional
        Control weight (positive semi-definite); default zero, which needs ``m``.
    m : int, optional
        Control dimension when ``R`` is omitted.

    Examples
    --------
    >>> from gpcontrol.systems import CartPole
    >>> cost = SaturatingCost.pole_tip(CartPole())
    >>> float(cost.l_T([0.0, 3.141592653589793, 0.0, 0.0]))  # pole upright: no cost
    0.0
    """

    def __init__(
        self,
        C: ArrayLike,
        d: ArrayLike | None = None,
        *,
        target: ArrayLike | None = None,
        width: float = 1.0,
        W: ArrayLike | None = None,
        L: ArrayLike | None = None,
        offset: ArrayLike | None = None,
        R: ArrayLike | None = None,
        m: int | None = None,
    ) -> None:
        Ca = _matrix("C", C, "(p, n + 2k)")
        p, q = Ca.shape
        if p == 0:
            raise ValueError("C must have at least one row")
        if L is None:
            if offset is not None:
                raise ValueError("offset needs the angle map L")
            n, La = q, np.zeros((0, q))
        else:
            La = _matrix("L", L, "(k, n)")
            n = La.shape[1]
            if q != n + 2 * La.shape[0]:
                raise ValueError(
                    f"C must have n + 2k = {n + 2 * La.shape[0]} columns for L of shape "
                    f"{La.shape} (features [x, sin, cos]), got {q}"
                )
        if n == 0:
            raise ValueError("the state dimension must be at least 1")
        k = La.shape[0]
        oa = np.zeros(k) if offset is None else _vector("offset", offset, k)
        da = np.zeros(p) if d is None else _vector("d", d, p)
        za = np.zeros(p) if target is None else _vector("target", target, p)
        self.width = check_positive("width", width)
        Wa = np.eye(p) if W is None else _psd("W", W, p)
        if R is None:
            if m is None:
                raise ValueError("give the control dimension m (or a control weight R)")
            m = _dim("m", m)
            Ra = np.zeros((m, m))
        else:
            Ra = _psd("R", R, None if m is None else _dim("m", m))
            m = Ra.shape[0]
            if m == 0:
                raise ValueError("R must be at least 1 x 1")
        lam, V = np.linalg.eigh(Wa)
        keep = lam > 1e-12 * max(float(lam.max()), 0.0)
        if not keep.any():
            raise ValueError("W must not be zero")
        F = np.sqrt(lam[keep])[:, None] * V[:, keep].T / self.width  # F^T F = W / width^2
        self.C, self.d, self.target, self.W = Ca, da, za, Wa
        self.L, self.offset, self.R = La, oa, Ra
        form = _StateForm(n, La, oa, 1.0, _Quadratic(q, ()), ((-1.0, F @ Ca, F @ (za - da)),))
        super().__init__(n, m, form, form, _Quadratic(m, ((Ra, np.zeros(m)),)))

    def task_point(self, x: ArrayLike) -> Array:
        r"""Task-space point :math:`z(x) = C\phi(x) + d`; ``x (..., n) -> (..., p)``."""
        xa = as_batch("x", x, self.n, what="state")
        a = xa @ self.L.T + self.offset
        return np.concatenate([xa, np.sin(a), np.cos(a)], axis=-1) @ self.C.T + self.d

    def __repr__(self) -> str:
        return (
            f"SaturatingCost(n={self.n}, m={self.m}, p={self.C.shape[0]}, "
            f"angles={self.L.shape[0]}, width={self.width})"
        )

    @classmethod
    def pole_tip(
        cls, system: CartPole, width: float = 0.25, *, R: ArrayLike | None = None
    ) -> SaturatingCost:
        r"""Distance of the cart-pole's pole tip to its upright position above ``p = 0``.

        .. math::

            z = \begin{bmatrix} p + l\sin\theta \\ -l\cos\theta \end{bmatrix},
            \qquad z^* = \begin{bmatrix} 0 \\ l \end{bmatrix},

        with :math:`l` the pole length (PILCO's cart-pole cost, width 0.25 in
        Deisenroth et al. 2015).

        Parameters
        ----------
        system : CartPole
        width : float
            :math:`\sigma_c`, metres.
        R : array_like, shape (1, 1), optional
            Control penalty.
        """
        if not isinstance(system, CartPole):
            raise TypeError(f"system must be a CartPole, got {type(system).__name__}")
        params: Any = system.params
        l = params.pole_length
        C = np.zeros((2, 6))
        C[0, 0], C[0, 4], C[1, 5] = 1.0, l, -l
        return cls(C, target=[0.0, l], width=width, L=[[0.0, 1.0, 0.0, 0.0]], R=R, m=system.m)

    @classmethod
    def pendulum_tip(
        cls, system: Pendulum, width: float = 0.5, *, R: ArrayLike | None = None
    ) -> SaturatingCost:
        r"""Distance of the pendulum's tip to its upright position.

        .. math::

            z = l \begin{bmatrix} \sin\theta \\ -\cos\theta \end{bmatrix},
            \qquad z^* = \begin{bmatrix} 0 \\ l \end{bmatrix},

        with :math:`l` the pendulum length (PILCO's pendulum cost).

        Parameters
        ----------
        system : Pendulum
        width : float
            :math:`\sigma_c`, metres.
        R : array_like, shape (1, 1), optional
        """
        if not isinstance(system, Pendulum):
            raise TypeError(f"system must be a Pendulum, got {type(system).__name__}")
        params: Any = system.params
        l = params.length
        C = np.zeros((2, 4))
        C[0, 2], C[1, 3] = l, -l
        return cls(C, target=[0.0, l], width=width, L=[[1.0, 0.0]], R=R, m=system.m)

    @classmethod
    def end_effector(
        cls,
        system: PlanarArm | DoublePendulum,
        target: ArrayLike,
        width: float,
        *,
        R: ArrayLike | None = None,
    ) -> SaturatingCost:
        r"""Distance of a planar chain's tip to a target point.

        With relative joint angles, link :math:`i` points at
        :math:`\varphi_i = \varphi_0 + \sum_{j \le i} q_j` and

        .. math::

            z = \sum_i l_i \begin{bmatrix}\cos\varphi_i \\ \sin\varphi_i\end{bmatrix},

        so :math:`L` is lower-triangular ones on the ``q`` block and
        :math:`o = \varphi_0`.

        Parameters
        ----------
        system : PlanarArm or DoublePendulum
        target : array_like, shape (2,)
            Target tip position, metres.
        width : float
            :math:`\sigma_c`, metres.
        R : array_like, shape (m, m), optional
        """
        if not isinstance(system, PlanarArm | DoublePendulum):
            raise TypeError(
                f"system must be a PlanarArm or DoublePendulum, got {type(system).__name__}"
            )
        p: Any = system.params
        N, n = p.n_links, system.n
        L = np.zeros((N, n))
        L[:, :N] = np.tril(np.ones((N, N)))
        C = np.zeros((2, n + 2 * N))
        C[0, n + N :] = p.lengths  # x: sum l_i cos(phi_i)
        C[1, n : n + N] = p.lengths  # y: sum l_i sin(phi_i)
        return cls(
            C,
            target=_vector("target", target, 2),
            width=width,
            L=L,
            offset=np.full(N, p.base_angle),
            R=R,
            m=system.m,
        )


# ------------------------------------------------------------ combinations
class SumCost(Cost):
    r"""Sum of costs: :math:`\ell = \sum_i \ell_i`, :math:`\ell_T = \sum_i \ell_{T,i}`.

    Derivatives add. For Gaussian moments the expectations add and the
    variance includes every cross-covariance,

    .. math::

        \operatorname{Var}\Big[\sum_i c_i\Big] = \sum_{i,j} \operatorname{Cov}[c_i, c_j],

    which is available in closed form when every term is a built-in cost (they
    are merged into one canonical form sharing the trigonometric features).

    Parameters
    ----------
    *terms : Cost
        At least one; all with the same ``n`` and ``m``. Nested sums are
        flattened.
    """

    def __init__(self, *terms: Cost) -> None:
        flat: list[Cost] = []
        for i, t in enumerate(terms):
            if not isinstance(t, Cost):
                raise TypeError(f"terms[{i}] must be a Cost, got {type(t).__name__}")
            flat.extend(t.terms if isinstance(t, SumCost) else [t])
        if not flat:
            raise ValueError("SumCost needs at least one term")
        self.n, self.m = flat[0].n, flat[0].m
        for i, t in enumerate(flat):
            if (t.n, t.m) != (self.n, self.m):
                raise ValueError(
                    f"all terms must have (n, m) = ({self.n}, {self.m}); term {i} "
                    f"({type(t).__name__}) has ({t.n}, {t.m})"
                )
        self.terms: tuple[Cost, ...] = tuple(flat)
        forms = [t._forms() for t in flat]
        self._impl: _FormCost | None = None
        if all(f is not None for f in forms):
            fs = [f for f in forms if f is not None]
            control = _Quadratic(self.m, tuple(q for f in fs for q in f[2].terms))
            self._impl = _FormCost(
                self.n,
                self.m,
                _StateForm.merge([f[0] for f in fs]),
                _StateForm.merge([f[1] for f in fs]),
                control,
            )

    def _forms(self) -> tuple[_StateForm, _StateForm, _Quadratic] | None:
        return None if self._impl is None else self._impl._forms()

    def _l(self, x: Array, u: Array) -> Array:
        if self._impl is not None:
            return self._impl._l(x, u)
        return sum((t._l(x, u) for t in self.terms), np.zeros(x.shape[:-1]))

    def _l_T(self, x: Array) -> Array:  # noqa: N802 - math name
        if self._impl is not None:
            return self._impl._l_T(x)
        return sum((t._l_T(x) for t in self.terms), np.zeros(x.shape[:-1]))

    def _quadratize(self, x: Array, u: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        if self._impl is not None:
            return self._impl._quadratize(x, u)
        parts = [t._quadratize(x, u) for t in self.terms]
        return tuple(sum(p[i] for p in parts) for i in range(6))  # type: ignore[return-value]

    def _quadratize_terminal(self, x: Array) -> tuple[Array, Array, Array]:
        if self._impl is not None:
            return self._impl._quadratize_terminal(x)
        parts = [t._quadratize_terminal(x) for t in self.terms]
        return tuple(sum(p[i] for p in parts) for i in range(3))  # type: ignore[return-value]

    def _casadi(self, x: Any, u: Any) -> Any:
        return sum(t._casadi(x, u) for t in self.terms)

    def _casadi_terminal(self, x: Any) -> Any:
        return sum(t._casadi_terminal(x) for t in self.terms)

    def _moments(self, mean: Tensor, cov: Tensor, terminal: bool) -> CostMoments:
        if self._impl is not None:
            return self._impl._moments(mean, cov, terminal)
        if len(self.terms) == 1:
            return self.terms[0]._moments(mean, cov, terminal)
        raise NotImplementedError(
            "the variance of a sum needs the cross-covariances of its terms, which are known "
            "only for built-in costs; terms here: "
            + ", ".join(type(t).__name__ for t in self.terms)
        )

    def __repr__(self) -> str:
        return " + ".join(repr(t) for t in self.terms)


class ScaledCost(Cost):
    r"""A cost times a real number: :math:`s\ell`, :math:`s\ell_T`.

    Derivatives scale by :math:`s`; moments by :math:`\mathbb E \to s\mathbb E`,
    :math:`\operatorname{Var} \to s^2 \operatorname{Var}`.

    Parameters
    ----------
    cost : Cost
    scale : float
        Finite real :math:`s` (a negative one turns a cost into a reward).
    """

    def __init__(self, cost: Cost, scale: float) -> None:
        if not isinstance(cost, Cost):
            raise TypeError(f"cost must be a Cost, got {type(cost).__name__}")
        s = float(scale)
        if not math.isfinite(s):
            raise ValueError(f"scale must be a finite number, got {scale!r}")
        if isinstance(cost, ScaledCost):
            s = s * cost.scale
            cost = cost.cost
        self.cost: Cost = cost
        self.scale: float = s
        self.n, self.m = cost.n, cost.m
        forms = cost._forms()
        self._impl: _FormCost | None = None
        if forms is not None:
            run, term, ctrl = forms
            self._impl = _FormCost(self.n, self.m, run.scaled(s), term.scaled(s), ctrl.scaled(s))

    def _forms(self) -> tuple[_StateForm, _StateForm, _Quadratic] | None:
        return None if self._impl is None else self._impl._forms()

    def _l(self, x: Array, u: Array) -> Array:
        if self._impl is not None:
            return self._impl._l(x, u)
        return self.scale * self.cost._l(x, u)

    def _l_T(self, x: Array) -> Array:  # noqa: N802 - math name
        if self._impl is not None:
            return self._impl._l_T(x)
        return self.scale * self.cost._l_T(x)

    def _quadratize(self, x: Array, u: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        if self._impl is not None:
            return self._impl._quadratize(x, u)
        return tuple(self.scale * a for a in self.cost._quadratize(x, u))  # type: ignore[return-value]

    def _quadratize_terminal(self, x: Array) -> tuple[Array, Array, Array]:
        if self._impl is not None:
            return self._impl._quadratize_terminal(x)
        return tuple(self.scale * a for a in self.cost._quadratize_terminal(x))  # type: ignore[return-value]

    def _casadi(self, x: Any, u: Any) -> Any:
        return self.scale * self.cost._casadi(x, u)

    def _casadi_terminal(self, x: Any) -> Any:
        return self.scale * self.cost._casadi_terminal(x)

    def _moments(self, mean: Tensor, cov: Tensor, terminal: bool) -> CostMoments:
        if self._impl is not None:
            return self._impl._moments(mean, cov, terminal)
        E, V = self.cost._moments(mean, cov, terminal)
        return CostMoments(self.scale * E, self.scale**2 * V)

    def __repr__(self) -> str:
        return f"{self.scale!r} * {self.cost!r}"
