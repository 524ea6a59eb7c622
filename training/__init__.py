"""Distil a teacher agent into a small student: trajectories, filtering, LoRA SFT, GGUF export, evaluation."""
