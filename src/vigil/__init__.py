"""Vigil: real-time anomaly detection for system and application metrics.

Sources yield samples, streaming detectors score them, calibration turns raw scores into
anomaly scores in [0, 1], and the decision stage turns scores into events.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
