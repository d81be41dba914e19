"""Write a YT table's rows to S3 as JSON Lines, inside a YT map job (ships to the nodes).

Imports the standard library, boto3/botocore (through :mod:`yt_assets.s3`) and the job's own
modules only. :class:`TableExportMapper` is an aggregator: each job streams its rows into
objects ``<prefix>part-<job>-<n>.jsonl`` (``.jsonl.gz`` with ``compression="gzip"``), a new object
every ``rows_per_object`` rows (``None``: one object per job), each a multipart upload above
``part_size`` so memory stays about one part. It yields one manifest row per object written:
:data:`EXPORT_COLUMN_NAMES` (``key``, ``rows``, ``size``, ``etag``). The upload keys come from
the secure vault (:class:`~yt_assets.yt_jobs.s3_processing.S3Credentials`, role ``upload``).

Values become JSON as YT gives them to the job: strings (bytes that are not UTF-8 with
``\\xNN`` escapes), numbers, booleans, ``null``, lists and maps; YT timestamps are integers
(microseconds). Example of one line: ``{"bucket": "b", "path": "a.json", "size": 12}``.

The driver (the export asset) writes ``_SUCCESS`` after the operation, and removes objects of an
earlier export that the manifest no longer names.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from yt_assets.s3.client import DEFAULT_REGION
from yt_assets.s3.retries import RetryCounter, RetryPolicy
from yt_assets.s3.uploads import DEFAULT_PART_SIZE, ObjectWriter, S3Destination

from .s3_processing import S3Credentials
from .user_statistics import JobStatistics

__all__ = [
    "EXPORT_COLUMN_NAMES",
    "STAT_OBJECTS_EXPORTED",
    "STAT_ROWS_EXPORTED",
    "Compression",
    "TableExportMapper",
    "json_line",
    "object_name",
]

Compression = Literal["none", "gzip"]
EXPORT_COLUMN_NAMES = ("key", "rows", "size", "etag")
STAT_ROWS_EXPORTED = "s3/rows_exported"
STAT_OBJECTS_EXPORTED = "s3/objects_exported"


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if type(value).__name__ == "YsonEntity":  # YSON's null, without importing yt.yson
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_line(row: Mapping[str, Any]) -> bytes:
    """One JSON Lines record of a row (keys as given, UTF-8, no ASCII escaping).

    Example::

        assert json_line({"a": 1, "b": b"x"}) == b'{"a": 1, "b": "x"}\\n'
    """
    return (json.dumps(dict(row), ensure_ascii=False, default=_json_value) + "\n").encode()


def object_name(job: str, number: int, compression: Compression) -> str:
    """``part-<job>-<number>.jsonl`` (``.gz`` added for gzip); the same job and number give the
    same name on a rerun.

    Example::

        assert object_name("00003", 1, "gzip") == "part-00003-00001.jsonl.gz"
    """
    suffix = ".jsonl.gz" if compression == "gzip" else ".jsonl"
    return f"part-{job}-{number:05d}{suffix}"


def _job_name(environ: Mapping[str, str]) -> str:
    index = environ.get("YT_JOB_INDEX")
    if index is not None and index.isdigit():
        return f"{int(index):05d}"
    return environ.get("YT_JOB_ID", "0").replace("-", "")


class _ExportObject:
    """One object being written: its rows, its writer (through gzip when asked)."""

    def __init__(self, writer: ObjectWriter, compression: Compression) -> None:
        self.writer = writer
        self.rows = 0
        self._gzip = (
            gzip.GzipFile(fileobj=writer, mode="wb", mtime=0) if compression == "gzip" else None
        )

    def write(self, row: Mapping[str, Any]) -> None:
        (self._gzip or self.writer).write(json_line(row))
        self.rows += 1

    def finish(self) -> dict[str, Any]:
        if self._gzip is not None:
            self._gzip.close()  # writes the gzip trailer into the writer
        written = self.writer.close()
        return {"key": written.key, "rows": self.rows, "size": written.size, "etag": written.etag}


@dataclass(frozen=True)
class TableExportMapper:
    """A ``yt.wrapper`` aggregator writing its rows to ``destination`` (module docstring).

    Example::

        mapper = TableExportMapper(S3Destination("my-bucket", "exports/t/"), endpoint_url=url)
        # run_map(mapper, table, manifest_table, spec={"secure_vault": upload_keys.secure_vault("upload")})
    """

    destination: S3Destination
    endpoint_url: str | None = None
    region_name: str | None = DEFAULT_REGION
    addressing_style: str | None = None
    rows_per_object: int | None = None
    compression: Compression = "none"
    part_size: int = DEFAULT_PART_SIZE
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    attributes: ClassVar[dict[str, bool]] = {"is_aggregator": True}

    def __post_init__(self) -> None:
        if self.rows_per_object is not None and self.rows_per_object < 1:
            raise ValueError(f"rows_per_object must be >= 1, got {self.rows_per_object}")
        if self.compression not in ("none", "gzip"):
            raise ValueError(f"compression must be 'none' or 'gzip', got {self.compression!r}")

    def __call__(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        credentials = S3Credentials.from_secure_vault(os.environ, role="upload")
        client = credentials.client(
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            addressing_style=self.addressing_style,
            max_attempts=0,  # the writer retries each request itself
        )
        counter = RetryCounter()
        statistics = JobStatistics()
        statistics.add(STAT_ROWS_EXPORTED, 0)
        statistics.add(STAT_OBJECTS_EXPORTED, 0)
        job = _job_name(os.environ)
        redact = (credentials.access_key, credentials.secret_key)
        current: _ExportObject | None = None
        number = 0
        try:
            for row in rows:
                if current is None:
                    number += 1
                    writer = ObjectWriter(
                        client,
                        self.destination.bucket,
                        self.destination.key(object_name(job, number, self.compression)),
                        part_size=self.part_size,
                        content_type="application/x-ndjson",
                        retry=self.retry,
                        counter=counter,
                        redact=redact,
                    )
                    current = _ExportObject(writer, self.compression)
                current.write(row)
                if self.rows_per_object is not None and current.rows >= self.rows_per_object:
                    yield self._finished(current, statistics)
                    current = None
            if current is not None:
                yield self._finished(current, statistics)
                current = None
        finally:
            if current is not None:  # failed mid-object: no incomplete upload stays behind
                current.writer.abort()
            print(
                f"s3_export: {number} objects started, {counter.summary()}",
                file=sys.stderr,
            )
            statistics.flush()

    @staticmethod
    def _finished(current: _ExportObject, statistics: JobStatistics) -> dict[str, Any]:
        try:
            manifest_row = current.finish()
        except BaseException:
            current.writer.abort()
            raise
        statistics.add(STAT_ROWS_EXPORTED, manifest_row["rows"])
        statistics.add(STAT_OBJECTS_EXPORTED, 1)
        return manifest_row
