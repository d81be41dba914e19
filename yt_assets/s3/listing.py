"""List S3 objects page by page.

The core is :func:`iter_s3_objects`: a generator over ``ListObjectsV2`` pages that never holds more
than one page (1,000 keys) in memory. :func:`list_s3_files` (and
:func:`yt_assets.yt.tables.save_s3_paths_to_table`) keep yt-framework's names and arguments with
fixed semantics (see each docstring).

Layout:

- a *page fetcher* (:class:`~yt_assets.s3.pages.PageFetcher`) asks S3 for one page and returns a :class:`ListingPage`.
  Two exist: :class:`~yt_assets.s3.fast_listing.FastPageFetcher` (the default: botocore sends
  the request, signs, resolves the endpoint and retries; we parse the XML, about 8x cheaper than
  botocore's parser) and :class:`~yt_assets.s3.pages.Boto3PageFetcher` (botocore parses, as the boto3 paginator does);
- :func:`~yt_assets.s3.pages.iter_listing_pages` follows continuation tokens and refuses malformed pagination;
- :func:`yt_assets.s3.fast_listing.iter_fanned_out_pages` starts sequential (the paginator's
  requests: a small listing costs nothing extra) and, once the listing shows it is large, lists
  the key ranges between ``CommonPrefixes`` in parallel (a bounded pool, bounded lookahead),
  yielding pages in global key order; a prefix without sub-prefixes stays sequential;
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from yt_assets.s3.client import resolve_s3_client
from yt_assets.s3.errors import S3ListingError
from yt_assets.s3.fast_listing import FastPageFetcher, iter_fanned_out_pages
from yt_assets.s3.pages import (
    LIST_PAGE_SIZE,
    Boto3PageFetcher,
    ListingPage,
    PageFetcher,
    S3Object,
    S3Row,
    iter_listing_pages,
    s3_objects,
)
from yt_assets.s3.retries import (
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
    "ListingProgress",
    "RetryingPageFetcher",
    "iter_s3_objects",
    "key_matches_extension",
    "list_s3_files",
    "make_page_fetcher",
    "normalize_extension",
]

DEFAULT_FAN_OUT = 8
"""Key ranges listed at once by the fast path when the prefix has sub-prefixes and the listing
turned out large."""

FETCHER_ENV_VARIABLE = "YT_ASSETS_S3_LISTING_FETCHER"
"""``fast`` (default) or ``boto3``: the listing path when ``iter_s3_objects`` isn't told."""

FetcherName = Literal["fast", "boto3"]

FILTERED_OUT_EXAMPLES = 3
"""Keys left out by the extension filter that :class:`ListingProgress` shows."""

_DEFAULT_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListingProgress:
    """A progress report: how far a listing got and how fast."""

    bucket: str
    prefix: str
    pages: int
    keys_listed: int
    """Objects S3 returned so far, before the extension filter; folder markers (keys ending in
    ``/``) are not counted: how many a listing meets depends on where its key ranges start."""
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
    listed at once when the prefix has sub-prefixes and the listing turned out large (after
    :data:`~yt_assets.s3.fast_listing.SEQUENTIAL_PAGES` truncated pages; before
    that it is sequential, request for request the paginator's) (``1``: sequential); by default
    :data:`DEFAULT_FAN_OUT` for the fast path, except when ``max_files`` is at most two pages,
    and ``1`` for boto3. Memory is bounded either way (a few pages per range in flight).
    ``page_size``: keys per request (``MaxKeys``, at most 1,000).
    ``retry``: how a page is retried when S3 throttles, answers 5xx or the connection breaks,
    after the client's own retries (default :data:`LISTING_RETRY`); ``retry_counter`` counts it.

    ``s3_client``: a boto3 client, or anything with ``get_client()`` (dagster-aws ``S3Resource``).
    Arguments are checked when called, before the first ``next()``.

    Raises :class:`~yt_assets.s3.errors.S3ListingError` (missing bucket, denied access, malformed pagination).

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
        make_page_fetcher(client, fetcher_name), retry or LISTING_RETRY, retry_counter
    )
    reporter = _ProgressReporter(
        bucket, prefix, on_progress, logger, progress_every_pages, progress_every_seconds
    )

    def list_pages(next_page_size: Callable[[], int]) -> Iterator[list[S3Row]]:
        if workers > 1:
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


def make_page_fetcher(client: Any, fetcher: FetcherName) -> PageFetcher:
    """The page fetcher of ``fetcher`` for a boto3 client (the fast one when the client allows)."""
    if fetcher == "fast" and FastPageFetcher.supports(client):
        return FastPageFetcher(client)
    return Boto3PageFetcher(client)


def _rows_through_match(
    rows: list[S3Row], normalized_extension: str | None, limit: int | None
) -> list[S3Row]:
    """The page's rows up to its ``limit``-th matching key (all of them without a limit, or
    when it has fewer): the rows a key-by-key walk stopping at ``max_files`` looks at."""
    if limit is None or limit >= len(rows):
        return rows
    matches = 0
    for index, (key, *_) in enumerate(rows):
        if not key.endswith("/") and key_matches_extension(key, normalized_extension):
            matches += 1
            if matches == limit:
                return rows[: index + 1]
    return rows


def _matching_rows(
    rows: list[S3Row],
    normalized_extension: str | None,
    reporter: _ProgressReporter,
    limit: int | None,
) -> list[S3Row]:
    """The page's rows that are not folder markers and match the extension, in order, at most
    ``limit``; of the rows up to the last one taken, the markers are taken off ``keys_listed``
    (``page_done`` counted them) and the others reported as filtered out."""
    rows = _rows_through_match(rows, normalized_extension, limit)
    kept = [row for row in rows if not row[0].endswith("/")]
    reporter.keys_listed -= len(rows) - len(kept)
    if normalized_extension is None:
        return kept
    matching = []
    for row in kept:
        if key_matches_extension(row[0], normalized_extension):
            matching.append(row)
        else:
            reporter.filtered_out(row[0])
    return matching


def _iter_matching_objects(
    list_pages: Callable[[Callable[[], int]], Iterator[list[S3Row]]],
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
        for rows in pages:
            reporter.page_done(len(rows))
            remaining = None if max_files is None else max_files - reporter.keys_matched
            matched = _matching_rows(rows, normalized_extension, reporter, remaining)
            yield from s3_objects(matched)
            # Counted a page at a time: half the CPU of a key at a time.
            reporter.keys_matched += len(matched)
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
    :class:`~yt_assets.s3.errors.S3ListingError` naming the bucket. Prefer :func:`iter_s3_objects` for large
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
