"""Process helpers shared by the launcher and the project's other process owners (the demo).

Usage::

    if pid_alive(pid):
        stop_process(pid)          # SIGTERM, then SIGKILL after the timeout; reaps our children
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

STOP_TIMEOUT_S = 10.0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not; our own exited child is reaped here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def stop_process(
    pid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM ``pid``, then SIGKILL if it is still there after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, process, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()
    else:
        _wait_gone(pid, None, 5.0)


def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process is not None else not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False
