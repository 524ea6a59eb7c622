"""The llama.cpp runtime behind the ChatModel protocol.

Each call renders the whole conversation into one prompt string (chat_formats) and streams llama.cpp's completion
for it. Because an agent conversation only grows at the end, llama.cpp's prefix matching keeps the KV cache of
everything it has already seen and evaluates only the new tokens; ``last_usage.prompt_eval_tokens`` reports how
many were actually evaluated, so this stays measurable (benchmarks/bench_runtime.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tui_agent.models.base import Message, ModelError, Usage
from tui_agent.models.chat_formats import ChatFormat

DEFAULT_MAX_CTX = 8192  # what we allocate by default, whatever the model was trained for (memory)


def default_threads() -> int:
    """Physical cores: llama.cpp gets slower, not faster, on hyper-threads."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        cores = None
    return max(1, cores or os.cpu_count() or 1)


class LlamaChatModel:
    """A GGUF model loaded by llama-cpp-python, speaking in one chat format."""

    def __init__(
        self,
        path: str | Path,
        chat_format: ChatFormat | None = None,
        *,
        name: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        lora_path: str | None = None,
    ):
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        threads = n_threads or default_threads()
        try:
            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx or DEFAULT_MAX_CTX,
                n_threads=threads,
                n_threads_batch=threads,
                lora_path=lora_path,
                swa_full=True,  # sliding-window models (Gemma 3) keep their whole cache, so prefixes stay reusable
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"LoRA adapter {lora_path} or model" if lora_path else "model"
            raise ModelError(f"llama.cpp could not load the {what} {self.path}: {exc}") from exc
        if chat_format is None:
            from tui_agent.models.chat_formats import detect_format

            chat_format = detect_format(self._llm.metadata)
        self.chat_format = chat_format
        self._usage = Usage()
        self._grammars: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def architecture(self) -> str:
        return self._llm.metadata.get("general.architecture", "")

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._llm.metadata)

    @property
    def context_length(self) -> int:
        return self._llm.n_ctx()

    @property
    def last_usage(self) -> Usage:
        return self._usage

    @property
    def llama(self):
        """The underlying llama_cpp.Llama (benchmarks compare against it directly)."""
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: Sequence[Message]) -> str:
        return self.chat_format.render(messages)

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] = (),
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Render the conversation, then stream completion pieces (see ChatModel.stream_chat)."""
        return self.stream_prompt(
            self.render(messages),
            stop=[*self.chat_format.stops, *stop],
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            grammar=grammar,
            cancel=cancel,
        )

    def stream_prompt(
        self,
        prompt: str,
        *,
        stop: Sequence[str] = (),
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Stream a completion of a raw prompt string; the tokenizer adds BOS where the model wants one."""
        llm = self._llm
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) + 1 >= llm.n_ctx():
            raise ModelError(
                f"The conversation is {len(tokens)} tokens, more than the model's context of {llm.n_ctx()}; "
                "start a new session or raise n_ctx."
            )
        max_tokens = max(1, min(max_tokens, llm.n_ctx() - len(tokens)))
        compiled = self._grammar(grammar) if grammar else None
        if not self._lock.acquire(blocking=False):
            raise ModelError("This model is already generating; one generation at a time.")
        try:
            cached = llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
            evaluated = len(tokens) - cached if cached < len(tokens) else 1
            usage = Usage(prompt_tokens=len(tokens), prompt_eval_tokens=evaluated, stop_reason="length")
            self._usage = usage
            start = time.perf_counter()
            first: float | None = None
            reason = "length"
            stream = llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=1 if temperature <= 0 else 40,
                repeat_penalty=1.0,
                stop=list(dict.fromkeys(s for s in stop if s)),
                seed=seed,
                grammar=compiled,
                stream=True,
            )
            try:
                for chunk in stream:
                    if first is None:
                        first = time.perf_counter()
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        yield choice["text"]
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
                    if cancel is not None and cancel.is_set():
                        reason = "cancelled"
                        break
            finally:
                stream.close()
                end = time.perf_counter()
                first = first or end
                usage.completion_tokens = max(0, llm.n_tokens - len(tokens) + 1)
                usage.prompt_seconds = first - start
                usage.generation_seconds = end - first
                usage.stop_reason = reason if reason in ("stop", "length", "cancelled") else "stop"
        finally:
            self._lock.release()

    def _grammar(self, text: str):
        if text not in self._grammars:
            from llama_cpp import LlamaGrammar

            try:
                self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"Invalid GBNF grammar: {exc}") from exc
        return self._grammars[text]

    def close(self) -> None:
        self._llm.close()


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
