"""YT user statistics written from inside a job: counters the operation aggregates across jobs.

A YT job reports user statistics on file descriptor 5, as a YSON list fragment of maps (one map
per write; nested maps name paths such as ``s3/objects_processed``); the cluster files them under
``custom/`` in the operation's ``progress/job_statistics`` with ``sum``, ``count``, ``min`` and
``max`` over jobs. This is what ``yt.wrapper.write_statistics`` does; it is written here with the
standard library only, because job code must not need ``yt.wrapper`` (a command job runs without
it).

Values are integers (YT statistics are int64): durations go in milliseconds. Nothing is written
outside a YT job (no ``YT_JOB_ID`` in the environment), so the same code runs in tests and
scripts, where descriptor 5 may be anything.

Usage::

    statistics = JobStatistics()
    statistics.add("s3/objects_processed", 1)
    statistics.add("s3/bytes_downloaded", 4096)
    statistics.flush()  # once, at the end of the job
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping

USER_STATISTICS_FD = 5
"""The descriptor YT reserves for user statistics."""

JOB_ID_VARIABLE = "YT_JOB_ID"

__all__ = ["USER_STATISTICS_FD", "JobStatistics", "dumps_statistics", "write_statistics"]


def dumps_statistics(values: Mapping[str, int]) -> bytes:
    """One statistics record as text YSON, a list fragment item: ``{"a"={"b"=1;};};``.

    Names with ``/`` become nested maps, as YT reads them.

    Example::

        assert dumps_statistics({"s3/objects": 2}) == b'{"s3"={"objects"=2;};};'
    """
    tree: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"statistic {name!r} must be an int, got {type(value).__name__}")
        parts = [part for part in name.split("/") if part]
        if not parts:
            raise ValueError(f"bad statistic name {name!r}")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"statistic {name!r} is nested under a value")
            node = child
        node[parts[-1]] = value
    return _dump_node(tree).encode("utf-8") + b";"


def _dump_node(node: object) -> str:
    if isinstance(node, dict):
        items = "".join(f"{_quote(key)}={_dump_node(value)};" for key, value in node.items())
        return "{" + items + "}"
    return str(node)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_statistics(values: Mapping[str, int], environ: Mapping[str, str] | None = None) -> bool:
    """Write one statistics record to fd 5 when running in a YT job; returns whether it did."""
    env = os.environ if environ is None else environ
    if not values or JOB_ID_VARIABLE not in env:
        return False
    data = dumps_statistics(values)
    try:
        while data:
            data = data[os.write(USER_STATISTICS_FD, data) :]
    except OSError:
        print("Failed to write user statistics", file=sys.stderr)
        return False
    return True


class JobStatistics:
    """Counters summed in the job (thread-safe) and written once by :meth:`flush`.

    Example::

        statistics = JobStatistics()
        statistics.add("s3/objects_processed", 3)
        statistics.add("s3/objects_processed", 1)
        assert statistics.values == {"s3/objects_processed": 4}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def add(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + int(value)

    @property
    def values(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def flush(self) -> bool:
        """Write the counters (every name, zeros included) and reset them."""
        with self._lock:
            values, self._values = self._values, {}
        return write_statistics(values)
