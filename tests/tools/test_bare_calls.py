"""Bare tool calls print their text: in the AST, and in a real kernel where the model's cells run."""

from __future__ import annotations

import ast

import pytest

from tui_agent.tools.bare_calls import PrintBareToolCalls
from tui_agent.tools.kernel import Kernel


def rewrite(code: str) -> str:
    return ast.unparse(PrintBareToolCalls(["search_code", "read_file"]).visit(ast.parse(code)))


def test_only_calls_whose_value_is_dropped_are_printed():
    assert rewrite("search_code('x')") == "print(search_code('x'))"
    assert rewrite("for q in qs:\n    search_code(q)") == "for q in qs:\n    print(search_code(q))"
    for kept in ("r = search_code('x')", "print(search_code('x'))", "len(search_code('x'))", "other('x')"):
        assert rewrite(kept) == kept
    assert rewrite("tools.search_code('x')") == "tools.search_code('x')"  # only the kernel's own names


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("bare")
    (workspace / "app.py").write_text("def handler(event):\n    return event['body']\n")
    with Kernel(workspace, timeout=20) as k:
        yield k


def test_a_bare_call_in_a_kernel_shows_its_result_in_order(kernel):
    result = kernel.execute('print("before")\nfind_symbol("handler")\nprint("after")')
    assert result.stdout.startswith("before\nDefinitions of handler") and result.stdout.endswith("after\n")
    assert "app.py:1" in result.stdout and result.error is None


def test_a_bare_call_as_the_last_line_prints_text_not_its_repr(kernel):
    result = kernel.execute('read_file("app.py", 2, 2)')
    assert result.stdout == "app.py (lines 2-2 of 2)\n2      return event['body']\n" and result.result is None


def test_used_values_and_other_expressions_behave_as_in_ipython(kernel):
    assert kernel.execute('found = find_symbol("handler")').stdout == ""
    assert kernel.execute("2 + 3").result == "5"


def test_the_transformer_survives_a_restart_once(kernel):
    kernel.restart()
    assert kernel.execute('find_symbol("handler")').stdout.count("Definitions of handler") == 1
