"""The sorted operations: ``reduce``, ``join_reduce`` and ``map_reduce``, and the dispatch of
``sort``/``merge``/``erase`` (:mod:`.system_operations`); a layer of
:class:`~.operations.OperationEngine`.

- ``reduce``: every primary input must be sorted by ``sort_by`` (default ``reduce_by``, which must
  be its prefix), else the operation fails with YT's "Input table ... is not sorted". The inputs
  are merged by key (equal keys in table order, ``<table_index=N>#`` control rows with several
  inputs) and cut into job inputs only between ``reduce_by`` groups; with
  ``job_io/control_attributes/enable_key_switch`` (what ``yt.wrapper`` Python reducers ask for)
  a ``<key_switch=%true>#`` precedes each new group. ``<foreign=%true>`` inputs need ``join_by``
  (a prefix of ``reduce_by``): each join key's foreign rows come before its primary rows, foreign
  keys no primary row has are dropped, and groups are cut by ``join_by``.
- ``join_reduce``: a reduce grouped by ``join_by`` (primary and foreign tables as above).
- ``map_reduce``: the ``mapper`` (optional; ``map_job_io``) writes its first output to the
  shuffle and the next ``mapper_output_table_count`` ones to the first output tables; the
  shuffle is sorted by ``sort_by`` (external sort); the optional ``reduce_combiner`` runs over it
  grouped by ``reduce_by`` and its output is sorted again; the ``reducer`` (``reduce_job_io``)
  gets rows grouped by ``reduce_by``, sorted by ``sort_by``, and writes the remaining tables.

Output tables are written as for a map (``<sorted_by=[...]>`` on an output path makes it sorted,
checked as it is written). Job types: ``sorted_reduce``, ``joined_reduce``, ``partition_map``,
``reduce_combiner``, ``partition_reduce``.

Usage::

    engine.start_operation("reduce", {"reducer": {"command": "cat", "format": "json"},
        "reduce_by": ["k"], "input_table_paths": ["//tmp/sorted"], "output_table_paths": ["//tmp/o"]})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .exceptions import GenericError
from .external_sort import DEFAULT_RUN_ROWS, ExternalSorter
from .formats import parse_job_format
from .input_splits import even_split
from .interfaces import RichPath, Row
from .job_io import ROUTED_FORMAT, InputControl, InputRow, write_input_splits
from .operation_runner import OperationRunner, task_outputs
from .operation_state import (
    DEFAULT_DATA_WEIGHT_PER_JOB,
    DEFAULT_INPUT_FORMAT,
    JobUnit,
    TaskPlan,
    _as_int,
    _Operation,
    auto_merge_group,
    load_rows_from,
)
from .sorted_inputs import (
    check_key_prefix,
    check_sorted_input,
    join_foreign,
    key_columns,
    merge_sorted,
    table_streams,
)
from .system_operations import plan_erase, plan_merge, plan_sort
from .tables import make_key_function
from .ypath import parse_rich_path

SYSTEM_OPERATION_TYPES = ("sort", "merge", "erase")
REDUCE_OPERATION_TYPES = ("reduce", "join_reduce", "map_reduce")
USER_JOB_SECTIONS = {
    "map": ("mapper",),
    "reduce": ("reducer",),
    "join_reduce": ("reducer",),
    "map_reduce": ("mapper", "reduce_combiner", "reducer"),
}
SHUFFLE = "<shuffle>"  # the output of a map_reduce stage that feeds the next stage


class SortedOperationRunner(OperationRunner):
    """Runs sort, merge, erase, reduce, join_reduce and map_reduce operations."""

    def _run_operation(self, operation: _Operation) -> None:
        operation_type = operation.record["type"]
        if operation_type in SYSTEM_OPERATION_TYPES:
            self._run_system(operation)
        elif operation_type == "map_reduce":
            self._run_map_reduce(operation)
        elif operation_type in REDUCE_OPERATION_TYPES:
            self._run_reduce(operation)
        else:
            super()._run_operation(operation)

    sort_run_rows = DEFAULT_RUN_ROWS  # rows an external sort holds in memory at once

    def _sorter(self, operation: _Operation, name: str) -> ExternalSorter:
        return ExternalSorter(operation.work_dir / name, run_rows=self.sort_run_rows)

    def _run_system(self, operation: _Operation) -> None:
        spec, tx = operation.record["spec"], operation.transaction_id
        self._set_state(operation, "running")
        operation.work_dir.mkdir(parents=True, exist_ok=True)
        if operation.record["type"] == "sort":
            outputs = plan_sort(self.store, spec, tx, self._sorter(operation, "sort"))
        elif operation.record["type"] == "merge":
            outputs = plan_merge(self.store, spec, tx)
        else:
            outputs = plan_erase(self.store, spec, tx)
        self._check_stop(operation)
        self._set_state(operation, "completing")
        self._commit_outputs(operation, outputs)

    def _run_reduce(self, operation: _Operation) -> None:
        spec, tx = operation.record["spec"], operation.transaction_id
        paths = list(spec["input_table_paths"])
        foreign = frozenset(
            index
            for index, path in enumerate(paths)
            if parse_rich_path(path).attributes.get("foreign")
        )
        if operation.record["type"] == "join_reduce":
            join_by = key_columns(spec, "join_by")
            reduce_by = sort_by = join_by
        else:
            reduce_by = key_columns(spec, "reduce_by")
            sort_by = key_columns(spec, "sort_by", required=False) or reduce_by
            join_by = key_columns(spec, "join_by", required=bool(foreign))
            if foreign:
                check_key_prefix(join_by, reduce_by, "Join")
        if len(foreign) == len(paths):
            raise GenericError("At least one non-foreign input table is required")
        for index, path in enumerate(paths):
            sorted_by = self.store.table_schema(path, tx)[0].sort_columns
            check_sorted_input(
                parse_rich_path(path).path, sorted_by, join_by if index in foreign else sort_by
            )
        streams = table_streams(lambda p: self.store.read_table_ranges(p, transaction_id=tx), paths)
        items = merge_sorted(streams, sort_by, foreign=foreign, join_by=join_by)
        if foreign:
            items = join_foreign(items, foreign, join_by)
        job_type = "joined_reduce" if operation.record["type"] == "join_reduce" else "sorted_reduce"
        task = self._reduce_task(
            operation,
            job_type,
            items,
            join_by if foreign else reduce_by,
            list(spec.get("output_table_paths") or []),
            control=InputControl.from_spec(spec, len(paths)),
            quotas=self._reduce_quotas(
                spec, [p for i, p in enumerate(paths) if i not in foreign], tx
            ),
        )
        self._run_stages(operation, [task], [])

    def _run_map_reduce(self, operation: _Operation) -> None:
        spec, tx = operation.record["spec"], operation.transaction_id
        reduce_by = key_columns(spec, "reduce_by")
        sort_by = key_columns(spec, "sort_by", required=False) or reduce_by
        outputs = list(spec.get("output_table_paths") or [])
        mapper_tables = _as_int(
            spec.get("mapper_output_table_count", 0), "mapper_output_table_count"
        )
        key = make_key_function(sort_by)
        operation.work_dir.mkdir(parents=True, exist_ok=True)
        committed: list[tuple[RichPath, Iterable[Row]]] = []
        self._set_state(operation, "running")
        if spec.get("mapper"):
            mapper = spec["mapper"]
            input_format, output_format = _formats(mapper)
            paths = list(spec["input_table_paths"])
            splits = self._materialize_input(
                operation, spec, paths, input_format, tx, job_io_key="map_job_io"
            )
            map_task = TaskPlan(
                name="partition_map",
                job_type="partition_map",
                user_job=mapper,
                output_paths=[SHUFFLE, *outputs[:mapper_tables]],
                files=self._job_files(mapper, tx),
                input_format=input_format,
                output_format=output_format,
                units=[JobUnit(cookie=i, split=split) for i, split in enumerate(splits)],
            )
            self._add_units(operation, [map_task])
            self._run_jobs(operation, [map_task])
            self._check_stop(operation)
            group = auto_merge_group(spec)
            committed.extend(task_outputs([map_task], skip_tables=1, merge_group=group))
            shuffle: Iterable[Row] = _stage_rows(map_task)
        else:
            shuffle = (
                row for path in spec["input_table_paths"] for row in self.store.read_rows(path, tx)
            )
        sorted_rows = self._sorter(operation, "shuffle").sort(shuffle, key)
        if spec.get("reduce_combiner"):
            combiner = self._reduce_task(
                operation,
                "reduce_combiner",
                _as_items(sorted_rows),
                reduce_by,
                [SHUFFLE],
                control=InputControl.from_spec(spec, 1, job_io_key="reduce_job_io"),
                quotas=None,
            )
            self._run_jobs(operation, [combiner])
            self._check_stop(operation)
            sorted_rows = self._sorter(operation, "combined").sort(_stage_rows(combiner), key)
        reducer = self._reduce_task(
            operation,
            "partition_reduce",
            _as_items(sorted_rows),
            reduce_by,
            outputs[mapper_tables:],
            control=InputControl.from_spec(spec, 1, job_io_key="reduce_job_io"),
            quotas=None,
        )
        self._run_stages(operation, [reducer], committed)

    def _reduce_task(
        self,
        operation: _Operation,
        job_type: str,
        items: Iterator[InputRow],
        group_by: Sequence[str],
        output_paths: list[RichPath],
        *,
        control: InputControl,
        quotas: list[int] | None,
    ) -> TaskPlan:
        """Write the job inputs of a reducer-like stage, cut between ``group_by`` groups."""
        spec = operation.record["spec"]
        section = "reduce_combiner" if job_type == "reduce_combiner" else "reducer"
        user_job = spec[section]
        input_format, output_format = _formats(user_job)
        work_dir = operation.work_dir / job_type
        work_dir.mkdir(parents=True, exist_ok=True)
        weight = spec.get("data_weight_per_job") or spec.get("data_size_per_job")
        splits = write_input_splits(
            items,
            input_format,
            work_dir,
            quotas=quotas,
            bytes_per_job=_as_int(weight, "data_weight_per_job")
            if weight
            else DEFAULT_DATA_WEIGHT_PER_JOB,
            control=control,
            check_stop=lambda: self._check_stop(operation),
            group_key=make_key_function(list(group_by)),
        )
        task = TaskPlan(
            name=job_type,
            job_type=job_type,
            user_job=user_job,
            output_paths=output_paths,
            files=self._job_files(user_job, operation.transaction_id),
            input_format=input_format,
            output_format=output_format,
            units=[JobUnit(cookie=i, split=split) for i, split in enumerate(splits)],
        )
        self._add_units(operation, [task])
        return task

    def _reduce_quotas(
        self, spec: Mapping[str, Any], primary: list[RichPath], tx: str | None
    ) -> list[int] | None:
        """Rows per job for ``job_count`` (jobs end between groups, so some get more)."""
        if spec.get("job_count") is None:
            return None
        total = sum(self.store.row_count(path, tx) for path in primary)
        return even_split(total, _as_int(spec["job_count"], "job_count")) if total else None

    def _add_units(self, operation: _Operation, tasks: list[TaskPlan]) -> None:
        with self._lock:
            operation.record["units_total"] += sum(len(task.units) for task in tasks)
            self._persist(operation)

    def _run_stages(
        self,
        operation: _Operation,
        tasks: list[TaskPlan],
        earlier: list[tuple[RichPath, Iterable[Row]]],
    ) -> None:
        """Run the last stage's ``tasks``; commit ``earlier`` stages' outputs and theirs."""
        self._check_stop(operation)
        if operation.state != "running":
            self._set_state(operation, "running")
        self._run_jobs(operation, tasks)
        self._check_stop(operation)
        self._set_state(operation, "completing")
        group = auto_merge_group(operation.record["spec"])
        self._commit_outputs(operation, earlier + task_outputs(tasks, merge_group=group))


def _formats(user_job: Mapping[str, Any]) -> tuple[Any, Any]:
    default = user_job.get("format") or DEFAULT_INPUT_FORMAT
    return (
        parse_job_format(user_job.get("input_format") or default),
        parse_job_format(user_job.get("output_format") or default),
    )


def _stage_rows(task: TaskPlan) -> Iterator[Row]:
    """What a stage's completed jobs wrote to their first output (the shuffle), in unit order."""
    for unit in task.units:
        if unit.completed_job_id is not None:
            yield from load_rows_from(ROUTED_FORMAT, Path(unit.output_files[0]))


def _as_items(rows: Iterable[Row]) -> Iterator[InputRow]:
    return (InputRow(0, 0, index, row) for index, row in enumerate(rows))
