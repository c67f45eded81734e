"""Reading `vigil.yml`: YAML to the validated `Config`, every error on one line naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigil.config.model import Config, messages
from vigil.errors import ConfigError

__all__ = ["load_config"]


def _resolve_paths(raw: Any, base: Path) -> None:
    """Secret files and replayed files are relative to the config file's folder."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in ("file", "path") and isinstance(value, str) and not Path(value).is_absolute():
                raw[key] = str(base / value)
            else:
                _resolve_paths(value, base)
    elif isinstance(raw, list):
        for item in raw:
            _resolve_paths(item, base)


def load_config(path: Path | None) -> Config:
    """Read and validate `path` (None: the defaults, watching this host)."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (server:, prometheus:, ...)")
    _resolve_paths(raw, Path(path).parent)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(f"  {m}" for m in messages(exc))
        raise ConfigError(f"{path}: {len(exc.errors())} error(s):\n{lines}") from None
