"""Saved sessions: every event of a conversation written to SQLite as it happens, so a crash or a kill loses at
most the step in progress, and any session can be listed and resumed later.

One file, ``data_dir()/sessions.sqlite``, two tables: ``sessions`` (one row per conversation, with the agent's
message list as of the last finished step) and ``events`` (the typed agent events, in order, as JSON). Streamed
tokens are not stored: each step's ``code_ready`` event holds its whole thought and code.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tui_agent.agent import events as ev

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    workspace TEXT NOT NULL DEFAULT '',
    messages TEXT
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER,
    data TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"""

#: Event kinds the store keeps; tokens are left out (the step's code_ready event has the whole text).
SKIPPED_KINDS = frozenset({"token"})

_EVENT_TYPES: dict[str, type[ev.Event]] = {
    cls.kind: cls
    for cls in (
        ev.RunStarted,
        ev.StepStarted,
        ev.Token,
        ev.CodeReady,
        ev.ApprovalNeeded,
        ev.Observation,
        ev.FinalAnswer,
        ev.AgentError,
        ev.UsageReport,
        ev.RunFinished,
    )
}


class SessionError(Exception):
    """A session that cannot be found or read; the message is one line for users."""


@dataclass
class SessionInfo:
    """One row of the session list."""

    id: str
    created: float
    updated: float
    title: str
    model: str
    workspace: str
    runs: int = 0
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class SavedSession:
    """A session read back: its info, its events (as dicts, in order) and the agent's messages."""

    info: SessionInfo
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)


def default_path() -> Path:
    from tui_agent.config import data_dir

    return data_dir() / "sessions.sqlite"


def event_from_dict(data: dict[str, Any]) -> ev.Event | dict[str, Any]:
    """Rebuild a typed event from its stored dict; kinds the app adds itself (``user``, ``notice``) stay dicts."""
    cls = _EVENT_TYPES.get(data.get("event", ""))
    if cls is None:
        return data
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if cls is ev.Observation and "images" in values:
        values["images"] = tuple(values["images"] or ())
    try:
        return cls(**values)
    except TypeError:
        return data


def messages_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Rebuild a conversation from events, for sessions cut off before their first message snapshot."""
    messages: list[dict[str, str]] = []
    for data in events:
        kind = data.get("event")
        if kind == "run_started":
            messages.append({"role": "user", "content": data.get("task", "")})
        elif kind == "code_ready":
            text = f"Thought: {data.get('thought', '')}\n```py\n{data.get('code', '')}\n```<end_code>"
            messages.append({"role": "assistant", "content": text})
        elif kind == "observation":
            messages.append({"role": "user", "content": f"Observation:\n{data.get('text', '')}"})
        elif kind == "final_answer":
            if not messages or messages[-1]["role"] != "assistant":
                messages.append({"role": "assistant", "content": str(data.get("answer", ""))})
    return messages


class SessionStore:
    """Thread-safe access to the sessions database (the agent runs in a worker thread and writes from there)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SessionError(f"{self.path}: not a usable sessions database ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, *, model: str = "", workspace: str | Path = "", title: str = "") -> str:
        """Start a new session and return its id (8 hex digits, unique in this store)."""
        now = time.time()
        with self._lock:
            while True:
                sid = uuid.uuid4().hex[:8]
                try:
                    self._db.execute(
                        "INSERT INTO sessions (id, created, updated, title, model, workspace) VALUES (?,?,?,?,?,?)",
                        (sid, now, now, title, model, str(workspace)),
                    )
                    break
                except sqlite3.IntegrityError:
                    continue
        return sid

    def append(self, session_id: str, event: ev.Event | dict[str, Any]) -> None:
        """Write one event now (committed before returning). Tokens are skipped."""
        data = event.to_dict() if isinstance(event, ev.Event) else dict(event)
        kind = str(data.get("event", ""))
        if kind in SKIPPED_KINDS:
            return
        step = data.get("step") if isinstance(data.get("step"), int) else None
        now = time.time()
        with self._lock, self._writing():
            # The number is taken inside the write transaction, so processes sharing a session never collide.
            self._db.execute(
                "INSERT INTO events (session_id, seq, kind, step, data, at) "
                "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM events WHERE session_id = ?",
                (session_id, kind, step, json.dumps(data, default=str), now, session_id),
            )
            if kind == "user" and data.get("text"):
                self._db.execute(
                    "UPDATE sessions SET title = ? WHERE id = ? AND title = ''",
                    (_title_of(str(data["text"])), session_id),
                )
            self._db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE`` waits for another process's to end)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def set_messages(self, session_id: str, messages: Iterable[dict[str, str]]) -> None:
        """Snapshot the agent's conversation (called after every finished step)."""
        payload = json.dumps([{"role": m["role"], "content": m["content"]} for m in messages])
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET messages = ?, updated = ? WHERE id = ?", (payload, time.time(), session_id)
            )

    def update(self, session_id: str, *, title: str | None = None, model: str | None = None) -> None:
        with self._lock:
            if title is not None:
                self._db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
            if model is not None:
                self._db.execute("UPDATE sessions SET model = ? WHERE id = ?", (model, session_id))

    def list(self, limit: int | None = None) -> list[SessionInfo]:
        """Sessions, most recently updated first, with their run and step counts."""
        query = (
            "SELECT s.id, s.created, s.updated, s.title, s.model, s.workspace, "
            "(SELECT COUNT(*) FROM events e WHERE e.session_id = s.id AND e.kind = 'run_started'), "
            "(SELECT COUNT(*) FROM events e WHERE e.session_id = s.id AND e.kind = 'step_started') "
            "FROM sessions s ORDER BY s.updated DESC, s.rowid DESC"
        )
        params: tuple = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [SessionInfo(*row) for row in rows]

    def resolve(self, ref: str | None = None) -> SessionInfo:
        """The session named by ``ref``: ``None`` or ``latest`` for the newest, else an id or a unique prefix."""
        sessions = self.list()
        if not sessions:
            raise SessionError("no saved sessions yet")
        if ref is None or ref.strip().lower() in ("", "latest"):
            return sessions[0]
        ref = ref.strip().lower()
        matches = [s for s in sessions if s.id == ref] or [s for s in sessions if s.id.startswith(ref)]
        if not matches:
            raise SessionError(f"no session {ref!r} (see `tui-agent sessions`)")
        if len(matches) > 1:
            raise SessionError(f"session id {ref!r} is ambiguous: {', '.join(s.id for s in matches[:5])}")
        return matches[0]

    def load(self, ref: str | None = None) -> SavedSession:
        """Read a whole session back: events in order and the agent's messages (rebuilt if never snapshotted)."""
        info = self.resolve(ref)
        with self._lock:
            rows = self._db.execute("SELECT data FROM events WHERE session_id = ? ORDER BY seq", (info.id,)).fetchall()
            (raw_messages,) = self._db.execute("SELECT messages FROM sessions WHERE id = ?", (info.id,)).fetchone()
        events = []
        for (data,) in rows:
            try:
                events.append(json.loads(data))
            except json.JSONDecodeError:
                continue
        messages: list[dict[str, str]] = []
        if raw_messages:
            try:
                messages = json.loads(raw_messages)
            except json.JSONDecodeError:
                messages = []
        if not messages:
            messages = messages_from_events(events)
        return SavedSession(info=info, events=events, messages=messages)

    def recent_inputs(self, limit: int = 200) -> list[str]:
        """What the user typed lately, across sessions, oldest first (the input box's history)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM events WHERE kind = 'user' ORDER BY at DESC LIMIT ?", (limit,)
            ).fetchall()
        texts = []
        for (data,) in reversed(rows):
            try:
                texts.append(str(json.loads(data).get("text", "")))
            except (json.JSONDecodeError, AttributeError):
                continue
        return [t for t in texts if t]


def _title_of(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 60 else line[:57] + "..."
