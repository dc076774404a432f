"""gpcontrol: model-based control with Gaussian processes and optimal control."""

from gpcontrol._registry import ENV_IDS, register_envs
from gpcontrol.systems import SYSTEMS, make_system

register_envs()

__version__ = "0.1.0"

__all__ = ["SYSTEMS", "ENV_IDS", "make_system", "__version__"]
