"""Keeping the kernel's code on this machine: Linux namespaces where the kernel allows them, an audit hook elsewhere.

Private mode runs the kernel in a new user + network namespace: it has no network interface at all (not even a
loopback that is up), while Jupyter still reaches it over Unix sockets, which do not belong to a network
namespace. Creating one needs no privileges on most Linux systems; where it is refused (other platforms, or
systems that turn off unprivileged user namespaces) an audit hook refuses, from Python code, every socket
connection except Unix sockets, every name lookup and every program start. Trial runs use the same primitives
plus a mount namespace (see ``forkrun``). ``TUI_AGENT_NO_NAMESPACES=1`` forces the fallback everywhere.

The kernel also never gets credentials from the environment unless the user asks for them (``kernel_secrets``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

NAMESPACE = "network namespace"
AUDIT_HOOK = "audit hook"
OFF = "off"

# What private mode is enforced by in this process; set by the kernel launcher, read by the prelude.
STATE = OFF

SECRET_WORDS = {
    "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS",
    "APIKEY", "AUTH",
}  # fmt: skip
SECRET_PREFIXES = ("AWS_", "OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_", "GOOGLE_APPLICATION_", "HUGGING_FACE_HUB_")
SECRET_NAMES = {"HF_TOKEN", "HF_TOKEN_PATH", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "NETRC", "PGPASSFILE"}
NETWORK_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"}
LOOKUP_EVENTS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}
PROGRAM_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn"}


def is_secret(name: str) -> bool:
    """Whether an environment variable looks like a credential (API keys, tokens, passwords, cloud logins)."""
    upper = name.upper()
    if upper in SECRET_NAMES or upper.startswith(SECRET_PREFIXES):
        return True
    words = re.split(r"[^A-Z0-9]+", upper)
    return bool(SECRET_WORDS.intersection(words)) or words[-1] == "KEY"


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without its credentials."""
    return {name: value for name, value in env.items() if not is_secret(name)}


# ---- namespaces -----------------------------------------------------------------------------------------------


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own symbols, libc's included (no ldconfig run)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _call(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """Move this (single-threaded) process into new namespaces, keeping its own user and group ids inside."""
    if not sys.platform.startswith("linux"):
        raise OSError("namespaces exist only on Linux")
    if os.environ.get("TUI_AGENT_NO_NAMESPACES", "") not in ("", "0"):
        raise OSError("namespaces turned off by TUI_AGENT_NO_NAMESPACES")
    uid, gid = os.geteuid(), os.getegid()
    libc = _libc()
    _call(libc.unshare(flags | CLONE_NEWUSER), "unshare")
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"{gid} {gid} 1")


def mount_overlay(target: str, scratch: str, size_mb: int) -> None:
    """Over `target`, a copy-on-write view whose changes live in a tmpfs at `scratch` (this mount namespace only)."""
    libc = _libc()
    _call(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    _call(libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", 0, f"size={size_mb}m".encode()), "mounting tmpfs")
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    os.mkdir(upper)
    os.mkdir(work)
    options = f"lowerdir={target},upperdir={upper},workdir={work}".encode()
    _call(libc.mount(b"overlay", target.encode(), b"overlay", 0, options), "mounting overlayfs")
    os.chdir(os.getcwd())  # a cwd inside `target` still points at the directory under the overlay


_probe: dict[tuple[int, bool], bool] = {}


def _overlay_in_child() -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tui-agent-probe-") as tmp:
        lower, scratch = os.path.join(tmp, "lower"), os.path.join(tmp, "scratch")
        os.mkdir(lower)
        os.mkdir(scratch)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                unshare(CLONE_NEWNS | CLONE_NEWNET)
                mount_overlay(lower, scratch, 1)
                with open(os.path.join(lower, "probe"), "w") as fh:
                    fh.write("x")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0) or os.listdir(lower):
            raise OSError("overlay probe failed")


def namespaces_available(flags: int = CLONE_NEWNET, *, overlay: bool = False) -> bool:
    """Whether this process could create user namespaces with `flags` (and mount an overlay in them), tried once
    in a throwaway child."""
    if not sys.platform.startswith("linux") or os.environ.get("TUI_AGENT_NO_NAMESPACES", "") not in ("", "0"):
        return False
    key = (flags, overlay)
    if key not in _probe:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if overlay:
                    _overlay_in_child()
                else:
                    unshare(flags)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        _probe[key] = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return _probe[key]


def describe() -> dict[str, str]:
    """What keeps private mode and trial runs contained on this machine, in words (for ``tui-agent doctor``)."""
    private = (
        "network namespace: the kernel has no network at all (programs it starts neither)"
        if namespaces_available(CLONE_NEWNET)
        else "audit hook: Python code in the kernel cannot open sockets (except Unix sockets), look up names or "
        "start programs; C extensions are not watched"
    )
    if namespaces_available(overlay=True):
        trials = (
            "overlay in own namespaces: workspace changes stay in a copy-on-write layer, no network; "
            "journal for files outside the workspace"
        )
    elif namespaces_available(CLONE_NEWNS | CLONE_NEWNET):
        trials = "journal, no network (namespace; overlayfs not available)"
    else:
        trials = "journal: Python-level file changes undone afterwards; network and programs refused"
    return {"private mode": private, "trial runs": trials}


# ---- the audit-hook fallback ----------------------------------------------------------------------------------


class NetworkRefused(PermissionError):
    """Private mode: this code may not reach the network or start programs."""


def _is_unix(sock) -> bool:
    import socket

    return getattr(socket, "AF_UNIX", None) is not None and getattr(sock, "family", None) == socket.AF_UNIX


def _private_hook(event: str, args: tuple) -> None:
    if event in NETWORK_EVENTS and not _is_unix(args[0]):
        raise NetworkRefused(f"private mode: no network access ({event})")
    if event in LOOKUP_EVENTS:
        raise NetworkRefused(f"private mode: no network access ({event})")
    if event in PROGRAM_EVENTS:
        raise NetworkRefused(f"private mode without network namespaces: programs cannot be started ({event})")


def block_program_starts(refusal: Callable[[], BaseException]) -> None:
    """Refuse the one way Python starts programs without an audit event (multiprocessing's spawn and forkserver,
    through ``_posixsubprocess.fork_exec``); ``subprocess`` and ``os.exec*``/``os.posix_spawn`` raise events."""
    try:
        import _posixsubprocess
    except ImportError:
        return

    def fork_exec(*args: object, **kwargs: object) -> None:
        raise refusal()

    _posixsubprocess.fork_exec = fork_exec


def enter_private() -> str:
    """Cut this process off the network, by a namespace where possible; returns what is in force."""
    global STATE
    try:
        unshare(CLONE_NEWNET)
        STATE = NAMESPACE
    except OSError:
        sys.addaudithook(_private_hook)
        block_program_starts(
            lambda: NetworkRefused("private mode without network namespaces: programs cannot be started")
        )
        STATE = AUDIT_HOOK
    return STATE
