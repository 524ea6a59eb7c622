"""Sub-commands of ``tui-agent``; each module has ``register(app)`` and keeps heavy imports inside functions."""

MODEL_HELP = (
    "Registry name or path to a GGUF file. NAME+none runs a registry model without its LoRA adapter; "
    "NAME+FILE.gguf runs it with that adapter."
)
