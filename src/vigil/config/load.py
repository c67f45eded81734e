"""Reading `vigil.yml`: YAML to the validated `Config`, every error on one line naming its key.

The file is read as at most 1 MiB of UTF-8 text and parsed within bounds
(`vigil.config.safe_yaml`), so no file, however hostile, costs more than a second or
ends in a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vigil.config.model import Config, messages
from vigil.config.safe_yaml import parse_yaml
from vigil.errors import ConfigError

__all__ = ["MAX_BYTES", "load_config"]

MAX_BYTES = 1024 * 1024


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
    raw = parse_yaml(_read_text(Path(path)), str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (server:, prometheus:, ...)")
    _resolve_paths(raw, Path(path).parent)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = [line.strip() for m in messages(exc) for line in m.splitlines()]
        if len(problems) == 1:
            raise ConfigError(f"{path}: {problems[0]}") from None
        lines = "\n".join(f"  {m}" for m in problems)
        raise ConfigError(f"{path}: {len(problems)} errors:\n{lines}") from None


def _read_text(path: Path) -> str:
    """The file's text, at most `MAX_BYTES` of UTF-8."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than 1 MiB, too large for a config file; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); give a YAML file saved as UTF-8"
        ) from exc
