"""Sub-commands of ``tui-agent``; each module has ``register(app)`` and keeps heavy imports inside functions."""
