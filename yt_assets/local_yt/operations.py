"""The operations engine of the local YT: ``map`` and ``vanilla`` operations run as local processes.

An operation goes ``starting -> materializing -> running -> completing -> completed`` (or
``failed``, or ``aborting -> aborted``) as on a cluster. While materializing, the input tables are
read once (a snapshot under the caller's transaction) and split into contiguous job inputs written
in the job's input format. Jobs then run as sandboxed processes (:mod:`.jobs`), at most
``max_parallel_jobs`` at a time across all operations; a failed job is retried until
``max_failed_job_count`` jobs have failed, which fails the operation. When every job has
completed, the outputs of all jobs, in job order, are written to the output tables in one output
transaction nested in the caller's transaction: a failed or aborted operation writes nothing.

Spec fields honoured: ``input_table_paths``, ``output_table_paths`` (``<append=%true>`` appends,
otherwise the table is replaced), ``job_count`` (exact, capped by the row count),
``data_weight_per_job``/``data_size_per_job`` (approximate, on the formatted input size; default
256 MB), ``max_failed_job_count`` (default 10), ``secure_vault``, ``title``, ``tasks`` (vanilla,
with per-task ``job_count`` and ``output_table_paths``), ``enable_input_table_index``, and in the
user job spec: ``command``, ``format``/``input_format``/``output_format``, ``file_paths``
(``file_name``/``executable`` attributes), ``environment`` (``$(SandboxPath)`` substituted),
``redirect_stdout_to_stderr``, ``max_stderr_size``, ``job_time_limit``,
``check_input_fully_consumed``, ``tmpfs_path`` (a plain directory), ``docker_image`` (an
interpreter mapped by :class:`~.job_python.JobEnvironment`; jobs without one run a bare
interpreter, see :mod:`.job_python`). Ignored (accepted, no effect):
``memory_limit``, ``cpu_limit``, ``layer_paths``, ``tmpfs_size``, ``copy_files``,
pools, ``job_io``/``table_writer``, and anything else. Output rows are routed to tables by
descriptor only (fd 1, 4, 7...): table switches inside one output stream are not supported, nor
are ``row_index``/``range_index`` control attributes on input.

Secure vault values live only in memory and in the job's environment (``YT_SECURE_VAULT_<KEY>``
and ``YT_SECURE_VAULT``); ``get_operation`` never shows them and they are never written to disk.
Operation records (``operation.yson``: YSON keeps the attributes of rich paths and formats) and job
stderrs are kept under ``<root>/operations/<id>/``, so finished operations survive a restart; an
operation that was running when the server died is reported as ``failed`` after the restart (its
output transaction is aborted, and job processes left over from the dead server are killed).
The user transaction is not watched: an operation whose transaction was aborted fails when it
commits its output (a cluster would abort it at once).

Usage::

    engine = OperationEngine(root, cluster)
    op_id = engine.start_operation("map", {
        "mapper": {"command": "cat", "format": "json"},
        "input_table_paths": ["//tmp/in"], "output_table_paths": ["//tmp/out"],
    })
    engine.wait(op_id)
    assert engine.get_operation(op_id, attributes=["state"]) == {"state": "completed"}
    engine.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import yt.yson as yson

from .exceptions import GenericError, NoSuchJob, NoSuchOperation, YtLocalError
from .formats import make_control_row, parse_format
from .interfaces import RichPath, Row, RowFormat, TableStore
from .job_python import JobEnvironment, JobPythons, MissingDockerImage
from .jobs import (
    DEFAULT_MAX_STDERR_SIZE,
    JobLaunch,
    JobOutcome,
    JobProcess,
    SandboxFile,
    kill_orphaned_job,
    sandbox_relative_path,
    yt_error,
)

MB = 1024 * 1024
FINISHED_STATES = frozenset({"completed", "failed", "aborted"})
SUPPORTED_OPERATION_TYPES = ("map", "vanilla")
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


# ------------------------------------------------------------------------------ small helpers


def now_iso() -> str:
    """The current UTC time as YT prints it: ``2026-11-28T15:00:00.000000Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    text = value.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt)


def new_guid(object_type: int) -> str:
    """A YT object id ``a-b-c-d`` (hex), the third part carrying the object type."""
    first, second, fourth = (secrets.randbits(32) for _ in range(3))
    return f"{first:x}-{second:x}-{object_type:x}-{fourth:x}"


def normalise(value: Any) -> Any:
    """A decoded YSON value with ``str`` strings and keys (undecodable bytes stay ``bytes``);
    attributes (rich paths, formats) are kept on a ``yt.yson`` type."""
    attributes = getattr(value, "attributes", None)
    plain: Any
    if isinstance(value, yson.YsonEntity) or value is None:
        plain = None
    elif isinstance(value, bool | yson.YsonBoolean):
        plain = bool(value)
    elif isinstance(value, bytes):
        try:
            plain = value.decode("utf-8")
        except UnicodeDecodeError:
            plain = bytes(value)
    elif isinstance(value, str):
        plain = str(value)
    elif isinstance(value, int):
        plain = int(value)
    elif isinstance(value, float):
        plain = float(value)
    elif isinstance(value, Mapping):
        plain = {_key(k): normalise(v) for k, v in value.items()}
    elif isinstance(value, list | tuple):
        plain = [normalise(item) for item in value]
    else:
        plain = value
    if attributes:
        return yson.to_yson_type(
            plain, attributes={_key(k): normalise(v) for k, v in attributes.items()}
        )
    return plain


def _key(key: Any) -> str:
    return key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)


def _as_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


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


def even_split(total: int, parts: int) -> list[int]:
    """``total`` rows in ``parts`` contiguous chunks whose sizes differ by at most one."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def _image_of(user_job: Mapping[str, Any]) -> str | None:
    image = user_job.get("docker_image")
    return str(image) if image else None


def load_rows_from(row_format: RowFormat, path: Path) -> Iterator[Row]:
    """Rows of a file in ``row_format``, lazily (the file is open while iterating)."""
    with open(path, "rb") as stream:
        yield from row_format.load_rows(stream)


def _error_dict(error: BaseException) -> dict[str, Any]:
    if isinstance(error, YtLocalError):
        return normalise(error.to_dict())
    return yt_error(f"{type(error).__name__}: {error}")


# --------------------------------------------------------------------------------- the model


@dataclass
class InputSplit:
    """The input of one job unit: a file in the input format, and where it starts."""

    path: Path
    row_count: int
    start_row_index: int


@dataclass
class JobUnit:
    """A piece of work (YT's job cookie); retried by new jobs until one completes."""

    cookie: int
    split: InputSplit | None
    completed_job_id: str | None = None
    output_files: list[Path] = field(default_factory=list)


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
        self.secure_vault: dict[str, Any] = {}
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


# -------------------------------------------------------------------------------- the engine


class OperationEngine:
    """Runs operations on a :class:`~.interfaces.TableStore`; thread-safe.

    Usage::

        engine = OperationEngine(root, cluster, max_parallel_jobs=2)
        op_id = engine.start_operation("map", spec, transaction_id=None, user="root")
        engine.wait(op_id)
        print(engine.get_operation(op_id)["state"])
        engine.close()
    """

    def __init__(
        self,
        root: Path,
        store: TableStore,
        max_parallel_jobs: int | None = None,
        job_environment: JobEnvironment | None = None,
    ) -> None:
        self.root = Path(root)
        self.store = store
        self.max_parallel_jobs = max_parallel_jobs or os.cpu_count() or 1
        self.operations_dir = self.root / "operations"
        self.operations_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_directory(self.operations_dir)
        self.job_pythons = JobPythons(self.operations_dir, job_environment)
        self._lock = threading.RLock()
        self._operations: dict[str, _Operation] = {}
        self._closed = False
        self._recover()
        self.sandboxes_dir = self.operations_dir / "_sandboxes"
        shutil.rmtree(self.sandboxes_dir, ignore_errors=True)
        self.sandboxes_dir.mkdir()
        self._job_pool = ThreadPoolExecutor(
            max_workers=self.max_parallel_jobs, thread_name_prefix="local-yt-job"
        )

    # ------------------------------------------------------------------------ public API

    def start_operation(
        self,
        operation_type: str,
        spec: Mapping[str, Any],
        *,
        transaction_id: str | None = None,
        user: str = "root",
    ) -> str:
        """Validate the spec, register the operation and start it in the background."""
        operation_type = _key(operation_type)
        if operation_type not in SUPPORTED_OPERATION_TYPES:
            raise GenericError(
                f"Operation type {operation_type!r} is not supported by the local YT "
                f"(supported: {', '.join(SUPPORTED_OPERATION_TYPES)})",
                operation_type=operation_type,
            )
        full_spec = normalise(spec)
        if not isinstance(full_spec, dict):
            raise GenericError("Operation spec must be a map")
        secure_vault = full_spec.pop("secure_vault", None) or {}
        if not isinstance(secure_vault, dict):
            raise GenericError("Spec field 'secure_vault' must be a map")
        _validate_spec(operation_type, full_spec)

        operation_id = new_guid(OPERATION_OBJECT_TYPE)
        started = now_iso()
        record: dict[str, Any] = {
            "id": operation_id,
            "type": operation_type,
            "state": "starting",
            "authenticated_user": user,
            "start_time": started,
            "spec": full_spec,
            "transaction_id": transaction_id,
            "events": [{"state": "starting", "time": started}],
            "jobs": [],
            "units_total": 0,
            "failed_job_count": 0,
        }
        directory = self.operations_dir / operation_id
        (directory / "jobs").mkdir(parents=True)
        operation = _Operation(record, directory)
        operation.secure_vault = secure_vault
        with self._lock:
            if self._closed:
                raise GenericError("The local YT server is shutting down")
            self._operations[operation_id] = operation
            self._persist(operation)
        operation.thread = threading.Thread(
            target=self._control, args=(operation,), name=f"local-yt-op-{operation_id}", daemon=True
        )
        operation.thread.start()
        return operation_id

    def get_operation(
        self, operation_id: str, *, attributes: list[str] | None = None
    ) -> dict[str, Any]:
        """The operation as ``get_operation`` returns it (only ``attributes``, if given)."""
        with self._lock:
            view = self._view(self._find(operation_id), brief=False)
        if attributes:
            return {name: view[name] for name in map(_key, attributes) if name in view}
        return view

    def list_operations(self, **filters: Any) -> dict[str, Any]:
        """Operations newest first, filtered as the ``list_operations`` command does."""
        with self._lock:
            views = [self._view(op, brief=True) for op in self._operations.values()]
        return select_operations(views, filters)

    def abort_operation(self, operation_id: str, *, abort_message: str | None = None) -> None:
        """Kill the operation's jobs; it ends ``aborted`` and writes nothing. Waits for the end."""
        operation = self._request_stop(operation_id, "abort", abort_message)
        if operation is not None:
            operation.finished.wait(ABORT_WAIT_SECONDS)

    def complete_operation(self, operation_id: str) -> None:
        """Abort running and pending jobs, keep what completed jobs wrote, end ``completed``."""
        operation = self._request_stop(operation_id, "complete", None)
        if operation is not None:
            operation.finished.wait(ABORT_WAIT_SECONDS)

    def list_jobs(self, operation_id: str, **filters: Any) -> dict[str, Any]:
        """The operation's jobs (every attempt is a job), filtered as ``list_jobs`` does."""
        with self._lock:
            operation = self._find(operation_id)
            jobs = [self._job_view(operation, job) for job in operation.jobs]
        return select_jobs(jobs, filters)

    def get_job_stderr(self, operation_id: str, job_id: str) -> bytes:
        """The stored stderr of a job (its current stderr while it runs)."""
        with self._lock:
            operation = self._find(operation_id)
            job = next((j for j in operation.jobs if j["id"] == _key(job_id)), None)
        if job is None:
            raise NoSuchJob(f"No such job {job_id}", job_id=_key(job_id), operation_id=operation_id)
        path = self._stderr_path(operation, job["id"])
        return path.read_bytes() if path.exists() else b""

    def wait(self, operation_id: str, timeout: float | None = None) -> str:
        """Block until the operation is finished (or ``timeout``); returns its state."""
        with self._lock:
            operation = self._find(operation_id)
        operation.finished.wait(timeout)
        return operation.state

    def close(self) -> None:
        """Abort every running operation (killing its jobs) and stop the job pool."""
        with self._lock:
            self._closed = True
            running = [op for op in self._operations.values() if op.state not in FINISHED_STATES]
        for operation in running:
            self._request_stop(operation.id, "abort", "The local YT server is shutting down")
        for operation in running:
            operation.finished.wait(ABORT_WAIT_SECONDS)
        self._job_pool.shutdown(wait=True, cancel_futures=True)
        if not self._lock_file.closed:
            self._lock_file.close()  # releases the flock

    # ------------------------------------------------------------------------ records & views

    def _find(self, operation_id: str) -> _Operation:
        operation = self._operations.get(_key(operation_id))
        if operation is None:
            raise NoSuchOperation(
                f"No such operation {operation_id}", operation_id=_key(operation_id)
            )
        return operation

    def _stderr_path(self, operation: _Operation, job_id: str) -> Path:
        return operation.directory / "jobs" / f"{job_id}.stderr"

    def _persist(self, operation: _Operation, *, throttled: bool = False) -> None:
        """Write the record atomically (caller holds the lock); ``throttled``: twice a second."""
        moment = time.monotonic()
        if throttled and moment - operation.last_persist < PERSIST_INTERVAL_SECONDS:
            return
        operation.last_persist = moment
        path = operation.directory / RECORD_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(yson.dumps(operation.record, yson_format="pretty"))
        os.replace(tmp, path)

    def _set_state(self, operation: _Operation, state: str, **fields: Any) -> None:
        with self._lock:
            operation.record["state"] = state
            operation.record.update(fields)
            operation.record["events"].append({"state": state, "time": now_iso()})
            self._persist(operation)

    def _progress(self, operation: _Operation) -> dict[str, Any]:
        counts = {state: 0 for state in ("running", "completed", "failed", "aborted")}
        for job in operation.jobs:
            if job["state"] in counts:
                counts[job["state"]] += 1
        total = int(operation.record.get("units_total", 0))
        pending = max(0, total - counts["completed"] - counts["running"])
        if operation.state in FINISHED_STATES:
            pending = 0
        jobs = {
            "total": total,
            "running": counts["running"],
            "completed": counts["completed"],
            "pending": pending,
            "failed": counts["failed"],
            "aborted": counts["aborted"],
            "lost": 0,
            "invalidated": 0,
            "suspended": 0,
        }
        return {"jobs": jobs, "build_time": now_iso()}

    def _view(self, operation: _Operation, *, brief: bool) -> dict[str, Any]:
        record = operation.record
        spec = record["spec"]
        progress = self._progress(operation)
        brief_spec = _brief_spec(record["type"], spec)
        view: dict[str, Any] = {
            "id": record["id"],
            "type": record["type"],
            "operation_type": record["type"],
            "state": record["state"],
            "authenticated_user": record["authenticated_user"],
            "start_time": record["start_time"],
            "brief_spec": brief_spec,
            "brief_progress": progress,
            "suspended": False,
            "runtime_parameters": {
                "owners": [],
                "acl": [],
                "scheduling_options_per_pool_tree": {
                    "default": {"pool": record["authenticated_user"]}
                },
            },
            "pool": record["authenticated_user"],
        }
        if "finish_time" in record:
            view["finish_time"] = record["finish_time"]
        if "result" in record:
            view["result"] = record["result"]
        if brief:
            return view
        view.update(
            {
                "spec": spec,
                "full_spec": spec,
                "provided_spec": spec,
                "unrecognized_spec": {},
                "progress": progress,
                "events": record["events"],
                "alerts": {},
                "task_names": _task_names(record["type"], spec),
                "controller_features": [],
                "experiment_assignments": [],
                "experiment_assignment_names": [],
                "user_transaction_id": record.get("transaction_id"),
                "output_transaction_id": record.get("output_transaction_id"),
            }
        )
        return {k: v for k, v in view.items() if v is not None}

    def _job_view(self, operation: _Operation, job: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in job.items() if not k.startswith("_")}
        view["operation_id"] = operation.id
        if job["state"] == "running":
            path = self._stderr_path(operation, job["id"])
            size = path.stat().st_size if path.exists() else 0
            if size:
                view["stderr_size"] = size
        return view

    # ------------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Load finished operations; those interrupted by a restart become ``failed``."""
        for directory in sorted(self.operations_dir.iterdir()):
            record_path = directory / RECORD_FILE
            if directory.name.startswith("_") or not record_path.exists():
                continue
            try:
                record = normalise(yson.loads(record_path.read_bytes()))
            except (yson.YsonError, OSError):
                continue
            operation = _Operation(record, directory)
            shutil.rmtree(operation.work_dir, ignore_errors=True)
            if operation.state not in FINISHED_STATES:
                self._fail_interrupted(operation)
            operation.finished.set()
            self._operations[operation.id] = operation

    def _fail_interrupted(self, operation: _Operation) -> None:
        output_transaction = operation.record.get("output_transaction_id")
        if output_transaction:
            with contextlib.suppress(Exception):
                self.store.abort_transaction(output_transaction)
        for pid_path in (operation.directory / "jobs").glob("*.pid"):
            kill_orphaned_job(pid_path, pid_path.stem)
        finished = now_iso()
        for job in operation.jobs:
            if job["state"] == "running":
                job.update(state="aborted", finish_time=finished)
                job["error"] = yt_error(RESTART_ERROR_MESSAGE)
        operation.record.update(
            state="failed",
            finish_time=finished,
            result={"error": yt_error(RESTART_ERROR_MESSAGE)},
        )
        operation.record["events"].append({"state": "failed", "time": finished})
        self._persist(operation)

    # ------------------------------------------------------------------------ stopping

    def _request_stop(
        self, operation_id: str, reason: str, message: str | None
    ) -> _Operation | None:
        with self._lock:
            operation = self._find(operation_id)
            if operation.state in FINISHED_STATES:
                return None
            if operation.stop_reason is None:
                operation.stop_reason = reason
                operation.abort_message = message
            processes = list(operation.processes.values())
        for process in processes:
            process.abort()
        return operation

    def _check_stop(self, operation: _Operation) -> None:
        if operation.stop_reason == "abort":
            raise _Stop()

    # ------------------------------------------------------------------------ the controller

    def _control(self, operation: _Operation) -> None:
        """The life of one operation (its own thread)."""
        try:
            self._check_stop(operation)
            self._set_state(operation, "materializing")
            tasks = self._plan(operation)
            self._check_stop(operation)
            self._set_state(operation, "running")
            self._run_jobs(operation, tasks)
            self._check_stop(operation)
            self._set_state(operation, "completing")
            self._commit(operation, tasks)
            self._finish(operation, "completed", None)
        except _Stop:
            message = operation.abort_message or "Operation aborted by user request"
            self._set_state(operation, "aborting")
            self._finish(operation, "aborted", yt_error(message))
        except Exception as error:
            failure = error.error if isinstance(error, _JobsFailed) else _error_dict(error)
            self._finish(operation, "failed", failure)
        finally:
            shutil.rmtree(operation.work_dir, ignore_errors=True)
            operation.secure_vault = {}
            operation.finished.set()

    def _finish(self, operation: _Operation, state: str, error: dict[str, Any] | None) -> None:
        with self._lock:
            finished = now_iso()
            for job in operation.jobs:
                if job["state"] == "running":  # cannot happen; keep the record consistent
                    job.update(state="aborted", finish_time=finished)
            result = {"error": error} if error else {}
            if state == "completed":
                result = {}
            operation.record["result"] = result
            operation.record["finish_time"] = finished
        self._set_state(operation, state)

    def _plan(self, operation: _Operation) -> list[TaskPlan]:
        spec = operation.record["spec"]
        transaction_id = operation.transaction_id
        operation.work_dir.mkdir(parents=True, exist_ok=True)
        if operation.record["type"] == "map":
            user_job = spec["mapper"]
            input_format = parse_format(
                user_job.get("input_format") or user_job.get("format") or DEFAULT_INPUT_FORMAT
            )
            output_format = parse_format(
                user_job.get("output_format") or user_job.get("format") or DEFAULT_INPUT_FORMAT
            )
            input_paths = list(spec["input_table_paths"])
            splits = self._materialize_input(
                operation, spec, input_paths, input_format, transaction_id
            )
            units = [JobUnit(cookie=index, split=split) for index, split in enumerate(splits)]
            tasks = [
                TaskPlan(
                    name="map",
                    job_type="map",
                    user_job=user_job,
                    output_paths=list(spec.get("output_table_paths") or []),
                    files=self._job_files(user_job, transaction_id),
                    input_format=input_format,
                    output_format=output_format,
                    units=units,
                )
            ]
        else:
            tasks = []
            for name, task in spec["tasks"].items():
                outputs = list(task.get("output_table_paths") or [])
                output_format = None
                if outputs:
                    output_format = parse_format(
                        task.get("output_format") or task.get("format") or DEFAULT_INPUT_FORMAT
                    )
                job_count = _as_int(task.get("job_count", 1), "job_count")
                tasks.append(
                    TaskPlan(
                        name=name,
                        job_type="vanilla",
                        user_job=task,
                        output_paths=outputs,
                        files=self._job_files(task, transaction_id),
                        input_format=None,
                        output_format=output_format,
                        units=[JobUnit(cookie=i, split=None) for i in range(job_count)],
                    )
                )
        with self._lock:
            operation.record["units_total"] = sum(len(task.units) for task in tasks)
            self._persist(operation)
        return tasks

    def _job_files(
        self, user_job: Mapping[str, Any], transaction_id: str | None
    ) -> tuple[SandboxFile, ...]:
        files = []
        for path in user_job.get("file_paths") or []:
            attributes = getattr(path, "attributes", None) or {}
            name = attributes.get("file_name") or str(path).rstrip("/").rsplit("/", 1)[-1]
            sandbox_relative_path(str(name))
            source = self.store.file_content_path(path, transaction_id)
            files.append(
                SandboxFile(
                    source=Path(source),
                    name=str(name),
                    executable=_as_bool(attributes.get("executable")),
                )
            )
        return tuple(files)

    def _materialize_input(
        self,
        operation: _Operation,
        spec: Mapping[str, Any],
        input_paths: list[RichPath],
        input_format: RowFormat,
        transaction_id: str | None,
    ) -> list[InputSplit]:
        """Read the input tables once and write each job's input in the input format."""
        quotas: list[int] | None = None
        if spec.get("job_count") is not None:
            total = sum(self.store.row_count(path, transaction_id) for path in input_paths)
            if total == 0:
                return []
            quotas = even_split(total, _as_int(spec["job_count"], "job_count"))
        weight = spec.get("data_weight_per_job") or spec.get("data_size_per_job")
        bytes_per_job = (
            _as_int(weight, "data_weight_per_job") if weight else DEFAULT_DATA_WEIGHT_PER_JOB
        )
        with_table_index = _as_bool(
            spec.get("enable_input_table_index"), default=len(input_paths) > 1
        )

        def indexed_rows() -> Iterator[tuple[int, Row]]:
            for table_index, path in enumerate(input_paths):
                for row in self.store.read_rows(path, transaction_id):
                    yield table_index, row

        return write_input_splits(
            indexed_rows(),
            input_format,
            operation.work_dir,
            quotas=quotas,
            bytes_per_job=bytes_per_job,
            with_table_index=with_table_index,
            check_stop=lambda: self._check_stop(operation),
        )

    def _run_jobs(self, operation: _Operation, tasks: list[TaskPlan]) -> None:
        """Run every unit to completion, retrying failed jobs within ``max_failed_job_count``."""
        spec = operation.record["spec"]
        max_failed = _as_int(
            spec.get("max_failed_job_count", DEFAULT_MAX_FAILED_JOB_COUNT), "max_failed_job_count"
        )
        running: dict[Future[str], tuple[TaskPlan, JobUnit]] = {}

        def submit(task: TaskPlan, unit: JobUnit) -> None:
            future = self._job_pool.submit(self._execute_job, operation, task, unit)
            running[future] = (task, unit)

        for task in tasks:
            for unit in task.units:
                submit(task, unit)
        failure: dict[str, Any] | None = None
        while running:
            done, _ = wait(
                list(running), timeout=CONTROLLER_POLL_SECONDS, return_when=FIRST_COMPLETED
            )
            if operation.stop_reason is not None or failure is not None:
                self._stop_jobs(operation, running)
            for future in done:
                task, unit = running.pop(future)
                if future.cancelled():
                    continue
                try:
                    status = future.result()
                except Exception as error:  # a bug or an I/O error: fail, but let jobs end first
                    if failure is None:
                        failure = yt_error(
                            "Job scheduling failed", inner_errors=[_error_dict(error)]
                        )
                        self._stop_jobs(operation, running)
                    continue
                if status != "failed" or failure is not None:
                    continue
                with self._lock:
                    operation.record["failed_job_count"] += 1
                    failed = operation.record["failed_job_count"]
                if failed >= max_failed:
                    failure = _jobs_failed_error(operation, failed, max_failed)
                    self._stop_jobs(operation, running)
                elif operation.stop_reason is None:
                    submit(task, unit)
        if failure is not None:
            raise _JobsFailed(failure)

    def _stop_jobs(
        self, operation: _Operation, running: Mapping[Future[str], tuple[TaskPlan, JobUnit]]
    ) -> None:
        for future in running:
            future.cancel()
        with self._lock:
            processes = list(operation.processes.values())
        for process in processes:
            process.abort()

    def _execute_job(self, operation: _Operation, task: TaskPlan, unit: JobUnit) -> str:
        """Run one job of ``unit`` (a pool thread); returns its final state."""
        if operation.stop_reason is not None:
            return "aborted"
        job_id = new_guid(JOB_OBJECT_TYPE)
        with self._lock:
            job_index = len(operation.jobs)
            job: dict[str, Any] = {
                "id": job_id,
                "type": task.job_type,
                "state": "running",
                "address": JOB_ADDRESS,
                "task_name": task.name,
                "job_cookie": unit.cookie,
                "job_index": job_index,
                "start_time": now_iso(),
            }
            operation.jobs.append(job)
            self._persist(operation, throttled=True)
        output_paths = tuple(
            operation.work_dir / f"{job_id}.out{index}" for index in range(len(task.output_paths))
        )
        sandbox = self.sandboxes_dir / job_id
        launch = self._launch(operation, task, unit, job_id, job_index, sandbox, output_paths)
        process = JobProcess(launch)
        with self._lock:
            operation.processes[job_id] = process
            if operation.stop_reason is not None:
                process.abort()
        try:
            outcome = process.run()
        finally:
            with self._lock:
                operation.processes.pop(job_id, None)
            shutil.rmtree(sandbox, ignore_errors=True)
        state, error = self._job_result(operation, task, unit, job_id, outcome, output_paths)
        if state != "completed":
            for path in output_paths:
                path.unlink(missing_ok=True)
        with self._lock:
            job.update(state=state, finish_time=now_iso())
            if outcome.exit_code is not None:
                job["exit_code"] = outcome.exit_code
            if error is not None:
                job["error"] = error
            if outcome.stderr_size:
                job["stderr_size"] = outcome.stderr_size
            if state == "completed":
                unit.completed_job_id = job_id
            self._persist(operation, throttled=True)
        if not outcome.stderr_size:
            self._stderr_path(operation, job_id).unlink(missing_ok=True)
        return state

    def _launch(
        self,
        operation: _Operation,
        task: TaskPlan,
        unit: JobUnit,
        job_id: str,
        job_index: int,
        sandbox: Path,
        output_paths: tuple[Path, ...],
    ) -> JobLaunch:
        user_job = task.user_job
        time_limit = user_job.get("job_time_limit")
        try:
            path_variable = self.job_pythons.path_variable(_image_of(user_job))
            setup_error = None
        except MissingDockerImage as missing:
            path_variable, setup_error = "", missing.error
        return JobLaunch(
            command=str(user_job["command"]),
            sandbox=sandbox,
            stderr_path=self._stderr_path(operation, job_id),
            pid_path=operation.directory / "jobs" / f"{job_id}.pid",
            stdin_path=unit.split.path if unit.split else None,
            output_paths=output_paths,
            files=task.files,
            environment=self._job_environment(
                operation, task, unit, job_id, job_index, sandbox, path_variable
            ),
            setup_error=setup_error,
            redirect_stdout_to_stderr=_as_bool(user_job.get("redirect_stdout_to_stderr")),
            max_stderr_size=_as_int(
                user_job.get("max_stderr_size", DEFAULT_MAX_STDERR_SIZE), "max_stderr_size"
            ),
            time_limit_seconds=_as_int(time_limit, "job_time_limit") / 1000 if time_limit else None,
            check_input_fully_consumed=_as_bool(user_job.get("check_input_fully_consumed")),
            tmpfs_path=str(user_job["tmpfs_path"]) if user_job.get("tmpfs_path") else None,
        )

    def _job_environment(
        self,
        operation: _Operation,
        task: TaskPlan,
        unit: JobUnit,
        job_id: str,
        job_index: int,
        sandbox: Path,
        path_variable: str,
    ) -> dict[str, str]:
        redirect = _as_bool(task.user_job.get("redirect_stdout_to_stderr"))
        environment = {
            "PATH": path_variable,
            "HOME": str(sandbox),
            "TMPDIR": str(sandbox),
            "LANG": "C.UTF-8",
        }
        for key, value in (task.user_job.get("environment") or {}).items():
            text = env_value(value)
            if text is not None:
                environment[key] = text.replace("$(SandboxPath)", str(sandbox))
        environment.update(
            {
                "YT_OPERATION_ID": operation.id,
                "YT_JOB_ID": job_id,
                "YT_JOB_INDEX": str(job_index),
                "YT_JOB_COOKIE": str(unit.cookie),
                "YT_TASK_NAME": task.name,
                "YT_FIRST_OUTPUT_TABLE_FD": "4" if redirect else "1",
            }
        )
        if unit.split is not None:
            environment["YT_START_ROW_INDEX"] = str(unit.split.start_row_index)
        if operation.secure_vault:
            environment.update(secure_vault_environment(operation.secure_vault))
        return environment

    def _job_result(
        self,
        operation: _Operation,
        task: TaskPlan,
        unit: JobUnit,
        job_id: str,
        outcome: JobOutcome,
        output_paths: tuple[Path, ...],
    ) -> tuple[str, dict[str, Any] | None]:
        if outcome.aborted:
            reason = "Job aborted by user request"
            if operation.stop_reason == "complete":
                reason = "Job aborted since the operation is completed by user request"
            return "aborted", yt_error(reason)
        if outcome.error is not None:
            error = dict(outcome.error)
            error["attributes"] = {**error["attributes"], "job_id": job_id}
            return "failed", error
        if task.output_format is None:
            return "completed", None
        try:
            for path in output_paths:  # parsed once now: a malformed output fails the job
                for _row in load_rows_from(task.output_format, path):
                    pass
            unit.output_files = list(output_paths)
        except Exception as error:  # as on a cluster
            inner = _error_dict(error)
            return "failed", yt_error(
                "Error parsing job output", attributes={"job_id": job_id}, inner_errors=[inner]
            )
        return "completed", None

    def _commit(self, operation: _Operation, tasks: list[TaskPlan]) -> None:
        """Write every completed unit's output, in unit order, in one output transaction."""
        if not any(task.output_paths for task in tasks):
            return
        output_transaction = self.store.start_transaction(
            parent_id=operation.transaction_id,
            title=f"Output transaction of operation {operation.id}",
        )
        with self._lock:
            operation.record["output_transaction_id"] = output_transaction
            self._persist(operation)
        try:
            for task in tasks:
                completed = [unit for unit in task.units if unit.completed_job_id is not None]
                output_format = task.output_format
                for table_index, path in enumerate(task.output_paths):
                    assert output_format is not None  # a task with outputs has an output format
                    rows = itertools.chain.from_iterable(
                        load_rows_from(output_format, unit.output_files[table_index])
                        for unit in completed
                    )
                    self.store.write_rows(path, rows, output_transaction)
            self.store.commit_transaction(output_transaction)
        except BaseException:
            with contextlib.suppress(Exception):
                self.store.abort_transaction(output_transaction)
            raise


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


# ---------------------------------------------------------------------- pure helpers (rows)


def write_input_splits(
    rows: Iterable[tuple[int, Row]],
    input_format: RowFormat,
    work_dir: Path,
    *,
    quotas: list[int] | None,
    bytes_per_job: int,
    with_table_index: bool,
    check_stop: Callable[[], None] = lambda: None,
) -> list[InputSplit]:
    """Write ``(table_index, row)`` pairs as job inputs: ``quotas`` rows per job if given (the
    last job takes any excess), else about ``bytes_per_job`` bytes of formatted input per job."""
    splits: list[InputSplit] = []
    stream: BinaryIO | None = None
    batch: list[Any] = []
    last_table: int | None = None
    row_index = 0

    def flush() -> None:
        if batch and stream is not None:
            input_format.dump_rows(batch, stream)
            batch.clear()

    def current_full() -> bool:
        if stream is None:
            return True
        if quotas is not None:
            index = len(splits) - 1
            return index < len(quotas) - 1 and splits[index].row_count >= quotas[index]
        return not batch and stream.tell() >= bytes_per_job

    try:
        for table_index, row in rows:
            if current_full():
                flush()
                if stream is not None:
                    stream.close()
                path = work_dir / f"input{len(splits)}"
                stream = open(path, "wb")  # noqa: SIM115 - closed on the next split or below
                splits.append(InputSplit(path=path, row_count=0, start_row_index=row_index))
                last_table = None
            if with_table_index and table_index != last_table:
                batch.append(make_control_row(table_index=table_index))
                last_table = table_index
            batch.append(row)
            splits[-1].row_count += 1
            row_index += 1
            if len(batch) >= ROWS_PER_WRITE_BATCH:
                flush()
                check_stop()
        flush()
    finally:
        if stream is not None:
            stream.close()
    return splits


# ------------------------------------------------------------------- pure helpers (specs)


def _validate_spec(operation_type: str, spec: Mapping[str, Any]) -> None:
    if operation_type == "map":
        mapper = spec.get("mapper")
        if not isinstance(mapper, dict) or not mapper.get("command"):
            raise GenericError("Map spec needs 'mapper' with a 'command'")
        _validate_user_job(mapper)
        if not spec.get("input_table_paths"):
            raise GenericError("Map spec needs 'input_table_paths'")
    else:
        tasks = spec.get("tasks")
        if not isinstance(tasks, dict) or not tasks:
            raise GenericError("Vanilla spec needs a non-empty 'tasks' map")
        for name, task in tasks.items():
            if not isinstance(task, dict) or not task.get("command"):
                raise GenericError(f"Vanilla task {name!r} needs a 'command'")
            _validate_user_job(task)
    for name in ("job_count", "max_failed_job_count", "data_weight_per_job", "data_size_per_job"):
        if spec.get(name) is not None:
            _as_int(spec[name], name)


def _validate_user_job(user_job: Mapping[str, Any]) -> None:
    if _as_bool(user_job.get("use_yamr_descriptors")):
        raise GenericError("use_yamr_descriptors is not supported by the local YT")
    for name in ("max_stderr_size", "job_time_limit", "job_count"):
        if user_job.get(name) is not None:
            _as_int(user_job[name], name)
    environment = user_job.get("environment") or {}
    if not isinstance(environment, dict):
        raise GenericError("Spec field 'environment' must be a map")
    for path in user_job.get("file_paths") or []:
        attributes = getattr(path, "attributes", None) or {}
        if attributes.get("format") is not None:
            raise GenericError(f"Table files are not supported by the local YT: {path}")
        if attributes.get("file_name") is not None:
            try:
                sandbox_relative_path(str(attributes["file_name"]))
            except ValueError as error:
                raise GenericError(str(error)) from None


def _brief_spec(operation_type: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    brief: dict[str, Any] = {}
    for name in ("title", "input_table_paths", "output_table_paths"):
        if name in spec:
            brief[name] = spec[name]
    if operation_type == "map":
        brief["mapper"] = {"command": spec["mapper"].get("command")}
        brief["input_table_paths"] = spec.get("input_table_paths", [])[:1]
        brief["input_table_count"] = len(spec.get("input_table_paths", []))
        brief["output_table_count"] = len(spec.get("output_table_paths", []))
    return brief


def _task_names(operation_type: str, spec: Mapping[str, Any]) -> list[str]:
    if operation_type == "map":
        return ["map"]
    return list(spec.get("tasks", {}))


def _jobs_failed_error(operation: _Operation, failed: int, max_failed: int) -> dict[str, Any]:
    last_error = next(
        (job["error"] for job in reversed(operation.jobs) if job["state"] == "failed"), None
    )
    return yt_error(
        f"Failed jobs limit exceeded: {failed} job(s) failed, max_failed_job_count is {max_failed}",
        attributes={"max_failed_job_count": max_failed, "failed_job_count": failed},
        inner_errors=[last_error] if last_error else [],
    )


# ------------------------------------------------------------------ pure helpers (listing)


def select_operations(views: list[dict[str, Any]], filters: Mapping[str, Any]) -> dict[str, Any]:
    """``list_operations``: filter, order newest first, page by ``cursor_time``/``limit``."""
    f = {name: normalise(value) for name, value in filters.items() if value is not None}
    text = str(f.get("filter", "")).lower()

    def matches(view: dict[str, Any], ignore: str = "") -> bool:
        if ignore != "user" and "user" in f and view["authenticated_user"] != f["user"]:
            return False
        if ignore != "state" and "state" in f and view["state"] != f["state"]:
            return False
        if ignore != "type" and "type" in f and view["type"] != f["type"]:
            return False
        if "pool" in f and view["pool"] != f["pool"]:
            return False
        if _as_bool(f.get("with_failed_jobs")) and not view["brief_progress"]["jobs"]["failed"]:
            return False
        if text and text not in _filter_factors(view):
            return False
        started = parse_iso(view["start_time"])
        if "from_time" in f and started < parse_iso(f["from_time"]):
            return False
        return not ("to_time" in f and started > parse_iso(f["to_time"]))

    selected = [view for view in views if matches(view)]
    direction = f.get("cursor_direction", "past")
    if "cursor_time" in f:
        cursor = parse_iso(f["cursor_time"])
        if direction == "future":
            selected = [v for v in selected if parse_iso(v["start_time"]) > cursor]
        else:
            selected = [v for v in selected if parse_iso(v["start_time"]) < cursor]
    selected.sort(key=lambda v: v["start_time"], reverse=direction != "future")
    limit = _as_int(f.get("limit", 100), "limit")
    page = selected[:limit]
    if direction == "future":
        page.reverse()
    attributes = f.get("attributes")
    if attributes:
        page = [{k: v for k, v in view.items() if k in attributes} for view in page]
    result: dict[str, Any] = {"operations": page, "incomplete": len(selected) > limit}
    if _as_bool(f.get("include_counters"), default=True):
        result.update(_operation_counters(views, matches))
    return result


def _filter_factors(view: Mapping[str, Any]) -> str:
    brief = view.get("brief_spec", {})
    factors = [view["id"], view["authenticated_user"], view["type"], view["state"], view["pool"]]
    factors += [str(brief.get("title", ""))]
    factors += [str(p) for p in brief.get("input_table_paths", [])]
    factors += [str(p) for p in brief.get("output_table_paths", [])]
    return " ".join(factors).lower()


def _operation_counters(
    views: list[dict[str, Any]], matches: Callable[..., bool]
) -> dict[str, Any]:
    def count(key: str, ignore: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for view in views:
            if matches(view, ignore):
                counts[view[key]] = counts.get(view[key], 0) + 1
        return counts

    return {
        "state_counts": count("state", "state"),
        "type_counts": count("type", "type"),
        "user_counts": count("authenticated_user", "user"),
        "pool_counts": count("pool", "pool"),
        "pool_tree_counts": {"default": sum(1 for v in views if matches(v))},
        "failed_jobs_count": sum(1 for v in views if v["brief_progress"]["jobs"]["failed"]),
    }


_JOB_SORT_FIELDS = {
    "none": "job_index",
    "id": "id",
    "type": "type",
    "state": "state",
    "start_time": "start_time",
    "finish_time": "finish_time",
    "address": "address",
}


def select_jobs(jobs: list[dict[str, Any]], filters: Mapping[str, Any]) -> dict[str, Any]:
    """``list_jobs``: filter by state/type/stderr/task, sort, page by ``offset``/``limit``."""
    f = {name: normalise(value) for name, value in filters.items() if value is not None}
    selected = jobs
    if "job_state" in f:
        selected = [job for job in selected if job["state"] == f["job_state"]]
    if "job_type" in f:
        selected = [job for job in selected if job["type"] == f["job_type"]]
    if "task_name" in f:
        selected = [job for job in selected if job["task_name"] == f["task_name"]]
    if "address" in f:
        selected = [job for job in selected if job["address"] == f["address"]]
    if "with_stderr" in f:
        wanted = _as_bool(f["with_stderr"])
        selected = [job for job in selected if bool(job.get("stderr_size")) == wanted]
    sort_key = _JOB_SORT_FIELDS.get(str(f.get("sort_field", "none")), "job_index")
    selected = sorted(
        selected,
        key=lambda job: str(job.get(sort_key, "")) if sort_key != "job_index" else job[sort_key],
        reverse=f.get("sort_order") == "descending",
    )
    offset = _as_int(f.get("offset", 0), "offset")
    limit = _as_int(f.get("limit", 1000), "limit")
    state_counts: dict[str, int] = {}
    type_counts: dict[str, int] = {}
    for job in jobs:
        state_counts[job["state"]] = state_counts.get(job["state"], 0) + 1
        type_counts[job["type"]] = type_counts.get(job["type"], 0) + 1
    return {
        "jobs": selected[offset : offset + limit],
        "cypress_job_count": len(jobs),
        "scheduler_job_count": len(jobs),
        "controller_agent_job_count": len(jobs),
        "archive_job_count": 0,
        "state_counts": state_counts,
        "type_counts": type_counts,
        "errors": [],
    }


__all__ = [
    "OperationEngine",
    "even_split",
    "normalise",
    "secure_vault_environment",
    "select_jobs",
    "select_operations",
    "write_input_splits",
]
