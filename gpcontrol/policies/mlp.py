r"""Neural-network policies in torch: a tanh MLP mean with a Gaussian covariance.

The global policy of guided policy search
(:mod:`gpcontrol.algorithms.gps`) is

.. math::

    \pi_\theta(u \mid x) = \mathcal N\big(\mu_\theta(x), \Sigma_\pi\big),\qquad
    \mu_\theta(x) = W_L \tanh(\cdots \tanh(W_1 \tilde x + b_1) \cdots) + b_L,

with normalised inputs :math:`\tilde x = (x - o) / s`. A task may append a
context :math:`c` (e.g. a reaching target) to the state
(:func:`with_context`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from gpcontrol._validation import as_batch, as_float_array

__all__ = ["GaussianMLPPolicy", "tanh_mlp", "with_context"]

Array = NDArray[np.float64]
Tensor = torch.Tensor


def tanh_mlp(widths: Sequence[int], *, seed: int = 0) -> torch.nn.Sequential:
    """A float64 MLP ``widths[0] -> ... -> widths[-1]`` with tanh between linear layers.

    Initialised from ``seed`` without touching the global torch RNG.
    """
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for i in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))
            if i < len(widths) - 2:
                layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


class GaussianMLPPolicy(torch.nn.Module):
    r"""Global policy :math:`u \sim \mathcal N(\mu_\theta(x), \Sigma_\pi)` with a tanh MLP mean.

    .. math::

        \mu_\theta(x) = W_L \tanh(\cdots \tanh(W_1 \tilde x + b_1) \cdots) + b_L,
        \qquad \tilde x = (x - o) / s,

    with input offset :math:`o` and scale :math:`s` (buffers, set by
    :meth:`set_normalization`) and a covariance buffer :math:`\Sigma_\pi`
    (set by the S-step). float64 throughout.

    Parameters
    ----------
    n, m : int
        State and control dimensions.
    hidden : sequence of int
        Hidden layer widths; ``()`` gives an affine policy.
    seed : int
        Initialisation seed (the global torch RNG is left untouched).
    """

    def __init__(self, n: int, m: int, hidden: Sequence[int] = (64, 64), *, seed: int = 0):
        super().__init__()
        if n < 1 or m < 1:
            raise ValueError(f"n and m must be >= 1, got {n}, {m}")
        self.n, self.m = int(n), int(m)
        self.net = tanh_mlp([self.n, *(int(h) for h in hidden), self.m], seed=seed)
        self.register_buffer("offset", torch.zeros(self.n, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(self.n, dtype=torch.float64))
        self.register_buffer("cov", torch.eye(self.m, dtype=torch.float64))

    def set_normalization(self, X: ArrayLike) -> None:
        """Set the input offset and scale to the mean and standard deviation of ``X (..., n)``."""
        Xa = as_batch("X", X, self.n).reshape(-1, self.n)
        sd = Xa.std(0)
        sd = np.where(sd > 1e-8, sd, 1.0)
        self.offset.copy_(torch.from_numpy(Xa.mean(0)))  # type: ignore[operator]
        self.scale.copy_(torch.from_numpy(sd))  # type: ignore[operator]

    def forward(self, x: Tensor) -> Tensor:
        """Mean :math:`\\mu_\\theta(x)` for ``x (..., n)``."""
        return self.net((x - self.offset) / self.scale)  # type: ignore[operator]

    def mean(self, x: ArrayLike) -> Array:
        """:math:`\\mu_\\theta(x)` as NumPy, ``(..., n) -> (..., m)``."""
        xa = as_batch("x", x, self.n)
        with torch.no_grad():
            return self.forward(torch.from_numpy(np.ascontiguousarray(xa))).numpy()

    def controller(
        self,
        rng: int | np.random.Generator | None = None,
        *,
        deterministic: bool = False,
        context: ArrayLike | None = None,
    ) -> Any:
        """A callable ``(x, t) -> u`` for rollouts: the mean, or samples from ``rng``.

        With ``context (d,)`` the network sees ``[x, context]`` and ``x`` has
        ``n - d`` entries (see :func:`with_context`).
        """
        if not deterministic and rng is None:
            raise ValueError("pass rng= to sample, or deterministic=True")
        gen = None if deterministic else np.random.default_rng(rng)
        chol = np.linalg.cholesky(self.cov.numpy())  # type: ignore[operator]

        def act(x: ArrayLike, t: int) -> Array:
            mu = self.mean(x if context is None else with_context(x, context))
            if gen is None:
                return mu
            return mu + gen.standard_normal(mu.shape) @ chol.T

        return act


def with_context(X: ArrayLike, context: ArrayLike) -> Array:
    r"""Network input :math:`[x, c]`: the context ``c`` appended to every state.

    Parameters
    ----------
    X : array_like, shape (..., n)
    context : array_like, shape (..., d)
        Broadcast against the leading shape of ``X`` (e.g. ``(d,)`` for one
        condition, ``(M, 1, 1, d)`` for states ``(M, N, T, n)``).

    Returns
    -------
    ndarray, shape (..., n + d)
    """
    Xa = as_float_array("X", X)
    Ca = as_float_array("context", context)
    if Xa.ndim < 1 or Ca.ndim < 1:
        raise ValueError(f"X and context must have a last axis, got {Xa.shape} and {Ca.shape}")
    try:
        lead = np.broadcast_shapes(Xa.shape[:-1], Ca.shape[:-1])
    except ValueError:
        raise ValueError(
            f"context shape {Ca.shape} does not broadcast against X shape {Xa.shape}"
        ) from None
    return np.concatenate(
        [
            np.broadcast_to(Xa, (*lead, Xa.shape[-1])),
            np.broadcast_to(Ca, (*lead, Ca.shape[-1])),
        ],
        axis=-1,
    )
