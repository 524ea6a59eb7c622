"""The persistent prompt cache on the real embedded Gemma GGUF: a restored state answers exactly like a freshly read
prompt, the key changes with the model file, the prompt and the library version, and a damaged entry is rebuilt."""

from __future__ import annotations

import os
import shutil

import pytest

from tui_agent.agent.loop import warm_prompt
from tui_agent.agent.prompt import build_system_prompt, static_prefix
from tui_agent.models import prompt_cache
from tui_agent.models.chat_formats import get_format
from tui_agent.models.llm import LlamaChatModel
from tui_agent.models.prompt_cache import PromptCache, cache_key

pytestmark = pytest.mark.slow

SYSTEM = "You answer in one short sentence. " * 8
PREFIX = f"<start_of_turn>user\n{SYSTEM}"
QUESTION = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def model(gemma_gguf):
    loaded = LlamaChatModel(gemma_gguf, get_format("gemma"), name="gemma", n_ctx=1024)
    yield loaded
    loaded.close()


@pytest.fixture
def cache(tmp_path, model):
    model.prompt_cache = PromptCache(tmp_path / "cache")
    model._clear_kv()
    yield model.prompt_cache
    model.prompt_cache = None
    model._clear_kv()


def _answer(model) -> tuple[str, int]:
    text = "".join(model.stream_chat(QUESTION, max_tokens=8))
    return text, model.last_usage.prompt_eval_tokens


def test_a_restored_prompt_answers_token_for_token_like_a_fresh_one(model, cache):
    model.prompt_cache = None
    fresh, fresh_eval = _answer(model)  # no cache: the whole prompt is read
    model.prompt_cache = cache
    model._clear_kv()
    assert model.warm_prefix(PREFIX) == "evaluated"
    assert model.warm_prefix(PREFIX) == "warm"  # already held: nothing to do
    assert len(cache.entries()) == 1
    model._clear_kv()  # as a new process would start
    assert model.warm_prefix(PREFIX) == "cached"
    restored, restored_eval = _answer(model)
    assert restored == fresh
    assert restored_eval < fresh_eval / 3  # only what follows the cached prefix was read


def test_key_changes_with_model_file_prompt_and_library_version(model, cache, tmp_path, monkeypatch, gemma_gguf):
    tokens = model.llama.tokenize(PREFIX.encode(), add_bos=True, special=True)
    base = cache_key(model=gemma_gguf, lora=None, n_ctx=1024, tokens=tokens)
    assert base == cache_key(model=gemma_gguf, lora=None, n_ctx=1024, tokens=list(tokens))
    assert base != cache_key(model=gemma_gguf, lora=None, n_ctx=1024, tokens=tokens[:-1])  # another prompt
    assert base != cache_key(model=gemma_gguf, lora=None, n_ctx=2048, tokens=tokens)
    copy = tmp_path / "model.gguf"
    shutil.copyfile(gemma_gguf, copy)
    first = cache_key(model=copy, lora=None, n_ctx=1024, tokens=tokens)
    assert first != base  # another file
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced in place
    assert cache_key(model=copy, lora=None, n_ctx=1024, tokens=tokens) != first
    monkeypatch.setattr(prompt_cache, "library_version", lambda: "0.0.0-other")
    assert cache_key(model=gemma_gguf, lora=None, n_ctx=1024, tokens=tokens) != base

    # end to end: an entry saved under another library version is not used
    monkeypatch.undo()
    assert model.warm_prefix(PREFIX) == "evaluated"
    model._clear_kv()
    monkeypatch.setattr(prompt_cache, "library_version", lambda: "0.0.0-other")
    assert model.warm_prefix(PREFIX) == "evaluated"
    assert len(cache.entries()) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_entry_is_ignored_and_rebuilt(model, cache, damage):
    fresh, _ = _answer(model)
    model._clear_kv()
    assert model.warm_prefix(PREFIX) == "evaluated"
    (entry,) = cache.entries()
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a state" * 100, "empty": b""}[damage])
    model._clear_kv()
    assert model.warm_prefix(PREFIX) == "evaluated"  # refused, then read again and saved again
    assert entry.stat().st_size == len(data)
    assert _answer(model)[0] == fresh
    model._clear_kv()
    assert model.warm_prefix(PREFIX) == "cached"


def test_cache_is_bounded_and_keeps_the_most_recently_used(model, tmp_path):
    model.prompt_cache = small = PromptCache(tmp_path / "small", max_bytes=1)
    try:
        for n in (4, 5):
            model._clear_kv()
            assert model.warm_prefix(f"<start_of_turn>user\n{SYSTEM * n}") == "evaluated"
        assert len(small.entries()) <= 1
    finally:
        model.prompt_cache = None
        model._clear_kv()


def test_agent_prompt_is_warmed_from_its_static_prefix(model, cache):
    system = build_system_prompt(web=False, repo_map="a.py: def f()", style="compact")
    other = build_system_prompt(web=False, repo_map="b.py: class B", style="compact")
    assert static_prefix(system) == static_prefix(other) and "a.py" not in static_prefix(system)
    assert warm_prompt(model, system, static_only=True) == "evaluated"
    assert len(cache.entries()) == 1
    model._clear_kv()
    assert warm_prompt(model, system) == "evaluated"  # the static part restored, only the repo map read
    assert model.llama.eval_sizes[-1] < model.count_tokens(system) / 4
    assert len(cache.entries()) == 2  # the static part, shared by every workspace, and this workspace's prompt
    model._clear_kv()
    assert warm_prompt(model, other) == "evaluated"  # another workspace starts from the shared static part
    model._clear_kv()
    assert warm_prompt(model, other) == "cached"  # its second run reads nothing of the system prompt
    messages = [{"role": "system", "content": other}, {"role": "user", "content": "Task: 2+2"}]
    list(model.stream_chat(messages, max_tokens=2))
    usage = model.last_usage
    assert usage.prompt_eval_tokens < 20


def test_a_run_reports_prompt_progress_as_events(model, cache, tmp_path):
    from tui_agent.agent.events import PromptProgress
    from tui_agent.agent.loop import Agent
    from tui_agent.session import run_episode

    agent = Agent(model, None, workspace=tmp_path, max_steps=1, read_only=True, repo_map="", max_tokens=4)
    agent.system_prompt = SYSTEM * 3  # short: this is about the events, not the prompt
    events = []
    run_episode(agent, "Name a colour.", on_event=events.append)
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert {e.step for e in progress} >= {0, 1}  # the static prefix (step 0), then the rest of step 1's prompt
    for step in (0, 1):
        done = [e.done for e in progress if e.step == step]
        assert done == sorted(done) and done[-1] == progress[[e.step for e in progress].index(step)].total
    assert progress[0].to_dict()["event"] == "prompt_progress"
    assert agent.progress is None and model.prompt_progress is None  # nothing left hooked after the run
