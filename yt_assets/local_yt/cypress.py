"""The Cypress tree as per-transaction node versions (YT's "branching"), kept in SQLite.

Each node has one row in ``nodes`` (id, type, creation time) and rows in ``versions``: the committed
("trunk") version under transaction id ``""`` holds the node's full state; a version under a
transaction holds only what that transaction changed (a *delta*):

- structure: ``parent_id``/``key`` (moved or created here), ``removed``;
- attributes set (``attrs``) and removed (``attrs_removed``);
- ``value`` (documents and scalar nodes);
- content (tables, files): ``content_mode`` ``"append"`` (``chunks`` are chunks appended here) or
  ``"overwrite"`` (``chunks`` is the whole new chunk list).

A node as a transaction sees it is the trunk version with the deltas of its ancestors applied from
the outermost to the innermost (:meth:`CypressView.node`). Committing merges a transaction's deltas
into its parent's versions (:func:`merge_versions`): appends *add* chunks to whatever the parent holds
at commit time, so sibling transactions appending to one table all land (no "last commit wins").

A *snapshot* version (``snapshot=1``, made by a snapshot lock) holds a full copy of the node taken at
lock time; views below it read that copy and ignore later commits. It is dropped, never merged, at
commit.

Usage::

    view = CypressView(conn, chain=["tx-1", ""], root_id=root_id)
    node, rest = view.resolve("/", split_ypath("//home/t")[1])
    view.append_chunks(node, ["chunk-1"])      # recorded as a delta of tx-1
"""

from __future__ import annotations

import copy
import datetime
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yt.yson

from .exceptions import (
    InvalidNodeType,
    ResolveError,
    SameTransactionLockConflict,
    TooManyLinkHops,
)
from .values import new_object_id
from .ypath import PathToken, join_path, split_ypath

TRUNK = ""

TYPE_CODES: dict[str, int] = {
    "string_node": 0x12C,
    "int64_node": 0x12D,
    "double_node": 0x12E,
    "map_node": 0x12F,
    "list_node": 0x130,
    "entity": 0x131,
    "document": 0x132,
    "uint64_node": 0x134,
    "boolean_node": 0x135,
    "file": 0x190,
    "table": 0x191,
    "link": 0x1A1,
}
SCALAR_TYPES = {"string_node", "int64_node", "uint64_node", "double_node", "boolean_node"}
VALUE_TYPES = SCALAR_TYPES | {"document", "list_node", "entity"}
CHUNK_TYPES = {"table", "file"}
LINK_TYPE = "link"
MAX_LINK_HOPS = 32
TRANSACTION_TYPE_CODE = 0x1
NESTED_TRANSACTION_TYPE_CODE = 0x4
LOCK_TYPE_CODE = 0xC8
TABLE_CHUNK_TYPE_CODE = 0x64
FILE_CHUNK_TYPE_CODE = 0x65


def now_iso() -> str:
    """YT's time format: ``2024-01-31T12:00:00.123456Z``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dump_yson(value: Any) -> bytes:
    return bytes(yt.yson.dumps(value, yson_format="binary"))


def load_yson(data: bytes) -> Any:
    return yt.yson.loads(data, encoding="utf-8", always_create_attributes=False)


@dataclass
class Version:
    """One row of ``versions``: a trunk state or a transaction's delta (see the module docstring)."""

    node_id: str
    tx_id: str
    snapshot: bool = False
    parent_id: str | None = None
    key: str | None = None
    removed: bool | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    attrs_removed: list[str] = field(default_factory=list)
    value: Any = None
    has_value: bool = False
    content_mode: str | None = None
    chunks: list[str] = field(default_factory=list)
    modification_time: str | None = None
    revision: int | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Version:
        return cls(
            node_id=row["node_id"],
            tx_id=row["tx_id"],
            snapshot=bool(row["snapshot"]),
            parent_id=row["parent_id"],
            key=row["key"],
            removed=None if row["removed"] is None else bool(row["removed"]),
            attrs=load_yson(row["attrs"]) if row["attrs"] is not None else {},
            attrs_removed=json.loads(row["attrs_removed"]) if row["attrs_removed"] else [],
            value=load_yson(row["value"]) if row["value"] is not None else None,
            has_value=row["value"] is not None,
            content_mode=row["content_mode"],
            chunks=json.loads(row["chunks"]) if row["chunks"] is not None else [],
            modification_time=row["modification_time"],
            revision=row["revision"],
        )

    def save(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO versions (node_id, tx_id, snapshot, parent_id, key, removed, attrs,"
            " attrs_removed, value, content_mode, chunks, modification_time, revision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.node_id,
                self.tx_id,
                int(self.snapshot),
                self.parent_id,
                self.key,
                None if self.removed is None else int(self.removed),
                dump_yson(self.attrs) if self.attrs else None,
                json.dumps(self.attrs_removed) if self.attrs_removed else None,
                dump_yson(self.value) if self.has_value else None,
                self.content_mode,
                json.dumps(self.chunks) if self.content_mode is not None else None,
                self.modification_time,
                self.revision,
            ),
        )


def apply_delta(target: Version, delta: Version) -> None:
    """Apply ``delta`` onto ``target`` in place (``target`` a trunk state or another delta)."""
    is_trunk = target.tx_id == TRUNK or target.snapshot
    if delta.parent_id is not None:
        target.parent_id = delta.parent_id
        target.key = delta.key
    if delta.removed is not None:
        target.removed = delta.removed
    for name in delta.attrs_removed:
        target.attrs.pop(name, None)
        if not is_trunk and name not in target.attrs_removed:
            target.attrs_removed.append(name)
    for name, value in delta.attrs.items():
        target.attrs[name] = value
        if name in target.attrs_removed:
            target.attrs_removed.remove(name)
    if delta.has_value:
        target.value = delta.value
        target.has_value = True
    if delta.content_mode == "overwrite":
        target.content_mode = "overwrite"
        target.chunks = list(delta.chunks)
    elif delta.content_mode == "append":
        if target.content_mode is None:
            target.content_mode = "overwrite" if is_trunk else "append"
            target.chunks = []
        target.chunks = target.chunks + list(delta.chunks)
    if delta.modification_time is not None:
        target.modification_time = delta.modification_time
    if delta.revision is not None:
        target.revision = delta.revision


@dataclass
class Node:
    """A node as one transaction sees it (trunk state with its ancestors' deltas applied)."""

    id: str
    type: str
    creation_time: str
    parent_id: str | None
    key: str | None
    attrs: dict[str, Any]
    value: Any
    chunks: list[str]
    modification_time: str
    revision: int
    snapshot_tx: str | None = None  # the transaction whose snapshot this view reads

    @property
    def is_map(self) -> bool:
        return self.type == "map_node"


@dataclass(frozen=True)
class ChunkInfo:
    id: str
    kind: str
    row_count: int
    data_size: int
    md5: str | None
    sort_columns: list[str] | None
    first_key: list[Any] | None
    last_key: list[Any] | None


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class CypressView:
    """The tree as transaction ``chain[0]`` sees it (``chain`` = the transaction and its ancestors,
    innermost first, ending with the trunk ``""``). Mutations are recorded as ``chain[0]``'s deltas.
    """

    def __init__(
        self, conn: sqlite3.Connection, chain: list[str], root_id: str, revision: int = 0
    ) -> None:
        self.conn = conn
        self.chain = chain
        self.tx = chain[0]
        self.root_id = root_id
        self.revision = revision
        self._depth = {tx: depth for depth, tx in enumerate(chain)}

    # ---- reading -------------------------------------------------------------------------------

    def _versions(self, node_id: str) -> list[Version]:
        rows = self.conn.execute(
            f"SELECT * FROM versions WHERE node_id = ? AND tx_id IN ({_placeholders(len(self.chain))})",
            (node_id, *self.chain),
        ).fetchall()
        versions = [Version.from_row(row) for row in rows]
        versions.sort(key=lambda v: -self._depth[v.tx_id])  # outermost (trunk) first
        return versions

    def node(self, node_id: str, *, include_removed: bool = False) -> Node | None:
        """The node as this view sees it, or None if it does not exist here."""
        versions = self._versions(node_id)
        if not versions:
            return None
        info = self.conn.execute(
            "SELECT type, creation_time FROM nodes WHERE id = ?", (node_id,)
        ).fetchone()
        if info is None:
            return None
        state = Version(node_id=node_id, tx_id=TRUNK, removed=True)
        snapshot_tx = None
        for version in versions:
            if version.snapshot:
                state = copy.deepcopy(version)
                state.tx_id = TRUNK
                state.snapshot = False
                snapshot_tx = version.tx_id
            else:
                apply_delta(state, version)
        if state.removed and not include_removed:
            return None
        return Node(
            id=node_id,
            type=info["type"],
            creation_time=info["creation_time"],
            parent_id=state.parent_id,
            key=state.key,
            attrs=state.attrs,
            value=state.value,
            chunks=state.chunks,
            modification_time=state.modification_time or info["creation_time"],
            revision=state.revision or 0,
            snapshot_tx=snapshot_tx,
        )

    def _candidate_children(self, parent_id: str, key: str | None = None) -> list[str]:
        query = (
            "SELECT DISTINCT node_id FROM versions WHERE parent_id = ?"
            + (" AND key = ?" if key is not None else "")
            + f" AND tx_id IN ({_placeholders(len(self.chain))})"
        )
        params: tuple[Any, ...] = (
            (parent_id,) + ((key,) if key is not None else ()) + tuple(self.chain)
        )
        return [row[0] for row in self.conn.execute(query, params)]

    def child(self, parent: Node, key: str) -> Node | None:
        for node_id in self._candidate_children(parent.id, key):
            node = self.node(node_id)
            if node is not None and node.parent_id == parent.id and node.key == key:
                return node
        return None

    def children(self, parent: Node) -> dict[str, Node]:
        result: dict[str, Node] = {}
        for node_id in self._candidate_children(parent.id):
            node = self.node(node_id)
            if node is not None and node.parent_id == parent.id and node.key is not None:
                result[node.key] = node
        return dict(sorted(result.items()))

    def descendants(self, node: Node) -> list[Node]:
        """All nodes below ``node`` (depth first, parents before children)."""
        result: list[Node] = []
        if node.type != "map_node":
            return result
        for child in self.children(node).values():
            result.append(child)
            result.extend(self.descendants(child))
        return result

    def root(self) -> Node:
        node = self.node(self.root_id)
        assert node is not None, "the root node is missing"
        return node

    def resolve_root(self, root: str) -> Node:
        if root == "/":
            return self.root()
        node_id = root[1:]
        node = self.node(node_id)
        if node is None:
            raise ResolveError(f"No such object {node_id}", path=root)
        return node

    def resolve(self, root: str, tokens: list[PathToken], *, hops: int = 0) -> tuple[Node, int]:
        """Walk child tokens through map nodes, following links (a key with ``&`` names the link
        itself). Returns the node reached and the index of the first token not consumed (an
        attribute token, or a key inside a document's value)."""
        node = self.resolve_root(root)
        index = 0
        while index < len(tokens) and tokens[index].kind == "child":
            if not node.is_map:
                break
            token = tokens[index]
            child = self.child(node, token.key)
            if child is None:
                raise ResolveError(
                    f'Node {self.path_of(node)} has no child with key "{token.key}"',
                    path=self.path_of(node),
                    key=token.key,
                )
            node = child if token.keep_link else self.follow(child, hops=hops)
            index += 1
        return node, index

    def follow(self, node: Node, *, hops: int = 0) -> Node:
        """The node a link points to (through chains of links); other nodes as they are.
        A dangling target is a resolve error naming the link, as on a cluster."""
        while node.type == LINK_TYPE:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise TooManyLinkHops(
                    f"Too many link hops resolving {self.path_of(node)} (a cyclic link?)",
                    path=self.path_of(node),
                )
            target = str(node.attrs.get("target_path", ""))
            try:
                root, tokens = split_ypath(target)
                resolved, index = self.resolve(root, tokens, hops=hops)
                if index != len(tokens):
                    raise ResolveError(f"Path {target} does not name a node", path=target)
            except TooManyLinkHops:
                raise
            except ResolveError as error:
                raise ResolveError(
                    f"Link {self.path_of(node)} is broken: its target {target} does not exist",
                    path=self.path_of(node),
                    target_path=target,
                    inner_errors=[error],
                ) from None
            node = resolved
        return node

    def path_of(self, node: Node) -> str:
        keys: list[str] = []
        current: Node | None = node
        guard = 0
        while current is not None and current.id != self.root_id:
            if current.parent_id is None or current.key is None:
                return "#" + node.id
            keys.append(current.key)
            current = self.node(current.parent_id)
            guard += 1
            if guard > 10000:
                break
        if current is None:
            return "#" + node.id
        path = "/"
        for key in reversed(keys):
            path = join_path(path, key)
        return path

    def chunk_infos(self, chunk_ids: Iterable[str]) -> list[ChunkInfo]:
        ids = list(chunk_ids)
        found: dict[str, ChunkInfo] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            for row in self.conn.execute(
                f"SELECT * FROM chunks WHERE id IN ({_placeholders(len(batch))})", batch
            ):
                found[row["id"]] = ChunkInfo(
                    id=row["id"],
                    kind=row["kind"],
                    row_count=row["row_count"],
                    data_size=row["data_size"],
                    md5=row["md5"],
                    sort_columns=json.loads(row["sort_columns"]) if row["sort_columns"] else None,
                    first_key=load_yson(row["first_key"]) if row["first_key"] is not None else None,
                    last_key=load_yson(row["last_key"]) if row["last_key"] is not None else None,
                )
        return [found[chunk_id] for chunk_id in ids if chunk_id in found]

    # ---- writing -------------------------------------------------------------------------------

    def _own_version(self, node_id: str) -> Version:
        row = self.conn.execute(
            "SELECT * FROM versions WHERE node_id = ? AND tx_id = ?", (node_id, self.tx)
        ).fetchone()
        if row is not None:
            return Version.from_row(row)
        return Version(node_id=node_id, tx_id=self.tx)

    def _record(self, node: Node, delta: Version) -> None:
        if node.snapshot_tx is not None:
            raise SameTransactionLockConflict(
                f'Cannot modify node {self.path_of(node)} since it is locked in "snapshot" mode by '
                f"transaction {node.snapshot_tx}",
                path=self.path_of(node),
                transaction_id=node.snapshot_tx,
            )
        delta.modification_time = now_iso()
        delta.revision = self.revision
        own = self._own_version(node.id)
        apply_delta(own, delta)
        own.save(self.conn)

    def create_node(
        self,
        type: str,
        parent: Node,
        key: str,
        *,
        attrs: dict[str, Any] | None = None,
        value: Any = None,
        has_value: bool = False,
        chunks: list[str] | None = None,
    ) -> Node:
        if type not in TYPE_CODES:
            raise InvalidNodeType(f"Unsupported node type {type!r}")
        node_id = new_object_id(TYPE_CODES[type])
        created = now_iso()
        self.conn.execute(
            "INSERT INTO nodes (id, type, creation_time, created_tx) VALUES (?, ?, ?, ?)",
            (node_id, type, created, self.tx),
        )
        version = Version(
            node_id=node_id,
            tx_id=self.tx,
            parent_id=parent.id,
            key=key,
            removed=False,
            attrs=dict(attrs or {}),
            value=value,
            has_value=has_value or type in VALUE_TYPES,
            content_mode="overwrite" if type in CHUNK_TYPES else None,
            chunks=list(chunks or []),
            modification_time=created,
            revision=self.revision,
        )
        version.save(self.conn)
        node = self.node(node_id)
        assert node is not None
        return node

    def create_root(self) -> str:
        node_id = new_object_id(TYPE_CODES["map_node"])
        created = now_iso()
        self.conn.execute(
            "INSERT INTO nodes (id, type, creation_time, created_tx) VALUES (?, 'map_node', ?, '')",
            (node_id, created),
        )
        Version(node_id=node_id, tx_id=TRUNK, removed=False, modification_time=created).save(
            self.conn
        )
        return node_id

    def set_attribute(self, node: Node, name: str, value: Any) -> None:
        self._record(node, Version(node_id=node.id, tx_id=self.tx, attrs={name: value}))

    def remove_attribute(self, node: Node, name: str) -> None:
        self._record(node, Version(node_id=node.id, tx_id=self.tx, attrs_removed=[name]))

    def set_value(self, node: Node, value: Any) -> None:
        self._record(node, Version(node_id=node.id, tx_id=self.tx, value=value, has_value=True))

    def append_chunks(self, node: Node, chunk_ids: list[str]) -> None:
        self._record(
            node, Version(node_id=node.id, tx_id=self.tx, content_mode="append", chunks=chunk_ids)
        )

    def replace_chunks(self, node: Node, chunk_ids: list[str]) -> None:
        self._record(
            node,
            Version(node_id=node.id, tx_id=self.tx, content_mode="overwrite", chunks=chunk_ids),
        )

    def move_node(self, node: Node, new_parent: Node, key: str) -> None:
        self._record(
            node, Version(node_id=node.id, tx_id=self.tx, parent_id=new_parent.id, key=key)
        )

    def touch(self, node: Node) -> None:
        self._record(node, Version(node_id=node.id, tx_id=self.tx))

    def remove_subtree(self, node: Node) -> None:
        """Remove a node and everything below it."""
        for victim in [*reversed(self.descendants(node)), node]:
            if self.tx == TRUNK:
                self._check_not_snapshot(victim)
                _delete_trunk_version(self.conn, victim.id)
            else:
                self._record(victim, Version(node_id=victim.id, tx_id=self.tx, removed=True))

    def _check_not_snapshot(self, node: Node) -> None:
        if node.snapshot_tx is not None:
            raise SameTransactionLockConflict(f"Node {node.id} is snapshot-locked")

    def take_snapshot(self, node: Node) -> None:
        """Freeze ``node`` for this transaction (a snapshot lock)."""
        own = self.conn.execute(
            "SELECT snapshot FROM versions WHERE node_id = ? AND tx_id = ?", (node.id, self.tx)
        ).fetchone()
        if own is not None:
            return  # already snapshot-locked, or modified here: keeps seeing its own state
        Version(
            node_id=node.id,
            tx_id=self.tx,
            snapshot=True,
            parent_id=node.parent_id,
            key=node.key,
            removed=False,
            attrs=dict(node.attrs),
            value=node.value,
            has_value=node.type in VALUE_TYPES,
            content_mode="overwrite" if node.type in CHUNK_TYPES else None,
            chunks=list(node.chunks),
            modification_time=node.modification_time,
            revision=node.revision,
        ).save(self.conn)


def _delete_trunk_version(conn: sqlite3.Connection, node_id: str) -> None:
    conn.execute("DELETE FROM versions WHERE node_id = ? AND tx_id = ''", (node_id,))
    remaining = conn.execute(
        "SELECT 1 FROM versions WHERE node_id = ? LIMIT 1", (node_id,)
    ).fetchone()
    if remaining is None:
        conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))


def merge_versions(conn: sqlite3.Connection, tx_id: str, parent_tx_id: str) -> None:
    """Merge transaction ``tx_id``'s deltas into ``parent_tx_id`` (``""`` = commit to the trunk)."""
    rows = conn.execute("SELECT * FROM versions WHERE tx_id = ?", (tx_id,)).fetchall()
    for row in rows:
        delta = Version.from_row(row)
        if delta.snapshot:
            continue
        target_row = conn.execute(
            "SELECT * FROM versions WHERE node_id = ? AND tx_id = ?", (delta.node_id, parent_tx_id)
        ).fetchone()
        target = (
            Version.from_row(target_row)
            if target_row is not None
            else Version(node_id=delta.node_id, tx_id=parent_tx_id)
        )
        apply_delta(target, delta)
        if parent_tx_id == TRUNK and target.removed:
            conn.execute(
                "DELETE FROM versions WHERE node_id = ? AND tx_id = ?", (delta.node_id, tx_id)
            )
            _delete_trunk_version(conn, delta.node_id)
            continue
        target.save(conn)
    conn.execute("DELETE FROM versions WHERE tx_id = ?", (tx_id,))
    conn.execute("UPDATE nodes SET created_tx = ? WHERE created_tx = ?", (parent_tx_id, tx_id))
    _delete_nodes_without_versions(conn, [row["node_id"] for row in rows])


def discard_versions(conn: sqlite3.Connection, tx_id: str) -> None:
    """Drop a transaction's deltas (abort), and the nodes it created."""
    touched = [
        row[0] for row in conn.execute("SELECT node_id FROM versions WHERE tx_id = ?", (tx_id,))
    ]
    conn.execute("DELETE FROM versions WHERE tx_id = ?", (tx_id,))
    _delete_nodes_without_versions(conn, touched)
    created = [
        row[0] for row in conn.execute("SELECT id FROM nodes WHERE created_tx = ?", (tx_id,))
    ]
    for node_id in created:
        conn.execute("DELETE FROM versions WHERE node_id = ?", (node_id,))
        conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))


def _delete_nodes_without_versions(conn: sqlite3.Connection, node_ids: list[str]) -> None:
    """Forget nodes no version refers to any more (removed, and no snapshot holds them)."""
    for node_id in node_ids:
        if (
            conn.execute("SELECT 1 FROM versions WHERE node_id = ? LIMIT 1", (node_id,)).fetchone()
            is None
        ):
            conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
