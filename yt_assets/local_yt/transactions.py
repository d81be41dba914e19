"""Master transactions and Cypress locks of the local YT.

Transactions live in SQLite (``transactions``), so every process sharing a root sees them. A
transaction has a timeout (ms); each ping moves its deadline to ``now + timeout``. An expired
transaction is treated as missing at once (``NoSuchTransaction``, 11000) and aborted (with its nested
transactions) by the next mutation of any process (:func:`abort_expired`).

Commit merges the transaction's node deltas into its parent (see :mod:`.cypress`), hands its shared
and exclusive locks to the parent (or releases them at the top level), drops its snapshot locks and
aborts its still-active nested transactions. Abort drops deltas, locks and nested transactions.

Locks (YT's modes):

- ``snapshot``: never conflicts; freezes the node for the transaction (it keeps reading the state at
  lock time, whatever commits later);
- ``shared``: conflicts with ``exclusive``, and with ``shared`` locks on the same ``child_key`` or
  the same ``attribute_key``;
- ``exclusive``: conflicts with any ``shared``/``exclusive`` lock.

Locks held by the requesting transaction or its ancestors never conflict. **A conflict raises
ConcurrentTransactionLockConflict (402) immediately**, naming the node and the holding transaction;
``waitable`` (pending) locks are not supported: the client's ``waitable=True`` gets the same error
(it may retry). Commands without a transaction check conflicts the same way but persist no lock.

Usage::

    tx = start_transaction(conn, parent_id=None, timeout_ms=30000, title="t", attributes=None)
    chain = transaction_chain(conn, tx)            # [tx, ""]
    acquire_lock(view, node, mode="exclusive", path="//t")
    commit_transaction(conn, tx)
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .cypress import (
    LOCK_TYPE_CODE,
    NESTED_TRANSACTION_TYPE_CODE,
    TRANSACTION_TYPE_CODE,
    TRUNK,
    CypressView,
    Node,
    discard_versions,
    dump_yson,
    merge_versions,
    now_iso,
)
from .exceptions import (
    ConcurrentTransactionLockConflict,
    GenericError,
    NoSuchTransaction,
    SameTransactionLockConflict,
)
from .values import new_object_id

DEFAULT_TIMEOUT_MS = 120_000
NULL_TRANSACTION_ID = "0-0-0-0"
LOCK_MODES = ("snapshot", "shared", "exclusive")


def is_null_transaction(tx_id: str | None) -> bool:
    return not tx_id or tx_id == NULL_TRANSACTION_ID


def start_transaction(
    conn: sqlite3.Connection,
    *,
    parent_id: str | None,
    timeout_ms: int | None,
    title: str | None,
    attributes: dict[str, Any] | None,
) -> str:
    now = time.time()
    if not is_null_transaction(parent_id):
        assert parent_id is not None
        transaction_chain(conn, parent_id, now=now)
    else:
        parent_id = TRUNK
    timeout = int(timeout_ms) if timeout_ms is not None else DEFAULT_TIMEOUT_MS
    tx_id = new_object_id(NESTED_TRANSACTION_TYPE_CODE if parent_id else TRANSACTION_TYPE_CODE)
    conn.execute(
        "INSERT INTO transactions (id, parent_id, title, attributes, start_time, timeout_ms, deadline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            tx_id,
            parent_id,
            title,
            dump_yson(attributes) if attributes else None,
            now_iso(),
            timeout,
            now + timeout / 1000.0,
        ),
    )
    return tx_id


def transaction_chain(
    conn: sqlite3.Connection, tx_id: str | None, *, now: float | None = None
) -> list[str]:
    """``[tx, parent, ..., ""]``; raises NoSuchTransaction if any of them is gone or expired."""
    if is_null_transaction(tx_id):
        return [TRUNK]
    assert tx_id is not None
    now = time.time() if now is None else now
    chain: list[str] = []
    current = tx_id
    while current:
        row = conn.execute(
            "SELECT parent_id, deadline FROM transactions WHERE id = ?", (current,)
        ).fetchone()
        if row is None or row["deadline"] < now:
            raise NoSuchTransaction(f"No such transaction {current}", transaction_id=current)
        chain.append(current)
        current = row["parent_id"]
    chain.append(TRUNK)
    return chain


def ping_transaction(conn: sqlite3.Connection, tx_id: str) -> None:
    now = time.time()
    transaction_chain(conn, tx_id, now=now)
    conn.execute(
        "UPDATE transactions SET deadline = ? + timeout_ms / 1000.0 WHERE id = ?", (now, tx_id)
    )


def _children(conn: sqlite3.Connection, tx_id: str) -> list[str]:
    return [
        row[0] for row in conn.execute("SELECT id FROM transactions WHERE parent_id = ?", (tx_id,))
    ]


def abort_transaction(conn: sqlite3.Connection, tx_id: str) -> None:
    """Abort a transaction and its nested ones (no existence check: see :func:`transaction_chain`)."""
    for child in _children(conn, tx_id):
        abort_transaction(conn, child)
    discard_versions(conn, tx_id)
    conn.execute("DELETE FROM locks WHERE tx_id = ?", (tx_id,))
    conn.execute("DELETE FROM transactions WHERE id = ?", (tx_id,))


def commit_transaction(conn: sqlite3.Connection, tx_id: str) -> None:
    chain = transaction_chain(conn, tx_id)
    parent = chain[1]
    for child in _children(conn, tx_id):
        abort_transaction(conn, child)
    merge_versions(conn, tx_id, parent)
    conn.execute("DELETE FROM locks WHERE tx_id = ? AND mode = 'snapshot'", (tx_id,))
    if parent == TRUNK:
        conn.execute("DELETE FROM locks WHERE tx_id = ?", (tx_id,))
    else:
        conn.execute("UPDATE locks SET tx_id = ? WHERE tx_id = ?", (parent, tx_id))
    conn.execute("DELETE FROM transactions WHERE id = ?", (tx_id,))


def abort_expired(conn: sqlite3.Connection) -> int:
    """Abort every expired transaction; returns how many top-level aborts ran."""
    now = time.time()
    expired = [
        row[0] for row in conn.execute("SELECT id FROM transactions WHERE deadline < ?", (now,))
    ]
    count = 0
    for tx_id in expired:
        if conn.execute("SELECT 1 FROM transactions WHERE id = ?", (tx_id,)).fetchone() is not None:
            abort_transaction(conn, tx_id)
            count += 1
    return count


def _locks_conflict(
    held: sqlite3.Row, mode: str, child_key: str | None, attribute_key: str | None
) -> bool:
    if held["mode"] == "exclusive" or mode == "exclusive":
        return True
    if held["child_key"] is not None and held["child_key"] == child_key:
        return True
    return held["attribute_key"] is not None and held["attribute_key"] == attribute_key


def check_lock(
    view: CypressView,
    node: Node,
    *,
    mode: str,
    child_key: str | None = None,
    attribute_key: str | None = None,
    path: str | None = None,
) -> None:
    """Raise ConcurrentTransactionLockConflict if a concurrent transaction's lock forbids ``mode``."""
    if mode not in LOCK_MODES:
        raise GenericError(f'Invalid lock mode "{mode}"', mode=mode)
    if mode == "snapshot":
        return
    if node.snapshot_tx is not None:
        where = path or view.path_of(node)
        raise SameTransactionLockConflict(
            f'Cannot take "{mode}" lock for node {where} since this node is already locked in '
            f'"snapshot" mode by transaction {node.snapshot_tx}',
            path=where,
            transaction_id=node.snapshot_tx,
        )
    own = set(view.chain)
    for held in view.conn.execute(
        "SELECT * FROM locks WHERE node_id = ? AND mode != 'snapshot'", (node.id,)
    ).fetchall():
        if held["tx_id"] in own:
            continue
        if _locks_conflict(held, mode, child_key, attribute_key):
            where = path or view.path_of(node)
            detail = ""
            if held["child_key"] is not None:
                detail = f' for child "{held["child_key"]}"'
            elif held["attribute_key"] is not None:
                detail = f' for attribute "{held["attribute_key"]}"'
            raise ConcurrentTransactionLockConflict(
                f'Cannot take "{mode}" lock for node {where} since "{held["mode"]}" lock{detail} is '
                f"taken by concurrent transaction {held['tx_id']}",
                path=where,
                winner_transaction={"id": held["tx_id"]},
                mode=mode,
            )


def acquire_lock(
    view: CypressView,
    node: Node,
    *,
    mode: str,
    child_key: str | None = None,
    attribute_key: str | None = None,
    path: str | None = None,
) -> str | None:
    """Take a lock for ``view.tx`` (check only when there is no transaction). Returns the lock id."""
    check_lock(view, node, mode=mode, child_key=child_key, attribute_key=attribute_key, path=path)
    if view.tx == TRUNK:
        return None
    if mode == "snapshot":
        view.take_snapshot(node)
    else:
        for held in view.conn.execute(
            "SELECT * FROM locks WHERE node_id = ? AND tx_id = ? AND mode != 'snapshot'",
            (node.id, view.tx),
        ).fetchall():
            if held["mode"] == "exclusive" or (
                mode == "shared"
                and held["child_key"] == child_key
                and held["attribute_key"] == attribute_key
            ):
                return str(held["id"])
    lock_id = new_object_id(LOCK_TYPE_CODE)
    view.conn.execute(
        "INSERT INTO locks (id, node_id, tx_id, mode, child_key, attribute_key, creation_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (lock_id, node.id, view.tx, mode, child_key, attribute_key, now_iso()),
    )
    return lock_id
