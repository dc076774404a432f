"""Policies and controllers: callables ``policy(x, t) -> u`` for rollouts.

* :mod:`gpcontrol.policies.linear_gaussian` -- :class:`LinearGaussianPolicy`,
  the time-varying controller :math:`u \\sim \\mathcal N(K_t x + k_t, C_t)` of
  guided policy search, and :func:`expected_kl` between two of them.
"""

from gpcontrol.policies.linear_gaussian import LinearGaussianPolicy, expected_kl

__all__ = ["LinearGaussianPolicy", "expected_kl"]
