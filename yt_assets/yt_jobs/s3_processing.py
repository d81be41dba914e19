"""Download and process S3 objects inside a YT map job.

This module ships to YT job nodes: it imports only the standard library, boto3, botocore and
the two dependency-free S3 modules :mod:`yt_assets.s3.client` and :mod:`yt_assets.s3.errors`.

The job reads rows ``{bucket, path, ...}`` (``path`` is the object key) and writes one result row
per input row, in input order. :class:`S3ObjectMapper` is the entry point for ``yt.wrapper``; it
reads the download keys from the operation's secure vault at run time (the job sees them as
``YT_SECURE_VAULT_S3_ACCESS_KEY`` / ``YT_SECURE_VAULT_S3_SECRET_KEY``) and carries only
non-secret parameters. ``python -m yt_assets.yt_jobs.s3_processing`` is the same job for a
command operation with ``format="json"``.

Default result (:func:`process_object`, schema :data:`yt_assets.yt.schemas.PROCESSED_COLUMNS`):

- ``size``, ``sha256``: of the bytes read; the object is streamed in 1 MiB chunks.
- ``lines``: ``wc -l`` semantics, the number of ``\\n`` bytes (a last line without a newline is
  not counted; an empty object has 0 lines).
- ``records``, ``parse_errors``: only for ``.json``, ``.jsonl``, ``.ndjson`` keys (any case),
  otherwise null. Every non-empty line (after stripping whitespace) is one JSON document: a line
  that parses is a record, one that doesn't is a parse error; blank lines count as neither. For
  ``.json`` keys, additionally: a file whose only document is a JSON array counts its elements;
  and when the first non-empty line is not valid JSON alone, the whole object (if at most
  ``MAX_JSON_DOCUMENT_BYTES``) is tried as one pretty-printed document (an array counts its
  elements, anything else is 1 record). Lines longer than ``MAX_JSON_DOCUMENT_BYTES`` are parse
  errors and are never held in memory.
- ``error``: null on success; on a permanent failure (missing key, denied access, an archived
  object, an exception in the processor, or a transient fault that outlasted the retry budget) a
  short message naming the S3 error code or exception type, and the attempts made when there was
  more than one (``NoSuchKey (HTTP 404)``, ``NoSuchKey (HTTP 404) after 3 attempts``,
  ``SlowDown (HTTP 503): retry budget exhausted after 10 attempts in 31.0 s``). A JSON object
  none of whose documents parse (a corrupt object) has an ``error`` too; a JSON Lines object with
  only some bad lines does not: ``parse_errors`` counts them.

Transient faults (throttling, 5xx, a body cut short or reset, a read timeout) are retried inside
the job with backoff (:mod:`yt_assets.s3.retries`, bounded attempts and total time), each
attempt reading the object again from its first byte so ``size``/``sha256`` describe one whole
body. The job counts its retries (:class:`~yt_assets.s3.retries.RetryCounter`), reports them in its
user statistics (``s3/download_retries``, ``s3/downloads_gave_up``) and prints them on stderr at
the end.

Writing: a mapper with a ``destination`` (:class:`~yt_assets.s3.uploads.S3Destination`) also reads
the upload keys from the vault (``YT_SECURE_VAULT_S3_UPLOAD_ACCESS_KEY``/``..._SECRET_KEY``; a
read-only mapper never looks for them) and calls its processor with ``sink=``, a fresh
:class:`~yt_assets.s3.uploads.S3Sink` per attempt; each row gets ``written`` (``[{key, size,
etag}]``) and the job reports ``s3/objects_uploaded`` and ``s3/bytes_uploaded``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Literal, Protocol

from yt_assets.s3.client import DEFAULT_REGION, make_s3_client
from yt_assets.s3.errors import describe_s3_error
from yt_assets.s3.retries import (
    RetryBudgetExhausted,
    RetryCounter,
    RetryPolicy,
    call_with_retries,
    is_transient,
)
from yt_assets.s3.uploads import DEFAULT_PART_SIZE, S3Destination, S3Sink, S3UploadError

from .user_statistics import JobStatistics

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_DOWNLOADS_IN_FLIGHT",
    "JSON_EXTENSIONS",
    "MAX_JSON_DOCUMENT_BYTES",
    "SECURE_VAULT_ACCESS_KEY",
    "SECURE_VAULT_KEYS",
    "SECURE_VAULT_SECRET_KEY",
    "JsonRecordCounter",
    "MissingCredentialsError",
    "ObjectProcessor",
    "S3Credentials",
    "S3ObjectError",
    "S3ObjectMapper",
    "process_object",
    "process_rows",
    "write_summary",
]

CHUNK_SIZE = 1 << 20
"""Bytes read from an object body at a time."""

DEFAULT_DOWNLOADS_IN_FLIGHT = 16
"""Downloads in flight per job. Throughput is about ``in_flight / round-trip`` for small
objects: with 20 ms per request, 16 give 9-10x a sequential job (8 give about 7x), and memory
stays about ``in_flight x`` 2 MB whatever the object size (``benchmarks/processing_latency.py``)."""

MAX_JSON_DOCUMENT_BYTES = 16 << 20
"""Longest JSON line (or pretty-printed ``.json`` document) parsed; longer ones are errors."""

JSON_EXTENSIONS = (".json", ".jsonl", ".ndjson")

SECURE_VAULT_ACCESS_KEY = "S3_ACCESS_KEY"
"""Secure vault key of the S3 access key (the job sees ``YT_SECURE_VAULT_S3_ACCESS_KEY``)."""
SECURE_VAULT_SECRET_KEY = "S3_SECRET_KEY"
"""Secure vault key of the S3 secret key (the job sees ``YT_SECURE_VAULT_S3_SECRET_KEY``)."""

Role = Literal["download", "upload"]
SECURE_VAULT_KEYS: dict[str, tuple[str, str]] = {
    "download": (SECURE_VAULT_ACCESS_KEY, SECURE_VAULT_SECRET_KEY),
    "upload": ("S3_UPLOAD_ACCESS_KEY", "S3_UPLOAD_SECRET_KEY"),
}
"""Secure vault keys per role: the upload keys are in a vault only when its asset writes to S3."""

_VAULT_ENV_PREFIX = "YT_SECURE_VAULT_"

OnError = Literal["record", "fail"]

_PROCESSED_RESULT_NAMES = ("size", "sha256", "lines", "records", "parse_errors")


class BodyStream(Protocol):
    def read(self, amt: int | None = ..., /) -> bytes: ...


class ObjectProcessor(Protocol):
    """Turns one object's body into result columns; called as ``processor(body, key=key)``.

    ``body`` has ``read(n)``; read it in chunks, don't hold the whole object. The returned dict
    is merged into the row after ``bucket`` and ``path``. A processor of an asset that writes to
    S3 is also given ``sink=`` (an :class:`~yt_assets.s3.uploads.S3Sink`).
    """

    def __call__(self, body_stream: Any, /, *, key: str) -> Mapping[str, Any]: ...


class MissingCredentialsError(LookupError):
    """A secure vault variable with an S3 key is not set in the job. Names the variable."""


class S3ObjectError(Exception):
    """Processing one object failed (``on_error="fail"``). Names bucket, key and the cause."""

    def __init__(self, bucket: str, key: str, description: str) -> None:
        self.bucket = bucket
        self.key = key
        self.description = description
        super().__init__(f"Processing s3://{bucket}/{key} failed: {description}")


@dataclass(frozen=True)
class S3Credentials:
    """S3 keys inside a job, read from the secure vault; ``repr`` never shows them.

    Example::

        # driver side: spec secure_vault=S3Credentials("AKID", "SECRET").secure_vault()
        vault = {"YT_SECURE_VAULT_S3_ACCESS_KEY": "AKID", "YT_SECURE_VAULT_S3_SECRET_KEY": "SECRET"}
        credentials = S3Credentials.from_secure_vault(vault)  # job side (os.environ by default)
        assert "SECRET" not in repr(credentials)
    """

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    ACCESS_KEY_VARIABLE: ClassVar[str] = _VAULT_ENV_PREFIX + SECURE_VAULT_ACCESS_KEY
    SECRET_KEY_VARIABLE: ClassVar[str] = _VAULT_ENV_PREFIX + SECURE_VAULT_SECRET_KEY

    def __repr__(self) -> str:
        return "S3Credentials(access_key='***', secret_key='***')"

    @classmethod
    def from_secure_vault(
        cls, environ: Mapping[str, str] | None = None, *, role: Role = "download"
    ) -> S3Credentials:
        """Read the keys of ``role`` (download: ``YT_SECURE_VAULT_S3_ACCESS_KEY``/
        ``..._SECRET_KEY``; upload: ``YT_SECURE_VAULT_S3_UPLOAD_...``); errors name the variable."""
        environ = os.environ if environ is None else environ
        values = []
        for name in SECURE_VAULT_KEYS[role]:
            variable = _VAULT_ENV_PREFIX + name
            value = environ.get(variable)
            if not value:
                raise MissingCredentialsError(
                    f"{variable} is not set: pass the S3 {role} keys in the operation's "
                    "secure_vault"
                )
            values.append(value)
        return cls(access_key=values[0], secret_key=values[1])

    def client(self, **options: Any) -> Any:
        """A boto3 S3 client with these keys (:func:`yt_assets.s3.client.make_s3_client`)."""
        return make_s3_client(self.access_key, self.secret_key, **options)

    def secure_vault(self, role: Role = "download") -> dict[str, str]:
        """The operation spec's ``secure_vault`` entries that :meth:`from_secure_vault` reads."""
        access_name, secret_name = SECURE_VAULT_KEYS[role]
        return {access_name: self.access_key, secret_name: self.secret_key}


class JsonRecordCounter:
    """Counts JSON records and parse errors of a byte stream fed in chunks (module docstring).

    Example::

        counter = JsonRecordCounter(whole_document=False)
        counter.feed(b'{"a": 1}\\nnot json\\n')
        assert counter.finish() == (1, 1)
    """

    def __init__(
        self, *, whole_document: bool, max_document_bytes: int = MAX_JSON_DOCUMENT_BYTES
    ) -> None:
        self._max = max_document_bytes
        self._pending = bytearray()
        self._skipping_long_line = False
        self._nonempty_lines = 0
        self._records = 0
        self._parse_errors = 0
        self._single_document_elements: int | None = None
        # The whole object, while it may still need parsing as one pretty-printed document.
        self._document: bytearray | None = bytearray() if whole_document else None
        self._whole_document = whole_document

    def feed(self, chunk: bytes) -> None:
        if self._document is not None:
            if len(self._document) + len(chunk) > self._max:
                self._document = None
            else:
                self._document += chunk
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            self._extend_pending(piece)
            self._end_line()
        self._extend_pending(pieces[-1])

    def finish(self) -> tuple[int, int]:
        """(records, parse_errors) once the whole stream was fed."""
        self._end_line()
        records, parse_errors = self._records, self._parse_errors
        if self._whole_document:
            if self._nonempty_lines == 1 and self._single_document_elements is not None:
                records = self._single_document_elements
            elif self._document is not None:
                parsed_whole = _parse_json_document(bytes(self._document))
                if parsed_whole is not None:
                    records, parse_errors = parsed_whole, 0
        self._document = None
        return records, parse_errors

    def _extend_pending(self, piece: bytes) -> None:
        if self._skipping_long_line:
            return
        if len(self._pending) + len(piece) > self._max:
            self._pending.clear()
            self._skipping_long_line = True
            return
        self._pending += piece

    def _end_line(self) -> None:
        if self._skipping_long_line:
            self._skipping_long_line = False
            self._nonempty_lines += 1
            self._parse_errors += 1
            return
        line = bytes(self._pending).strip()
        self._pending.clear()
        if not line:
            return
        self._nonempty_lines += 1
        try:
            value = json.loads(line)
        except ValueError:
            self._parse_errors += 1
            return
        self._records += 1
        if self._nonempty_lines == 1:
            # The first line parsed alone: no pretty-printed document to try later.
            self._document = None
            if isinstance(value, list):
                self._single_document_elements = len(value)


def _parse_json_document(document: bytes) -> int | None:
    """Records in one JSON document (array: its length; else 1), or None if it doesn't parse."""
    if not document.strip():
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    return len(value) if isinstance(value, list) else 1


def _json_kind(key: str) -> str | None:
    lowered = key.lower()
    return next((ext for ext in JSON_EXTENSIONS if lowered.endswith(ext)), None)


def process_object(
    body_stream: BodyStream, *, key: str, chunk_size: int = CHUNK_SIZE
) -> dict[str, Any]:
    """Size, SHA-256, line count and (JSON keys) record counts of one object, streamed.

    Memory stays at about ``chunk_size`` (plus one JSON line for JSON keys), whatever the size.

    Example::

        import io
        process_object(io.BytesIO(b'{"a":1}\\n'), key="x.jsonl")
        # {'size': 8, 'sha256': '...', 'lines': 1, 'records': 1, 'parse_errors': 0}
    """
    hasher = hashlib.sha256()
    size = 0
    lines = 0
    kind = _json_kind(key)
    counter = JsonRecordCounter(whole_document=kind == ".json") if kind else None
    while chunk := body_stream.read(chunk_size):
        hasher.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
        if counter is not None:
            counter.feed(chunk)
    records, parse_errors = counter.finish() if counter is not None else (None, None)
    return {
        "size": size,
        "sha256": hasher.hexdigest(),
        "lines": lines,
        "records": records,
        "parse_errors": parse_errors,
        "error": corrupt_json_error(records, parse_errors),
    }


def write_summary(body_stream: BodyStream, *, key: str, sink: S3Sink) -> dict[str, Any]:
    """:func:`process_object`, and its result written as ``<key>.summary.json`` through
    ``sink`` (the processor of the demo's ``s3_events_summaries``).

    Example::

        import io
        sink = S3Sink(client, S3Destination("my-bucket", "summaries/"))
        row = write_summary(io.BytesIO(b'{"a": 1}\\n'), key="events/a.jsonl", sink=sink)
        assert row["records"] == 1
        assert sink.written[0].key == "summaries/events/a.jsonl.summary.json"
    """
    result = process_object(body_stream, key=key)
    summary = json.dumps({"key": key, **result}, sort_keys=True).encode()
    sink.put(key + ".summary.json", summary, content_type="application/json")
    return result


def corrupt_json_error(records: int | None, parse_errors: int | None) -> str | None:
    """The ``error`` of a JSON object none of whose documents parse (a corrupt object); a JSON
    Lines object with some bad lines is not in error: its ``parse_errors`` counts them."""
    if records == 0 and parse_errors:
        return f"invalid JSON: {parse_errors} unparsable document(s) and no valid record"
    return None


def _describe_failure(error: BaseException, redact: Sequence[str] = ()) -> str:
    """:func:`~yt_assets.s3.errors.describe_s3_error`, with the attempts made when a download
    was retried."""
    if isinstance(error, RetryBudgetExhausted):
        return str(error)
    if isinstance(error, S3UploadError):
        return str(error)  # bucket, key and S3 code; redacted when it was made
    if isinstance(error, _PermanentAfterAttempts):
        described = _describe_failure(error.error, redact)
        retried = error.attempts > 1  # a first-attempt error is recorded as it is
        return f"{described} after {error.attempts} attempts" if retried else described
    return describe_s3_error(error, redact)


def _row_location(row: Mapping[str, Any]) -> tuple[str, str]:
    location = []
    for column in ("bucket", "path"):
        value = row.get(column)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str) or not value:
            raise ValueError(f"input row has no {column!r} string column")
        location.append(value)
    return location[0], location[1]


STAT_OBJECTS = "s3/objects_processed"
STAT_ERRORS = "s3/objects_with_error"
STAT_BYTES = "s3/bytes_downloaded"
STAT_DOWNLOAD_MS = "s3/download_ms"
STAT_RETRIES = "s3/download_retries"
STAT_GAVE_UP = "s3/downloads_gave_up"
STAT_UPLOADED = "s3/objects_uploaded"
STAT_BYTES_UPLOADED = "s3/bytes_uploaded"
JOB_STATISTICS = (
    STAT_OBJECTS,
    STAT_ERRORS,
    STAT_BYTES,
    STAT_DOWNLOAD_MS,
    STAT_RETRIES,
    STAT_GAVE_UP,
)
"""The user statistics every processing job reports (``custom/<name>`` on the operation)."""
UPLOAD_STATISTICS = (STAT_UPLOADED, STAT_BYTES_UPLOADED)
"""What a job that writes to S3 reports besides (objects and bytes written)."""

SinkFactory = Callable[[str], S3Sink]
"""Makes the sink of one processing attempt (a fresh one each attempt), given the input
object's bucket."""


class _CountingBody:
    """An object body that counts the bytes read through it."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.bytes_read = 0

    def read(self, amt: int | None = None, /) -> bytes:
        data: bytes = self._body.read(amt)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)


class _PermanentAfterAttempts(Exception):
    """A permanent error, raised after ``attempts`` attempts (the earlier ones were transient)."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        self.error = error
        self.attempts = attempts
        super().__init__(str(error))


def _retried_download(error: BaseException) -> bool:
    """Transient faults of the download are retried; an upload retried its own requests."""
    return not isinstance(error, S3UploadError) and is_transient(error)


def _download_and_process(
    s3_client: Any,
    bucket: str,
    key: str,
    processor: ObjectProcessor,
    retry: RetryPolicy,
    counter: RetryCounter,
    statistics: JobStatistics | None = None,
    sink_factory: SinkFactory | None = None,
) -> dict[str, Any]:
    attempts = 0
    sink: S3Sink | None = None

    def attempt() -> Any:
        nonlocal attempts, sink
        attempts += 1
        started = time.monotonic()
        response = s3_client.get_object(Bucket=bucket, Key=key)
        body = _CountingBody(response["Body"])
        try:
            # From the first byte: a fresh body (and sink) each attempt.
            if sink_factory is None:
                return processor(body, key=key)
            sink = sink_factory(bucket)
            writing: Any = processor  # a writing processor also takes sink=
            return writing(body, key=key, sink=sink)
        finally:
            body.close()
            if statistics is not None:
                statistics.add(STAT_BYTES, body.bytes_read)
                statistics.add(STAT_DOWNLOAD_MS, round((time.monotonic() - started) * 1000))

    try:
        result = call_with_retries(attempt, retry, counter, transient=_retried_download)
    except RetryBudgetExhausted:
        raise
    except Exception as error:
        raise _PermanentAfterAttempts(error, attempts) from error
    if not isinstance(result, Mapping):
        raise TypeError(f"the processor returned {type(result).__name__}, not a dict")
    row = {"bucket": bucket, "path": key, **result}
    row.setdefault("error", None)  # a processor may report an error of its own
    if sink is not None:
        row["written"] = [written.row() for written in sink.written]
        if statistics is not None:
            statistics.add(STAT_UPLOADED, len(sink.written))
            statistics.add(STAT_BYTES_UPLOADED, sum(written.size for written in sink.written))
    return row


def _project(row: dict[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    if columns is None:
        return row
    return {column: row.get(column) for column in columns}


def _validate_processing_args(
    on_error: str, downloads_in_flight: int, output_columns: Sequence[str] | None
) -> None:
    if on_error not in ("record", "fail"):
        raise ValueError(f"on_error must be 'record' or 'fail', got {on_error!r}")
    if isinstance(downloads_in_flight, bool) or not isinstance(downloads_in_flight, int):
        raise TypeError("downloads_in_flight must be an int")
    if downloads_in_flight < 1:
        raise ValueError(f"downloads_in_flight must be >= 1, got {downloads_in_flight}")
    if output_columns is not None and on_error == "record" and "error" not in output_columns:
        raise ValueError("on_error='record' needs an 'error' column in output_columns")


def process_rows(
    rows: Iterable[Mapping[str, Any]],
    s3_client: Any,
    *,
    processor: ObjectProcessor = process_object,
    on_error: OnError = "record",
    downloads_in_flight: int = DEFAULT_DOWNLOADS_IN_FLIGHT,
    output_columns: Sequence[str] | None = None,
    redact: Sequence[str] = (),
    retry: RetryPolicy | None = None,
    retry_counter: RetryCounter | None = None,
    statistics: JobStatistics | None = None,
    sink_factory: SinkFactory | None = None,
) -> Iterator[dict[str, Any]]:
    """Download and process the object of every row; yield result rows in input order.

    Up to ``downloads_in_flight`` objects are downloaded at once by a thread pool sharing
    ``s3_client`` (give it ``max_pool_connections >= downloads_in_flight``); at most twice that
    many rows are pending, so memory depends on the window, not on the number of objects.

    Rows are ``{"bucket", "path", "error": None, **processor_result}`` (a processor may set
    ``error`` itself). With
    ``on_error="record"`` a failed object gives ``{"bucket", "path", "error": description}`` (the
    default processor's columns set to null) and processing goes on; with ``"fail"`` the first
    failure in input order raises :class:`S3ObjectError` naming bucket and key. An input row
    without ``bucket``/``path`` always raises ``ValueError``. ``output_columns``, when given, is
    the exact column list of every row (missing ones null). Messages never contain the strings
    in ``redact``. ``statistics`` sums :data:`JOB_STATISTICS` (objects, objects with an error,
    bytes downloaded, download milliseconds).

    Transient faults are retried per ``retry`` (default :class:`RetryPolicy()`), each attempt
    from the first byte; ``retry_counter`` counts the retries.

    With ``sink_factory``, the processor is called as ``processor(body, key=key, sink=sink)``
    with a fresh :class:`~yt_assets.s3.uploads.S3Sink` each attempt, and the row gets
    ``written``: ``[{key, size, etag}]`` of the objects it wrote. A failed upload (its own
    requests retried, its multipart upload aborted) is the row's ``error``, naming the key:
    ``Uploading s3://b/k failed: AccessDenied (HTTP 403)``.

    Example::

        client = credentials.client(endpoint_url=url, max_pool_connections=16)
        for row in process_rows([{"bucket": "my-bucket", "path": "a.jsonl"}], client):
            print(row["sha256"], row["records"])
    """
    _validate_processing_args(on_error, downloads_in_flight, output_columns)
    return _process_rows_in_order(
        rows,
        s3_client,
        processor,
        on_error,
        downloads_in_flight,
        output_columns,
        tuple(redact),
        retry or RetryPolicy(),
        retry_counter if retry_counter is not None else RetryCounter(),
        statistics,
        sink_factory,
    )


def _process_rows_in_order(
    rows: Iterable[Mapping[str, Any]],
    s3_client: Any,
    processor: ObjectProcessor,
    on_error: OnError,
    downloads_in_flight: int,
    output_columns: Sequence[str] | None,
    redact: tuple[str, ...],
    retry: RetryPolicy,
    counter: RetryCounter,
    statistics: JobStatistics | None = None,
    sink_factory: SinkFactory | None = None,
) -> Iterator[dict[str, Any]]:
    failed_row_defaults = (
        dict.fromkeys(_PROCESSED_RESULT_NAMES) if processor is process_object else {}
    )

    def finished_row(bucket: str, key: str, future: Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            row = future.result()
        except Exception as error:
            description = _describe_failure(error, redact)
            if on_error == "fail":
                raise S3ObjectError(bucket, key, description) from error
            row = {"bucket": bucket, "path": key, **failed_row_defaults, "error": description}
        if statistics is not None:
            statistics.add(STAT_OBJECTS)
            statistics.add(STAT_ERRORS, row.get("error") is not None)
        return _project(row, output_columns)

    max_pending = 2 * downloads_in_flight
    pending: deque[tuple[str, str, Future[dict[str, Any]]]] = deque()
    executor = ThreadPoolExecutor(max_workers=downloads_in_flight, thread_name_prefix="s3-get")
    try:
        for row in rows:
            bucket, key = _row_location(row)
            future = executor.submit(
                _download_and_process,
                s3_client,
                bucket,
                key,
                processor,
                retry,
                counter,
                statistics,
                sink_factory,
            )
            pending.append((bucket, key, future))
            if len(pending) >= max_pending:
                yield finished_row(*pending.popleft())
        while pending:
            yield finished_row(*pending.popleft())
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class S3ObjectMapper:
    """A ``yt.wrapper`` mapper that processes the S3 object of every input row.

    It is an aggregator (``attributes = {"is_aggregator": True}``, what ``@yt.wrapper.aggregator``
    sets), so one download pool spans all rows of a job. It holds no secrets: the keys are read
    from the secure vault in the job. Picklable by dill. A node's ``python3`` needs this module
    and boto3 shipped with the operation: :func:`yt_assets.yt.shipping.shipping` does that (and
    :func:`yt_assets.yt.operations.start_map` uses it).

    Example::

        from yt.wrapper import TablePath
        from yt_assets.yt.operations import JOB_FORMAT
        from yt_assets.yt.schemas import PROCESSED_COLUMNS, yt_schema
        from yt_assets.yt.shipping import shipping
        from yt_assets.yt.tables import save_s3_paths_to_table

        save_s3_paths_to_table(yt_client, "my-bucket", ["a.jsonl"], "//home/me/listing")
        mapper = S3ObjectMapper(endpoint_url=url, downloads_in_flight=16)
        with shipping(yt_client, mapper):
            yt_client.run_map(
                mapper, "//home/me/listing",
                TablePath("//home/me/processed", schema=yt_schema(PROCESSED_COLUMNS)),
                spec={"secure_vault": credentials.secure_vault()},  # credentials: S3Credentials
                format=JOB_FORMAT,
            )
    """

    endpoint_url: str | None = None
    region_name: str | None = DEFAULT_REGION
    on_error: OnError = "record"
    downloads_in_flight: int = DEFAULT_DOWNLOADS_IN_FLIGHT
    processor: ObjectProcessor = process_object
    output_columns: tuple[str, ...] | None = None
    addressing_style: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    read_timeout: float = 60.0
    """Seconds without a byte from S3 before a download attempt is given up (and retried)."""
    destination: S3Destination | None = None
    """Where the processor writes (then it is called with ``sink=``; the job reads the upload
    keys from the secure vault); ``None``: a read-only job, which never looks for them."""
    part_size: int = DEFAULT_PART_SIZE
    """Bytes per part of a multipart upload, and the size above which one is used."""

    attributes: ClassVar[dict[str, bool]] = {"is_aggregator": True}

    def __post_init__(self) -> None:
        if self.output_columns is not None:
            object.__setattr__(self, "output_columns", tuple(self.output_columns))
        _validate_processing_args(self.on_error, self.downloads_in_flight, self.output_columns)

    def client(self, credentials: S3Credentials) -> Any:
        """A client of this job's endpoint; no botocore retries (ours retry whole requests)."""
        return credentials.client(
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            max_pool_connections=max(10, self.downloads_in_flight),
            addressing_style=self.addressing_style,
            read_timeout=self.read_timeout,
            max_attempts=0,
        )

    def __call__(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        credentials = S3Credentials.from_secure_vault(os.environ)
        client = self.client(credentials)
        redact = [credentials.access_key, credentials.secret_key]
        counter = RetryCounter()
        statistics = JobStatistics()
        for name in JOB_STATISTICS:
            statistics.add(name, 0)
        sink_factory = None
        if self.destination is not None:
            upload_credentials = S3Credentials.from_secure_vault(os.environ, role="upload")
            redact += [upload_credentials.access_key, upload_credentials.secret_key]
            sink_factory = self._sink_factory(self.client(upload_credentials), redact, counter)
            for name in UPLOAD_STATISTICS:
                statistics.add(name, 0)
        try:
            yield from process_rows(
                rows,
                client,
                processor=self.processor,
                on_error=self.on_error,
                downloads_in_flight=self.downloads_in_flight,
                output_columns=self.output_columns,
                redact=redact,
                statistics=statistics,
                retry=self.retry,
                retry_counter=counter,
                sink_factory=sink_factory,
            )
        finally:
            statistics.add(STAT_RETRIES, counter.retries)
            statistics.add(STAT_GAVE_UP, counter.gave_up)
            values = statistics.values
            print(
                f"s3_processing: {values[STAT_OBJECTS]} objects, {values[STAT_ERRORS]} errors, "
                f"{values[STAT_BYTES]} bytes downloaded, {counter.summary()}",
                file=sys.stderr,
            )
            statistics.flush()

    def _sink_factory(
        self, client: Any, redact: Sequence[str], counter: RetryCounter
    ) -> SinkFactory:
        destination = self.destination
        assert destination is not None
        return lambda bucket: S3Sink(
            client,
            destination.in_bucket(bucket),
            part_size=self.part_size,
            retry=self.retry,
            counter=counter,
            redact=redact,
        )


def _main(argv: Sequence[str] | None = None, stdin: BinaryIO | None = None) -> int:
    """Command job: JSON rows on stdin, JSON result rows on stdout (``format="json"``)."""
    parser = argparse.ArgumentParser(prog="python -m yt_assets.yt_jobs.s3_processing")
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--region-name", default=DEFAULT_REGION)
    parser.add_argument("--on-error", choices=("record", "fail"), default="record")
    parser.add_argument("--downloads-in-flight", type=int, default=DEFAULT_DOWNLOADS_IN_FLIGHT)
    args = parser.parse_args(argv)
    mapper = S3ObjectMapper(
        endpoint_url=args.endpoint_url,
        region_name=args.region_name,
        on_error=args.on_error,
        downloads_in_flight=args.downloads_in_flight,
    )
    source = stdin if stdin is not None else sys.stdin.buffer
    rows = (json.loads(line) for line in source if line.strip())
    try:
        for row in mapper(rows):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    except (S3ObjectError, MissingCredentialsError, ValueError) as error:
        print(f"s3_processing: {error}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
