"""Splitting an operation's input into contiguous job inputs, written in the job's input format."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .formats import make_control_row
from .interfaces import Row, RowFormat
from .operation_state import (
    ROWS_PER_WRITE_BATCH,
    InputSplit,
)


def even_split(total: int, parts: int) -> list[int]:
    """``total`` rows in ``parts`` contiguous chunks whose sizes differ by at most one."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


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
