"""Fixtures for the code index: copies of real source trees in temp dirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def json_pkg(tmp_path) -> Path:
    """A workspace holding a copy of the standard library's ``json`` package (real code, safe to edit)."""
    root = tmp_path / "ws"
    shutil.copytree(Path(json.__file__).parent, root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def typer_pkg(tmp_path_factory) -> Path:
    """A copy of the installed ``typer`` package: a few thousand lines of real, modern Python."""
    import typer

    root = tmp_path_factory.mktemp("typer-ws")
    shutil.copytree(Path(typer.__file__).parent, root / "typer", ignore=shutil.ignore_patterns("__pycache__"))
    return root
