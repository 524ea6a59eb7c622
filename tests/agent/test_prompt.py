"""The system prompt and few-shot examples: real tool signatures, the format the parser expects, private mode."""

from __future__ import annotations

import ast
import inspect

from tui_agent.agent.parse import parse_step
from tui_agent.agent.prompt import (
    build_system_prompt,
    compact_system_prompt,
    load_examples,
    rebuild_system_prompt,
    recorded_repo_map,
    render_example,
    static_prefix,
    workspace_repo_map,
)
from tui_agent.tools.prelude import make_tools


def _calls(code: str):
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield node


def test_examples_call_tools_with_their_real_signatures(tmp_path):
    tools = make_tools(tmp_path, web=True)
    used = set()
    for example in load_examples():
        for step in example["steps"]:
            for call in _calls(step["code"]):  # every example's code must parse
                if call.func.id in tools:
                    used.add(call.func.id)
                    args = [ast.literal_eval(a) if isinstance(a, ast.Constant) else None for a in call.args]
                    kwargs = {k.arg: None for k in call.keywords}
                    inspect.signature(tools[call.func.id]).bind(*args, **kwargs)  # raises on a wrong signature
        declared = set(example.get("tools", []))
        assert declared <= set(tools), example["task"]
    assert {"final_answer", "web_search", "read_file", "find_symbol", "edit_file", "run"} <= used


def test_every_example_step_parses_and_ends_with_final_answer():
    for example in load_examples():
        text = render_example(example)
        assert text.startswith("Task: ")
        for step in example["steps"]:
            rendered = f"Thought: {step['thought']}\n```py\n{step['code']}\n```<end_code>"
            parsed = parse_step(rendered)
            assert parsed.code == step["code"] and parsed.thought == step["thought"]
        assert "final_answer(" in example["steps"][-1]["code"]
        assert "observation" not in example["steps"][-1]


def test_system_prompt_has_tools_examples_and_repo_map():
    prompt = build_system_prompt(web=True, repo_map="src/app.py: def main()")
    assert "web_search(query: str, k: int = 5)" in prompt
    assert "src/app.py: def main()" in prompt
    assert 'web_search("Tim Berners-Lee' in prompt
    assert "<end_code>" in prompt and "{" not in prompt.split("Tools")[0]


def test_private_mode_drops_web_tools_and_their_examples():
    prompt = build_system_prompt(web=False, repo_map="")
    assert "web_search" not in prompt and "visit_page" not in prompt
    assert "print(count)" in prompt  # the other examples stay
    assert "The workspace's code (a map)" not in prompt


def test_repo_map_of_an_empty_or_missing_workspace_is_empty(tmp_path):
    assert workspace_repo_map(tmp_path / "missing") == ""


def test_compact_prompt_keeps_instructions_tools_and_map_but_no_examples():
    full = build_system_prompt(web=False, repo_map="src/app.py: def main()")
    compact = build_system_prompt(web=False, repo_map="src/app.py: def main()", style="compact")
    assert compact == compact_system_prompt(full) and len(compact) < 0.6 * len(full)
    assert "print(count)" in full and "print(count)" not in compact and "Examples:" not in compact
    assert "src/app.py: def main()" in compact and "final_answer(answer: Any)" in compact
    assert compact.rstrip().endswith('Start with "Thought:".')
    assert compact_system_prompt(compact) == compact  # compacting twice changes nothing


def test_student_prompt_is_signatures_and_the_map_rebuilt_from_any_recorded_prompt():
    full = build_system_prompt(web=True, repo_map="src/app.py: def main()")
    student = build_system_prompt(web=True, repo_map="src/app.py: def main()", style="student")
    compact = build_system_prompt(web=True, repo_map="src/app.py: def main()", style="compact")
    assert len(student) < 0.4 * len(compact)
    assert "search_code(query: str, k: int = 5) -> str\nfind_symbol(" in student  # signatures, no docstrings
    assert "web_search(query: str" in student and "Rules:" not in student and "Examples:" not in student
    assert student.endswith("src/app.py: def main()") and "<end_code>" in student
    assert rebuild_system_prompt(full, "student") == rebuild_system_prompt(compact, "student") == student
    assert static_prefix(student) == static_prefix(build_system_prompt(web=True, style="student"))
    assert "web_search" not in build_system_prompt(web=False, style="student")


def test_repo_map_comes_after_the_static_prefix_and_compact_text_is_unchanged():
    full = build_system_prompt(web=False, repo_map="src/app.py: def main()")
    assert full.index("print(count)") < full.index("src/app.py") < full.index("Now solve")
    prefix = static_prefix(full)
    assert "src/app.py" not in prefix and "print(count)" in prefix
    assert prefix == static_prefix(build_system_prompt(web=False, repo_map=""))  # one prefix for every workspace
    # a prompt recorded before the map moved (map before the examples) compacts to the same text
    repo = "\nThe workspace's code (a map):\nsrc/app.py: def main()\n"
    recorded = full.replace(repo, "").replace("\n\nExamples:\n", "\n" + repo + "\nExamples:\n", 1)
    assert recorded != full and recorded.index("src/app.py") < recorded.index("print(count)")
    assert compact_system_prompt(recorded) == compact_system_prompt(full)
    compact = build_system_prompt(web=False, repo_map="src/app.py: def main()", style="compact")
    assert static_prefix(compact) == static_prefix(build_system_prompt(web=False, repo_map="", style="compact"))


def test_a_recorded_prompt_is_rebuilt_with_todays_wording_and_its_own_tools_and_map():
    current = build_system_prompt(web=True, repo_map="src/app.py: def main()")
    repo = "\nThe workspace's code (a map):\nsrc/app.py: def main()\n"
    older = current.replace(repo, "").replace("\n\nExamples:\n", "\n" + repo + "\nExamples:\n", 1)  # map first
    older = older.replace(
        "Call it once, with the value itself: final_answer(total).", "Call it once: final_answer(42)."
    )
    assert older != current and recorded_repo_map(older) == recorded_repo_map(current) == "src/app.py: def main()"
    assert rebuild_system_prompt(older) == current
    assert rebuild_system_prompt(older, "compact") == build_system_prompt(
        web=True, repo_map="src/app.py: def main()", style="compact"
    )
    private = build_system_prompt(web=False, repo_map="")
    assert rebuild_system_prompt(private) == private and recorded_repo_map(private) == ""  # no web tools added
    custom = "You are a helpful assistant.\n\nExamples:\nTask: x\n\nNow solve the user's task."
    assert rebuild_system_prompt(custom) == custom  # not built by this code: left as it is
    assert rebuild_system_prompt(custom, "compact") == compact_system_prompt(custom)
