"""Teachers over a real OpenAI-compatible server (llama-cpp-python's) and the first-thought prefix."""

from __future__ import annotations

import time

import pytest

from training.teacher import OpenAIChatModel, TeacherError, first_paragraph, first_thought, open_teacher

from .server import free_port, llama_server


@pytest.fixture(scope="module")
def gemma_server(gemma_gguf):
    with llama_server(gemma_gguf, alias="gemma") as url:
        yield url


def test_an_unreachable_teacher_is_one_line_and_quick():
    started = time.monotonic()
    with pytest.raises(TeacherError, match=r"Cannot reach the teacher at http://127.0.0.1:\d+/v1: is the server"):
        open_teacher("any", endpoint=f"http://127.0.0.1:{free_port()}/v1")
    assert time.monotonic() - started < 30


def test_first_paragraph():
    assert first_paragraph("Thought: First I add.\n\nThen I check.") == "First I add."
    assert first_paragraph("\n\n```py\nx\n```\n\nPlan: multiply.") == "Plan: multiply."
    assert first_paragraph("") == ""
    long = "A sentence here. " * 80
    assert len(first_paragraph(long)) <= 400 and first_paragraph(long).endswith(".")
    run_on = "To add them, I follow these steps:\nStep 1: 12 + 30 = 42\nTherefore the answer is 42"
    assert first_paragraph(run_on) == "To add them, I follow these steps:"  # the plan, not the result
    assert first_paragraph("1. Multiply the price by 3.\n2. Add tax.") == "Multiply the price by 3."


@pytest.mark.slow
def test_completions_teacher_streams_the_runtime_prompt_and_continues_a_started_turn(gemma_server):
    teacher = open_teacher("gemma", endpoint=gemma_server, chat_format="gemma", n_ctx=4096)
    assert teacher.context_length == 4096  # a served teacher ends runs as context_full at the recipe's n_ctx
    messages = [
        {"role": "user", "content": "Task: count to three"},
        {"role": "assistant", "content": "Thought: I will count: one, two,"},
    ]
    text = "".join(teacher.stream_chat(messages, max_tokens=8, stop=["\n"]))
    usage = teacher.last_usage
    assert text and usage.completion_tokens > 0 and usage.prompt_tokens > 10
    assert usage.stop_reason in ("stop", "length")
    assert teacher.describe()["api"] == "completions"


@pytest.mark.slow
def test_first_thought_comes_from_the_teacher(gemma_server):
    teacher = OpenAIChatModel(gemma_server, "gemma", chat_format="gemma")
    thought = first_thought(teacher, "What is 12 times 12?", max_tokens=48)
    assert isinstance(thought, str) and "\n\n" not in thought


@pytest.mark.slow
def test_concurrent_streams_keep_their_own_usage(gemma_server):
    import threading

    teacher = OpenAIChatModel(gemma_server, "gemma", chat_format="gemma")
    usages = {}

    def ask(n: int) -> None:
        "".join(teacher.stream_chat([{"role": "user", "content": "Say hi " * n}], max_tokens=4))
        usages[n] = teacher.last_usage.prompt_tokens

    threads = [threading.Thread(target=ask, args=(n,)) for n in (1, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert usages[20] > usages[1]


def test_first_thought_keeps_a_local_teachers_prompt_cache(gemma_gguf):
    """The side request for the first thought must not evict the agent's prompt from a local model's KV cache."""
    from tui_agent.models.loader import load_chat_model

    model = load_chat_model(str(gemma_gguf), n_ctx=2048)
    try:
        messages = [
            {"role": "system", "content": "You solve tasks with Python. " * 40},
            {"role": "user", "content": "Task: add 2 and 3"},
        ]
        "".join(model.stream_chat(messages, max_tokens=1))
        cold = model.last_usage.prompt_eval_tokens
        first_thought(model, "What is 12 times 12?", max_tokens=4)
        "".join(model.stream_chat(messages, max_tokens=1))
        assert cold > 200
        assert model.last_usage.prompt_eval_tokens <= 2  # the prompt came back from the saved state
    finally:
        model.close()


class _CountingTeacher:
    """A teacher whose answer runs on after its first paragraph; counts how much of it was asked for."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.consumed = 0
        self.closed = False

    def stream_chat(self, messages, **kwargs):
        try:
            for piece in self.pieces:
                self.consumed += 1
                yield piece
        finally:
            self.closed = True


def test_first_thought_stops_generating_once_the_paragraph_is_complete():
    teacher = _CountingTeacher(["Thought:\n\n", "I will multiply", " 12 by 12.", "\n\n", "12 * 12", " = 144", "."])
    assert first_thought(teacher, "What is 12 times 12?") == "I will multiply 12 by 12."
    assert teacher.consumed == 4 and teacher.closed  # the computation after the plan was never generated


def test_first_thought_stops_after_the_first_line_of_a_list():
    pieces = [
        "To solve this, I'll follow these steps:",
        "\n",
        "1. Multiply",
        " 12 by 12.",
        "\n2. Report it.",
        "\n\n144",
    ]
    teacher = _CountingTeacher(pieces)
    assert first_thought(teacher, "What is 12 times 12?") == "To solve this, I'll follow these steps:"
    assert teacher.consumed == 2  # a paragraph of several lines gives its first line: settled at its line break


def test_first_thought_reads_to_the_end_when_there_is_no_blank_line():
    teacher = _CountingTeacher(["First compute 12 * 12.", "\nThen report it."])
    assert first_thought(teacher, "What is 12 times 12?") == "First compute 12 * 12."
    assert teacher.consumed == 2


def test_first_thought_stops_a_real_local_model_early(gemma_gguf):
    """On the real runtime the side request ends at the first paragraph's blank line, well before its budget (the
    base Gemma echoes the instructions as its first paragraph, then would go on)."""
    from tui_agent.models.loader import load_chat_model

    model = load_chat_model(str(gemma_gguf), n_ctx=2048)
    try:
        thought = first_thought(model, "What is 12 times 12?", max_tokens=200)
        usage = model.last_usage
        assert thought and "\n\n" not in thought
        assert usage.completion_tokens < 200 and usage.stop_reason == "cancelled"
    finally:
        model.close()
