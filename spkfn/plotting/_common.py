"""Small helpers shared by the figure modules."""

from __future__ import annotations

import numpy as np


def axes_or_new(ax, figsize=(8.0, 4.0)):
    """``ax`` itself, or the axes of a new figure of ``figsize`` (inches) when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def auto_marker_size(n_points: int) -> float:
    """Scatter marker area (pt²) that keeps dense maps readable and sparse ones visible.

    1 pt² from 20 000 points up, growing as 1/n below (a few hundred peaks get ~12 pt²).

    Examples
    --------
    >>> auto_marker_size(200_000), auto_marker_size(100)
    (1.0, 12.0)
    """
    return float(np.clip(20_000 / max(int(n_points), 1), 1.0, 12.0))
