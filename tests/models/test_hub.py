"""Downloads through the real huggingface_hub client against a local server that speaks the hub's protocol,
serving the real Qwen2.5-Coder-0.5B GGUF: normal pull, a dropped connection that resumes, a corrupt file, a 404,
no network, offline mode and a full disk."""

from __future__ import annotations

import socket
from collections import namedtuple
from pathlib import Path

import pytest

from tests.models.hub_server import HubServer
from tui_agent.models import hub
from tui_agent.models.base import ModelError
from tui_agent.models.registry import load_registry

NAME = "qwen2.5-coder-0.5b"


@pytest.fixture()
def spec():
    return load_registry().get(NAME)


@pytest.fixture()
def server(qwen05_gguf, spec, tmp_path, monkeypatch):
    """The hub server with the real GGUF, HF_ENDPOINT pointing at it and a fresh HF_HOME."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with HubServer({spec.repo: {spec.file: qwen05_gguf}}, etags={spec.file: spec.sha256}) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".incomplete")]


def _gets(server: HubServer) -> list[tuple[str, str, str | None]]:
    return [r for r in server.requests if r[0] == "GET" and r[1].endswith(".gguf")]


def test_pull_downloads_into_hf_home_and_verifies(server, spec, tmp_path):
    path = hub.pull(spec)
    assert path.is_file() and path.stat().st_size == spec.size
    assert str(path).startswith(str(tmp_path / "hf" / "hub"))
    assert hub.local_path(spec) == path and hub.local_size(spec) == spec.size
    assert _gets(server) == [("GET", spec.file, None)]
    again = hub.pull(spec)  # already there: verified, not downloaded again
    assert again == path and len(_gets(server)) == 1


def test_dropped_connection_resumes_with_a_range_request(server, spec, tmp_path):
    server.cut_after[spec.file] = 150_000_000
    path = hub.pull(spec)
    gets = _gets(server)
    assert len(gets) == 2 and gets[0][2] is None
    resumed_from = int(gets[1][2].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 150_000_000  # continued, not restarted
    assert path.stat().st_size == spec.size
    assert not _leftovers(tmp_path / "hf")


def test_corrupt_download_is_removed_and_reported(server, spec, tmp_path):
    server.corrupt_at[spec.file] = spec.size // 2
    with pytest.raises(ModelError, match=r"corrupt.*sha256.*--force"):
        hub.pull(spec)
    assert hub.local_path(spec) is None
    blobs = list((tmp_path / "hf" / "hub").rglob("blobs/*"))
    assert blobs == [] and not _leftovers(tmp_path / "hf")


def test_corrupt_local_file_offers_force_and_force_repairs(server, spec):
    path = hub.pull(spec)
    blob = path.resolve()
    with open(blob, "r+b") as handle:  # damage the cached copy in place
        handle.seek(1000)
        handle.write(b"\0" * 16)
    with pytest.raises(ModelError, match=f"models pull {NAME} --force"):
        hub.pull(spec)
    repaired = hub.pull(spec, force=True)
    assert repaired.stat().st_size == spec.size
    hub.pull(spec)  # verifies cleanly now


def test_missing_file_is_a_404_error(server, spec):
    missing = spec.__class__(**{**spec.__dict__, "name": "gone", "file": "no-such-file.gguf", "sha256": None})
    with pytest.raises(ModelError, match=r"no-such-file\.gguf was not found on http://127\.0\.0\.1:\d+ \(HTTP 404\)"):
        hub.pull(missing)
    unknown_repo = spec.__class__(**{**spec.__dict__, "repo": "Nobody/Nothing-GGUF"})
    with pytest.raises(ModelError, match="Repository Nobody/Nothing-GGUF was not found"):
        hub.pull(unknown_repo)


def test_no_network_names_the_offline_alternatives(spec, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match=r"Cannot reach .*no network.*local GGUF file.*HF_ENDPOINT"):
        hub.pull(spec)


def test_offline_mode_uses_cache_and_never_the_network(server, spec, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        hub.pull(spec)
    assert server.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    path = hub.pull(spec)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    count = len(server.requests)
    assert hub.pull(spec) == path and len(server.requests) == count


def test_not_enough_disk_space_stops_before_downloading(server, spec, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(ModelError, match=r"Not enough disk space for qwen2\.5-coder-0\.5b: it needs 0\.49 GB"):
        hub.pull(spec)
    assert _gets(server) == []


def test_rm_deletes_blob_and_link(server, spec):
    path = hub.pull(spec)
    blob = path.resolve()
    removed = hub.remove(spec)
    assert set(removed) == {blob, path}
    assert hub.local_path(spec) is None and hub.remove(spec) == []


def test_embedded_model_is_assembled_atomically_into_the_cache(gemma_gguf):
    spec = load_registry().get("gemma3-270m")
    path = hub.ensure_embedded(spec)
    assert path == hub.embedded_path(spec) and path.stat().st_size == spec.size
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial files left
    assert hub.pull(spec) == path


def _tiny_gguf(path: Path, value: float) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tensor("token_embd.weight", np.full((4, 8), value, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_split_model_downloads_every_part(tmp_path, monkeypatch):
    parts = {f"m-q4_k_m-0000{i}-of-00002.gguf": _tiny_gguf(tmp_path / f"part{i}.gguf", float(i)) for i in (1, 2)}
    user = tmp_path / "models.toml"
    user.write_text('[models.split]\nrepo = "me/Split-GGUF"\nfile = "m-q4_k_m-00001-of-00002.gguf"\n')
    spec = load_registry(user).get("split")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with HubServer({"me/Split-GGUF": parts}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        first = hub.pull(spec)
    assert first.name == "m-q4_k_m-00001-of-00002.gguf"
    assert (first.parent / "m-q4_k_m-00002-of-00002.gguf").is_file()  # side by side, as llama.cpp expects
    assert hub.local_size(spec) == sum(p.stat().st_size for p in parts.values())
    assert len(hub.remove(spec)) == 4 and hub.local_path(spec) is None


OLDER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture()
def tiny_hub(tmp_path, monkeypatch):
    """A hub serving two tiny GGUFs of one repo at main and at an older commit with the same content, and a
    user registry naming them: ``latest`` (main), ``pinned`` (the older commit), ``other`` (another file)."""
    files = {"m-q4.gguf": _tiny_gguf(tmp_path / "q4.gguf", 1.0), "m-q8.gguf": _tiny_gguf(tmp_path / "q8.gguf", 2.0)}
    user = tmp_path / "models.toml"
    user.write_text(
        '[models.latest]\nrepo = "me/Tiny-GGUF"\nfile = "m-q4.gguf"\n\n'
        f'[models.pinned]\nrepo = "me/Tiny-GGUF"\nfile = "m-q4.gguf"\nrevision = "{OLDER}"\n\n'
        '[models.other]\nrepo = "me/Tiny-GGUF"\nfile = "m-q8.gguf"\n'
    )
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with HubServer({"me/Tiny-GGUF": files}) as server:
        server.revisions[OLDER] = OLDER
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield load_registry(user), files


def test_rm_keeps_a_blob_that_another_revision_still_links_to(tiny_hub):
    registry, files = tiny_hub
    latest, pinned = registry.get("latest"), registry.get("pinned")
    main_path, pinned_path = hub.pull(latest), hub.pull(pinned)
    blob = main_path.resolve()
    assert main_path != pinned_path and pinned_path.resolve() == blob  # two revisions, one blob
    assert hub.remove(latest) == [main_path]
    assert hub.local_path(latest) is None and not main_path.parent.exists()  # the revision is gone
    assert hub.local_path(pinned) == pinned_path
    assert pinned_path.read_bytes() == files["m-q4.gguf"].read_bytes()  # the other revision still works
    assert hub.remove(pinned) == [pinned_path, blob] and not blob.exists()


def test_rm_of_one_file_keeps_the_other_files_of_its_revision(tiny_hub):
    registry, files = tiny_hub
    q4, q8 = hub.pull(registry.get("latest")), hub.pull(registry.get("other"))
    blob = q4.resolve()
    assert hub.remove(registry.get("latest")) == [q4, blob] and not blob.exists()
    assert hub.local_path(registry.get("latest")) is None
    assert hub.local_path(registry.get("other")) == q8 and q8.read_bytes() == files["m-q8.gguf"].read_bytes()
