"""The ``export`` key: which per-series families a query puts on /metrics (top level, or per query).

Each name stands for one or two families of the exposition (`vigil.outputs.exporter`):

=============  ==============================================
name           families
=============  ==============================================
``score``      ``vigil_anomaly_score``
``anomaly``    ``vigil_anomaly``
``expected``   ``vigil_expected_value``
``bounds``     ``vigil_upper_bound`` and ``vigil_lower_bound``
``observed``   ``vigil_observed_value``
``warming_up`` ``vigil_warming_up``
=============  ==============================================

Every family is one line per series, so every series Vigil watches adds to the
Prometheus that scrapes it as many series as the families exported: the default,
``[score, anomaly]``, adds two; all of them, seven. The ``vigil_event_*`` families (one
line per series with an event open) are always exported.

>>> check_export(["anomaly", "score", "anomaly"])
('score', 'anomaly')
>>> check_export(["score", "bands"])
Traceback (most recent call last):
ValueError: 'bands' is not a name of exported families; write a list of some of score, anomaly, expected, bounds, observed, warming_up
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["DEFAULT_EXPORT", "EXPORTS", "Export", "check_export"]

EXPORTS = ("score", "anomaly", "expected", "bounds", "observed", "warming_up")
DEFAULT_EXPORT = ("score", "anomaly")


def check_export(value: Any) -> tuple[str, ...]:
    """A list of export names -> those names once each, in `EXPORTS` order; ValueError saying what to write."""
    allowed = ", ".join(EXPORTS)
    if not isinstance(value, list | tuple):
        raise ValueError(f"write a list of some of {allowed}, such as [score, anomaly]")
    bad = [v for v in value if v not in EXPORTS]
    if bad:
        shown = ", ".join(repr(v) for v in bad)
        raise ValueError(
            f"{shown} {'is not a name' if len(bad) == 1 else 'are not names'} of exported families; "
            f"write a list of some of {allowed}"
        )
    return tuple(name for name in EXPORTS if name in value)


Export = Annotated[tuple[str, ...], BeforeValidator(check_export), PlainSerializer(list)]
