"""Widgets of the interactive session."""
