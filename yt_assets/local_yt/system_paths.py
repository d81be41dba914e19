"""The virtual part of ``//sys``: ``//sys/transactions`` and ``//sys/operations``, and transactions
addressed as objects (``#<transaction-id>``), read with ``get``, ``list`` and ``exists``.

- ``//sys/transactions`` maps each live transaction id to an entity whose attributes describe it
  (``id``, ``type``, ``title``, ``start_time``, ``timeout``, ``parent_id``,
  ``nested_transaction_ids``, ``depth`` and the attributes it was started with);
  ``#<transaction-id>`` is the same object.
- ``//sys/operations`` holds 256 hash buckets (``00``..``ff``, the last part of an operation id
  modulo 256, as a cluster shards them); ``//sys/operations/<xx>/<operation-id>`` is an entity whose
  attributes are what ``get_operation`` returns.

Nothing here can be written: ``set``/``create``/``remove`` under these paths resolve to the real tree
(where they do not exist). Usage::

    client.list("//sys/transactions")                     # ids of the live transactions
    client.get(f"#{transaction_id}/@title")
    client.get(f"//sys/operations/{operation_id[-2:]}/{operation_id}/@state")
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yt.yson

from .cypress_reads import _navigate
from .exceptions import InvalidNodeType, ResolveError
from .ypath import PathToken, parse_rich_path, split_ypath

TRANSACTION_TYPE_PARTS = ("1", "4")  # the type part of transaction and nested transaction ids
BUCKET_COUNT = 256


@dataclass
class VirtualNode:
    """One virtual object: its attributes and, for a map, its children (built on demand)."""

    path: str
    attributes: Callable[[], dict[str, Any]]
    children: Callable[[], dict[str, VirtualNode]] | None = None


def _transaction_nodes(records: builtins.list[dict[str, Any]]) -> dict[str, VirtualNode]:
    by_id = {str(record["id"]): record for record in records}

    def attributes(record: dict[str, Any]) -> dict[str, Any]:
        parent = str(record["parent_id"] or "")
        depth, current = 0, parent
        while current in by_id:
            depth, current = depth + 1, str(by_id[current]["parent_id"] or "")
        result: dict[str, Any] = {**record["attributes"]}
        result.update(
            {
                "id": record["id"],
                "type": "nested_transaction" if parent else "transaction",
                "start_time": record["start_time"],
                "timeout": int(record["timeout_ms"]),
                "parent_id": parent or "0-0-0-0",
                "depth": depth,
                "owner": "root",
                "nested_transaction_ids": sorted(
                    key for key, other in by_id.items() if other["parent_id"] == record["id"]
                ),
            }
        )
        if record["title"]:
            result["title"] = record["title"]
        return result

    return {
        tx_id: VirtualNode(f"//sys/transactions/{tx_id}", functools.partial(attributes, record))
        for tx_id, record in sorted(by_id.items())
    }


def bucket_of(operation_id: str) -> str:
    """The ``//sys/operations`` bucket of an operation (the last id part modulo 256, in hex)."""
    return f"{int(operation_id.rsplit('-', 1)[-1], 16) % BUCKET_COUNT:02x}"


def _operations_root(operations: Any) -> VirtualNode:
    def ids() -> builtins.list[str]:
        listed = operations.list_operations(limit=1 << 30, include_counters=False)
        return [str(view["id"]) for view in listed["operations"]]

    def operation(operation_id: str) -> VirtualNode:
        return VirtualNode(
            f"//sys/operations/{bucket_of(operation_id)}/{operation_id}",
            lambda: {
                "id": operation_id,
                "type": "operation",
                **operations.get_operation(operation_id),
            },
        )

    def bucket(name: str) -> VirtualNode:
        return VirtualNode(
            f"//sys/operations/{name}",
            lambda: {"type": "map_node"},
            lambda: {i: operation(i) for i in sorted(ids()) if bucket_of(i) == name},
        )

    return VirtualNode(
        "//sys/operations",
        lambda: {"type": "map_node"},
        lambda: {f"{index:02x}": bucket(f"{index:02x}") for index in range(BUCKET_COUNT)},
    )


def _transactions_root(cluster: Any) -> VirtualNode:
    return VirtualNode(
        "//sys/transactions",
        lambda: {"type": "transaction_map"},
        lambda: _transaction_nodes(cluster.transaction_records()),
    )


def lookup(
    cluster: Any, operations: Any, path: Any
) -> tuple[VirtualNode, builtins.list[PathToken]] | None:
    """The virtual object a path starts at and the tokens left, or None for an ordinary path."""
    root, tokens = split_ypath(parse_rich_path(path).path)
    if root.startswith("#"):
        object_id = root[1:]
        parts = object_id.split("-")
        if len(parts) != 4 or parts[2] not in TRANSACTION_TYPE_PARTS:
            return None
        nodes = _transaction_nodes(cluster.transaction_records())
        if object_id not in nodes:
            raise ResolveError(f"No such transaction {object_id}", path=root)
        return nodes[object_id], tokens
    keys = [token.key if token.kind == "child" else None for token in tokens[:2]]
    if keys == ["sys", "transactions"]:
        return _transactions_root(cluster), tokens[2:]
    if keys == ["sys", "operations"] and operations is not None:
        return _operations_root(operations), tokens[2:]
    return None


def _walk(node: VirtualNode, tokens: builtins.list[PathToken]) -> tuple[VirtualNode, int]:
    index = 0
    while index < len(tokens) and tokens[index].kind == "child":
        children = node.children() if node.children is not None else {}
        key = tokens[index].key
        if key not in children:
            raise ResolveError(
                f'Node {node.path} has no child with key "{key}"', path=node.path, key=key
            )
        node, index = children[key], index + 1
    return node, index


def _with_attributes(node: VirtualNode, value: Any, names: builtins.list[str] | None) -> Any:
    if not names:
        return value
    attributes = node.attributes()
    return yt.yson.to_yson_type(
        value, attributes={n: attributes[n] for n in names if n in attributes}
    )


def get(
    node: VirtualNode, tokens: builtins.list[PathToken], names: builtins.list[str] | None
) -> Any:
    node, index = _walk(node, tokens)
    rest = tokens[index:]
    if not rest:
        if node.children is None:
            return _with_attributes(node, yt.yson.YsonEntity(), names)
        return _with_attributes(
            node,
            {
                key: _with_attributes(child, yt.yson.YsonEntity(), names)
                for key, child in node.children().items()
            },
            names,
        )
    attributes = node.attributes()
    if rest[0].kind == "all_attributes":
        return {n: attributes[n] for n in names if n in attributes} if names else attributes
    name = rest[0].key
    if name not in attributes:
        raise ResolveError(f'Attribute "{name}" is not found at node {node.path}', attribute=name)
    return _navigate(attributes[name], rest[1:], description=f"{node.path}/@{name}")


def list_(
    node: VirtualNode, tokens: builtins.list[PathToken], names: builtins.list[str] | None
) -> Any:
    node, index = _walk(node, tokens)
    rest = tokens[index:]
    if rest:
        value = get(node, rest, None)
        if not isinstance(value, dict):
            raise InvalidNodeType(f"{node.path}/@{rest[0].key} is not a map and cannot be listed")
        return sorted(value)
    if node.children is None:
        raise InvalidNodeType(f"Node {node.path} cannot be listed", path=node.path)
    return [_with_attributes(child, key, names) for key, child in node.children().items()]


def exists(node: VirtualNode, tokens: builtins.list[PathToken]) -> bool:
    try:
        get(node, tokens, None)
    except ResolveError:
        return False
    return True
