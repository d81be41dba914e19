"""Watching a running YT operation from the driver (no Dagster): progress, summary, job stderrs.

:func:`wait_with_progress` polls the operation and reports its job counts on change, at most once
per ``interval_seconds``; when it ends it returns an :class:`OperationSummary` (state, duration,
jobs, rows in and out, the aggregated job statistics). :func:`aborted_if_left` aborts the
operation when the block around it is left by an exception (an interrupted wait, Dagster's run
termination), forwarding cancellation to YT: open it right after starting the operation, so that
nothing between the start and the wait (a log line, metadata) can leave the operation running.
:func:`wait_or_abort` waits within it (for a sort or an erase, without progress reports).
:func:`failed_job_stderrs` reads the stderr of failed jobs (of a failed operation, or of a
completed one that retried some jobs), one excerpt per distinct failure.

Usage::

    with aborted_if_left(operation):
        summary = wait_with_progress(client, operation, report=print, interval_seconds=15)
    print(summary.describe())
    for failure in failed_job_stderrs(client, operation.id):
        print(failure.describe())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yt.wrapper as yt

DEFAULT_PROGRESS_INTERVAL_SECONDS = 15.0
POLL_SECONDS = 1.0
FINISHED_STATES = frozenset({"completed", "failed", "aborted"})
STDERR_EXCERPT_CHARS = 2_000
MAX_FAILED_JOBS_READ = 20
JOB_STATES = ("pending", "running", "completed", "failed", "aborted")


@dataclass(frozen=True)
class JobCounts:
    """Job counts of an operation's ``progress/jobs`` (a cluster nests some as ``{total: n}``)."""

    total: int = 0
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    aborted: int = 0

    @classmethod
    def from_progress(cls, progress: Mapping[str, Any] | None) -> JobCounts:
        jobs = (progress or {}).get("jobs") or {}

        def count(name: str) -> int:
            value = jobs.get(name, 0)
            if isinstance(value, Mapping):
                value = value.get("total", 0)
            return int(value or 0)

        return cls(total=count("total"), **{state: count(state) for state in JOB_STATES})

    @property
    def share_done(self) -> float:
        return self.completed / self.total if self.total else 0.0

    def describe(self) -> str:
        """``3/8 jobs completed (38%): 2 running, 3 pending, 1 failed, 0 aborted``."""
        return (
            f"{self.completed}/{self.total} jobs completed ({self.share_done:.0%}): "
            f"{self.running} running, {self.pending} pending, {self.failed} failed, "
            f"{self.aborted} aborted"
        )


def statistic_sum(
    job_statistics: Mapping[str, Any], path: str, job_state: str = "completed"
) -> int | None:
    """The sum of a statistic over the jobs in ``job_state`` (any job type), from the
    ``progress/job_statistics`` layout ``<path>/$/<state>/<job_type>/sum``; ``None`` if absent."""
    node: Any = job_statistics
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    by_type = (node.get("$") or {}).get(job_state) if isinstance(node, Mapping) else None
    if not by_type:
        return None
    return sum(int(summary.get("sum", 0)) for summary in by_type.values())


def custom_statistic_sums(
    job_statistics: Mapping[str, Any], job_state: str = "completed"
) -> dict[str, int]:
    """Every user statistic (``custom/...``) summed over the jobs in ``job_state``, by name."""
    sums: dict[str, int] = {}

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, child in node.items():
            if key == "$":
                total = statistic_sum(job_statistics, f"custom/{path}", job_state)
                if total is not None:
                    sums[path] = total
            elif isinstance(child, Mapping):
                walk(child, f"{path}/{key}" if path else str(key))

    custom = job_statistics.get("custom")
    if isinstance(custom, Mapping):
        walk(custom, "")
    return sums


@dataclass(frozen=True)
class OperationSummary:
    """How an operation ended, for the run log and the asset metadata."""

    operation_id: str
    state: str
    duration_seconds: float
    jobs: JobCounts
    job_statistics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows_in(self) -> int | None:
        return statistic_sum(self.job_statistics, "data/input/row_count")

    @property
    def rows_out(self) -> int | None:
        outputs = self.job_statistics.get("data", {}).get("output", {})
        sums = [
            statistic_sum(self.job_statistics, f"data/output/{index}/row_count")
            for index in outputs
        ]
        known = [value for value in sums if value is not None]
        return sum(known) if known else None

    @property
    def user_statistics(self) -> dict[str, int]:
        """User statistics summed over completed jobs (``s3/objects_processed`` -> 42)."""
        return custom_statistic_sums(self.job_statistics)

    def describe(self, s3_bytes_statistic: str | None = None) -> str:
        """One line: state, duration, jobs, rows in and out (and bytes read from S3)."""
        parts = [
            f"YT operation {self.operation_id} {self.state} in {self.duration_seconds:.1f} s",
            f"{self.jobs.completed} jobs completed, {self.jobs.failed} failed, "
            f"{self.jobs.aborted} aborted",
            f"rows in {_or_unknown(self.rows_in)}, out {_or_unknown(self.rows_out)}",
        ]
        if s3_bytes_statistic is not None:
            read = self.user_statistics.get(s3_bytes_statistic)
            parts.append(f"{_or_unknown(read)} bytes read from S3")
        return "; ".join(parts)


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


@contextmanager
def aborted_if_left(operation: yt.Operation) -> Iterator[yt.Operation]:
    """Abort ``operation`` when the block is left by an exception (``KeyboardInterrupt``,
    Dagster's run termination, a poll that failed), then let the exception go on (a failed
    abort is a note on it); the operation's own failure (``YtOperationFailedError``: it has
    ended) is let through as is."""
    try:
        yield operation
    except yt.YtOperationFailedError:
        raise
    except BaseException as leaving:
        try:
            operation.abort()
        except yt.YtError as error:  # the exception that left the block is the one to see
            leaving.add_note(f"Aborting YT operation {operation.id} failed: {error}")
        raise


def wait_or_abort(operation: yt.Operation) -> None:
    """Wait for ``operation`` (started with ``sync=False``), aborting it when the wait is
    interrupted by anything (Dagster's run termination is no ``KeyboardInterrupt``, the only
    interruption ``yt.wrapper``'s own wait aborts on); raises ``YtOperationFailedError`` if it
    failed."""
    with aborted_if_left(operation):
        operation.wait(print_progress=False)


def wait_with_progress(
    client: yt.YtClient,
    operation: yt.Operation,
    *,
    report: Callable[[str], None],
    interval_seconds: float = DEFAULT_PROGRESS_INTERVAL_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> OperationSummary:
    """Wait for ``operation``, reporting job counts when they change (at most every
    ``interval_seconds``); returns the summary of a completed operation.

    A failed or aborted operation raises ``YtOperationFailedError`` (with the failed jobs'
    stderrs, as ``Operation.wait`` does). An interrupted wait leaves the operation running:
    wait inside :func:`aborted_if_left`.
    """
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
    started = time.monotonic()
    reported: JobCounts | None = None
    last_report = float("-inf")
    while True:
        attributes = client.get_operation(operation.id, attributes=["state", "progress"])
        state = str(attributes.get("state"))
        counts = JobCounts.from_progress(attributes.get("progress"))
        now = time.monotonic()
        if state in FINISHED_STATES:
            break
        if counts != reported and counts.total and now - last_report >= interval_seconds:
            report(f"YT operation {operation.id} {state}: {counts.describe()}")
            reported, last_report = counts, now
        time.sleep(min(poll_seconds, interval_seconds))
    operation.wait(print_progress=False)  # already finished: raises on failure
    progress = attributes.get("progress") or {}
    return OperationSummary(
        operation_id=operation.id,
        state=state,
        duration_seconds=time.monotonic() - started,
        jobs=counts,
        job_statistics=progress.get("job_statistics") or {},
    )


def operation_summary(
    client: yt.YtClient, operation_id: str, duration_seconds: float
) -> OperationSummary:
    """The summary of a finished operation, read back (e.g. after it failed)."""
    attributes = client.get_operation(operation_id, attributes=["state", "progress"])
    progress = attributes.get("progress") or {}
    return OperationSummary(
        operation_id=operation_id,
        state=str(attributes.get("state")),
        duration_seconds=duration_seconds,
        jobs=JobCounts.from_progress(progress),
        job_statistics=progress.get("job_statistics") or {},
    )


@dataclass(frozen=True)
class JobFailure:
    """One distinct failure: its stderr excerpt, the error, and the jobs that failed so."""

    job_ids: tuple[str, ...]
    error: str
    stderr_excerpt: str

    def describe(self) -> str:
        jobs = ", ".join(self.job_ids[:3]) + (" ..." if len(self.job_ids) > 3 else "")
        head = f"{len(self.job_ids)} failed job(s) ({jobs}): {self.error}"
        return f"{head}\n{self.stderr_excerpt}" if self.stderr_excerpt else head


def failed_job_stderrs(
    client: yt.YtClient,
    operation_id: str,
    *,
    limit: int = STDERR_EXCERPT_CHARS,
    max_jobs: int = MAX_FAILED_JOBS_READ,
    hidden: Sequence[str] = (),
) -> list[JobFailure]:
    """The failed jobs' stderrs grouped by distinct failure (the end of the stderr, where a
    traceback names its cause, is what makes two failures the same); each of ``hidden`` (the
    secure vault's values: a job may print them) shows as ``***``."""
    jobs = client.list_jobs(operation_id, job_state="failed", limit=max_jobs).get("jobs") or []
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for job in jobs:
        job_id = str(job["id"])
        stderr = b""
        if job.get("stderr_size"):
            try:
                stderr = client.get_job_stderr(operation_id, job_id).read()
            except yt.YtResponseError:
                stderr = b""
        excerpt = _excerpt(hide_values(stderr.decode("utf-8", "replace"), hidden), limit)
        error = hide_values(_error_text(job.get("error")), hidden)
        groups.setdefault(_last_line(excerpt) or error, []).append((job_id, error, excerpt))
    return [
        JobFailure(
            job_ids=tuple(job_id for job_id, _, _ in members),
            error=members[0][1],
            stderr_excerpt=members[0][2],
        )
        for members in groups.values()
    ]


MIN_HIDDEN_LENGTH = 4
"""Shorter values are not hidden (replacing them would garble the text)."""


def hide_values(text: str, hidden: Sequence[str]) -> str:
    """``text`` with each of ``hidden`` (longest first) replaced by ``***``.

    >>> hide_values("key=abcd1234 id=abcd", ["abcd", "abcd1234"])
    'key=*** id=***'
    """
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= MIN_HIDDEN_LENGTH:
            text = text.replace(value, "***")
    return text


def _excerpt(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _error_text(error: Any) -> str:
    """The innermost messages of a YT error, joined (``User job failed: Process exited with code 1``)."""
    if not isinstance(error, Mapping):
        return ""
    messages = []
    while isinstance(error, Mapping):
        message = str(error.get("message") or "")
        if message:
            messages.append(message)
        inner = error.get("inner_errors") or []
        error = inner[0] if inner else None
    return ": ".join(messages)
