"""The bottom layer of :class:`~.operations.OperationEngine`: its directories, the operation records
on disk, and recovery after a restart (an operation that was running is reported failed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yt.yson as yson

from .exceptions import NoSuchOperation
from .interfaces import TableStore
from .job_python import JobEnvironment, JobPythons
from .jobs import (
    kill_orphaned_job,
    yt_error,
)
from .operation_specs import DEFAULT_MAX_FINISHED_OPERATIONS, finished_to_remove
from .operation_state import (
    FINISHED_STATES,
    PERSIST_INTERVAL_SECONDS,
    RECORD_FILE,
    RESTART_ERROR_MESSAGE,
    _lock_directory,
    _Operation,
    _Stop,
    now_iso,
)
from .values import plain_key, to_plain


class OperationStore:
    """Keeps operation records on disk and in memory; recovers them at start."""

    def __init__(
        self,
        root: Path,
        store: TableStore,
        max_parallel_jobs: int | None = None,
        max_finished_operations: int = DEFAULT_MAX_FINISHED_OPERATIONS,
        job_environment: JobEnvironment | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_finished_operations = max_finished_operations
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

    def _find(self, operation_id: str) -> _Operation:
        operation = self._operations.get(plain_key(operation_id))
        if operation is None:
            raise NoSuchOperation(
                f"No such operation {operation_id}", operation_id=plain_key(operation_id)
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

    def _recover(self) -> None:
        """Load finished operations; those interrupted by a restart become ``failed``."""
        for directory in sorted(self.operations_dir.iterdir()):
            record_path = directory / RECORD_FILE
            if directory.name.startswith("_") or not record_path.exists():
                continue
            try:
                record = to_plain(yson.loads(record_path.read_bytes()))
            except (yson.YsonError, OSError):
                continue
            operation = _Operation(record, directory)
            shutil.rmtree(operation.work_dir, ignore_errors=True)
            if operation.state not in FINISHED_STATES:
                self._fail_interrupted(operation)
            operation.finished.set()
            self._operations[operation.id] = operation
        self._remove_old_finished()

    def _remove_old_finished(self) -> None:
        """Keep only the ``max_finished_operations`` most recently finished operations (their
        records and stderrs); older ones are gone, as a cluster's operations cleaner does."""
        with self._lock:
            records = [op.record for op in self._operations.values()]
            removed = [
                self._operations.pop(operation_id)
                for operation_id in finished_to_remove(records, self.max_finished_operations)
            ]
        for operation in removed:
            shutil.rmtree(operation.directory, ignore_errors=True)

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
