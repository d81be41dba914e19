"""List S3 objects page by page, and publish the keys as a YT table.

The core is :func:`iter_s3_objects`: a generator over ``ListObjectsV2`` pages that never holds more
than one page (1,000 keys) in memory. :func:`list_s3_files` and :func:`save_s3_paths_to_table` keep
yt-framework's names and arguments with fixed semantics (see each docstring).

Layout:

- a *page fetcher* (:class:`PageFetcher`) asks S3 for one page and returns a :class:`ListingPage`.
  Two exist: :class:`~yt_assets.s3_fast_listing.FastPageFetcher` (the default: botocore sends
  the request, signs, resolves the endpoint and retries; we parse the XML, about 8x cheaper than
  botocore's parser) and :class:`Boto3PageFetcher` (botocore parses, as the boto3 paginator does);
- :func:`iter_listing_pages` follows continuation tokens and refuses malformed pagination;
- :func:`yt_assets.s3_fast_listing.iter_fanned_out_pages` lists the key ranges between
  ``CommonPrefixes`` in parallel (a bounded pool, bounded lookahead) and yields pages in global
  key order; a prefix without sub-prefixes is listed sequentially;
- :func:`iter_s3_objects` applies folder-marker skipping, the extension filter, ``max_files`` and
  progress reporting, whatever fetched the pages. ``fetcher="boto3"`` (or the environment variable
  ``YT_ASSETS_S3_LISTING_FETCHER=boto3``) forces the boto3 path, sequential, for comparison.

Extension filter: ``extension`` may be given as ``".json"`` or ``"json"``; a key matches when it
ends with ``"." + extension``, compared case-insensitively. So ``"json"`` matches ``a.json`` and
``A.JSON`` but not ``foo.notjson`` nor ``json``; multi-part extensions work (``"tar.gz"``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from yt_assets.yt_jobs.retries import (
    RetryBudgetExhausted,
    RetryCounter,
    RetryPolicy,
    call_with_retries,
    is_transient,
)

__all__ = [
    "DEFAULT_FAN_OUT",
    "FETCHER_ENV_VARIABLE",
    "LISTING_RETRY",
    "LIST_PAGE_SIZE",
    "PATHS_TABLE_SCHEMA",
    "SAVE_WRITE_CHUNK_BYTES",
    "Boto3PageFetcher",
    "ListingPage",
    "ListingProgress",
    "PageFetcher",
    "RetryingPageFetcher",
    "S3ListingError",
    "S3Object",
    "iter_listing_pages",
    "iter_s3_objects",
    "key_matches_extension",
    "list_s3_files",
    "normalize_extension",
    "page_from_boto3_response",
    "resolve_s3_client",
    "save_s3_paths_to_table",
]

LIST_PAGE_SIZE = 1000
"""Keys per ``ListObjectsV2`` request (the S3 maximum)."""

DEFAULT_FAN_OUT = 8
"""Key ranges listed at once by the fast path when the prefix has sub-prefixes."""

FETCHER_ENV_VARIABLE = "YT_ASSETS_S3_LISTING_FETCHER"
"""``fast`` (default) or ``boto3``: the listing path when ``iter_s3_objects`` isn't told."""

FetcherName = Literal["fast", "boto3"]

PATHS_TABLE_SCHEMA: list[dict[str, Any]] = [
    {"name": "bucket", "type": "string", "required": True},
    {"name": "path", "type": "string", "required": True},
]
"""Strict YT schema of the table written by :func:`save_s3_paths_to_table`."""

SAVE_WRITE_CHUNK_BYTES = 4 << 20
"""Write chunk of :func:`save_s3_paths_to_table` unless the client sets a smaller one: rows are
buffered per chunk, so this (not the number of keys) bounds the memory of a write. yt.wrapper
holds a chunk about 5 times over (row objects, joined, split into 2 MB pieces, the request):
4 MB keeps a 1,000,000-key listing under 100 MB of RSS, 16 MB reaches about 200 MB."""

FILTERED_OUT_EXAMPLES = 3
"""Keys left out by the extension filter that :class:`ListingProgress` shows."""

_DEFAULT_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class S3Object:
    """One listed object.

    Example::

        obj = S3Object(key="raw/a.json", size=12, etag="9b2cf5", last_modified=datetime.now(UTC))
        assert obj.key.endswith(".json")
    """

    key: str
    size: int
    etag: str
    """The entity tag without its surrounding double quotes."""
    last_modified: datetime
    """Timezone-aware, in UTC."""


class S3ListingError(Exception):
    """Listing a bucket failed: missing bucket, denied access, bad pagination, unreachable server.

    The message names the bucket, the prefix and an error code (the S3 error code such as
    ``NoSuchBucket`` or ``AccessDenied``, or the exception type for network errors); never keys or
    secrets. The original exception, if any, is chained as ``__cause__``.

    Example::

        try:
            list_s3_files(client, "no-such-bucket", "")
        except S3ListingError as error:
            print(error.bucket, error.code)  # no-such-bucket NoSuchBucket
    """

    def __init__(self, bucket: str, prefix: str, code: str, detail: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.code = code
        self.detail = detail
        message = f"Listing s3://{bucket}/{prefix} failed: {code}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ListingPage:
    """One ``ListObjectsV2`` response, reduced to what the listing needs."""

    objects: list[S3Object]
    is_truncated: bool
    next_continuation_token: str | None
    common_prefixes: tuple[str, ...] = ()
    """Sub-prefixes, when the request had a delimiter (decoded, in key order)."""


class PageFetcher(Protocol):
    """Fetches one listing page; raises :class:`S3ListingError` on any failure.

    ``delimiter`` groups keys into ``common_prefixes``; ``start_after`` starts the listing after
    that key (ignored by S3 when a continuation token is given).
    """

    def __call__(
        self,
        *,
        bucket: str,
        prefix: str,
        continuation_token: str | None,
        max_keys: int,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListingPage: ...


@dataclass(frozen=True, slots=True)
class ListingProgress:
    """A progress report: how far a listing got and how fast."""

    bucket: str
    prefix: str
    pages: int
    keys_listed: int
    """Keys S3 returned so far, before filters."""
    keys_matched: int
    """Keys yielded so far (after skipping folder markers and the extension filter)."""
    elapsed_seconds: float
    finished: bool
    keys_filtered_out: int = 0
    """Keys (not folder markers) the extension filter left out."""
    filtered_out_examples: tuple[str, ...] = ()
    """The first few of them (to show what the filter missed)."""

    @property
    def keys_per_second(self) -> float:
        return self.keys_listed / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


def resolve_s3_client(s3_client: Any) -> Any:
    """Return a boto3 S3 client from a boto3 client, dagster-aws's ``S3Resource``, or
    yt-framework's ``S3Client`` wrapper (duck typing, no imports of either)."""
    if hasattr(s3_client, "list_objects_v2"):
        return s3_client
    get_client = getattr(s3_client, "get_client", None)
    if callable(get_client):
        return get_client()
    wrapped = getattr(s3_client, "client", None)
    if hasattr(wrapped, "list_objects_v2"):
        return wrapped
    raise TypeError(
        "s3_client must be a boto3 S3 client or have a get_client() method "
        f"(like dagster-aws's S3Resource), got {type(s3_client).__name__}"
    )


def normalize_extension(extension: str | None) -> str | None:
    """``".JSON"``/``"json"`` -> ``"json"``; ``None`` or ``""`` -> ``None`` (no filter)."""
    if extension is None or extension == "":
        return None
    normalized = extension.removeprefix(".").lower()
    if not normalized or "/" in normalized:
        raise ValueError(f"extension must look like 'json' or '.json', got {extension!r}")
    return normalized


def key_matches_extension(key: str, normalized_extension: str | None) -> bool:
    """Whether ``key`` ends with ``"." + normalized_extension``, case-insensitively."""
    if normalized_extension is None:
        return True
    return key.lower().endswith("." + normalized_extension)


def _validate_max_files(max_files: int | None) -> None:
    if max_files is None:
        return
    if isinstance(max_files, bool) or not isinstance(max_files, int):
        raise TypeError(f"max_files must be an int or None, got {type(max_files).__name__}")
    if max_files < 0:
        raise ValueError(f"max_files must be >= 0 (or None for no limit), got {max_files}")


def _s3_object_from_boto3(entry: dict[str, Any]) -> S3Object:
    last_modified: datetime = entry["LastModified"]
    return S3Object(
        key=entry["Key"],
        size=int(entry["Size"]),
        etag=str(entry.get("ETag", "")).strip('"'),
        last_modified=last_modified.astimezone(UTC),
    )


def page_from_boto3_response(response: dict[str, Any]) -> ListingPage:
    """A :class:`ListingPage` of a ``list_objects_v2`` response parsed by botocore."""
    return ListingPage(
        objects=[_s3_object_from_boto3(entry) for entry in response.get("Contents", ())],
        is_truncated=bool(response.get("IsTruncated", False)),
        next_continuation_token=response.get("NextContinuationToken") or None,
        common_prefixes=tuple(entry["Prefix"] for entry in response.get("CommonPrefixes", ())),
    )


def list_objects_v2_request(
    *,
    bucket: str,
    prefix: str,
    continuation_token: str | None,
    max_keys: int,
    delimiter: str | None,
    start_after: str | None,
) -> dict[str, Any]:
    """Keyword arguments of ``client.list_objects_v2`` for one page."""
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
    if continuation_token is not None:
        request["ContinuationToken"] = continuation_token
    if delimiter:
        request["Delimiter"] = delimiter
    if start_after:
        request["StartAfter"] = start_after
    return request


def listing_error(error: Exception, bucket: str, prefix: str) -> S3ListingError:
    """An :class:`S3ListingError` for a botocore exception: S3 error code and HTTP status, or
    the exception type (never the message, which may hold a URL with signed parameters)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "UnknownError")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return S3ListingError(bucket, prefix, code, f"HTTP {status}" if status else "")
    return S3ListingError(bucket, prefix, type(error).__name__)


class Boto3PageFetcher:
    """Fetches listing pages with a boto3 client's ``list_objects_v2``, parsed by botocore.

    boto3 asks for ``encoding-type=url`` itself and decodes the keys, so keys with spaces, ``+``,
    ``%``, unicode or control characters come back exact.

    Example::

        fetch = Boto3PageFetcher(boto3.client("s3"))
        page = fetch(bucket="b", prefix="raw/", continuation_token=None, max_keys=1000)
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __call__(
        self,
        *,
        bucket: str,
        prefix: str,
        continuation_token: str | None,
        max_keys: int,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListingPage:
        request = list_objects_v2_request(
            bucket=bucket,
            prefix=prefix,
            continuation_token=continuation_token,
            max_keys=max_keys,
            delimiter=delimiter,
            start_after=start_after,
        )
        try:
            response = self._client.list_objects_v2(**request)
        except (ClientError, BotoCoreError) as error:
            raise listing_error(error, bucket, prefix) from error
        return page_from_boto3_response(response)


def iter_listing_pages(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    *,
    max_keys: Callable[[], int] = lambda: LIST_PAGE_SIZE,
    delimiter: str | None = None,
    start_after: str | None = None,
    first_page: ListingPage | None = None,
) -> Iterator[ListingPage]:
    """Yield pages, following continuation tokens until a page is not truncated.

    Raises :class:`S3ListingError` when a page is marked truncated without a continuation token,
    or when the server hands back a token it already gave (either would loop or stop silently).
    ``max_keys`` is asked before each request (lets the caller shrink the last page).
    ``first_page``, when given, is a page already fetched with the same arguments: it is yielded
    first and the listing goes on from its token.
    """
    token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        if first_page is not None:
            page, first_page = first_page, None
        else:
            page = fetch_page(
                bucket=bucket,
                prefix=prefix,
                continuation_token=token,
                max_keys=max_keys(),
                delimiter=delimiter,
                start_after=start_after,
            )
        yield page
        if not page.is_truncated:
            return
        token = page.next_continuation_token
        if token is None:
            raise S3ListingError(
                bucket,
                prefix,
                "TruncatedWithoutContinuationToken",
                "the server marked a page truncated but sent no NextContinuationToken",
            )
        if token in seen_tokens:
            raise S3ListingError(
                bucket, prefix, "RepeatedContinuationToken", "the server sent the same token twice"
            )
        seen_tokens.add(token)


class _ProgressReporter:
    """Emits :class:`ListingProgress` every N pages or S seconds, whichever comes first."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        on_progress: Callable[[ListingProgress], None] | None,
        logger: logging.Logger | None,
        every_pages: int | None,
        every_seconds: float | None,
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._on_progress = on_progress
        self._logger = logger
        self._every_pages = every_pages
        self._every_seconds = every_seconds
        self._started = time.monotonic()
        self._last_report = self._started
        self.pages = 0
        self.keys_listed = 0
        self.keys_matched = 0
        self.keys_filtered_out = 0
        self.filtered_out_examples: list[str] = []

    def filtered_out(self, key: str) -> None:
        self.keys_filtered_out += 1
        if len(self.filtered_out_examples) < FILTERED_OUT_EXAMPLES:
            self.filtered_out_examples.append(key)

    def page_done(self, keys_in_page: int) -> None:
        self.pages += 1
        self.keys_listed += keys_in_page
        now = time.monotonic()
        due_by_pages = self._every_pages is not None and self.pages % self._every_pages == 0
        due_by_time = (
            self._every_seconds is not None and now - self._last_report >= self._every_seconds
        )
        if due_by_pages or due_by_time:
            self._report(now, finished=False)

    def finish(self) -> None:
        self._report(time.monotonic(), finished=True)

    def _report(self, now: float, *, finished: bool) -> None:
        self._last_report = now
        if self._on_progress is None and self._logger is None:
            return
        progress = ListingProgress(
            bucket=self._bucket,
            prefix=self._prefix,
            pages=self.pages,
            keys_listed=self.keys_listed,
            keys_matched=self.keys_matched,
            elapsed_seconds=now - self._started,
            finished=finished,
            keys_filtered_out=self.keys_filtered_out,
            filtered_out_examples=tuple(self.filtered_out_examples),
        )
        if self._logger is not None:
            self._logger.info(
                "%s s3://%s/%s: %d keys listed, %d matched, %d pages, %.0f keys/s",
                "Listed" if finished else "Listing",
                self._bucket,
                self._prefix,
                progress.keys_listed,
                progress.keys_matched,
                progress.pages,
                progress.keys_per_second,
            )
        if self._on_progress is not None:
            self._on_progress(progress)


def iter_s3_objects(
    s3_client: Any,
    bucket: str,
    prefix: str,
    *,
    extension: str | None = None,
    max_files: int | None = None,
    on_progress: Callable[[ListingProgress], None] | None = None,
    logger: logging.Logger | None = None,
    progress_every_pages: int | None = 100,
    progress_every_seconds: float | None = 10.0,
    fetcher: FetcherName | None = None,
    fan_out: int | None = None,
    page_size: int = LIST_PAGE_SIZE,
    retry: RetryPolicy | None = None,
    retry_counter: RetryCounter | None = None,
) -> Iterator[S3Object]:
    """Yield the objects under ``s3://bucket/prefix``, streamed page by page, in key order.

    Keys come in S3's order (lexicographic by UTF-8 bytes), whatever the path. Folder markers
    (keys ending in ``/``) are skipped. ``extension`` filters by suffix (module docstring).
    ``max_files=0`` yields nothing without any request; ``max_files < 0`` raises ``ValueError``.
    Progress goes to ``on_progress`` and/or ``logger`` every ``progress_every_pages`` pages or
    ``progress_every_seconds`` seconds, and once at the end.

    ``fetcher``: ``"fast"`` (default; botocore sends the requests, we parse the XML) or
    ``"boto3"`` (botocore parses: the paginator's path); when ``None``, the environment variable
    :data:`FETCHER_ENV_VARIABLE` decides, else ``"fast"``. ``fan_out``: how many key ranges are
    listed at once when the prefix has sub-prefixes (``1``: sequential); by default
    :data:`DEFAULT_FAN_OUT` for the fast path, except when ``max_files`` is at most two pages,
    and ``1`` for boto3. Memory is bounded either way (a few pages per range in flight).
    ``page_size``: keys per request (``MaxKeys``, at most 1,000).
    ``retry``: how a page is retried when S3 throttles, answers 5xx or the connection breaks,
    after the client's own retries (default :data:`LISTING_RETRY`); ``retry_counter`` counts it.

    ``s3_client``: a boto3 client, or anything with ``get_client()`` (dagster-aws ``S3Resource``).
    Arguments are checked when called, before the first ``next()``.

    Raises :class:`S3ListingError` (missing bucket, denied access, malformed pagination).

    Example::

        for obj in iter_s3_objects(client, "my-bucket", "raw/2024/", extension="json"):
            print(obj.key, obj.size)
    """
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("bucket must be a non-empty string")
    _validate_max_files(max_files)
    normalized_extension = normalize_extension(extension)
    prefix = prefix or ""
    fetcher_name = _fetcher_name(fetcher)
    workers = _fan_out_workers(fan_out, fetcher_name, max_files, page_size)
    if not 1 <= page_size <= LIST_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {LIST_PAGE_SIZE}, got {page_size}")
    if max_files == 0:
        return iter(())
    client = resolve_s3_client(s3_client)
    fetch_page = RetryingPageFetcher(
        _make_page_fetcher(client, fetcher_name), retry or LISTING_RETRY, retry_counter
    )
    reporter = _ProgressReporter(
        bucket, prefix, on_progress, logger, progress_every_pages, progress_every_seconds
    )

    def list_pages(next_page_size: Callable[[], int]) -> Iterator[list[S3Object]]:
        if workers > 1:
            from yt_assets.s3_fast_listing import iter_fanned_out_pages

            return iter_fanned_out_pages(
                fetch_page, bucket, prefix, workers=workers, page_size=page_size
            )
        pages = iter_listing_pages(fetch_page, bucket, prefix, max_keys=next_page_size)
        return (page.objects for page in pages)

    return _iter_matching_objects(list_pages, normalized_extension, max_files, reporter, page_size)


def _fetcher_name(fetcher: str | None) -> FetcherName:
    name = fetcher if fetcher is not None else os.environ.get(FETCHER_ENV_VARIABLE) or "fast"
    if name == "fast":
        return "fast"
    if name == "boto3":
        return "boto3"
    raise ValueError(f"fetcher must be 'fast' or 'boto3', got {name!r}")


def _fan_out_workers(
    fan_out: int | None, fetcher: FetcherName, max_files: int | None, page_size: int
) -> int:
    if fan_out is not None:
        if isinstance(fan_out, bool) or not isinstance(fan_out, int) or fan_out < 1:
            raise ValueError(f"fan_out must be an int >= 1, got {fan_out!r}")
        return fan_out
    if fetcher == "boto3":
        return 1
    if max_files is not None and max_files <= 2 * page_size:
        return 1  # a parallel lookahead would mostly list keys nobody wants
    return DEFAULT_FAN_OUT


LISTING_RETRY = RetryPolicy(max_attempts=4, max_seconds=30.0, base_delay=0.2)
"""Retries of a listing page on top of the S3 client's own (which retry throttling and 5xx)."""


class RetryingPageFetcher:
    """A :class:`PageFetcher` that retries transient failures of another one (a page is one
    request, so a retry repeats it whole); past the budget it raises :class:`S3ListingError`
    naming the attempts."""

    def __init__(
        self, fetch_page: PageFetcher, policy: RetryPolicy, counter: RetryCounter | None = None
    ) -> None:
        self._fetch_page = fetch_page
        self._policy = policy
        self._counter = counter

    def __call__(self, **request: Any) -> ListingPage:
        try:
            return call_with_retries(
                lambda: self._fetch_page(**request),
                self._policy,
                self._counter,
                transient=_is_transient_listing_error,
            )
        except RetryBudgetExhausted as exhausted:
            error = exhausted.last_error
            assert isinstance(error, S3ListingError)
            detail = f"{error.detail}, " if error.detail else ""
            raise S3ListingError(
                error.bucket,
                error.prefix,
                error.code,
                f"{detail}gave up after {exhausted.attempts} attempts",
            ) from error


def _is_transient_listing_error(error: BaseException) -> bool:
    cause = error.__cause__
    return isinstance(error, S3ListingError) and cause is not None and is_transient(cause)


def _make_page_fetcher(client: Any, fetcher: FetcherName) -> PageFetcher:
    if fetcher == "fast":
        from yt_assets.s3_fast_listing import FastPageFetcher

        if FastPageFetcher.supports(client):
            return FastPageFetcher(client)
    return Boto3PageFetcher(client)


def _iter_matching_objects(
    list_pages: Callable[[Callable[[], int]], Iterator[list[S3Object]]],
    normalized_extension: str | None,
    max_files: int | None,
    reporter: _ProgressReporter,
    page_size: int,
) -> Iterator[S3Object]:
    def next_page_size() -> int:
        # Without a filter, ask for no more keys than still wanted (folder markers may still
        # make us ask again). Only the sequential path asks.
        if max_files is None or normalized_extension is not None:
            return page_size
        return max(1, min(page_size, max_files - reporter.keys_matched))

    pages = list_pages(next_page_size)
    try:
        for objects in pages:
            reporter.page_done(len(objects))
            for obj in objects:
                key = obj.key
                if key.endswith("/"):
                    continue
                if not key_matches_extension(key, normalized_extension):
                    reporter.filtered_out(key)
                    continue
                reporter.keys_matched += 1
                yield obj
                if max_files is not None and reporter.keys_matched >= max_files:
                    reporter.finish()
                    return
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # stops a parallel lister's threads at once, not when garbage-collected
    reporter.finish()


def list_s3_files(
    s3_client: Any,
    bucket: str,
    prefix: str,
    logger: logging.Logger | None = None,
    extension: str | None = None,
    max_files: int | None = None,
) -> list[str]:
    """List object keys (not ``s3://`` URLs) under a prefix: yt-framework's API, fixed.

    Differences from yt-framework: ``extension=".json"`` works (and ``"json"``, any case);
    folder markers are skipped; ``max_files=0`` returns ``[]``, negative raises; errors raise
    :class:`S3ListingError` naming the bucket. Prefer :func:`iter_s3_objects` for large
    listings: this holds every key in memory.

    Example::

        keys = list_s3_files(client, "my-bucket", "raw/", extension="json", max_files=100)
    """
    log = logger or _DEFAULT_LOGGER
    log.info("Listing files from S3: s3://%s/%s", bucket, prefix)
    keys = [
        obj.key
        for obj in iter_s3_objects(
            s3_client, bucket, prefix, extension=extension, max_files=max_files, logger=log
        )
    ]
    log.info("Found %d files", len(keys))
    return keys


def _paths_table_rows(bucket: str, paths: Iterable[str | S3Object]) -> Iterator[dict[str, str]]:
    for path in paths:
        key = path.key if isinstance(path, S3Object) else path
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"paths must be non-empty str keys or S3Object, got {type(key).__name__}"
            )
        yield {"bucket": bucket, "path": key}


@contextmanager
def _bounded_write_chunk(yt_client: Any, limit_bytes: int) -> Iterator[None]:
    """Cap the client's ``write_retries/chunk_size`` at ``limit_bytes`` inside the block."""
    write_retries = getattr(yt_client, "config", {}).get("write_retries")
    if not isinstance(write_retries, MutableMapping):  # yt.wrapper's VerifiedDict is no dict
        yield
        return
    previous = write_retries.get("chunk_size")
    write_retries["chunk_size"] = min(previous or limit_bytes, limit_bytes)
    try:
        yield
    finally:
        write_retries["chunk_size"] = previous


def save_s3_paths_to_table(
    yt_client: Any,
    bucket: str,
    paths: Iterable[str | S3Object],
    output_table: str,
    logger: logging.Logger | None = None,
    *,
    write_chunk_bytes: int = SAVE_WRITE_CHUNK_BYTES,
) -> int:
    """Replace ``output_table`` with rows ``{bucket, path}``, atomically; return the row count.

    ``path`` is the object key (not an ``s3://`` URL). ``paths`` may be any iterable (a generator
    from :func:`iter_s3_objects` included); it is streamed, never turned into a list. Inside one
    YT transaction: create the parent directories, write a temporary table with the strict
    :data:`PATHS_TABLE_SCHEMA`, then ``move(force=True)`` it over ``output_table``. Readers see the
    old table or the new one, never a missing or partial one; on error nothing changes.

    Memory: ``write_table`` buffers one chunk of rows (to retry it); the chunk is the client's
    ``write_retries/chunk_size`` capped at ``write_chunk_bytes`` (yt.wrapper's default is
    128 MB), set on the client for the duration of the call.

    Example::

        objects = iter_s3_objects(s3, "my-bucket", "raw/", extension="json")
        save_s3_paths_to_table(yt_client, "my-bucket", objects, "//home/me/raw_paths")
    """
    from yt.wrapper.ypath import ypath_dirname

    log = logger or _DEFAULT_LOGGER
    rows_written = 0

    def counted_rows() -> Iterator[dict[str, str]]:
        nonlocal rows_written
        for row in _paths_table_rows(bucket, paths):
            rows_written += 1
            yield row

    parent = str(ypath_dirname(output_table))
    temp_table = f"{output_table}.tmp-{uuid.uuid4().hex}"
    log.info("Saving S3 paths of bucket %s to YT table %s", bucket, output_table)
    with _bounded_write_chunk(yt_client, write_chunk_bytes), yt_client.Transaction():
        if parent not in ("/", "//"):
            yt_client.create("map_node", parent, recursive=True, ignore_existing=True)
        yt_client.create("table", temp_table, attributes={"schema": PATHS_TABLE_SCHEMA})
        yt_client.write_table(temp_table, counted_rows())
        yt_client.move(temp_table, output_table, force=True)
    log.info("Saved %d paths to %s", rows_written, output_table)
    return rows_written
