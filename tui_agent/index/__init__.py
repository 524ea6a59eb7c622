"""Codebase understanding: tree-sitter symbols and a full-text index in SQLite."""
