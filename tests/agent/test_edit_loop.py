"""File edits through the agent loop, a real Jupyter kernel and a temporary git repository: the diff reaches the
approver, accepted changes are written and undoable, refused ones are not, read-only writes nothing, and a file
the user changed while the edit waited is not overwritten. The model is scripted; the kernel and files are real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.scripted import ScriptedModel, step
from tui_agent.agent import events as ev
from tui_agent.agent.approval import Approval
from tui_agent.agent.loop import Agent
from tui_agent.undo import UndoStore

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
EDIT = 'print(edit_file("calc.py", "return a - b", "return a + b"))\nprint(run(["python", "-m", "pytest", "-q"]))'


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from tui_agent.tools.kernel import Kernel

    root = tmp_path_factory.mktemp("repo")
    k = Kernel(root, web=False, timeout=60)
    k.start()
    yield k
    k.shutdown()


@pytest.fixture
def repo(kernel) -> Path:
    root = kernel.workspace
    for name in list(root.iterdir()):
        subprocess.run(["rm", "-rf", str(name)], check=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / "calc.py").write_text(BUGGY)
    (root / "test_calc.py").write_text(TEST)
    (root / "notes.txt").write_text("the user's uncommitted notes\n")
    return root


class Approver:
    """Runs every cell; answers file changes from a list, and can touch a file while "thinking"."""

    def __init__(self, answers: list[bool], meanwhile=None):
        self.answers = list(answers)
        self.asked: list[tuple[str, str]] = []
        self.meanwhile = meanwhile

    def __call__(self, step: int, code: str) -> Approval:
        return Approval("run")

    def approve_edit(self, step: int, path: str, diff: str) -> bool:
        self.asked.append((path, diff))
        if self.meanwhile:
            self.meanwhile()
        return self.answers.pop(0)


def run(agent: Agent, task: str = "fix the bug") -> list[ev.Event]:
    return [e for e in agent.run(task) if not isinstance(e, ev.Token)]


def agent_for(kernel, repo, replies, **kw) -> Agent:
    return Agent(ScriptedModel(replies), kernel, workspace=repo, web=False, repo_map="", max_steps=3, **kw)


def observations(events) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Observation)]


def test_auto_mode_writes_at_once_tests_see_it_and_undo_restores(kernel, repo):
    agent = agent_for(kernel, repo, [step("fix", EDIT), step("done", "final_answer('fixed')")])
    events = run(agent)
    (changed,) = [e for e in events if isinstance(e, ev.FileChanged)]
    assert changed.status == "applied" and "-    return a - b\n+    return a + b" in changed.diff
    assert "Edited calc.py (+1 -1)." in observations(events)[0] and "1 passed" in observations(events)[0]
    assert (repo / "calc.py").read_text() == BUGGY.replace("-", "+")
    assert UndoStore(repo).undo(1) == ["restored calc.py (change #1)"]
    assert (repo / "calc.py").read_text() == BUGGY
    assert (repo / "notes.txt").read_text() == "the user's uncommitted notes\n"


def test_ask_mode_accept_writes_after_the_cell(kernel, repo):
    approver = Approver([True])
    agent = agent_for(kernel, repo, [step("fix", EDIT), step("done", "final_answer('ok')")], approver=approver)
    events = run(agent)
    assert approver.asked[0][0] == "calc.py" and "+    return a + b" in approver.asked[0][1]
    kinds = [e.kind for e in events]
    assert kinds.index("edit_approval_needed") < kinds.index("file_changed") < kinds.index("observation")
    text = observations(events)[0]
    assert "1 failed" in text  # the tests in the same cell ran before the change was accepted
    assert "The user accepted the change to calc.py; it is written." in text
    assert (repo / "calc.py").read_text() == BUGGY.replace("-", "+")
    assert [Path(c.path).name for c in UndoStore(repo).changes()] == ["calc.py"]


def test_ask_mode_refuse_leaves_the_file_and_tells_the_model(kernel, repo):
    agent = agent_for(kernel, repo, [step("fix", EDIT), step("ok", "final_answer('no')")], approver=Approver([False]))
    events = run(agent)
    (changed,) = [e for e in events if isinstance(e, ev.FileChanged)]
    assert changed.status == "refused"
    assert "The user refused the change to calc.py; it was not written." in observations(events)[0]
    assert (repo / "calc.py").read_text() == BUGGY
    assert UndoStore(repo).changes() == []


def test_a_file_changed_while_the_edit_waited_is_not_overwritten(kernel, repo):
    def user_edits():
        (repo / "calc.py").write_text(BUGGY + "# the user's edit\n")

    approver = Approver([True], meanwhile=user_edits)
    agent = agent_for(kernel, repo, [step("fix", EDIT), step("ok", "final_answer('no')")], approver=approver)
    events = run(agent)
    (changed,) = [e for e in events if isinstance(e, ev.FileChanged)]
    assert changed.status == "conflict"
    assert "changed on disk after the edit was proposed" in observations(events)[0]
    assert (repo / "calc.py").read_text() == BUGGY + "# the user's edit\n"


def test_the_kernel_refuses_writes_under_the_read_only_policy(kernel, repo):
    kernel.set_edit_policy("refuse")
    try:
        result = kernel.execute('write_file("calc.py", "gone")')
    finally:
        kernel.set_edit_policy("apply")
    assert "EditError: read-only mode: calc.py was not changed" in result.error
    assert "prelude.py" in result.error and "edits.py" not in result.error  # one short frame, not the insides
    assert (repo / "calc.py").read_text() == BUGGY


def test_read_only_agent_runs_nothing_and_writes_nothing(kernel, repo):
    agent = agent_for(kernel, repo, [step("fix", EDIT), step("ok", "final_answer('no')")], read_only=True)
    events = run(agent)
    assert "Read-only mode" in observations(events)[0]
    assert not [e for e in events if isinstance(e, ev.FileChanged)]
    assert (repo / "calc.py").read_text() == BUGGY


def test_index_sees_the_edit_at_once(kernel, repo):
    code = 'print(edit_file("calc.py", "def add", "def plus"))\nprint(find_symbol("plus"))'
    agent = agent_for(
        kernel, repo, [step("rename", f'print(find_symbol("add"))\n{code}'), step("ok", "final_answer(1)")]
    )
    text = observations(run(agent))[0]
    assert "calc.py:1" in text.split("Edited calc.py")[1], text


def test_sag_trials_leave_no_change_and_only_the_chosen_step_is_recorded(kernel, repo):
    fix = step("fix", 'print(edit_file("calc.py", "return a - b", "return a + b"))')
    replies = [fix, fix, step("done", "final_answer('ok')"), step("done", "final_answer('ok')")]
    agent = agent_for(kernel, repo, replies, sag=2)
    events = run(agent)
    assert [e.status for e in events if isinstance(e, ev.FileChanged)] == ["applied"]
    assert (repo / "calc.py").read_text() == BUGGY.replace("-", "+")
    assert len(UndoStore(repo).changes()) == 1  # the two trial runs wrote, were rolled back, and left no record
