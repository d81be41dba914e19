"""``yt-assets dev``: ``dg dev`` on 127.0.0.1 against the demo stack.

``dg dev`` runs in a process group of its own (webserver, daemon, code server and the run
workers they start); Ctrl-C (or SIGTERM) stops that whole group by id, then the demo stack.

Usage::

    with DemoStack(DemoHome(Path.cwd())) as stack:
        exit_code = run_dev(stack, port=3000)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from yt_assets.demo.processes import (
    LOOPBACK,
    free_port,
    group_members,
    port_is_free,
    stop_process_group,
)
from yt_assets.demo.shell import yt_cli_line
from yt_assets.demo.stack import DemoStack

DEFAULT_UI_PORT = 3000
READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0


def choose_port(requested: int | None) -> int:
    """``requested``, else 3000 when free, else any free loopback port."""
    if requested is not None:
        return requested
    return DEFAULT_UI_PORT if port_is_free(DEFAULT_UI_PORT) else free_port()


def dagster_dev_command(port: int, workspace: Path) -> list[str]:
    """``dg dev`` (dagster-dg-cli), the command Dagster 1.13 recommends; ``dagster dev`` warns
    that it is superseded by it. With ``-w`` it runs the same webserver, daemon and code server."""
    return [
        sys.executable,
        "-m",
        "dagster_dg_cli.cli",
        "dev",
        "-h",
        LOOPBACK,
        "-p",
        str(port),
        "-w",
        str(workspace),
    ]


def server_info(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    """The webserver's ``/server_info``, or ``None`` while it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def wait_for_webserver(process: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if server_info(url) is not None:
            return True
        time.sleep(0.25)
    return False


def run_dev(stack: DemoStack, port: int | None = None, out: TextIO = sys.stdout) -> int:
    """Run ``dagster dev`` until it exits or Ctrl-C; returns its exit status (0 after Ctrl-C)."""
    chosen = choose_port(port)
    url = f"http://{LOOPBACK}:{chosen}"
    process = subprocess.Popen(
        dagster_dev_command(chosen, stack.home.write_workspace_yaml()),
        env=stack.environment(),
        cwd=stack.home.root,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        print(f"Starting dg dev (pid {process.pid}) on {url} ...", file=out, flush=True)
        if wait_for_webserver(process, url, READY_TIMEOUT_S):
            print(
                f"\nDagster UI: {url}   (Ctrl-C stops dg dev, the local S3 and the local YT)\n"
                f"The tables:  {yt_cli_line(stack.yt_proxy_url)}\n"
                f'Your shell:  eval "$(yt-assets env --dir {shlex.quote(str(stack.home.root))})"'
                "   (then dagster asset materialize -m yt_assets.definitions ...)\n",
                file=out,
                flush=True,
            )
        return process.wait()
    except KeyboardInterrupt:
        print("\nStopping dg dev ...", file=out, flush=True)
        return 0
    finally:
        stop_dagster_dev(process)


def stop_dagster_dev(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for ``dagster dev`` (its own orderly shutdown), then SIGTERM and SIGKILL for
    whatever is left of its process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)
    deadline = time.monotonic() + STOP_GRACE_S
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop_process_group(process.pid, grace_s=5)
    if process.poll() is None:
        process.wait()
