"""``yt-assets env`` and ``yt-assets exec``: the environment of a running demo stack, for your shell.

While ``yt-assets dev`` (or ``yt-assets demo``) runs in a directory, the code location's settings
(``S3_*``, ``YT_*``, ``DAGSTER_HOME``) are read back from the stack's state files there: the S3
server's endpoint, the demo keys and the local YT's state directory. Nothing is written for it.

Usage::

    eval "$(yt-assets env)"                 # then any Dagster CLI works against the stack
    dagster asset materialize -m yt_assets.definitions --select s3_listing
    yt-assets exec -- yt --proxy "$YT_LOCAL_PROXY" list //home/yt_assets
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from yt_assets.demo.local_s3 import STATE_FILE, DemoKeys, S3Keys
from yt_assets.demo.processes import pid_alive
from yt_assets.demo.stack import DEMO_YT_ROOT, DemoHome, DemoStackError, demo_environment

LOCAL_PROXY_VAR = "YT_LOCAL_PROXY"
"""The local YT's proxy URL, for the ``yt`` CLI (the code location itself keeps ``YT_PROXY``
empty and finds the server through ``YT_LOCAL_ROOT``)."""


def stack_is_running(home: DemoHome) -> bool:
    """Whether a ``demo`` or ``dev`` holds the stack lock of ``home``."""
    if not home.lock_file.exists():
        return False
    with open(home.lock_file) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def yt_cli_line(proxy_url: str) -> str:
    """The ``yt`` command that lists the demo's tables.

    >>> yt_cli_line("http://127.0.0.1:8000")
    'yt --proxy http://127.0.0.1:8000 list //home/yt_assets'
    """
    return f"yt --proxy {proxy_url} list {DEMO_YT_ROOT}"


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def running_stack_environment(
    home: DemoHome, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: nothing) with the variables of the stack running in ``home``; raises :class:`DemoStackError` naming what to start when no stack runs there."""
    from yt_assets.local_yt import running_server

    if not stack_is_running(home):
        raise DemoStackError(
            f"no demo stack runs in {home.root}: start yt-assets dev there (or pass --dir)"
        )
    s3_state = _read_json(home.s3_dir / STATE_FILE)
    endpoint = s3_state.get("endpoint_url")
    pid = s3_state.get("pid")
    proxy_url = running_server(home.yt_root)
    if not isinstance(endpoint, str) or not isinstance(pid, int) or not pid_alive(pid):
        raise DemoStackError(f"the demo stack in {home.root} is still starting: try again")
    if proxy_url is None:
        raise DemoStackError(f"the demo stack in {home.root} is still starting: try again")
    keys_data = _read_json(home.keys_file)
    try:
        pairs = {role: S3Keys(**keys_data[role]) for role in ("admin", "download", "upload")}  # type: ignore[arg-type]
        keys = DemoKeys(pairs["admin"], pairs["download"], pairs["upload"])
    except (KeyError, TypeError) as error:
        raise DemoStackError(f"the demo keys in {home.keys_file} are unreadable") from error
    env = demo_environment(home, endpoint, keys, base=dict(base or {}))
    env[LOCAL_PROXY_VAR] = proxy_url
    return env


def with_our_scripts_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the directory of this installation's commands (``dagster``, ``dg``, ``yt``,
    ``yt-assets``: the virtual environment's ``bin``) first on ``PATH``, so that
    ``yt-assets exec -- dagster ...`` works from a shell that has not activated it."""
    scripts = sysconfig.get_path("scripts")
    parts = [part for part in env.get("PATH", "").split(os.pathsep) if part]
    if scripts not in parts:
        env["PATH"] = os.pathsep.join([scripts, *parts])
    return env


def export_lines(env: Mapping[str, str]) -> str:
    """``export NAME=value`` lines (shell-quoted) for ``eval``.

    >>> print(export_lines({"A": "x y", "B": ""}))
    export A='x y'
    export B=''
    """
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())
