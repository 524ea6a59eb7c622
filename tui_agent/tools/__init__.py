"""What the agent can do: a Jupyter kernel and the tools its prelude defines."""
