"""Where tui-agent keeps things, and the user's settings.

Paths follow the platform's conventions (XDG on Linux) through platformdirs; every path and setting can be
overridden by an environment variable so tests and CI never touch a real home directory.

Settings come from, lowest to highest priority: built-in defaults, ``config.toml`` in the config directory,
``TUI_AGENT_<NAME>`` environment variables, then command-line flags (applied by the caller).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, fields
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


#: The most candidates ``--sag`` / ``/sag`` / ``sag =`` may ask for: each one is a model sample and a kernel fork.
SAG_MAX = 16

#: Allowed values of each setting, as (low, high) bounds (None: unbounded) or a tuple of choices.
LIMITS: dict[str, tuple] = {
    "max_steps": (1, 100),
    "temperature": (0.0, 2.0),
    "sag": (1, SAG_MAX),
    "approval": ("ask", "auto", "read-only"),
    "cell_timeout": (1.0, None),
    "kernel_memory_mb": (0, None),
    "n_ctx": (0, None),
    "n_threads": (0, None),
}


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
    kernel_memory_mb: int = 4096  # 0: no cap
    kernel_secrets: bool = False  # true: the kernel inherits API keys and tokens from the environment
    n_ctx: int = 0  # 0: the model's registry default
    n_threads: int = 0  # 0: chosen for the machine

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Defaults, then the config file (if any), then environment variables; anything unusable is a ConfigError."""
        settings = cls()
        path = path or config_dir() / "config.toml"
        if path.exists():
            values = read_toml(path)
            text = path.read_text(encoding="utf-8")
            for key, value in values.items():
                line = _line_of(text, key)
                settings._set(key, value, where=f"{path}:{line}" if line else str(path))
        for f in fields(cls):
            var = f"TUI_AGENT_{f.name.upper()}"
            if var in os.environ:
                settings._set(f.name, os.environ[var], where=f"environment variable {var}", from_string=True)
        return settings

    def _set(self, key: str, value: object, *, where: str, from_string: bool = False) -> None:
        known = {f.name: f for f in fields(self)}
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}: unknown setting {key!r}; {hint}known settings: {', '.join(known)}")
        kind = type(getattr(self, key))
        try:
            setattr(self, key, check_value(key, _coerce(value, kind, from_string)))
        except ValueError as exc:
            raise ConfigError(f"{where}: setting {key!r} {exc}") from None


def check_value(key: str, value):
    """``value`` if it is allowed for setting ``key``, else a ValueError that says what is allowed."""
    limit = LIMITS.get(key)
    if limit is None:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value
    if isinstance(limit[0], str):
        if value not in limit:
            raise ValueError(f"must be one of {', '.join(limit)}, not {value!r}")
        return value
    low, high = limit
    if value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ValueError(f"must be {allowed}, not {value!r}")
    return value


def _coerce(value, kind: type, from_string: bool):
    """``value`` as ``kind``; TOML values must already have that type (an int may stand for a float)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_string and str(value).strip().lower() in ("1", "true", "yes", "on"):
            return True
        if from_string and str(value).strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"must be true or false, not {value!r}")
    if kind is int:
        if from_string:
            try:
                return int(str(value).strip())
            except ValueError:
                raise ValueError(f"must be a whole number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {value!r}")
        return value
    if kind is float:
        if from_string:
            try:
                return float(str(value).strip())
            except ValueError:
                raise ValueError(f"must be a number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, not {value!r}")
        return float(value)
    if not from_string and not isinstance(value, kind):
        raise ValueError(f"must be a {kind.__name__}, not {value!r}")
    return kind(value)


def _line_of(text: str, key: str) -> int | None:
    """The line where top-level ``key`` is set (``key =`` or a ``[key]`` table) in a TOML file, if it can be told."""
    quoted = rf"[\"']?{re.escape(key)}[\"']?"
    found = re.search(rf"^[ \t]*(?:{quoted}[ \t]*=|\[+[ \t]*{quoted}[ \t]*[.\]])", text, re.MULTILINE)
    return text[: found.start()].count("\n") + 1 if found else None
