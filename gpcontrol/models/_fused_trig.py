r"""Trigonometric feature moments as one autograd node (the per-step glue of a PILCO horizon).

Problem. For a Gaussian :math:`x \sim \mathcal N(\mu, \Sigma)`, :math:`x \in \mathbb R^n`,
angles :math:`a = x_{\text{ang}} \in \mathbb R^k` and the features

.. math::

    z = \big[\,[x, \sin a, \cos a]_i\,\big]_{i \in \text{idx}} \in \mathbb R^D

(any selection ``idx`` of the augmented vector :math:`\phi = [x, \sin a, \cos a]`), return
:math:`\mathbb E[z]`, :math:`\operatorname{cov}(z)` (the exact moments of
:func:`gpcontrol.gaussian.trig_moments`, rows and columns ``idx``) and

.. math::

    J = \Sigma^{-1}\operatorname{cov}(x, z) = \mathbb E[\partial z/\partial x]^\top
      = \big[\,I_n,\ E_{\text{ang}}\operatorname{diag}(\mathbb E\cos a),\
        -E_{\text{ang}}\operatorname{diag}(\mathbb E\sin a)\,\big]_{:, \text{idx}}
      \in \mathbb R^{n\times D}

(Stein's lemma; :math:`E_{\text{ang}}` the columns ``ang`` of :math:`I_n`), so that
:math:`\operatorname{cov}(x, z) = \Sigma J` needs no inverse. One call covers the three
uses in a step of :func:`gpcontrol.models.propagate_horizon`: a policy's features of the
state, the GP's features of :math:`[x, u]`, and the sine squashing of a control
(``ang`` all of :math:`\tilde u`, ``idx`` the sines).

Implementation: one :class:`torch.autograd.Function` (instead of the about eighty
recorded nodes of the composed :func:`gpcontrol.gaussian._trig_moments` plus its
slices) whose forward pass and hand-written reverse-mode derivative run in NumPy: for
the few-dimensional beliefs of a horizon the cost of a step is the number of
operations, not their arithmetic, and a NumPy operation on a 7 x 7 array dispatches
about three times faster than a torch one. The input covariance is symmetrised first,
so the function and its gradient are defined for any square ``S``. Second derivatives
go through autograd of the torch twin :func:`_parts`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from gpcontrol.gaussian import _e_expm1

__all__: list[str] = []


class TrigPlan(NamedTuple):
    """Index constants of one feature map (see :func:`trig_plan`)."""

    n: int
    ang: Tensor  # (k,) angle positions in x
    idx: Tensor  # (D,) positions of z in phi = [x, sin a, cos a]
    row: Tensor  # (D, 1) idx as a column
    J_pos: Tensor  # (2k,) flat positions in J_full (n, n + 2k) of the sin and cos entries
    eye: Tensor  # (n, n + 2k) J_full without its trig entries
    np_ang: NDArray[np.intp]  # the same four index sets as NumPy arrays
    np_idx: NDArray[np.intp]
    np_row: NDArray[np.intp]
    np_J_pos: NDArray[np.intp]


_PLANS: dict[tuple[int, tuple[int, ...], tuple[int, ...]], TrigPlan] = {}


def trig_plan(n: int, ang: tuple[int, ...], idx: tuple[int, ...]) -> TrigPlan:
    """Constants of ``z = phi(x)[idx]``, ``phi = [x, sin x_ang, cos x_ang]`` (cached)."""
    key = (n, ang, idx)
    if key not in _PLANS:
        k = len(ang)
        a = np.asarray(ang, dtype=np.intp)
        i = np.asarray(idx, dtype=np.intp)
        J_pos = np.concatenate([a, a]) * (n + 2 * k) + np.arange(n, n + 2 * k)
        eye = torch.zeros(n, n + 2 * k, dtype=torch.float64)
        eye[:, :n] = torch.eye(n, dtype=torch.float64)
        t = torch.from_numpy
        _PLANS[key] = TrigPlan(n, t(a), t(i), t(i[:, None]), t(J_pos), eye, a, i, i[:, None], J_pos)
    return _PLANS[key]


def trig_features(mu: Tensor, S: Tensor, plan: TrigPlan) -> tuple[Tensor, Tensor, Tensor]:
    """``E[z] (D,)``, ``cov(z) (D, D)``, ``J (n, D)`` for ``x ~ N(mu (n,), S (n, n))``."""
    out: tuple[Tensor, Tensor, Tensor] = _TrigFeatures.apply(mu, S, plan)
    return out


def _parts(mu: Tensor, S: Tensor, plan: TrigPlan) -> tuple[Tensor, ...]:
    """Torch twin of :func:`_np_forward` (outputs only), differentiated for second derivatives."""
    ang = plan.ang
    S = 0.5 * (S + S.mT)
    ma = mu[ang]  # (k,)
    C = S[:, ang]  # cov(x, a), (n, k)
    Sa = C[ang]  # (k, k)
    va = Sa.diagonal()
    e = torch.exp(-0.5 * va)
    Es, Ec = e * torch.sin(ma), e * torch.cos(ma)
    dsum = va[:, None] + va[None, :]
    Pp, Pm = _e_expm1(Sa, dsum), _e_expm1(-Sa, dsum)  # e_i e_j (exp(+-s_ij) - 1)
    msum = ma[:, None] + ma[None, :]
    mdiff = ma[:, None] - ma[None, :]
    PpCd, PmCs = Pp * torch.cos(mdiff), Pm * torch.cos(msum)
    Css = 0.5 * (PpCd - PmCs)
    Ccc = 0.5 * (PpCd + PmCs)
    Csc = 0.5 * (Pm * torch.sin(msum) + Pp * torch.sin(mdiff))
    Cxs, Cxc = C * Ec, -C * Es
    cov = torch.cat(
        [
            torch.cat([S, Cxs, Cxc], 1),
            torch.cat([Cxs.mT, Css, Csc], 1),
            torch.cat([Cxc.mT, Csc.mT, Ccc], 1),
        ]
    )
    mean = torch.cat([mu, Es, Ec])
    J = plan.eye.flatten().index_put((plan.J_pos,), torch.cat([Ec, -Es])).view(plan.eye.shape)
    return mean[plan.idx], cov[plan.row, plan.idx], J[:, plan.idx]


def _np_forward(
    mu: NDArray[np.float64], S: NDArray[np.float64], plan: TrigPlan
) -> tuple[NDArray[np.float64], ...]:
    """:func:`_parts` in NumPy (outputs, then what the backward pass needs)."""
    n, ang = plan.n, plan.np_ang
    k = ang.shape[0]
    S = 0.5 * (S + S.T)
    ma = mu[ang]
    C = S[:, ang]
    Sa = C[ang]
    va = Sa.diagonal()
    e = np.exp(-0.5 * va)
    Es, Ec = e * np.sin(ma), e * np.cos(ma)
    # Pp, Pm = e_i e_j (exp(+-s_ij) - 1) = +-sign(s) exp(max(+-s, 0) - d/2) (1 - exp(-|s|)),
    # d = va_i + va_j >= 2 |s_ij|: no overflow and no cancellation (as gaussian._e_expm1)
    h = -0.5 * (va[:, None] + va)
    m1 = -np.expm1(-np.abs(Sa))
    sg = np.sign(Sa)
    Pp = sg * np.exp(np.maximum(Sa, 0.0) + h) * m1
    Pm = -sg * np.exp(np.maximum(-Sa, 0.0) + h) * m1
    md, ms = ma[:, None] - ma, ma[:, None] + ma
    cd, cs, sd, ss = np.cos(md), np.cos(ms), np.sin(md), np.sin(ms)
    PpCd, PmCs = Pp * cd, Pm * cs
    Csc = 0.5 * (Pm * ss + Pp * sd)
    w = n + 2 * k
    cov = np.empty((w, w))
    cov[:n, :n] = S
    cov[:n, n : n + k] = C * Ec
    cov[:n, n + k :] = C * -Es
    cov[n:, :n] = cov[:n, n:].T
    cov[n : n + k, n : n + k] = 0.5 * (PpCd - PmCs)
    cov[n + k :, n + k :] = 0.5 * (PpCd + PmCs)
    cov[n : n + k, n + k :] = Csc
    cov[n + k :, n : n + k] = Csc.T
    mean = np.concatenate([mu, Es, Ec])
    J = plan.eye.numpy().copy()
    J.flat[plan.np_J_pos] = np.concatenate([Ec, -Es])
    idx = plan.np_idx
    trig = (cd, cs, sd, ss)
    return mean[idx], cov[plan.np_row, idx], J[:, idx], C, Sa, h, Es, Ec, Pp, Pm, *trig


def _np_backward(
    plan: TrigPlan,
    saved: tuple[NDArray[np.float64], ...],
    gm: NDArray[np.float64],
    gc: NDArray[np.float64],
    gJ: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reverse-mode derivative of :func:`_np_forward` (gradients of ``mu`` and ``S``)."""
    C, Sa, h, Es, Ec, Pp, Pm, cd, cs, sd, ss = saved
    n, ang, idx = plan.n, plan.np_ang, plan.np_idx
    k = ang.shape[0]
    w = n + 2 * k
    s_, c_ = slice(n, n + k), slice(n + k, w)
    # scatter the output gradients back onto phi = [x, sin, cos]
    gmean = np.zeros(w)
    gmean[idx] = gm
    G = np.zeros((w, w))
    G[plan.np_row, idx] = gc
    gJf = np.zeros((n, w))
    gJf[:, idx] = gJ
    gJt = gJf.flat[plan.np_J_pos]  # gradients of the J entries Ec, -Es
    Gs = G + G.T  # the off-diagonal blocks appear twice in the symmetric covariance
    gmu = gmean[:n]
    gEs = gmean[s_] - gJt[k:]
    gEc = gmean[c_] + gJt[:k]
    gS = G[:n, :n]
    # Cxs = C Ec, Cxc = -C Es
    Gxs, Gxc = Gs[:n, s_], Gs[:n, c_]
    gC = Gxs * Ec - Gxc * Es
    gEc += (Gxs * C).sum(0)
    gEs -= (Gxc * C).sum(0)
    # Css = (Pp cd - Pm cs) / 2, Ccc = (Pp cd + Pm cs) / 2, Csc = (Pm ss + Pp sd) / 2
    Gss, Gcc = G[s_, s_], G[c_, c_]
    gPpCd, gPmCs = 0.5 * (Gss + Gcc), 0.5 * (Gcc - Gss)
    hsc = 0.5 * Gs[s_, c_]
    gPp = gPpCd * cd + hsc * sd
    gPm = gPmCs * cs + hsc * ss
    gmd = Pp * (hsc * cd - gPpCd * sd)  # of ma_i - ma_j
    gms = Pm * (hsc * cs - gPmCs * ss)  # of ma_i + ma_j
    gma = gms.sum(1) + gms.sum(0) + gmd.sum(1) - gmd.sum(0)
    # P+- = exp(-d/2) expm1(+-Sa): dP+-/dSa = +-exp(+-Sa - d/2), dP+-/dd = -P+-/2
    gSa = gPp * np.exp(Sa + h) - gPm * np.exp(h - Sa)
    gd = -0.5 * (gPp * Pp + gPm * Pm)
    # Es = e sin(ma), Ec = e cos(ma), e = exp(-va / 2)
    gma += gEs * Ec - gEc * Es
    gva = gd.sum(1) + gd.sum(0) - 0.5 * (gEs * Es + gEc * Ec)
    gSa.flat[:: k + 1] += gva
    # Sa = C[ang], C = S[:, ang], ma = mu[ang] (ang has no repeats)
    gC[ang] += gSa
    gS[:, ang] += gC
    gmu[ang] += gma
    return gmu, 0.5 * (gS + gS.T)


class _TrigFeatures(torch.autograd.Function):
    """:func:`trig_features` as one node: NumPy forward and hand-written backward.

    NumPy, because on these few-by-few arrays an operation costs its dispatch, about
    three times less in NumPy than in torch (CPU float64 only, as everywhere in a
    PILCO horizon). The torch twin :func:`_parts` is the reference and gives second
    derivatives.
    """

    @staticmethod
    def forward(ctx: Any, mu: Tensor, S: Tensor, plan: TrigPlan) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        # a non-finite belief gives non-finite features without NumPy warnings; the
        # horizon's one batched check reports it
        with np.errstate(invalid="ignore", over="ignore"):
            mz, cz, J, *saved = _np_forward(mu.detach().numpy(), S.detach().numpy(), plan)
        ctx.plan, ctx.np_saved = plan, saved
        ctx.save_for_backward(mu, S)
        return torch.from_numpy(mz), torch.from_numpy(cz), torch.from_numpy(J)

    @staticmethod
    def backward(ctx: Any, gm: Tensor, gc: Tensor, gJ: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        plan = ctx.plan
        mu, S = ctx.saved_tensors
        need = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the composed forward
            with torch.enable_grad():
                outs = _parts(mu, S, plan)[:3]
                wrt = [x for x, nd in zip((mu, S), need, strict=True) if nd]
                g = iter(torch.autograd.grad(outs, wrt, (gm, gc, gJ), create_graph=True))
            return (next(g) if need[0] else None), (next(g) if need[1] else None), None
        with np.errstate(invalid="ignore", over="ignore"):
            gmu, gS = _np_backward(
                plan, ctx.np_saved, gm.detach().numpy(), gc.detach().numpy(), gJ.detach().numpy()
            )
        return torch.from_numpy(gmu), torch.from_numpy(gS), None
