"""Writing objects to S3, streamed (stdlib and botocore only: jobs import it).

An :class:`ObjectWriter` takes bytes in pieces and holds at most one part (``part_size``) of
them: below ``part_size`` the object is one ``PutObject``; above it, a multipart upload sends
each part as it fills, so memory stays about ``part_size`` whatever the object's size. Every
request is retried on transient faults (:mod:`yt_assets.s3.retries`); on any failure the
multipart upload is aborted, so S3 keeps no incomplete upload and the key keeps its previous
object (or none): never a partial one. Writing the same key again replaces the object whole.

A :class:`S3Sink` is what a processor writes through: keys under one :class:`S3Destination`
(bucket and prefix), and the list of what was written (key, size, ETag).

Example::

    destination = S3Destination("my-bucket", "derived/")
    sink = S3Sink(client, destination)
    sink.put("a.txt.summary.json", b'{"lines": 3}', content_type="application/json")
    with sink.open("big.bin") as writer:     # a stream of any size, one part in memory
        for chunk in (b"x" * 1000, b"y" * 1000):
            writer.write(chunk)
    assert [written.key for written in sink.written] == ["derived/a.txt.summary.json", "derived/big.bin"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from yt_assets.s3.errors import describe_s3_error
from yt_assets.s3.retries import RetryBudgetExhausted, RetryCounter, RetryPolicy, call_with_retries

__all__ = [
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "ObjectWriter",
    "S3Destination",
    "S3Sink",
    "S3UploadError",
    "UploadedObject",
]

MIN_PART_SIZE = 5 << 20
"""S3's smallest part of a multipart upload (all but the last part)."""
DEFAULT_PART_SIZE = 8 << 20
"""Bytes per part, and the size above which an object is sent as a multipart upload."""
READ_SIZE = 1 << 20
"""Bytes read from a stream at a time (the writer gathers them into parts)."""
MAX_PARTS = 10_000
"""S3's most parts per upload: with 8 MiB parts, objects up to about 78 GiB."""


@dataclass(frozen=True)
class UploadedObject:
    """One object written: its key, size in bytes and ETag (without quotes)."""

    bucket: str
    key: str
    size: int
    etag: str

    def row(self) -> dict[str, Any]:
        """The ``{key, size, etag}`` a processed row records for it."""
        return {"key": self.key, "size": self.size, "etag": self.etag}


class S3UploadError(Exception):
    """Writing one object failed: names the bucket, the key and the S3 code (never a secret)."""

    def __init__(self, bucket: str, key: str, description: str) -> None:
        self.bucket = bucket
        self.key = key
        self.description = description
        super().__init__(f"Uploading s3://{bucket}/{key} failed: {description}")


@dataclass(frozen=True)
class S3Destination:
    """Where an asset writes: ``bucket`` and a key ``prefix`` (``""`` or ending with ``/``
    for a folder); an object named ``name`` is written at ``prefix + name``. A processing
    asset's ``bucket`` may be ``""``: each object's derived objects go to its own bucket
    (:meth:`in_bucket`)."""

    bucket: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix.startswith("/"):
            raise ValueError(f"prefix {self.prefix!r}: S3 keys don't start with '/'")

    def key(self, name: str) -> str:
        """The key of the object ``name``; refuses an empty name or one starting with ``/``."""
        if not name or name.startswith("/"):
            raise ValueError(f"object name {name!r}: give a non-empty name not starting with '/'")
        return self.prefix + name

    def under(self, sub_prefix: str) -> S3Destination:
        """The destination ``prefix + sub_prefix`` (e.g. one partition's folder)."""
        return S3Destination(self.bucket, self.key(sub_prefix))

    def in_bucket(self, input_bucket: str) -> S3Destination:
        """This destination, in ``input_bucket`` when it names no bucket of its own."""
        return self if self.bucket else S3Destination(input_bucket, self.prefix)

    def url(self) -> str:
        return f"s3://{self.bucket or '<input bucket>'}/{self.prefix}"


@dataclass
class _UploadOptions:
    part_size: int = DEFAULT_PART_SIZE
    content_type: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    counter: RetryCounter | None = None
    redact: Sequence[str] = ()


class ObjectWriter:
    """A writable stream of one object (module docstring); use it in a ``with`` block, or call
    :meth:`close` (which returns the :class:`UploadedObject`) and :meth:`abort` on failure."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        content_type: str | None = None,
        retry: RetryPolicy | None = None,
        counter: RetryCounter | None = None,
        redact: Sequence[str] = (),
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} (S3's minimum part size)")
        self.client = client
        self.bucket = bucket
        self.key = key
        self._options = _UploadOptions(
            part_size, content_type, retry or RetryPolicy(), counter, redact
        )
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._size = 0
        self.result: UploadedObject | None = None

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Nothing to do: parts are sent as they fill (for ``gzip.GzipFile`` and friends)."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.result is not None:
            raise ValueError(f"s3://{self.bucket}/{self.key} is already closed")
        view = memoryview(data).cast("B")
        written = view.nbytes
        part_size = self._options.part_size
        while view:
            room = part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) >= part_size:
                self._send_part()
        self._size += written
        return written

    def close(self) -> UploadedObject:
        """Send what is left and finish the object; returns what was written."""
        if self.result is not None:
            return self.result
        if self._upload_id is None:
            response = self._call(
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), **self._type()
                ),
            )
        else:
            if self._buffer or not self._parts:
                self._send_part()
            upload_id = self._upload_id
            response = self._call(
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": self._parts},
                ),
            )
            self._upload_id = None
        self._buffer = bytearray()
        etag = str(response.get("ETag") or "").strip('"')
        self.result = UploadedObject(self.bucket, self.key, self._size, etag)
        return self.result

    def abort(self) -> None:
        """Drop the object: abort the multipart upload (if one was started); never raises."""
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        with contextlib.suppress(Exception):  # the first error is the one to report
            call_with_retries(
                lambda: self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=upload_id
                ),
                self._options.retry,
                self._options.counter,
            )

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise

    def _type(self) -> dict[str, str]:
        content_type = self._options.content_type
        return {"ContentType": content_type} if content_type else {}

    def _send_part(self) -> None:
        if self._upload_id is None:
            created = self._call(
                lambda: self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, **self._type()
                ),
            )
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise S3UploadError(
                self.bucket, self.key, f"more than {MAX_PARTS} parts: raise part_size"
            )
        body, self._buffer = self._buffer, bytearray()  # handed over, not copied
        upload_id = self._upload_id
        response = self._call(
            lambda: self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=body
            ),
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def _call(self, request: Any) -> Any:
        try:
            return call_with_retries(request, self._options.retry, self._options.counter)
        except RetryBudgetExhausted as error:
            raise S3UploadError(self.bucket, self.key, str(error)) from error
        except S3UploadError:
            raise
        except Exception as error:
            description = describe_s3_error(error, self._options.redact)
            raise S3UploadError(self.bucket, self.key, description) from error


def _chunks(data: bytes | BinaryIO, size: int) -> Iterator[bytes | memoryview]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield view[start : start + size]
        return
    while chunk := data.read(size):
        yield chunk


class S3Sink:
    """Where a processor writes: objects under ``destination``, each recorded in
    :attr:`written` (module docstring). One per processing attempt of an input object."""

    def __init__(
        self,
        client: Any,
        destination: S3Destination,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        retry: RetryPolicy | None = None,
        counter: RetryCounter | None = None,
        redact: Sequence[str] = (),
    ) -> None:
        if not destination.bucket:
            raise ValueError("an S3Sink writes to a bucket: S3Destination.in_bucket(...) first")
        self.client = client
        self.destination = destination
        self.written: list[UploadedObject] = []
        self._part_size = part_size
        self._retry = retry or RetryPolicy()
        self._counter = counter
        self._redact = tuple(redact)

    def put(
        self, name: str, data: bytes | BinaryIO, *, content_type: str | None = None
    ) -> UploadedObject:
        """Write ``data`` (bytes, or anything with ``read(n)``) as the object ``name`` under the
        destination, streamed."""
        with self.open(name, content_type=content_type) as writer:
            for chunk in _chunks(data, READ_SIZE):
                writer.write(chunk)
        return self.written[-1]

    @contextlib.contextmanager
    def open(self, name: str, *, content_type: str | None = None) -> Iterator[ObjectWriter]:
        """A writer of the object ``name``; finished when the block ends, aborted on an error."""
        writer = ObjectWriter(
            self.client,
            self.destination.bucket,
            self.destination.key(name),
            part_size=self._part_size,
            content_type=content_type,
            retry=self._retry,
            counter=self._counter,
            redact=self._redact,
        )
        with writer:
            yield writer
        assert writer.result is not None
        self.written.append(writer.result)
