"""Tasks the teacher solves and the student is evaluated on: one question, one checkable answer.

Sources: JSON Lines files (our own Task lines, or foreign lines with ``id``/``question``/``answer`` such as the
MATH, GSM-Hard and HotpotQA sets), Hugging Face datasets by name or as a local directory, and local
parquet/json/csv files. ``kind`` says how ``training.checking`` compares an answer with the reference.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("number", "math", "text", "exact", "fix_bug")
QUESTION_COLUMNS = ("question", "problem", "prompt", "query", "input", "instruction")
ANSWER_COLUMNS = ("answer", "final_answer", "expected_answer", "target", "solution", "output", "label")
ID_COLUMNS = ("id", "unique_id", "task_id", "idx", "_id", "qid")
DATA_FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".csv": "csv", ".arrow": "arrow"}

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?")
_LATEX_HINT = re.compile(r"\\[a-zA-Z]+|[\^_{}$]")
_LEVEL = re.compile(r"(\d+)")


class TaskError(Exception):
    """A task source that cannot be used; the message names the source (file:line when there is one) and why."""


@dataclass
class Task:
    id: str
    question: str
    answer: str
    kind: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        kind = data.get("kind", "")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        meta = data.get("meta") or {}
        if not isinstance(meta, dict):
            raise ValueError("'meta' is not an object")
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            answer=str(data["answer"]),
            kind=kind,
            source=str(data.get("source", "")),
            meta=dict(meta),
        )

    def reference(self) -> dict[str, Any]:
        """What a trajectory keeps of its task so the run can be checked later without the task file."""
        return {"id": self.id, "answer": self.answer, "kind": self.kind, "source": self.source, "meta": self.meta}


def load_tasks(
    source: str | Path,
    *,
    split: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    config: str | None = None,
    columns: Mapping[str, str] | None = None,
    levels: Collection[int] | None = None,
    types: Collection[str] | None = None,
    kind: str | None = None,
) -> list[Task]:
    """Tasks from a JSONL file, a local data file or directory, or a Hugging Face dataset name.

    ``split`` selects a dataset split (for JSONL: lines whose ``split`` field matches). ``columns`` maps
    "question"/"answer"/"id" to the dataset's column names when they are not the usual ones. ``levels`` keeps
    MATH levels (``{2, 3}`` matches "Level 2", "Level 3"); ``types`` keeps MATH subjects. ``kind`` overrides the
    inferred kind. Filters apply first, then ``offset`` and ``limit``. Tasks whose answer is null or empty are
    skipped with a logged warning (a real MATH file has two); a missing question or answer field is an error.
    """
    if kind is not None and kind not in KINDS:
        raise TaskError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if offset < 0 or (limit is not None and limit < 0):
        raise TaskError("offset and limit must not be negative")
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".jsonl":
        tasks = _read_jsonl(path, columns, kind)
        if split is not None:
            tasks = [t for t in tasks if str(t.meta.get("split", "")) == split]
            if not tasks:
                raise TaskError(f"{path}: no tasks with split {split!r}")
    elif path.exists():
        tasks = _from_dataset(_load_local(path, split, config), path.stem, columns, kind)
    elif _looks_like_path(source):
        raise TaskError(f"{source}: no such file or directory")
    else:
        name = str(source)
        tasks = _from_dataset(_load_hub(name, split, config), _dataset_label(name, config), columns, kind)
    tasks = _filter(tasks, str(source), levels, types)
    return tasks[offset : None if limit is None else offset + limit]


def write_tasks(tasks: Iterable[Task], path: str | Path) -> int:
    """Write tasks as JSON lines (parents created, replaced atomically); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def resolve_workspace(task: Task) -> Path | None:
    """The directory the agent must run in for this task; None for tasks that need no workspace.

    A codebase task made from an installed package runs in the cached copy of that package, re-created when
    missing (another machine, a cleared cache) and restored file by file when an earlier run changed it;
    a missing repository is an error.
    """
    workspace = task.meta.get("workspace")
    if not workspace:
        return None
    if task.kind == "fix_bug":  # every run starts from the bug, whatever the last run left
        from training.fixbug_tasks import materialize

        return materialize(task)
    if task.meta.get("package"):  # the package's cached copy, restored to the installed source first
        from training.codebase_tasks import package_workspace

        return package_workspace(str(task.meta["package"]), str(task.meta.get("version") or ""))
    path = Path(workspace)
    if path.is_dir():
        return path
    raise TaskError(f"task {task.id}: workspace {path} does not exist")


def infer_kind(answer: Any, dataset: str = "") -> str:
    """How to check an answer: numbers by tolerance, MATH and LaTeX by equivalence, anything else as text."""
    if isinstance(answer, bool):
        return "text"
    if isinstance(answer, int | float):
        return "number"
    text = str(answer).strip()
    if "math" in dataset.lower():
        return "math"
    if _NUMBER.fullmatch(text.lstrip("$").rstrip("%").strip()):
        return "number"
    if _LATEX_HINT.search(text):
        return "math"
    return "text"


def answer_text(value: Any) -> str:
    """An answer as text: integral floats lose their ".0" (GSM-Hard stores 8.0), everything else as written."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def level_number(value: Any) -> int | None:
    """MATH's level as a number: 3, "3" and "Level 3" give 3; "hard" or None give None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _LEVEL.search(str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}) in a solution, braces balanced; None if absent."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i].strip()
    return None


def _read_jsonl(path: Path, columns: Mapping[str, str] | None, kind: str | None) -> list[Task]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    tasks: list[Task] = []
    skipped: list[int] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise TaskError(f"{where}: not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise TaskError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if "kind" in data and "meta" in data and "source" in data:
            try:
                task = Task.from_dict(data)
            except (KeyError, ValueError, TypeError) as exc:
                raise TaskError(f"{where}: not a task line: {_reason(exc)}") from exc
            if kind is not None:
                task.kind = kind
        else:
            try:
                task = _foreign(data, number, path.stem, columns, kind)
            except (KeyError, ValueError) as exc:
                raise TaskError(f"{where}: {_reason(exc)}") from exc
        if task is None:
            skipped.append(number)
            continue
        if task.id in seen:
            raise TaskError(f"{where}: duplicate task id {task.id!r} (first on line {seen[task.id]})")
        seen[task.id] = number
        tasks.append(task)
    if skipped:
        lines = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
        log.warning("%s: skipped %d tasks without an answer (lines %s)", path, len(skipped), lines)
    if not tasks:
        raise TaskError(f"{path}: no tasks in the file")
    return tasks


def _foreign(
    row: Mapping[str, Any], index: int, label: str, columns: Mapping[str, str] | None, kind: str | None
) -> Task | None:
    """A task from a foreign row (JSONL line or dataset row); None when its answer is null or empty."""
    q_col = _column(row, "question", QUESTION_COLUMNS, columns)
    a_col = _column(row, "answer", ANSWER_COLUMNS, columns)
    id_col = _column(row, "id", ID_COLUMNS, columns, required=False)
    question, raw = row[q_col], row[a_col]
    if question is None or not str(question).strip():
        raise ValueError(f"empty question in field {q_col!r}")
    if a_col == "solution" and isinstance(raw, str):
        raw = last_boxed(raw)  # MATH-style worked solutions: the answer is the last \boxed{}
    elif isinstance(raw, str) and "\n#### " in raw:
        raw = raw.rsplit("\n#### ", 1)[1]  # GSM8K-style: reasoning, then "#### answer"
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or not answer_text(raw):
        return None
    dataset = str(row.get("dataset_name") or row.get("source") or label)
    meta = {k: v for k, v in row.items() if k not in (q_col, a_col, id_col)}
    if a_col == "solution":
        meta["solution"] = row[a_col]
    raw_id = row[id_col] if id_col else index
    return Task(
        id=f"{label}/{raw_id}",
        question=str(question),
        answer=answer_text(raw),
        kind=kind or infer_kind(raw, f"{dataset} {label}"),
        source=dataset,
        meta=_plain(meta),
    )


def _column(
    row: Mapping[str, Any], field_name: str, candidates: tuple[str, ...], columns, required: bool = True
) -> str | None:
    if columns and field_name in columns:
        name = columns[field_name]
        if name not in row:
            raise KeyError(f"no column {name!r} for the {field_name} (columns: {', '.join(map(str, row))})")
        return name
    found = next((name for name in candidates if name in row), None)
    if found is None and required:
        raise KeyError(
            f"no {field_name} field (looked for {', '.join(candidates)}; columns: {', '.join(map(str, row))});"
            f" map one with columns={{'{field_name}': ...}}"
        )
    return found


def _load_local(path: Path, split: str | None, config: str | None):
    datasets = _datasets()
    try:
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            return _pick_split(datasets.load_from_disk(str(path)), split, str(path))
        if path.is_file():
            builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                known = ", ".join([".jsonl", *DATA_FILE_BUILDERS])
                raise TaskError(f"{path}: unsupported file type {path.suffix or '(none)'} (use {known})")
            return _pick_split(datasets.load_dataset(builder, data_files=str(path)), split, str(path))
        return _pick_split(datasets.load_dataset(str(path), config), split, str(path))
    except TaskError:
        raise
    except Exception as exc:  # datasets raises many types (FileNotFoundError, ValueError, DatasetGenerationError)
        raise TaskError(f"{path}: cannot load as a dataset: {_reason(exc)}") from exc


def _load_hub(name: str, split: str | None, config: str | None):
    datasets = _datasets()
    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as exc:  # offline, unknown name, missing config: all one clear line
        raise TaskError(f"cannot load dataset {name!r}: {_reason(exc)}") from exc
    return _pick_split(loaded, split, name)


def _pick_split(loaded, split: str | None, label: str):
    if not hasattr(loaded, "keys"):  # already a single Dataset
        return loaded
    names = list(loaded.keys())
    if split is None:
        if len(names) == 1:
            return loaded[names[0]]
        raise TaskError(f"{label}: choose a split ({', '.join(names)})")
    if split not in loaded:
        raise TaskError(f"{label}: no split {split!r} (splits: {', '.join(names)})")
    return loaded[split]


def _from_dataset(dataset, label: str, columns: Mapping[str, str] | None, kind: str | None) -> list[Task]:
    tasks: list[Task] = []
    skipped = 0
    for index, row in enumerate(dataset):
        try:
            task = _foreign(row, index, label, columns, kind)
        except (KeyError, ValueError) as exc:
            raise TaskError(f"{label}: row {index}: {_reason(exc)}") from exc
        if task is None:
            skipped += 1
        else:
            tasks.append(task)
    if skipped:
        log.warning("%s: skipped %d rows without an answer", label, skipped)
    if not tasks:
        raise TaskError(f"{label}: no tasks in the dataset")
    return tasks


def _filter(tasks: list[Task], label: str, levels: Collection[int] | None, types: Collection[str] | None) -> list[Task]:
    if levels is not None:
        wanted = {int(level) for level in levels}
        if not any(level_number(t.meta.get("level")) is not None for t in tasks):
            raise TaskError(f"{label}: the tasks have no numeric 'level' to filter on")
        tasks = [t for t in tasks if level_number(t.meta.get("level")) in wanted]
    if types is not None:
        wanted_types = {str(t).lower() for t in types}
        tasks = [t for t in tasks if str(t.meta.get("type", "")).lower() in wanted_types]
    if not tasks:
        raise TaskError(f"{label}: no tasks match the level/type filters")
    return tasks


def _dataset_label(name: str, config: str | None) -> str:
    return f"{name}:{config}" if config else name


def _looks_like_path(source: str | Path) -> bool:
    """A name with a file suffix or starting like a path is a missing file, not a dataset on the hub."""
    if isinstance(source, Path):
        return True
    text = str(source)
    return text.startswith((".", "/", "~")) or Path(text).suffix.lower() in {".jsonl", *DATA_FILE_BUILDERS}


def _plain(value: Any) -> Any:
    """Dataset rows can hold numpy or datetime values; keep meta JSON-serialisable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    item: Callable[[], Any] | None = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    return str(value)


def _datasets():
    try:
        import datasets
    except ImportError as exc:
        raise TaskError("loading datasets needs the 'datasets' package: pip install 'tui-agent[train]'") from exc
    return datasets


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (KeyError quotes its argument; unquote it)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return text
