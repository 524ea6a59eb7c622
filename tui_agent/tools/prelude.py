"""The tools the kernel defines for the model, and their documentation for the system prompt.

`install()` runs inside the kernel (at start and after every restart): it puts plain functions with docstrings
into the user namespace, makes `final_answer` end a cell without a traceback, applies the memory limit and
defines the private helper that runs a candidate cell in a forked copy of the kernel. `tool_docs()` renders the
same functions' signatures and docstrings, so the prompt always describes exactly what the kernel has.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

FINAL_MIME = "application/vnd.tui-agent.final-answer+json"
TRY_MIME = "application/vnd.tui-agent.try-result+json"
TRY_HELPER = "_tui_agent_try"
POLICY_HELPER = "_tui_agent_edit_policy"
WEB_TOOLS = ("web_search", "visit_page")


class FinalAnswer(BaseException):
    """Raised by final_answer(); derived from BaseException so `except Exception` in the model's code cannot eat it."""

    def __init__(self, answer: Any) -> None:
        super().__init__(str(answer))
        self.answer = answer


def final_answer(answer: Any) -> None:
    """Give the final answer to the task and stop. Call it once, with the value itself: final_answer(total)."""
    try:
        from IPython.display import publish_display_data

        publish_display_data({FINAL_MIME: {"answer": str(answer)}})
    except Exception:  # noqa: BLE001, S110 - outside a kernel the exception alone carries the answer
        pass
    raise FinalAnswer(answer)


def make_tools(
    workspace: Path, *, web: bool = True, edits: Any = None, hooks: dict[str, Callable] | None = None
) -> dict[str, Callable]:
    """The model's tools, bound to a workspace, in the order the prompt lists them.

    ``edits`` is the kernel's ``EditTools`` (its policy and staged changes); a fresh one that writes at once
    when None. ``hooks``, when given, receives helpers the kernel uses itself (not the model's tools).
    """
    from tui_agent.tools import files, shadowing
    from tui_agent.tools.edits import EditError, EditTools

    workspace = Path(workspace)
    code_tools: list[Any] = []
    stale = [False]  # a file was changed: the index re-reads the workspace before its next answer
    edit_tools = edits if edits is not None else EditTools(workspace)
    edit_tools.on_change = lambda: stale.__setitem__(0, True)

    def _index():
        if not code_tools:
            try:
                from tui_agent.index.tools import CodeTools

                code_tools.append(CodeTools(workspace))
            except Exception:  # noqa: BLE001 - no index yet: the plain text search below takes over
                code_tools.append(None)
        return code_tools[0]

    def _indexed(method: str, *args: Any) -> str | None:
        tools = _index()
        if tools is None:
            return None
        try:
            if stale[0]:
                stale[0] = False
                tools.refresh()
            return getattr(tools, method)(*args)
        except Exception:  # noqa: BLE001
            return None

    def read_file(path: str, start: int = 1, end: int | None = None) -> str:
        """Lines start..end (1-based, inclusive) of a file in the workspace, as text with line numbers: print it."""
        return files.read_file(workspace, path, start, end)

    def search_code(query: str, k: int = 5) -> str:
        """Search the workspace's code for a query. Returns text to print (not a list): the k best matching places,
        each as path:LINE with the source lines there."""
        return _indexed("search_code", query, k) or files.search_text(workspace, query, k)

    def find_symbol(name: str, path: str | None = None) -> str:
        """Find where a function, class or variable is defined in the workspace (in file `path` if given).
        Returns text to print (not a list): each definition as path:LINE with its first line, then the places
        that use it. Call it like print(find_symbol("Parser"))."""
        return _indexed("find_symbol", name, path) or files.find_symbol_text(workspace, name, path)

    def repo_map(budget: int = 1024) -> str:
        """An overview of the workspace as text to print: its files and their main definitions, within about
        `budget` tokens."""
        return _indexed("repo_map", budget) or files.repo_map_text(workspace, budget)

    def write_file(path: str, text: str) -> str:
        """Create or overwrite a file with `text`."""
        try:
            return edit_tools.write_file(path, text)
        except EditError as exc:  # one short frame in the traceback, not the tool's insides
            raise EditError(str(exc)) from None

    def edit_file(path: str, old: str, new: str) -> str:
        """Replace `old` (exact text that occurs once in the file) with `new`."""
        try:
            return edit_tools.edit_file(path, old, new)
        except EditError as exc:
            raise EditError(str(exc)) from None

    def run(cmd: str | list, timeout: float = 60) -> str:
        """Run a command in the workspace, e.g. run(["python", "-m", "pytest", "-q"]); returns its output."""
        from tui_agent.tools.runcmd import run_command

        return run_command(workspace, cmd, timeout)

    def definition_sites(name: str) -> list[tuple[str, int]]:
        """Where the workspace's Python files define ``name`` at top level (for the shadowing notice)."""
        tools = _index()
        if tools is not None:
            if stale[0]:
                stale[0] = False
                tools.refresh()
            return tools.top_level_definitions(name)
        return shadowing.scan_top_level(workspace, name, files.iter_text_files(workspace))

    if hooks is not None:
        hooks["definition_sites"] = definition_sites

    tools: dict[str, Callable] = {"final_answer": final_answer}
    if web:
        from tui_agent.tools.web import visit_page, web_search

        def web_search_tool(query: str, k: int = 5) -> str:
            """Search the web; returns up to k numbered results with title, url and snippet."""
            return web_search(query, k)

        def visit_page_tool(url: str, max_chars: int = 4000) -> str:
            """Fetch a web page and return its readable text, at most max_chars characters."""
            return visit_page(url, max_chars)

        web_search_tool.__name__ = web_search_tool.__qualname__ = "web_search"
        visit_page_tool.__name__ = visit_page_tool.__qualname__ = "visit_page"
        tools["web_search"] = web_search_tool
        tools["visit_page"] = visit_page_tool
    tools.update(read_file=read_file, search_code=search_code, find_symbol=find_symbol, repo_map=repo_map)
    tools.update(edit_file=edit_file, write_file=write_file, run=run)
    return tools


def _shadow_hook(locate: Callable[[str], list[tuple[str, int]]], workspace: Path) -> Callable[[Any], None]:
    """After a cell that redefines a workspace function or class, publish the notice (see ``tools.shadowing``)."""
    from tui_agent.tools.shadowing import NOTICE_MIME, shadow_notice

    def read(path: str) -> str:
        return (workspace / path).read_text(encoding="utf-8")

    def hook(result: Any) -> None:
        try:
            info = getattr(result, "info", None)
            notice = shadow_notice(getattr(info, "raw_cell", "") or "", locate, read)
            if notice:
                from IPython.display import publish_display_data

                publish_display_data({NOTICE_MIME: {"text": notice}})
        except Exception:  # noqa: BLE001, S110 - a notice is a hint; the cell's own result matters more
            pass

    return hook


def tool_docs(web: bool = True) -> str:
    """Signatures and docstrings of the tools, as the system prompt shows them."""
    blocks = []
    for name, fn in make_tools(Path("."), web=web).items():
        signature = str(inspect.signature(fn)).replace("'", "")
        doc = "\n".join(f"    {line}" for line in (inspect.getdoc(fn) or "").splitlines())
        blocks.append(f"{name}{signature}\n{doc}")
    return "\n".join(blocks)


def _address_space_bytes() -> int:
    """The process's current virtual size (Linux /proc), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _set_memory_limit(megabytes: int | None) -> str | None:
    """Cap the kernel's address space so a runaway allocation raises MemoryError instead of swapping the machine."""
    if not megabytes:
        return None
    try:
        import resource

        limit = int(megabytes) * 1024 * 1024
        used = _address_space_bytes()
        if used and limit < used + 256 * 1024 * 1024:
            return (
                f"memory limit of {megabytes} MB not applied: the kernel already uses {used // 2**20} MB of "
                "address space; raise kernel_memory_mb"
            )
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as exc:
        return f"memory limit not applied: {exc}"
    return None


def install(
    shell,
    workspace: str | Path,
    *,
    web: bool = True,
    memory_limit_mb: int | None = None,
    edit_policy: str = "apply",
) -> None:
    """Define the tools in the kernel's namespace; called by the kernel client at start and after restarts."""
    from tui_agent.tools.edits import EditTools
    from tui_agent.tools.forkrun import run_forked

    edits = EditTools(Path(workspace), policy=edit_policy)
    hooks: dict[str, Callable] = {}
    tools = make_tools(Path(workspace), web=web, edits=edits, hooks=hooks)
    namespace = shell.user_ns
    for name in WEB_TOOLS:
        namespace.pop(name, None)
    namespace.update(tools)
    from tui_agent.tools import bare_calls

    bare_calls.install(shell, [name for name in tools if name != "final_answer"])  # all return text to print

    def _final_handler(self, etype, value, tb, tb_offset=None):  # noqa: ANN001 - IPython's custom_exc signature
        return None  # the answer went out as display data; no traceback for a normal ending

    shell.set_custom_exc((FinalAnswer,), _final_handler)
    try:
        shell.InteractiveTB.set_mode(mode="Plain")
    except Exception:  # noqa: BLE001, S110 - plain tracebacks are a nicety
        pass

    def _tui_agent_try(code: str, timeout: float) -> None:
        from IPython.display import publish_display_data

        publish_display_data({TRY_MIME: run_forked(shell, code, timeout, FinalAnswer, workspace=str(workspace))})

    namespace[TRY_HELPER] = _tui_agent_try
    namespace[POLICY_HELPER] = edits.set_policy
    hidden = getattr(shell, "user_ns_hidden", None)
    if isinstance(hidden, dict):
        hidden[TRY_HELPER] = _tui_agent_try
        hidden[POLICY_HELPER] = edits.set_policy
    shell.events.register("pre_run_cell", lambda *args: edits.new_cell())  # staged changes last one cell
    shell.events.register("post_run_cell", _shadow_hook(hooks["definition_sites"], Path(workspace)))
    problem = _set_memory_limit(memory_limit_mb)
    if problem:
        print(problem)
    try:
        from tui_agent.tools.fsjournal import recover

        for message in recover():  # a kernel that died mid-trial left its journal: put the files back now
            print(message)
    except OSError as exc:
        print(f"interrupted trial runs could not be checked: {exc}")
