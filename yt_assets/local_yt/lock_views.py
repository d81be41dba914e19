"""The ``@locks`` attribute: the locks held on a node, as a cluster lists them.

Each lock is ``{id, mode, state, transaction_id, creation_time}`` plus ``child_key`` or
``attribute_key`` for a shared lock on a key. Conflicting locks fail at once here (no waitable
locks), so every listed lock is ``acquired``.

Usage::

    locks = node_locks(connection, node_id)   # [{"id": ..., "mode": "exclusive", ...}]
"""

from __future__ import annotations

import sqlite3
from typing import Any


def node_locks(connection: sqlite3.Connection, node_id: str) -> list[dict[str, Any]]:
    """The locks on ``node_id``, oldest first."""
    rows = connection.execute(
        "SELECT id, tx_id, mode, child_key, attribute_key, creation_time FROM locks"
        " WHERE node_id = ? ORDER BY creation_time, id",
        (node_id,),
    ).fetchall()
    locks = []
    for lock_id, tx_id, mode, child_key, attribute_key, creation_time in rows:
        lock: dict[str, Any] = {
            "id": lock_id,
            "mode": mode,
            "state": "acquired",
            "transaction_id": tx_id,
            "creation_time": creation_time,
        }
        if child_key is not None:
            lock["child_key"] = child_key
        if attribute_key is not None:
            lock["attribute_key"] = attribute_key
        locks.append(lock)
    return locks
