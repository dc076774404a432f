r"""Fast evaluation paths for iLQR/DDP: CasADi functions, optionally compiled to C.

A solver iteration needs, along a trajectory of length :math:`T`,

* the augmented local model ``F_t = [[A_t, 0, B_t], [0, 1, 0]]`` and cost
  matrix ``C_t = [[l_xx, l_x, l_xu], [l_x', 0, l_u'], [l_ux, l_u, l_uu]]``,
* (DDP) the second derivatives of every component of :math:`F`,
* closed-loop rollouts :math:`u_t = \Pi(\bar u_t + \alpha k_t + K_t(x_t - \bar x_t))`
  with their cost, and
* the backward Riccati pass.

When the dynamics are a CasADi-defined :class:`~gpcontrol.systems.System` and
the cost offers CasADi expressions, the first three are generated here as
CasADi functions over the whole horizon from the *same* expressions the
protocol methods evaluate. Calling CasADi from Python costs about 50 µs plus
0.15 µs per number converted, so when a C compiler is available the
functions are also generated as C (``casadi.CodeGenerator``), compiled once
into cached shared libraries (one for the dynamics, one for the cost, so that
a new cost reuses the compiled dynamics) and called through :mod:`ctypes` on
NumPy buffers, without conversion. DDP's second-order term is compiled as the
Hessian of :math:`w^\top F(x, u)` and called from the C backward pass with
:math:`w = V'_x` at every step, instead of materialising the tensor. The
backward pass has a C twin of :func:`gpcontrol.solvers.lqr._riccati_backward`
(including the projected-Newton box QP of :mod:`gpcontrol.solvers.boxqp`),
compiled the same way.

Nothing here is required: without a compiler (or with the environment
variable ``GPCONTROL_NO_COMPILE=1``) everything falls back to the CasADi
virtual machine and NumPy, with identical results up to rounding.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

__all__: list[str] = []

Array = NDArray[np.float64]
logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_FLAGS = ["-shared", "-fPIC", "-std=c99"]


# ---------------------------------------------------------------------------- compiling
def _cache_dir() -> Path:
    base = os.environ.get("GPCONTROL_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "gpcontrol" / "kernels"


def _compiler() -> str | None:
    if os.environ.get("GPCONTROL_NO_COMPILE", "") not in ("", "0"):
        return None
    if sys.platform.startswith("win"):
        return None
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    return os.environ.get("CC") or found


def compile_c(source: str, stem: str, opt: str = "-O2") -> ctypes.CDLL | None:
    """Compile C ``source`` to a cached shared library and load it; ``None`` if impossible.

    The library is cached under ``$GPCONTROL_CACHE`` (default
    ``~/.cache/gpcontrol/kernels``), keyed by a hash of the source, compiler
    and flags, and written atomically so concurrent processes can share it.
    """
    cc = _compiler()
    if cc is None:
        return None
    flags = [opt, *_FLAGS]
    digest = hashlib.sha256("\0".join([source, cc, *flags]).encode()).hexdigest()[:20]
    for directory in (_cache_dir(), Path(tempfile.gettempdir()) / f"gpcontrol-{os.getuid()}"):
        lib = directory / f"{stem}-{digest}.so"
        try:
            if not lib.exists():
                directory.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=directory) as tmp:
                    src = Path(tmp) / f"{stem}.c"
                    src.write_text(source)
                    out = Path(tmp) / f"{stem}.so"
                    proc = subprocess.run(
                        [cc, *flags, "-o", str(out), str(src), "-lm"],
                        capture_output=True,
                        text=True,
                        timeout=300,
                    )
                    if proc.returncode != 0:
                        logger.info("compiling %s failed: %s", stem, proc.stderr[-2000:])
                        return None
                    os.replace(out, lib)
            return ctypes.CDLL(str(lib))
        except (OSError, subprocess.SubprocessError) as exc:
            logger.info("cannot build %s in %s: %s", stem, directory, exc)
            continue
    return None


_P = ctypes.POINTER(ctypes.c_double)


def _ptr(a: np.ndarray) -> Any:
    return a.ctypes.data_as(_P)


class _Compiled:
    """A CasADi-generated C function called on fixed NumPy buffers.

    Inputs and outputs are dense, stored column-major as CasADi does, which is
    the C order of the transposed NumPy array: an input ``(k, T)`` is a
    ``(T, k)`` C-contiguous array.
    """

    def __init__(self, lib: ctypes.CDLL, fn: ca.Function) -> None:
        self.fn = getattr(lib, fn.name())
        self.fn.restype = ctypes.c_int
        self.ins = [np.zeros(fn.sparsity_in(i).shape[::-1]) for i in range(fn.n_in())]
        self.outs = [np.zeros(fn.sparsity_out(i).shape[::-1]) for i in range(fn.n_out())]
        for i in range(fn.n_in()):
            if not fn.sparsity_in(i).is_dense():
                raise ValueError("only dense inputs are supported")
        for i in range(fn.n_out()):
            if not fn.sparsity_out(i).is_dense():
                raise ValueError("only dense outputs are supported")
        self._arg = (_P * max(1, fn.sz_arg()))(*[_ptr(a) for a in self.ins])
        self._res = (_P * max(1, fn.sz_res()))(*[_ptr(a) for a in self.outs])
        self._iw = np.zeros(max(1, fn.sz_iw()), dtype=np.int64)
        self._w = np.zeros(max(1, fn.sz_w()))
        self._iw_p = self._iw.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong))
        self._w_p = _ptr(self._w)

    def __call__(self) -> None:
        if self.fn(self._arg, self._res, self._iw_p, self._w_p, 0) != 0:
            raise RuntimeError("compiled CasADi function reported an error")


class _FunctionPointer:
    """Address and work buffers of a CasADi-generated C function, for calls from C."""

    def __init__(self, lib: ctypes.CDLL, fn: ca.Function) -> None:
        cfun = getattr(lib, fn.name())
        self.address = ctypes.cast(cfun, ctypes.c_void_p).value
        self._arg = (ctypes.c_void_p * max(1, fn.sz_arg()))()
        self._res = (ctypes.c_void_p * max(1, fn.sz_res()))()
        self._iw = np.zeros(max(1, fn.sz_iw()), dtype=np.int64)
        self._w = np.zeros(max(1, fn.sz_w()))
        self.arg = ctypes.cast(self._arg, ctypes.c_void_p)
        self.res = ctypes.cast(self._res, ctypes.c_void_p)
        self.iw_p = ctypes.c_void_p(self._iw.ctypes.data)
        self.w_p = _ptr(self._w)


# ---------------------------------------------------------------------------- CasADi problem
def _rowmajor(M: Any) -> Any:
    """Dense column holding ``M`` row by row (NumPy's C order)."""
    return ca.densify(ca.reshape(M.T, M.numel(), 1))


def supports_casadi(dynamics: Any, cost: Any) -> bool:
    """True if the dynamics expose a CasADi map and the cost CasADi expressions."""
    return (
        isinstance(getattr(dynamics, "casadi_function", None), ca.Function)
        and hasattr(cost, "casadi")
        and hasattr(cost, "casadi_terminal")
        and not hasattr(dynamics, "step_at")
    )


class CasadiProblem:
    """The per-iteration evaluations of one ``(dynamics, cost, T)`` as CasADi functions.

    Parameters
    ----------
    F : casadi.Function
        Discrete map ``(x, u) -> x_next``.
    cost : Cost
        With ``casadi(x, u)`` and ``casadi_terminal(x)``.
    n, m, T : int
    second_order : bool
        Also build the DDP tensors.
    compile : bool
        Try to compile the functions to C.
    """

    def __init__(
        self, F: ca.Function, cost: Any, n: int, m: int, T: int, second_order: bool, compile: bool
    ) -> None:
        self.n, self.m, self.T = n, m, T
        N = n + 1 + m
        x = ca.SX.sym("x", n)
        u = ca.SX.sym("u", m)
        xn = F(x, u)
        A = ca.jacobian(xn, x)
        B = ca.jacobian(xn, u)
        l = cost.casadi(x, u)
        lT = cost.casadi_terminal(x)
        z = ca.vertcat(x, u)
        lzz, lz = ca.hessian(l, z)
        lx, lu = lz[:n], lz[n:]
        Faug = ca.vertcat(
            ca.horzcat(A, ca.SX.zeros(n, 1), B),
            ca.horzcat(ca.SX.zeros(1, n), ca.SX.ones(1, 1), ca.SX.zeros(1, m)),
        )
        Caug = ca.vertcat(
            ca.horzcat(lzz[:n, :n], lx, lzz[:n, n:]),
            ca.horzcat(lx.T, ca.SX.zeros(1, 1), lu.T),
            ca.horzcat(lzz[n:, :n], lu, lzz[n:, n:]),
        )
        lTxx, lTx = ca.hessian(lT, x)
        VT = ca.vertcat(ca.horzcat(lTxx, lTx), ca.horzcat(lTx.T, ca.SX.zeros(1, 1)))
        # Dynamics and cost are generated (and compiled) separately, so that a
        # new cost, e.g. a new target, reuses the compiled dynamics.
        dyn_expand = ca.Function("gpc_dyn_expand_step", [x, u], [_rowmajor(Faug)])
        self.f_dyn_expand = dyn_expand.map("gpc_dyn_expand", "serial", T, [], [])
        cost_expand = ca.Function("gpc_cost_expand_step", [x, u], [_rowmajor(Caug)])
        self.f_cost_expand = cost_expand.map("gpc_cost_expand", "serial", T, [], [])
        self.f_terminal = ca.Function("gpc_terminal", [x], [_rowmajor(VT)])
        self.f_second: ca.Function | None = None
        self.f_hw: ca.Function | None = None
        self.hw: _FunctionPointer | None = None
        if second_order:
            # Compiled DDP contracts the second derivatives with V'_x inside the
            # backward pass: Hessian of w' F (one reverse-over-forward sweep,
            # n times cheaper to generate and compile than the tensor).
            w = ca.SX.sym("w", n)
            self.f_hw = ca.Function(
                "gpc_hw", [x, u, w], [ca.densify(ca.hessian(ca.dot(w, xn), z)[0])]
            )
            blocks = []
            for i in range(n):
                Hi = ca.hessian(xn[i], z)[0]
                Hi = ca.vertcat(
                    ca.horzcat(Hi[:n, :n], ca.SX.zeros(n, 1), Hi[:n, n:]),
                    ca.SX.zeros(1, N),
                    ca.horzcat(Hi[n:, :n], ca.SX.zeros(m, 1), Hi[n:, n:]),
                )
                blocks.append(_rowmajor(Hi))
            second = ca.Function("gpc_second_step", [x, u], [ca.vertcat(*blocks)])
            self.f_second = second.map("gpc_second", "serial", T, [], [])
        # Closed-loop step: p = [x_nom, u_nom, K (row-major), k, lo, hi].
        p = ca.SX.sym("p", n + m + m * n + 3 * m)
        alpha = ca.SX.sym("alpha")
        xs, us = p[:n], p[n : n + m]
        Kt = ca.reshape(p[n + m : n + m + m * n], n, m).T
        kt = p[n + m + m * n : n + 2 * m + m * n]
        lo = p[n + 2 * m + m * n : n + 3 * m + m * n]
        hi = p[n + 3 * m + m * n :]
        uc = ca.fmin(ca.fmax(us + alpha * kt + ca.mtimes(Kt, x - xs), lo), hi)
        step = ca.Function("gpc_fwd_step", [x, p, alpha], [ca.densify(F(x, uc)), ca.densify(uc)])
        acc = step.mapaccum("gpc_fwd_acc", T, [0], [0])
        x0 = ca.MX.sym("x0", n)
        P = ca.MX.sym("P", p.numel(), T)
        a = ca.MX.sym("alpha")
        Xs, Us = acc(x0, P, a)
        self.f_forward = ca.Function(
            "gpc_forward", [x0, P, a], [ca.horzcat(x0, Xs), Us], ["x0", "P", "alpha"], ["X", "U"]
        )
        # Trajectory cost J(X, U) = sum_t l(x_t, u_t) + l_T(x_T).
        running = ca.Function("gpc_l", [x, u], [ca.densify(l)]).map(
            "gpc_l_map", "serial", T, [], []
        )
        terminal = ca.Function("gpc_lT", [x], [ca.densify(lT)])
        Xm = ca.MX.sym("X", n, T + 1)
        Um = ca.MX.sym("U", m, T)
        self.f_total = ca.Function(
            "gpc_total",
            [Xm, Um],
            [ca.sum2(running(Xm[:, :T], Um)) + terminal(Xm[:, T])],
            ["X", "U"],
            ["J"],
        )
        self.P = np.zeros((T, p.numel()))
        self._last: tuple[Any, ...] | None = None
        self.lock = threading.Lock()  # one solve at a time uses the buffers
        self.compiled = False
        if compile:
            dyn = [self.f_dyn_expand, self.f_forward]
            if self.f_hw is not None:
                dyn.append(self.f_hw)
            self._try_compile(dyn, [self.f_cost_expand, self.f_terminal, self.f_total])

    # ----------------------------------------------------------------- compiling
    @staticmethod
    def _library(funcs: list[ca.Function], stem: str) -> ctypes.CDLL | None:
        with tempfile.TemporaryDirectory() as tmp:
            gen = ca.CodeGenerator(
                f"{stem}.c", {"with_header": False, "casadi_int": "long long int"}
            )
            for f in funcs:
                gen.add(f)
            gen.generate(tmp + os.sep)
            source = (Path(tmp) / f"{stem}.c").read_text()
        # Long straight-line code: -O2 compiles about twice as slowly and runs no faster.
        with _LOCK:
            return compile_c(source, stem, "-O1")

    def _try_compile(self, dyn: list[ca.Function], cost: list[ca.Function]) -> None:
        dyn_lib = self._library(dyn, "gpc_dynamics")
        cost_lib = None if dyn_lib is None else self._library(cost, "gpc_cost")
        if dyn_lib is None or cost_lib is None:
            return
        try:
            self._c_dyn_expand = _Compiled(dyn_lib, self.f_dyn_expand)
            self._c_forward = _Compiled(dyn_lib, self.f_forward)
            self._c_cost_expand = _Compiled(cost_lib, self.f_cost_expand)
            self._c_terminal = _Compiled(cost_lib, self.f_terminal)
            self._c_total = _Compiled(cost_lib, self.f_total)
            if self.f_hw is not None:
                self.hw = _FunctionPointer(dyn_lib, self.f_hw)
        except (AttributeError, ValueError) as exc:  # pragma: no cover - defensive
            logger.info("compiled problem unusable: %s", exc)
            return
        self._libs = (dyn_lib, cost_lib)
        self.compiled = True

    # ----------------------------------------------------------------- evaluation
    def expand(self, X: Array, U: Array, F: Array, C: Array, VT: Array) -> None:
        """Fill ``F (T, n+1, N)``, ``C (T, N, N)``, ``VT (n+1, n+1)`` at the trajectory."""
        T = self.T
        if self.compiled:
            cd, cc, ct = self._c_dyn_expand, self._c_cost_expand, self._c_terminal
            cd.ins[0][...] = X[:-1]
            cd.ins[1][...] = U
            cd()
            F.reshape(T, -1)[...] = cd.outs[0]
            cc.ins[0][...] = X[:-1]
            cc.ins[1][...] = U
            cc()
            C.reshape(T, -1)[...] = cc.outs[0]
            ct.ins[0][...] = X[-1]
            ct()
            VT.reshape(-1)[...] = ct.outs[0].reshape(-1)
            return
        XT, UT = X[:-1].T, U.T
        F.reshape(T, -1)[...] = np.asarray(self.f_dyn_expand.call([XT, UT])[0]).T
        C.reshape(T, -1)[...] = np.asarray(self.f_cost_expand.call([XT, UT])[0]).T
        VT.reshape(-1)[...] = np.asarray(self.f_terminal.call([X[-1]])[0]).reshape(-1)

    def second(self, X: Array, U: Array, F2: Array) -> None:
        """Fill ``F2 (T, n, N, N)`` with the Hessians of every component of ``F``."""
        T = self.T
        if self.f_second is None:
            raise RuntimeError("second derivatives were not built")
        F2.reshape(T, -1)[...] = np.asarray(self.f_second.call([X[:-1].T, U.T])[0]).T

    def forward(
        self,
        x0: Array,
        X: Array,
        U: Array,
        K: Array | None,
        k: Array | None,
        alpha: float,
        lo: Array,
        hi: Array,
    ) -> tuple[Array, Array, float]:
        """Closed-loop rollout and its cost (``inf`` if not finite)."""
        n, m, T = self.n, self.m, self.T
        P = self._c_forward.ins[1] if self.compiled else self.P
        # The line search varies only alpha: rebuild the parameters when the
        # nominal trajectory or the policy changed.
        last = self._last
        if last is None or any(a is not b for a, b in zip(last, (X, U, K, k, lo, hi), strict=True)):
            P[:, :n] = X[:-1]
            P[:, n : n + m] = U
            if K is None:
                P[:, n + m : n + m + m * n] = 0.0
            else:
                P[:, n + m : n + m + m * n] = K.reshape(T, m * n)
            P[:, n + m + m * n : n + 2 * m + m * n] = 0.0 if k is None else k
            P[:, n + 2 * m + m * n : n + 3 * m + m * n] = lo
            P[:, n + 3 * m + m * n :] = hi
            self._last = (X, U, K, k, lo, hi)
        if self.compiled:
            cf, cj = self._c_forward, self._c_total
            cf.ins[0][...] = x0
            cf.ins[2][...] = alpha
            cf()
            Xn = cf.outs[0].copy()
            Un = cf.outs[1].copy()
            cj.ins[0][...] = Xn
            cj.ins[1][...] = Un
            cj()
            J = float(cj.outs[0][0, 0])
        else:
            Xo, Uo = self.f_forward.call([x0, P.T, alpha])
            Xn = np.asarray(Xo).T.copy()
            Un = np.asarray(Uo).T.reshape(T, m).copy()
            J = float(self.f_total.call([Xo, Uo])[0])
        # A non-finite state makes the cost non-finite (the cost is a sum over states).
        if not math.isfinite(J) or not math.isfinite(float(Xn.sum())):
            return Xn, Un, float("inf")
        return Xn, Un, J


# ---------------------------------------------------------------------------- C backward pass
_RICCATI_C = r"""
/* Backward Riccati pass of gpcontrol (augmented coordinates z = (x, 1, u)).
   C twin of gpcontrol.solvers.lqr._riccati_backward; see that docstring. */
#include <math.h>
#include <string.h>

static int chol_lower(double *a, int k)  /* in place, row-major k x k, lower factor */
{
    for (int j = 0; j < k; ++j) {
        double d = a[j * k + j];
        for (int p = 0; p < j; ++p) d -= a[j * k + p] * a[j * k + p];
        if (!(d > 0.0)) return 1;
        d = sqrt(d);
        a[j * k + j] = d;
        for (int i = j + 1; i < k; ++i) {
            double s = a[i * k + j];
            for (int p = 0; p < j; ++p) s -= a[i * k + p] * a[j * k + p];
            a[i * k + j] = s / d;
        }
        for (int i = 0; i < j; ++i) a[i * k + j] = 0.0;
    }
    return 0;
}

static void chol_solve(const double *L, int k, double *b)  /* L L' y = b, in place */
{
    for (int i = 0; i < k; ++i) {
        double s = b[i];
        for (int p = 0; p < i; ++p) s -= L[i * k + p] * b[p];
        b[i] = s / L[i * k + i];
    }
    for (int i = k - 1; i >= 0; --i) {
        double s = b[i];
        for (int p = i + 1; p < k; ++p) s -= L[p * k + i] * b[p];
        b[i] = s / L[i * k + i];
    }
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

static double qp_value(int m, const double *Hq, int ld, const double *g, const double *x)
{
    double v = 0.0;
    for (int i = 0; i < m; ++i) {
        double s = 0.0;
        for (int j = 0; j < m; ++j) s += Hq[i * ld + j] * x[j];
        v += x[i] * (0.5 * s + g[i]);
    }
    return v;
}

/* factor H[free][:, free] into L (nf x nf); returns 0 ok, 1 not PD */
static int factor_free(int m, const double *Hq, int ld, const unsigned char *fr, double *L, int *nf)
{
    int k = 0, idx[64];
    for (int i = 0; i < m; ++i) if (fr[i]) idx[k++] = i;
    for (int a = 0; a < k; ++a)
        for (int b = 0; b < k; ++b) L[a * k + b] = Hq[idx[a] * ld + idx[b]];
    *nf = k;
    return chol_lower(L, k);
}

/* Projected-Newton box QP (mirror of gpcontrol.solvers.boxqp._box_qp_full).
   Returns 1 on success, 0 if H is not PD on a free set. Writes x, fr, L, nf. */
static int box_qp(int m, const double *Hq, int ld, const double *g, const double *lo,
                  const double *hi, const double *x0, double *x, unsigned char *fr,
                  double *L, int *nf, double *wk)
{
    double *grad = wk, *dir = wk + m, *cand = wk + 2 * m, *rhs = wk + 3 * m;
    unsigned char fact_fr[64];
    int have = 0, i, j;
    double gn = 0.0;
    for (i = 0; i < m; ++i) { x[i] = clampd(x0 ? x0[i] : 0.0, lo[i], hi[i]); gn += g[i] * g[i]; }
    gn = sqrt(gn);
    double value = qp_value(m, Hq, ld, g, x);
    for (int it = 0; it < 100; ++it) {
        int nclamped = 0;
        for (i = 0; i < m; ++i) {
            double s = g[i];
            for (j = 0; j < m; ++j) s += Hq[i * ld + j] * x[j];
            grad[i] = s;
            int c = (x[i] <= lo[i] && s > 0.0) || (x[i] >= hi[i] && s < 0.0);
            fr[i] = (unsigned char)!c;
            nclamped += c;
        }
        if (nclamped == m) { *nf = 0; return 1; }
        int changed = !have;
        if (have) for (i = 0; i < m; ++i) if (fr[i] != fact_fr[i]) changed = 1;
        if (changed) {
            if (factor_free(m, Hq, ld, fr, L, nf)) return 0;
            memcpy(fact_fr, fr, (size_t)m);
            have = 1;
        }
        double gf = 0.0;
        for (i = 0; i < m; ++i) if (fr[i]) gf += grad[i] * grad[i];
        if (sqrt(gf) < 1e-10 * (gn > 1.0 ? gn : 1.0)) break;
        int k = 0;
        for (i = 0; i < m; ++i) if (fr[i]) {
            double s = g[i];
            for (j = 0; j < m; ++j) if (!fr[j]) s += Hq[i * ld + j] * x[j];
            rhs[k++] = s;
        }
        chol_solve(L, k, rhs);
        k = 0;
        double slope = 0.0;
        for (i = 0; i < m; ++i) {
            dir[i] = fr[i] ? -rhs[k++] - x[i] : 0.0;
            slope += dir[i] * grad[i];
        }
        if (slope >= 0.0) break;
        double step = 1.0, cv;
        for (;;) {
            for (i = 0; i < m; ++i) cand[i] = clampd(x[i] + step * dir[i], lo[i], hi[i]);
            cv = qp_value(m, Hq, ld, g, cand);
            if ((cv - value) / (step * slope) > 0.1) break;
            step *= 0.6;
            if (step < 1e-22) { memcpy(cand, x, sizeof(double) * (size_t)m); cv = value; break; }
        }
        double improvement = value - cv;
        memcpy(x, cand, sizeof(double) * (size_t)m);
        value = cv;
        if (improvement <= 1e-12 * (fabs(value) > 1.0 ? fabs(value) : 1.0)) break;
    }
    int nclamped = 0, changed = !have;
    for (i = 0; i < m; ++i) {
        double s = g[i];
        for (j = 0; j < m; ++j) s += Hq[i * ld + j] * x[j];
        int c = (x[i] <= lo[i] && s > 0.0) || (x[i] >= hi[i] && s < 0.0);
        fr[i] = (unsigned char)!c;
        nclamped += c;
        if (have && fr[i] != fact_fr[i]) changed = 1;
    }
    if (nclamped == m) { *nf = 0; return 1; }
    if (changed && factor_free(m, Hq, ld, fr, L, nf)) return 0;
    return 1;
}

typedef int (*casadi_fn)(const double **, double **, long long *, double *, int);

/* Returns -1 on success, or the step t whose (regularised) H_uu is not PD.
   DDP's second-order term comes either from the tensor F2 (T, n, N, N) or, when
   hw is given, from a CasADi-generated function hw(x_t, u_t, w) -> Hessian of
   w' F(x, u) with respect to (x, u), (n+m) x (n+m), evaluated at every step. */
int gpc_riccati_backward(int T, int n, int m, const double *F, const double *C,
                         const double *VT, double mu, int state_reg, const double *lower,
                         const double *upper, const double *kwarm, const double *F2,
                         const double *X, const double *U, void *hw, const double **hw_arg,
                         double **hw_res, long long *hw_iw, double *hw_w,
                         double *G, double *V, double *H, unsigned char *freemask,
                         double *dV, double *work)
{
    const int n1 = n + 1, N = n + 1 + m;
    double *FtV = work;                 /* N x n1 */
    double *Hu = FtV + N * n1;          /* m x N (regularised rows of H) */
    double *L = Hu + m * N;             /* m x m */
    double *HZ = L + m * m;             /* N x n1 */
    double *Vt = HZ + N * n1;           /* n1 x n1 */
    double *w = Vt + n1 * n1;           /* n */
    double *x = w + n;                  /* m */
    double *qpw = x + m;                /* 4 m */
    double *rhs = qpw + 4 * m;          /* m */
    double *hbuf = rhs + m;             /* (n+m) x (n+m) */
    unsigned char fr[64];
    int a, b, i, j;
    if (m > 64) return -2;
    memcpy(V + (size_t)T * n1 * n1, VT, sizeof(double) * (size_t)(n1 * n1));
    memset(G, 0, sizeof(double) * (size_t)T * m * n1);
    dV[0] = 0.0;
    dV[1] = 0.0;
    for (int t = T - 1; t >= 0; --t) {
        const double *Ft = F + (size_t)t * n1 * N, *Ct = C + (size_t)t * N * N;
        const double *Vn = V + (size_t)(t + 1) * n1 * n1;
        double *Ht = H + (size_t)t * N * N, *Gt = G + (size_t)t * m * n1;
        /* H = C + F' V F, exploiting the zeros of F (constant row, c = 0) and symmetry */
        memset(FtV, 0, sizeof(double) * (size_t)(N * n1));
        for (i = 0; i < n1; ++i)
            for (a = 0; a < N; ++a) {
                const double f = Ft[i * N + a];
                if (f == 0.0) continue;
                for (j = 0; j < n1; ++j) FtV[a * n1 + j] += f * Vn[i * n1 + j];
            }
        memcpy(Ht, Ct, sizeof(double) * (size_t)(N * N));
        for (a = 0; a < N; ++a)
            for (j = 0; j < n1; ++j) {
                const double f = FtV[a * n1 + j];
                if (f == 0.0) continue;
                for (b = a; b < N; ++b) Ht[a * N + b] += f * Ft[j * N + b];
            }
        for (a = 0; a < N; ++a)
            for (b = 0; b < a; ++b) Ht[a * N + b] = Ht[b * N + a];
        if (F2 || hw) {
            for (i = 0; i < n; ++i) {  /* gradient of V_{t+1} at the nominal next state */
                double s = 0.0;
                for (j = 0; j < n1; ++j) s += Vn[i * n1 + j] * Ft[j * N + n];
                w[i] = s;
            }
        }
        if (F2) {
            const double *F2t = F2 + (size_t)t * n * N * N;
            for (a = 0; a < N * N; ++a) {
                double s = 0.0;
                for (i = 0; i < n; ++i) s += w[i] * F2t[(size_t)i * N * N + a];
                Ht[a] += s;
            }
        } else if (hw) {
            const int nz = n + m;
            hw_arg[0] = X + (size_t)t * n;
            hw_arg[1] = U + (size_t)t * m;
            hw_arg[2] = w;
            hw_res[0] = hbuf;
            if (((casadi_fn)hw)(hw_arg, hw_res, hw_iw, hw_w, 0) != 0) return -3;
            for (a = 0; a < nz; ++a) {
                const int ia = a < n ? a : a + 1;
                for (b = 0; b < nz; ++b) {
                    const int ib = b < n ? b : b + 1;
                    Ht[ia * N + ib] += hbuf[b * nz + a];  /* column-major, symmetric */
                }
            }
        }
        memcpy(Hu, Ht + n1 * N, sizeof(double) * (size_t)(m * N));
        if (mu > 0.0) {
            if (state_reg) {
                for (a = 0; a < m; ++a)
                    for (b = 0; b < N; ++b) {
                        double s = 0.0;
                        for (i = 0; i < n; ++i) s += Ft[i * N + n1 + a] * Ft[i * N + b];
                        Hu[a * N + b] += mu * s;
                    }
            } else {
                for (a = 0; a < m; ++a) Hu[a * N + n1 + a] += mu;
            }
        }
        for (a = 0; a < m; ++a)
            for (b = 0; b < m; ++b) L[a * m + b] = Hu[a * N + n1 + b];
        if (lower == NULL) {
            if (chol_lower(L, m)) return t;
            for (j = 0; j < n1; ++j) {
                for (a = 0; a < m; ++a) rhs[a] = Hu[a * N + j];
                chol_solve(L, m, rhs);
                for (a = 0; a < m; ++a) Gt[a * n1 + j] = -rhs[a];
            }
        } else {
            const double *lo = lower + (size_t)t * m, *hi = upper + (size_t)t * m;
            double gq[64];
            int nf;
            for (a = 0; a < m; ++a) gq[a] = Hu[a * N + n];
            if (!box_qp(m, Hu + n1, N, gq, lo, hi, kwarm ? kwarm + (size_t)t * m : NULL, x, fr,
                        L, &nf, qpw))
                return t;
            for (a = 0; a < m; ++a) {
                Gt[a * n1 + n] = x[a];
                freemask[(size_t)t * m + a] = fr[a];
            }
            if (nf > 0) {
                for (j = 0; j < n; ++j) {
                    int k = 0;
                    for (a = 0; a < m; ++a) if (fr[a]) rhs[k++] = Hu[a * N + j];
                    chol_solve(L, nf, rhs);
                    k = 0;
                    for (a = 0; a < m; ++a) if (fr[a]) Gt[a * n1 + j] = -rhs[k++];
                }
            }
        }
        /* predicted reduction terms (unregularised): sum k' H_u1, sum k' H_uu k / 2 */
        for (a = 0; a < m; ++a) {
            const double ka = Gt[a * n1 + n];
            dV[0] += ka * Ht[(n1 + a) * N + n];
            for (b = 0; b < m; ++b) dV[1] += 0.5 * ka * Ht[(n1 + a) * N + n1 + b] * Gt[b * n1 + n];
        }
        /* value update with the unregularised H: V = Z' H Z, Z = [I; G] */
        for (a = 0; a < N; ++a)
            for (j = 0; j < n1; ++j) {
                double s = Ht[a * N + j];
                for (b = 0; b < m; ++b) s += Ht[a * N + n1 + b] * Gt[b * n1 + j];
                HZ[a * n1 + j] = s;
            }
        for (i = 0; i < n1; ++i)
            for (j = 0; j < n1; ++j) {
                double s = HZ[i * n1 + j];
                for (b = 0; b < m; ++b) s += Gt[b * n1 + i] * HZ[(n1 + b) * n1 + j];
                Vt[i * n1 + j] = s;
            }
        double *Vo = V + (size_t)t * n1 * n1;
        for (i = 0; i < n1; ++i)
            for (j = 0; j < n1; ++j) Vo[i * n1 + j] = 0.5 * (Vt[i * n1 + j] + Vt[j * n1 + i]);
    }
    return -1;
}
"""

_RICCATI_LIB: list[Any] = []  # [lib or None] once tried


def riccati_library() -> Any:
    """The compiled backward pass, or ``None`` without a compiler (tried once per process)."""
    if not _RICCATI_LIB:
        with _LOCK:
            if not _RICCATI_LIB:
                lib = compile_c(_RICCATI_C, "gpc_riccati")
                if lib is not None:
                    f = lib.gpc_riccati_backward
                    f.restype = ctypes.c_int
                    f.argtypes = [
                        ctypes.c_int,
                        ctypes.c_int,
                        ctypes.c_int,
                        _P,
                        _P,
                        _P,
                        ctypes.c_double,
                        ctypes.c_int,
                        _P,
                        _P,
                        _P,
                        _P,  # F2
                        _P,  # X
                        _P,  # U
                        ctypes.c_void_p,  # hw
                        ctypes.c_void_p,  # hw_arg
                        ctypes.c_void_p,  # hw_res
                        ctypes.c_void_p,  # hw_iw
                        _P,  # hw_w
                        _P,
                        _P,
                        _P,
                        ctypes.POINTER(ctypes.c_ubyte),
                        _P,  # dV
                        _P,  # work
                    ]
                _RICCATI_LIB.append(lib)
    return _RICCATI_LIB[0]


class CBackward:
    """The compiled backward pass with preallocated input and output buffers.

    The solver writes the model into :attr:`F`, :attr:`C`, :attr:`VT` (and
    :attr:`F2`, :attr:`lower`, :attr:`upper`, :attr:`k_warm`) and calls the
    object; results are left in :attr:`G`, :attr:`V`, :attr:`H`, :attr:`free`.
    """

    def __init__(
        self, lib: Any, T: int, n: int, m: int, second_order: bool, hw: Any = None
    ) -> None:
        n1, N = n + 1, n + 1 + m
        self.fn = lib.gpc_riccati_backward
        self.T, self.n, self.m = T, n, m
        self.F = np.zeros((T, n1, N))
        self.C = np.zeros((T, N, N))
        self.VT = np.zeros((n1, n1))
        # DDP: a compiled Hessian-of-w'F function if given, else the tensor F2.
        self.hw = hw
        self.F2 = np.zeros((T, n, N, N)) if second_order and hw is None else None
        self.X = np.zeros((T, n))
        self.U = np.zeros((T, m))
        self.lower = np.zeros((T, m))
        self.upper = np.zeros((T, m))
        self.k_warm = np.zeros((T, m))
        self.G = np.zeros((T, m, n1))
        self.V = np.zeros((T + 1, n1, n1))
        self.H = np.zeros((T, N, N))
        self.free = np.ones((T, m), dtype=np.uint8)
        self.dV = np.zeros(2)
        self.work = np.zeros(2 * N * n1 + m * N + m * m + n1 * n1 + n + 6 * m + (n + m) ** 2 + 8)
        null: Any = ctypes.cast(0, _P)
        self._fixed = (
            _ptr(self.F),
            _ptr(self.C),
            _ptr(self.VT),
        )
        self._bounds = (_ptr(self.lower), _ptr(self.upper))
        self._warm = _ptr(self.k_warm)
        self._F2 = null if self.F2 is None else _ptr(self.F2)
        self._hw: tuple[Any, ...]
        if hw is not None:
            self._hw = (
                _ptr(self.X),
                _ptr(self.U),
                ctypes.c_void_p(hw.address),
                hw.arg,
                hw.res,
                hw.iw_p,
                hw.w_p,
            )
        else:
            self._hw = (null, null, None, None, None, None, null)
        self._out = (
            _ptr(self.G),
            _ptr(self.V),
            _ptr(self.H),
            self.free.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)),
            _ptr(self.dV),
            _ptr(self.work),
        )
        self._null = null

    def __call__(self, mu: float, state_reg: bool, bounded: bool, warm: bool, second: bool) -> int:
        """Run the pass; returns -1 or the first step (from the end) whose H_uu is not PD."""
        null = self._null
        lo, hi = self._bounds if bounded else (null, null)
        return int(
            self.fn(
                self.T,
                self.n,
                self.m,
                *self._fixed,
                mu,
                1 if state_reg else 0,
                lo,
                hi,
                self._warm if warm else null,
                self._F2 if second else null,
                *(self._hw if second else (null, null, None, None, None, None, null)),
                *self._out,
            )
        )
