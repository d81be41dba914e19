"""The state of a local YT cluster: Cypress, tables, files, transactions and locks, as plain Python.

:class:`Cluster` is the facade the HTTP layer (and the operations engine, through the
:class:`~.interfaces.TableStore` protocol) calls. It holds no HTTP: commands are methods named and
parametrised as in YT's API; errors are :mod:`.exceptions` classes carrying YT's codes.

Usage::

    cluster = Cluster("/tmp/yt-root")
    cluster.create("table", "//home/t", recursive=True,
                   attributes={"schema": [{"name": "a", "type": "int64"}]})
    cluster.write_table("<append=%true>//home/t", [{"a": 1}, {"a": 2}])
    start, rows = cluster.read_table("//home/t[#1:]")      # (1, iterator over [{"a": 2}])
    tx = cluster.start_transaction(timeout=30000)
    cluster.write_table("//home/t", [{"a": 3}], transaction_id=tx)   # invisible outside until...
    cluster.commit_transaction(tx)
    cluster.close()

**Paths** are passed as the client sends them: ``str`` YPaths (``//a/b``, ``#<node-id>/...``,
``//t/@attr``, ``//t/@``), maybe rich (``<append=%true>//t``, ``//t{a,b}[#10:#20]``), or ``yt.yson``
strings carrying ``.attributes``, or ``yt.wrapper`` ``YPath``/``TablePath`` objects.

**Rows** are ``dict``s with ``str`` keys. On write, values may be any YSON-compatible Python value;
strings may be ``str`` or ``bytes`` (``bytes`` keys are decoded as UTF-8). Rows are stored as binary
YSON (a YSON request body as it came, :mod:`.verbatim_writes`) and read back as ``yt.yson.load(..., encoding="utf-8", always_create_attributes=False)`` gives
them: strings are ``str`` when they are valid UTF-8, else ``yt.yson.YsonStringProxy`` (get the raw bytes
with ``yt.yson.get_bytes``); ``uint64`` values are ``yt.yson.YsonUint64`` (an ``int``); nulls are
``None``; values that carried YSON attributes keep their ``yt.yson`` types. ``yt.yson.dumps`` of a row
read back gives the same YSON as was written (a ``str`` and its UTF-8 ``bytes`` are one YSON string).

**Cypress values** returned by :meth:`Cluster.get`/:meth:`Cluster.list` are plain Python values
(``str`` strings); a value carrying attributes (``get(..., attributes=[...])``, ``list`` with
attributes, ``@schema``) is a ``yt.yson`` type with ``.attributes``; tables and files are
``yt.yson.YsonEntity``.

**Transactions**: every method takes ``transaction_id``; without one a mutation is its own atomic
commit. See :mod:`.transactions` for isolation, nesting, expiry and what a lock conflict does (it
raises ``ConcurrentTransactionLockConflict`` (402) at once; ``waitable`` locks are not emulated).
Implicit locks, as in YT: ``write_table`` overwrite = exclusive, append = shared (exclusive for a
sorted table), ``remove``/``move`` = exclusive on the subtree, ``set`` of an attribute = shared on that
attribute key, creating a child = shared on the parent for that child key.

**Errors** (YT's codes, see :mod:`.exceptions`): 500 resolve (missing node/attribute/object id),
501 already exists, 402 lock conflict with a concurrent transaction, 400 lock conflict with the
transaction's own snapshot lock, 11000 no such (or expired) transaction, 307 schema violation (bad
type, null/missing required column, unknown column of a strict schema), 301 sort order violation,
306 duplicate key with ``unique_keys``, 311 ``sorted_by`` column missing from a strict schema, 1
for the rest (bad path, wrong node type, unsupported feature).

**Beyond YT's command set**: :meth:`Cluster.read_table_ranges` (one row iterator per range, for
range/row index control attributes), :meth:`Cluster.collect_garbage`, the
:class:`~.interfaces.TableStore` methods (``read_rows``, ``row_count``, ``write_rows``,
``file_content_path``), :meth:`Cluster.transaction_records` (for the virtual ``//sys`` paths of
:mod:`.system_paths`). Links (:mod:`.links`) are followed by path resolution
(:meth:`~.cypress.CypressView.follow`); expired nodes are removed before commands
(:mod:`.expiration`). Not emulated: dynamic tables, ACLs, pending (waitable) locks,
``tablet_index``/``offset``/``chunk_index`` read limits.

**Layers** (one file each, each class extends the one before): :class:`~.cluster_base.ClusterBase`
(state directory, garbage collection, views, path resolution), :class:`~.cypress_reads.CypressReads`
(``get``/``exists``/``list``), :class:`~.cypress_writes.CypressWrites` (``create``/``set``/``remove``/
``move``/``copy``), :class:`~.table_io.TableIO` (tables and chunks), :class:`~.file_io.FileIO` (files
and the file cache), and :class:`Cluster` here (transactions and explicit locks).

**Durability and sharing**: see :mod:`.storage`. Several :class:`Cluster` instances (threads or
processes) may open one root at once. Writes stream rows straight into a chunk file (memory does not
grow with the row count); reads stream them back lazily.
"""

from __future__ import annotations

import time
from typing import Any

import yt.yson

from .cluster_base import RichPathLike, Row
from .cypress import load_yson
from .exceptions import (
    GenericError,
)
from .file_io import FileIO
from .transactions import (
    abort_expired,
    abort_transaction,
    acquire_lock,
    commit_transaction,
    is_null_transaction,
    ping_transaction,
    start_transaction,
    transaction_chain,
)

__all__ = ["Cluster", "Row"]


class Cluster(FileIO):
    """A local YT cluster's state under one root directory (see the module docstring)."""

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lock(
        self,
        path: RichPathLike,
        *,
        mode: str = "exclusive",
        waitable: bool = False,
        child_key: str | None = None,
        attribute_key: str | None = None,
        transaction_id: str | None = None,
    ) -> dict[str, Any]:
        """Take a lock (``waitable`` is accepted but a conflict fails at once). Returns
        ``{"lock_id", "node_id", "revision"}``."""
        if is_null_transaction(transaction_id):
            raise GenericError("Cannot take a lock outside of a transaction")
        if mode != "shared" and (child_key is not None or attribute_key is not None):
            raise GenericError(
                '"child_key" and "attribute_key" are only allowed for "shared" locks'
            )
        with self._mutation(transaction_id) as view:
            _rich, node = self._resolve_node(view, path)
            lock_id = acquire_lock(
                view, node, mode=str(mode), child_key=child_key, attribute_key=attribute_key
            )
            return {
                "lock_id": lock_id,
                "node_id": node.id,
                "revision": yt.yson.YsonUint64(view.revision),
            }

    def start_transaction(
        self,
        parent_id: str | None = None,
        title: str | None = None,
        *,
        timeout: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        """Start a (nested) transaction; ``timeout`` in ms (default 120 s; each ping extends it)."""
        if title is None and attributes and "title" in attributes:
            title = str(attributes["title"])
        with self._storage.write() as conn:
            abort_expired(conn)
            return start_transaction(
                conn, parent_id=parent_id, timeout_ms=timeout, title=title, attributes=attributes
            )

    def transaction_records(self) -> list[dict[str, Any]]:
        """The live transactions as stored (``id``, ``parent_id``, ``title``, ``attributes``,
        ``start_time``, ``timeout_ms``), for ``//sys/transactions`` and ``#<transaction-id>``."""
        with self._storage.read() as conn:
            rows = conn.execute(
                "SELECT * FROM transactions WHERE deadline >= ?", (time.time(),)
            ).fetchall()
        return [
            {**dict(row), "attributes": load_yson(row["attributes"]) if row["attributes"] else {}}
            for row in rows
        ]

    def ping_transaction(self, transaction_id: str, *, ping_ancestors: bool = False) -> None:
        """Extend the transaction's deadline (and its ancestors' with ``ping_ancestors``)."""
        with self._storage.write() as conn:
            abort_expired(conn)
            chain = transaction_chain(conn, transaction_id)
            for tx_id in chain[:-1] if ping_ancestors else chain[:1]:
                ping_transaction(conn, tx_id)

    def commit_transaction(self, transaction_id: str) -> None:
        with self._storage.write() as conn:
            abort_expired(conn)
            commit_transaction(conn, transaction_id)

    def abort_transaction(self, transaction_id: str) -> None:
        with self._storage.write() as conn:
            abort_expired(conn)
            transaction_chain(conn, transaction_id)
            abort_transaction(conn, transaction_id)
