"""The local YT servers running on a state directory, found by their command lines (``/proc``).

``yt-assets local-yt status`` and ``stop`` use this: they see every server process of the
directory, the shared one of :func:`~yt_assets.local_yt.ensure_local_yt` (recorded in
``server.json``) as well as one started in the foreground or left behind with a stale state file.

Usage::

    for server in servers_of(Path(".yt_local")):
        print(server.pid, server.proxy_url)
    stopped = stop_servers(Path(".yt_local"))
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .launcher import DEFAULT_ROOT, SERVER_STATE_FILE
from .processes import pid_alive, stop_process

SERVER_MODULE = "yt_assets.local_yt"


@dataclass(frozen=True)
class ServerProcess:
    """One local YT server process: its pid, state directory and (when recorded) proxy URL."""

    pid: int
    root: Path
    proxy_url: str | None
    shared: bool
    """Whether it is the root's shared server (the one in ``server.json``)."""

    def describe(self) -> str:
        kind = "shared" if self.shared else "other"
        return f"pid {self.pid}  {self.proxy_url or '(address not recorded)'}  {kind}"


def served_root(argv: list[str], cwd: Path) -> Path | None:
    """The state directory of a ``python -m yt_assets.local_yt serve`` command line, else None.

    >>> served_root(["python", "-m", "yt_assets.local_yt", "serve", "--root", "yt"], Path("/w"))
    PosixPath('/w/yt')
    >>> served_root(["python", "-m", "http.server"], Path("/w")) is None
    True
    """
    try:
        module = argv.index("-m")
    except ValueError:
        return None
    if argv[module + 1 : module + 3] != [SERVER_MODULE, "serve"]:
        return None
    root = str(DEFAULT_ROOT)
    for index, argument in enumerate(argv):
        if argument == "--root" and index + 1 < len(argv):
            root = argv[index + 1]
        elif argument.startswith("--root="):
            root = argument.split("=", 1)[1]
    return (cwd / root).resolve()


def _port_argument(argv: list[str]) -> int:
    for index, argument in enumerate(argv[:-1]):
        if argument == "--port" and argv[index + 1].isdigit():
            return int(argv[index + 1])
    return 0


def _process_command(pid: int) -> tuple[list[str], Path] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part], cwd


def _shared_state(root: Path) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((root / SERVER_STATE_FILE).read_text())
        if isinstance(state, dict):
            return state
    return {}


def servers_of(root: Path) -> list[ServerProcess]:
    """The live server processes serving ``root`` (of any user this process may inspect)."""
    root = Path(root).resolve()
    shared = _shared_state(root)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        command = _process_command(pid)
        if command is None or served_root(*command) != root or not pid_alive(pid):
            continue
        is_shared = shared.get("pid") == pid
        port = _port_argument(command[0])
        proxy_url = (
            str(shared["proxy_url"])
            if is_shared and "proxy_url" in shared
            else f"http://127.0.0.1:{port}"
            if port
            else None
        )
        found.append(ServerProcess(pid, root, proxy_url, is_shared))
    return sorted(found, key=lambda server: server.pid)


def stop_servers(root: Path) -> list[ServerProcess]:
    """Stop every server of ``root`` by pid (SIGTERM, then SIGKILL); returns those stopped."""
    root = Path(root).resolve()
    servers = servers_of(root)
    for server in servers:
        stop_process(server.pid)
    if any(server.shared for server in servers):
        with contextlib.suppress(FileNotFoundError):
            (root / SERVER_STATE_FILE).unlink()
    return servers
