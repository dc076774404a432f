"""Optimal-control solvers.

Every solver is written against the :class:`~gpcontrol.solvers.dynamics.Dynamics`
protocol, which every :class:`gpcontrol.systems.System` (and every learned or
fitted model) satisfies, and returns a frozen dataclass. Sign convention
throughout: ``u = K x + k``.

* :mod:`~gpcontrol.solvers.lqr` -- infinite-horizon, finite-horizon
  time-varying and tracking LQR (the backward pass the others reuse);
* :mod:`~gpcontrol.solvers.boxqp`, :mod:`~gpcontrol.solvers.ilqr` -- iLQR/DDP
  with box control limits;
* :mod:`~gpcontrol.solvers.kalman`, :mod:`~gpcontrol.solvers.lqg` -- Kalman
  filtering and smoothing, LQG output feedback;
* :mod:`~gpcontrol.solvers.shooting`, :mod:`~gpcontrol.solvers.mpc` -- random
  shooting, CEM, MPPI and receding-horizon control;
* :mod:`~gpcontrol.solvers.trajopt` -- CasADi multiple shooting and collocation;
* :mod:`~gpcontrol.solvers.lqr_flm` -- KL-constrained LQG for guided policy search.

Several modules share their name with their main function (``ilqr``,
``trajopt``, ``lqg``, ``mpc``); the package exports the functions, so reach a
module itself with ``importlib.import_module("gpcontrol.solvers.trajopt")``.
"""

from gpcontrol.solvers.boxqp import BoxQPResult, box_qp
from gpcontrol.solvers.dynamics import (
    Dynamics,
    LinearDynamics,
    TimeVaryingLinearDynamics,
    linearize_affine,
    simulate,
)
from gpcontrol.solvers.ilqr import ILQROptions, ILQRResult, ddp, ilqr
from gpcontrol.solvers.kalman import (
    KalmanFilterResult,
    KalmanSmootherResult,
    LQEResult,
    dlqe,
    kalman_filter,
    kalman_smoother,
)
from gpcontrol.solvers.lqg import (
    LQGController,
    LQGResult,
    StationaryLQGResult,
    lqg,
    stationary_lqg,
)
from gpcontrol.solvers.lqr import (
    FiniteHorizonLQRResult,
    LQRResult,
    TVLQRResult,
    dlqr,
    finite_horizon_lqr,
    lqr,
    tvlqr,
)
from gpcontrol.solvers.lqr_flm import (
    GaussianMarginals,
    KLRegularizedResult,
    LQRFLMOptions,
    LQRFLMResult,
    QuadraticTrajectoryCost,
    adapt_step_size,
    forward_marginals,
    kl_regularized_lqr,
    lqr_flm,
)
from gpcontrol.solvers.mpc import MPC
from gpcontrol.solvers.shooting import (
    CEMOptions,
    MPPIOptions,
    RandomShootingOptions,
    ShootingResult,
    batch_rollout,
    cem,
    mppi,
    random_shooting,
)
from gpcontrol.solvers.trajopt import (
    Constraint,
    ODESystem,
    TrajoptOptions,
    TrajoptProblem,
    TrajoptResult,
    linear_guess,
    trajopt,
)

__all__ = [
    # dynamics protocol
    "Dynamics",
    "LinearDynamics",
    "TimeVaryingLinearDynamics",
    "linearize_affine",
    "simulate",
    # LQR family
    "LQRResult",
    "dlqr",
    "lqr",
    "FiniteHorizonLQRResult",
    "finite_horizon_lqr",
    "TVLQRResult",
    "tvlqr",
    # iLQR / DDP
    "BoxQPResult",
    "box_qp",
    "ILQROptions",
    "ILQRResult",
    "ilqr",
    "ddp",
    # estimation and LQG
    "KalmanFilterResult",
    "KalmanSmootherResult",
    "LQEResult",
    "kalman_filter",
    "kalman_smoother",
    "dlqe",
    "LQGResult",
    "StationaryLQGResult",
    "LQGController",
    "lqg",
    "stationary_lqg",
    # planners
    "RandomShootingOptions",
    "CEMOptions",
    "MPPIOptions",
    "ShootingResult",
    "random_shooting",
    "cem",
    "mppi",
    "batch_rollout",
    "MPC",
    # trajectory optimisation
    "trajopt",
    "TrajoptProblem",
    "TrajoptOptions",
    "TrajoptResult",
    "Constraint",
    "ODESystem",
    "linear_guess",
    # KL-constrained LQG (guided policy search)
    "QuadraticTrajectoryCost",
    "GaussianMarginals",
    "forward_marginals",
    "KLRegularizedResult",
    "kl_regularized_lqr",
    "LQRFLMOptions",
    "LQRFLMResult",
    "lqr_flm",
    "adapt_step_size",
]
