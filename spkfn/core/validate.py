"""Argument checks with uniform, actionable messages.

Each returns the normalised value so checks read inline::

    order = check_int("order", order, min_value=1, max_value=20)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["check_number", "check_int", "check_choice", "check_bool"]


def check_number(name: str, value, *, min_value: float | None = None, max_value: float | None = None,
                 min_inclusive: bool = True, max_inclusive: bool = True, hint: str = "") -> float:
    """A finite float within bounds, or ``ValueError`` naming the parameter and its valid range.

    >>> check_number("freq_min_hz", 300, min_value=0, min_inclusive=False)
    300.0
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}.") from None
    lo_ok = min_value is None or (v >= min_value if min_inclusive else v > min_value)
    hi_ok = max_value is None or (v <= max_value if max_inclusive else v < max_value)
    if not math.isfinite(v) or not lo_ok or not hi_ok:
        lo = "-inf" if min_value is None else f"{min_value:g}"
        hi = "inf" if max_value is None else f"{max_value:g}"
        rng = f"{'[' if min_inclusive and min_value is not None else '('}{lo}, {hi}{']' if max_inclusive and max_value is not None else ')'}"
        raise ValueError(f"{name} must be in {rng}; got {value!r}." + (f" {hint}" if hint else ""))
    return v


def check_int(name: str, value, *, min_value: int | None = None, max_value: int | None = None, hint: str = "") -> int:
    """An int within bounds (bools and non-integral floats are refused).

    >>> check_int("order", 5, min_value=1)
    5
    """
    if isinstance(value, bool) or not (isinstance(value, int) or (hasattr(value, "is_integer") and value.is_integer())
                                       or type(value).__name__.startswith(("int", "uint"))):
        raise ValueError(f"{name} must be an integer; got {value!r}.")
    v = int(value)
    if (min_value is not None and v < min_value) or (max_value is not None and v > max_value):
        lo = "-inf" if min_value is None else str(min_value)
        hi = "inf" if max_value is None else str(max_value)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value!r}." + (f" {hint}" if hint else ""))
    return v


def check_choice(name: str, value, choices: Iterable) -> object:
    """One of ``choices``.

    >>> check_choice("operator", "median", ("median", "average"))
    'median'
    """
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {value!r}.")
    return value
