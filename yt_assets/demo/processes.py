"""Small process helpers: free loopback ports, stopping a process (or its group) by id.

Usage::

    port = free_port()
    stop_process(pid)                  # SIGTERM, then SIGKILL after the grace period
    stop_process_group(pgid)           # the same for a whole process group
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from yt_assets.local_yt.processes import pid_alive, stop_process

__all__ = [
    "LOOPBACK",
    "free_port",
    "free_ports",
    "group_members",
    "pid_alive",
    "port_is_free",
    "stop_process",
    "stop_process_group",
]

LOOPBACK = "127.0.0.1"
DEFAULT_GRACE_S = 10.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (all held open while choosing)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_process_group(pgid: int, grace_s: float = DEFAULT_GRACE_S) -> None:
    """SIGTERM every process of group ``pgid``, wait up to ``grace_s``, then SIGKILL the rest."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pgid)
        if not group_members(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and group_members(pgid):
        _reap(pgid)
        time.sleep(0.05)
