"""The CodeAct agent: prompts, parsing, the loop, SAG and trajectories."""
