"""Find the child prefixes of an S3 root that are new and ready, a bounded slice per call, exactly.

The Dagster sensor (:mod:`yt_assets.sensors`) is a thin shell around this module, which imports no
Dagster. Three parts:

- :func:`list_child_prefixes`: ``ListObjectsV2`` with ``Delimiter="/"`` and ``Prefix=root``. S3
  rolls every key below a child prefix into one ``CommonPrefixes`` entry, so a page of 1,000 entries
  covers 1,000 prefixes however many objects each holds: objects are never listed one by one.
- :func:`prefix_is_ready` / :func:`check_prefixes_ready`: a ``HEAD`` of ``prefix + marker`` (such
  as ``_SUCCESS``) per candidate prefix; missing means "not ready yet".
- :class:`ScanCursor` and :func:`scan_step`: the pure cursor logic. The scan walks all child
  prefixes in S3's (UTF-8 binary) order, a few pages per call, resuming with ``StartAfter`` where
  the last call stopped, and starts over from the beginning after the last page. A full pass is a
  *cycle*.

Why it is exact:

- New prefixes may appear anywhere in the order, also before the scan position; every prefix is
  visited once per cycle, so a prefix created at any time is seen within one cycle of its creation.
- Whether a prefix is new is decided by the caller's record of what it already added (the dynamic
  partitions), not by the cursor, so a prefix added once is never reported again, also after a
  restart, a lost cursor or a cursor from an older version of the code.
- A prefix whose readiness marker is missing is not reported and not remembered: it stays "not
  known", so the next cycle checks it again.
- The resume position is a plain key (``StartAfter``), not an opaque continuation token: it stays
  valid across server restarts and lets a call stop in the middle of a page (when its ``HEAD``
  budget runs out) and the next call continue right after the last prefix it handled.

Example::

    known: set[str] = set()           # client: a boto3 S3 client
    cursor = ScanCursor.start("my-bucket", "events/")
    step = scan_step(
        cursor,
        list_page=lambda after: list_child_prefixes(client, "my-bucket", "events/",
                                                    start_after=after),
        known=known,
        check_ready=lambda ps: check_prefixes_ready(client, "my-bucket", ps, "_SUCCESS"),
        max_pages=10,
    )
    known.update(step.new_ready)       # e.g. ['events/2026-11-28/']
    cursor = step.cursor               # save step.cursor.to_json() for the next call
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from yt_assets.s3.errors import describe_s3_error, s3_error_code
from yt_assets.s3.pages import LIST_PAGE_SIZE, LOST_CHARACTER, list_objects_v2_request
from yt_assets.s3.retries import RetryBudgetExhausted, RetryCounter, RetryPolicy, call_with_retries

__all__ = [
    "DEFAULT_MAX_CHECKS",
    "PREFIX_DELIMITER",
    "KnownPrefixes",
    "PrefixPage",
    "S3PrefixError",
    "ScanCursor",
    "ScanReport",
    "ScanStep",
    "check_prefixes_ready",
    "list_child_prefixes",
    "prefix_is_ready",
    "scan_step",
    "start_after_prefix",
    "summarize_scan",
]

PREFIX_DELIMITER = "/"
DEFAULT_MAX_CHECKS = 2000
"""Readiness ``HEAD`` requests per :func:`scan_step` call, by default."""
READY_CHECK_THREADS = 8
"""Concurrent ``HEAD`` requests; dagster-aws's client pools 10 connections."""
_MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
SCAN_RETRY = RetryPolicy(max_attempts=4, max_seconds=20.0, base_delay=0.2)
"""Retries of a listing page or a marker ``HEAD`` on top of the S3 client's own (throttling,
5xx, a broken connection), well inside the sensor's 60 s evaluation timeout."""

KnownPrefixes = AbstractSet[str] | Callable[[Sequence[str]], AbstractSet[str]]
"""What the caller already has: a set, or a function returning which of some prefixes it has."""


class S3PrefixError(RuntimeError):
    """Listing a root or checking a readiness marker failed (not a plain "marker missing").

    The message names the bucket, the root or prefix and the S3 error code (or the exception type
    for network errors); never credentials.

    Example::

        try:
            list_child_prefixes(client, "no-such-bucket", "events/")
        except S3PrefixError as error:
            print(error)  # Listing prefixes of s3://no-such-bucket/events/ failed: NoSuchBucket ...
    """


@dataclass(frozen=True, slots=True)
class PrefixPage:
    """One or more ``ListObjectsV2`` pages of a root, reduced to its child prefixes.

    Example::

        page = list_child_prefixes(client, "my-bucket", "events/")
        page.prefixes          # ('events/2026-11-27/', 'events/2026-11-28/')
        page.next_token        # None: the listing is complete
    """

    prefixes: tuple[str, ...]
    """Child prefixes in S3 order, each ending with ``/``."""
    next_token: str | None
    """Continuation token for the rest of the listing; ``None`` when this was the last page. The
    server's own: where it lost characters (U+FFFD: SeaweedFS writes the page's last entry into
    it), only ``resume_after`` goes on exactly, and passing it back raises."""
    resume_after: str | None = None
    """``StartAfter`` value that continues the listing right after this page (``None`` if empty)."""


def start_after_prefix(prefix: str) -> str:
    """The smallest ``StartAfter`` that skips every key under ``prefix`` and nothing after it.

    Keys under ``"r/a/"`` are ``"r/a/..."``; ``"/"`` is followed by ``"0"`` in byte order, so
    ``"r/a0"`` sorts after all of them and before any later child prefix (``"r/a0/"``, ``"r/b/"``).
    ``StartAfter="r/a/"`` itself would not do: S3 rolls the keys after it back into ``"r/a/"``.

    >>> start_after_prefix("events/2026-11-28/")
    'events/2026-11-280'
    """
    if not prefix.endswith(PREFIX_DELIMITER):
        raise ValueError(f"a child prefix ends with {PREFIX_DELIMITER!r}, got {prefix!r}")
    return prefix[:-1] + chr(ord(PREFIX_DELIMITER) + 1)


def _failure_cause(error: BaseException) -> str:
    """``NoSuchBucket (HTTP 404)``, or the type of a network error (whose text may hold a
    request URL), and the attempts when retries ran out."""
    if isinstance(error, RetryBudgetExhausted):
        return str(error)
    return describe_s3_error(error)


def _listing_failed(bucket: str, root: str, cause: str) -> S3PrefixError:
    return S3PrefixError(f"Listing prefixes of s3://{bucket}/{root} failed: {cause}")


def _with_retries(
    request: Callable[[], Any], retry: RetryPolicy | None, counter: RetryCounter | None
) -> Any:
    return call_with_retries(request, retry or SCAN_RETRY, counter)


def list_child_prefixes(
    s3_client: Any,
    bucket: str,
    root: str,
    *,
    continuation_token: str | None = None,
    start_after: str | None = None,
    max_pages: int = 1,
    page_size: int = LIST_PAGE_SIZE,
    retry: RetryPolicy | None = None,
    retry_counter: RetryCounter | None = None,
) -> PrefixPage:
    """Child prefixes of ``root`` (``CommonPrefixes`` with ``Delimiter="/"``), up to ``max_pages``.

    ``root`` is passed as the S3 ``Prefix`` unchanged (normally it ends with ``/``; ``""`` is the
    bucket's top level). Continue with ``continuation_token=page.next_token``, or with
    ``start_after=page.resume_after`` (a plain key, valid also for a later process). Objects
    directly under ``root`` are skipped. Transient failures are retried per ``retry`` (default
    :data:`SCAN_RETRY`); raises :class:`S3PrefixError` on any other failure.

    Example::

        page = list_child_prefixes(client, "my-bucket", "events/", max_pages=2)
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be >= 1, got {max_pages}")
    if not 1 <= page_size <= LIST_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {LIST_PAGE_SIZE}, got {page_size}")
    if continuation_token is not None and LOST_CHARACTER in continuation_token:
        raise _listing_failed(
            bucket,
            root,
            "the continuation token lost characters (U+FFFD); continue with "
            "start_after=page.resume_after",
        )
    prefixes: list[str] = []
    resume_after = start_after
    token = continuation_token
    next_token = None
    for _ in range(max_pages):
        request = list_objects_v2_request(
            bucket=bucket,
            prefix=root,
            continuation_token=token,
            max_keys=page_size,
            delimiter=PREFIX_DELIMITER,
            start_after=resume_after if token is None else None,
        )
        try:
            response = _with_retries(
                partial(s3_client.list_objects_v2, **request), retry, retry_counter
            )
        except (ClientError, BotoCoreError, RetryBudgetExhausted) as error:
            raise _listing_failed(bucket, root, _failure_cause(error)) from error
        page_prefixes = [entry["Prefix"] for entry in response.get("CommonPrefixes", [])]
        prefixes.extend(page_prefixes)
        # The page ends at its largest entry, a prefix or an object directly under root.
        last_entries = [start_after_prefix(page_prefixes[-1])] if page_prefixes else []
        last_entries += [entry["Key"] for entry in response.get("Contents", [])[-1:]]
        went_on_after = resume_after
        if last_entries:
            resume_after = max(last_entries)
        next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        if response.get("IsTruncated") and not next_token:
            raise _listing_failed(bucket, root, "truncated page without NextContinuationToken")
        if next_token is None:
            break
        token = next_token
        if LOST_CHARACTER in next_token:  # see iter_listing_pages: go on after the last entry
            if resume_after is None or (
                went_on_after is not None and resume_after <= went_on_after
            ):
                raise _listing_failed(
                    bucket,
                    root,
                    "the continuation token lost characters (U+FFFD) and the pages stopped "
                    "moving forward",
                )
            token = None
    return PrefixPage(prefixes=tuple(prefixes), next_token=next_token, resume_after=resume_after)


def prefix_is_ready(
    s3_client: Any,
    bucket: str,
    prefix: str,
    marker: str,
    *,
    retry: RetryPolicy | None = None,
    retry_counter: RetryCounter | None = None,
) -> bool:
    """Whether the object ``prefix + marker`` (e.g. ``events/2026-11-28/_SUCCESS``) exists.

    ``HEAD`` answers 404 -> ``False`` (a missing bucket also answers 404 to ``HEAD``). Any other
    failure (403, 5xx after retries, network) raises :class:`S3PrefixError` naming bucket and key.
    Transient failures are retried per ``retry`` (default :data:`SCAN_RETRY`).

    Example::

        prefix_is_ready(client, "my-bucket", "events/2026-11-28/", "_SUCCESS")   # False until it is put
    """
    key = prefix + marker
    try:
        _with_retries(lambda: s3_client.head_object(Bucket=bucket, Key=key), retry, retry_counter)
    except (ClientError, BotoCoreError) as error:
        if s3_error_code(error)[0] in _MISSING_OBJECT_CODES:
            return False
        raise S3PrefixError(
            f"Checking readiness marker s3://{bucket}/{key} failed: {_failure_cause(error)}"
        ) from error
    except RetryBudgetExhausted as error:
        raise S3PrefixError(
            f"Checking readiness marker s3://{bucket}/{key} failed: {_failure_cause(error)}"
        ) from error
    return True


def check_prefixes_ready(
    s3_client: Any,
    bucket: str,
    prefixes: Sequence[str],
    marker: str,
    *,
    max_workers: int = READY_CHECK_THREADS,
) -> list[bool]:
    """:func:`prefix_is_ready` for each prefix (in order), ``max_workers`` ``HEAD`` s at a time.

    boto3 clients are thread-safe; the first failure is raised.

    Example::

        check_prefixes_ready(client, "my-bucket", ["e/1/", "e/2/"], "_SUCCESS")   # [True, False]
    """
    if len(prefixes) <= 1 or max_workers <= 1:
        return [prefix_is_ready(s3_client, bucket, prefix, marker) for prefix in prefixes]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(prefixes))) as pool:
        return list(
            pool.map(lambda prefix: prefix_is_ready(s3_client, bucket, prefix, marker), prefixes)
        )


CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class ScanCursor:
    """Where the scan of ``s3://bucket/root`` stands, with counters of the current cycle.

    It holds no list of prefixes: what was found lives with the caller (dynamic partitions), so
    the cursor stays small whatever the number of prefixes. JSON form (``to_json``)::

        {"version": 1, "bucket": "b", "root": "events/", "start_after": "events/2026-11-280",
         "cycle": 3, "pages_in_cycle": 2, "prefixes_in_cycle": 2000, "not_ready_in_cycle": 1,
         "found_total": 2500}

    Example::

        cursor = ScanCursor.from_json(None, bucket="my-bucket", root="events/")  # a sensor's cursor
        cursor.to_json()
    """

    bucket: str
    root: str
    start_after: str | None = None
    """``StartAfter`` of the next page; ``None``: the next call starts a new cycle."""
    cycle: int = 0
    """Completed full passes over the root."""
    pages_in_cycle: int = 0
    prefixes_in_cycle: int = 0
    not_ready_in_cycle: int = 0
    found_total: int = 0
    """New ready prefixes reported since the cursor was created."""

    @classmethod
    def start(cls, bucket: str, root: str) -> ScanCursor:
        """A cursor at the beginning of the first cycle."""
        return cls(bucket=bucket, root=root)

    def to_json(self) -> str:
        return json.dumps({"version": CURSOR_VERSION, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, *, bucket: str, root: str) -> ScanCursor:
        """Parse a saved cursor; ``None``/``""`` or one saved for another bucket or root -> start.

        A cursor that is not valid JSON of this shape raises ``ValueError`` (the caller may start
        over: exactness never depends on the cursor).
        """
        if not text:
            return cls.start(bucket, root)
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
                raise ValueError(f"expected a version {CURSOR_VERSION} object")
            cursor = cls(
                bucket=str(data["bucket"]),
                root=str(data["root"]),
                start_after=None if data["start_after"] is None else str(data["start_after"]),
                cycle=int(data["cycle"]),
                pages_in_cycle=int(data["pages_in_cycle"]),
                prefixes_in_cycle=int(data["prefixes_in_cycle"]),
                not_ready_in_cycle=int(data["not_ready_in_cycle"]),
                found_total=int(data["found_total"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a prefix scan cursor: {text[:200]!r} ({error})") from error
        if (cursor.bucket, cursor.root) != (bucket, root):
            return cls.start(bucket, root)
        return cursor


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one :func:`scan_step` call did."""

    started_after: str | None
    """``StartAfter`` the call began with (``None``: start of a cycle)."""
    pages: int
    prefixes_seen: int
    already_known: int
    checked: int
    """Readiness markers requested (``HEAD`` s)."""
    not_ready: tuple[str, ...]
    stopped_by: str
    """``"end of listing"`` (cycle complete), ``"page budget"`` or ``"check budget"``."""
    cycle_completed: bool
    cycle_prefixes: int
    """Prefixes seen so far in this cycle (the whole root when ``cycle_completed``)."""


@dataclass(frozen=True, slots=True)
class ScanStep:
    """The result of :func:`scan_step`: new ready prefixes, the next cursor, and a report."""

    new_ready: tuple[str, ...]
    cursor: ScanCursor
    report: ScanReport


def _known_among(known: KnownPrefixes, prefixes: Sequence[str]) -> AbstractSet[str]:
    if isinstance(known, AbstractSet):
        return {prefix for prefix in prefixes if prefix in known}
    return known(prefixes)


def scan_step(
    cursor: ScanCursor,
    *,
    list_page: Callable[[str | None], PrefixPage],
    known: KnownPrefixes,
    check_ready: Callable[[Sequence[str]], Sequence[bool]] | None = None,
    max_pages: int,
    max_checks: int = DEFAULT_MAX_CHECKS,
) -> ScanStep:
    """Advance the scan by at most ``max_pages`` pages and ``max_checks`` readiness checks.

    - ``list_page(start_after)`` returns one page of child prefixes starting strictly after
      ``start_after`` (``None``: from the beginning), e.g. :func:`list_child_prefixes`.
    - ``known``: prefixes already taken (a set, or a function ``prefixes -> subset of them known``,
      called once per page). Known prefixes are skipped without any request.
    - ``check_ready(prefixes) -> [bool]``: readiness of unknown prefixes, in order; ``None``: every
      unknown prefix is ready (``max_checks`` does not apply).

    The call ends at the end of the listing (the cycle is complete; the next call starts from the
    beginning, so nothing is seen twice in one call), after ``max_pages`` pages, or when the next
    unknown prefix would exceed ``max_checks``; then the cursor points right after the last prefix
    handled, which may be in the middle of a page.

    Example::

        lister = lambda after: list_child_prefixes(client, "my-bucket", "r/", start_after=after)
        step = scan_step(ScanCursor.start("my-bucket", "r/"), list_page=lister, known=set(), max_pages=1)
        step.new_ready, step.cursor.to_json(), step.report.stopped_by
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be >= 1, got {max_pages}")
    if max_checks < 1:
        raise ValueError(f"max_checks must be >= 1, got {max_checks}")
    start_after = cursor.start_after
    new_ready: list[str] = []
    not_ready: list[str] = []
    pages = seen = already_known = checked = 0
    stopped_by = "page budget"
    cycle_completed = False
    while pages < max_pages:
        if check_ready is not None and checked >= max_checks:
            stopped_by = "check budget"
            break
        page = list_page(start_after)
        pages += 1
        # Servers honour StartAfter; the filter only guards against one that would not.
        prefixes = [p for p in page.prefixes if start_after is None or p > start_after]
        if (
            page.next_token is not None
            and start_after is not None
            and (page.resume_after is None or page.resume_after <= start_after)
        ):
            raise S3PrefixError(f"the listing did not advance past StartAfter={start_after!r}")
        known_here = _known_among(known, prefixes)
        candidates = [p for p in prefixes if p not in known_here]
        page_end = page.resume_after
        cut = False
        if check_ready is not None and len(candidates) > max_checks - checked:
            candidates = candidates[: max_checks - checked]
            cut = True
            # Handled: everything up to the last candidate checked; the rest waits for next call.
            page_end = start_after_prefix(candidates[-1])
            prefixes = [p for p in prefixes if p <= candidates[-1]]
        seen += len(prefixes)
        already_known += sum(1 for p in prefixes if p in known_here)
        if check_ready is None:
            new_ready.extend(candidates)
        elif candidates:
            readiness = list(check_ready(candidates))
            if len(readiness) != len(candidates):
                raise ValueError("check_ready must return one bool per prefix")
            checked += len(candidates)
            for prefix, ready in zip(candidates, readiness, strict=True):
                (new_ready if ready else not_ready).append(prefix)
        if cut:
            start_after = page_end
            stopped_by = "check budget"
            break
        if page.next_token is None:
            start_after = None
            stopped_by = "end of listing"
            cycle_completed = True
            break
        start_after = page_end
    cycle_prefixes = cursor.prefixes_in_cycle + seen
    if cycle_completed:
        next_cursor = replace(
            cursor,
            start_after=None,
            cycle=cursor.cycle + 1,
            pages_in_cycle=0,
            prefixes_in_cycle=0,
            not_ready_in_cycle=0,
            found_total=cursor.found_total + len(new_ready),
        )
    else:
        next_cursor = replace(
            cursor,
            start_after=start_after,
            pages_in_cycle=cursor.pages_in_cycle + pages,
            prefixes_in_cycle=cycle_prefixes,
            not_ready_in_cycle=cursor.not_ready_in_cycle + len(not_ready),
            found_total=cursor.found_total + len(new_ready),
        )
    report = ScanReport(
        started_after=cursor.start_after,
        pages=pages,
        prefixes_seen=seen,
        already_known=already_known,
        checked=checked,
        not_ready=tuple(not_ready),
        stopped_by=stopped_by,
        cycle_completed=cycle_completed,
        cycle_prefixes=cycle_prefixes,
    )
    return ScanStep(new_ready=tuple(new_ready), cursor=next_cursor, report=report)


def summarize_scan(step: ScanStep, *, ready_marker: str | None = None, sample: int = 5) -> str:
    """One line on what a :func:`scan_step` call checked, for a sensor's skip reason or log.

    The line reads, for instance::

        s3://b/events/: 0 new ready prefixes; listed 1 page(s) from the beginning, 3 prefixes
        seen (2 already known); 1 '_SUCCESS' markers checked, 1 not ready (events/3/);
        cycle 1 complete (3 prefixes), next call starts from the beginning
    """
    cursor, report = step.cursor, step.report
    where = f"s3://{cursor.bucket}/{cursor.root}"
    position = (
        "from the beginning" if report.started_after is None else f"after {report.started_after!r}"
    )
    parts = [
        f"{where}: {len(step.new_ready)} new ready prefixes; listed {report.pages} page(s) "
        f"{position}, {report.prefixes_seen} prefixes seen ({report.already_known} already known)"
    ]
    if ready_marker is not None:
        text = (
            f"{report.checked} {ready_marker!r} markers checked, {len(report.not_ready)} not ready"
        )
        if report.not_ready:
            shown = ", ".join(report.not_ready[:sample])
            more = (
                f" and {len(report.not_ready) - sample} more"
                if len(report.not_ready) > sample
                else ""
            )
            text += f" ({shown}{more})"
        parts.append(text)
    if report.cycle_completed:
        parts.append(
            f"cycle {cursor.cycle} complete ({report.cycle_prefixes} prefixes), "
            "next call starts from the beginning"
        )
    else:
        parts.append(
            f"stopped by the {report.stopped_by} after {report.cycle_prefixes} prefixes of "
            f"cycle {cursor.cycle + 1}, next call resumes after {cursor.start_after!r}"
        )
    return "; ".join(parts)
