"""gpcontrol: model-based control with Gaussian processes and optimal control."""

from gpcontrol.systems import SYSTEMS, make_system

__version__ = "0.1.0"

__all__ = ["SYSTEMS", "make_system", "__version__"]
