"""The suite's warning filters (pyproject.toml): nothing silenced wholesale, our own deprecations fail."""

from __future__ import annotations

import warnings

import pytest


def test_no_warning_category_is_ignored_wholesale(pytestconfig):
    for entry in pytestconfig.getini("filterwarnings"):
        action, message, category, module = ([*entry.split(":"), "", "", ""])[:4]
        if action == "ignore":
            assert message or module, f"{entry!r} silences every {category or 'warning'}"


@pytest.mark.parametrize("module", ["tui_agent.tools.forkrun", "training.sft"])
def test_a_deprecation_warned_at_our_code_fails_the_test(module):
    with pytest.raises(DeprecationWarning, match="fork"):
        warnings.warn_explicit("use of fork() may lead to deadlocks", DeprecationWarning, "x.py", 1, module=module)


def test_a_deprecation_warned_elsewhere_is_shown_not_raised():
    with pytest.warns(DeprecationWarning):
        warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="somelib.sub")
