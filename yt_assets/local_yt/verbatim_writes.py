"""A YSON table write kept as it came: the request body's bytes (or a map's routed job
outputs, :class:`~.operation_state.FilesInTurn`) become the table's chunk.

YT checks every row it is given. The plain write path parses each row into a ``dict``, checks
it and dumps it again as binary YSON; per row that costs more CPU than anything else the local
YT does on a write. For a YSON body into a table whose schema has no composite columns, no row
changes on the way (a key decoded as UTF-8 is the same YSON string), so the chunk can be the
body itself: :func:`copy_yson_rows` parses the rows once, checks them a batch at a time
(:func:`~.tables.make_batch_check`, :meth:`~.tables.SortedWriteChecker.check_run`) and copies
the bytes to the chunk as the parser reads them. A chunk reads back the same in text or binary
YSON.

A batch the quick checks can't vouch for goes row by row through the validator every write
uses, so a bad row fails with the same error. A control row or a row carrying attributes
(both dropped by a write) means the copy is not what the table holds: the result says so and
the caller rewrites the chunk from the copy.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from .formats import entry_as_row, parsed_yson_entries
from .interfaces import Row
from .tables import SortedWriteChecker
from .values import is_control_row

BATCH_ROWS = 1024
"""Rows checked at once (a batch is held in memory: about a hundred kilobytes of listing rows)."""


@dataclass(frozen=True)
class CopiedRows:
    """What :func:`copy_yson_rows` wrote: ``rows`` rows; ``exact`` is false when the copy also
    holds control rows or rows' own attributes, which the table must not."""

    rows: int
    exact: bool


class _CopyingReader:
    """A stream whose reads are also written to ``copy``."""

    def __init__(self, source: BinaryIO, copy: BinaryIO) -> None:
        self._source = source
        self._copy = copy

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._copy.write(data)
        return data


def _batches(items: Iterator[Any]) -> Iterator[list[Any]]:
    while batch := list(itertools.islice(items, BATCH_ROWS)):
        yield batch


def copy_yson_rows(
    stream: BinaryIO,
    copy: BinaryIO,
    *,
    check_batch: Callable[[list[Any]], bool],
    validate: Callable[[Row], Row],
    checker: SortedWriteChecker | None,
) -> CopiedRows:
    """Copy the YSON list fragment ``stream`` to ``copy`` byte for byte while checking its rows
    as a write does (``validate`` from :func:`~.tables.make_row_validator`, ``check_batch`` from
    :func:`~.tables.make_batch_check` of the same schema, ``checker`` for a sorted table);
    raises the write's error at the first bad row."""
    entries = parsed_yson_entries(_CopyingReader(stream, copy))  # type: ignore[arg-type]
    key_getters = (
        [operator.methodcaller("get", name.encode("utf-8")) for name in checker.sort_columns]
        if checker is not None
        else []
    )
    count = 0
    exact = True
    for batch in _batches(entries):
        if check_batch(batch):
            count += len(batch)
            if checker is not None and not checker.check_run(
                [list(map(get, batch)) for get in key_getters],
                _str_keyed(batch[0]),
                _str_keyed(batch[-1]),
            ):
                for entry in batch:
                    checker.check(_str_keyed(entry))
            continue
        for entry in batch:
            row = entry_as_row(entry)
            if is_control_row(row):
                exact = False
                continue
            if type(entry) is not dict:
                exact = False
            row = validate(row)
            if checker is not None:
                checker.check(row)
            count += 1
    return CopiedRows(rows=count, exact=exact)


def _str_keyed(entry: dict[bytes, Any]) -> Row:
    return {key.decode("utf-8"): value for key, value in entry.items()}
