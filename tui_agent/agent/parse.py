"""Turn a model's step text into (thought, code), leniently, because small models drift from the format.

Order: fenced code blocks (```py / ```python / bare ```), then tags (<code>, <execute>, <python>), then the whole
text as Python if it compiles. When nothing works the caller sends ``CORRECTIVE`` back as the observation.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

END_CODE = "<end_code>"
STOPS = (END_CODE, "Observation:")

CORRECTIVE = (
    "Error: I could not find a Python code block in your answer. Use exactly this format:\n"
    "Thought: what you will do next\n"
    "```py\n"
    "# your code here; call final_answer(answer) when you know the answer\n"
    "```" + END_CODE + "\n"
    "Make sure to write the code block, and nothing after " + END_CODE + "."
)

_FENCE = re.compile(r"```[ \t]*(?:py|python3?|ipython)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_TAGS = re.compile(r"<(code|execute|python)>(.*?)(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_THOUGHT = re.compile(r"^\s*(?:Thought|Thoughts)\s*:\s*", re.IGNORECASE)
_CODE_LABEL = re.compile(r"^\s*Code\s*:\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ParsedStep:
    """One parsed model step; ``code`` is None when nothing runnable was found."""

    thought: str
    code: str | None
    how: str  # fence | tag | bare | none

    @property
    def ok(self) -> bool:
        return self.code is not None


def _clean_code(code: str) -> str:
    return code.replace(END_CODE, "").strip("\n").rstrip()


def _clean_thought(text: str) -> str:
    text = _CODE_LABEL.sub("", text)
    return _THOUGHT.sub("", text.strip()).strip()


def _compiles(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    # A lone name or constant ("Done", "42") compiles but is prose, not an action.
    return any(not isinstance(node, ast.Expr) or isinstance(node.value, ast.Call) for node in tree.body)


def parse_step(text: str) -> ParsedStep:
    """Split a step into its thought and its code; every fenced block counts, joined in order."""
    text = text.replace(END_CODE, "\n")
    blocks = [m for m in _FENCE.finditer(text) if m.group(1).strip()]
    if blocks:
        code = "\n\n".join(_clean_code(m.group(1)) for m in blocks)
        return ParsedStep(_clean_thought(text[: blocks[0].start()]), code, "fence")
    tags = [m for m in _TAGS.finditer(text) if m.group(2).strip()]
    if tags:
        code = "\n\n".join(_clean_code(m.group(2)) for m in tags)
        return ParsedStep(_clean_thought(text[: tags[0].start()]), code, "tag")
    bare = _clean_code(text.strip().strip("`"))
    if bare and _compiles(bare):
        return ParsedStep("", bare, "bare")
    # "Thought: ..." followed by unfenced code: try the text after the first line.
    lines = text.strip().splitlines()
    for cut in range(1, min(len(lines), 6)):
        rest = _clean_code("\n".join(lines[cut:]))
        if rest and _compiles(rest):
            return ParsedStep(_clean_thought("\n".join(lines[:cut])), rest, "bare")
    return ParsedStep(_clean_thought(text), None, "none")


def format_step(thought: str, code: str) -> str:
    """The canonical text of a step, as the model should have written it (used for history and edits)."""
    thought = thought.strip() or "I will run this code."
    return f"Thought: {thought}\n```py\n{code.strip()}\n```{END_CODE}"


def literal_final_answer(code: str) -> str | None:
    """The answer of a cell that is only ``final_answer(<literal>)``, known without running anything.

    Read-only mode uses it: such a cell has no effect beyond answering, so the run can end with an answer.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "final_answer"):
        return None
    if len(call.args) != 1 or call.keywords:
        return None
    try:
        return str(ast.literal_eval(call.args[0]))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
