"""The ``skiff`` table format (what ``yt.wrapper``'s typed API and ``TypedJob`` speak).

A skiff stream is a sequence of rows, each a ``uint16`` table index followed by the row encoded
by that table's *table skiff schema*: a ``tuple`` whose named children are the dense columns, then
optionally ``$sparse_columns`` (``repeated_variant16`` of named simple fields) and
``$other_columns`` (``yson32``: a map of the remaining columns). ``$row_index``/``$range_index``
(``variant8<nothing;int64[;nothing]>``: tag 0 is "the previous one plus one" for rows, "unchanged"
for ranges; tag 1 carries the value) and ``$key_switch`` (``boolean``) are written to jobs and
readers. Schemas come from the format attributes ``table_skiff_schemas`` (a ``"$name"`` refers to
``skiff_schema_registry``), as the YTsaurus docs describe them.

Values map onto this server's row values (YT's default YSON representation) by the skiff schema:
a ``tuple`` with named children is a struct (a map), with unnamed ones a tuple (a list);
``variant8<nothing;T>`` an optional; another ``variant8``/``variant16`` a variant (``[name, v]``
for named children, ``[index, v]`` otherwise); ``repeated_variant8<T>`` a list (a dict is a list
of ``[key, value]`` pairs, as YT stores it). The table schema then validates what was decoded.

Usage::

    fmt = SkiffFormat({"table_skiff_schemas": [{"wire_type": "tuple", "children": [
        {"name": "a", "wire_type": "int64"}]}]})
    fmt.dump_rows([{"a": 1}], stream)
    rows = list(fmt.load_rows(stream))
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import yt.yson as yson

from .exceptions import GenericError
from .interfaces import Row
from .values import is_control_row

__all__ = ["SkiffFormat", "SkiffNode", "parse_skiff_schema"]

_SIMPLE_STRUCTS = {
    "int8": struct.Struct("<b"),
    "int16": struct.Struct("<h"),
    "int32": struct.Struct("<i"),
    "int64": struct.Struct("<q"),
    "uint8": struct.Struct("<B"),
    "uint16": struct.Struct("<H"),
    "uint32": struct.Struct("<I"),
    "uint64": struct.Struct("<Q"),
    "double": struct.Struct("<d"),
}
_WIDE_INTS = {
    "int128": (16, True),
    "uint128": (16, False),
    "int256": (32, True),
    "uint256": (32, False),
}
_STRING_TYPES = ("string32", "yson32")
_VARIANTS = {"variant8": struct.Struct("<B"), "variant16": struct.Struct("<H")}
_REPEATED = {
    "repeated_variant8": (struct.Struct("<B"), 0xFF),
    "repeated_variant16": (struct.Struct("<H"), 0xFFFF),
}
_COMPOUND = frozenset({"tuple", *_VARIANTS, *_REPEATED})
_SIMPLE = frozenset({"nothing", "boolean", *_SIMPLE_STRUCTS, *_WIDE_INTS, *_STRING_TYPES})
_LENGTH = struct.Struct("<I")
_TABLE_TAG = struct.Struct("<H")
_CONTROL_FIELDS = frozenset({"$key_switch", "$row_index", "$range_index"})
_SPECIAL_FIELDS = _CONTROL_FIELDS | {"$other_columns", "$sparse_columns"}
_INDEX_SHAPES = (("nothing", "int64"), ("nothing", "int64", "nothing"))


class SkiffError(GenericError):
    """A skiff schema is invalid, or data does not match it."""


@dataclass(frozen=True)
class SkiffNode:
    """One node of a skiff schema."""

    wire_type: str
    name: str | None = None
    children: tuple[SkiffNode, ...] = field(default=())

    @property
    def is_optional(self) -> bool:
        """``variant8<nothing; T>``: how skiff writes an optional value."""
        return (
            self.wire_type == "variant8"
            and len(self.children) == 2
            and self.children[0].wire_type == "nothing"
        )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_skiff_schema(spec: Any, registry: Mapping[str, Any], depth: int = 0) -> SkiffNode:
    """A :class:`SkiffNode` tree from its YSON description (``"$name"`` looked up in ``registry``)."""
    if depth > 256:
        raise SkiffError("Skiff schema is too deep (a cycle in skiff_schema_registry?)")
    if isinstance(spec, (str, bytes)):
        reference = _text(spec)
        if not reference.startswith("$") or reference[1:] not in registry:
            raise SkiffError(f"Skiff schema {reference!r} is not found in skiff_schema_registry")
        return parse_skiff_schema(registry[reference[1:]], registry, depth + 1)
    if not isinstance(spec, Mapping) or "wire_type" not in spec:
        raise SkiffError(f'Skiff schema must be a map with "wire_type", got {spec!r}')
    spec = {_text(key): value for key, value in spec.items()}
    wire_type = _text(spec["wire_type"])
    if wire_type not in _SIMPLE and wire_type not in _COMPOUND:
        raise SkiffError(f"Unknown skiff wire type {wire_type!r}")
    if wire_type in _COMPOUND and spec.get("children") is None:
        raise SkiffError(f'Complex type "{wire_type}" lacks children')
    children = tuple(parse_skiff_schema(c, registry, depth + 1) for c in spec.get("children") or [])
    if wire_type in _SIMPLE and children:
        raise SkiffError(f"Skiff {wire_type} cannot have children")
    name = spec.get("name")
    return SkiffNode(wire_type, None if name is None else _text(name), children)


# ------------------------------------------------------------------------------- decoding


class _Reader:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def take(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise SkiffError("Premature end of skiff stream")
        return data

    def unpack(self, packer: struct.Struct) -> Any:
        return packer.unpack(self.take(packer.size))[0]


def _decode(node: SkiffNode, reader: _Reader) -> Any:
    wire = node.wire_type
    if wire in _SIMPLE_STRUCTS:
        value = reader.unpack(_SIMPLE_STRUCTS[wire])
        return yson.YsonUint64(value) if wire == "uint64" else value
    if wire == "boolean":
        byte = reader.take(1)
        if byte not in (b"\x00", b"\x01"):
            raise SkiffError(f"Invalid skiff boolean {byte!r}")
        return byte == b"\x01"
    if wire == "string32":
        return reader.take(reader.unpack(_LENGTH))
    if wire == "yson32":
        data = reader.take(reader.unpack(_LENGTH))
        try:
            return yson.loads(data, encoding=None, always_create_attributes=False)
        except yson.YsonError as error:
            raise SkiffError(f"Invalid YSON in a skiff yson32 field: {error}") from None
    if wire in _WIDE_INTS:
        size, signed = _WIDE_INTS[wire]
        return int.from_bytes(reader.take(size), "little", signed=signed)
    if wire == "nothing":
        return None
    if wire == "tuple":
        values = [_decode(child, reader) for child in node.children]
        if node.children and all(child.name is not None for child in node.children):
            return {child.name: value for child, value in zip(node.children, values, strict=True)}
        return values
    if wire in _VARIANTS:
        tag = reader.unpack(_VARIANTS[wire])
        if tag >= len(node.children):
            raise SkiffError(
                f"Skiff {wire} tag {tag} is out of range ({len(node.children)} children)"
            )
        value = _decode(node.children[tag], reader)
        if node.is_optional:
            return value
        label = node.children[tag].name
        return [tag if label is None else label, value]
    packer, end = _REPEATED[wire]
    items = []
    while (tag := reader.unpack(packer)) != end:
        if tag >= len(node.children):
            raise SkiffError(
                f"Skiff {wire} tag {tag} is out of range ({len(node.children)} children)"
            )
        items.append(_decode(node.children[tag], reader))
    return items


# ------------------------------------------------------------------------------- encoding


def _string_bytes(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes) or type(value).__name__ == "YsonStringProxy":
        return bytes(yson.get_bytes(value)) if not isinstance(value, bytes) else value
    return None


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, yson.YsonEntity)


def _encode(node: SkiffNode, value: Any, out: list[bytes], where: str) -> None:
    wire = node.wire_type
    try:
        if wire in _SIMPLE_STRUCTS:
            if _is_null(value) or isinstance(value, (bytes, str, list, dict)):
                raise TypeError
            if wire == "double":
                out.append(_SIMPLE_STRUCTS[wire].pack(float(value)))
            else:
                if isinstance(value, float):
                    raise TypeError
                out.append(_SIMPLE_STRUCTS[wire].pack(int(value)))
            return
        if wire == "boolean":
            if not isinstance(value, (bool, yson.YsonBoolean)):
                raise TypeError
            out.append(b"\x01" if value else b"\x00")
            return
        if wire == "string32":
            data = _string_bytes(value)
            if data is None:
                raise TypeError
            out.append(_LENGTH.pack(len(data)) + data)
            return
        if wire == "yson32":
            data = yson.dumps(value, yson_format="binary", encoding="utf-8")
            out.append(_LENGTH.pack(len(data)) + data)
            return
        if wire in _WIDE_INTS:
            size, signed = _WIDE_INTS[wire]
            out.append(int(value).to_bytes(size, "little", signed=signed))
            return
    except (TypeError, ValueError, OverflowError, struct.error):
        raise SkiffError(
            f"Cannot write {type(value).__name__} value of {where} as skiff {wire}"
        ) from None
    if wire == "nothing":
        if not _is_null(value):
            raise SkiffError(f"Cannot write a non-null value of {where} as skiff nothing")
        return
    if wire == "tuple":
        _encode_tuple(node, value, out, where)
        return
    if wire in _VARIANTS:
        packer = _VARIANTS[wire]
        if node.is_optional:
            if _is_null(value):
                out.append(packer.pack(0))
            else:
                out.append(packer.pack(1))
                _encode(node.children[1], value, out, where)
            return
        tag = _variant_tag(node, value, where)
        out.append(packer.pack(tag))
        _encode(node.children[tag], value[1], out, where)
        return
    packer, end = _REPEATED[wire]
    if not isinstance(value, list) or len(node.children) != 1:
        raise SkiffError(f"Cannot write {type(value).__name__} value of {where} as skiff {wire}")
    for item in value:
        out.append(packer.pack(0))
        _encode(node.children[0], item, out, where)
    out.append(packer.pack(end))


def _encode_tuple(node: SkiffNode, value: Any, out: list[bytes], where: str) -> None:
    if isinstance(value, Mapping) and all(child.name is not None for child in node.children):
        by_name = {_text(key): item for key, item in value.items()}
        for child in node.children:
            _encode(child, by_name.get(str(child.name)), out, f"{where}.{child.name}")
        return
    if isinstance(value, list) and len(value) <= len(node.children):
        padded = list(value) + [None] * (len(node.children) - len(value))
        for index, (child, item) in enumerate(zip(node.children, padded, strict=True)):
            _encode(child, item, out, f"{where}[{index}]")
        return
    raise SkiffError(f"Cannot write {type(value).__name__} value of {where} as a skiff tuple")


def _variant_tag(node: SkiffNode, value: Any, where: str) -> int:
    if not isinstance(value, list) or len(value) != 2:
        raise SkiffError(f"A variant value of {where} must be a list of two items")
    label = value[0]
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(node.children):
        return int(label)
    names = [child.name for child in node.children]
    text = _text(label) if isinstance(label, (str, bytes)) else None
    if text is not None and text in names:
        return names.index(text)
    raise SkiffError(f"Unknown variant alternative {label!r} of {where}")


# ------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _TableSchema:
    """A table skiff schema split into its parts."""

    dense: tuple[SkiffNode, ...]
    sparse: tuple[SkiffNode, ...]
    other_columns: bool

    @classmethod
    def parse(cls, root: SkiffNode, index: int) -> _TableSchema:
        """Split a table skiff schema, checked as a cluster checks it (names starting with ``$``
        other than the special ones are ordinary columns)."""
        if root.wire_type != "tuple":
            raise SkiffError(
                f'Invalid wire type for table row #{index}: expected "tuple", found "{root.wire_type}"'
            )
        children = list(root.children)
        other_columns = bool(children) and children[-1].name == "$other_columns"
        if other_columns and children.pop().wire_type != "yson32":
            raise SkiffError('Invalid wire type for column "$other_columns": expected "yson32"')
        sparse: tuple[SkiffNode, ...] = ()
        if children and children[-1].name == "$sparse_columns":
            sparse_node = children.pop()
            if sparse_node.wire_type != "repeated_variant16":
                raise SkiffError(
                    'Invalid wire type for column "$sparse_columns": expected "repeated_variant16"'
                )
            sparse = sparse_node.children
        names: set[str] = set()
        for position, child in enumerate(children):
            if not child.name:
                raise SkiffError(f"Element #{position} of row Skiff schema must have a name")
            if child.name in ("$other_columns", "$sparse_columns"):
                raise SkiffError(f'Invalid placement of special column "{child.name}"')
            _check_special_field(child)
            _add_name(names, child.name)
        for child in sparse:
            if not child.name:
                raise SkiffError('Children of "$sparse_columns" must have nonempty name')
            if child.name in _SPECIAL_FIELDS:
                raise SkiffError(
                    f'Skiff special column "{child.name}" cannot be a child of "$sparse_columns"'
                )
            _add_name(names, child.name)
        return cls(tuple(children), sparse, other_columns)

    @property
    def known(self) -> frozenset[str]:
        return frozenset(node.name for node in (*self.dense, *self.sparse) if node.name)


def _check_special_field(node: SkiffNode) -> None:
    if node.name == "$key_switch" and node.wire_type != "boolean":
        raise SkiffError('Column "$key_switch" has unexpected Skiff type: expected "boolean"')
    if node.name in ("$row_index", "$range_index"):
        shape = tuple(child.wire_type for child in node.children)
        if node.wire_type != "variant8" or shape not in _INDEX_SHAPES:
            raise SkiffError(
                f'Column "{node.name}" has unsupported Skiff type: expected '
                "variant8<nothing;int64> or variant8<nothing;int64;nothing>"
            )


def _add_name(names: set[str], name: str) -> None:
    if name in names:
        raise SkiffError(f'Name "{name}" is found multiple times')
    names.add(name)


@dataclass
class _Position:
    """What the writer last told a reader: table, row and range index."""

    table_index: int = 0
    row_index: int | None = None
    range_index: int | None = None
    key_switch: bool = False
    row_index_sent: int | None = None
    range_index_sent: int | None = None


class SkiffFormat:
    """Rows in skiff, one table skiff schema per table (``table_skiff_schemas``)."""

    name = "skiff"
    _ALLOWED = frozenset({"table_skiff_schemas", "skiff_schema_registry"})

    def __init__(self, attributes: Mapping[str, Any] | None = None) -> None:
        attributes = {_text(k): v for k, v in (attributes or {}).items()}
        unknown = sorted(set(attributes) - self._ALLOWED)
        if unknown:
            raise SkiffError(
                f"Format 'skiff' attribute(s) {', '.join(map(repr, unknown))} are not supported "
                f"by the local YT (supported: {', '.join(sorted(self._ALLOWED))})",
                format="skiff",
            )
        schemas = attributes.get("table_skiff_schemas")
        if not isinstance(schemas, list) or not schemas:
            raise SkiffError('Skiff format requires a non-empty "table_skiff_schemas" list')
        registry = attributes.get("skiff_schema_registry") or {}
        if not isinstance(registry, Mapping):
            raise SkiffError('"skiff_schema_registry" must be a map')
        registry = {_text(k): v for k, v in registry.items()}
        self.tables = [
            _TableSchema.parse(parse_skiff_schema(spec, registry), index)
            for index, spec in enumerate(schemas)
        ]

    def for_stream(self, index: int) -> SkiffFormat:
        """The format of output stream ``index``: the skiff schema of that table only."""
        if index >= len(self.tables):
            raise SkiffError(
                f"Skiff format has {len(self.tables)} table schema(s); output stream #{index} has none"
            )
        view = object.__new__(SkiffFormat)
        view.tables = [self.tables[index]]
        return view

    # ---- writing (to readers and jobs) ----

    def dump_rows(self, rows: Iterable[Any], stream: BinaryIO) -> None:
        position = _Position()
        out: list[bytes] = []
        for row in rows:
            if is_control_row(row):
                _apply_control(position, row.attributes)
                continue
            self._encode_row(row, position, out)
            if len(out) >= 4096:
                stream.write(b"".join(out))
                out.clear()
        if out:
            stream.write(b"".join(out))

    def _encode_row(self, row: Mapping[str, Any], position: _Position, out: list[bytes]) -> None:
        if position.table_index >= len(self.tables):
            raise SkiffError(
                f"Skiff format has no table skiff schema for table #{position.table_index}"
            )
        table = self.tables[position.table_index]
        out.append(_TABLE_TAG.pack(position.table_index))
        for node in table.dense:
            name = node.name
            if name == "$key_switch":
                out.append(b"\x01" if position.key_switch else b"\x00")
            elif name == "$row_index":
                _encode_index(node, position, "row", out)
            elif name == "$range_index":
                _encode_index(node, position, "range", out)
            else:
                _encode(node, row.get(name), out, f'column "{name}"')  # type: ignore[arg-type]
        position.key_switch = False
        if position.row_index is not None:
            position.row_index += 1
        known = table.known
        if table.sparse:
            packer = struct.Struct("<H")
            for tag, node in enumerate(table.sparse):
                value = row.get(node.name)  # type: ignore[arg-type]
                if not _is_null(value):
                    out.append(packer.pack(tag))
                    _encode(node, value, out, f'column "{node.name}"')
            out.append(packer.pack(0xFFFF))
        rest = {key: value for key, value in row.items() if key not in known}
        if table.other_columns:
            _encode(SkiffNode("yson32"), rest, out, "$other_columns")
        elif rest:
            raise SkiffError(
                f'Column "{next(iter(rest))}" is not described by the skiff schema and it has no '
                "$other_columns field"
            )

    # ---- reading (from writers and jobs) ----

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        return (entry for entry in self.load_entries(stream) if not is_control_row(entry))

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """Rows of the stream; every row's table index must name one of the schemas."""
        reader = _Reader(stream)
        while True:
            head = stream.read(_TABLE_TAG.size)
            if not head:
                return
            if len(head) != _TABLE_TAG.size:
                raise SkiffError("Premature end of skiff stream")
            (tag,) = _TABLE_TAG.unpack(head)
            if tag >= len(self.tables):
                raise SkiffError(
                    f"Skiff table index {tag} is out of range ({len(self.tables)} table schema(s))"
                )
            yield self._decode_row(self.tables[tag], reader)

    @staticmethod
    def _decode_row(table: _TableSchema, reader: _Reader) -> Row:
        row: Row = {}
        for node in table.dense:
            value = _decode(node, reader)
            if node.name not in _CONTROL_FIELDS:
                row[node.name] = value  # type: ignore[index]
        if table.sparse:
            packer = struct.Struct("<H")
            while (tag := reader.unpack(packer)) != 0xFFFF:
                if tag >= len(table.sparse):
                    raise SkiffError(f"Skiff sparse column tag {tag} is out of range")
                node = table.sparse[tag]
                row[node.name] = _decode(node, reader)  # type: ignore[index]
        if table.other_columns:
            other = _decode(SkiffNode("yson32"), reader)
            if not isinstance(other, Mapping):
                raise SkiffError("$other_columns must hold a YSON map")
            for key, value in other.items():
                row.setdefault(_text(key), value)
        return row


def _apply_control(position: _Position, attributes: Mapping[str, Any]) -> None:
    if "table_index" in attributes:
        position.table_index = int(attributes["table_index"])
        position.row_index_sent = position.range_index_sent = None
    if "range_index" in attributes:
        position.range_index = int(attributes["range_index"])
    if "row_index" in attributes:
        position.row_index = int(attributes["row_index"])
        position.row_index_sent = None
    if attributes.get("key_switch"):
        position.key_switch = True


def _encode_index(node: SkiffNode, position: _Position, kind: str, out: list[bytes]) -> None:
    """``$row_index``/``$range_index``: tag 1 and the value when it is not the expected one."""
    value = position.row_index if kind == "row" else position.range_index
    sent = position.row_index_sent if kind == "row" else position.range_index_sent
    expected = (sent + 1) if (kind == "row" and sent is not None) else sent
    if value is None:
        out.append(b"\x02" if len(node.children) > 2 else b"\x00")
        return
    if value == expected:
        out.append(b"\x00")
    else:
        out.append(b"\x01" + struct.pack("<q", value))
    if kind == "row":
        position.row_index_sent = value
    else:
        position.range_index_sent = value
