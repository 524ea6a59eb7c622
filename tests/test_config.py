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
    path.write_text('model = "qwen2.5-coder-0.5b-instruct"\nmax_steps = 4\nweb = false\ntemperature = 1\n')
    monkeypatch.setenv("TUI_AGENT_MAX_STEPS", "6")
    settings = Settings.load()
    assert settings.model == "qwen2.5-coder-0.5b-instruct"
    assert settings.max_steps == 6
    assert settings.web is False
    assert settings.temperature == 1.0 and isinstance(settings.temperature, float)


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


def test_unknown_key_is_an_error_naming_file_line_and_the_known_settings():
    path = config_dir() / "config.toml"
    path.write_text('model = "x"\ntemprature = 0.5\n')
    with pytest.raises(ConfigError) as info:
        Settings.load()
    message = str(info.value)
    assert message.startswith(f"{path}:2: unknown setting 'temprature'; did you mean 'temperature'?")
    assert "known settings: model, max_steps, temperature, sag" in message


def test_unknown_table_is_an_error_too():
    path = config_dir() / "config.toml"
    path.write_text('model = "x"\n\n[models.mine]\nfile = "a.gguf"\n')
    with pytest.raises(ConfigError, match=f"^{path}:3: unknown setting 'models'"):
        Settings.load()


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_steps = 2.9\n", "setting 'max_steps' must be a whole number, not 2.9"),
        ("sag = 0\n", "setting 'sag' must be from 1 to 16, not 0"),
        ("sag = 17\n", "setting 'sag' must be from 1 to 16, not 17"),
        ("temperature = -0.1\n", "setting 'temperature' must be from 0.0 to 2.0, not -0.1"),
        ("web = 1\n", "setting 'web' must be true or false, not 1"),
        ('approval = "yolo"\n', "setting 'approval' must be one of ask, auto, read-only, not 'yolo'"),
        ("cell_timeout = 0\n", "setting 'cell_timeout' must be 1.0 or more, not 0.0"),
        ("n_threads = -2\n", "setting 'n_threads' must be 0 or more, not -2"),
        ('model = ""\n', "setting 'model' must not be empty"),
    ],
)
def test_wrong_type_or_range_names_file_key_and_allowed_values(text, message):
    path = config_dir() / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert str(info.value) == f"{path}:1: {message}"


def test_environment_values_are_checked_like_the_file(monkeypatch):
    monkeypatch.setenv("TUI_AGENT_SAG", "2.9")
    with pytest.raises(ConfigError, match="environment variable TUI_AGENT_SAG: setting 'sag' must be a whole number"):
        Settings.load()
    monkeypatch.setenv("TUI_AGENT_SAG", "99")
    with pytest.raises(ConfigError, match="must be from 1 to 16, not 99"):
        Settings.load()
    monkeypatch.setenv("TUI_AGENT_SAG", " 4 ")
    assert Settings.load().sag == 4


def test_the_cli_reports_a_bad_setting_in_one_line_with_exit_2(tmp_path):
    import subprocess
    import sys

    path = config_dir() / "config.toml"
    path.write_text('model = "gemma3-270m"\nsag = 2.9\n')
    for args in (["ask", "--yes", "--workspace", str(tmp_path), "x"], []):
        done = subprocess.run(
            [sys.executable, "-m", "tui_agent.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 2
        assert done.stderr.splitlines() == [f"error: {path}:2: setting 'sag' must be a whole number, not 2.9"]
