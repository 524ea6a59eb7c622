"""The interactive Textual session."""
