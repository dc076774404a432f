"""Policies and controllers: callables ``policy(x, t) -> u`` for rollouts.

* :mod:`gpcontrol.policies.linear_gaussian` -- :class:`LinearGaussianPolicy`,
  the time-varying controller :math:`u \\sim \\mathcal N(K_t x + k_t, C_t)` of
  guided policy search, and :func:`expected_kl` between two of them.
* :mod:`gpcontrol.policies.linear`, :mod:`gpcontrol.policies.rbf` -- PILCO's
  squashed affine and RBF-network policies with exact output moments for a
  Gaussian state.
* :mod:`gpcontrol.policies.mlp` -- :class:`GaussianMLPPolicy`, the torch MLP
  policy :math:`u \\sim \\mathcal N(\\mu_\\theta(x), \\Sigma_\\pi)` trained by guided policy
  search.
"""

from gpcontrol.policies.linear import LinearPolicy, feature_moments
from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy, expected_kl
from gpcontrol.policies.mlp import GaussianMLPPolicy, tanh_mlp, with_context
from gpcontrol.policies.rbf import RBFPolicy

__all__ = [
    "LinearGaussianPolicy",
    "expected_kl",
    "LinearPolicy",
    "RBFPolicy",
    "feature_moments",
    "GaussianMLPPolicy",
    "tanh_mlp",
    "with_context",
]
