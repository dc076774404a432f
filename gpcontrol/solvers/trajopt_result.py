r"""The result of a trajectory optimisation: arrays, continuous interpolant, files.

A :class:`TrajoptResult` holds the knots :math:`x_k = x(t_k)`, the
piecewise-constant controls :math:`u(t) = u_k` on :math:`[t_k, t_{k+1})`, the
costates and IPOPT's report, and evaluates the state between the knots with the
transcription's own polynomial (:meth:`TrajoptResult.interpolate`): the
collocation polynomial of each interval, or for multiple shooting the cubic
Hermite polynomial with the one-sided slopes :math:`f(x_k, u_k)` and
:math:`f(x_{k+1}, u_k)`,

.. math::

    x(t_k + s h) \approx h_{00}(s) x_k + h_{10}(s)\, h f(x_k, u_k)
        + h_{01}(s) x_{k+1} + h_{11}(s)\, h f(x_{k+1}, u_k),\qquad s \in [0, 1].

Results are saved as one ``.npz`` file of arrays plus a JSON metadata string
(no pickles).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_float_array
from gpcontrol.solvers.collocation import hermite_basis, lagrange_basis

__all__ = ["TrajoptResult"]

Array = NDArray[np.float64]

_FORMAT = "gpcontrol.TrajoptResult/1"


@dataclasses.dataclass(frozen=True, eq=False)
class TrajoptResult:
    r"""Solution of :func:`~gpcontrol.solvers.trajopt.trajopt`.

    The plan is the piecewise-constant control and its state trajectory,

    .. math::

        u(t) = u_k \ \text{on}\ [t_k, t_{k+1}),\qquad t_k = k T / N,\qquad
        x(t_k) = x_k,

    with :meth:`interpolate` giving :math:`x(t)` in between.

    Attributes
    ----------
    X : ndarray, shape (N + 1, n)
        States at the knots :math:`t_k = k h`.
    U : ndarray, shape (N, m)
        Controls, held constant on :math:`[t_k, t_{k+1})`.
    t : ndarray, shape (N + 1,)
        Time grid.
    cost : float
        Objective value at the solution (see the module docstring for the scaling).
    status : {"solved", "infeasible", "max_iterations", "failed"}
    message : str
        IPOPT's return status (e.g. ``"Infeasible_Problem_Detected"``).
    iterations : int
        IPOPT iterations.
    constraint_violation : float
        Largest violation of any bound or constraint at the returned point.
    solve_time : float
        Wall time of the IPOPT call, s.
    build_time : float
        Time spent building the NLP and solver for this call, s (0 if reused).
    costates : ndarray, shape (N + 1, n)
        :math:`\lambda_k = \partial J^*/\partial x_k` from the multipliers of
        the initial-state and dynamics constraints.
    method : str
        ``"multiple_shooting"`` or ``"collocation"``.
    interpolation_error : float
        Max-norm gap between :meth:`interpolate` and an accurate integration of
        the ODE (RK4, 32 sub-steps per interval) from each knot with the
        interval's control, sampled at four points per interval.
    collocation_nodes : ndarray, shape (d + 1,)
        Nodes :math:`\tau` on ``[0, 1]`` (empty for multiple shooting).
    collocation_states : ndarray, shape (N, d, n)
        States at the collocation points (``d = 0`` for multiple shooting).
    knot_derivatives : ndarray, shape (N, 2, n)
        :math:`f(x_k, u_k)` and :math:`f(x_{k+1}, u_k)` (multiple shooting's
        cubic Hermite interpolant; empty for collocation).
    lam_w, lam_g : ndarray
        IPOPT's raw multipliers of the variable bounds and of the constraints
        (used to warm-start a re-solve of the same problem).
    """

    X: Array
    U: Array
    t: Array
    cost: float
    status: str
    message: str
    iterations: int
    constraint_violation: float
    solve_time: float
    build_time: float
    costates: Array
    method: str
    interpolation_error: float
    collocation_nodes: Array
    collocation_states: Array
    knot_derivatives: Array
    lam_w: Array
    lam_g: Array

    _ARRAYS = (
        "X",
        "U",
        "t",
        "costates",
        "collocation_nodes",
        "collocation_states",
        "knot_derivatives",
        "lam_w",
        "lam_g",
    )

    @property
    def success(self) -> bool:
        """``status == "solved"``."""
        return self.status == "solved"

    @property
    def final_time(self) -> float:
        """:math:`T`, seconds."""
        return float(self.t[-1])

    def _locate(self, t: ArrayLike) -> tuple[Array, NDArray[np.intp], Array]:
        ta = as_float_array("t", t)
        T, N = self.final_time, self.U.shape[0]
        if ta.size and (ta.min() < -1e-9 * T or ta.max() > T * (1 + 1e-9)):
            raise ValueError(f"t must lie in [0, {T}], got values in [{ta.min()}, {ta.max()}]")
        h = T / N
        k = np.clip(np.floor(ta / h).astype(np.intp), 0, N - 1)
        return ta, k, np.clip(ta / h - k, 0.0, 1.0)

    def interpolate(self, t: ArrayLike) -> Array:
        """Continuous state trajectory :math:`x(t)` between the knots.

        Collocation: the degree-``d`` Lagrange polynomial of each interval,
        :math:`x(t_k + s h) = \\sum_j \\ell_j(s) x_{k,j}`. Multiple shooting:
        the cubic Hermite polynomial matching :math:`x_k, x_{k+1}` and the
        one-sided derivatives :math:`f(x_k, u_k), f(x_{k+1}, u_k)`.

        Parameters
        ----------
        t : array_like, shape (...)
            Times in ``[0, T]``.

        Returns
        -------
        ndarray, shape (..., n)
        """
        ta, k, s = self._locate(t)
        if self.method == "collocation":
            nodes = np.concatenate([self.X[:-1, None, :], self.collocation_states], axis=1)
            L = lagrange_basis(self.collocation_nodes, s)
            return np.einsum("...j,...jn->...n", L, nodes[k])
        h = self.final_time / self.U.shape[0]
        H = hermite_basis(s)[..., None]
        f0, f1 = self.knot_derivatives[k, 0], self.knot_derivatives[k, 1]
        return (
            H[..., 0, :] * self.X[k]
            + H[..., 1, :] * h * f0
            + H[..., 2, :] * self.X[k + 1]
            + H[..., 3, :] * h * f1
        )

    def control(self, t: ArrayLike) -> Array:
        """Piecewise-constant control :math:`u(t) = u_k` on :math:`[t_k, t_{k+1})`; ``(..., m)``."""
        return self.U[self._locate(t)[1]]

    def save(self, path: str | Path) -> Path:
        """Write the result to a ``.npz`` file: arrays plus a JSON ``metadata`` string.

        No pickles: :meth:`load` reads it with ``allow_pickle=False``.

        Returns
        -------
        Path
            The file written (``.npz`` appended if missing).
        """
        out = Path(path)
        if out.suffix != ".npz":
            out = out.with_name(out.name + ".npz")
        meta = {"format": _FORMAT}
        for f in dataclasses.fields(self):
            if f.name not in self._ARRAYS:
                meta[f.name] = getattr(self, f.name)
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        np.savez(out, metadata=np.array(json.dumps(meta)), **arrays)
        return out

    @classmethod
    def load(cls, path: str | Path) -> TrajoptResult:
        """Read a result written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["metadata"]))
            if meta.pop("format", None) != _FORMAT:
                raise ValueError(f"{path} is not a saved TrajoptResult")
            fields: dict[str, Any] = {
                name: np.asarray(data[name], dtype=np.float64) for name in cls._ARRAYS
            }
        fields.update(meta)
        return cls(**fields)
