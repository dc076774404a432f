"""Learning algorithms built from models, policies and solvers.

* :mod:`gpcontrol.algorithms.gps` -- mirror-descent guided policy search
  (MDGPS) training a torch MLP policy from linear-Gaussian controllers.
* :mod:`gpcontrol.algorithms.reach` and :mod:`gpcontrol.algorithms.reach_run` --
  planar-arm reaching with MDGPS: end-effector cost, target-conditioned network,
  iLQR ceiling, and a resumable, checkpointed run with metrics and figures.
* :mod:`gpcontrol.algorithms.gps_env` and :mod:`gpcontrol.algorithms.reacher` --
  MDGPS sampling from any adapted Gymnasium env; Gymnasium's MuJoCo ``Reacher-v5``
  (needs ``mujoco``, imported lazily).
* :mod:`gpcontrol.algorithms.local_search` -- LQR-FLM: local time-varying
  linear-Gaussian models and KL-bounded LQG steps, without a global policy.
* :mod:`gpcontrol.algorithms.pilco` -- PILCO: GP dynamics, moment-matching
  policy evaluation and L-BFGS policy search, in a resumable trial loop.
"""

from gpcontrol.algorithms.gps import (
    MDGPSOptions,
    MDGPSState,
    RolloutSampler,
    StepPrediction,
    linearize_policy,
    mdgps,
    mdgps_init,
    mdgps_step,
    policy_prior,
    s_step_loss,
    train_policy,
)
from gpcontrol.algorithms.gps_env import EnvSampler
from gpcontrol.algorithms.local_search import (
    LocalSearchIteration,
    LocalSearchOptions,
    LocalSearchResult,
    local_search,
)
from gpcontrol.algorithms.pilco import (
    PILCOOptions,
    PILCOResult,
    TrialRecord,
    expected_return,
    optimise_policy,
    pilco,
)
from gpcontrol.algorithms.reach import (
    EndEffectorCost,
    ReachingPolicy,
    ReachingTask,
    ilqr_ceiling,
)
from gpcontrol.algorithms.reach_run import (
    ReachingMetrics,
    ReachingRun,
    reaching_options,
    run_reaching,
    save_reaching_figures,
)
from gpcontrol.algorithms.reacher import ReacherTask, reacher_options, run_reacher

__all__ = [
    "pilco",
    "PILCOOptions",
    "PILCOResult",
    "TrialRecord",
    "expected_return",
    "optimise_policy",
    "MDGPSOptions",
    "mdgps",
    "linearize_policy",
    "policy_prior",
    "s_step_loss",
    "train_policy",
    "MDGPSState",
    "StepPrediction",
    "mdgps_init",
    "mdgps_step",
    "EndEffectorCost",
    "ReachingPolicy",
    "ReachingTask",
    "ilqr_ceiling",
    "ReachingMetrics",
    "ReachingRun",
    "reaching_options",
    "run_reaching",
    "save_reaching_figures",
    "RolloutSampler",
    "EnvSampler",
    "ReacherTask",
    "reacher_options",
    "run_reacher",
    "local_search",
    "LocalSearchOptions",
    "LocalSearchIteration",
    "LocalSearchResult",
]
