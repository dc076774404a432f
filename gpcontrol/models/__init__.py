"""Learned dynamics models and exact moment matching of Gaussian inputs.

* :mod:`gpcontrol.models.gp` -- :class:`GPDynamics`, one SE-ARD GP per state
  dimension on gpytorch, trained on state differences.
* :mod:`gpcontrol.models.sparse` -- SGPR and FITC objectives and posteriors
  (used by :class:`GPDynamics` past its ``sparse_threshold``).
* :mod:`gpcontrol.models.moments` -- exact mean, covariance and input-output
  covariance of a multi-output SE-ARD GP (exact or sparse) at a Gaussian input.
* :mod:`gpcontrol.models.propagation` -- squashed-control moments and
  one-step / multi-step belief propagation (PILCO), plus a particle reference;
  :mod:`gpcontrol.models.approximate` -- linearised (EKF) and unscented
  propagation behind the same interface.
* :mod:`gpcontrol.models.tvlg` -- time-varying linear-Gaussian dynamics fitted
  from a few trajectories with a Gaussian-mixture (normal-inverse-Wishart)
  prior; :mod:`gpcontrol.models.gmm` -- the mixture itself.
"""

from gpcontrol.models.approximate import (
    linearized_transform,
    propagate_joint,
    propagate_linearized,
    propagate_unscented,
    unscented_transform,
)
from gpcontrol.models.gmm import GaussianMixture, fit_gmm, select_gmm
from gpcontrol.models.gp import GPDynamics, GPFitReport
from gpcontrol.models.moments import GPMoments, GPTerms, moment_match
from gpcontrol.models.propagation import (
    BeliefTrajectory,
    ControlMoments,
    PolicyMoments,
    linear_policy_moments,
    particle_noise,
    propagate,
    propagate_horizon,
    propagate_particles,
    squash_moments,
    squashed,
)
from gpcontrol.models.tvlg import (
    DynamicsPrior,
    TVLGDynamics,
    conditional_gaussian_fit,
    default_components,
    fit_tvlg,
    transition_tuples,
)

__all__ = [
    "GPDynamics",
    "GPFitReport",
    "GPMoments",
    "GPTerms",
    "moment_match",
    "BeliefTrajectory",
    "ControlMoments",
    "PolicyMoments",
    "linear_policy_moments",
    "particle_noise",
    "propagate",
    "propagate_horizon",
    "propagate_particles",
    "squash_moments",
    "squashed",
    "propagate_linearized",
    "propagate_unscented",
    "propagate_joint",
    "unscented_transform",
    "linearized_transform",
    "TVLGDynamics",
    "DynamicsPrior",
    "fit_tvlg",
    "transition_tuples",
    "conditional_gaussian_fit",
    "default_components",
    "GaussianMixture",
    "fit_gmm",
    "select_gmm",
]
