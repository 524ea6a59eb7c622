"""The interactive session driven with Pilot: a scripted model, the real agent loop and a real Jupyter kernel."""

from __future__ import annotations

from tests.tui.conftest import SIZE, finished, ready, send, wait_until
from tests.tui.fakes import ScriptedModel, step
from tui_agent.agent import events as ev
from tui_agent.models.base import ModelError
from tui_agent.tui.app import AgentEvent
from tui_agent.tui.backend import Backend
from tui_agent.tui.screens.approval import ApprovalScreen
from tui_agent.tui.widgets.conversation import FinalAnswerBlock, InfoBlock, Notice, StepBlock, UserMessage


def notices(app) -> list[str]:
    return [n.text for n in app.query(Notice)]


def errors(app) -> list[str]:
    return [n.text for n in app.query(Notice) if n.is_error]


async def test_whole_exchange_is_shown_and_saved(make_app):
    app = make_app([step("I will add the numbers.", "print(2 + 3)"), step("The sum is 5.", "final_answer(5)")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.status.model_state == "ready" and app.status.kernel == "idle"
        await send(pilot, "what is 2+3")
        await finished(pilot)
        assert [str(w.render()) for w in app.query(UserMessage)] == ["what is 2+3"]
        blocks = list(app.query(StepBlock))
        assert [b.code for b in blocks] == ["print(2 + 3)", "final_answer(5)"]
        assert blocks[0].observation == "5"
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["5"]
        assert app.status.tokens_per_second > 0 and app.status.context_used > 0
        assert app.prompt.text == ""
        saved = app.store.load(app.session_id)
    kinds = [e["event"] for e in saved.events]
    assert kinds[0] == "user" and kinds[-1] == "run_finished" and kinds.count("code_ready") == 2
    assert any(m["role"] == "assistant" and "print(2 + 3)" in m["content"] for m in saved.messages)


async def test_approval_run_and_skip(make_app):
    app = make_app(
        [step("Print it.", "print('ran')"), step("Print again.", "print('again')"), step("Done.", "final_answer(1)")],
        mode="ask",
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "go")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.screen.code == "print('ran')"
        app.post_message(AgentEvent(ev.AgentError("an event while the prompt is up")))
        await wait_until(pilot, lambda: "an event while the prompt is up" in errors(app))
        assert app.status.busy
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen) and app.screen.step == 2)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen) and app.screen.step == 3)
        await pilot.press("r")
        await finished(pilot)
        blocks = list(app.query(StepBlock))
        assert blocks[0].observation == "ran"
        assert "skipped" in blocks[1].observation
        assert app.kernel.execute("print(1)").stdout.strip() == "1"  # the kernel is fine after all that
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["1"]


async def test_approval_edit_runs_the_edited_code(make_app):
    app = make_app([step("Print it.", "print('model code')"), step("Done.", "final_answer('ok')")], mode="ask")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "go")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("e")
        await wait_until(pilot, lambda: bool(app.screen.query("#approval-editor")))
        editor = app.screen.query_one("#approval-editor")
        editor.load_text("print('edited by me')")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen) and app.screen.step == 2)
        await pilot.press("r")
        await finished(pilot)
        first = next(iter(app.query(StepBlock)))
        assert first.code == "print('edited by me')"
        assert first.observation == "edited by me"
        saved = app.store.load(app.session_id).events
        decisions = [(e["action"], e["code"]) for e in saved if e["event"] == "approval"]
        assert decisions == [("edit", "print('edited by me')"), ("run", None)]


async def test_approval_always_switches_to_auto(make_app):
    app = make_app([step("One.", "print(1)"), step("Two.", "print(2)"), step("Done.", "final_answer(3)")], mode="ask")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "go")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("a")
        await finished(pilot)
        assert app.mode == "auto" and app.status.mode == "auto"
        assert [b.observation for b in app.query(StepBlock)][:2] == ["1", "2"]
        assert any("Mode auto" in n for n in notices(app))


async def test_escape_stops_generation_and_keeps_the_session(make_app):
    model = ScriptedModel([step("Thinking for a long time.", "print('never')")], hold=True)
    app = make_app(model=model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "first task")
        await wait_until(pilot, model.streaming.is_set)
        await wait_until(pilot, lambda: bool(app.query(StepBlock)) and bool(next(iter(app.query(StepBlock))).streamed))
        live = next(iter(app.query(StepBlock)))
        assert live.streamed == "Thought: Thi"  # the tokens so far are on screen before the step is complete
        assert app.status.busy
        await pilot.press("escape")
        await finished(pilot)
        assert any("Stopped" in n for n in notices(app))
        model.hold = False
        model.replies = [step("Answer now.", "final_answer('second done')")]
        await send(pilot, "second task")
        await finished(pilot)
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["second done"]
        sent = " ".join(m["content"] for m in model.calls[-1])
        assert "first task" in sent and "second task" in sent


async def test_escape_interrupts_a_running_cell(make_app):
    app = make_app([step("Wait.", "import time\ntime.sleep(60)"), step("Done.", "final_answer('after')")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "sleep")
        await wait_until(pilot, lambda: app.status.kernel == "running")
        await pilot.pause(0.5)
        await pilot.press("escape")
        await finished(pilot)
        assert any("Stopped" in n for n in notices(app))
        assert app.kernel.alive
        await send(pilot, "continue")
        await finished(pilot)
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["after"]


async def test_ctrl_c_stops_then_twice_quits(make_app):
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+c")
        assert app.is_running
        await pilot.press("ctrl+c")
        await pilot.pause(0.1)
        assert not app.is_running


async def test_mode_key_and_read_only_runs_no_code(make_app, workspace):
    app = make_app([step("Write a file.", "open('made.txt', 'w').write('x')"), step("Done.", "final_answer('no')")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.status.mode == "auto"
        await pilot.press("f2")
        assert app.status.mode == "read-only" and app.agent.read_only
        await pilot.press("f2")
        assert app.status.mode == "ask" and app.agent.approver is not None
        await send(pilot, "/mode read-only")
        await pilot.pause(0.05)
        await send(pilot, "make a file")
        await finished(pilot)
        assert not (workspace / "made.txt").exists()
        assert "not run" in next(iter(app.query(StepBlock))).observation


async def test_slash_commands(make_app):
    app = make_app([step("Done.", "final_answer(7)")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/help")
        await send(pilot, "/sag 3")
        await send(pilot, "/sag lots")
        await send(pilot, "/mode bogus")
        await send(pilot, "/nonsense")
        await send(pilot, "/model")
        await pilot.pause(0.1)
        assert app.agent.sag == 3 and app.settings.sag == 3
        infos = [b.source for b in app.query(InfoBlock)]
        assert "/resume" in infos[0] and "`scripted` ← current" in infos[1] and "`other`" in infos[1]
        errs = errors(app)
        assert any("/sag needs a whole number" in e for e in errs)
        assert any("ask, auto or read-only" in e for e in errs)
        assert any("unknown command /nonsense" in e for e in errs)
        await send(pilot, "/sag 1")
        await send(pilot, "seven?")
        await finished(pilot)
        await send(pilot, "/save my title")
        await send(pilot, "/context")
        await send(pilot, "/sessions")
        await pilot.pause(0.1)
        infos = [b.source for b in app.query(InfoBlock)]
        assert "**Context**" in infos[-2] and "messages: 3" in infos[-2]
        assert app.session_id in infos[-1] and "my title" in infos[-1]
        assert app.store.resolve(app.session_id).title == "my title"
        old = app.session_id
        await send(pilot, "/clear")
        await pilot.pause(0.1)
        assert not list(app.query(StepBlock)) and app.session_id is None
        assert [m["role"] for m in app.agent.messages] == ["system"]
        await send(pilot, "/quit")
        await pilot.pause(0.1)
        assert not app.is_running
    assert old


async def test_index_command_refreshes_the_real_index(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/index")
        await wait_until(pilot, lambda: any(n.startswith("Index") and "files" in n for n in notices(app)))
        summary = next(n for n in notices(app) if n.startswith("Index:"))
        assert "symbols" in summary


async def test_index_failure_is_a_notice(make_app):
    def broken(workspace):
        raise OSError(28, "No space left on device")

    app = make_app(refresh_index=broken)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/index")
        await wait_until(pilot, lambda: bool(errors(app)))
        assert errors(app) == ["Index refresh failed: OSError: [Errno 28] No space left on device"]


async def test_resume_shows_the_conversation_and_restores_the_agent(make_app):
    first = make_app([step("Remember.", "secret = 41 + 1\nprint(secret)"), step("Done.", "final_answer(42)")])
    async with first.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "compute the secret")
        await finished(pilot)
        sid = first.session_id
    second = make_app([step("It was 42.", "final_answer('it was 42')")], resume="latest")
    async with second.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert second.session_id == sid
        assert [str(w.render()) for w in second.query(UserMessage)] == ["compute the secret"]
        assert [a.answer for a in second.query(FinalAnswerBlock)] == ["42"]
        assert any("compute the secret" in m["content"] for m in second.agent.messages)
        assert second.agent.messages[0]["role"] == "system"
        await send(pilot, "what was it?")
        await finished(pilot)
        sent = " ".join(m["content"] for m in second.scripted.calls[-1])
        assert "compute the secret" in sent and "what was it?" in sent
    users = [e["text"] for e in second.store.load(sid).events if e["event"] == "user"]
    assert users == ["compute the secret", "what was it?"]


async def test_resume_command_and_unknown_id(make_app):
    app = make_app([step("Done.", "final_answer(1)")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/resume")
        await pilot.pause(0.1)
        assert any("no saved sessions yet" in e for e in errors(app))
        await send(pilot, "one")
        await finished(pilot)
        await send(pilot, "/resume deadbeef")
        await pilot.pause(0.1)
        assert any("no session 'deadbeef'" in e for e in errors(app))
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["1"]  # the view is untouched


async def test_missing_model_is_a_notice_not_a_traceback(make_app, tmp_path):
    app = make_app(load_model=Backend().load_model)
    app.settings.model = app.model_name = str(tmp_path / "missing.gguf")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.model_state == "error")
        errs = errors(app)
        assert any("could not be loaded" in e and "missing.gguf" in e for e in errs)
        await send(pilot, "hello?")
        await pilot.pause(0.1)
        assert any("No model is loaded" in e for e in errors(app))
        assert app.prompt.text == "hello?"  # nothing the user typed is lost
        assert not list(app.query(UserMessage))
        await wait_until(pilot, lambda: app.status.kernel == "idle")  # the rest of the session still works


async def test_kernel_that_cannot_start_is_a_notice(make_app):
    def broken(workspace, settings):
        raise RuntimeError("ipykernel is not installed")

    app = make_app(make_kernel=broken)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.kernel == "dead")
        assert any("kernel could not start" in e and "ipykernel is not installed" in e for e in errors(app))


async def test_mentions_attach_files_and_bad_ones_keep_the_text(make_app):
    app = make_app([step("Read it.", "final_answer(42)")])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "what is in @nope.txt")
        await pilot.pause(0.1)
        assert any("@nope.txt: no such file" in e for e in errors(app))
        assert app.prompt.text == "what is in @nope.txt"
        await send(pilot, "what is in @notes.txt")
        await finished(pilot)
        sent = app.scripted.calls[0][-1]["content"]
        assert "The secret number is 42." in sent
        assert "attached: notes.txt" in str(next(iter(app.query(UserMessage))).render())


async def test_typing_completes_and_history_recalls(make_app):
    app = make_app(history=["an older question"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("slash", "s", "a")
        assert app.prompt.suggestion == ""  # /sag and /save: both listed, nothing to insert yet
        assert "/save" in str(app.query_one("#completions").render())
        await pilot.press("ctrl+a", "ctrl+k", "slash", "s", "e")
        assert app.prompt.suggestion == "ssions"
        await pilot.press("tab")
        assert app.prompt.text == "/sessions"
        await pilot.press("ctrl+a", "ctrl+k", "at", "space", "@", "n")
        await pilot.press("tab")
        assert app.prompt.text.endswith("@notes.txt")
        assert "@notes.txt" in str(app.query_one("#completions").render())
        await pilot.press("ctrl+a", "ctrl+k")
        await pilot.press("up")
        assert app.prompt.text == "an older question"
        await pilot.press("down")
        assert app.prompt.text == ""
        await pilot.press("o", "n", "e", "ctrl+j", "t", "w", "o")
        assert app.prompt.text == "one\ntwo"


async def test_auto_scroll_stops_when_the_user_scrolls_up(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        conversation = app.conversation
        for _ in range(3):
            await send(pilot, "/help")
        await pilot.pause(0.1)
        assert conversation.max_scroll_y > 0 and conversation.scroll_y == conversation.max_scroll_y
        await pilot.press("pageup")
        await pilot.pause(0.1)
        held = conversation.scroll_y
        assert held < conversation.max_scroll_y
        await send(pilot, "/help")
        await pilot.pause(0.1)
        assert conversation.scroll_y == held  # new output did not pull the view down
        for _ in range(6):
            await pilot.press("pagedown")
        await send(pilot, "/help")
        await pilot.pause(0.1)
        assert conversation.scroll_y == conversation.max_scroll_y  # following again


async def test_a_kernel_that_dies_is_reported_and_the_session_goes_on(make_app):
    app = make_app(
        [
            step("Crash.", "import os\nos._exit(1)"),
            step("Again.", "print('alive')"),
            step("Done.", "final_answer('ok')"),
        ]
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "crash the kernel")
        await finished(pilot)
        shown = " ".join(b.observation or "" for b in app.query(StepBlock)) + " ".join(notices(app))
        assert "Traceback" not in shown
        first = next(iter(app.query(StepBlock))).observation
        assert first and ("died" in first.lower() or "restart" in first.lower())
        assert app.status.kernel == "idle"


async def test_escape_at_the_approval_prompt_stops_without_running(make_app, workspace):
    app = make_app([step("Write.", "open('made.txt', 'w').write('x')")], mode="ask")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "make a file")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("escape")
        await finished(pilot)
        assert not isinstance(app.screen, ApprovalScreen)
        assert not (workspace / "made.txt").exists()
        assert any("Stopped" in n for n in notices(app))


async def test_model_switch_keeps_the_conversation(make_app):
    loaded = []

    def load(name, settings):
        if name == "broken":
            raise ModelError("No such model file: broken")
        model = ScriptedModel([step("Done.", f"final_answer('{name}')")])
        model.name = name
        loaded.append(name)
        return model

    app = make_app(load_model=load)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "first")
        await finished(pilot)
        first_agent = app.agent
        await send(pilot, "/model other")
        await wait_until(pilot, lambda: app.agent is not first_agent and app.agent is not None)
        assert loaded == ["scripted", "other"] and app.status.model == "other"
        assert any("first" in m["content"] for m in app.agent.messages)
        switched = app.agent
        await send(pilot, "/model broken")
        await wait_until(pilot, lambda: any("broken" in e for e in errors(app)))
        assert app.agent is switched and app.status.model == "other" and app.status.model_state == "ready"
        await send(pilot, "second")
        await finished(pilot)
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["scripted", "other"]


async def test_an_unusable_sessions_file_is_a_notice_and_is_left_alone(make_app, isolated_dirs):
    broken = isolated_dirs / "data" / "sessions.sqlite"
    broken.write_bytes(b"not a database" * 64)
    app = make_app([step("Done.", "final_answer(2)")], store=False)  # as the command does when it cannot open it
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "one plus one")
        await finished(pilot)
        assert [a.answer for a in app.query(FinalAnswerBlock)] == ["2"]  # the work goes on
        assert any("cannot be saved" in e and "not a usable sessions database" in e for e in errors(app))
    assert broken.read_bytes() == b"not a database" * 64
