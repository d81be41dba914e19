"""Python job functions of the fidelity tests, in a module of their own (no pytest, no Dagster)
so that they can be shipped with an operation to the local YT's bare job interpreter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yt.wrapper as yt


def fanout(row: dict[str, Any]) -> Iterator[Any]:
    """The row to each of three output tables, through table switches."""
    for index in range(3):
        yield yt.create_table_switch(index)
        yield {"n": row["n"], "table": index}


@yt.with_context
def where_from(row: dict[str, Any], context: Any) -> Iterator[dict[str, Any]]:
    """The row with the table, row and range index the job's context reports for it."""
    yield {
        "n": row["n"],
        "table_index": context.table_index,
        "row_index": context.row_index,
        "range_index": context.range_index,
    }


def double(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield {"x": row["x"] * 2}


def count_by_key(key: dict[str, Any], rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A reducer: one row per ``k`` group with the group's row count."""
    yield {"k": key["k"], "n": sum(1 for _ in rows)}


@yt.yt_dataclass
class Place:
    lat: float
    lon: float


@yt.yt_dataclass
class Measurement:
    """An input row of the typed-job tests (composite columns: a list and a struct)."""

    sensor: str
    values: list[int]
    location: Place | None


@yt.yt_dataclass
class Summary:
    """What :class:`Summarize` writes: one row per input row."""

    sensor: str
    total: int
    count: int
    place: Place | None


class Summarize(yt.TypedJob):
    """A ``TypedJob`` over :class:`Measurement` rows of any number of input tables (skiff in and
    out): sums each row's values; a row with values goes to output 0, one without to output 1."""

    def prepare_operation(self, context: Any, preparer: Any) -> None:
        preparer.inputs(range(context.get_input_count()), type=Measurement).outputs(
            [0, 1], type=Summary
        )

    def __call__(self, row: Measurement) -> Iterator[Any]:
        summary = Summary(
            sensor=row.sensor, total=sum(row.values), count=len(row.values), place=row.location
        )
        yield yt.schema.OutputRow(summary, table_index=0 if row.values else 1)
