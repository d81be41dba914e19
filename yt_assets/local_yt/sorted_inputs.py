"""Key columns of sorted operations (``sort_by``, ``reduce_by``, ``join_by``, ``merge_by``), the
sortedness checks YT makes on their inputs, and reading several sorted tables as one stream.

Usage::

    columns = key_columns({"sort_by": ["a", "b"]}, "sort_by")       # ["a", "b"]
    check_sorted_input("//tmp/t", ["a", "b"], ["a"])                 # passes: a prefix
    check_sorted_input("//tmp/t", [], ["a"])                         # GenericError: not sorted
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .exceptions import GenericError
from .interfaces import Row
from .job_io import InputRow, input_rows
from .operation_state import _as_int
from .tables import make_key_function


def key_columns(spec: Mapping[str, Any], name: str, *, required: bool = True) -> list[str]:
    """The column names of a key spec field (strings, or ``{name; sort_order}`` maps)."""
    value = spec.get(name)
    if value is None or value == []:
        if required:
            raise GenericError(f"Spec field {name!r} is required and must be non-empty")
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    columns = []
    for item in value:
        if isinstance(item, Mapping):
            if str(item.get("sort_order", "ascending")) != "ascending":
                raise GenericError(
                    "Descending sort order is not supported by the local YT", column=item
                )
            item = item.get("name")
        columns.append(item.decode() if isinstance(item, bytes) else str(item))
    if len(set(columns)) != len(columns):
        raise GenericError(f"Duplicate column in {name!r}: {columns}")
    return columns


def check_key_prefix(prefix: Sequence[str], columns: Sequence[str], what: str) -> None:
    """``prefix`` (e.g. ``reduce_by``) must start ``columns`` (e.g. ``sort_by``), as YT requires."""
    if list(columns[: len(prefix)]) != list(prefix):
        raise GenericError(
            f"{what} columns {list(prefix)} are not compatible with sort columns {list(columns)}"
        )


def check_sorted_input(path: str, sorted_by: Sequence[str], columns: Sequence[str]) -> None:
    """An input of a reduce (or a sorted merge) must be sorted by ``columns`` (or finer)."""
    if not sorted_by:
        raise GenericError(f"Input table {path} is not sorted", path=path)
    if list(sorted_by[: len(columns)]) != list(columns):
        raise GenericError(
            f"Input table {path} is sorted by columns {list(sorted_by)} that are not compatible "
            f"with the requested columns {list(columns)}",
            path=path,
        )


def merge_sorted(
    streams: Sequence[Iterator[InputRow]],
    columns: Sequence[str],
    *,
    foreign: frozenset[int] = frozenset(),
    join_by: Sequence[str] = (),
) -> Iterator[InputRow]:
    """One stream of sorted inputs ordered by ``columns``, equal keys in table order; with
    ``foreign`` tables, ordered by ``join_by`` first and foreign rows first within a join key."""
    key = make_key_function(list(columns))
    if not foreign:
        return heapq.merge(*streams, key=lambda item: key(item.row))
    join_key = make_key_function(list(join_by))
    return heapq.merge(
        *streams,
        key=lambda item: (
            join_key(item.row),
            item.table_index not in foreign,
            () if item.table_index in foreign else key(item.row),
        ),
    )


def join_foreign(
    items: Iterator[InputRow], foreign: frozenset[int], join_by: Sequence[str]
) -> Iterator[InputRow]:
    """Keep the foreign rows (tables in ``foreign``) whose ``join_by`` key some primary row has;
    ``items`` come ordered by that key with foreign rows first within a key."""
    key = make_key_function(list(join_by))
    pending: list[InputRow] = []
    pending_key: Any = None
    for item in items:
        current = key(item.row)
        if item.table_index in foreign:
            if current != pending_key:
                pending, pending_key = [], current
            pending.append(item)
            continue
        if pending and current == pending_key:
            yield from pending
        pending = []
        yield item


def table_streams(
    read_ranges: Callable[[Any], list[tuple[int, Iterator[Row]]]], paths: Sequence[Any]
) -> list[Iterator[InputRow]]:
    """One stream of :class:`~.job_io.InputRow` per input path, with its table index."""
    return [_with_table_index(input_rows(read_ranges, [p]), i) for i, p in enumerate(paths)]


def _with_table_index(items: Iterator[InputRow], table_index: int) -> Iterator[InputRow]:
    for item in items:
        yield replace(item, table_index=table_index)


def validate_reduce_spec(operation_type: str, spec: Mapping[str, Any]) -> None:
    """What ``start_operation`` checks for the reduce family (sortedness is checked later)."""
    if not isinstance(spec.get("reducer"), Mapping) or not spec["reducer"].get("command"):
        raise GenericError(f"{operation_type} spec needs 'reducer' with a 'command'")
    if not spec.get("input_table_paths"):
        raise GenericError(f"{operation_type} spec needs 'input_table_paths'")
    if operation_type == "join_reduce":
        key_columns(spec, "join_by")
    else:
        reduce_by = key_columns(spec, "reduce_by")
        check_key_prefix(
            reduce_by, key_columns(spec, "sort_by", required=False) or reduce_by, "Reduce"
        )
    if operation_type == "map_reduce":
        count = _as_int(spec.get("mapper_output_table_count", 0), "mapper_output_table_count")
        if not 0 <= count < len(spec.get("output_table_paths") or []) + 1:
            raise GenericError("mapper_output_table_count exceeds the output table count")
