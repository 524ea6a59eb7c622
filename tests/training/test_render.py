"""Training examples match the runtime: same text, same tokens, labels only on what the student writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.render import (
    IGNORE,
    RenderError,
    StudentRenderer,
    canonical_steps,
    format_for,
    make_renderer,
    render_conversations,
)
from tui_agent.agent.parse import END_CODE
from tui_agent.agent.prompt import build_system_prompt, observation_message, task_message
from tui_agent.models.base import ModelError
from tui_agent.models.chat_formats import get_format, render_chatml, render_gemma

CHATML_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def step(thought: str, code: str) -> str:
    return f"Thought: {thought}\n```py\n{code}\n```{END_CODE}"


def agent_conversation() -> list[dict[str, str]]:
    """A realistic multi-turn run: the real system prompt, a task, an error repaired, unicode, a final answer."""
    return [
        {"role": "system", "content": build_system_prompt(web=False, repo_map="")},
        {"role": "user", "content": task_message("A café sells 1,284 croissants at €2.35 each. Revenue in €?")},
        {"role": "assistant", "content": step("I will multiply the two numbers.", "print(1284 * 2,35)")},
        {
            "role": "user",
            "content": observation_message(
                'Traceback (most recent call last):\n  File "<cell>", line 1\nTypeError: unsupported operand  \t'
            ),
        },
        {
            "role": "assistant",
            "content": step(
                "The comma made a tuple; I use a dot.\n\nSecond paragraph  with  spaces.",
                "revenue = 1284 * 2.35\nfor i in range(2):\n    print(f'{revenue:.2f} €', i)",
            ),
        },
        {"role": "user", "content": observation_message("3017.40 € 0\n3017.40 € 1\n")},
        {"role": "assistant", "content": step("The revenue is 3017.40 €.", "final_answer(round(revenue, 2))")},
    ]


def tiny_tokenizer(texts: list[str], *, split_words: bool = True):
    """A byte-level BPE trained in milliseconds on ``texts``, with the ChatML and Gemma turn markers as specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<bos>", "<pad>", "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split_words)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", pad_token="<pad>")


@pytest.fixture(scope="module")
def chatml_renderer() -> StudentRenderer:
    text = render_chatml(agent_conversation())
    return StudentRenderer(tiny_tokenizer([text]), get_format("chatml"), add_bos=False)


def labelled_text(renderer: StudentRenderer, example: dict) -> str:
    return renderer.tokenizer.decode([t for t in example["labels"] if t != IGNORE])


def test_labels_cover_exactly_the_assistant_turns_and_their_end_of_turn(chatml_renderer):
    messages = agent_conversation()
    example = chatml_renderer.example(messages)
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    assert labelled_text(chatml_renderer, example) == "<|im_end|>".join(assistant) + "<|im_end|>"
    text = chatml_renderer.tokenizer.decode(example["input_ids"])
    assert text == render_chatml(messages) + "<|im_end|>"


def test_assistant_turns_are_trained_in_the_canonical_step_format(chatml_renderer):
    messages = agent_conversation()
    messages[-1] = {
        "role": "assistant",
        "content": "Thought: The revenue is 3017.40 €.\n\n```py\nfinal_answer(3017.4)<end_code>",
    }
    example = chatml_renderer.example(messages)
    assert labelled_text(chatml_renderer, example).endswith(
        "Thought: The revenue is 3017.40 €.\n```py\nfinal_answer(3017.4)\n```<end_code><|im_end|>"
    )
    unreadable = {"role": "assistant", "content": "The answer is probably 12."}
    assert canonical_steps([unreadable, {"role": "user", "content": "x"}]) == [
        unreadable,
        {"role": "user", "content": "x"},
    ]
    assert canonical_steps(agent_conversation()) == agent_conversation()  # canonical turns are left as they are


def test_system_task_and_observations_carry_no_label(chatml_renderer):
    example = chatml_renderer.example(agent_conversation())
    labelled = labelled_text(chatml_renderer, example)
    for hidden in ("Observation:", "Traceback", "Task:", "<|im_start|>", "You "):
        assert hidden not in labelled
    assert example["labels"][0] == IGNORE and len(example["labels"]) == len(example["input_ids"])


def test_observations_after_the_last_assistant_turn_are_left_out(chatml_renderer):
    messages = [*agent_conversation(), {"role": "user", "content": observation_message("trailing")}]
    assert chatml_renderer.example(messages) == chatml_renderer.example(agent_conversation())


def test_system_prompt_is_replaced_for_the_student(chatml_renderer):
    example = chatml_renderer.example(agent_conversation(), system_prompt="Short prompt.")
    text = chatml_renderer.tokenizer.decode(example["input_ids"])
    assert text.startswith("<|im_start|>system\nShort prompt.<|im_end|>\n<|im_start|>user\nTask:")
    no_system = [m for m in agent_conversation() if m["role"] != "system"]
    assert chatml_renderer.example(no_system, system_prompt="Short prompt.") == example


def test_a_trajectory_recorded_under_older_tool_docs_trains_under_todays_prompt(chatml_renderer):
    conversation = agent_conversation()
    recorded = [dict(m) for m in conversation]
    old_doc = "Call it once, with the value itself: final_answer(total)."
    assert old_doc in recorded[0]["content"]
    recorded[0]["content"] = recorded[0]["content"].replace(old_doc, "Call it once: final_answer(42).")
    for style in ("full", "compact"):
        assert chatml_renderer.example(recorded, prompt_style=style) == chatml_renderer.example(
            conversation, prompt_style=style
        )


def test_bos_is_added_when_the_model_wants_it(chatml_renderer):
    with_bos = StudentRenderer(chatml_renderer.tokenizer, get_format("gemma"), add_bos=True)
    example = with_bos.example(agent_conversation())
    assert example["input_ids"][0] == chatml_renderer.tokenizer.bos_token_id
    assert example["input_ids"].count(chatml_renderer.tokenizer.bos_token_id) == 1
    assert labelled_text(with_bos, example).endswith("final_answer(round(revenue, 2))\n```<end_code><end_of_turn>")


def test_too_long_examples_are_dropped_whole_and_counted(chatml_renderer):
    short = [
        {"role": "user", "content": "Task: 1+1"},
        {"role": "assistant", "content": step("Add.", "final_answer(2)")},
    ]
    no_assistant = [{"role": "user", "content": "Task: nothing"}]
    length = len(chatml_renderer.example(short)["input_ids"])
    rendered = render_conversations([short, agent_conversation(), no_assistant], chatml_renderer, max_length=length)
    assert (len(rendered.examples), rendered.too_long, rendered.no_assistant) == (1, 1, 1)
    assert all(len(e["input_ids"]) <= length for e in rendered.examples)


def test_records_and_dicts_are_accepted(chatml_renderer):
    from tui_agent.agent.trajectory import RunRecord

    record = RunRecord(task="t", model="m", messages=agent_conversation())
    rendered = render_conversations([record, {"messages": agent_conversation()}], chatml_renderer)
    assert rendered.examples[0] == rendered.examples[1]
    assert rendered.tokens == 2 * len(rendered.examples[0]["input_ids"]) and rendered.label_tokens > 0


def test_malformed_conversations_raise(chatml_renderer):
    with pytest.raises(RenderError, match="no list of messages"):
        render_conversations([42], chatml_renderer)
    with pytest.raises(RenderError, match="Not a chat message"):
        render_conversations([[{"role": "tool", "content": "x"}]], chatml_renderer)
    with pytest.raises(RenderError, match="no assistant turn"):
        chatml_renderer.example([{"role": "user", "content": "x"}])


def test_a_tokenizer_that_merges_across_the_turn_boundary_is_refused():
    messages = agent_conversation()
    text = render_gemma(messages)
    merging = tiny_tokenizer([text.replace("<start_of_turn>", "").replace("<end_of_turn>", "")] * 3, split_words=False)
    renderer = StudentRenderer(merging, get_format("gemma"), add_bos=False)
    with pytest.raises(RenderError, match="prefix property"):
        renderer.example(messages)


def test_format_is_picked_from_template_then_architecture():
    class Tok:
        chat_template = CHATML_TEMPLATE

    class Bare:
        chat_template = None

    assert format_for(Tok(), "llama").name == "chatml"
    assert format_for(Bare(), "gemma3_text").name == "gemma"
    assert format_for(Bare(), "qwen2").name == "chatml"
    with pytest.raises(ModelError, match="Cannot tell the chat format"):
        format_for(Bare(), "gpt2")


# -- agreement with llama.cpp on the real models ----------------------------------------------------------------


def _hf_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _vocab(path: Path):
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


def check_agreement(path: Path, *, base_model: bool) -> StudentRenderer:
    """Every assistant turn's training context is token-for-token the prompt llama.cpp evaluates at that turn."""
    from transformers import AutoConfig

    llm = _vocab(path)
    tokenizer = _hf_tokenizer(path)
    model_type = AutoConfig.from_pretrained(path.parent, gguf_file=path.name).model_type
    renderer = make_renderer(tokenizer, model_type, gguf=path)
    messages = agent_conversation()  # every assistant turn starts with "Thought:", as a base model's run records
    example = renderer.example(messages)
    ids, labels = example["input_ids"], example["labels"]
    render = renderer.chat_format.render

    def runtime_tokens(text: str) -> list[int]:  # exactly LlamaChatModel.stream_prompt's call
        return llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    for i in turns:
        prompt = runtime_tokens(render(messages[:i]))
        assert ids[: len(prompt)] == prompt, f"turn {i}: training context differs from llama.cpp's prompt"
        assert labels[len(prompt) - 1] == IGNORE and labels[len(prompt)] == ids[len(prompt)]
        if base_model:  # the runtime opens the turn with "Thought:" and the model continues from there
            opened = runtime_tokens(render([*messages[:i], {"role": "assistant", "content": "Thought:"}]))
            assert ids[: len(opened)] == opened
    assert ids == runtime_tokens(render(messages) + renderer.chat_format.end_of_turn)
    for text in (render(messages), "  indented\n\tcode  \n\n\n", "é€ 12345678 0.001 <end_code>Observation:"):
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == llm.tokenize(
            text.encode(), add_bos=False, special=True
        ), f"HF and llama.cpp tokenize {text[:40]!r} differently"
    assert sum(1 for t in labels if t != IGNORE) == sum(
        len(runtime_tokens(render(messages[: i + 1]))) - len(runtime_tokens(render(messages[:i]))) + 1 for i in turns
    )
    llm.close()
    return renderer


@pytest.mark.slow
def test_gemma_base_training_tokens_match_llama_cpp(gemma_gguf):
    renderer = check_agreement(gemma_gguf, base_model=True)
    assert renderer.chat_format.name == "gemma" and renderer.add_bos


@pytest.mark.slow
def test_qwen_training_tokens_match_llama_cpp_and_its_jinja_template(qwen05_gguf):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    renderer = check_agreement(qwen05_gguf, base_model=False)
    assert renderer.chat_format.name == "chatml" and not renderer.add_bos
    llm = _vocab(qwen05_gguf)
    template = llm.metadata["tokenizer.chat_template"]
    llm.close()
    messages = agent_conversation()
    jinja = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="<|endoftext|>")
    for i, message in enumerate(messages):
        if message["role"] == "assistant":  # the prompt at each turn: generation prompt included
            assert jinja(messages=messages[:i]).prompt == render_chatml(messages[:i])
    closed = Jinja2ChatFormatter(template, "<|im_end|>", "<|endoftext|>", add_generation_prompt=False)
    assert closed(messages=messages).prompt == render_chatml(messages) + "<|im_end|>\n"
