"""tui-agent: a terminal coding agent on a small, local model, and the pipeline that distils such models."""

__version__ = "0.1.0"
