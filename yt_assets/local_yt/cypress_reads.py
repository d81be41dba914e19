"""Reading the Cypress tree: ``get``, ``exists``, ``list`` and the attributes of a node
(a layer of :class:`~.cluster.Cluster`).
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import itertools
from collections.abc import Iterable
from typing import Any

import yt.yson

from .cluster_base import ClusterBase, RichPathLike
from .cypress import (
    CHUNK_TYPES,
    LINK_TYPE,
    VALUE_TYPES,
    CypressView,
    Node,
)
from .exceptions import (
    InvalidNodeType,
    ResolveError,
)
from .links import link_attributes
from .lock_views import node_locks
from .ypath import PathToken

# Settable system attributes and their defaults, per node type.
_DEFAULT_STORAGE_ATTRIBUTES = {
    "replication_factor": 3,
    "compression_codec": "lz4",
    "erasure_codec": "none",
    "primary_medium": "default",
    "account": "tmp",
}


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


class CypressReads(ClusterBase):
    """``get``, ``exists``, ``list`` and node attributes."""

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
        if node.type == LINK_TYPE:
            result.update(link_attributes(view, node))
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
                    "compression_ratio": 1.0 if size else 0.0,  # chunks are stored as written
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

    def _value_at(
        self, view: CypressView, node: Node, rest: builtins.list[PathToken], *, description: str
    ) -> Any:
        """What the tail ``rest`` of a path names below ``node``: inside an attribute (``@a/b``)
        or inside a document node's value. Raises ``ResolveError`` when it names nothing."""
        first = rest[0]
        if first.kind == "attribute":
            return _navigate(
                self._attribute(view, node, first.key), rest[1:], description=description
            )
        if node.type in VALUE_TYPES:
            return _navigate(node.value, rest, description=description)
        raise ResolveError(
            f'Node {view.path_of(node)} has no child with key "{first.key}"',
            path=view.path_of(node),
            key=first.key,
        )

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
                self._value_at(view, node, rest, description=rich.path)
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
                value = self._value_at(view, node, rest, description=rich.path)
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
