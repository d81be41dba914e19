"""Idle shutdown of a local YT server: it stops itself after a period without requests or
running operations.

A server started on demand by a run (:func:`yt_assets.local_yt.ensure_local_yt`) is detached and
outlives that run; without this it would hold its port and state directory forever. A request in
flight (a long ``read_table`` stream too) or a running operation keeps the server busy; a
``/_local/health`` check counts as activity, so a caller that has just found the server alive has
a whole idle period to use it.

Usage::

    monitor = IdleMonitor(300.0, on_idle=server.shutdown, busy=engine.has_running_operations)
    monitor.start()
    with monitor.request():
        ...  # handle one request
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S = 300.0
"""How long a server started on demand waits without requests or operations before it stops."""


class IdleMonitor:
    """Calls ``on_idle`` once nothing happened for ``timeout_s`` seconds.

    "Nothing" means no request in flight, none finished within ``timeout_s`` and ``busy()``
    false (e.g. no operation running).

    >>> stopped = threading.Event()
    >>> monitor = IdleMonitor(0.05, on_idle=stopped.set, busy=lambda: False)
    >>> monitor.start()
    >>> stopped.wait(5)
    True
    >>> monitor.stop()
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        on_idle: Callable[[], None],
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"idle timeout must be > 0 seconds, got {timeout_s}")
        self.timeout_s = timeout_s
        self._on_idle = on_idle
        self._busy = busy
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def idle_for(self) -> float:
        """Seconds since the last activity (0 while a request is in flight)."""
        with self._lock:
            if self._in_flight:
                return 0.0
            return time.monotonic() - self._last_activity

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Marks one request in flight."""
        with self._lock:
            self._in_flight += 1
            self._last_activity = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="local-yt-idle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the server is stopping anyway)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _watch(self) -> None:
        interval = min(max(self.timeout_s / 4, 0.01), 5.0)
        while not self._stop.wait(interval):
            if self._busy():
                with self._lock:
                    self._last_activity = time.monotonic()
                continue
            if self.idle_for() >= self.timeout_s:
                logger.info(
                    "No requests or running operations for %.0f s: the local YT stops",
                    self.timeout_s,
                )
                self._on_idle()
                return
