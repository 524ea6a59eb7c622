"""SAG candidates decoded together on the real embedded Gemma GGUF: one prompt evaluation, N sequences of one batch,
each with its own seed; and the greedy single-sample path unchanged by contexts made for several sequences."""

from __future__ import annotations

import threading

import pytest

from tui_agent.agent.loop import Agent
from tui_agent.agent.prompt import build_system_prompt
from tui_agent.models.chat_formats import get_format
from tui_agent.models.llm import LlamaChatModel

pytestmark = pytest.mark.slow

STOPS = ["<end_code>", "Observation:"]
SHORT_SYSTEM = build_system_prompt(web=False, repo_map="", style="compact").split("Tools")[0]  # fast tests


@pytest.fixture(scope="module")
def model(gemma_gguf):
    loaded = LlamaChatModel(gemma_gguf, get_format("gemma"), name="gemma", n_ctx=2048)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def messages():
    return [
        {"role": "system", "content": SHORT_SYSTEM},
        {"role": "user", "content": "Task: What is 17 * 23 + 5?"},
        {"role": "assistant", "content": "Thought:"},
    ]


def _many(model, messages, seeds, temperature=0.7, max_tokens=24, **kwargs):
    texts = [""] * len(seeds)
    for i, piece in model.stream_many(
        messages, seeds=seeds, stop=STOPS, max_tokens=max_tokens, temperature=temperature, **kwargs
    ):
        texts[i] += piece
    return texts


def test_greedy_single_sample_is_token_for_token_unchanged(model, messages, gemma_gguf):
    single = LlamaChatModel(gemma_gguf, get_format("gemma"), n_ctx=2048, n_seq_max=1)  # contexts as before
    try:
        before = "".join(single.stream_chat(messages, stop=STOPS, max_tokens=40))
        tokens_before = single.last_usage.completion_tokens
    finally:
        single.close()
    assert "".join(model.stream_chat(messages, stop=STOPS, max_tokens=40)) == before
    assert model.last_usage.completion_tokens == tokens_before
    assert _many(model, messages, [0], temperature=0.0, max_tokens=40) == [before]  # the batched path agrees


def test_batched_candidates_are_reproducible_and_differ(model, messages):
    first = _many(model, messages, [1, 2, 3, 4])
    usages = model.last_usages
    assert len(usages) == 4 and all(u.completion_tokens >= 1 for u in usages)
    assert usages[0].prompt_eval_tokens >= 1 and all(u.prompt_eval_tokens == 0 for u in usages[1:])
    again = _many(model, messages, [1, 2, 3, 4])
    assert again == first
    assert len(set(first)) >= 3  # four seeds: different samples
    # the prompt stays cached for the next call; the candidates' own tokens are gone from the context
    assert model.llama.n_tokens == model.last_usages[0].prompt_tokens


def test_halt_and_cancel_end_sequences_early(model, messages):
    texts = _many(model, messages, [1, 2], max_tokens=40, halt=lambda i, text: i == 0 and len(text) > 5)
    assert model.last_usages[0].completion_tokens < model.last_usages[1].completion_tokens or len(texts[1]) <= 5
    cancel = threading.Event()
    stream = model.stream_many(messages, seeds=[1, 2], stop=STOPS, max_tokens=40, temperature=0.7, cancel=cancel)
    next(stream)
    cancel.set()
    list(stream)
    assert {u.stop_reason for u in model.last_usages} == {"cancelled"}
    assert "".join(model.stream_chat(messages, stop=STOPS, max_tokens=4))  # the model keeps working


def test_stragglers_end_once_half_the_candidates_are_done(model):
    from tui_agent.models.batched import STRAGGLER_FACTOR, STRAGGLER_SLACK

    counting = [{"role": "user", "content": "Count from 1 to 200, one number per line."}]
    _many(model, counting, [1, 2, 3, 4], max_tokens=150, halt=lambda i, text: i < 2 and len(text) >= 3)
    usages = model.last_usages
    finished = max(u.completion_tokens for u in usages[:2])
    limit = int(finished * STRAGGLER_FACTOR) + STRAGGLER_SLACK
    assert [u.stop_reason for u in usages[:2]] == ["stop", "stop"]
    assert limit < 150 and all(u.completion_tokens <= limit for u in usages[2:])
    assert any(u.stop_reason == "straggler" for u in usages[2:]), [u.completion_tokens for u in usages]
    cut_short = _many(model, counting, [1, 2, 3, 4], max_tokens=150, halt=lambda i, text: i < 1 and len(text) >= 3)
    assert all(u.stop_reason != "straggler" for u in model.last_usages), cut_short  # one of four done: no cut yet


def test_straggler_limit_needs_half_of_the_sequences_finished():
    from tui_agent.models.batched import SequenceState, straggler_limit

    def state(tokens: int, done: bool, reason: str = "stop") -> SequenceState:
        return SequenceState(sampler=None, tokens=tokens, done=done, reason=reason)

    assert straggler_limit([state(10, True), state(12, False), state(3, False), state(4, False)]) is None
    assert straggler_limit([state(10, True), state(20, True), state(3, False), state(4, False)]) == 62
    assert straggler_limit([state(10, True, "length"), state(20, True), state(3, False), state(4, False)]) is None
    assert straggler_limit([state(10, True)]) is None  # one candidate: nothing to compare with


def test_agent_samples_its_candidates_together(model, tmp_path):
    def run():
        agent = Agent(model, None, workspace=tmp_path, max_steps=1, sag=3, read_only=True, repo_map="", max_tokens=24)
        agent.system_prompt = SHORT_SYSTEM  # the loop is what is tested here, not the prompt
        agent.reset()
        events = list(agent.run("What is 17 * 23 + 5?"))
        return agent.last_record, events

    record, events = run()
    step = record.steps[0]
    assert step.candidates == 3
    streamed = {e.candidate for e in events if e.kind == "token" and e.step == 1}
    assert streamed == {0, 1, 2}
    usage = [e for e in events if e.kind == "usage" and e.step == 1]
    assert len(usage) == 1 and usage[0].completion_tokens >= 3  # one report for the batch
    again, _ = run()
    assert again.steps[0].raw == step.raw  # same seed, same candidates, same choice
