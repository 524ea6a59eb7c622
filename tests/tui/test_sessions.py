"""The session store: events written as they happen, listed, resolved, read back, and safe across a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from tui_agent.agent import events as ev
from tui_agent.sessions import SessionError, SessionStore, event_from_dict, messages_from_events


def _one_run(store: SessionStore, sid: str, task: str = "what is 2+3") -> None:
    store.append(sid, {"event": "user", "text": task, "attached": []})
    store.append(sid, ev.RunStarted(task=task, model="m"))
    store.append(sid, ev.StepStarted(step=1))
    store.append(sid, ev.Token(step=1, text="Thought"))
    store.append(sid, ev.CodeReady(step=1, thought="add", code="print(2+3)"))
    store.append(sid, ev.Observation(step=1, text="5"))
    store.append(sid, ev.FinalAnswer(answer="5", steps=1))
    store.append(sid, ev.RunFinished(answer="5", steps=1, stop_reason="answered"))


def test_events_round_trip_without_tokens():
    store = SessionStore()
    sid = store.create(model="m", workspace="/w")
    _one_run(store, sid)
    saved = store.load(sid)
    kinds = [e["event"] for e in saved.events]
    assert kinds == ["user", "run_started", "step_started", "code_ready", "observation", "final_answer", "run_finished"]
    typed = [event_from_dict(e) for e in saved.events]
    assert typed[3] == ev.CodeReady(step=1, thought="add", code="print(2+3)")
    assert typed[4] == ev.Observation(step=1, text="5")
    assert typed[0] == {"event": "user", "text": "what is 2+3", "attached": []}
    assert saved.info.title == "what is 2+3"
    assert (saved.info.runs, saved.info.steps) == (1, 1)


def test_messages_snapshot_wins_and_rebuild_is_the_fallback():
    store = SessionStore()
    sid = store.create()
    _one_run(store, sid)
    rebuilt = store.load(sid).messages
    assert [m["role"] for m in rebuilt] == ["user", "assistant", "user", "assistant"]
    assert "print(2+3)" in rebuilt[1]["content"] and "5" in rebuilt[2]["content"]
    snapshot = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    store.set_messages(sid, snapshot)
    assert store.load(sid).messages == snapshot


def test_list_resolve_and_errors():
    store = SessionStore()
    with pytest.raises(SessionError, match="no saved sessions"):
        store.resolve(None)
    first = store.create(title="first")
    second = store.create(title="second")
    store.append(second, {"event": "user", "text": "later"})
    assert [s.id for s in store.list()] == [second, first]
    assert store.resolve("latest").id == second
    assert store.resolve(first[:5]).id == first
    with pytest.raises(SessionError, match="no session 'zzzz'"):
        store.resolve("zzzz")
    ids = [store.create() for _ in range(40)]
    prefixes = {}
    for sid in ids + [first, second]:
        prefixes.setdefault(sid[0], []).append(sid)
    shared = next(p for p, group in prefixes.items() if len(group) > 1)
    with pytest.raises(SessionError, match="ambiguous"):
        store.resolve(shared)


def test_appends_continue_after_resume_and_history():
    path = None
    store = SessionStore()
    path = store.path
    sid = store.create()
    _one_run(store, sid, "first task")
    store.close()
    again = SessionStore(path)
    _one_run(again, sid, "second task")
    saved = again.load(sid)
    assert [e["text"] for e in saved.events if e["event"] == "user"] == ["first task", "second task"]
    assert again.recent_inputs() == ["first task", "second task"]


def test_two_stores_resuming_one_session_never_collide():
    """Two processes with the same session open (here: two connections) append in turn; nothing is lost."""
    first = SessionStore()
    sid = first.create()
    _one_run(first, sid, "before")
    second = SessionStore(first.path)
    for n in range(3):
        first.append(sid, {"event": "user", "text": f"a{n}"})
        second.append(sid, {"event": "user", "text": f"b{n}"})
    texts = [e["text"] for e in second.load(sid).events if e["event"] == "user"]
    assert texts == ["before", "a0", "b0", "a1", "b1", "a2", "b2"]


def test_two_processes_appending_to_one_session_keep_every_event(tmp_path):
    db = tmp_path / "sessions.sqlite"
    store = SessionStore(db)
    sid = store.create()
    script = textwrap.dedent(
        f"""
        import sys
        from tui_agent.sessions import SessionStore
        store = SessionStore({str(db)!r})
        for n in range(40):
            store.append({sid!r}, {{"event": "user", "text": sys.argv[1] + str(n)}})
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    rows = sqlite3.connect(db).execute("SELECT seq FROM events WHERE session_id = ? ORDER BY seq", (sid,)).fetchall()
    assert [seq for (seq,) in rows] == list(range(1, 81))
    texts = [e["text"] for e in store.load(sid).events]
    for name in ("a", "b"):
        assert [t for t in texts if t.startswith(name)] == [f"{name}{n}" for n in range(40)]


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "sessions.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SessionError, match="not a usable sessions database"):
        SessionStore(bad)
    assert bad.read_bytes().startswith(b"this is not sqlite")  # nothing lost


def test_a_killed_process_loses_at_most_the_step_in_progress(tmp_path):
    """A writer is killed (SIGKILL) in the middle of step 2: step 1 and the start of step 2 are on disk."""
    db = tmp_path / "sessions.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from tui_agent.agent import events as ev
        from tui_agent.sessions import SessionStore
        store = SessionStore({str(db)!r})
        sid = store.create(model="m")
        print(sid, flush=True)
        store.append(sid, {{"event": "user", "text": "task"}})
        store.append(sid, ev.RunStarted(task="task", model="m"))
        store.append(sid, ev.StepStarted(step=1))
        store.append(sid, ev.CodeReady(step=1, thought="t", code="x = 1"))
        store.append(sid, ev.Observation(step=1, text="ok"))
        store.set_messages(sid, [{{"role": "user", "content": "task"}}])
        store.append(sid, ev.StepStarted(step=2))
        store.append(sid, ev.Token(step=2, text="Thou"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    sid = done.stdout.split()[0]
    saved = SessionStore(db).load(sid)
    kinds = [e["event"] for e in saved.events]
    assert kinds == ["user", "run_started", "step_started", "code_ready", "observation", "step_started"]
    assert saved.messages == [{"role": "user", "content": "task"}]
    assert os.path.getsize(db) > 0
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_messages_from_events_keeps_turns_in_order():
    events = [
        {"event": "run_started", "task": "t"},
        {"event": "code_ready", "step": 1, "thought": "a", "code": "final_answer(1)"},
        {"event": "final_answer", "answer": "1"},
    ]
    messages = messages_from_events(events)
    assert [m["role"] for m in messages] == ["user", "assistant"]
