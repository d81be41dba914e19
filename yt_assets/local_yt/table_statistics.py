"""``get_table_columnar_statistics`` and ``partition_tables``: what a client learns about tables
before splitting work over them.

- Columnar statistics of a path with a column selector (``//t{a,b}``): per column the data weight
  (a string's length, 8 for numbers, 1 for a boolean, 0 for null, the binary YSON size of a composite
  value), the non-null count, and min/max when the column's values are of one comparable type;
  computed by reading the selected rows.
- ``partition_tables`` in ``ordered``/``unordered`` mode cuts the concatenation of the inputs into
  consecutive row slices of about ``data_weight_per_partition`` (a table's average row weight times
  rows); each partition lists every input (``ranges=[]`` for one it does not touch), so its
  ``table_ranges`` keep the input table indexes. ``sorted`` mode and ``enable_cookies`` are refused
  with an error naming them.

Usage::

    client.get_table_columnar_statistics(["//tmp/t{a,b}"])    # [{"column_data_weights": {...}}]
    client.partition_tables(["//tmp/t"], data_weight_per_partition=1 << 20)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yt.yson

from .exceptions import GenericError
from .ypath import parse_rich_path

_NUMBER_WEIGHT = 8


def value_weight(value: Any) -> int:
    """YT's data weight of one value."""
    if value is None or isinstance(value, yt.yson.YsonEntity):
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return _NUMBER_WEIGHT
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return len(value)
    return len(yt.yson.dumps(value, yson_format="binary"))


def _comparable_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (str, bytes)):
        return "string"
    return None


def columnar_statistics(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> dict[str, Any]:
    """The ``get_table_columnar_statistics`` entry of one path's rows."""
    weights = dict.fromkeys(columns, 0)
    non_null = dict.fromkeys(columns, 0)
    minimums: dict[str, Any] = {}
    maximums: dict[str, Any] = {}
    kinds: dict[str, str | None] = {}
    row_count = 0
    for row in rows:
        row_count += 1
        for column in columns:
            value = row.get(column)
            weights[column] += value_weight(value)
            if value is None or isinstance(value, yt.yson.YsonEntity):
                continue
            non_null[column] += 1
            kind = _comparable_kind(value)
            if kinds.setdefault(column, kind) != kind or kind is None:
                kinds[column] = None
                continue
            minimums[column] = value if column not in minimums else min(minimums[column], value)
            maximums[column] = value if column not in maximums else max(maximums[column], value)
    comparable = [column for column in columns if kinds.get(column) is not None]
    return {
        "column_data_weights": weights,
        "column_non_null_value_counts": non_null,
        "column_min_values": {column: minimums[column] for column in comparable},
        "column_max_values": {column: maximums[column] for column in comparable},
        "chunk_row_count": row_count,
        "legacy_chunk_row_count": 0,
        "legacy_chunks_data_weight": 0,
    }


def get_table_columnar_statistics(
    cluster: Any, paths: list[Any], transaction_id: str | None
) -> list[dict[str, Any]]:
    result = []
    for path in paths:
        rich = parse_rich_path(path)
        if rich.columns is None:
            raise GenericError(
                f"Columnar statistics need a column selector in the path {rich.path} "
                "(e.g. //t{a,b})",
                path=rich.path,
            )
        _start, rows = cluster.read_table(rich, transaction_id=transaction_id)
        result.append(columnar_statistics(rows, rich.columns))
    return result


def _with_ranges(path: Any, ranges: list[tuple[int, int]]) -> Any:
    rich = parse_rich_path(path)
    attributes = {
        k: v
        for k, v in rich.attributes.items()
        if k not in ("ranges", "lower_limit", "upper_limit", "exact")
    }
    attributes["ranges"] = [
        {"lower_limit": {"row_index": lower}, "upper_limit": {"row_index": upper}}
        for lower, upper in ranges
    ]
    return yt.yson.to_yson_type(rich.path, attributes=attributes)


def partition_tables(
    cluster: Any,
    paths: list[Any],
    *,
    partition_mode: str,
    data_weight_per_partition: int,
    max_partition_count: int | None,
    adjust_data_weight_per_partition: bool,
    enable_cookies: bool,
    transaction_id: str | None,
) -> dict[str, Any]:
    """The ``partition_tables`` response (see the module docstring)."""
    if partition_mode not in ("ordered", "unordered"):
        raise GenericError(
            f'Partition mode "{partition_mode}" is not supported by the local YT',
            mode=partition_mode,
        )
    if enable_cookies:
        raise GenericError(
            "Partition cookies (read_table_partition) are not supported by the local YT"
        )
    if data_weight_per_partition <= 0:
        raise GenericError("data_weight_per_partition must be positive")
    # (table index, lower, upper, average row weight) of every input range.
    pieces: list[tuple[int, int, int, float]] = []
    for index, path in enumerate(paths):
        attributes = cluster.get(
            parse_rich_path(path).path + "/@", attributes=None, transaction_id=transaction_id
        )
        rows = int(attributes.get("row_count", 0))
        average = max(float(attributes.get("data_weight", 0)) / rows, 1.0) if rows else 1.0
        for lower, upper in cluster.range_bounds(path, transaction_id=transaction_id):
            if upper > lower:
                pieces.append((index, lower, upper, average))
    total = sum((upper - lower) * average for _index, lower, upper, average in pieces)
    weight = float(data_weight_per_partition)
    if max_partition_count is not None and total / weight > max_partition_count:
        if not adjust_data_weight_per_partition:
            raise GenericError(
                f"Maximum partition count exceeded: {max_partition_count}",
                max_partition_count=max_partition_count,
            )
        weight = total / max(max_partition_count, 1)
    partitions = _cut(paths, pieces, weight)
    while max_partition_count is not None and len(partitions) > max(max_partition_count, 1):
        weight *= 1.25  # whole rows and table ends make slices a little smaller than the weight
        partitions = _cut(paths, pieces, weight)
    return {"partitions": partitions}


def _cut(
    paths: list[Any], pieces: list[tuple[int, int, int, float]], weight: float
) -> list[dict[str, Any]]:
    """Consecutive slices of about ``weight`` over the input ranges ``pieces``."""
    partitions: list[dict[str, Any]] = []
    current: list[list[tuple[int, int]]] = [[] for _ in paths]
    used = 0.0
    rows_in = 0

    def close() -> None:
        nonlocal current, used, rows_in
        if rows_in:
            partitions.append(
                {
                    "table_ranges": [
                        _with_ranges(path, ranges)
                        for path, ranges in zip(paths, current, strict=True)
                    ],
                    "aggregate_statistics": {
                        "row_count": rows_in,
                        "data_weight": int(used),
                        "chunk_count": sum(1 for ranges in current if ranges),
                    },
                }
            )
        current, used, rows_in = [[] for _ in paths], 0.0, 0

    for index, lower, upper, average in pieces:
        while lower < upper:
            fit = max(int((weight - used) // average), 0 if rows_in else 1)
            if fit == 0:
                close()
                continue
            take = min(fit, upper - lower)
            current[index].append((lower, lower + take))
            used += take * average
            rows_in += take
            lower += take
            if used >= weight:
                close()
    close()
    return partitions
