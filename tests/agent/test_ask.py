"""`tui-agent ask`: argument checks, the no-TTY refusal, --json shape, --save, exit codes, Ctrl-C.

The model is scripted here (loader patched) so these test the command's logic; the kernel is the real one.
End to end with the real Qwen model: test_end_to_end.py.
"""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from tui_agent.agent.trajectory import read_trajectories
from tui_agent.cli import app
from tui_agent.commands import ask as ask_module

from .fakes import FakeKernel, ScriptedModel, step

runner = CliRunner()


@pytest.fixture
def scripted(monkeypatch):
    """Make the loader return a scripted model with the given replies."""
    holder = {}

    def use(*replies):
        model = ScriptedModel(list(replies))
        holder["model"] = model
        monkeypatch.setattr("tui_agent.models.loader.load_chat_model", lambda *a, **k: model)
        return model

    return use


def test_refuses_without_tty_and_without_yes(tmp_path):
    result = runner.invoke(app, ["ask", "What is 2+2?", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "stdin is not a terminal" in result.output and "--yes" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-steps", "0"], "--max-steps must be from 1 to 100, not 0"),
        (["--sag", "0"], "--sag must be from 1 to 16, not 0"),
        (["--sag", "17"], "--sag must be from 1 to 16, not 17"),
        (["--temperature", "-1"], "--temperature must be from 0.0 to 2.0, not -1.0"),
        (["--workspace", "/nonexistent/dir"], "is not a directory"),
        (["--model", "/nonexistent/model.gguf"], "No such model file"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    argv = ["ask", "task", "--yes", *args]
    if "--workspace" not in args:
        argv += ["--workspace", str(tmp_path)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_empty_task(tmp_path):
    result = runner.invoke(app, ["ask", "  ", "--yes", "--workspace", str(tmp_path)])
    assert result.exit_code == 2 and "task is empty" in result.output


def test_bad_config_is_a_usage_error(tmp_path, isolated_dirs):
    (isolated_dirs / "config" / "config.toml").write_text("max_steps = [\n")
    result = runner.invoke(app, ["ask", "x", "--yes", "--workspace", str(tmp_path)])
    assert result.exit_code == 2 and "config.toml" in result.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_step = 4\n", "config.toml:1: unknown setting 'max_step'; did you mean 'max_steps'?"),
        ("web = true\nsag = 2.9\n", "config.toml:2: setting 'sag' must be a whole number, not 2.9"),
        ("sag = 40\n", "config.toml:1: setting 'sag' must be from 1 to 16, not 40"),
    ],
)
def test_unusable_config_is_one_line_exit_2_naming_file_key_and_allowed_values(tmp_path, isolated_dirs, text, message):
    (isolated_dirs / "config" / "config.toml").write_text(text)
    result = runner.invoke(app, ["ask", "x", "--yes", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {isolated_dirs / 'config' / message}")


def test_json_events_then_result_and_save(tmp_path, scripted):
    scripted(step("compute", "x = 2 ** 20\nprint(x)"), step("answer", "final_answer(x)"))
    save = tmp_path / "out" / "traj.jsonl"
    result = runner.invoke(
        app, ["ask", "2**20?", "--yes", "--json", "--no-web", "--save", str(save), "--workspace", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds[0] == "run_started" and kinds[-2] == "run_finished" and kinds[-1] == "result"
    assert "token" not in kinds and "code_ready" in kinds and "usage" in kinds
    observation = next(line for line in lines if line["event"] == "observation")
    assert observation["text"].strip() == "1048576"
    final = lines[-1]
    assert final["answer"] == "1048576" and final["steps"] == 2 and final["stop_reason"] == "answered"
    assert final["tokens"]["completion"] > 0 and final["seconds"] >= 0
    (run,) = read_trajectories(save)
    assert run.final_answer == "1048576" and len(run.steps) == 2


def test_no_answer_exits_1(tmp_path, scripted):
    scripted(step("a", "print(1)"), step("b", "print(2)"))
    result = runner.invoke(app, ["ask", "t", "-y", "--max-steps", "1", "--workspace", str(tmp_path)])
    assert result.exit_code == 1
    assert "No answer: it ran out of steps" in result.output


def test_rich_output_shows_steps_and_answer(tmp_path, scripted):
    scripted(step("I will compute it", "print(6 * 7)"), step("done", "final_answer(42)"))
    result = runner.invoke(app, ["ask", "6*7?", "-y", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("Step 1", "I will compute it", "print(6 * 7)", "Observation", "42", "Answer", "2 steps"):
        assert text in out


def test_approval_auto_in_config_needs_no_tty(tmp_path, scripted, isolated_dirs):
    (isolated_dirs / "config" / "config.toml").write_text('approval = "auto"\n')
    scripted(step("a", "final_answer(1)"))
    result = runner.invoke(app, ["ask", "t", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_read_only_config_never_runs_code(tmp_path, scripted, isolated_dirs):
    (isolated_dirs / "config" / "config.toml").write_text('approval = "read-only"\n')
    scripted(step("a", "open('made.txt', 'w').write('x')"), step("b", "final_answer('no')"))
    result = runner.invoke(app, ["ask", "t", "--json", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "made.txt").exists()


def test_ctrl_c_cancels_cleanly_and_keeps_trajectory(tmp_path):
    """Ctrl-C arriving in the main thread while a cell runs: cancel, interrupt the cell, exit 130, record."""
    from tui_agent.agent.loop import Agent
    from tui_agent.agent.trajectory import TrajectoryRecorder

    running = threading.Event()
    kernel = FakeKernel(block=running)
    save = tmp_path / "t.jsonl"
    agent = Agent(
        ScriptedModel([step("spin", "while True: pass")]),
        kernel,
        workspace=tmp_path,
        repo_map="",
        recorder=TrajectoryRecorder(save),
    )

    class InterruptingRenderer(ask_module.JsonRenderer):
        fired = False

        def event(self, event):
            super().event(event)
            if event.kind == "code_ready" and not self.fired:
                self.fired = True
                running.wait(10)
                raise KeyboardInterrupt

    import queue

    code = ask_module._drive(agent, "spin forever", InterruptingRenderer(), queue.Queue())
    assert code == 130
    assert kernel.interrupted.is_set()
    (run,) = read_trajectories(save)
    assert run.stop_reason == "cancelled" and run.steps[0].code == "while True: pass"


@pytest.mark.parametrize("typed, action", [("r", "run"), ("s", "skip"), ("a", "always"), ("always", "always")])
def test_interactive_approval_choices(monkeypatch, typed, action):
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: typed)
    decision = ask_module.RichRenderer().approve(1, "print(1)")
    assert decision.action == action


def test_interactive_edit_uses_the_editor(monkeypatch):
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: "e")
    seen = {}

    def fake_edit(text, **kwargs):
        seen["text"] = text
        return "print(2)\n"

    monkeypatch.setattr("click.edit", fake_edit)
    decision = ask_module.RichRenderer().approve(1, "print(1)")
    assert seen["text"] == "print(1)" and decision.action == "edit" and decision.code == "print(2)\n"


def test_interactive_edit_without_editor_reads_lines(monkeypatch):
    import click

    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: "e")

    def no_editor(text, **kwargs):
        raise click.ClickException("no editor")

    monkeypatch.setattr("click.edit", no_editor)
    lines = iter(["x = 3", "print(x)", ""])
    monkeypatch.setattr("builtins.input", lambda *a: next(lines))
    decision = ask_module.RichRenderer().approve(1, "print(1)")
    assert decision.action == "edit" and decision.code == "x = 3\nprint(x)"


def test_interactive_edit_to_nothing_skips(monkeypatch):
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: "e")
    monkeypatch.setattr("click.edit", lambda text, **k: "   \n")
    assert ask_module.RichRenderer().approve(1, "print(1)").action == "skip"


def test_terminal_output_fills_every_wait_with_a_spinner(tmp_path):
    import io
    import queue

    from rich.console import Console

    from tui_agent.agent.loop import Agent

    screen = io.StringIO()
    renderer = ask_module.RichRenderer(console=Console(file=screen, force_terminal=True, width=80))
    with renderer.waiting("Loading the model..."):
        pass
    replies = [step("Compute it.", "print(6 * 7)"), step("Done.", "final_answer(42)")]
    agent = Agent(ScriptedModel(replies), FakeKernel(), workspace=tmp_path, repo_map="", max_steps=3)
    code = ask_module._drive(agent, "What is 6*7?", renderer, queue.Queue())
    shown = screen.getvalue()
    assert code == 0
    for wait in ("Loading the model...", "Thinking...", "Running..."):
        assert wait in shown
    assert "print(6 * 7)" in shown and "42" in shown and "Answer" in shown
    assert renderer._live is None  # nothing left spinning after the run


def test_piped_output_has_no_spinners(tmp_path):
    import io
    import queue

    from rich.console import Console

    from tui_agent.agent.loop import Agent

    screen = io.StringIO()
    renderer = ask_module.RichRenderer(console=Console(file=screen, force_terminal=False, width=80))
    agent = Agent(ScriptedModel([step("Done.", "final_answer(1)")]), FakeKernel(), workspace=tmp_path, repo_map="")
    assert ask_module._drive(agent, "one", renderer, queue.Queue()) == 0
    shown = screen.getvalue()
    assert "Thinking" not in shown and "\x1b[" not in shown and "final_answer(1)" in shown


def test_help_teaches_with_examples_and_exit_codes():
    result = runner.invoke(app, ["ask", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    for words in ("final_answer", "Examples", 'tui-agent ask "What is 2**100 % 97?"', "Exit codes", "config.toml"):
        assert words in result.output


def test_ctrl_c_while_loading_exits_130_with_one_line(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tui_agent.models.loader.load_chat_model", interrupted)
    result = runner.invoke(app, ["ask", "-y", "What is 2+2?", "--workspace", str(tmp_path)])
    assert result.exit_code == 130
    assert "Interrupted before the agent started; nothing ran." in result.output


EDIT = 'print(edit_file("calc.py", "return a - b", "return a + b"))'


def test_yes_prints_each_change_as_a_diff_and_json_carries_it(tmp_path, scripted):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    scripted(step("fix", EDIT), step("done", "final_answer('fixed')"))
    result = runner.invoke(app, ["ask", "fix it", "-y", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "-    return a - b" in result.stdout and "+    return a + b" in result.stdout
    assert "calc.py: written." in result.stdout
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    scripted(step("fix", EDIT), step("done", "final_answer('fixed')"))
    result = runner.invoke(app, ["ask", "fix it", "-y", "--json", "--workspace", str(tmp_path)])
    events = [json.loads(line) for line in result.stdout.splitlines()]
    (change,) = [e for e in events if e["event"] == "file_changed"]
    assert change["path"] == "calc.py" and change["status"] == "applied" and "+    return a + b" in change["diff"]


def test_asking_shows_the_diff_and_a_refusal_writes_nothing(tmp_path, scripted, monkeypatch):
    import types

    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    scripted(step("fix", EDIT), step("done", "final_answer('no')"))
    monkeypatch.setattr(ask_module, "sys", types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True)))
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: "r")
    asked = []
    monkeypatch.setattr("rich.prompt.Confirm.ask", lambda question, **k: asked.append(question) or False)
    result = runner.invoke(app, ["ask", "fix it", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert asked == ["Write this change to calc.py?"]
    assert "+    return a + b" in result.stdout and "calc.py: refused, not written." in result.stdout
    assert "The user refused the change to calc.py" in result.stdout
    assert (tmp_path / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
