"""Where tui-agent keeps things, and the user's settings.

Paths follow the platform's conventions (XDG on Linux) through platformdirs; every path and setting can be
overridden by an environment variable so tests and CI never touch a real home directory.

Settings come from, lowest to highest priority: built-in defaults, ``config.toml`` in the config directory,
``TUI_AGENT_<NAME>`` environment variables, then command-line flags (applied by the caller).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

APP_NAME = "tui-agent"


class ConfigError(Exception):
    """A settings file that cannot be used; the message names the file, line and reason."""


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else default


def config_dir() -> Path:
    """Directory of config.toml and models.toml (``TUI_AGENT_CONFIG_DIR`` overrides)."""
    from platformdirs import user_config_path

    return _env_path("TUI_AGENT_CONFIG_DIR", user_config_path(APP_NAME))


def data_dir() -> Path:
    """Directory of sessions and trajectories (``TUI_AGENT_DATA_DIR`` overrides)."""
    from platformdirs import user_data_path

    return _env_path("TUI_AGENT_DATA_DIR", user_data_path(APP_NAME))


def cache_dir() -> Path:
    """Directory of assembled models and indexes (``TUI_AGENT_CACHE_DIR`` overrides)."""
    from platformdirs import user_cache_path

    return _env_path("TUI_AGENT_CACHE_DIR", user_cache_path(APP_NAME))


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning a syntax error into a ConfigError that names file, line and reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 keeps the position only in the message: "Invalid value (at line 2, column 13)".
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        reason = getattr(exc, "msg", None) or re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: {reason}") from exc


@dataclass
class Settings:
    """User settings; names match keys of config.toml and the TUI_AGENT_<NAME> variables."""

    model: str = "gemma3-270m"
    max_steps: int = 8
    temperature: float = 0.0
    sag: int = 1
    web: bool = True
    approval: str = "ask"  # ask | auto | read-only
    cell_timeout: float = 60.0
    kernel_memory_mb: int = 4096
    kernel_secrets: bool = False  # true: the kernel inherits API keys and tokens from the environment
    n_ctx: int = 0  # 0: the model's registry default
    n_threads: int = 0  # 0: chosen for the machine
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Defaults, then the config file (if any), then environment variables."""
        settings = cls()
        path = path or config_dir() / "config.toml"
        if path.exists():
            settings._apply(read_toml(path), source=str(path))
        env = {
            f.name: os.environ[f"TUI_AGENT_{f.name.upper()}"]
            for f in fields(cls)
            if f.name != "extra" and f"TUI_AGENT_{f.name.upper()}" in os.environ
        }
        settings._apply(env, source="environment", from_strings=True)
        return settings

    def _apply(self, values: dict, *, source: str, from_strings: bool = False) -> None:
        known = {f.name: f for f in fields(self) if f.name != "extra"}
        for key, value in values.items():
            if key not in known:
                self.extra[key] = value
                continue
            current = getattr(self, key)
            try:
                setattr(self, key, _coerce(value, type(current), from_strings))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{source}: setting {key!r}: {exc}") from exc
        if self.approval not in ("ask", "auto", "read-only"):
            raise ConfigError(f"{source}: setting 'approval' must be ask, auto or read-only, not {self.approval!r}")


def _coerce(value, kind: type, from_strings: bool):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_strings and str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if from_strings and str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool) or (not from_strings and not isinstance(value, (int, float))):
            raise ValueError(f"expected a number, got {value!r}")
        return kind(value)
    if not from_strings and not isinstance(value, kind):
        raise ValueError(f"expected {kind.__name__}, got {value!r}")
    return kind(value)
