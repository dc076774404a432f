"""Argument checks shared by every public entry point.

Each helper raises :class:`ValueError` (or :class:`TypeError` for objects of
the wrong kind) with a message that names the offending argument and the shape
it expected, so that a user sees *which* input is wrong, not a traceback from
deep inside CasADi or torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "as_float_array",
    "as_batch",
    "check_bounds",
    "check_positive",
    "check_nonnegative",
    "check_square",
    "check_psd",
    "check_pd",
    "readonly_copy",
]


def as_float_array(name: str, value: Any, *, allow_nonfinite: bool = False) -> NDArray[np.float64]:
    """Convert ``value`` to a float64 array, rejecting NaN/inf and non-numeric input.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : array_like
        Anything :func:`numpy.asarray` accepts.
    allow_nonfinite : bool
        Accept ``inf`` (bounds may be infinite); NaN is always rejected.
    """
    what = f"{name} must be a real numeric array, got {type(value).__name__}"
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged nesting, huge ints
        raise ValueError(what) from exc
    if raw.dtype.kind not in "biufO":  # complex, strings, dates: no silent cast to float
        raise ValueError(f"{what} of dtype {raw.dtype}")
    try:
        with np.errstate(over="ignore"):  # beyond float64 becomes inf, rejected below
            arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(what) from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if not allow_nonfinite and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains inf")
    return arr


def as_batch(name: str, value: ArrayLike, size: int, *, what: str = "") -> NDArray[np.float64]:
    """Check that ``value`` has shape ``(..., size)`` with finite float entries.

    A scalar is accepted when ``size == 1`` and returned with shape ``(1,)``.

    Returns
    -------
    ndarray, shape (..., size)
    """
    arr = as_float_array(name, value)
    if arr.ndim == 0 and size == 1:
        arr = arr.reshape(1)
    if arr.ndim == 0 or arr.shape[-1] != size:
        label = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape (..., {size}){label}, got shape {arr.shape}")
    return arr


def check_bounds(
    low_name: str, low: ArrayLike, high_name: str, high: ArrayLike, size: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate a box ``low <= high`` of length ``size`` (infinite entries allowed)."""
    lo = as_float_array(low_name, low, allow_nonfinite=True).reshape(-1)
    hi = as_float_array(high_name, high, allow_nonfinite=True).reshape(-1)
    for nm, arr in ((low_name, lo), (high_name, hi)):
        if arr.shape != (size,):
            raise ValueError(f"{nm} must have shape ({size},), got {arr.shape}")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise ValueError(
            f"{low_name} must not exceed {high_name}; violated at index {bad.tolist()}: "
            f"{lo[bad].tolist()} > {hi[bad].tolist()}"
        )
    return lo, hi


def _scalar(name: str, value: Any) -> float:
    """``float(value)`` for a real scalar, else a ``TypeError`` naming the argument."""
    if isinstance(value, str | bytes | complex) or np.iscomplexobj(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from exc


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) >= ``minimum``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise ``ValueError``."""
    v = _scalar(name, value)
    if not np.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def check_nonnegative(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and >= 0, else raise ``ValueError``."""
    v = _scalar(name, value)
    if not np.isfinite(v) or v < 0.0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return v


def check_square(name: str, value: ArrayLike, size: int | None = None) -> NDArray[np.float64]:
    """Check a finite square matrix, optionally of a given size."""
    arr = as_float_array(name, value)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (size is not None and arr.shape[0] != size):
        want = f"({size}, {size})" if size is not None else "(k, k)"
        raise ValueError(f"{name} must be a square matrix of shape {want}, got shape {arr.shape}")
    return arr


def _symmetric(name: str, arr: NDArray[np.float64]) -> NDArray[np.float64]:
    scale = max(1.0, float(np.abs(arr).max(initial=0.0)))
    if np.abs(arr - np.swapaxes(arr, -1, -2)).max(initial=0.0) > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (arr + np.swapaxes(arr, -1, -2))


def check_psd(name: str, value: ArrayLike, size: int | None = None) -> NDArray[np.float64]:
    """Check a symmetric positive semi-definite matrix; returns its symmetrised copy."""
    arr = _symmetric(name, check_square(name, value, size))
    if arr.size:
        lam = np.linalg.eigvalsh(arr)
        if lam.min() < -1e-10 * max(1.0, abs(lam).max()):
            raise ValueError(
                f"{name} must be positive semi-definite; smallest eigenvalue {lam.min():.3e}"
            )
    return arr


def check_pd(name: str, value: ArrayLike, size: int | None = None) -> NDArray[np.float64]:
    """Check a symmetric positive definite matrix; returns its symmetrised copy."""
    arr = _symmetric(name, check_square(name, value, size))
    if arr.size:
        lam = np.linalg.eigvalsh(arr)
        if lam.min() <= 0.0:
            raise ValueError(
                f"{name} must be positive definite; smallest eigenvalue {lam.min():.3e}"
            )
    return arr


def names_tuple(name: str, value: Sequence[str], size: int) -> tuple[str, ...]:
    """Check a sequence of ``size`` labels."""
    out = tuple(str(v) for v in value)
    if len(out) != size:
        raise ValueError(f"{name} must have {size} entries, got {len(out)}")
    return out


def readonly_copy(value: ArrayLike) -> NDArray[np.float64]:
    """A float64 copy of ``value`` that cannot be written to (for frozen results)."""
    out = np.array(value, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out
