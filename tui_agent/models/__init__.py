"""Models: the registry (models.toml), hub downloads and the llama.cpp runtime."""
