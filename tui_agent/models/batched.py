"""N completions of one prompt decoded together: SAG's candidates as N sequences of one llama.cpp batch.

The prompt is evaluated once (sequence 0, reusing whatever prefix the KV cache already holds), its cache cells are
shared with sequences 1..N-1, and every decode step then feeds one token per live sequence in a single batch. On a
CPU a batch of N tokens costs little more than one (the weights are read once), so N candidates take about the
time of the longest one instead of N times one. Each sequence has its own sampler chain and seed, so the same seeds
give the same candidates again and the candidates differ from each other. (A candidate depends on the whole batch,
not on its seed alone: a batch of another size rounds its sums differently.)

Afterwards only the prompt stays in the KV cache (sequence 0); the candidates' cells are removed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

MAX_SEQUENCES = 8  # contexts are created with room for this many sequences (a unified KV cache: no cost at N=1)
# Stragglers: once at least half of the sequences have ended by themselves, one still running after this many times
# the longest finished one (plus some slack) is ended with the reason "straggler". The batch otherwise runs as long
# as its longest candidate, and the one that runs on is usually rambling; SAG leaves it out of the vote.
STRAGGLER_FACTOR = 1.5
STRAGGLER_SLACK = 32


@dataclass
class SequenceState:
    """One candidate's progress."""

    sampler: object
    data: bytearray = field(default_factory=bytearray)
    emitted: int = 0  # characters of text already handed out
    tokens: int = 0
    done: bool = False
    reason: str = "length"


def _sampler(temperature: float, seed: int):
    """The same chain llama-cpp-python builds for a sampled completion (top-k 40, top-p 0.95, min-p 0.05)."""
    from llama_cpp import _internals as internals

    sampler = internals.LlamaSampler()
    if temperature <= 0:
        sampler.add_greedy()
        return sampler
    sampler.add_top_k(40)
    sampler.add_typical(1.0, 1)
    sampler.add_top_p(0.95, 1)
    sampler.add_min_p(0.05, 1)
    sampler.add_temp(temperature)
    sampler.add_dist(seed)
    return sampler


def _safe_end(text: str, stops: Sequence[str]) -> int:
    """How much of ``text`` can be shown: not a tail that might still become a stop sequence."""
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return len(text) - hold


def straggler_limit(states: Sequence[SequenceState]) -> int | None:
    """Tokens after which a running sequence counts as a straggler; None while fewer than half have finished."""
    finished = [s.tokens for s in states if s.done and s.reason == "stop"]
    if len(states) < 2 or 2 * len(finished) < len(states):
        return None
    return int(max(finished) * STRAGGLER_FACTOR) + STRAGGLER_SLACK


def _without_stragglers(states: list[SequenceState], feed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    limit = straggler_limit(states)
    if limit is None:
        return feed
    kept = []
    for j, token in feed:
        if states[j].tokens >= limit:
            states[j].done, states[j].reason = True, "straggler"
        else:
            kept.append((j, token))
    return kept


def decode_sequences(
    llm,
    tokens: list[int],
    *,
    seeds: Sequence[int],
    temperature: float,
    max_tokens: int,
    stops: Sequence[str],
    cancel: threading.Event | None = None,
    halt: Callable[[int, str], bool] | None = None,
    evaluate_prompt: Callable[[list[int]], int],
) -> Iterator[tuple[int, str]]:
    """Yield (sequence, text piece) as the N = len(seeds) sequences grow; returns each sequence's
    (text, completion tokens, stop reason) when the generator ends.

    ``evaluate_prompt(tokens)`` brings the prompt into sequence 0 (reusing the cached prefix) and returns how many
    tokens it evaluated; ``halt(i, text_so_far)`` True ends sequence i early (a repetition guard).
    """
    import llama_cpp

    n = len(seeds)
    if not 1 <= n <= MAX_SEQUENCES:
        raise ValueError(f"between 1 and {MAX_SEQUENCES} sequences, not {n}")
    ctx = llm.ctx
    memory = llama_cpp.llama_get_memory(ctx)
    vocab = llm._model.vocab
    prompt_len = len(tokens)
    evaluate_prompt(tokens)
    for j in range(1, n):
        llama_cpp.llama_memory_seq_rm(memory, j, -1, -1)
        llama_cpp.llama_memory_seq_cp(memory, 0, j, -1, -1)
    states = [SequenceState(_sampler(temperature, seed)) for seed in seeds]
    batch = llama_cpp.llama_batch_init(n, 0, 1)
    try:
        rows = {j: -1 for j in range(n)}  # where each sequence's logits are: the prompt's last row at first
        while True:  # each sequence ends by itself (stop, end of turn, max_tokens)
            if cancel is not None and cancel.is_set():
                for state in states:
                    if not state.done:
                        state.done, state.reason = True, "cancelled"
                break
            feed: list[tuple[int, int]] = []
            for j, state in enumerate(states):
                if state.done:
                    continue
                token = llama_cpp.llama_sampler_sample(state.sampler.sampler, ctx, rows[j])
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    state.done, state.reason = True, "stop"
                    continue
                state.tokens += 1
                state.data += llm.detokenize([token])
                text = state.data.decode("utf-8", errors="ignore")
                cut = min((text.find(s) for s in stops if s in text), default=-1)
                if cut >= 0:
                    text = text[:cut]
                    state.done, state.reason = True, "stop"
                end = len(text) if state.done else _safe_end(text, stops)
                if end > state.emitted:
                    yield j, text[state.emitted : end]
                    state.emitted = end
                if not state.done and halt is not None and halt(j, text):
                    state.done, state.reason = True, "stop"
                if not state.done:
                    if state.tokens >= max_tokens:
                        state.done, state.reason = True, "length"
                    else:
                        feed.append((j, token))
            if not feed:
                break
            feed = _without_stragglers(states, feed)
            if not feed:
                break
            batch.n_tokens = len(feed)
            for i, (j, token) in enumerate(feed):
                batch.token[i] = token
                batch.pos[i] = prompt_len + states[j].tokens - 1
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = j
                batch.logits[i] = True
                rows[j] = i
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed for the batched candidates")
    finally:
        llama_cpp.llama_batch_free(batch)
        for state in states:
            state.sampler.close()
        for j in range(1, n):
            llama_cpp.llama_memory_seq_rm(memory, j, -1, -1)
        llama_cpp.llama_memory_seq_rm(memory, 0, prompt_len, -1)  # keep the prompt, drop candidate 0's tokens
        llm.n_tokens = min(llm.n_tokens, prompt_len)
    results = []
    for state in states:
        text = state.data.decode("utf-8", errors="ignore")
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        results.append((text[:cut] if cut >= 0 else text, state.tokens, state.reason))
    return results
