"""Learning algorithms built from models, policies and solvers.

* :mod:`gpcontrol.algorithms.gps` -- mirror-descent guided policy search
  (MDGPS) training a torch MLP policy from linear-Gaussian controllers.
"""

from gpcontrol.algorithms.gps import (
    GaussianMLPPolicy,
    MDGPSOptions,
    linearize_policy,
    mdgps,
    policy_prior,
    s_step_loss,
    train_policy,
)

__all__ = [
    "GaussianMLPPolicy",
    "MDGPSOptions",
    "mdgps",
    "linearize_policy",
    "policy_prior",
    "s_step_loss",
    "train_policy",
]
