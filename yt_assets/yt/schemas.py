"""Table schemas: one representation (:class:`ColumnSpec` tuples), its converter to and from a
YT ``TableSchema`` (:func:`yt_schema`, :func:`column_specs`), the product's tables, and the
shaping of their rows (no Dagster; the Dagster ``TableSchema`` converter is in
:mod:`yt_assets.io_manager`).

Example::

    schema = yt_schema(LISTING_COLUMNS)
    assert [column.name for column in schema.columns][:2] == ["bucket", "path"]
    assert column_specs(schema)[0] == ColumnSpec("bucket", "string", True, "", "ascending")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yt.type_info as ti
import yt.yson as yson
from yt.wrapper.schema import ColumnSchema, TableSchema

from yt_assets.s3.pages import S3Object


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


LISTING_COLUMNS: tuple[ColumnSpec, ...] = (
    # Sorted by (bucket, path): S3 lists keys in UTF-8 byte order, YT sorts strings by bytes.
    ColumnSpec("bucket", "string", required=True, description="S3 bucket", sort_order="ascending"),
    ColumnSpec(
        "path",
        "string",
        required=True,
        description="Object key (not an s3:// URL)",
        sort_order="ascending",
    ),
    ColumnSpec("size", "uint64", description="Object size in bytes"),
    ColumnSpec("etag", "string", description="ETag without quotes"),
    ColumnSpec("last_modified", "timestamp", description="Last modification time (UTC)"),
)

"""The listing tables (``s3_listing`` and its partitioned twins)."""

LISTING_RANGE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bucket", "string", required=True, description="S3 bucket"),
    ColumnSpec("prefix", "string", required=True, description="Key prefix listed"),
    ColumnSpec("low", "string", description="Keys after this one (null: from the first)"),
    ColumnSpec("high", "string", description="Keys before this one (null: to the last)"),
)
"""The input of a listing operation: one key range per row
(:func:`yt_assets.yt_jobs.s3_listing.range_rows`)."""

PROCESSED_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bucket", "string", required=True, description="S3 bucket"),
    ColumnSpec("path", "string", required=True, description="Object key"),
    ColumnSpec("size", "int64", description="Bytes read"),
    ColumnSpec("sha256", "string", description="SHA-256, hex"),
    ColumnSpec("lines", "int64", description="Newlines (wc -l)"),
    ColumnSpec("records", "int64", description="JSON records (JSON keys only)"),
    ColumnSpec("parse_errors", "int64", description="Unparsable JSON lines (JSON keys only)"),
    ColumnSpec(
        "error", "string", description="Why the object could not be processed; null on success"
    ),
)
"""The processed tables: the rows of :func:`yt_assets.yt_jobs.s3_processing.process_object`."""

PATHS_TABLE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bucket", "string", required=True),
    ColumnSpec("path", "string", required=True),
)
"""The table written by :func:`yt_assets.yt.tables.save_s3_paths_to_table` (strict)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_microseconds(moment: datetime) -> int:
    """A YT ``timestamp`` (microseconds since the Unix epoch) of an aware or UTC-naive datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def listing_row(bucket: str, obj: S3Object) -> dict[str, Any]:
    """The listing table row of one S3 object."""
    return {
        "bucket": bucket,
        "path": obj.key,
        "size": obj.size,
        "etag": obj.etag,
        "last_modified": timestamp_microseconds(obj.last_modified),
    }


WRITTEN_OBJECT_TYPE = (
    "{type_name=struct;members=["
    "{name=key;type=string};{name=size;type=int64};{name=etag;type=string}]}"
)
"""One object a processor wrote, as YT ``type_v3``: ``struct<key: string, size: int64, etag: string>``."""

WRITTEN_COLUMN = ColumnSpec(
    "written",
    f"{{type_name=list;item={WRITTEN_OBJECT_TYPE}}}",
    description="Objects the processor wrote: a list of {key, size, etag}; null on an error",
)
"""The column a processing asset that writes to S3 adds to its table."""

EXPORT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("key", "string", required=True, description="Object key"),
    ColumnSpec("rows", "int64", description="Table rows in the object"),
    ColumnSpec("size", "int64", description="Object size in bytes"),
    ColumnSpec("etag", "string", description="ETag without quotes"),
)
"""The manifest of an export: one row per object written
(:data:`yt_assets.yt_jobs.s3_export.EXPORT_COLUMN_NAMES`)."""
