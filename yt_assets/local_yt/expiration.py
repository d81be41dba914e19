"""``expiration_time`` and ``expiration_timeout``: nodes that remove themselves.

A committed node with ``@expiration_time`` (an ISO instant or milliseconds since the epoch) is removed once that instant has
passed; one with ``@expiration_timeout`` (milliseconds) once that long has passed since it was last
modified (a cluster counts from the last access; reads here do not renew it). A node locked by a
transaction stays until the lock is gone, then goes. The removal runs before commands, at most
every :data:`CHECK_INTERVAL_SECONDS`, so a node disappears shortly after its deadline, as on a
cluster where a background sweep removes it.

Usage::

    client.create("table", "//tmp/t", attributes={"expiration_timeout": 60_000})
    client.create_temp_table()              # yt.wrapper sets expiration_time on temporary tables
"""

from __future__ import annotations

import datetime
import sqlite3
from typing import Any

from .cypress import TRUNK, CypressView, load_yson
from .exceptions import GenericError

EXPIRATION_ATTRIBUTES = ("expiration_time", "expiration_timeout")
CHECK_INTERVAL_SECONDS = 0.2
_MARKER = b"expiration_t"  # both attribute names start with it (a cheap pre-filter on blobs)


def parse_instant(value: Any) -> float:
    """An instant (ISO 8601 ``2024-01-31T12:00:00.123456Z``, or an integer of milliseconds since
    the epoch) as seconds since the epoch."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1000
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise GenericError(
            f"Error parsing instant {value!r}: expected an ISO 8601 string or milliseconds"
        )
    try:
        parsed = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise GenericError(f"Error parsing instant {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def check_expiration_attribute(name: str, value: Any) -> None:
    """Refuse a malformed ``expiration_time``/``expiration_timeout`` as a cluster does."""
    if name == "expiration_time":
        parse_instant(value)
    elif name == "expiration_timeout" and (
        isinstance(value, bool) or not isinstance(value, int) or value < 0
    ):
        raise GenericError(
            f"Invalid expiration_timeout {value!r}: a non-negative number of milliseconds",
            attribute=name,
        )


def deadline(attrs: dict[str, Any], modification_time: str | None) -> float | None:
    """When a node with these attributes expires (seconds since the epoch), or None."""
    deadlines = []
    if "expiration_time" in attrs:
        deadlines.append(parse_instant(attrs["expiration_time"]))
    if "expiration_timeout" in attrs and modification_time is not None:
        deadlines.append(parse_instant(modification_time) + int(attrs["expiration_timeout"]) / 1000)
    return min(deadlines) if deadlines else None


def due_node_ids(conn: sqlite3.Connection, now: float) -> list[str]:
    """Committed nodes whose expiration deadline has passed."""
    rows = conn.execute(
        "SELECT node_id, attrs, modification_time FROM versions"
        " WHERE tx_id = ? AND attrs IS NOT NULL AND instr(attrs, ?) > 0",
        (TRUNK, _MARKER),
    ).fetchall()
    due = []
    for row in rows:
        when = deadline(load_yson(row["attrs"]), row["modification_time"])
        if when is not None and when <= now:
            due.append(str(row["node_id"]))
    return due


def remove_expired(view: CypressView, node_ids: list[str]) -> int:
    """Remove the given expired nodes (a trunk view) unless a transaction locks them or their
    subtree; returns how many were removed."""
    removed = 0
    for node_id in node_ids:
        node = view.node(node_id)
        if node is None or node.id == view.root_id:
            continue
        subtree = [node.id, *(child.id for child in view.descendants(node))]
        placeholders = ",".join("?" * len(subtree))
        locked = view.conn.execute(
            f"SELECT 1 FROM locks WHERE node_id IN ({placeholders}) LIMIT 1", subtree
        ).fetchone()
        if locked is None:
            view.remove_subtree(node)
            removed += 1
    return removed
