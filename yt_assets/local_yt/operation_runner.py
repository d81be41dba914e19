"""Running an operation: the controller thread, job processes with retries, stopping (abort,
complete), and committing the outputs in one transaction (a layer of
:class:`~.operations.OperationEngine`).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from .formats import YsonStreamRows
from .interfaces import RichPath, Row
from .job_io import route_job_output
from .job_python import MissingDockerImage
from .job_statistics import job_statistics
from .jobs import (
    DEFAULT_MAX_STDERR_SIZE,
    JobLaunch,
    JobOutcome,
    JobProcess,
    output_table_fd,
    yt_error,
)
from .operation_planning import OperationPlanner
from .operation_state import (
    CONTROLLER_POLL_SECONDS,
    DEFAULT_MAX_FAILED_JOB_COUNT,
    JOB_ADDRESS,
    JOB_OBJECT_TYPE,
    FilesInTurn,
    JobUnit,
    TaskPlan,
    _as_int,
    _error_dict,
    _jobs_failed_error,
    _JobsFailed,
    _Operation,
    _Stop,
    appended_path,
    auto_merge_group,
    env_value,
    now_iso,
    secure_vault_environment,
)
from .values import as_bool, new_object_id
from .ypath import parse_rich_path


class OperationRunner(OperationPlanner):
    """Runs planned operations' jobs and commits their outputs."""

    def _control(self, operation: _Operation) -> None:
        """The life of one operation (its own thread)."""
        try:
            self._check_stop(operation)
            self._set_state(operation, "materializing")
            self._run_operation(operation)
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
            self._remove_old_finished()  # before waiters wake: they see the pruned list
            operation.finished.set()
            release = getattr(self.store, "release_thread_resources", None)
            if release is not None:  # this thread's database connection
                release()

    def _run_operation(self, operation: _Operation) -> None:
        """Plan, run the jobs, commit the outputs (a map or a vanilla operation)."""
        tasks = self._plan(operation)
        self._check_stop(operation)
        self._set_state(operation, "running")
        self._run_jobs(operation, tasks)
        self._check_stop(operation)
        self._set_state(operation, "completing")
        self._commit(operation, tasks)

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
        job_id = new_object_id(JOB_OBJECT_TYPE)
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
        started = time.monotonic()
        try:
            outcome = process.run()
        finally:
            with self._lock:
                operation.processes.pop(job_id, None)
            shutil.rmtree(sandbox, ignore_errors=True)
        state, error = self._job_result(operation, task, unit, job_id, outcome, output_paths)
        statistics_path = launch.statistics_path
        assert statistics_path is not None
        user_statistics = statistics_path.read_bytes() if statistics_path.exists() else b""
        statistics_path.unlink(missing_ok=True)
        statistics = job_statistics(
            user_statistics,
            exec_ms=round((time.monotonic() - started) * 1000),
            input_rows=unit.split.row_count if unit.split else 0,
            output_rows=unit.output_row_counts if state == "completed" else [],
        )
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
            if state != "aborted":
                job["_statistics"] = statistics
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
            statistics_path=operation.directory / "jobs" / f"{job_id}.statistics",
            stdin_path=unit.split.path if unit.split else None,
            output_paths=output_paths,
            files=task.files,
            environment=self._job_environment(
                operation, task, unit, job_id, job_index, sandbox, path_variable
            ),
            setup_error=setup_error,
            redirect_stdout_to_stderr=as_bool(user_job.get("redirect_stdout_to_stderr")),
            max_stderr_size=_as_int(
                user_job.get("max_stderr_size", DEFAULT_MAX_STDERR_SIZE), "max_stderr_size"
            ),
            time_limit_seconds=_as_int(time_limit, "job_time_limit") / 1000 if time_limit else None,
            check_input_fully_consumed=as_bool(user_job.get("check_input_fully_consumed")),
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
        redirect = as_bool(task.user_job.get("redirect_stdout_to_stderr"))
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
        try:  # parsed and routed to tables now: a malformed output fails the job
            unit.output_files, unit.output_row_counts = route_job_output(
                task.output_format,
                output_paths,
                _output_fds(task.user_job, len(output_paths)),
                operation.work_dir / job_id,
            )
        except Exception as error:  # as on a cluster
            inner = _error_dict(error)
            return "failed", yt_error(
                "Error parsing job output", attributes={"job_id": job_id}, inner_errors=[inner]
            )
        return "completed", None

    def _commit(self, operation: _Operation, tasks: list[TaskPlan]) -> None:
        """Write every completed unit's output, in unit order, in one output transaction."""
        group = auto_merge_group(operation.record["spec"])
        self._commit_outputs(operation, task_outputs(tasks, merge_group=group))

    def _commit_outputs(
        self, operation: _Operation, outputs: list[tuple[RichPath, Iterable[Row]]]
    ) -> None:
        """Write each ``(path, rows)`` in order, in one output transaction."""
        if not outputs:
            return
        output_transaction = self.store.start_transaction(
            parent_id=operation.transaction_id,
            title=f"Output transaction of operation {operation.id}",
        )
        with self._lock:
            operation.record["output_transaction_id"] = output_transaction
            self._persist(operation)
        try:
            for path, rows in outputs:
                self.store.write_rows(path, rows, output_transaction)
            self.store.commit_transaction(output_transaction)
        except BaseException:
            with contextlib.suppress(Exception):
                self.store.abort_transaction(output_transaction)
            raise


def task_outputs(
    tasks: list[TaskPlan], skip_tables: int = 0, *, merge_group: int | None = None
) -> list[tuple[RichPath, Iterable[Row]]]:
    """``(path, rows)`` writes of each output table of the tasks: the completed units' rows in
    unit order, one write (chunk) per job, or per ``merge_group`` jobs (``auto_merge``; a path's
    ``<auto_merge=%false>`` opts out). A task's first ``skip_tables`` routed tables feed a later
    stage, not a table."""
    outputs: list[tuple[RichPath, Iterable[Row]]] = []
    for task in tasks:
        completed = [unit for unit in task.units if unit.completed_job_id is not None]
        for table_index, path in enumerate(task.output_paths[skip_tables:], start=skip_tables):
            group = merge_group
            if parse_rich_path(path).attributes.get("auto_merge") is False:
                group = None
            size = group or 1
            batches = [completed[i : i + size] for i in range(0, len(completed), size)] or [[]]
            for position, batch in enumerate(batches):
                target = path if position == 0 else appended_path(path)
                outputs.append((target, _routed_table_rows(batch, table_index)))
    return outputs


def _routed_table_rows(units: list[JobUnit], table_index: int) -> Iterator[Row]:
    """The units' rows of one output table (binary YSON files, stored as they are)."""
    return YsonStreamRows(FilesInTurn(unit.output_files[table_index] for unit in units))  # type: ignore[arg-type]


def _output_fds(user_job: Mapping[str, Any], count: int) -> list[int]:
    """The descriptor of each output table (for error messages)."""
    first = 4 if as_bool(user_job.get("redirect_stdout_to_stderr")) else 1
    return [output_table_fd(index, first) for index in range(count)]


def _image_of(user_job: Mapping[str, Any]) -> str | None:
    image = user_job.get("docker_image")
    return str(image) if image else None
