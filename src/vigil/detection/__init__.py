"""Detection: raw samples -> anomaly scores -> events, for many series at once.

`detectors/` score each sample against what was learned before it (one module per
detector, registered by name in `detectors/__init__.py`); `calibration` turns raw scores
into anomaly scores in [0, 1]; `decision` turns scores into events; `pipeline` runs them
together with the per-series state of each.
"""

from __future__ import annotations

__all__: list[str] = []
