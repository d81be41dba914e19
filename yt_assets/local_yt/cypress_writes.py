"""Changing the Cypress tree: ``create``, ``set``, ``remove``, ``move``, ``copy``
(a layer of :class:`~.cluster.Cluster`).
"""

from __future__ import annotations

import builtins
import copy
from typing import Any

from .cluster_base import RichPathLike
from .cypress import (
    CHUNK_TYPES,
    LINK_TYPE,
    TYPE_CODES,
    VALUE_TYPES,
    CypressView,
    Node,
)
from .cypress_reads import CypressReads, _navigate, _node_type_of_value, _strip_attributes
from .exceptions import (
    AlreadyExistsError,
    GenericError,
    InvalidNodeType,
    ResolveError,
)
from .expiration import check_expiration_attribute
from .links import LINK_ATTRIBUTES, check_target_path, refuse_cyclic_link
from .list_positions import place_in_list
from .tables import (
    Schema,
    make_row_validator,
    normalize_schema,
)
from .transactions import (
    acquire_lock,
)
from .ypath import PathToken

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
        "compression_ratio",
        "data_weight",
        "resource_usage",
        "sorted",
        "sorted_by",
        "key_columns",
        "schema_mode",
        "unique_keys",
        *LINK_ATTRIBUTES,
    }
)


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


class CypressWrites(CypressReads):
    """``create``, ``set``, ``remove``, ``move`` and ``copy``, with their implicit locks."""

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
        if type == LINK_TYPE:
            attrs["target_path"] = check_target_path(attrs.get("target_path"))
        if attrs.pop("dynamic", False):
            raise GenericError("Dynamic tables are not supported by the local YT")
        for name in attrs:
            if name in READ_ONLY_ATTRIBUTES:
                raise GenericError(f'Attribute "{name}" cannot be set', attribute=name)
            check_expiration_attribute(name, attrs[name])
        with self._mutation(transaction_id) as view:
            parent, key = self._parent_for_create(
                view, root, tokens, recursive=recursive, path=rich.path
            )
            existing = view.child(parent, key)
            if existing is not None and LINK_TYPE == existing.type != type and not force:
                existing = view.follow(existing)  # a create through a link finds its target
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
            if type == LINK_TYPE:
                refuse_cyclic_link(view, node)
            return node.id

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
        check_expiration_attribute(name, value)
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
