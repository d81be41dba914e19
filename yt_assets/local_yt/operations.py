"""The operations engine of the local YT: ``map``, ``vanilla``, ``reduce``, ``join_reduce`` and
``map_reduce`` operations run their jobs as local processes; ``sort``, ``merge`` and ``erase``
run in the server (no jobs: :mod:`.system_operations`; the reduce family: :mod:`.reduce_operations`).

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
pools, ``table_writer``, and anything else (``use_yamr_descriptors`` is refused).
``job_io/control_attributes`` (table, range and row indexes on input) and output table switches
are handled by :mod:`.job_io`. What jobs write to fd 5 (user statistics) is aggregated, with
``time/exec`` and row counts, into ``progress/job_statistics`` (:mod:`.job_statistics`). Spec keys
YT does not know are listed in ``unrecognized_spec`` (:mod:`.operation_specs`); only the
``max_finished_operations`` (default 1000) most recently finished operations are kept, older
ones are removed with their stderrs, as a cluster's operations cleaner does (there is no archive).
``list_operations`` with ``attributes`` returns exactly those (full-view ones too).

Secure vault values live only in memory and in the job's environment (``YT_SECURE_VAULT_<KEY>``
and ``YT_SECURE_VAULT``); ``get_operation`` never shows them and they are never written to disk.
Operation records (``operation.yson``: YSON keeps the attributes of rich paths and formats) and job
stderrs are kept under ``<root>/operations/<id>/``, so finished operations survive a restart; an
operation that was running when the server died is reported as ``failed`` after the restart (its
output transaction is aborted, and job processes left over from the dead server are killed).
The user transaction is not watched: an operation whose transaction was aborted fails when it
commits its output (a cluster would abort it at once).

Not emulated for the sorted operations: descending ``sort_order`` (refused), ``pivot_keys``,
``partition_count``/``partition_job_count`` (one reducer stage, cut by data size or the reduce's
``job_count``), job splitting, ``auto_merge`` size thresholds (each job writes its own output
chunk; ``auto_merge`` merges them in groups: ``manual`` of ``min(chunk_count_per_merge_job,
max_intermediate_chunk_count)``, ``relaxed``/``economy`` of 500; ``<auto_merge=%false>`` on an
output path opts out; ``sort`` writes one chunk),
``enable_key_guarantee=%false``, ``intermediate_stream_schemas``;
a reduce with foreign tables groups by ``join_by``; ``sort``/``merge``/``erase`` have no jobs to
list. ``shuffle_table`` needs the ``skiff`` format.

Files (each class extends the one before): :mod:`.operation_state` (records, ids, small helpers),
:mod:`.input_splits` (splitting the input into job inputs), :mod:`.operation_queries`
(``list_operations``/``list_jobs`` filters), :class:`~.operation_store.OperationStore` (persistence
and recovery after a restart), :class:`~.operation_planning.OperationPlanner` (spec validation,
planning, materialising the input), :class:`~.operation_runner.OperationRunner` (running, stopping
and committing jobs), :class:`~.reduce_operations.SortedOperationRunner` (the sorted operations),
and :class:`OperationEngine` here (the public API).

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

import threading
from collections.abc import Mapping
from typing import Any

from .exceptions import GenericError, NoSuchJob, NoSuchOperation
from .input_splits import even_split
from .job_io import write_input_splits
from .job_statistics import aggregate_v1, aggregate_v2, job_view_statistics
from .operation_parameters import merged_updates, runtime_parameters
from .operation_planning import _validate_spec
from .operation_queries import (
    _brief_spec,
    _task_names,
    select_jobs,
    select_operations,
)
from .operation_specs import unrecognized_spec
from .operation_state import (
    ABORT_WAIT_SECONDS,
    FINISHED_STATES,
    OPERATION_OBJECT_TYPE,
    SUPPORTED_OPERATION_TYPES,
    _Operation,
    now_iso,
    secure_vault_environment,
)
from .reduce_operations import SortedOperationRunner
from .values import new_object_id, plain_key, to_plain

__all__ = [
    "OperationEngine",
    "even_split",
    "secure_vault_environment",
    "select_jobs",
    "select_operations",
    "write_input_splits",
]


class OperationEngine(SortedOperationRunner):
    """Runs operations on a :class:`~.interfaces.TableStore`; thread-safe.

    Usage::

        engine = OperationEngine(root, cluster, max_parallel_jobs=2)
        op_id = engine.start_operation("map", spec, transaction_id=None, user="root")
        engine.wait(op_id)
        print(engine.get_operation(op_id)["state"])
        engine.close()
    """

    def start_operation(
        self,
        operation_type: str,
        spec: Mapping[str, Any],
        *,
        transaction_id: str | None = None,
        user: str = "root",
    ) -> str:
        """Validate the spec, register the operation and start it in the background."""
        operation_type = plain_key(operation_type)
        if operation_type not in SUPPORTED_OPERATION_TYPES:
            raise GenericError(
                f"Operation type {operation_type!r} is not supported by the local YT "
                f"(supported: {', '.join(SUPPORTED_OPERATION_TYPES)})",
                operation_type=operation_type,
            )
        full_spec = to_plain(spec)
        if not isinstance(full_spec, dict):
            raise GenericError("Operation spec must be a map")
        secure_vault = full_spec.pop("secure_vault", None) or {}
        if not isinstance(secure_vault, dict):
            raise GenericError("Spec field 'secure_vault' must be a map")
        _validate_spec(operation_type, full_spec)

        operation_id = new_object_id(OPERATION_OBJECT_TYPE)
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
        if secure_vault:
            operation.hidden_values = tuple(secure_vault_environment(secure_vault).values())
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

    def has_running_operations(self) -> bool:
        """Whether an operation is still being run (its control thread is alive)."""
        with self._lock:
            return any(
                op.thread is not None and op.thread.is_alive() for op in self._operations.values()
            )

    def get_operation(
        self, operation_id: str, *, attributes: list[str] | None = None
    ) -> dict[str, Any]:
        """The operation as ``get_operation`` returns it (only ``attributes``, if given)."""
        with self._lock:
            view = self._view(self._find(operation_id), brief=False)
        if attributes:
            return {name: view[name] for name in map(plain_key, attributes) if name in view}
        return view

    def list_operations(self, **filters: Any) -> dict[str, Any]:
        """Operations newest first, filtered as the ``list_operations`` command does."""
        brief = not filters.get("attributes")  # named attributes may be full-view ones
        with self._lock:
            views = [self._view(op, brief=brief) for op in self._operations.values()]
        return select_operations(views, filters)

    def abort_operation(self, operation_id: str, *, abort_message: str | None = None) -> None:
        """Kill the operation's jobs; it ends ``aborted`` and writes nothing. Waits for the end."""
        operation = self._request_stop(operation_id, "abort", abort_message)
        if operation is not None:
            operation.finished.wait(ABORT_WAIT_SECONDS)

    def update_operation_parameters(self, operation_id: str, parameters: Any) -> None:
        """Change a running operation's runtime parameters (see :mod:`.operation_parameters`)."""
        with self._lock:
            operation = self._find(operation_id)
            if operation.record["state"] in FINISHED_STATES:
                raise NoSuchOperation(
                    f"No such running operation {operation.id}: it is {operation.record['state']}",
                    operation_id=operation.id,
                )
            operation.record["runtime_parameters"] = merged_updates(
                operation.record.get("runtime_parameters", {}), parameters
            )
            self._persist(operation)

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
            job = next((j for j in operation.jobs if j["id"] == plain_key(job_id)), None)
        if job is None:
            raise NoSuchJob(
                f"No such job {job_id}", job_id=plain_key(job_id), operation_id=operation_id
            )
        path = self._stderr_path(operation, job["id"])
        return path.read_bytes() if path.exists() else b""

    def secret_values(self, operation_id: str) -> list[str]:
        """The operation's secure vault values as its jobs see them, for the web view to hide
        (kept in memory while the operation is listed; none after a restart of the server,
        which never stores a secure vault)."""
        with self._lock:
            return list(self._find(operation_id).hidden_values)

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
        samples = [
            (job["state"], job["type"], job["_statistics"])
            for job in operation.jobs
            if "_statistics" in job
        ]
        return {
            "jobs": jobs,
            "build_time": now_iso(),
            "job_statistics": aggregate_v1(samples),
            "job_statistics_v2": aggregate_v2(samples),
        }

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
            "runtime_parameters": runtime_parameters(record),
            "pool": runtime_parameters(record)["scheduling_options_per_pool_tree"]
            .get("default", {})
            .get("pool", record["authenticated_user"]),
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
                "unrecognized_spec": unrecognized_spec(record["type"], spec),
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
        if "_statistics" in job:
            view["statistics"] = job_view_statistics(job["_statistics"])
        if job["state"] == "running":
            path = self._stderr_path(operation, job["id"])
            size = path.stat().st_size if path.exists() else 0
            if size:
                view["stderr_size"] = size
        return view
