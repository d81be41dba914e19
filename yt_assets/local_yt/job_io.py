"""What a job reads and writes, as an exec node feeds and collects it.

**Input** (:func:`write_input_splits`): the rows of the input tables, cut into job inputs in the
job's input format, with the control rows YT writes before them: ``<table_index=N>#`` (spec
``enable_input_table_index``, or ``job_io/control_attributes/enable_table_index``),
``<range_index=N>#`` (``enable_range_index``) and ``<row_index=N>#`` (``enable_row_index``) at the
start of each job's input and wherever the table or the range changes (what ``yt.wrapper``'s
``@with_context`` jobs read their ``context.table_index``/``row_index``/``range_index`` from);
in a reducer's input, ``<key_switch=%true>#`` before each new group (``enable_key_switch``, what
``yt.wrapper`` Python reducers group by).

**Output** (:func:`route_job_output`): every output descriptor's stream (fd 1, 4, 7, 10...) is
parsed in the output format; rows go to the table of their descriptor until a *table switch*
(``<table_index=2>#`` in YSON, ``{"$value": null, "$attributes": {"table_index": 2}}`` in JSON,
an ``@table_index`` column in DSV with ``enable_table_index``, a table index line or ``lenval``
record in YAMR and schemaful DSV) sends the following rows of that stream to another table; in
skiff each stream is read with its own table's skiff schema (``fmt.for_stream(i)``). The rows are stored per table in binary YSON (:data:`ROUTED_FORMAT`),
ready for the output transaction. A stream that does not parse, a row that is not a map or a
table index out of range fails the job, as on a cluster.

Usage::

    files, counts = route_job_output(json_format, [out_fd1, out_fd4], [1, 4], work_dir / "job1")
    rows_of_table_1 = list(ROUTED_FORMAT.load_rows(open(files[1], "rb")))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yt.yson as yson

from .formats import FormatError, YsonFormat, make_control_row
from .interfaces import Row, RowFormat
from .values import as_bool

ROUTED_FORMAT = YsonFormat()  # how routed job output is kept until the output transaction
ROWS_PER_WRITE_BATCH = 256
CONTROL_ATTRIBUTES = ("enable_table_index", "enable_range_index", "enable_row_index")


# ---------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class InputControl:
    """Which control rows a job's input carries."""

    table_index: bool = False
    range_index: bool = False
    row_index: bool = False
    key_switch: bool = False  # ``<key_switch=%true>#`` between groups of a reducer's input

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], input_table_count: int, *, job_io_key: str = "job_io"
    ) -> InputControl:
        """From ``enable_input_table_index`` and ``<job_io_key>/control_attributes`` of a spec
        (``reduce_job_io`` for the reducer of a map_reduce...)."""
        job_io = spec.get(job_io_key) or {}
        control = (job_io.get("control_attributes") if isinstance(job_io, Mapping) else None) or {}
        if not isinstance(control, Mapping):
            raise FormatError("job_io/control_attributes must be a map")
        unknown = sorted(set(map(str, control)) - {*CONTROL_ATTRIBUTES, "enable_key_switch"})
        if unknown:
            raise FormatError(f"Unknown control attributes: {', '.join(unknown)}")
        table_index = spec.get("enable_input_table_index")
        if table_index is None:
            table_index = control.get("enable_table_index")
        if table_index is None:
            table_index = input_table_count > 1
        return cls(
            table_index=as_bool(table_index),
            range_index=as_bool(control.get("enable_range_index", False)),
            row_index=as_bool(control.get("enable_row_index", False)),
            key_switch=as_bool(control.get("enable_key_switch", False)),
        )


@dataclass
class InputSplit:
    """The input of one job unit: a file in the input format, and where it starts."""

    path: Path
    row_count: int
    start_row_index: int


@dataclass(frozen=True)
class InputRow:
    """One input row and where it comes from (table, range of the rich path, row in the table)."""

    table_index: int
    range_index: int
    row_index: int
    row: Row


def input_rows(
    read_ranges: Callable[[Any], list[tuple[int, Iterator[Row]]]], input_paths: Sequence[Any]
) -> Iterator[InputRow]:
    """The rows of every input path in order; ``read_ranges(path)`` gives one
    ``(start_row_index, rows)`` per range of the path."""
    for table_index, path in enumerate(input_paths):
        for range_index, (start, rows) in enumerate(read_ranges(path)):
            for offset, row in enumerate(rows):
                yield InputRow(table_index, range_index, start + offset, row)


def write_input_splits(
    rows: Iterable[InputRow],
    input_format: RowFormat,
    work_dir: Path,
    *,
    quotas: list[int] | None,
    bytes_per_job: int,
    control: InputControl,
    check_stop: Callable[[], None] = lambda: None,
    group_key: Callable[[Row], Any] | None = None,
) -> list[InputSplit]:
    """Write the rows as job inputs: ``quotas`` rows per job if given (the last job takes any
    excess), else about ``bytes_per_job`` bytes of formatted input per job; control rows as
    ``control`` asks. With ``group_key`` (a reduce), a job's input ends only where the key
    changes, and ``control.key_switch`` writes ``<key_switch=%true>#`` before each new group."""
    splits: list[InputSplit] = []
    stream: BinaryIO | None = None
    batch: list[Any] = []
    position: tuple[int, int] | None = None  # (table, range) of the previous row in this split
    count = 0
    previous_key: Any = None

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
        for item in rows:
            key = group_key(item.row) if group_key is not None else None
            same_group = group_key is not None and stream is not None and key == previous_key
            if not same_group and current_full():
                flush()
                if stream is not None:
                    stream.close()
                path = work_dir / f"input{len(splits)}"
                stream = open(path, "wb")  # noqa: SIM115 - closed on the next split or below
                splits.append(InputSplit(path=path, row_count=0, start_row_index=count))
                position = None
            elif group_key is not None and control.key_switch and not same_group:
                batch.append(make_control_row(key_switch=True))
            previous_key = key
            if (item.table_index, item.range_index) != position:
                new_table = position is None or position[0] != item.table_index
                if control.table_index and new_table:
                    batch.append(make_control_row(table_index=item.table_index))
                if control.range_index:
                    batch.append(make_control_row(range_index=item.range_index))
                if control.row_index:
                    batch.append(make_control_row(row_index=item.row_index))
                position = (item.table_index, item.range_index)
            batch.append(item.row)
            splits[-1].row_count += 1
            count += 1
            if len(batch) >= ROWS_PER_WRITE_BATCH:
                flush()
                check_stop()
        flush()
    finally:
        if stream is not None:
            stream.close()
    return splits


# --------------------------------------------------------------------------------- output


def _routed_rows(
    entries: Iterable[Row | yson.YsonEntity], first_table: int, table_count: int, fd: int
) -> Iterator[tuple[int, Row]]:
    table = first_table
    for entry in entries:
        if isinstance(entry, yson.YsonEntity):
            index = entry.attributes.get("table_index")
            if index is None:
                continue  # other control attributes carry nothing for the output
            if isinstance(index, bool) or not isinstance(index, int):
                raise FormatError(f"Table index must be an integer, got {index!r} (fd {fd})")
            if not 0 <= index < table_count:
                raise FormatError(
                    f"Invalid table index {index}: the job has {table_count} output table(s)",
                    table_index=int(index),
                    fd=fd,
                )
            table = int(index)
            continue
        yield table, entry


def route_job_output(
    output_format: Any,
    fd_files: Sequence[Path],
    fds: Sequence[int],
    prefix: Path,
) -> tuple[list[Path], list[int]]:
    """Parse each descriptor's output (``fd_files[i]`` was fd ``fds[i]``, table ``i``) and store
    the rows per output table (``<prefix>.table<N>``, in :data:`ROUTED_FORMAT`); returns the
    files and the row count of each table. Raises :class:`FormatError` (and leaves no file
    behind) if any stream is malformed."""
    table_count = len(fd_files)
    counts = [0] * table_count
    targets = [prefix.with_name(f"{prefix.name}.table{index}") for index in range(table_count)]
    with contextlib.ExitStack() as stack:
        outputs = [stack.enter_context(open(path, "wb")) for path in targets]
        try:
            for index, (source, fd) in enumerate(zip(fd_files, fds, strict=True)):
                batches: list[list[Row]] = [[] for _ in range(table_count)]
                with open(source, "rb") as stream:
                    entries = output_format.for_stream(index).load_entries(stream)
                    for table, row in _routed_rows(entries, index, table_count, fd):
                        batch = batches[table]
                        batch.append(row)
                        counts[table] += 1
                        if len(batch) >= ROWS_PER_WRITE_BATCH:
                            ROUTED_FORMAT.dump_rows(batch, outputs[table])
                            batch.clear()
                for table, batch in enumerate(batches):
                    if batch:
                        ROUTED_FORMAT.dump_rows(batch, outputs[table])
        except BaseException:
            stack.close()
            for path in targets:
                path.unlink(missing_ok=True)
            raise
    return targets, counts
