"""The llama.cpp runtime behind the ChatModel protocol.

Each call renders the whole conversation into one prompt string (chat_formats) and streams llama.cpp's completion
for it. Because an agent conversation only grows at the end, llama.cpp's prefix matching keeps the KV cache of
everything it has already seen and evaluates only the new tokens; ``last_usage.prompt_eval_tokens`` reports how
many were actually evaluated, so this stays measurable (benchmarks/bench_runtime.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tui_agent.models.base import Message, ModelError, Usage
from tui_agent.models.batched import MAX_SEQUENCES
from tui_agent.models.chat_formats import ChatFormat
from tui_agent.models.prompt_cache import PromptCache, cache_key

DEFAULT_MAX_CTX = 8192  # what we allocate by default, whatever the model was trained for (memory)


def default_threads() -> int:
    """Physical cores this process may use: llama.cpp gets slower, not faster, on hyper-threads. Without an
    explicit ``n_threads`` a model uses fewer when other processes keep some busy (see models/threads.py)."""
    from tui_agent.models.threads import usable_cores

    return usable_cores()


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
        sha256: str | None = None,
        prompt_style: str = "full",
        prompt_cache: PromptCache | None = None,
        n_seq_max: int | None = None,
    ):
        self.path = Path(path)
        self.prompt_cache = prompt_cache
        self.prompt_progress: Callable[[int, int], None] | None = None  # (evaluated, total) while reading a prompt
        self._lock = threading.Lock()  # one evaluation at a time: a background warm-up and a run share the context
        self._closing = threading.Event()
        self.prompt_style = prompt_style
        self.name = name or self.path.stem
        self.lora_path = lora_path
        self._sha256 = sha256
        from tui_agent.models.threads import ThreadFit

        # No explicit count: fit the threads to the free cores now and before every generation.
        self._fit = ThreadFit() if not n_threads else None
        threads = n_threads or default_threads()
        try:
            with deferred_interrupt(), quiet_stderr():
                self._llm = _counting_llama_class()(
                    model_path=str(self.path),
                    n_ctx=n_ctx or DEFAULT_MAX_CTX,
                    n_threads=threads,
                    n_threads_batch=threads,
                    lora_path=lora_path,
                    swa_full=True,  # sliding-window models (Gemma 3) keep the whole cache: prefixes stay reusable
                    verbose=False,
                    n_seq_max=MAX_SEQUENCES if n_seq_max is None else n_seq_max,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"LoRA adapter {lora_path} or model" if lora_path else "model"
            raise ModelError(f"llama.cpp could not load the {what} {self.path}: {exc}") from exc
        if chat_format is None:
            from tui_agent.models.chat_formats import detect_format

            try:
                chat_format = detect_format(self._llm.metadata)
            except ModelError:
                self._llm.close()
                raise
        self.chat_format = chat_format
        self.n_threads = threads
        self._fit_threads()
        self._usage = Usage()
        self._grammars: dict[str, object] = {}
        self._active: Iterator | None = None
        self.last_usages: list[Usage] = []  # one per candidate after stream_many

    def describe(self) -> dict[str, object]:
        """What a trajectory records about the model: exact files (with sha256), format and context size."""
        from tui_agent.models.fingerprint import file_sha256

        return {
            "model_name": self.name,
            "model_file": str(self.path),
            "model_sha256": file_sha256(self.path, known=self._sha256),
            "lora_file": self.lora_path,
            "lora_sha256": file_sha256(Path(self.lora_path)) if self.lora_path else None,
            "chat_format": self.chat_format.name,
            "architecture": self.architecture,
            "n_ctx": self.context_length,
        }

    @property
    def architecture(self) -> str:
        return self._llm.metadata.get("general.architecture", "")

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._llm.metadata)

    @property
    def instruct(self) -> bool:
        """Whether the file carries a chat template; a base model has none and needs its turns started for it."""
        return "tokenizer.chat_template" in self.metadata

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
        """Stream a completion of a raw prompt string; the tokenizer adds BOS where the model wants one.

        Bad input (too long, invalid grammar) raises here, before any token. Starting a new stream while an
        earlier one from this thread is still open cancels the earlier one (the model does one thing at a time).
        """
        llm = self._llm
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) + 1 >= llm.n_ctx():
            raise ModelError(
                f"The conversation is {len(tokens)} tokens, more than the model's context of {llm.n_ctx()}; "
                "start a new session or raise n_ctx."
            )
        compiled = self._grammar(grammar) if grammar else None
        if self._active is not None:
            try:
                self._active.close()
            except ValueError:  # "generator already executing": another thread is using the model
                raise ModelError("This model is already generating in another thread.") from None
        self._active = self._generate(
            tokens,
            stop=list(dict.fromkeys(s for s in stop if s)),
            max_tokens=max(1, min(max_tokens, llm.n_ctx() - len(tokens))),
            temperature=temperature,
            seed=seed,
            grammar=compiled,
            cancel=cancel,
        )
        return self._active

    def stream_many(
        self,
        messages: Sequence[Message],
        *,
        seeds: Sequence[int],
        stop: Sequence[str] = (),
        max_tokens: int = 512,
        temperature: float = 0.7,
        cancel: threading.Event | None = None,
        halt: Callable[[int, str], bool] | None = None,
    ) -> Iterator[tuple[int, str]]:
        """Sample len(seeds) completions of one conversation together (see models/batched.py): yields
        (candidate, text piece); ``last_usages`` then holds one Usage per candidate. The prompt is read once."""
        llm = self._llm
        if len(seeds) > llm.n_seq_max:
            raise ModelError(f"This model was loaded for at most {llm.n_seq_max} candidates, not {len(seeds)}.")
        tokens = llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
        if len(tokens) + 1 >= llm.n_ctx():
            raise ModelError(
                f"The conversation is {len(tokens)} tokens, more than the model's context of {llm.n_ctx()}; "
                "start a new session or raise n_ctx."
            )
        if self._active is not None:
            try:
                self._active.close()
            except ValueError:
                raise ModelError("This model is already generating in another thread.") from None
        self._active = self._many(
            tokens,
            seeds=list(seeds),
            stops=list(dict.fromkeys(s for s in [*self.chat_format.stops, *stop] if s)),
            max_tokens=max(1, min(max_tokens, llm.n_ctx() - len(tokens))),
            temperature=temperature,
            cancel=cancel,
            halt=halt,
        )
        return self._active

    def _many(self, tokens, *, seeds, stops, max_tokens, temperature, cancel, halt) -> Iterator[tuple[int, str]]:
        from tui_agent.models.batched import decode_sequences

        with self._lock:
            self._fit_threads()
            llm = self._llm
            timing = {"start": time.perf_counter()}
            evaluated = [0]

            def evaluate_prompt(prompt: list[int]) -> int:
                held = list(llm.input_ids[: min(llm.n_tokens, len(prompt))])
                common = next((i for i, (a, b) in enumerate(zip(held, prompt, strict=False)) if a != b), len(held))
                common = min(common, len(prompt) - 1)  # the last prompt token is evaluated again for its logits
                llm.n_tokens = common
                llm.eval_sizes.clear()
                llm.eval(prompt[common:])
                timing["prompt"] = time.perf_counter()
                evaluated[0] = len(prompt) - common
                return evaluated[0]

            llm.progress, llm.abort = self.prompt_progress, cancel
            results = None
            try:
                results = yield from decode_sequences(
                    llm,
                    tokens,
                    seeds=seeds,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    stops=stops,
                    cancel=cancel,
                    halt=halt,
                    evaluate_prompt=evaluate_prompt,
                )
            except _PromptCancelled:
                results = None
            finally:
                llm.progress = llm.abort = None
                end = time.perf_counter()
                prompt_end = timing.get("prompt", end)
                self.last_usages = [
                    Usage(
                        prompt_tokens=len(tokens),
                        prompt_eval_tokens=evaluated[0] if i == 0 else 0,
                        completion_tokens=results[i][1] if results else 0,
                        prompt_seconds=prompt_end - timing["start"],
                        generation_seconds=end - prompt_end,
                        stop_reason=results[i][2] if results else "cancelled",
                    )
                    for i in range(len(seeds))
                ]
                self._usage = self.last_usages[0]
                self._active = None

    def warm_prefix(self, text: str, *, base: str | None = None, cancel: threading.Event | None = None) -> str:
        """Make the KV cache start with ``text``, a rendered prompt prefix (BOS added as for a prompt).

        Returns "warm" (already there), "cached" (restored from the prompt cache), "evaluated" (read now and
        saved to the cache, if there is one), "cancelled" (``cancel`` was set) or "skipped" (too long for the
        context). When ``text`` itself is not cached, the shorter ``base`` (a prefix of it) is restored or read
        first, then only the rest. A later prompt that starts with ``text`` then only evaluates what follows it.
        Safe to call from a background thread: a run waits for it.
        """
        llm = self._llm
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        if not tokens or len(tokens) + 1 >= llm.n_ctx():
            return "skipped"
        with self._lock:
            if self._closing.is_set():
                return "cancelled"
            self._fit_threads()
            if self._holds(tokens):
                return "warm"
            if self._restore(tokens):
                return "cached"
            if base:
                status = self._warm(llm.tokenize(base.encode("utf-8"), add_bos=True, special=True), cancel)
                if status == "cancelled":
                    return status
            return self._warm(tokens, cancel)

    def _holds(self, tokens: list[int]) -> bool:
        llm = self._llm
        return llm.n_tokens >= len(tokens) and list(llm.input_ids[: len(tokens)]) == tokens

    def _key(self, tokens: list[int]) -> str:
        llm = self._llm
        return cache_key(
            model=self.path, lora=self.lora_path, n_ctx=llm.n_ctx(), tokens=tokens, n_seq_max=llm.n_seq_max
        )

    def _restore(self, tokens: list[int]) -> bool:
        """Load the cached state of exactly ``tokens``, if there is a good one (a bad one is removed)."""
        if self.prompt_cache is None or not self.prompt_cache.path(key := self._key(tokens)).is_file():
            return False
        llm = self._llm
        with quiet_stderr():  # llama.cpp logs its reason for refusing a bad file; the entry is rebuilt
            loaded = self.prompt_cache.load(llm.ctx, key, tokens)
        if not loaded:
            self._clear_kv()  # a file refused half-way may have left part of its state
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return True

    def _warm(self, tokens: list[int], cancel: threading.Event | None) -> str:
        """``warm_prefix`` for one prefix, with the lock held."""
        llm = self._llm
        if self._holds(tokens):
            return "warm"
        if self._restore(tokens):
            return "cached"
        held = list(llm.input_ids[: min(llm.n_tokens, len(tokens))])
        common = next((i for i, (a, b) in enumerate(zip(held, tokens, strict=False)) if a != b), len(held))
        llm.n_tokens = common
        llm.eval_sizes.clear()
        llm.progress, llm.abort = self.prompt_progress, cancel or self._closing
        try:
            llm.eval(tokens[common:])
        except _PromptCancelled:
            return "cancelled"  # what was read stays in the KV cache; nothing half-done is saved
        finally:
            llm.progress = llm.abort = None
        if self.prompt_cache is not None:
            self.prompt_cache.save(llm.ctx, self._key(tokens), tokens)
        return "evaluated"

    def _fit_threads(self) -> None:
        """Use the cores that are free now (only when the thread count was not given explicitly)."""
        if self._fit is None:
            return
        threads = self._fit.pick()
        if threads != self.n_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self._llm.ctx, threads, threads)
            self._llm.n_threads = self._llm.n_threads_batch = threads
            self.n_threads = threads

    def _clear_kv(self) -> None:
        """Forget everything in the context (after a state file failed half-way through loading)."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self._llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)
        self._llm.n_tokens = 0

    def _generate(self, tokens, *, stop, max_tokens, temperature, seed, grammar, cancel) -> Iterator[str]:
        with self._lock:
            yield from self._generate_locked(
                tokens,
                stop=stop,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                grammar=grammar,
                cancel=cancel,
            )

    def _generate_locked(self, tokens, *, stop, max_tokens, temperature, seed, grammar, cancel) -> Iterator[str]:
        self._fit_threads()
        llm = self._llm
        llm.progress = self.prompt_progress
        usage = Usage(prompt_tokens=len(tokens), stop_reason="cancelled")
        self._usage = usage
        llm.eval_sizes.clear()
        llm.abort = cancel
        start = time.perf_counter()
        first: float | None = None
        reason = "cancelled"  # until llama.cpp says otherwise; also what an abandoned stream ends as
        stream = llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=1 if temperature <= 0 else 40,
            repeat_penalty=1.0,
            stop=stop,
            seed=seed,
            grammar=grammar,
            stream=True,
        )
        try:
            for chunk in stream:
                if first is None:
                    first = time.perf_counter()
                choice = chunk["choices"][0]
                if choice.get("finish_reason"):
                    reason = choice["finish_reason"]
                if choice["text"]:
                    yield choice["text"]
                if cancel is not None and cancel.is_set() and not choice.get("finish_reason"):
                    reason = "cancelled"
                    break
        except _PromptCancelled:
            reason = "cancelled"
        finally:
            llm.abort = None
            llm.progress = None
            stream.close()
            end = time.perf_counter()
            first = first or end
            # the first eval of this generation is the prompt's suffix that was not in the KV cache
            usage.prompt_eval_tokens = llm.eval_sizes[0] if llm.eval_sizes else 0
            usage.completion_tokens = max(0, llm.n_tokens - len(tokens) + 1) if llm.eval_sizes else 0
            usage.prompt_seconds = first - start
            usage.generation_seconds = end - first
            usage.stop_reason = reason if reason in ("stop", "length", "cancelled") else "stop"
            self._active = None

    def _grammar(self, text: str):
        """Compile a GBNF grammar, checked first: llama.cpp crashes the process on a grammar it cannot parse."""
        if text not in self._grammars:
            import llama_cpp

            with quiet_stderr():  # the parser prints its complaint to stderr; ours is the one-line error
                sampler = llama_cpp.llama_sampler_init_grammar(self._llm._model.vocab, text.encode(), b"root")
            if not sampler:
                raise ModelError("Invalid GBNF grammar: llama.cpp cannot parse it (it needs a 'root' rule).")
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[text] = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def close(self) -> None:
        """Free the model; a background warm-up still reading the prompt is stopped first."""
        self._closing.set()
        locked = self._lock.acquire(timeout=10)  # an abandoned open stream must not hang the caller forever
        try:
            self._llm.close()
        finally:
            if locked:
                self._lock.release()


_COUNTING_LLAMA = None
EVAL_SLICE = 128  # tokens per prompt slice: Ctrl-C waits for at most one (about a second on 2 cores)


def _report(progress: Callable[[int, int], None], done: int, total: int) -> None:
    """A progress display that fails (a closing screen) must not stop the model."""
    try:
        progress(done, total)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).debug("prompt progress callback failed", exc_info=True)


class _PromptCancelled(Exception):
    """Raised between prompt slices when the caller cancelled; the tokens evaluated so far stay cached."""


@contextlib.contextmanager
def deferred_interrupt():
    """Hold a Ctrl-C that arrives while native code runs, and raise it once that code has returned.

    llama.cpp calls back into Python (its log lines) while a model loads; a KeyboardInterrupt raised inside such a
    ctypes callback is printed and dropped, so the user's Ctrl-C would simply vanish. Only the main thread receives
    signals, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # a background job: Ctrl-C is not ours to take
        yield
        return
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not allowed here (an embedding interpreter): keep the usual behaviour
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def quiet_stderr():
    """Silence native code's writes to fd 2 (llama.cpp logs some lines even with verbose=False).

    Only stderr: a terminal UI may be drawing on stdout at the same moment.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_context_sequences = threading.local()  # n_seq_max for the context being created in this thread


def _multi_sequence_contexts() -> None:
    """Create contexts with room for several sequences in one unified KV cache (SAG's batched candidates).

    Llama() has no argument for it, so the default parameters it starts from are adjusted while one of our models
    is being created; with one sequence in use a unified cache behaves exactly like the single-sequence one."""
    import llama_cpp.llama_cpp as lib

    if getattr(lib, "_tui_agent_sequences", False):
        return
    original = lib.llama_context_default_params

    def params():
        value = original()
        sequences = getattr(_context_sequences, "value", 0)
        if sequences > 1:
            value.n_seq_max = sequences
            value.kv_unified = True
        return value

    lib.llama_context_default_params = params
    lib._tui_agent_sequences = True


def _plain_cpu_buffers() -> None:
    """Keep weights in plain CPU buffers, not llama.cpp's "extra" (AMX / repacked) ones: on a VM whose CPU
    advertises AMX that the kernel does not enable, the first multi-token batch dies with SIGILL.
    TUI_AGENT_LLAMA_EXTRA_BUFFERS=1 keeps them where they work."""
    import llama_cpp.llama_cpp as lib

    if os.environ.get("TUI_AGENT_LLAMA_EXTRA_BUFFERS") == "1" or getattr(lib, "_tui_agent_plain", False):
        return
    original = lib.llama_model_default_params

    def params():
        value = original()
        value.use_extra_bufts = False
        return value

    lib.llama_model_default_params = params
    lib._tui_agent_plain = True


_LOG_LEVELS = {0: logging.INFO, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.DEBUG}
_log_callback = None  # kept referenced: llama.cpp holds only a C pointer to it


def _route_native_logs() -> None:
    """Send llama.cpp's log lines to the `tui_agent.llama` logger instead of printing them.

    llama-cpp-python's own callback prints some lines whatever `verbose` says, through `sys.stderr`, which a
    spinner or a TUI may have redirected onto the screen. Logging keeps them for whoever configures a handler,
    without drawing over the user's terminal.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    log = logging.getLogger("tui_agent.llama")
    log.addHandler(logging.NullHandler())  # no handler configured: silence, not logging's last-resort printing
    last = [logging.INFO]

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data) -> None:  # noqa: ANN001 - a C callback's signature
        if level != 5:  # 5 continues the previous line at its level
            last[0] = _LOG_LEVELS.get(level, logging.INFO)
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            log.log(last[0], message)

    llama_cpp.llama_log_set(callback, None)
    _log_callback = callback


def _counting_llama_class():
    """llama_cpp.Llama that records the size of every eval batch, so usage reports what was really evaluated
    (llama.cpp falls back to a full re-evaluation when it cannot trim the KV cache; this sees that too)."""
    global _COUNTING_LLAMA
    if _COUNTING_LLAMA is None:
        from llama_cpp import Llama

        _plain_cpu_buffers()
        _multi_sequence_contexts()
        _route_native_logs()

        class CountingLlama(Llama):
            def __init__(self, *args, n_seq_max: int = 1, **kwargs):
                self.eval_sizes: list[int] = []
                self.abort: threading.Event | None = None
                self.progress: Callable[[int, int], None] | None = None
                self.n_seq_max = n_seq_max
                _context_sequences.value = n_seq_max
                try:
                    super().__init__(*args, **kwargs)
                finally:
                    _context_sequences.value = 0

            @property
            def ctx(self):
                """The llama_context pointer (state save/load, memory calls)."""
                return self._ctx.ctx

            def eval(self, tokens):
                """Evaluate in slices, checking `abort` between them: a long prompt stops within a slice.

                ``progress(done, total)`` hears about each slice of a prompt (not of single generated tokens)."""
                self.eval_sizes.append(len(tokens))
                total = len(tokens)
                report = self.progress if total > 1 else None
                for start in range(0, total, EVAL_SLICE):
                    if start and self.abort is not None and self.abort.is_set():
                        raise _PromptCancelled
                    if report is not None:
                        _report(report, start, total)
                    super().eval(tokens[start : start + EVAL_SLICE])
                if report is not None:
                    _report(report, total, total)

        _COUNTING_LLAMA = CountingLlama
    return _COUNTING_LLAMA
