"""Retrying transient S3 faults with backoff, within a bounded budget, and counting the retries.

Jobs import it (:mod:`yt_assets.yt_jobs.s3_processing`): standard library and botocore only. The
driver side (listing, sensor) uses it too.

What is transient (:func:`is_transient`): throttling and server errors (``SlowDown``, HTTP 5xx or
429), and the network failing under a request (connection refused, reset or closed, a read
timeout, a body cut short: ``ResponseStreamingError``, ``IncompleteReadError``). Everything else is
permanent (``NoSuchKey``, ``AccessDenied``, ``InvalidObjectState``, ``NoSuchBucket``, an exception in
a processor) and is raised at once.

Each attempt starts over (a download from its first byte), so a result never mixes two attempts.

Example::

    counter = RetryCounter()
    attempts = []

    def download() -> bytes:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError("reset by peer")  # transient: tried again
        return b"body"

    assert call_with_retries(download, RetryPolicy(base_delay=0.01), counter) == b"body"
    assert counter.retries == 2 and counter.summary() == "2 retries (ConnectionResetError: 2)"
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from yt_assets.s3.errors import s3_error_code

__all__ = [
    "THROTTLING_CODES",
    "RetryBudgetExhausted",
    "RetryCounter",
    "RetryPolicy",
    "call_with_retries",
    "error_code",
    "is_transient",
]

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)
"""S3 error codes that mean "try again later", whatever the HTTP status."""

_TRANSIENT_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    HTTPClientError,  # read/connect timeouts, connection closed, endpoint unreachable
    ConnectionClosedError,
    EndpointConnectionError,
    ResponseStreamingError,  # the body broke off mid-stream
    IncompleteReadError,  # fewer bytes than Content-Length
    FlexibleChecksumError,  # the bytes changed on the way
    ConnectionError,
    TimeoutError,
    http.client.IncompleteRead,
)


def error_code(error: BaseException) -> str:
    """The S3 error code with its HTTP status (``SlowDown (HTTP 503)``), or the exception type
    (never an error's text, which may quote a request URL)."""
    code, status = s3_error_code(error)
    return f"{code} (HTTP {status})" if status else code


def is_transient(error: BaseException) -> bool:
    """Whether a retry of the same request may succeed (module docstring)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in THROTTLING_CODES or int(status) >= 500 or int(status) == 429
    if isinstance(error, _TRANSIENT_NETWORK_ERRORS):
        return True
    cause = error.__cause__ or error.__context__
    return cause is not None and cause is not error and _is_network_cause(cause)


def _is_network_cause(error: BaseException) -> bool:
    # A processor may wrap a broken read in its own exception; the read's error is still there.
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 5:
        if isinstance(current, _TRANSIENT_NETWORK_ERRORS):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: ``max_attempts`` in all (1: no retry), within ``max_seconds`` from
    the first attempt, sleeping ``base_delay * 2**n`` (at most ``max_delay``, with full jitter)."""

    max_attempts: int = 8
    max_seconds: float = 120.0
    base_delay: float = 0.1
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_seconds < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("max_seconds, base_delay and max_delay must be >= 0")

    def delay(self, retry_number: int) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class RetryCounter:
    """Retries made, by cause (thread-safe); one per job, listing or sensor tick.

    ``retries``: attempts repeated; ``gave_up``: calls that failed after exhausting the budget;
    ``by_cause``: retries per error code (``SlowDown (HTTP 503)``, ``ResponseStreamingError``...).
    """

    retries: int = 0
    gave_up: int = 0
    by_cause: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_retry(self, cause: str) -> None:
        with self._lock:
            self.retries += 1
            self.by_cause[cause] += 1

    def record_gave_up(self) -> None:
        with self._lock:
            self.gave_up += 1

    def summary(self) -> str:
        """``3 retries (SlowDown (HTTP 503): 2, ResponseStreamingError: 1)`` or ``no retries``."""
        with self._lock:
            if not self.retries:
                return "no retries"
            causes = ", ".join(f"{cause}: {n}" for cause, n in self.by_cause.most_common())
            return f"{self.retries} retries ({causes})"


class RetryBudgetExhausted(Exception):
    """A transient fault persisted past the budget: names the last cause and the attempts made."""

    def __init__(self, last_error: BaseException, attempts: int, seconds: float) -> None:
        self.last_error = last_error
        self.attempts = attempts
        self.seconds = seconds
        super().__init__(
            f"{error_code(last_error)}: retry budget exhausted after {attempts} attempts "
            f"in {seconds:.1f} s"
        )


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    counter: RetryCounter | None = None,
    *,
    transient: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()``, repeated while it raises a transient error and the budget lasts.

    A permanent error is raised unchanged at once; a transient one past the budget raises
    :class:`RetryBudgetExhausted` (its ``__cause__`` is the last error).
    """
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt()
        except Exception as error:
            if not transient(error):
                raise
            elapsed = time.monotonic() - started
            pause = policy.delay(attempts)
            if attempts >= policy.max_attempts or elapsed + pause > policy.max_seconds:
                if counter is not None:
                    counter.record_gave_up()
                raise RetryBudgetExhausted(error, attempts, elapsed) from error
            if counter is not None:
                counter.record_retry(error_code(error))
            sleep(pause)
