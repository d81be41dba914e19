"""Publishing and describing YT static tables: the YT half of the IO manager, with no Dagster in it.

Every publication is atomic: inside one master transaction a temporary table is created next to the
target with the declared schema, the rows are streamed into it, and it is moved over the target with
``force=True``. Readers see the old table or the new one, never a missing or half-written table; a
failed or killed writer leaves the old table untouched (the transaction is aborted, or expires).

Usage::

    schema = yt_schema([ColumnSpec("bucket", "string", required=True), ColumnSpec("path", "string", required=True)])
    table = publish_rows(client, "//home/project/listing", rows, schema)
    print(table.row_count)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yt.type_info as ti
import yt.wrapper as yt
import yt.yson as yson
from yt.wrapper.schema import ColumnSchema, TableSchema

Row = dict[str, Any]

PREVIEW_ROWS = 5
TRANSACTION_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class ColumnSpec:
    """A column of a declared table schema: a YT type name (``string``, ``uint64``, ``timestamp``...).

    ``type`` may also be a YSON ``type_v3`` expression such as ``{type_name=list;item=string}``.
    """

    name: str
    type: str
    required: bool = False
    description: str = ""
    sort_order: str | None = None  # "ascending": a key column (key columns come first)


@dataclass(frozen=True)
class YTTable:
    """A YT static table handed between assets: its path, schema and row count.

    Example::

        @dg.asset
        def row_total(s3_listing: YTTable) -> int:
            return s3_listing.row_count
    """

    path: str
    schema: TableSchema | None = None
    row_count: int = 0
    data_size: int = 0
    preview: list[Row] = field(default_factory=list)


class YTTableRows(Iterable[Row]):
    """The rows of YT tables, read lazily each time it is iterated (it never holds the rows).

    Annotate a downstream asset's input with it to receive rows instead of a :class:`YTTable`::

        @dg.asset
        def total_size(s3_listing: YTTableRows) -> int:
            return sum(row["size"] for row in s3_listing)
    """

    def __init__(self, paths: Sequence[str], open_rows: Callable[[Sequence[str]], Iterator[Row]]):
        self.paths = list(paths)
        self._open_rows = open_rows

    def __iter__(self) -> Iterator[Row]:
        return self._open_rows(self.paths)

    def __repr__(self) -> str:
        return f"YTTableRows({', '.join(self.paths)})"


def yt_schema(columns: Sequence[ColumnSpec], *, strict: bool = True) -> TableSchema:
    """The YT ``TableSchema`` of declared columns; a required column is non-optional."""
    schema = TableSchema(strict=strict)
    for column in columns:
        try:
            column_type = _parse_column_type(column.type)
        except ValueError as error:
            raise ValueError(
                f"Column {column.name!r}: {column.type!r} is not a YT type (e.g. string, uint64, "
                f"timestamp, or a type_v3 YSON expression): {error}"
            ) from error
        schema.columns.append(
            ColumnSchema(
                column.name,
                column_type if column.required else ti.Optional[column_type],
                sort_order=column.sort_order,  # type: ignore[arg-type]
            )
        )
    return schema


def column_specs(schema: TableSchema) -> list[ColumnSpec]:
    """Inverse of :func:`yt_schema`: the declared columns of a YT ``TableSchema``."""
    specs = []
    for column in schema.columns:
        required = getattr(column.type, "name", "") != "Optional"
        inner = column.type if required else column.type.item
        type_text = yson.dumps(yson.loads(ti.serialize_yson(inner)), yson_format="text").decode()
        specs.append(
            ColumnSpec(
                column.name, type_text.strip('"'), required=required, sort_order=column.sort_order
            )
        )
    return specs


def _parse_column_type(text: str) -> Any:
    """A type_v3 name or expression (``bool``, ``{type_name=list;item=string}``), or a v1 name
    (``boolean``, ``any``)."""
    try:
        return ti.deserialize_yson(text)
    except ValueError:
        return ti.deserialize_yson_v1(f'"{text}"', True)


def temporary_sibling(path: str) -> str:
    """A unique path next to ``path`` for a table being written, invisible outside its transaction."""
    return f"{path}.tmp-{uuid.uuid4().hex[:12]}"


def parent_of(path: str) -> str:
    parent, _, _ = path.rpartition("/")
    return parent if parent not in ("", "/") else "/"


def publish_rows(
    client: yt.YtClient, path: str, rows: Iterable[Row], schema: TableSchema
) -> YTTable:
    """Atomically replace the table at ``path`` with ``rows`` (streamed, never collected)."""
    with client.Transaction(timeout=TRANSACTION_TIMEOUT_MS):
        _ensure_parent(client, path)
        temporary = temporary_sibling(path)
        client.create("table", temporary, attributes={"schema": schema.to_yson_type()})
        client.write_table(yt.TablePath(temporary, append=True), rows, raw=False)
        client.move(temporary, path, force=True)
    return describe_table(client, path)


def publish_table(client: yt.YtClient, source: str, path: str) -> YTTable:
    """Atomically move a table written elsewhere (e.g. by an operation) over ``path``."""
    with client.Transaction(timeout=TRANSACTION_TIMEOUT_MS):
        _ensure_parent(client, path)
        client.move(source, path, force=True)
    return describe_table(client, path)


def _ensure_parent(client: yt.YtClient, path: str) -> None:
    parent = parent_of(path)
    if parent != "/" and not client.exists(parent):
        client.create("map_node", parent, recursive=True, ignore_existing=True)


def describe_table(client: yt.YtClient, path: str, preview_rows: int = PREVIEW_ROWS) -> YTTable:
    """Path, schema, row count, data size and the first rows of an existing table."""
    attributes = client.get(
        f"{path}/@", attributes=["schema", "row_count", "uncompressed_data_size"]
    )
    schema = TableSchema.from_yson_type(attributes["schema"])
    row_count = int(attributes.get("row_count", 0))
    preview = list(read_rows(client, path, end=min(preview_rows, row_count))) if row_count else []
    return YTTable(
        path=path,
        schema=schema,
        row_count=row_count,
        data_size=int(attributes.get("uncompressed_data_size", 0)),
        preview=preview,
    )


def read_rows(
    client: yt.YtClient, path: str, *, start: int | None = None, end: int | None = None
) -> Iterator[Row]:
    """Rows of a table, streamed; ``start``/``end`` select a row range."""
    table_path = yt.TablePath(path, start_index=start, end_index=end)
    yield from client.read_table(table_path, raw=False)


def markdown_preview(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """The rows as a markdown table (values shortened), for Dagster metadata."""
    if not rows:
        return "_(empty table)_"
    names = list(columns) if columns else list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(name)) for name in names) + " |")
    return "\n".join(lines)


def _cell(value: Any, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count_non_empty(client: yt.YtClient, path: str, column: str) -> int:
    """Rows whose ``column`` is neither null nor empty, reading only that column."""
    table_path = yt.TablePath(path, columns=[column])
    return sum(1 for row in client.read_table(table_path, raw=False) if row.get(column))
