"""List an S3 prefix inside one YT map operation: the listing asset's ``yt_operation`` mode.

This module ships to YT job nodes: it imports the standard library, boto3/botocore (through the
dependency-free :mod:`yt_assets.s3` modules) and :mod:`yt_assets.yt.schemas` (the listing row,
the same function the in-process listing uses).

Driver side, :func:`split_key_space`: one delimited ``ListObjectsV2`` request (walking down a
prefix that holds a single sub-prefix, as the in-process fan-out does) cuts the key space at up to
``2 x jobs`` of its ``CommonPrefixes`` into ranges ``[low, high)``
(:func:`yt_assets.s3.fast_listing.key_ranges`); :func:`range_rows` makes one input row per range
(:data:`~yt_assets.yt.schemas.LISTING_RANGE_COLUMNS`). A prefix without sub-prefixes whose first
page is full is cut at keys found by one-key ``StartAfter`` probes
(:mod:`yt_assets.s3.key_sampling`), as the in-process fan-out does, into ranges of
:data:`MIN_RANGE_KEYS_PER_JOB` keys or more; a smaller one is one range.

Job side, :class:`S3RangeLister` (a ``yt.wrapper`` mapper): for every input row it lists the range
(``StartAfter=low``, up to ``high``; :func:`yt_assets.s3.fast_listing.iter_range_pages`, with the
in-process listing's page fetcher and retries) and yields one listing row per object, skipping
folder markers and keys the extension filter rejects, exactly as
:func:`yt_assets.s3.listing.iter_s3_objects` does, and at most ``max_files`` objects per range (the
first ``max_files`` of the whole listing are among them; the driver keeps those after sorting).
The download keys come from the secure vault
(:class:`~yt_assets.yt_jobs.s3_processing.S3Credentials`). The job reports ``s3/keys_listed``,
``s3/keys_matched``, ``s3/keys_filtered_out`` and ``s3/listing_pages`` as user statistics, and
prints them on stderr with the names (never the values) of the secure vault variables it sees. An S3
error fails the job with the error's one-line, secret-free description as its last stderr line,
after :data:`ERROR_MARKER` (:func:`listing_error_in` finds it for the step's failure).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from yt_assets.s3.client import DEFAULT_REGION
from yt_assets.s3.errors import S3ListingError
from yt_assets.s3.fast_listing import (
    MIN_SAMPLED_RANGE_PAGES,
    KeyRange,
    iter_range_pages,
    key_ranges,
    sampled_ranges,
    sub_prefix_level,
)
from yt_assets.s3.listing import (
    LISTING_RETRY,
    RetryingPageFetcher,
    key_matches_extension,
    make_page_fetcher,
    normalize_extension,
)
from yt_assets.s3.pages import LIST_PAGE_SIZE, PageFetcher, s3_objects
from yt_assets.s3.retries import RetryPolicy
from yt_assets.yt.schemas import listing_row

from .s3_processing import S3Credentials
from .user_statistics import JobStatistics

__all__ = [
    "ERROR_MARKER",
    "STAT_KEYS_FILTERED_OUT",
    "STAT_KEYS_LISTED",
    "STAT_KEYS_MATCHED",
    "STAT_PAGES",
    "S3RangeLister",
    "listing_error_in",
    "range_rows",
    "split_key_space",
]

STAT_KEYS_LISTED = "s3/keys_listed"
STAT_KEYS_MATCHED = "s3/keys_matched"
STAT_KEYS_FILTERED_OUT = "s3/keys_filtered_out"
STAT_PAGES = "s3/listing_pages"
_STATISTICS = (STAT_KEYS_LISTED, STAT_KEYS_MATCHED, STAT_KEYS_FILTERED_OUT, STAT_PAGES)

_VAULT_PREFIX = "YT_SECURE_VAULT_"

MAX_PROBES_AT_ONCE = 16
"""Driver side: how many one-key probes of a split are sent at once."""

MIN_RANGE_KEYS_PER_JOB = MIN_SAMPLED_RANGE_PAGES * LIST_PAGE_SIZE
"""A prefix without sub-prefixes is cut into ranges of about this many keys or more (a job
starting costs seconds; a smaller prefix is one range)."""

ERROR_MARKER = "s3_listing failed: "
"""What starts the stderr line of a job whose listing failed (the error's description follows)."""


def split_key_space(
    fetch_page: PageFetcher, bucket: str, prefix: str, jobs: int
) -> tuple[str, list[KeyRange]]:
    """The level the ranges are under (``prefix``, or the single sub-prefix it holds, walked
    down) and up to ``2 x jobs + 1`` ranges of it, in key order, covering every key once.

    Example::

        level, ranges = split_key_space(make_page_fetcher(client, "fast"), "my-bucket", "", jobs=8)
        assert ranges[0].low is None and ranges[-1].high is None
    """
    if jobs <= 1:
        return prefix, [KeyRange(None, None)]
    started = time.monotonic()
    level, first = sub_prefix_level(fetch_page, bucket, prefix)
    page_seconds = time.monotonic() - started
    ranges = list(key_ranges(iter([first]), jobs))
    if len(ranges) == 1 and first.is_truncated and first.objects:
        sampled = sampled_ranges(
            fetch_page,
            bucket,
            level,
            [row[0] for row in first.objects],
            after=None,
            page_seconds=page_seconds,
            workers=min(jobs, MAX_PROBES_AT_ONCE),
            pieces=2 * jobs,
            min_range_keys=MIN_RANGE_KEYS_PER_JOB,
        )
        ranges = sampled or ranges
    return level, ranges


def range_rows(bucket: str, prefix: str, ranges: Sequence[KeyRange]) -> Iterator[dict[str, Any]]:
    """The operation's input rows: one per range.

    Example::

        rows = list(range_rows("b", "raw/", [KeyRange(None, "raw/m/"), KeyRange("raw/m/", None)]))
        assert rows[1] == {"bucket": "b", "prefix": "raw/", "low": "raw/m/", "high": None}
    """
    for key_range in ranges:
        yield {"bucket": bucket, "prefix": prefix, "low": key_range.low, "high": key_range.high}


def listing_error_in(stderr: str) -> str | None:
    """The description a failed listing job printed after :data:`ERROR_MARKER`, if any.

    Example::

        assert listing_error_in("x\\ns3_listing failed: AccessDenied (HTTP 403)\\n") == (
            "AccessDenied (HTTP 403)"
        )
    """
    for line in stderr.splitlines():
        if line.startswith(ERROR_MARKER):
            return line[len(ERROR_MARKER) :].strip()
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class S3RangeLister:
    """A ``yt.wrapper`` mapper listing the key range of each input row (module docstring).

    It holds no secrets: the download keys are read from the secure vault in the job.

    Example::

        lister = S3RangeLister(endpoint_url=url, extension="json")
        # run_map(lister, ranges_table, listing_scratch, spec={"secure_vault": credentials.secure_vault()})
    """

    endpoint_url: str | None = None
    region_name: str | None = DEFAULT_REGION
    addressing_style: str | None = None
    extension: str | None = None
    max_files: int | None = None
    """At most this many objects per range (``None``: all)."""
    page_size: int = LIST_PAGE_SIZE
    retry: RetryPolicy = LISTING_RETRY

    attributes: ClassVar[dict[str, bool]] = {"is_aggregator": True}  # one client per job

    def __post_init__(self) -> None:
        object.__setattr__(self, "extension", normalize_extension(self.extension))

    def __call__(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        credentials = S3Credentials.from_secure_vault(os.environ)
        client = credentials.client(
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            addressing_style=self.addressing_style,
        )
        fetch_page = RetryingPageFetcher(make_page_fetcher(client, "fast"), self.retry)
        statistics = JobStatistics()
        for name in _STATISTICS:
            statistics.add(name, 0)
        ranges = 0
        try:
            for row in rows:
                ranges += 1
                bucket, prefix = _text(row.get("bucket")), _text(row.get("prefix"))
                if not bucket or prefix is None:
                    raise ValueError("input row has no 'bucket' and 'prefix' string columns")
                key_range = KeyRange(_text(row.get("low")), _text(row.get("high")))
                yield from self._list_range(fetch_page, bucket, prefix, key_range, statistics)
        except S3ListingError as error:  # secret-free by construction (yt_assets.s3.errors)
            # The job's last stderr line, no traceback: what the step's failure names.
            raise SystemExit(f"{ERROR_MARKER}{error}") from None
        finally:
            values = statistics.values
            vault = ", ".join(sorted(name for name in os.environ if name.startswith(_VAULT_PREFIX)))
            print(
                f"s3_listing: {ranges} ranges, {values[STAT_KEYS_LISTED]} keys listed, "
                f"{values[STAT_KEYS_MATCHED]} matched; secure vault: {vault}",
                file=sys.stderr,
            )
            statistics.flush()

    def _list_range(
        self,
        fetch_page: PageFetcher,
        bucket: str,
        prefix: str,
        key_range: KeyRange,
        statistics: JobStatistics,
    ) -> Iterator[dict[str, Any]]:
        matched = 0
        for objects in iter_range_pages(fetch_page, bucket, prefix, key_range, self.page_size):
            filtered_out = folder_markers = 0
            rows = []
            for obj in s3_objects(objects):
                if obj.key.endswith("/"):
                    folder_markers += 1
                    continue
                if not key_matches_extension(obj.key, self.extension):
                    filtered_out += 1
                    continue
                rows.append(listing_row(bucket, obj))
                if self.max_files is not None and matched + len(rows) >= self.max_files:
                    break
            matched += len(rows)
            statistics.add(STAT_PAGES, 1)
            statistics.add(STAT_KEYS_LISTED, len(objects) - folder_markers)
            statistics.add(STAT_KEYS_FILTERED_OUT, filtered_out)
            statistics.add(STAT_KEYS_MATCHED, len(rows))
            yield from rows
            if self.max_files is not None and matched >= self.max_files:
                return
