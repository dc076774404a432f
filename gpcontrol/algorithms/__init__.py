"""Learning algorithms built from models, policies and solvers.

* :mod:`gpcontrol.algorithms.gps` -- mirror-descent guided policy search
  (MDGPS) training a torch MLP policy from linear-Gaussian controllers.
* :mod:`gpcontrol.algorithms.pilco` -- PILCO: GP dynamics, moment-matching
  policy evaluation and L-BFGS policy search, in a resumable trial loop.
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
from gpcontrol.algorithms.pilco import (
    PILCOOptions,
    PILCOResult,
    TrialRecord,
    expected_return,
    optimise_policy,
    pilco,
)

__all__ = [
    "pilco",
    "PILCOOptions",
    "PILCOResult",
    "TrialRecord",
    "expected_return",
    "optimise_policy",
    "GaussianMLPPolicy",
    "MDGPSOptions",
    "mdgps",
    "linearize_policy",
    "policy_prior",
    "s_step_loss",
    "train_policy",
]
