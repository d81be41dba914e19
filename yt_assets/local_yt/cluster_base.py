"""The bottom layer of :class:`~.cluster.Cluster`: the state directory, the background garbage collector,
the read and write views of one command (:meth:`ClusterBase._mutation`, :meth:`ClusterBase._reading`)
and path resolution shared by every command.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yt.yson

from . import expiration
from .cypress import (
    TRUNK,
    ChunkInfo,
    CypressView,
    Node,
)
from .exceptions import (
    AlreadyExistsError,
    InvalidNodeType,
    InvalidYPath,
    ResolveError,
)
from .storage import (
    DEFAULT_ORPHAN_MIN_AGE_SECONDS,
    DEFAULT_UNREFERENCED_GRACE_SECONDS,
    Storage,
)
from .tables import (
    Schema,
)
from .transactions import (
    abort_expired,
    acquire_lock,
    transaction_chain,
)
from .ypath import PathToken, RichPath, parse_rich_path, split_ypath

Row = dict[str, Any]


RichPathLike = Any


INITIAL_DIRECTORIES = ("tmp", "home", "sys")


DEFAULT_GC_INTERVAL_SECONDS = 600.0


class ClusterBase:
    """Opens the state under a root; resolves paths in a view. Commands live in the subclasses."""

    def __init__(
        self,
        root: str | Path,
        *,
        collect_garbage: bool = True,
        garbage_collection_interval_seconds: float | None = DEFAULT_GC_INTERVAL_SECONDS,
        unreferenced_grace_seconds: float = DEFAULT_UNREFERENCED_GRACE_SECONDS,
        orphan_min_age_seconds: float = DEFAULT_ORPHAN_MIN_AGE_SECONDS,
    ) -> None:
        """Open (or create) the state under ``root``. Garbage (orphan and long-unreferenced chunk
        files) is collected at open when ``collect_garbage`` and then, in a background thread,
        at most every ``garbage_collection_interval_seconds`` after a mutation (None: never)."""
        self.root = Path(root)
        self._gc_interval = garbage_collection_interval_seconds
        self._gc_lock = threading.Lock()
        self._last_gc = time.monotonic()
        self._next_expiration_check = 0.0
        self.root.mkdir(parents=True, exist_ok=True)
        self._storage = Storage(
            self.root,
            unreferenced_grace_seconds=unreferenced_grace_seconds,
            orphan_min_age_seconds=orphan_min_age_seconds,
        )
        self._root_id = self._ensure_root()
        if collect_garbage:
            self._storage.collect_garbage()

    def close(self) -> None:
        with self._gc_lock:  # let a background collection finish first
            self._storage.close()

    def release_thread_resources(self) -> None:
        """Free what the calling thread holds (its database connection); call before it ends."""
        self._storage.release_thread_connection()

    def collect_garbage(self) -> int:
        """Delete orphan and long-unreferenced chunk files now; returns how many were deleted."""
        with self._gc_lock:
            self._last_gc = time.monotonic()
            return self._storage.collect_garbage()

    def _maybe_collect_garbage_in_background(self) -> None:
        if self._gc_interval is None or time.monotonic() - self._last_gc < self._gc_interval:
            return
        if not self._gc_lock.acquire(blocking=False):
            return
        self._last_gc = time.monotonic()

        def collect() -> None:
            try:
                with contextlib.suppress(Exception):  # best effort; retried on the next interval
                    self._storage.collect_garbage()
            finally:
                self._storage.release_thread_connection()
                self._gc_lock.release()

        threading.Thread(target=collect, name="local-yt-gc", daemon=True).start()

    def _ensure_root(self) -> str:
        with self._storage.write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'root_id'").fetchone()
            if row is not None:
                return str(row[0])
            conn.execute("INSERT INTO meta (key, value) VALUES ('revision', 1)")
            view = CypressView(conn, [TRUNK], "", revision=1)
            root_id = view.create_root()
            view.root_id = root_id
            root = view.root()
            for name in INITIAL_DIRECTORIES:
                view.create_node("map_node", root, name)
            conn.execute("INSERT INTO meta (key, value) VALUES ('root_id', ?)", (root_id,))
            return root_id

    def _expire_due_nodes(self) -> None:
        """Remove the nodes whose ``expiration_time``/``expiration_timeout`` has passed (checked at
        most every ``CHECK_INTERVAL_SECONDS``; a read-only check when nothing is due)."""
        now = time.monotonic()
        if now < self._next_expiration_check:
            return
        self._next_expiration_check = now + expiration.CHECK_INTERVAL_SECONDS
        with self._storage.read() as conn:
            due = expiration.due_node_ids(conn, time.time())
        if due:
            with self._storage.write() as conn:
                expiration.remove_expired(CypressView(conn, [TRUNK], self._root_id), due)

    @contextlib.contextmanager
    def _mutation(self, transaction_id: str | None) -> Iterator[CypressView]:
        self._expire_due_nodes()
        with self._storage.write() as conn:
            abort_expired(conn)
            chain = transaction_chain(conn, transaction_id)
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
            revision = int(
                conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0]
            )
            yield CypressView(conn, chain, self._root_id, revision)
        self._maybe_collect_garbage_in_background()

    @contextlib.contextmanager
    def _reading(self, transaction_id: str | None) -> Iterator[CypressView]:
        self._expire_due_nodes()
        with self._storage.read() as conn:
            chain = transaction_chain(conn, transaction_id)
            revision = int(
                conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0]
            )
            yield CypressView(conn, chain, self._root_id, revision)

    @staticmethod
    def _split(path: RichPathLike) -> tuple[RichPath, str, builtins.list[PathToken]]:
        rich = parse_rich_path(path)
        root, tokens = split_ypath(rich.path)
        return rich, root, tokens

    def _resolve_node(self, view: CypressView, path: RichPathLike) -> tuple[RichPath, Node]:
        """The node a path names exactly (no attribute or in-document suffix)."""
        rich, root, tokens = self._split(path)
        node, index = view.resolve(root, tokens)
        if index != len(tokens):
            token = tokens[index]
            if token.kind == "child":
                raise ResolveError(
                    f'Node {view.path_of(node)} has no child with key "{token.key}"',
                    path=view.path_of(node),
                    key=token.key,
                )
            raise InvalidYPath(f"Path {rich.path} must name a node, not an attribute")
        return rich, node

    def _parent_for_create(
        self,
        view: CypressView,
        root: str,
        tokens: builtins.list[PathToken],
        *,
        recursive: bool,
        path: str,
    ) -> tuple[Node, str]:
        if not tokens:
            raise AlreadyExistsError(f"Node {path} already exists", path=path)
        if any(token.kind != "child" for token in tokens):
            raise InvalidYPath(f"Cannot create a node at an attribute path {path}")
        node = view.resolve_root(root)
        for token in tokens[:-1]:
            if not node.is_map:
                raise InvalidNodeType(
                    f"Node {view.path_of(node)} of type {node.type} cannot have children",
                    path=view.path_of(node),
                )
            child = view.child(node, token.key)
            if child is None:
                if not recursive:
                    raise ResolveError(
                        f'Node {view.path_of(node)} has no child with key "{token.key}"',
                        path=view.path_of(node),
                        key=token.key,
                    )
                acquire_lock(view, node, mode="shared", child_key=token.key)
                child = view.create_node("map_node", node, token.key)
            node = child if token.keep_link else view.follow(child)
        if not node.is_map:
            raise InvalidNodeType(
                f"Node {view.path_of(node)} of type {node.type} cannot have children",
                path=view.path_of(node),
            )
        return node, tokens[-1].key

    def _lock_subtree(self, view: CypressView, node: Node, *, mode: str) -> None:
        for victim in [node, *view.descendants(node)]:
            acquire_lock(view, victim, mode=mode)

    def _is_ancestor(self, view: CypressView, ancestor: Node, node: Node) -> bool:
        current: Node | None = node
        while current is not None:
            if current.id == ancestor.id:
                return True
            current = view.node(current.parent_id) if current.parent_id else None
        return False

    @staticmethod
    def _schema_of(node: Node) -> Schema:
        return Schema.from_stored(node.attrs.get("schema"))

    def _iterate_chunks(
        self, infos: builtins.list[ChunkInfo], lower: int, upper: int | None
    ) -> Iterator[Row]:
        """Rows ``[lower, upper)`` of the concatenation of table chunks, streamed from disk."""
        offset = 0
        for info in infos:
            start, end = offset, offset + info.row_count
            offset = end
            if end <= lower:
                continue
            if upper is not None and start >= upper:
                break
            skip = max(lower - start, 0)
            take = None if upper is None else min(upper, end) - start - skip
            with open(self._storage.chunk_path(info.id), "rb") as stream:
                chunk_rows = yt.yson.load(
                    stream,
                    yson_type="list_fragment",
                    encoding="utf-8",
                    always_create_attributes=False,
                )
                stop = None if take is None else skip + take
                yield from itertools.islice(chunk_rows, skip, stop)
