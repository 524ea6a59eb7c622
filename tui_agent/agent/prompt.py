"""The system prompt: instructions and few-shot examples kept as data files, plus the tools' docs and a repo map.

Everything that varies per workspace (the repo map) comes last, so the long static part before it (instructions,
tools, examples) is one reusable prefix: its llama.cpp state is cached on disk (``static_prefix``).

The examples are JSON lines (task, tools used, steps of thought/code/observation) so that the app, the teacher and
the student all see the same text; an example is only shown when every tool it uses is in the kernel.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from tui_agent.agent.parse import END_CODE

PROMPTS = Path(__file__).with_name("prompts")

FALLBACK_TOOLS = (
    "def final_answer(answer) -> None:\n"
    '    """Give the final answer to the task and stop. Call it once, with the value itself."""'
)

STEP_PREFIX = "Thought:"
"""Every step's turn starts with this, written for the model: a base model (the embedded default) then continues
in the agent's format instead of drifting into free text."""

FORCED_PREFIX = "Thought: I have no steps left, so I give my final answer now.\n```py\nfinal_answer("
"""The forced final turn starts the model's answer for it, so even a small model ends with final_answer(...)."""

FORCED_FINAL = (
    "You have used all your steps. Now give your best final answer: write a Thought, then a code block "
    "that calls final_answer(...) with the answer."
)


def task_message(task: str) -> str:
    """The user turn that starts a task (the examples use the same header)."""
    return f"Task: {task.strip()}"


def observation_message(text: str) -> str:
    """The user turn carrying what a step produced; the model learned to read it after ``Observation:``."""
    return f"Observation:\n{text.rstrip()}" if text.strip() else "Observation:\n(no output)"


@lru_cache(maxsize=4)
def _read(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8")


def load_examples() -> list[dict]:
    """All few-shot examples from prompts/examples.jsonl."""
    return [json.loads(line) for line in _read("examples.jsonl").splitlines() if line.strip()]


def render_example(example: dict) -> str:
    """One example in exactly the format the model must produce."""
    parts = [task_message(example["task"]), ""]
    for step in example["steps"]:
        parts.append(f"Thought: {step['thought']}\n```py\n{step['code']}\n```{END_CODE}")
        if "observation" in step:
            parts.append(observation_message(step["observation"]))
    return "\n".join(parts)


def _defined(tools: str) -> set[str]:
    return set(re.findall(r"def\s+(\w+)\s*\(", tools)) | set(re.findall(r"^(\w+)\(", tools, re.MULTILINE))


def prompt_version() -> str:
    """A short hash of the prompt's data files (instructions and examples): which prompt a trajectory was made with."""
    digest = hashlib.sha256()
    for name in ("system.md", "examples.jsonl", "student.md"):
        digest.update(_read(name).encode("utf-8"))
    return digest.hexdigest()[:16]


def tool_names(web: bool) -> list[str]:
    """The names of the tools the kernel offers the model."""
    return sorted(_defined(tool_docs(web)) - {"print"})


def tool_docs(web: bool) -> str:
    """The kernel's tool signatures and docstrings; a minimal final_answer doc if the tools are unavailable."""
    try:
        from tui_agent.tools.prelude import tool_docs as prelude_docs
    except ImportError:
        return FALLBACK_TOOLS
    try:
        return prelude_docs(web=web).strip() or FALLBACK_TOOLS
    except Exception:  # a broken prelude must not stop the agent from starting
        return FALLBACK_TOOLS


def workspace_repo_map(workspace: Path, budget: int = 512) -> str:
    """A short map of the workspace's code for the prompt; empty when there is none or indexing fails."""
    try:
        from tui_agent.index.tools import CodeTools

        tools = CodeTools(workspace)
        try:
            return (tools.repo_map(budget=budget) or "").strip()
        finally:
            tools.close()  # this process stops holding the index open
    except Exception:  # no index module, unreadable workspace, parse failure: the prompt simply goes without
        return ""


PROMPT_STYLES = ("full", "compact", "student")
"""``full``: instructions, tools, repo map and few-shot examples. ``compact``: the same without the examples, for
agent-distilled students, which learned the format from trajectories and need not read 700 tokens of examples at
every start (and a student trained under a prompt must run under that same prompt). ``student``: two sentences,
the tools' signatures and the repo map (prompts/student.md), about a fifth of ``compact``: a distilled student
learned the rules from its trajectories, and the system prompt was three quarters of every training example."""

_EXAMPLES_START = "\nExamples:\n"
_EXAMPLES_END = "\nNow solve the user's task"
_REPO_HEADER = "\nThe workspace's code (a map):"
_TOOLS_HEADER = "Tools (Python functions already defined in the kernel):"


def build_system_prompt(*, web: bool = True, repo_map: str = "", tools: str | None = None, style: str = "full") -> str:
    """Instructions, tool docs, optional repo map and (``full`` style) the examples whose tools exist."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r} (expected one of {', '.join(PROMPT_STYLES)})")
    tools = tools if tools is not None else tool_docs(web)
    repo = f"{_REPO_HEADER}\n{repo_map.strip()}\n" if repo_map.strip() else ""
    if style == "student":
        return _read("student.md").format(tools=signatures(tools), repo_map=repo).strip()
    available = _defined(tools) | {"final_answer", "print"}
    examples = [ex for ex in load_examples() if set(ex.get("tools", [])) <= available]
    rendered = "\n\n---\n\n".join(render_example(ex) for ex in examples)
    full = _read("system.md").format(tools=tools.strip(), repo_map=repo, examples=rendered).strip()
    return compact_system_prompt(full) if style == "compact" else full


def signatures(tools: str) -> str:
    """The tool docs' signature lines without their docstrings."""
    return "\n".join(line for line in tools.splitlines() if line.strip() and not line[0].isspace())


def compact_system_prompt(full: str) -> str:
    """A full system prompt without its examples: how a student's training data and its runtime prompt agree,
    whatever repo map or tools the full prompt held.

    The result is the same text whether the full prompt put the repo map before the examples (prompts recorded
    before the map moved to the end) or after them (today), so students trained on either run under one prompt."""
    start, end = full.find(_EXAMPLES_START), full.rfind(_EXAMPLES_END)
    if start < 0 or end < start:
        return full
    repo = full.find(_REPO_HEADER, start, end)
    return full[:start] + (full[repo:end] if repo >= 0 else "") + "\n" + full[end:]


def rebuild_system_prompt(recorded: str, style: str = "full") -> str:
    """A recorded system prompt as this version of the code builds it: the same web tools and repo map (the only
    parts that vary), today's wording and tool docs. A student trained on trajectories recorded under older tool
    docs then learns under the very prompt it runs with. A prompt this code did not build is only compacted."""
    if _TOOLS_HEADER not in recorded:
        return compact_system_prompt(recorded) if style == "compact" else recorded
    web = "\nweb_search(" in recorded
    return build_system_prompt(web=web, repo_map=recorded_repo_map(recorded), style=style)


def recorded_repo_map(system_prompt: str) -> str:
    """The repo map a system prompt carries (before or after its examples, as older prompts had it), or ""."""
    start = system_prompt.find(_REPO_HEADER)
    if start < 0:
        return ""
    body = start + len(_REPO_HEADER)
    ends = [i for i in (system_prompt.find(_EXAMPLES_START, body), system_prompt.rfind(_EXAMPLES_END)) if i >= body]
    return system_prompt[body : min(ends) if ends else len(system_prompt)].strip()


def static_prefix(system_prompt: str) -> str:
    """The part of a system prompt that does not depend on the workspace: everything before the repo map (which
    comes last, before the closing line). It is the same for every workspace, so its evaluated state is cached
    once per model (models/prompt_cache.py)."""
    end = system_prompt.find(_REPO_HEADER)
    if end < 0:
        end = system_prompt.rfind(_EXAMPLES_END)
    return system_prompt[:end].rstrip() if end >= 0 else system_prompt
