"""Settings: defaults, the config file, environment overrides, and clear errors for a broken file."""

from __future__ import annotations

import pytest

from tui_agent.config import ConfigError, Settings, config_dir, read_toml


def test_defaults_without_a_config_file():
    settings = Settings.load()
    assert settings.model == "gemma3-270m"
    assert settings.approval == "ask"
    assert settings.web is True


def test_config_file_then_environment_override(monkeypatch):
    path = config_dir() / "config.toml"
    path.write_text('model = "qwen2.5-coder-0.5b-instruct"\nmax_steps = 4\nweb = false\nmy_key = 1\n')
    monkeypatch.setenv("TUI_AGENT_MAX_STEPS", "6")
    settings = Settings.load()
    assert settings.model == "qwen2.5-coder-0.5b-instruct"
    assert settings.max_steps == 6
    assert settings.web is False
    assert settings.extra == {"my_key": 1}


def test_malformed_file_names_file_and_line():
    path = config_dir() / "config.toml"
    path.write_text('model = "x"\nmax_steps = = 3\n')
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert str(path) in str(info.value)
    assert ":2" in str(info.value)


def test_wrong_type_is_reported_with_the_setting_name():
    path = config_dir() / "config.toml"
    path.write_text('max_steps = "many"\n')
    with pytest.raises(ConfigError, match="max_steps"):
        Settings.load()


def test_bad_environment_value_is_reported(monkeypatch):
    monkeypatch.setenv("TUI_AGENT_WEB", "perhaps")
    with pytest.raises(ConfigError, match="web"):
        Settings.load()


def test_unknown_approval_mode_is_refused():
    (config_dir() / "config.toml").write_text('approval = "yolo"\n')
    with pytest.raises(ConfigError, match="approval"):
        Settings.load()


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_toml(tmp_path / "missing.toml")
