"""The registry of runnable models: the built-in models.toml merged with the user's own.

A user's ``<config dir>/models.toml`` has the same shape; an entry with a new name is added, an entry with a known
name overrides only the fields it sets (so ``[models.gemma3-270m] lora = "..."`` is enough to add an adapter).
An entry with ``base = "NAME"`` starts from that entry's fields, so a model that is another one plus an adapter
names its base instead of copying its download fields.
Every problem is a ConfigError naming the file, the line and the reason, so a typo never turns into a stack trace.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, fields
from pathlib import Path

from tui_agent.agent.prompt import PROMPT_STYLES
from tui_agent.config import ConfigError, config_dir, read_toml
from tui_agent.models.base import ModelError

BUILTIN_PATH = Path(__file__).resolve().parents[1] / "models.toml"
CHAT_FORMATS = ("chatml", "gemma")
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry. Exactly one of ``repo`` (hub download) or ``package`` (local assembly) is set."""

    name: str
    file: str
    repo: str | None = None
    package: str | None = None
    lora: str | None = None
    context_length: int = 4096
    chat_format: str = "chatml"
    license: str = ""
    description: str = ""
    sha256: str | None = None
    size: int | None = None
    revision: str = "main"
    prompt: str = "full"  # the system prompt style the model was trained for (one of PROMPT_STYLES)
    base: str | None = None  # the entry whose fields this one starts from

    @property
    def files(self) -> list[str]:
        """All files of the model: one, or every part of a split GGUF (llama.cpp loads the first)."""
        match = _SPLIT.match(self.file)
        if not match:
            return [self.file]
        total = int(match["total"])
        return [f"{match['stem']}-{i:05d}-of-{total:05d}.gguf" for i in range(1, total + 1)]


_TYPES: dict[str, type] = {
    "file": str,
    "repo": str,
    "package": str,
    "lora": str,
    "context_length": int,
    "chat_format": str,
    "license": str,
    "description": str,
    "sha256": str,
    "size": int,
    "revision": str,
    "prompt": str,
    "base": str,
}
assert set(_TYPES) == {f.name for f in fields(ModelSpec)} - {"name"}


class Registry:
    """Model specs by name, in file order (built-in first, then the user's additions)."""

    def __init__(self, specs: dict[str, ModelSpec]):
        self._specs = dict(specs)

    def names(self) -> list[str]:
        return list(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def get(self, name: str) -> ModelSpec:
        """The spec called ``name``; an unknown name is a ModelError that suggests close names."""
        try:
            return self._specs[name]
        except KeyError:
            raise ModelError(unknown_model_message(name, self.names())) from None


def unknown_model_message(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else f" Known models: {', '.join(names)}."
    return f"Unknown model {name!r}.{hint} (A path to a local .gguf file also works.)"


def load_registry(user_path: Path | None = None) -> Registry:
    """The built-in registry merged with the user's models.toml (if it exists)."""
    entries = {name: (values, BUILTIN_PATH, line) for name, (values, line) in _read_entries(BUILTIN_PATH).items()}
    user_path = user_path if user_path is not None else config_dir() / "models.toml"
    if user_path.exists():
        for name, (values, line) in _read_entries(user_path).items():
            merged = {**entries[name][0], **values} if name in entries else values
            entries[name] = (merged, user_path, line)
    return Registry(
        {name: _build(name, _with_base(name, entries), path, line) for name, (_, path, line) in entries.items()}
    )


def _with_base(name: str, entries: dict[str, tuple[dict, Path, int | None]], seen: tuple[str, ...] = ()) -> dict:
    """The entry's fields over those of its ``base`` entry (and that one's base, and so on)."""
    values, path, line = entries[name]
    base = values.get("base")
    if not base:
        return values
    where = f"{path}:{line}" if line else str(path)
    if base not in entries:
        raise ConfigError(f"{where}: models.{name}: base {base!r} is not a model in the registry")
    if base == name or base in seen:
        raise ConfigError(f"{where}: models.{name}: base {base!r} makes a loop: {' -> '.join((*seen, name, base))}")
    return {**_with_base(base, entries, (*seen, name)), **values}


def _read_entries(path: Path) -> dict[str, tuple[dict, int | None]]:
    data = read_toml(path)
    text = path.read_text(encoding="utf-8")
    unknown = [key for key in data if key != "models"]
    if unknown:
        raise ConfigError(
            f"{path}:{_line_of(text, unknown[0])}: unknown top-level key {unknown[0]!r}; "
            "entries go in [models.NAME] tables"
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{path}:{_line_of(text, 'models')}: 'models' must be a table of [models.NAME] entries")
    out: dict[str, tuple[dict, int | None]] = {}
    for name, values in models.items():
        line = _line_of(text, name)
        if not isinstance(values, dict):
            raise ConfigError(f"{path}:{line}: models.{name} must be a table, not {type(values).__name__}")
        for key, value in values.items():
            kind = _TYPES.get(key)
            if kind is None:
                close = difflib.get_close_matches(key, list(_TYPES), n=1, cutoff=0.7)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{path}:{line}: models.{name}: unknown field {key!r}{hint}")
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ConfigError(f"{path}:{line}: models.{name}: field {key!r} must be {kind.__name__}, not {value!r}")
        values = dict(values)
        if "lora" in values:  # a relative adapter path is relative to the file that names it; "" turns it off
            lora = values["lora"].strip()
            values["lora"] = str((path.parent / Path(lora).expanduser()).resolve()) if lora else ""
        out[name] = (values, line)
    return out


def _build(name: str, values: dict, path: Path, line: int | None) -> ModelSpec:
    where = f"{path}:{line}" if line else str(path)
    if "file" not in values:
        raise ConfigError(f"{where}: models.{name}: missing field 'file'")
    if bool(values.get("repo")) == bool(values.get("package")):
        raise ConfigError(f"{where}: models.{name}: set exactly one of 'repo' (hub) or 'package' (PyPI)")
    if values.get("chat_format", "chatml") not in CHAT_FORMATS:
        raise ConfigError(
            f"{where}: models.{name}: chat_format {values['chat_format']!r} is not one of {', '.join(CHAT_FORMATS)}"
        )
    if "context_length" in values and values["context_length"] <= 0:
        raise ConfigError(f"{where}: models.{name}: context_length must be positive")
    sha = values.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise ConfigError(f"{where}: models.{name}: sha256 must be 64 hex digits")
    if values.get("prompt", "full") not in PROMPT_STYLES:
        raise ConfigError(
            f"{where}: models.{name}: prompt {values['prompt']!r} is not one of {', '.join(PROMPT_STYLES)}"
        )
    if "lora" in values:
        values = {**values, "lora": values["lora"] or None}
    return ModelSpec(name=name, **values)


def _line_of(text: str, key: str) -> int | None:
    """Line number of the table header (or key) that defines ``key``: TOML values carry no positions."""
    quoted = re.escape(key)
    pattern = re.compile(rf"^\s*\[\s*models\s*\.\s*(\"{quoted}\"|'{quoted}'|{quoted})\s*\]|^\s*\"?{quoted}\"?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None
