"""Screens of the interactive session."""
