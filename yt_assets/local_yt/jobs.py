"""One user job of an operation, run as a process in a fresh sandbox as a YT exec node runs it.

A job is ``bash -c <command>`` started in its own session (process group) with ``cwd`` a fresh
sandbox directory holding the job's files, and a clean environment. File descriptors follow YT's
convention:

* fd 0: the job's input rows (a file already written in the input format), ``/dev/null`` if none;
* fd ``3 * i + YT_FIRST_OUTPUT_TABLE_FD``: output table ``i`` (``YT_FIRST_OUTPUT_TABLE_FD`` is 1,
  or 4 with ``redirect_stdout_to_stderr``, when fd 1 joins fd 2);
* fd 2: stderr, captured into a file (the first and the last half of ``max_stderr_size`` are kept);
* fd 5: user statistics, into ``statistics_path`` (discarded without one).

Output tables go to regular files, so a job never blocks on a reader and its output never sits in
memory. The whole process group is killed when the job ends or is aborted.

Usage::

    launch = JobLaunch(command="cat", sandbox=tmp / "sandbox", stdin_path=tmp / "input",
                       output_paths=(tmp / "out0",), stderr_path=tmp / "stderr")
    outcome = JobProcess(launch).run()
    assert outcome.error is None
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

MB = 1024 * 1024
DEFAULT_MAX_STDERR_SIZE = 16 * MB
USER_STATISTICS_FD = 5
STDERR_READ_CHUNK = 64 * 1024

# Error codes YT uses for a failed user job.
USER_JOB_FAILED_CODE = 1205
PROCESS_EXITED_CODE = 10000
PROCESS_SIGNALED_CODE = 10001


def yt_error(
    message: str,
    *,
    code: int = 1,
    attributes: Mapping[str, Any] | None = None,
    inner_errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A YT error as the client expects it (``attributes`` and ``inner_errors`` always present)."""
    return {
        "code": code,
        "message": message,
        "attributes": dict(attributes or {}),
        "inner_errors": list(inner_errors or []),
    }


@dataclass(frozen=True)
class SandboxFile:
    """A file to place in the sandbox: ``name`` is its relative path there."""

    source: Path
    name: str
    executable: bool = False


@dataclass(frozen=True)
class JobLaunch:
    """Everything needed to start one job process."""

    command: str
    sandbox: Path
    stderr_path: Path
    stdin_path: Path | None = None
    output_paths: tuple[Path, ...] = ()
    files: tuple[SandboxFile, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    redirect_stdout_to_stderr: bool = False
    max_stderr_size: int = DEFAULT_MAX_STDERR_SIZE
    time_limit_seconds: float | None = None
    check_input_fully_consumed: bool = False
    tmpfs_path: str | None = None
    pid_path: Path | None = None  # exists while the job may run, holds its pid (kill_orphaned_job)
    statistics_path: Path | None = None  # receives what the job writes to fd 5
    setup_error: dict[str, Any] | None = None  # the node cannot start it (e.g. a missing image)

    @property
    def first_output_fd(self) -> int:
        return 4 if self.redirect_stdout_to_stderr else 1


@dataclass(frozen=True)
class JobOutcome:
    """How a job process ended: ``error`` is a YT error dict if it failed; ``aborted`` if killed."""

    error: dict[str, Any] | None
    aborted: bool
    exit_code: int | None
    stderr_size: int


def output_table_fd(table_index: int, first_output_fd: int) -> int:
    """The descriptor of output table ``table_index`` (YT: ``3 * i + YT_FIRST_OUTPUT_TABLE_FD``)."""
    return 3 * table_index + first_output_fd


def placement_script(passed: Mapping[int, int]) -> str:
    """A ``bash`` script that moves each passed descriptor to its target number, then runs
    ``bash -c "$1"``. One ``exec`` per descriptor: bash drops some targets of 10 and above
    (fd 10 of a 4th output table, 13...) when one ``exec`` moves several of them."""
    moves = "".join(
        f"exec {target}>&{source} {source}>&-; " for target, source in sorted(passed.items())
    )
    return f'{moves}exec bash -c "$1"'


def sandbox_relative_path(name: str) -> PurePosixPath:
    """Validate a sandbox file name (relative, no ``..``); raises ``ValueError`` otherwise."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
        raise ValueError(f"Invalid file name in job sandbox: {name!r}")
    return path


def prepare_sandbox(sandbox: Path, files: tuple[SandboxFile, ...], tmpfs_path: str | None) -> None:
    """Create the sandbox and copy the job files into it (YT: 0777 for executables, else 0666)."""
    sandbox.mkdir(parents=True, exist_ok=False)
    for file in files:
        target = sandbox.joinpath(sandbox_relative_path(file.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.source, target)
        target.chmod(0o755 if file.executable else 0o644)
    if tmpfs_path and tmpfs_path != ".":
        sandbox.joinpath(sandbox_relative_path(tmpfs_path)).mkdir(parents=True, exist_ok=True)


def describe_exit(returncode: int) -> dict[str, Any]:
    """The YT error of a user process that exited with a non-zero code or was killed by a signal."""
    if returncode < 0:
        inner = yt_error(
            f"Process terminated by signal {-returncode}",
            code=PROCESS_SIGNALED_CODE,
            attributes={"signal": -returncode},
        )
    else:
        inner = yt_error(
            f"Process exited with code {returncode}",
            code=PROCESS_EXITED_CODE,
            attributes={"exit_code": returncode},
        )
    return yt_error("User job failed", code=USER_JOB_FAILED_CODE, inner_errors=[inner])


class _StderrCollector:
    """Drains a job's stderr pipe into a file, keeping the head and the tail within a size limit."""

    def __init__(self, read_fd: int, path: Path, max_size: int) -> None:
        self._read_fd = read_fd
        self._path = path
        self._head_limit = max_size - max_size // 2
        self._tail_limit = max_size // 2
        self._tail = bytearray()
        self._written = 0
        self._skipped = 0
        self._thread = threading.Thread(target=self._drain, name="job-stderr", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _drain(self) -> None:
        try:
            self._copy_to_file()
        finally:
            os.close(self._read_fd)

    def _copy_to_file(self) -> None:
        with open(self._path, "wb") as out:
            while chunk := os.read(self._read_fd, STDERR_READ_CHUNK):
                room = self._head_limit - self._written
                if room > 0:
                    out.write(chunk[:room])
                    out.flush()
                    self._written += min(room, len(chunk))
                    chunk = chunk[room:]
                if chunk:
                    self._tail += chunk
                    overflow = len(self._tail) - self._tail_limit
                    if overflow > 0:
                        del self._tail[:overflow]
                        self._skipped += overflow
            if self._tail:
                if self._skipped:
                    out.write(f"\n... [{self._skipped} bytes of stderr skipped] ...\n".encode())
                out.write(self._tail)

    def join(self) -> int:
        """Wait for the pipe to close; returns the size of the stored stderr."""
        self._thread.join()
        return self._path.stat().st_size if self._path.exists() else 0


def _high_fd(fd: int, minimum: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered ``minimum`` or above (clear of the targets)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, minimum)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class JobProcess:
    """One job process; ``run()`` blocks until it ends, ``abort()`` (any thread) kills its group."""

    def __init__(self, launch: JobLaunch) -> None:
        self.launch = launch
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._aborted = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def abort(self) -> None:
        """Kill the job's whole process group (or prevent it from starting)."""
        with self._lock:
            self._aborted = True
            if self._process is not None:
                _kill_group(self._process.pid)

    def run(self) -> JobOutcome:
        """Prepare the sandbox, run the command, wait; never raises for a failing user command."""
        launch = self.launch
        error = launch.setup_error
        if error is None:
            try:
                prepare_sandbox(launch.sandbox, launch.files, launch.tmpfs_path)
            except (OSError, ValueError) as sandbox_error:
                error = yt_error(
                    "Failed to prepare job sandbox", inner_errors=[yt_error(str(sandbox_error))]
                )
        if error is not None:
            launch.stderr_path.write_bytes(b"")
            return JobOutcome(error=error, aborted=False, exit_code=None, stderr_size=0)
        with contextlib.ExitStack() as stack:
            return self._spawn_and_wait(stack)

    def _spawn_and_wait(self, stack: contextlib.ExitStack) -> JobOutcome:
        launch = self.launch
        stdin: IO[bytes] = stack.enter_context(open(launch.stdin_path or os.devnull, "rb"))  # noqa: SIM115
        devnull_out = stack.enter_context(open(os.devnull, "wb"))  # noqa: SIM115
        outputs = [stack.enter_context(open(path, "wb")) for path in launch.output_paths]  # noqa: SIM115
        statistics = (
            stack.enter_context(open(launch.statistics_path, "wb"))  # noqa: SIM115
            if launch.statistics_path is not None
            else devnull_out
        )
        owned = stack.enter_context(_OwnedFds())

        stderr_read, stderr_write = owned.pipe()
        # Target descriptor in the job -> source descriptor in this process.
        targets: dict[int, int] = {USER_STATISTICS_FD: statistics.fileno()}
        for index, output in enumerate(outputs):
            targets[output_table_fd(index, launch.first_output_fd)] = output.fileno()
        stdout_fd = targets.pop(1, stderr_write if launch.redirect_stdout_to_stderr else None)
        minimum = max(targets) + 10
        passed = {target: owned.dup_high(source, minimum) for target, source in targets.items()}
        # The outer shell places the table descriptors, then becomes `bash -c <command>` as in YT.
        script = placement_script(passed)

        with self._lock:
            if self._aborted:
                return JobOutcome(error=None, aborted=True, exit_code=None, stderr_size=0)
            if launch.pid_path is not None:
                # Named before the job can run: a server killed at any point after this leaves
                # the file that makes its restart look for the job's processes.
                launch.pid_path.touch()
            self._process = subprocess.Popen(
                ["bash", "-c", script, "bash", launch.command],
                stdin=stdin,
                stdout=stdout_fd if stdout_fd is not None else devnull_out,
                stderr=stderr_write,
                pass_fds=tuple(passed.values()),
                cwd=launch.sandbox,
                env=dict(launch.environment),
                start_new_session=True,
            )
        owned.close(stderr_write, *passed.values())
        if launch.pid_path is not None:
            launch.pid_path.write_text(str(self._process.pid))
        collector = _StderrCollector(
            owned.release(stderr_read), launch.stderr_path, launch.max_stderr_size
        )
        collector.start()

        process = self._process
        time_limit_error: dict[str, Any] | None = None
        try:
            process.wait(timeout=launch.time_limit_seconds)
        except subprocess.TimeoutExpired:
            time_limit_error = yt_error(
                "Job time limit exceeded",
                attributes={"limit": int((launch.time_limit_seconds or 0) * 1000)},
            )
            _kill_group(process.pid)
            process.wait()
        # Like an exec node: nothing of the job outlives it (this also closes its stderr).
        _kill_group(process.pid)
        if launch.pid_path is not None:
            launch.pid_path.unlink(missing_ok=True)
        stderr_size = collector.join()

        with self._lock:
            aborted = self._aborted
        if aborted:
            return JobOutcome(
                error=None, aborted=True, exit_code=process.returncode, stderr_size=stderr_size
            )
        error = time_limit_error
        if error is None and process.returncode != 0:
            error = describe_exit(process.returncode)
        if error is None and launch.check_input_fully_consumed and launch.stdin_path:
            consumed = os.lseek(stdin.fileno(), 0, os.SEEK_CUR)
            if consumed < os.fstat(stdin.fileno()).st_size:
                error = yt_error(
                    "Input stream was not fully consumed by user process", attributes={"fd": 0}
                )
        return JobOutcome(
            error=error, aborted=False, exit_code=process.returncode, stderr_size=stderr_size
        )


def kill_orphaned_job(pid_path: Path, job_id: str) -> int:
    """Kill what is left of a job whose server died (after a restart); returns processes killed.

    The processes killed are those whose environment carries ``YT_JOB_ID=<job_id>`` (a job id is
    unique, so a recycled pid is never hit), in the job's process group or not: the pid file
    exists from before the job starts, and may still be empty when the server was killed right
    after starting it.
    """
    if not pid_path.exists():
        return 0
    marker = f"YT_JOB_ID={job_id}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError, IndexError):
            continue
    pid_path.unlink(missing_ok=True)
    return killed


class _OwnedFds:
    """Raw descriptors this thread owns: each is closed exactly once (never a reused number)."""

    def __init__(self) -> None:
        self._fds: set[int] = set()

    def __enter__(self) -> _OwnedFds:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(*self._fds)

    def pipe(self) -> tuple[int, int]:
        read_fd, write_fd = os.pipe()
        self._fds.update((read_fd, write_fd))
        return read_fd, write_fd

    def dup_high(self, fd: int, minimum: int) -> int:
        high = _high_fd(fd, minimum)
        self._fds.add(high)
        return high

    def release(self, fd: int) -> int:
        """Hand ``fd`` over to another owner."""
        self._fds.discard(fd)
        return fd

    def close(self, *fds: int) -> None:
        for fd in list(fds):
            if fd in self._fds:
                self._fds.discard(fd)
                os.close(fd)
