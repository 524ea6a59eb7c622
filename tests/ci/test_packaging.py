"""The dependency pins in pyproject.toml say what was tested."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def _requirement(extra: str, name: str) -> Requirement:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (found,) = [r for r in map(Requirement, project["optional-dependencies"][extra]) if r.name == name]
    return found


def test_train_extra_admits_the_torch_release_ci_tests_and_no_later_minor_release():
    torch = _requirement("train", "torch")
    tested = Version(re.search(r"torch==([\d.]+)", (REPO / ".ci" / "run").read_text())[1])
    assert torch.specifier.contains(tested)
    assert not torch.specifier.contains(f"{tested.major}.{tested.minor + 1}.0")
