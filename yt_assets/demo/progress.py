"""A one-line progress bar for the terminal (standard library only), fed by Dagster's log records.

On a terminal the line is redrawn in place (``\\r``); otherwise (a pipe, a CI log) each change of
the count is printed on its own line.

Usage::

    bar = ProgressBar(total=8, stream=sys.stderr)
    bar.update(label="s3_listing")
    bar.advance()
    bar.finish()
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from typing import Any, TextIO

_COUNTED_EVENTS = frozenset({"ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"})
_LISTING_PROGRESS_MARK = "keys listed"


def render_bar(done: int, total: int, width: int = 24) -> str:
    """``[#########...............]`` for ``done`` of ``total``.

    >>> render_bar(1, 4, width=8)
    '[##......]'
    """
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render_line(
    done: int, total: int, elapsed_s: float, label: str, detail: str, width: int
) -> str:
    """The progress line, cut to ``width`` characters: counts, time and the detail (e.g. keys
    listed and keys/s) come first, the step label last, so a narrow terminal cuts the label.

    >>> render_line(1, 4, 2.0, "s3_listing", "286 keys listed, 950 keys/s", width=100)
    '[######..................] 1/4    2.0s  286 keys listed, 950 keys/s  s3_listing'
    """
    text = f"{render_bar(done, total)} {done}/{total}  {elapsed_s:5.1f}s"
    if detail:
        text += f"  {detail}"
    if label:
        text += f"  {label}"
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


_LISTED = re.compile(r"(\d+) keys listed")
_RATE = re.compile(r"(\d+) keys/s")


def listing_detail(message: str) -> str:
    """The keys listed and keys/s of a listing progress message, shortest first.

    >>> listing_detail("Listing s3://b/p: 2000 keys listed, 1990 matched, 2 pages, 950 keys/s")
    '2000 keys listed, 950 keys/s'
    """
    listed, rate = _LISTED.search(message), _RATE.search(message)
    parts = [f"{listed.group(1)} keys listed"] if listed else []
    parts += [f"{rate.group(1)} keys/s"] if rate else []
    return ", ".join(parts) or message.split(": ", 1)[-1]


def step_label(step_key: str) -> str:
    """A short label for a step: an asset check's step ``a_a_check`` shows as ``a: check``.

    >>> step_label("daily_s3_processed_daily_s3_processed_rows_match_listing")
    'daily_s3_processed: rows_match_listing'
    >>> step_label("s3_listing")
    's3_listing'
    """
    parts = step_key.split("_")
    for cut in range(1, len(parts)):
        asset = "_".join(parts[:cut])
        if step_key.startswith(f"{asset}_{asset}_"):
            return f"{asset}: {step_key[2 * len(asset) + 2 :]}"
    return step_key


class ProgressBar:
    """Counts done units of work out of ``total``, with a label and a detail (e.g. keys/s)."""

    def __init__(self, total: int, stream: TextIO, *, unit: str = "steps") -> None:
        self.total = total
        self.stream = stream
        self.unit = unit
        self.done = 0
        self.label = ""
        self.detail = ""
        self.started = time.monotonic()
        self.interactive = bool(getattr(stream, "isatty", lambda: False)())
        self._drawn = False
        self._lock = threading.RLock()
        self._stop_ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    def start_ticker(self, interval_s: float = 0.5) -> None:
        """On a terminal, redraw every ``interval_s`` so the elapsed time moves during long steps."""
        if not self.interactive or self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop_ticking.wait(interval_s):
                with self._lock:
                    if self._drawn:
                        self._draw()

        self._ticker = threading.Thread(target=tick, name="progress-ticker", daemon=True)
        self._ticker.start()

    def update(self, *, label: str | None = None, detail: str | None = None) -> None:
        if label is not None and label != self.label:
            self.label, self.detail = label, ""
        if detail is not None:
            self.detail = detail
        if self.interactive:
            self._draw()

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = render_line(
            self.done, self.total, time.monotonic() - self.started, self.label, self.detail, width
        )
        with self._lock:
            if self.interactive:
                self.stream.write("\r\x1b[2K" + line)
                self._drawn = True
            else:
                self.stream.write(line + "\n")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the line (before printing something else on a terminal)."""
        with self._lock:
            if self.interactive and self._drawn:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self._drawn = False

    def finish(self) -> None:
        """Stop the ticker and end the line."""
        self._stop_ticking.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self.interactive and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False


class DagsterProgressHandler(logging.Handler):
    """A logging handler for a Dagster logger: materialisations and check results advance the
    bar, step starts set its label, listing progress messages (keys listed, keys/s) its detail;
    step failures are kept in ``failures``."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__(level=logging.DEBUG)
        self.bar = bar
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        meta: dict[str, Any] = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        event_type = getattr(event, "event_type_value", None)
        step = meta.get("step_key") or ""
        message = str(meta.get("orig_message") or record.getMessage())
        if event_type in _COUNTED_EVENTS:
            self.bar.advance()
        elif event_type == "STEP_START":
            self.bar.update(label=step_label(step))
        elif event_type == "STEP_FAILURE":
            self.failures.append(f"{step}: {message}")
        elif event is None and _LISTING_PROGRESS_MARK in message:
            self.bar.update(detail=listing_detail(message))
