"""tui-agent: a terminal coding agent on a small, local, agent-distilled model."""

__version__ = "0.1.0"
