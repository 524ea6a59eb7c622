"""The notice after a cell that redefines a workspace function: the pure parts, the index lookup, and a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_agent.tools.files import iter_text_files
from tui_agent.tools.kernel import Kernel
from tui_agent.tools.shadowing import defined_names, scan_top_level, shadow_notice, suggested_edit

SHOP = (
    "def total_price(prices, tax):\n    return sum(prices) * (1 - tax)\n\n\n"
    "class Cart:\n    def total(self):\n        return 0\n"
)
FIX = "def total_price(prices, tax):\n    return sum(prices) * (1 + tax)\n"


def test_defined_names_are_top_level_functions_and_classes_only():
    code = "import os\nasync def a():\n    def inner():\n        pass\nclass B:\n    def method(self):\n        pass\n"
    assert defined_names(code) == ["a", "B"]
    assert defined_names("def broken(:\n") == []


def test_scan_finds_top_level_definitions_not_methods_or_other_files(tmp_path):
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "notes.txt").write_text("def total_price(x):\n")
    (tmp_path / "other.py").write_text("class Thing:\n    def total_price(self):\n        pass\n")
    files = iter_text_files(tmp_path)
    assert scan_top_level(tmp_path, "total_price", files) == [("shop.py", 1)]
    assert scan_top_level(tmp_path, "total", iter_text_files(tmp_path)) == []


def test_index_lookup_finds_top_level_python_definitions_only(tmp_path):
    from tui_agent.index.tools import CodeTools

    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "other.py").write_text("class Thing:\n    def total_price(self):\n        pass\n")
    tools = CodeTools(tmp_path)
    try:
        assert tools.top_level_definitions("total_price") == [("shop.py", 1)]
        assert tools.top_level_definitions("Cart") == [("shop.py", 5)]
        assert tools.top_level_definitions("total") == []
    finally:
        tools.index.close()


def test_notice_names_each_site_and_the_edit_tool():
    sites = {"total_price": [("shop.py", 1)], "Cart": [("shop.py", 5), ("cart.py", 2)]}
    notice = shadow_notice(FIX + "class Cart:\n    pass\n", lambda name: sites.get(name, []))
    assert "total_price (shop.py:1)" in notice and "Cart (shop.py:5)" in notice and "cart.py" not in notice
    assert "edit_file('shop.py', old, new)" in notice


def test_suggested_edit_is_the_changed_line_when_it_is_unique():
    assert suggested_edit(SHOP, FIX, "total_price") == (
        "return sum(prices) * (1 - tax)",
        "return sum(prices) * (1 + tax)",
    )
    assert suggested_edit(SHOP, SHOP, "total_price") is None  # the same definition: nothing to change
    assert suggested_edit(SHOP, FIX, "missing") is None


def test_suggested_edit_falls_back_to_the_whole_definition_when_the_line_repeats():
    text = "def a():\n    return 1\n\n\ndef b():\n    return 1\n"
    old, new = suggested_edit(text, "def b():\n    return 2\n", "b")
    assert (old, new) == ("def b():\n    return 1", "def b():\n    return 2")
    assert text.replace(old, new).endswith("def b():\n    return 2\n")


def test_notice_spells_out_the_edit_call_when_it_can_read_the_file():
    notice = shadow_notice(FIX, lambda name: [("shop.py", 1)], read=lambda path: SHOP)
    assert "print(edit_file('shop.py', 'return sum(prices) * (1 - tax)', 'return sum(prices) * (1 + tax)'))" in notice

    def unreadable(path: str) -> str:
        raise OSError("gone")

    assert "edit_file('shop.py', old, new)" in shadow_notice(FIX, lambda name: [("shop.py", 1)], read=unreadable)


def test_no_notice_for_tests_redefined_in_a_cell():
    code = "def test_total_price():\n    assert True\n"
    for path in ("test_shop.py", "tests/test_cart.py", "shop_test.py", "tests/helpers.py", "conftest.py"):
        assert shadow_notice(code, lambda name, path=path: [(path, 4)]) is None
    assert shadow_notice(code, lambda name: [("tests/test_a.py", 1), ("shop.py", 9)]) is not None  # a real module too


def test_no_notice_for_new_names_or_a_failing_lookup():
    assert shadow_notice("def helper():\n    return 1\n", lambda name: []) is None
    assert shadow_notice("print(1)", lambda name: [("x.py", 1)]) is None

    def broken(name: str) -> list:
        raise OSError("index gone")

    assert shadow_notice(FIX, broken) is None


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workspace: Path = tmp_path_factory.mktemp("shop")
    (workspace / "shop.py").write_text(SHOP)
    with Kernel(workspace) as kernel:
        yield kernel


def test_real_kernel_says_the_file_keeps_the_old_code(kernel):
    observation = kernel.execute(FIX).observation()
    assert "the file was not changed. This cell redefined total_price (shop.py:1) in the kernel only" in observation
    assert "edit_file('shop.py', 'return sum(prices) * (1 - tax)', 'return sum(prices) * (1 + tax)')" in observation
    assert "printed nothing" not in observation  # the notice is the observation


def test_real_kernel_stays_quiet_for_new_functions_and_keeps_output(kernel):
    result = kernel.execute("def helper():\n    return 41\nprint(helper() + 1)")
    assert result.observation() == "42" and result.notice is None
