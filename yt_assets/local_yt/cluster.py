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
YSON and read back as ``yt.yson.load(..., encoding="utf-8", always_create_attributes=False)`` gives
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
``file_content_path``). Not emulated: ``expiration_time``/``expiration_timeout`` (stored, never
fire), links, dynamic tables, ACLs, ``@locks``, pending (waitable) locks, transactions as Cypress
objects (``//sys/transactions``), ``tablet_index``/``offset``/``chunk_index`` read limits.

**Durability and sharing**: see :mod:`.storage`. Several :class:`Cluster` instances (threads or
processes) may open one root at once. Writes stream rows straight into a chunk file (memory does not
grow with the row count); reads stream them back lazily.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yt.yson

from .cypress import (
    CHUNK_TYPES,
    FILE_CHUNK_TYPE_CODE,
    TABLE_CHUNK_TYPE_CODE,
    TRUNK,
    TYPE_CODES,
    VALUE_TYPES,
    ChunkInfo,
    CypressView,
    Node,
    dump_yson,
)
from .exceptions import (
    AlreadyExistsError,
    GenericError,
    InvalidNodeType,
    InvalidYPath,
    ResolveError,
    TableSortOrderViolation,
)
from .list_positions import place_in_list
from .lock_views import node_locks
from .storage import (
    DEFAULT_ORPHAN_MIN_AGE_SECONDS,
    DEFAULT_UNREFERENCED_GRACE_SECONDS,
    Storage,
)
from .tables import (
    Schema,
    SortedWriteChecker,
    make_key_function,
    make_row_validator,
    normalize_schema,
    project_columns,
    schema_with_sorted_by,
)
from .transactions import (
    abort_expired,
    abort_transaction,
    acquire_lock,
    check_lock,
    commit_transaction,
    is_null_transaction,
    ping_transaction,
    start_transaction,
    transaction_chain,
)
from .ypath import PathToken, RichPath, parse_rich_path, split_ypath

Row = dict[str, Any]
RichPathLike = Any

INITIAL_DIRECTORIES = ("tmp", "home", "sys")
DEFAULT_GC_INTERVAL_SECONDS = 600.0

# Attributes the system computes; ``set`` refuses them.
READ_ONLY_ATTRIBUTES = frozenset(
    {
        "id",
        "type",
        "path",
        "key",
        "parent_id",
        "creation_time",
        "modification_time",
        "access_time",
        "revision",
        "content_revision",
        "attribute_revision",
        "ref_counter",
        "lock_count",
        "lock_mode",
        "locks",
        "count",
        "row_count",
        "chunk_count",
        "chunk_ids",
        "uncompressed_data_size",
        "compressed_data_size",
        "data_weight",
        "resource_usage",
        "sorted",
        "sorted_by",
        "key_columns",
        "schema_mode",
        "unique_keys",
    }
)
# Settable system attributes and their defaults, per node type.
_DEFAULT_STORAGE_ATTRIBUTES = {
    "replication_factor": 3,
    "compression_codec": "lz4",
    "erasure_codec": "none",
    "primary_medium": "default",
    "account": "tmp",
}


def _is_control_row(row: Any) -> bool:
    return isinstance(row, yt.yson.YsonEntity) or row is None


def _navigate(value: Any, tokens: list[PathToken], *, description: str) -> Any:
    """Follow child tokens into a YSON value (document value, attribute value)."""
    for token in tokens:
        if token.kind != "child":
            raise ResolveError(f"Cannot resolve {description}: unexpected attribute token")
        if isinstance(value, dict) and token.key in value:
            value = value[token.key]
        elif isinstance(value, list) and token.key.lstrip("-").isdigit():
            index = int(token.key)
            if not -len(value) <= index < len(value):
                raise ResolveError(f"{description} has no child with index {index}")
            value = value[index]
        else:
            raise ResolveError(f'{description} has no child with key "{token.key}"', key=token.key)
    return value


def _set_in_value(
    value: Any, tokens: list[PathToken], new_value: Any, *, recursive: bool, description: str
) -> Any:
    """A copy of ``value`` with ``new_value`` placed at ``tokens``."""
    if not tokens:
        return new_value
    result = copy.deepcopy(value)
    container = result
    for token in tokens[:-1]:
        if isinstance(container, dict):
            if token.key not in container:
                if not recursive:
                    raise ResolveError(
                        f'{description} has no child with key "{token.key}"', key=token.key
                    )
                container[token.key] = {}
            container = container[token.key]
        elif isinstance(container, list) and token.key.lstrip("-").isdigit():
            container = container[int(token.key)]
        else:
            raise ResolveError(f'{description} has no child with key "{token.key}"', key=token.key)
    last = tokens[-1].key
    if isinstance(container, dict):
        container[last] = new_value
    elif isinstance(container, list):
        place_in_list(container, last, new_value)  # index, end, begin, before:N, after:N
    else:
        raise ResolveError(f'{description} cannot have child "{last}"', key=last)
    return result


def _remove_in_value(value: Any, tokens: list[PathToken], *, description: str) -> Any:
    result = copy.deepcopy(value)
    container = _navigate(result, tokens[:-1], description=description)
    last = tokens[-1].key
    if isinstance(container, dict) and last in container:
        del container[last]
    elif (
        isinstance(container, list)
        and last.lstrip("-").isdigit()
        and -len(container) <= int(last) < len(container)
    ):
        del container[int(last)]
    else:
        raise ResolveError(f'{description} has no child with key "{last}"', key=last)
    return result


def _node_type_of_value(value: Any) -> str:
    if isinstance(value, dict):
        return "map_node"
    if isinstance(value, list):
        return "list_node"
    if isinstance(value, (bool, yt.yson.YsonBoolean)):
        return "boolean_node"
    if isinstance(value, yt.yson.YsonUint64):
        return "uint64_node"
    if isinstance(value, int):
        return "int64_node"
    if isinstance(value, float):
        return "double_node"
    if isinstance(value, (str, bytes)):
        return "string_node"
    return "entity"


def _strip_attributes(value: Any) -> tuple[Any, dict[str, Any]]:
    attributes = dict(getattr(value, "attributes", None) or {})
    if isinstance(value, yt.yson.YsonEntity):
        return None, attributes
    if isinstance(value, dict):
        return dict(value), attributes
    if isinstance(value, list):
        return list(value), attributes
    if isinstance(value, (bool, yt.yson.YsonBoolean)):
        return bool(value), attributes
    if isinstance(value, yt.yson.YsonUint64):
        return value, attributes
    if isinstance(value, int):
        return int(value), attributes
    if isinstance(value, float):
        return float(value), attributes
    if isinstance(value, bytes):
        try:
            return bytes(value).decode("utf-8"), attributes
        except UnicodeDecodeError:
            return bytes(value), attributes
    if isinstance(value, str):
        return str(value), attributes
    return value, attributes


def _row_limits(
    range_: dict[str, Any],
) -> tuple[int | None, int | None, list[Any] | None, list[Any] | None, list[Any] | None]:
    """(lower row, upper row, lower key, upper key, exact key) of one ``ranges`` item."""
    lower_row = upper_row = None
    lower_key = upper_key = exact_key = None
    exact = range_.get("exact") or {}
    lower = range_.get("lower_limit") or {}
    upper = range_.get("upper_limit") or {}
    if "row_index" in exact:
        lower_row = int(exact["row_index"])
        upper_row = lower_row + 1
    if "key" in exact:
        exact_key = list(exact["key"])
    if "row_index" in lower:
        lower_row = int(lower["row_index"])
    if "row_index" in upper:
        upper_row = int(upper["row_index"])
    if "key" in lower:
        lower_key = list(lower["key"])
    if "key" in upper:
        upper_key = list(upper["key"])
    for limit in (exact, lower, upper):
        unsupported = set(limit) - {"row_index", "key"}
        if unsupported:
            raise GenericError(f"Unsupported read limit {sorted(unsupported)} in the local YT")
    return lower_row, upper_row, lower_key, upper_key, exact_key


class Cluster:
    """A local YT cluster's state under one root directory (see the module docstring)."""

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

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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

    # ---- plumbing ------------------------------------------------------------------------------

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

    @contextlib.contextmanager
    def _mutation(self, transaction_id: str | None) -> Iterator[CypressView]:
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
            node = child
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

    # ---- attributes ----------------------------------------------------------------------------

    @staticmethod
    def _schema_of(node: Node) -> Schema:
        return Schema.from_stored(node.attrs.get("schema"))

    def _attributes(
        self, view: CypressView, node: Node, names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """All attributes of a node (system and user), or only ``names`` (those that exist)."""
        wanted = None if names is None else list(names)
        result: dict[str, Any] = {
            "id": node.id,
            "type": node.type,
            "creation_time": node.creation_time,
            "modification_time": node.modification_time,
            "access_time": node.modification_time,
            "revision": yt.yson.YsonUint64(node.revision),
            "content_revision": yt.yson.YsonUint64(node.revision),
            "owner": "root",
            "account": "tmp",
            "acl": [],
            "inherit_acl": True,
            "ref_counter": 1,
        }
        if wanted is None or "path" in wanted:
            result["path"] = view.path_of(node)
        if node.key is not None:
            result["key"] = node.key
        if node.parent_id is not None:
            result["parent_id"] = node.parent_id
        if wanted is None or "lock_count" in wanted:
            result["lock_count"] = int(
                view.conn.execute(
                    "SELECT COUNT(*) FROM locks WHERE node_id = ?", (node.id,)
                ).fetchone()[0]
            )
        if wanted is None or "locks" in wanted:
            result["locks"] = node_locks(view.conn, node.id)
        if node.type == "map_node" and (wanted is None or "count" in wanted):
            result["count"] = len(view.children(node))
        if node.type in CHUNK_TYPES:
            result.update(_DEFAULT_STORAGE_ATTRIBUTES)
        stored = {k: v for k, v in node.attrs.items() if k != "schema"}
        result.update(stored)
        if node.type in CHUNK_TYPES:
            infos = view.chunk_infos(node.chunks)
            size = sum(info.data_size for info in infos)
            result.update(
                {
                    "chunk_count": len(infos),
                    "uncompressed_data_size": size,
                    "compressed_data_size": size,
                    "data_weight": size,
                    "resource_usage": {
                        "disk_space": size,
                        "node_count": 1,
                        "chunk_count": len(infos),
                    },
                }
            )
            if node.type == "file":
                md5 = node.attrs.get("md5") or (infos[0].md5 if len(infos) == 1 else None)
                if md5 is not None:
                    result["md5"] = md5
                elif not infos:
                    result["md5"] = hashlib.md5(b"").hexdigest()
            if node.type == "table":
                schema = self._schema_of(node)
                stored_schema = node.attrs.get("schema") or {}
                result.update(
                    {
                        "row_count": sum(info.row_count for info in infos),
                        "schema": schema.to_yson(),
                        "schema_mode": "strong"
                        if stored_schema.get("mode") == "strong"
                        else "weak",
                        "sorted": bool(schema.sort_columns),
                        "key_columns": schema.sort_columns,
                        "dynamic": False,
                        "optimize_for": node.attrs.get("optimize_for", "lookup"),
                        "unique_keys": schema.unique_keys,
                    }
                )
                if schema.sort_columns:
                    result["sorted_by"] = schema.sort_columns
        if wanted is not None:
            return {name: result[name] for name in wanted if name in result}
        return result

    def _attribute(self, view: CypressView, node: Node, name: str) -> Any:
        attributes = self._attributes(view, node, [name])
        if name not in attributes:
            raise ResolveError(
                f'Attribute "{name}" is not found at node {view.path_of(node)}',
                path=view.path_of(node),
                attribute=name,
            )
        return attributes[name]

    def _node_value(
        self,
        view: CypressView,
        node: Node,
        attributes: builtins.list[str] | None,
        max_size: int | None,
    ) -> Any:
        value: Any
        incomplete = False
        if node.type == "map_node":
            children = view.children(node)
            if max_size is not None and len(children) > max_size:
                children = dict(itertools.islice(children.items(), max_size))
                incomplete = True
            value = {
                key: self._node_value(view, child, attributes, max_size)
                for key, child in children.items()
            }
        elif node.type in VALUE_TYPES:
            value = copy.deepcopy(node.value)
        else:
            value = yt.yson.YsonEntity()
        selected = self._attributes(view, node, attributes) if attributes else {}
        if incomplete:
            selected["incomplete"] = True
        if selected:
            if value is None:
                value = yt.yson.YsonEntity()
            return yt.yson.to_yson_type(value, attributes=selected)
        return value

    # ---- Cypress commands ----------------------------------------------------------------------

    def create(
        self,
        type: str,
        path: RichPathLike,
        *,
        recursive: bool = False,
        ignore_existing: bool = False,
        force: bool = False,
        attributes: dict[str, Any] | None = None,
        transaction_id: str | None = None,
    ) -> str:
        """Create a node (``map_node``, ``table``, ``file``, ``document``, scalar nodes); its id."""
        if type not in TYPE_CODES:
            raise InvalidNodeType(f"Unsupported object type {type!r} in the local YT", type=type)
        rich, root, tokens = self._split(path)
        attrs = dict(attributes or {})
        value: Any = None
        has_value = False
        if type in VALUE_TYPES:
            default: Any = {} if type == "document" else [] if type == "list_node" else None
            value = attrs.pop("value", default)
            has_value = True
        if "schema" in attrs:
            if type != "table":
                raise GenericError(f'Attribute "schema" is only for tables, not {type}')
            schema = normalize_schema(attrs["schema"])
            attrs["schema"] = {**schema.to_stored(), "mode": "strong"}
        if attrs.pop("dynamic", False):
            raise GenericError("Dynamic tables are not supported by the local YT")
        for name in attrs:
            if name in READ_ONLY_ATTRIBUTES:
                raise GenericError(f'Attribute "{name}" cannot be set', attribute=name)
        with self._mutation(transaction_id) as view:
            parent, key = self._parent_for_create(
                view, root, tokens, recursive=recursive, path=rich.path
            )
            existing = view.child(parent, key)
            if existing is not None:
                if ignore_existing and not force:
                    if existing.type != type:
                        raise AlreadyExistsError(
                            f"{rich.path} already exists and has type {existing.type} while node of "
                            f"{type} type is about to be created",
                            path=rich.path,
                        )
                    return existing.id
                if not force:
                    raise AlreadyExistsError(f"Node {rich.path} already exists", path=rich.path)
                self._lock_subtree(view, existing, mode="exclusive")
                view.remove_subtree(existing)
            acquire_lock(view, parent, mode="shared", child_key=key)
            node = view.create_node(
                type, parent, key, attrs=attrs, value=value, has_value=has_value
            )
            return node.id

    def exists(self, path: RichPathLike, *, transaction_id: str | None = None) -> bool:
        rich, root, tokens = self._split(path)
        with self._reading(transaction_id) as view:
            try:
                node, index = view.resolve(root, tokens)
            except ResolveError:
                return False
            rest = tokens[index:]
            if not rest or rest[0].kind == "all_attributes":
                return True
            try:
                if rest[0].kind == "attribute":
                    _navigate(
                        self._attribute(view, node, rest[0].key), rest[1:], description=rich.path
                    )
                elif node.type in VALUE_TYPES:
                    _navigate(node.value, rest, description=rich.path)
                else:
                    return False
            except ResolveError:
                return False
            return True

    def get(
        self,
        path: RichPathLike,
        *,
        attributes: builtins.list[str] | None = None,
        max_size: int | None = None,
        transaction_id: str | None = None,
    ) -> Any:
        rich, root, tokens = self._split(path)
        names = [str(name) for name in attributes] if attributes else None
        with self._reading(transaction_id) as view:
            node, index = view.resolve(root, tokens)
            rest = tokens[index:]
            if not rest:
                return self._node_value(view, node, names, max_size)
            first = rest[0]
            if first.kind == "all_attributes":
                return self._attributes(view, node, names)
            if first.kind == "attribute":
                return _navigate(
                    self._attribute(view, node, first.key), rest[1:], description=rich.path
                )
            if node.type in VALUE_TYPES:
                return copy.deepcopy(_navigate(node.value, rest, description=view.path_of(node)))
            raise ResolveError(
                f'Node {view.path_of(node)} has no child with key "{first.key}"',
                path=view.path_of(node),
                key=first.key,
            )

    def list(
        self,
        path: RichPathLike,
        *,
        attributes: builtins.list[str] | None = None,
        max_size: int | None = None,
        transaction_id: str | None = None,
    ) -> builtins.list[Any]:
        rich, root, tokens = self._split(path)
        names = [str(name) for name in attributes] if attributes else None
        with self._reading(transaction_id) as view:
            node, index = view.resolve(root, tokens)
            rest = tokens[index:]
            keys: builtins.list[Any]
            if rest and rest[0].kind == "all_attributes":
                keys = sorted(self._attributes(view, node))
            elif rest:
                if rest[0].kind == "attribute":
                    value = _navigate(
                        self._attribute(view, node, rest[0].key), rest[1:], description=rich.path
                    )
                elif node.type in VALUE_TYPES:
                    value = _navigate(node.value, rest, description=rich.path)
                else:
                    raise ResolveError(
                        f'Node {view.path_of(node)} has no child with key "{rest[0].key}"'
                    )
                if not isinstance(value, dict):
                    raise InvalidNodeType(f"{rich.path} is not a map and cannot be listed")
                keys = sorted(value)
            elif node.type == "map_node":
                children = view.children(node)
                keys = list(children)
                if names:
                    keys = [
                        yt.yson.to_yson_type(key, attributes=self._attributes(view, child, names))
                        for key, child in children.items()
                    ]
            elif node.type in VALUE_TYPES and isinstance(node.value, dict):
                keys = sorted(node.value)
            else:
                raise InvalidNodeType(
                    f"Node {view.path_of(node)} of type {node.type} cannot be listed",
                    path=view.path_of(node),
                )
            if max_size is not None and len(keys) > max_size:
                truncated = yt.yson.to_yson_type(keys[:max_size], attributes={"incomplete": True})
                return truncated  # type: ignore[no-any-return]
            return keys

    def set(
        self,
        path: RichPathLike,
        value: Any,
        *,
        recursive: bool = False,
        force: bool = False,
        transaction_id: str | None = None,
    ) -> None:
        rich, root, tokens = self._split(path)
        with self._mutation(transaction_id) as view:
            try:
                node, index = view.resolve(root, tokens)
            except ResolveError:
                if any(token.kind != "child" for token in tokens):
                    raise
                parent, key = self._parent_for_create(
                    view, root, tokens, recursive=recursive, path=rich.path
                )
                acquire_lock(view, parent, mode="shared", child_key=key)
                self._build_from_value(view, parent, key, value)
                return
            rest = tokens[index:]
            if not rest:
                self._replace_node_value(view, node, value)
                return
            first = rest[0]
            if first.kind == "all_attributes":
                self._replace_attributes(view, node, value)
                return
            if first.kind == "attribute":
                self._set_attribute(view, node, first.key, rest[1:], value, recursive=recursive)
                return
            if node.type in VALUE_TYPES:
                acquire_lock(view, node, mode="exclusive")
                new = _set_in_value(
                    node.value, rest, value, recursive=recursive, description=view.path_of(node)
                )
                view.set_value(node, new)
                return
            if node.type == "map_node" or (len(rest) > 1 and not recursive):
                raise ResolveError(
                    f'Node {view.path_of(node)} has no child with key "{first.key}"',
                    path=view.path_of(node),
                    key=first.key,
                )
            raise InvalidNodeType(
                f"Node {view.path_of(node)} of type {node.type} cannot have children"
            )

    def _build_from_value(self, view: CypressView, parent: Node, key: str, value: Any) -> Node:
        plain, attributes = _strip_attributes(value)
        node_type = _node_type_of_value(plain)
        if node_type == "map_node":
            node = view.create_node("map_node", parent, key, attrs=attributes)
            for child_key, child_value in plain.items():
                self._build_from_value(view, node, str(child_key), child_value)
            return node
        return view.create_node(
            node_type, parent, key, attrs=attributes, value=plain, has_value=True
        )

    def _replace_node_value(self, view: CypressView, node: Node, value: Any) -> None:
        plain, _attributes = _strip_attributes(value)
        if node.type == "document":
            acquire_lock(view, node, mode="exclusive")
            view.set_value(node, plain)
            return
        if node.type == "map_node" and isinstance(plain, dict):
            self._lock_subtree(view, node, mode="exclusive")
            for child in view.children(node).values():
                view.remove_subtree(child)
            for child_key, child_value in plain.items():
                self._build_from_value(view, node, str(child_key), child_value)
            view.touch(node)
            return
        if node.id == self._root_id:
            raise GenericError("Cannot replace the root node with a non-map value")
        if node.type in CHUNK_TYPES:
            raise InvalidNodeType(
                f"Cannot set the value of a {node.type} node {view.path_of(node)}"
            )
        parent = view.node(node.parent_id) if node.parent_id else None
        assert parent is not None and node.key is not None
        self._lock_subtree(view, node, mode="exclusive")
        acquire_lock(view, parent, mode="shared", child_key=node.key)
        view.remove_subtree(node)
        self._build_from_value(view, parent, node.key, value)

    def _replace_attributes(self, view: CypressView, node: Node, value: Any) -> None:
        if not isinstance(value, dict):
            raise GenericError("Attributes must be a map")
        acquire_lock(view, node, mode="exclusive")
        for name in list(node.attrs):
            if name not in value and name != "schema":
                view.remove_attribute(node, name)
        for name, item in value.items():
            if str(name) not in READ_ONLY_ATTRIBUTES:
                self._store_attribute(view, node, str(name), item)

    def _set_attribute(
        self,
        view: CypressView,
        node: Node,
        name: str,
        rest: builtins.list[PathToken],
        value: Any,
        *,
        recursive: bool,
    ) -> None:
        if name in READ_ONLY_ATTRIBUTES or (name == "md5" and node.type != "file"):
            raise GenericError(f'Attribute "{name}" cannot be set', attribute=name)
        acquire_lock(view, node, mode="shared", attribute_key=name)
        if rest:
            current = self._attribute(view, node, name)
            value = _set_in_value(
                current,
                rest,
                value,
                recursive=recursive,
                description=f"{view.path_of(node)}/@{name}",
            )
        self._store_attribute(view, node, name, value)

    def _store_attribute(self, view: CypressView, node: Node, name: str, value: Any) -> None:
        if name == "schema":
            if node.type != "table":
                raise GenericError('Attribute "schema" is only for tables')
            self._alter_schema(view, node, normalize_schema(value))
            return
        view.set_attribute(node, name, value)

    def _alter_schema(self, view: CypressView, node: Node, schema: Schema) -> None:
        acquire_lock(view, node, mode="exclusive")
        if node.chunks and schema.strict:
            validate = make_row_validator(schema, table_path=view.path_of(node))
            for row in self._iterate_chunks(view.chunk_infos(node.chunks), 0, None):
                validate(row)
        view.set_attribute(node, "schema", {**schema.to_stored(), "mode": "strong"})

    def remove(
        self,
        path: RichPathLike,
        *,
        recursive: bool = False,
        force: bool = False,
        transaction_id: str | None = None,
    ) -> None:
        rich, root, tokens = self._split(path)
        with self._mutation(transaction_id) as view:
            try:
                node, index = view.resolve(root, tokens)
            except ResolveError:
                if force:
                    return
                raise
            rest = tokens[index:]
            if not rest:
                if node.id == self._root_id:
                    raise GenericError("Node / cannot be removed")
                if node.type == "map_node" and not recursive and view.children(node):
                    raise GenericError(
                        f"Cannot remove non-empty composite node {view.path_of(node)}",
                        path=view.path_of(node),
                    )
                self._lock_subtree(view, node, mode="exclusive")
                if node.parent_id is not None and node.key is not None:
                    parent = view.node(node.parent_id)
                    if parent is not None:
                        acquire_lock(view, parent, mode="shared", child_key=node.key)
                view.remove_subtree(node)
                return
            first = rest[0]
            if first.kind == "all_attributes":
                raise GenericError("Cannot remove all attributes at once")
            if first.kind == "attribute":
                if first.key in READ_ONLY_ATTRIBUTES or first.key == "schema":
                    raise GenericError(
                        f'Attribute "{first.key}" cannot be removed', attribute=first.key
                    )
                if len(rest) == 1:
                    if first.key not in node.attrs:
                        if force:
                            return
                        raise ResolveError(
                            f'Attribute "{first.key}" is not found at node {view.path_of(node)}',
                            attribute=first.key,
                        )
                    acquire_lock(view, node, mode="shared", attribute_key=first.key)
                    view.remove_attribute(node, first.key)
                    return
                acquire_lock(view, node, mode="shared", attribute_key=first.key)
                current = self._attribute(view, node, first.key)
                try:
                    new = _remove_in_value(current, rest[1:], description=rich.path)
                except ResolveError:
                    if force:
                        return
                    raise
                view.set_attribute(node, first.key, new)
                return
            if node.type in VALUE_TYPES:
                acquire_lock(view, node, mode="exclusive")
                try:
                    new = _remove_in_value(node.value, rest, description=view.path_of(node))
                except ResolveError:
                    if force:
                        return
                    raise
                view.set_value(node, new)
                return
            if force:
                return
            raise ResolveError(f'Node {view.path_of(node)} has no child with key "{first.key}"')

    def _prepare_destination(
        self,
        view: CypressView,
        destination_path: RichPathLike,
        *,
        recursive: bool,
        force: bool,
        source: Node | None,
    ) -> tuple[Node, str, Node | None]:
        """(parent, key, existing node) for a move/copy destination; removes it when ``force``."""
        rich, root, tokens = self._split(destination_path)
        parent, key = self._parent_for_create(
            view, root, tokens, recursive=recursive, path=rich.path
        )
        existing = view.child(parent, key)
        if existing is not None and source is not None and existing.id == source.id:
            raise GenericError("Cannot copy or move a node to itself", path=rich.path)
        return parent, key, existing

    def move(
        self,
        source_path: RichPathLike,
        destination_path: RichPathLike,
        *,
        recursive: bool = False,
        force: bool = False,
        transaction_id: str | None = None,
    ) -> str:
        with self._mutation(transaction_id) as view:
            _rich, source = self._resolve_node(view, source_path)
            if source.id == self._root_id:
                raise GenericError("Cannot move the root node")
            parent, key, existing = self._prepare_destination(
                view, destination_path, recursive=recursive, force=force, source=source
            )
            if self._is_ancestor(view, source, parent):
                raise GenericError(
                    f"Cannot move node {view.path_of(source)} to its descendant",
                    path=view.path_of(source),
                )
            if existing is not None:
                if not force:
                    raise AlreadyExistsError(
                        f"Node {view.path_of(existing)} already exists", path=view.path_of(existing)
                    )
                self._lock_subtree(view, existing, mode="exclusive")
                view.remove_subtree(existing)
            self._lock_subtree(view, source, mode="exclusive")
            old_parent = view.node(source.parent_id) if source.parent_id else None
            if old_parent is not None and source.key is not None:
                acquire_lock(view, old_parent, mode="shared", child_key=source.key)
            acquire_lock(view, parent, mode="shared", child_key=key)
            source = view.node(source.id) or source
            view.move_node(source, parent, key)
            return source.id

    def copy(
        self,
        source_path: RichPathLike,
        destination_path: RichPathLike,
        *,
        recursive: bool = False,
        force: bool = False,
        ignore_existing: bool = False,
        transaction_id: str | None = None,
    ) -> str:
        with self._mutation(transaction_id) as view:
            _rich, source = self._resolve_node(view, source_path)
            parent, key, existing = self._prepare_destination(
                view, destination_path, recursive=recursive, force=force, source=source
            )
            if self._is_ancestor(view, source, parent):
                raise GenericError(
                    f"Cannot copy node {view.path_of(source)} to its descendant",
                    path=view.path_of(source),
                )
            if existing is not None:
                if ignore_existing:
                    return existing.id
                if not force:
                    raise AlreadyExistsError(
                        f"Node {view.path_of(existing)} already exists", path=view.path_of(existing)
                    )
                self._lock_subtree(view, existing, mode="exclusive")
                view.remove_subtree(existing)
            acquire_lock(view, parent, mode="shared", child_key=key)
            return self._copy_subtree(view, source, parent, key).id

    def _copy_subtree(self, view: CypressView, source: Node, parent: Node, key: str) -> Node:
        node = view.create_node(
            source.type,
            parent,
            key,
            attrs=copy.deepcopy(source.attrs),
            value=copy.deepcopy(source.value),
            has_value=source.type in VALUE_TYPES,
            chunks=list(source.chunks),
        )
        for child_key, child in view.children(source).items():
            self._copy_subtree(view, child, node, child_key)
        return node

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

    def concatenate(
        self,
        source_paths: builtins.list[RichPathLike],
        destination_path: RichPathLike,
        *,
        transaction_id: str | None = None,
    ) -> None:
        """Concatenate tables (or files) into ``destination_path`` (``<append=%true>`` keeps its rows).

        Source chunks are shared, not copied. Into a strict-schema table, rows of sources with another
        schema are validated; into a sorted table, key order across sources is checked.
        """
        destination_rich = parse_rich_path(destination_path)
        # Phase 1: resolve and validate without holding the write lock.
        with self._reading(transaction_id) as view:
            _rich, destination = self._resolve_node(view, destination_rich)
            sources = [self._resolve_node(view, path)[1] for path in source_paths]
            for source in sources:
                if source.type != destination.type or source.type not in CHUNK_TYPES:
                    raise InvalidNodeType(
                        f"Type of {view.path_of(source)} ({source.type}) does not match the type of "
                        f"destination {view.path_of(destination)} ({destination.type})"
                    )
            source_chunks = [list(source.chunks) for source in sources]
            destination_path_text = view.path_of(destination)
            if destination.type == "table":
                self._validate_concatenation(
                    view, destination, sources, append=destination_rich.append
                )
        # Phase 2: apply, if the sources did not change meanwhile.
        with self._mutation(transaction_id) as view:
            destination = view.node(destination.id)  # type: ignore[assignment]
            if destination is None:
                raise ResolveError(f"Node {destination_path_text} was removed during concatenate")
            for source, chunks in zip(sources, source_chunks, strict=True):
                current = view.node(source.id)
                if current is None or current.chunks != chunks:
                    raise GenericError(
                        f"Source {source.id} changed during concatenate; retry",
                    )
            schema = self._schema_of(destination)
            append = destination_rich.append
            mode = "exclusive" if (not append or schema.sort_columns) else "shared"
            acquire_lock(view, destination, mode=mode, path=destination_path_text)
            all_chunks = [chunk for chunks in source_chunks for chunk in chunks]
            if append:
                view.append_chunks(destination, all_chunks)
            else:
                view.replace_chunks(destination, all_chunks)

    def _validate_concatenation(
        self, view: CypressView, destination: Node, sources: builtins.list[Node], *, append: bool
    ) -> None:
        schema = self._schema_of(destination)
        path = view.path_of(destination)
        if schema.strict:
            validate = make_row_validator(schema, table_path=path)
            for source in sources:
                source_schema = self._schema_of(source)
                if source_schema.to_stored() == schema.to_stored():
                    continue
                for row in self._iterate_chunks(view.chunk_infos(source.chunks), 0, None):
                    validate(row)
        if schema.sort_columns:
            infos: builtins.list[ChunkInfo] = []
            if append:
                infos.extend(view.chunk_infos(destination.chunks[-1:]))
            for source in sources:
                infos.extend(view.chunk_infos(source.chunks))
            checker = SortedWriteChecker(schema, table_path=path, previous_last_key=None)
            for info in infos:
                if info.sort_columns == schema.sort_columns and info.first_key is not None:
                    checker.check(dict(zip(schema.sort_columns, info.first_key, strict=False)))
                    checker.check(
                        dict(
                            zip(schema.sort_columns, info.last_key or info.first_key, strict=False)
                        )
                    )
                else:
                    for row in self._iterate_chunks([info], 0, None):
                        checker.check(row)

    # ---- transactions --------------------------------------------------------------------------

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

    # ---- tables --------------------------------------------------------------------------------

    def _last_key(self, view: CypressView, node: Node, schema: Schema) -> builtins.list[Any] | None:
        if not node.chunks or not schema.sort_columns:
            return None
        infos = view.chunk_infos(node.chunks)
        for info in reversed(infos):
            if info.row_count == 0:
                continue
            if info.sort_columns == schema.sort_columns:
                return info.last_key
            last = None
            for row in self._iterate_chunks([info], 0, None):
                last = row
            if last is not None:
                return [last.get(name) for name in schema.sort_columns]
        return None

    def write_table(
        self, path: RichPathLike, rows: Iterable[Row], *, transaction_id: str | None = None
    ) -> int:
        """Stream rows into a table (``<append=%true>`` appends, ``<schema=...>``/``<sorted_by=...>``
        as in YT). Returns the number of rows written. Atomic: readers see all rows or none."""
        rich = parse_rich_path(path)
        with self._mutation(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "table":
                raise InvalidNodeType(
                    f"Cannot write table rows to {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            table_path = view.path_of(node)
            plan = self._plan_table_write(view, node, rich, table_path)
            acquire_lock(view, node, mode=plan.lock_mode, path=table_path)
        node_id = node.id
        validate = make_row_validator(plan.schema, table_path=table_path)
        checker = (
            SortedWriteChecker(
                plan.schema, table_path=table_path, previous_last_key=plan.previous_last_key
            )
            if plan.schema.sort_columns
            else None
        )
        count = 0

        def validated_rows() -> Iterator[Row]:
            nonlocal count
            for row in rows:
                if _is_control_row(row):
                    continue
                row = validate(row)
                if checker is not None:
                    checker.check(row)
                count += 1
                yield row

        with self._storage.new_chunk(TABLE_CHUNK_TYPE_CODE) as chunk:
            yt.yson.dump(
                validated_rows(), chunk.file, yson_type="list_fragment", yson_format="binary"
            )
            size = chunk.finish()
            if count:
                self._storage.sync_chunks_directory()
            with self._mutation(transaction_id) as view:
                current = view.node(node_id)
                if current is None:
                    raise ResolveError(
                        f"Table {table_path} was removed while being written", path=table_path
                    )
                if view.tx == TRUNK:
                    check_lock(view, current, mode=plan.lock_mode, path=table_path)
                    if checker is not None and plan.append and checker.first_key is not None:
                        last_key = self._last_key(view, current, plan.schema)
                        if last_key != plan.previous_last_key:
                            recheck = SortedWriteChecker(
                                plan.schema, table_path=table_path, previous_last_key=last_key
                            )
                            recheck.check(
                                dict(zip(plan.schema.sort_columns, checker.first_key, strict=False))
                            )
                chunk_ids: builtins.list[str] = []
                if count:
                    self._insert_chunk(
                        view,
                        chunk.id,
                        kind="table",
                        row_count=count,
                        data_size=size,
                        sort_columns=plan.schema.sort_columns if checker is not None else None,
                        first_key=checker.first_key if checker is not None else None,
                        last_key=checker.last_key if checker is not None else None,
                    )
                    chunk_ids = [chunk.id]
                if plan.append:
                    view.append_chunks(current, chunk_ids)
                else:
                    view.replace_chunks(current, chunk_ids)
                if plan.stored_schema is not None:
                    view.set_attribute(current, "schema", plan.stored_schema)
                chunk.committed = bool(count)
        return count

    def _plan_table_write(
        self, view: CypressView, node: Node, rich: RichPath, table_path: str
    ) -> _WritePlan:
        current = self._schema_of(node)
        stored = node.attrs.get("schema") or {}
        strong = stored.get("mode") == "strong"
        if rich.append:
            if rich.schema is not None:
                raise GenericError(
                    f'Cannot append to {table_path} with a "schema" attribute; alter the table instead',
                    path=table_path,
                )
            schema = current
            new_stored = None
            if rich.sorted_by is not None and rich.sorted_by != schema.sort_columns:
                if node.chunks:
                    raise TableSortOrderViolation(
                        f"Cannot append sorted data to table {table_path}: its key columns "
                        f"{schema.sort_columns} differ from {rich.sorted_by}",
                        path=table_path,
                    )
                schema = schema_with_sorted_by(schema, rich.sorted_by)
                new_stored = {**schema.to_stored(), "mode": "strong" if strong else "weak"}
            previous = self._last_key(view, node, schema)
            mode = "exclusive" if schema.sort_columns else "shared"
            return _WritePlan(schema, new_stored, True, mode, previous)
        if rich.schema is not None:
            schema = normalize_schema(rich.schema)
            strong = True
        elif strong:
            schema = current
        else:
            schema = Schema()
        if rich.sorted_by is not None:
            schema = schema_with_sorted_by(schema, rich.sorted_by)
        new_stored = {**schema.to_stored(), "mode": "strong" if strong else "weak"}
        if new_stored == stored:
            new_stored = None
        return _WritePlan(schema, new_stored, False, "exclusive", None)

    def _insert_chunk(
        self,
        view: CypressView,
        chunk_id: str,
        *,
        kind: str,
        row_count: int,
        data_size: int,
        md5: str | None = None,
        sort_columns: builtins.list[str] | None = None,
        first_key: builtins.list[Any] | None = None,
        last_key: builtins.list[Any] | None = None,
    ) -> None:
        view.conn.execute(
            "INSERT INTO chunks (id, kind, row_count, data_size, md5, sort_columns, first_key, last_key,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chunk_id,
                kind,
                row_count,
                data_size,
                md5,
                json.dumps(sort_columns) if sort_columns else None,
                dump_yson(first_key) if first_key is not None else None,
                dump_yson(last_key) if last_key is not None else None,
                time.time(),
            ),
        )

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

    def _table_selection(
        self, path: RichPathLike, transaction_id: str | None
    ) -> tuple[RichPath, Node, builtins.list[ChunkInfo], Schema, str]:
        rich = parse_rich_path(path)
        with self._reading(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "table":
                raise InvalidNodeType(
                    f"Cannot read table rows from {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            return (
                rich,
                node,
                view.chunk_infos(node.chunks),
                self._schema_of(node),
                view.path_of(node),
            )

    def _first_row_index(
        self,
        infos: builtins.list[ChunkInfo],
        schema: Schema,
        key: builtins.list[Any],
        *,
        after: bool,
    ) -> int:
        """Index of the first row whose key prefix is ``>= key`` (``> key`` when ``after``)."""
        key_of, bound = _key_bound(schema, key)
        index = 0
        for info in infos:
            if info.sort_columns == schema.sort_columns and info.last_key is not None:
                last = key_of(dict(zip(schema.sort_columns, info.last_key, strict=True)))
                if last < bound or (after and last == bound):
                    index += info.row_count
                    continue
            for row in self._iterate_chunks([info], 0, None):
                row_key = key_of(row)
                if bound < row_key or (not after and row_key == bound):
                    return index
                index += 1
        return index

    def _range_bounds(
        self,
        infos: builtins.list[ChunkInfo],
        schema: Schema,
        range_: dict[str, Any],
        table_path: str,
    ) -> tuple[int, int]:
        """Row-index bounds ``[lower, upper)`` of one read range (key limits resolved by a scan)."""
        total = sum(info.row_count for info in infos)
        lower_row, upper_row, lower_key, upper_key, exact_key = _row_limits(range_)
        lower = min(max(lower_row or 0, 0), total)
        upper = total if upper_row is None else min(max(upper_row, 0), total)
        if lower_key is not None or upper_key is not None or exact_key is not None:
            if not schema.sort_columns:
                raise GenericError(
                    f"Cannot use key limits to read unsorted table {table_path}", path=table_path
                )
            if lower_key is not None:
                lower = max(lower, self._first_row_index(infos, schema, lower_key, after=False))
            if upper_key is not None:
                upper = min(upper, self._first_row_index(infos, schema, upper_key, after=False))
            if exact_key is not None:
                lower = max(lower, self._first_row_index(infos, schema, exact_key, after=False))
                upper = min(upper, self._first_row_index(infos, schema, exact_key, after=True))
        return lower, max(upper, lower)

    def read_table_ranges(
        self, path: RichPathLike, *, transaction_id: str | None = None
    ) -> builtins.list[tuple[int, Iterator[Row]]]:
        """One ``(start_row_index, rows)`` per range of the rich path (one for a path without
        ranges), for callers that mark range boundaries (``range_index``/``row_index`` control
        attributes). Key limits are resolved to row indexes; rows stream lazily."""
        rich, _node, infos, schema, table_path = self._table_selection(path, transaction_id)
        columns = rich.columns
        result: builtins.list[tuple[int, Iterator[Row]]] = []
        for range_ in rich.ranges or [{}]:
            lower, upper = self._range_bounds(infos, schema, range_, table_path)
            rows: Iterator[Row] = self._iterate_chunks(infos, lower, upper)
            if columns is not None:
                rows = iter(project_columns(rows, columns))
            result.append((lower, rows))
        return result

    def read_table(
        self, path: RichPathLike, *, transaction_id: str | None = None
    ) -> tuple[int, Iterator[Row]]:
        """``(start_row_index, rows)``: all ranges one after another, streamed lazily from the
        chunks as of this call (later commits do not change what the iterator yields)."""
        ranges = self.read_table_ranges(path, transaction_id=transaction_id)
        return ranges[0][0], itertools.chain.from_iterable(rows for _start, rows in ranges)

    # ---- files ---------------------------------------------------------------------------------

    def write_file(
        self, path: RichPathLike, data: Iterable[bytes], *, transaction_id: str | None = None
    ) -> None:
        """Stream bytes into a file node (``<append=%true>`` appends)."""
        rich = parse_rich_path(path)
        with self._mutation(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "file":
                raise InvalidNodeType(
                    f"Cannot write file data to {view.path_of(node)}: it is a {node.type}"
                )
            file_path = view.path_of(node)
            mode = "shared" if rich.append else "exclusive"
            acquire_lock(view, node, mode=mode, path=file_path)
        md5 = hashlib.md5()
        with self._storage.new_chunk(FILE_CHUNK_TYPE_CODE) as chunk:
            for piece in data:
                if piece:
                    md5.update(piece)
                    chunk.file.write(piece)
            size = chunk.finish()
            if size:
                self._storage.sync_chunks_directory()
            with self._mutation(transaction_id) as view:
                current = view.node(node.id)
                if current is None:
                    raise ResolveError(
                        f"File {file_path} was removed while being written", path=file_path
                    )
                if view.tx == TRUNK:
                    check_lock(view, current, mode=mode, path=file_path)
                chunk_ids: builtins.list[str] = []
                if size:
                    self._insert_chunk(
                        view,
                        chunk.id,
                        kind="file",
                        row_count=0,
                        data_size=size,
                        md5=md5.hexdigest(),
                    )
                    chunk_ids = [chunk.id]
                if rich.append:
                    view.append_chunks(current, chunk_ids)
                else:
                    view.replace_chunks(current, chunk_ids)
                if "md5" in current.attrs:
                    view.remove_attribute(current, "md5")
                chunk.committed = bool(size)

    def _file_chunks(
        self, path: RichPathLike, transaction_id: str | None
    ) -> tuple[builtins.list[ChunkInfo], str]:
        with self._reading(transaction_id) as view:
            _rich, node = self._resolve_node(view, path)
            if node.type != "file":
                raise InvalidNodeType(
                    f"Cannot read file data from {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            return view.chunk_infos(node.chunks), view.path_of(node)

    def read_file(
        self,
        path: RichPathLike,
        *,
        offset: int | None = None,
        length: int | None = None,
        transaction_id: str | None = None,
    ) -> Iterator[bytes]:
        infos, _file_path = self._file_chunks(path, transaction_id)
        return self._file_bytes(infos, offset or 0, length)

    def _file_bytes(
        self, infos: builtins.list[ChunkInfo], offset: int, length: int | None
    ) -> Iterator[bytes]:
        remaining = length
        position = 0
        for info in infos:
            start, end = position, position + info.data_size
            position = end
            if end <= offset:
                continue
            if remaining is not None and remaining <= 0:
                break
            with open(self._storage.chunk_path(info.id), "rb") as stream:
                stream.seek(max(offset - start, 0))
                while True:
                    size = 1 << 20 if remaining is None else min(1 << 20, remaining)
                    if size <= 0:
                        break
                    piece = stream.read(size)
                    if not piece:
                        break
                    if remaining is not None:
                        remaining -= len(piece)
                    yield piece

    def file_content_path(self, path: RichPathLike, transaction_id: str | None = None) -> Path:
        """The immutable on-disk content of a file node (to copy or link into a job sandbox)."""
        infos, _file_path = self._file_chunks(path, transaction_id)
        if len(infos) == 1:
            return self._storage.chunk_path(infos[0].id)
        name = hashlib.sha256(",".join(info.id for info in infos).encode()).hexdigest()
        target = self._storage.materialized_directory / name
        if not target.exists():
            temporary = target.with_name(f"{name}.{os.getpid()}.tmp")
            with open(temporary, "wb") as out:
                for piece in self._file_bytes(infos, 0, None):
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        return target

    # ---- file cache ----------------------------------------------------------------------------

    @staticmethod
    def _cache_entry_path(md5: str, cache_path: str) -> str:
        return f"{str(cache_path).rstrip('/')}/{md5[-2:]}/{md5}"

    def get_file_from_cache(self, md5: str, cache_path: str) -> str:
        """The path of the cached file with this MD5 under ``cache_path``, or ``""``."""
        entry = self._cache_entry_path(str(md5), str(cache_path))
        try:
            with self._reading(None) as view:
                _rich, node = self._resolve_node(view, entry)
                if node.type != "file" or self._attributes(view, node, ["md5"]).get("md5") != md5:
                    return ""
        except (ResolveError, InvalidYPath):
            return ""
        return entry

    def put_file_to_cache(self, path: str, md5: str, cache_path: str) -> str:
        """Copy file ``path`` into the cache (checking its MD5); returns the cache path."""
        infos, file_path = self._file_chunks(path, None)
        digest = hashlib.md5()
        for piece in self._file_bytes(infos, 0, None):
            digest.update(piece)
        if digest.hexdigest() != md5:
            raise GenericError(
                f"MD5 mismatch for {file_path}: expected {md5}, actual {digest.hexdigest()}",
                path=file_path,
            )
        entry = self._cache_entry_path(str(md5), str(cache_path))
        self.copy(path, entry, recursive=True, force=True)
        self.set(entry + "/@md5", md5)
        self.set(entry + "/@touched", True)
        return entry

    # ---- TableStore protocol (operations engine) ------------------------------------------------

    def read_rows(self, path: RichPathLike, transaction_id: str | None = None) -> Iterator[Row]:
        return self.read_table(path, transaction_id=transaction_id)[1]

    def row_count(self, path: RichPathLike, transaction_id: str | None = None) -> int:
        rich, _node, infos, schema, table_path = self._table_selection(path, transaction_id)
        bounds = [
            self._range_bounds(infos, schema, range_, table_path) for range_ in rich.ranges or [{}]
        ]
        return sum(upper - lower for lower, upper in bounds)

    def write_rows(
        self, path: RichPathLike, rows: Iterable[Row], transaction_id: str | None = None
    ) -> int:
        return self.write_table(path, rows, transaction_id=transaction_id)


class _WritePlan:
    """What a table write does, decided before streaming (schema, lock mode, previous key)."""

    def __init__(
        self,
        schema: Schema,
        stored_schema: dict[str, Any] | None,
        append: bool,
        lock_mode: str,
        previous_last_key: list[Any] | None,
    ) -> None:
        self.schema = schema
        self.stored_schema = stored_schema
        self.append = append
        self.lock_mode = lock_mode
        self.previous_last_key = previous_last_key


def _key_bound(schema: Schema, key: list[Any]) -> tuple[Callable[[Row], tuple], tuple]:
    """(row -> key prefix, the limit's key) for a key limit of a sorted table."""
    columns = schema.sort_columns[: len(key)]
    key_of = make_key_function(columns, schema.descending[: len(columns)])
    return key_of, key_of(dict(zip(columns, key, strict=False)))


__all__ = ["Cluster", "Row"]
