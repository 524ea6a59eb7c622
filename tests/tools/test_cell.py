"""CellResult's observation and the output helpers: what the model reads, cut to size without losing the end."""

from __future__ import annotations

from tui_agent.tools.cell import BoundedText, CellResult, cut_middle, strip_ansi, tidy_traceback


def test_observation_order_and_parts():
    result = CellResult(
        stdout="printed\n",
        result="42",
        stderr="warning\n",
        error="ValueError: bad",
        images=["/w/.tui-agent/outputs/cell1-1.png"],
        notice="The cell ran longer than 5 s and was interrupted; the kernel state is kept.",
        timed_out=True,
    )
    assert not result.ok
    assert result.observation() == (
        "printed\nOut: 42\n[stderr]\nwarning\nError: ValueError: bad\n"
        "[image saved: /w/.tui-agent/outputs/cell1-1.png]\n"
        "[The cell ran longer than 5 s and was interrupted; the kernel state is kept.]"
    )


def test_empty_observation_tells_the_model_to_print():
    assert CellResult().ok
    assert "printed nothing" in CellResult().observation()
    assert CellResult(final_answer="7").observation() == "Final answer: 7"


def test_observation_keeps_head_and_tail():
    result = CellResult(stdout="".join(f"row {i}\n" for i in range(1000)), error="KeyError: 'x'")
    text = result.observation(max_chars=300)
    assert len(text) <= 300 and text.startswith("row 0\n") and text.endswith("Error: KeyError: 'x'")
    assert "chars cut ...]" in text
    assert cut_middle("short", 300) == "short"


def test_bounded_text_keeps_head_and_rolling_tail():
    buffer = BoundedText(limit=100)
    for i in range(1000):
        buffer.add(f"{i:04d}\n")
    value = buffer.value()
    assert value.startswith("0000\n") and value.endswith("0999\n")
    assert "[... 4900 chars cut ...]" in value and len(value) < 140


def test_tidy_traceback_and_ansi():
    lines = ["  Cell In[3], line 1 in f", "    return f()"] * 50
    assert tidy_traceback(lines) == [*lines[:2], "  [... the 2 line(s) above repeated 49 more times ...]"]
    assert tidy_traceback(["File /tmp/ipykernel_123/4567890.py:2"]) == ["File <cell>:2"]
    assert strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x") == "ZeroDivisionError: x"
