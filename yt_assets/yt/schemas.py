"""Table schemas of the product's assets and the shaping of their rows (pure, no Dagster).

Usage::

    rows = (listing_row("my-bucket", obj) for obj in iter_s3_objects(client, "my-bucket", "data/"))
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from yt_assets.s3.listing import S3Object
from yt_assets.yt.tables import ColumnSpec
from yt_assets.yt_jobs.s3_processing import PROCESSED_COLUMNS

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

PROCESSING_COLUMNS: tuple[ColumnSpec, ...] = tuple(
    ColumnSpec(
        c["name"], c["type"], required=bool(c.get("required")), description=c.get("description", "")
    )
    for c in PROCESSED_COLUMNS
)

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
