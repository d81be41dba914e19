"""Validating a spec and planning an operation: tasks, job units, job files, and materialising the
input into job inputs (a layer of :class:`~.operations.OperationEngine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .exceptions import GenericError
from .formats import parse_job_format
from .input_splits import even_split
from .interfaces import RichPath, RowFormat
from .job_io import InputControl, input_rows, write_input_splits
from .jobs import (
    SandboxFile,
    sandbox_relative_path,
)
from .operation_state import (
    DEFAULT_DATA_WEIGHT_PER_JOB,
    DEFAULT_INPUT_FORMAT,
    InputSplit,
    JobUnit,
    TaskPlan,
    _as_int,
    _Operation,
)
from .operation_store import OperationStore
from .sorted_inputs import validate_reduce_spec
from .system_operations import validate_system_spec
from .values import as_bool


def _validate_spec(operation_type: str, spec: Mapping[str, Any]) -> None:
    if operation_type in ("sort", "merge", "erase"):
        validate_system_spec(operation_type, spec)
    elif operation_type in ("reduce", "join_reduce", "map_reduce"):
        for section in ("mapper", "reduce_combiner", "reducer"):
            user_job = spec.get(section)
            if user_job is not None:
                if not isinstance(user_job, dict) or not user_job.get("command"):
                    raise GenericError(f"Spec field {section!r} needs a 'command'")
                _validate_user_job(user_job)
        validate_reduce_spec(operation_type, spec)
    elif operation_type == "map":
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
    if as_bool(user_job.get("use_yamr_descriptors")):
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


class OperationPlanner(OperationStore):
    """Validates specs, plans tasks and jobs, materialises the input."""

    def _plan(self, operation: _Operation) -> list[TaskPlan]:
        spec = operation.record["spec"]
        transaction_id = operation.transaction_id
        operation.work_dir.mkdir(parents=True, exist_ok=True)
        if operation.record["type"] == "map":
            user_job = spec["mapper"]
            input_format = parse_job_format(
                user_job.get("input_format") or user_job.get("format") or DEFAULT_INPUT_FORMAT
            )
            output_format = parse_job_format(
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
                    output_format = parse_job_format(
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
                    executable=as_bool(attributes.get("executable")),
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
        *,
        job_io_key: str = "job_io",
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
        control = InputControl.from_spec(spec, len(input_paths), job_io_key=job_io_key)
        rows = input_rows(
            lambda path: self.store.read_table_ranges(path, transaction_id=transaction_id),
            input_paths,
        )
        return write_input_splits(
            rows,
            input_format,
            operation.work_dir,
            quotas=quotas,
            bytes_per_job=bytes_per_job,
            control=control,
            check_stop=lambda: self._check_stop(operation),
        )
