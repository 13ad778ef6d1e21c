"""Synthetic ground-truth recordings: seeded spike trains, realistic templates, noise and drift.

The main entry point is :func:`ground_truth_recording`; docs/generate.md describes the model.
"""

from .drift import Drift, drift_displacement, drift_motion, resolve_drift
from .recording import PROBE_NAMES, ground_truth_recording, poisson_spike_trains

__all__ = [
    "ground_truth_recording",
    "poisson_spike_trains",
    "Drift",
    "resolve_drift",
    "drift_displacement",
    "drift_motion",
    "PROBE_NAMES",
]
