"""The records of the operations engine (operations, job units, task plans), ids, times and small
conversions shared by its layers (see :mod:`.operations`).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import yt.yson as yson

from .exceptions import GenericError, YtLocalError
from .interfaces import RichPath, Row, RowFormat
from .job_io import InputSplit
from .jobs import (
    JobProcess,
    SandboxFile,
    yt_error,
)
from .values import to_plain
from .ypath import RichPath as ParsedPath
from .ypath import parse_rich_path

MB = 1024 * 1024


FINISHED_STATES = frozenset({"completed", "failed", "aborted"})


SUPPORTED_OPERATION_TYPES = (
    "map", "vanilla", "sort", "merge", "erase", "reduce", "join_reduce", "map_reduce"
)  # fmt: skip


DEFAULT_MAX_FAILED_JOB_COUNT = 10


DEFAULT_DATA_WEIGHT_PER_JOB = 256 * MB


DEFAULT_INPUT_FORMAT = "yson"


JOB_ADDRESS = "localhost"


ROWS_PER_WRITE_BATCH = 256


PERSIST_INTERVAL_SECONDS = 0.5


CONTROLLER_POLL_SECONDS = 0.2


ABORT_WAIT_SECONDS = 60.0


OPERATION_OBJECT_TYPE = 1000  # EObjectType::Operation, in the third part of the id


JOB_OBJECT_TYPE = 900  # EObjectType::SchedulerJob


RECORD_FILE = "operation.yson"


RESTART_ERROR_MESSAGE = "The local YT server was restarted while the operation was running"


def now_iso() -> str:
    """The current UTC time as YT prints it: ``2026-11-28T15:00:00.000000Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    text = value.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt)


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GenericError(f"Spec field {name!r} must be an integer, got {value!r}") from None


def env_value(value: Any) -> str | None:
    """A scalar YSON value as an environment string (``None`` for composite values)."""
    if isinstance(value, (bool, yson.YsonBoolean)):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str | int | float):
        return str(value)
    return None


def secure_vault_environment(vault: Mapping[str, Any]) -> dict[str, str]:
    """``YT_SECURE_VAULT_<KEY>`` per scalar entry; the whole vault as YSON: ``YT_SECURE_VAULT``."""
    environment = {
        f"YT_SECURE_VAULT_{key}": text
        for key, value in vault.items()
        if (text := env_value(value)) is not None
    }
    environment["YT_SECURE_VAULT"] = yson.dumps(dict(vault), yson_format="text").decode("utf-8")
    return environment


def appended_path(path: RichPath) -> RichPath:
    """``path`` as a later write of the same output appends it (its ``schema`` was set by the
    first write; ``sorted_by`` is kept, so key order is checked across writes)."""
    rich = parse_rich_path(path)
    attributes = {k: v for k, v in rich.attributes.items() if k != "schema"}
    return ParsedPath(path=rich.path, attributes={**attributes, "append": True})


AUTO_MERGE_CHUNKS_PER_JOB = 500  # chunk_count_per_merge_job of the relaxed and economy modes


def auto_merge_group(spec: Mapping[str, Any]) -> int | None:
    """How many job output chunks one ``auto_merge`` job merges into one (``None``: disabled):
    ``manual`` takes the smaller of ``chunk_count_per_merge_job`` and
    ``max_intermediate_chunk_count``; ``relaxed``/``economy`` merge up to 500 chunks."""
    auto_merge = spec.get("auto_merge") or {}
    if not isinstance(auto_merge, Mapping) or str(auto_merge.get("mode", "disabled")) == "disabled":
        return None
    if str(auto_merge["mode"]) != "manual":
        return AUTO_MERGE_CHUNKS_PER_JOB
    limits = [
        _as_int(auto_merge[name], name)
        for name in ("chunk_count_per_merge_job", "max_intermediate_chunk_count")
        if auto_merge.get(name) is not None
    ]
    return max(1, min(limits, default=AUTO_MERGE_CHUNKS_PER_JOB))


class FilesInTurn:
    """The bytes of ``paths`` one file after another, as one stream (``read`` only; each file
    is open only while it is being read). Routed job outputs are binary YSON list fragments,
    so their concatenation is one: ``YsonStreamRows(FilesInTurn(paths))`` is what a table write keeps
    as it came (:mod:`.verbatim_writes`)."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self._paths = iter(paths)
        self._file: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._file is None:
                path = next(self._paths, None)
                if path is None:
                    return b""
                self._file = open(path, "rb")  # noqa: SIM115 - closed at its end
            data = self._file.read(size)
            if data or size == 0:
                return data
            self._file.close()
            self._file = None


def load_rows_from(row_format: RowFormat, path: Path) -> Iterator[Row]:
    """Rows of a file in ``row_format``, lazily (the file is open while iterating)."""
    with open(path, "rb") as stream:
        yield from row_format.load_rows(stream)


def _error_dict(error: BaseException) -> dict[str, Any]:
    if isinstance(error, YtLocalError):
        return to_plain(error.to_dict())
    return yt_error(f"{type(error).__name__}: {error}")


@dataclass
class JobUnit:
    """A piece of work (YT's job cookie); retried by new jobs until one completes."""

    cookie: int
    split: InputSplit | None
    completed_job_id: str | None = None
    output_files: list[Path] = field(default_factory=list)
    output_row_counts: list[int] = field(default_factory=list)


@dataclass
class TaskPlan:
    """One user job spec and its units: the ``mapper`` of a map, or a vanilla task."""

    name: str
    job_type: str
    user_job: dict[str, Any]
    output_paths: list[RichPath]
    files: tuple[SandboxFile, ...]
    input_format: RowFormat | None
    output_format: RowFormat | None
    units: list[JobUnit]


class _Stop(Exception):
    """Raised inside the controller when the operation is being aborted."""


class _Operation:
    """One operation: its persisted ``record`` and its runtime state (never persisted)."""

    def __init__(self, record: dict[str, Any], directory: Path) -> None:
        self.record = record
        self.directory = directory
        self.secure_vault: dict[str, Any] = {}  # dropped when the operation ends
        self.hidden_values: tuple[str, ...] = ()  # what the web view hides (never persisted)
        self.transaction_id: str | None = record.get("transaction_id")
        self.stop_reason: str | None = None  # "abort" or "complete"
        self.abort_message: str | None = None
        self.processes: dict[str, JobProcess] = {}
        self.thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.last_persist = 0.0

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def state(self) -> str:
        return str(self.record["state"])

    @property
    def work_dir(self) -> Path:
        return self.directory / "work"

    @property
    def jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.record["jobs"]
        return jobs


def _lock_directory(directory: Path) -> BinaryIO:
    """Hold an exclusive ``flock`` on ``directory/.lock``: one engine per root at a time."""
    lock_file = open(directory / ".lock", "ab")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise GenericError(
            f"The operations of {directory.parent} are in use by another local YT server"
        ) from None
    return lock_file


class _JobsFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def _jobs_failed_error(operation: _Operation, failed: int, max_failed: int) -> dict[str, Any]:
    last_error = next(
        (job["error"] for job in reversed(operation.jobs) if job["state"] == "failed"), None
    )
    return yt_error(
        f"Failed jobs limit exceeded: {failed} job(s) failed, max_failed_job_count is {max_failed}",
        attributes={"max_failed_job_count": max_failed, "failed_job_count": failed},
        inner_errors=[last_error] if last_error else [],
    )
