"""Token batching between the agent's thread and the app: nothing lost, order kept, fewer messages."""

from __future__ import annotations

from tui_agent.agent import events as ev
from tui_agent.tui.coalesce import TokenCoalescer


def _collect(interval: float) -> tuple[TokenCoalescer, list]:
    posted: list = []
    return TokenCoalescer(posted.append, interval=interval), posted


def test_fast_tokens_are_merged_and_nothing_is_lost():
    stream, posted = _collect(interval=60.0)
    for piece in ["Thought: ", "I ", "will ", "add."]:
        stream.push(ev.Token(step=1, text=piece))
    assert [p.text for p in posted] == ["Thought: "]  # the first goes out at once, the rest wait for the interval
    stream.push(ev.CodeReady(step=1, thought="I will add.", code="print(1)"))
    assert [type(p).__name__ for p in posted] == ["Token", "Token", "CodeReady"]
    assert "".join(p.text for p in posted if isinstance(p, ev.Token)) == "Thought: I will add."


def test_steps_and_candidates_are_never_merged():
    stream, posted = _collect(interval=60.0)
    stream.push(ev.Token(step=1, text="a"))
    stream.push(ev.Token(step=1, text="b", candidate=1))
    stream.push(ev.Token(step=2, text="c"))
    stream.flush()
    assert [(p.step, p.candidate, p.text) for p in posted] == [(1, 0, "a"), (1, 1, "b"), (2, 0, "c")]


def test_zero_interval_passes_every_token_through():
    stream, posted = _collect(interval=0.0)
    for piece in "abc":
        stream.push(ev.Token(step=1, text=piece))
    assert [p.text for p in posted] == ["a", "b", "c"]


def test_tokens_held_back_go_out_when_the_interval_is_over():
    import time

    stream, posted = _collect(interval=0.05)
    stream.push(ev.Token(step=1, text="a"))
    stream.push(ev.Token(step=1, text="b"))  # held: the model then stalls, nothing else arrives
    assert [p.text for p in posted] == ["a"]
    deadline = time.monotonic() + 5
    while len(posted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [p.text for p in posted] == ["a", "b"]


def test_flush_is_idempotent():
    stream, posted = _collect(interval=60.0)
    stream.flush()
    stream.push(ev.Token(step=1, text="x"))
    stream.flush()
    stream.flush()
    assert [p.text for p in posted] == ["x"]
