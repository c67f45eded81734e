"""Vigil's exceptions, one hierarchy.

    VigilError
     ├── ConfigError        a config file or a parameter is wrong; the message names the key
     ├── DataError          input data (a CSV file, a sample) cannot be used
     ├── SourceError        a metrics source failed
     ├── NotifyError        a notification could not be delivered
     └── StateError         a saved state cannot be read or does not fit
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "NotifyError", "SourceError", "StateError", "VigilError"]


class VigilError(Exception):
    """Base class of every error Vigil raises on purpose."""


class ConfigError(VigilError):
    """A configuration value is wrong; the message says which key, what, and what is right."""


class DataError(VigilError):
    """Input data cannot be used; the message says where (file, line) and why."""


class SourceError(VigilError):
    """A metrics source failed (down, slow, or rejected the query)."""


class NotifyError(VigilError):
    """A notification could not be delivered."""


class StateError(VigilError):
    """A saved state cannot be read or does not match the configuration."""
