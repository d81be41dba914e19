"""Wire formats of the local YT: table rows (``yson``, ``json``, ``dsv``, ``schemaful_dsv``,
``yamr``, ``skiff`` from :mod:`.skiff`) and structured values.

A *row* on the server side is a ``dict`` whose keys are ``str`` column names and whose string
values are ``bytes`` (YT strings are byte strings; the state layer checks ``utf8`` columns).
Other values are plain Python / ``yt.yson`` values: ``int``, ``float``, ``bool``, ``None``,
:class:`yt.yson.YsonUint64`, lists and maps (nested map keys stay ``bytes`` as loaded).

A *control row* (``<row_index=10>#`` in YSON, ``{"$value": null, "$attributes": {...}}`` in JSON)
is a :class:`yt.yson.YsonEntity` carrying ``attributes``; dumpers write it, loaders skip it.

Usage::

    fmt = parse_format(yson.loads(b'<format=text>yson'))
    fmt.dump_rows([{"a": 1, "b": b"x"}], stream)
    rows = list(fmt.load_rows(stream))

Structured values (command parameters, ``get`` results, ``set`` input) go through
:func:`dump_structured` / :func:`load_structured`.
"""

from __future__ import annotations

import codecs
import json
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import yt.yson as yson

from .exceptions import GenericError
from .interfaces import Row
from .skiff import SkiffFormat
from .values import as_bool, is_control_row

__all__ = [
    "DsvFormat",
    "FormatError",
    "JsonFormat",
    "SchemafulDsvFormat",
    "SkiffFormat",
    "YamrFormat",
    "YsonFormat",
    "YsonStreamRows",
    "dump_structured",
    "format_name",
    "load_structured",
    "make_control_row",
    "parse_format",
    "parse_job_format",
]


class FormatError(GenericError):
    """A format is unknown, misconfigured, or the data does not parse in it."""


def format_name(spec: Any) -> str:
    """The bare name of a format spec (``"yson"`` for ``<format=text>yson``)."""
    if isinstance(spec, bytes):
        return spec.decode("ascii", errors="replace")
    if isinstance(spec, Mapping) and not hasattr(spec, "attributes"):
        raise FormatError(f"Format must be a string with attributes, got a map: {dict(spec)!r}")
    return str(spec)


def _format_attributes(spec: Any) -> dict[str, Any]:
    attributes = getattr(spec, "attributes", None) or {}
    return {_as_str(k): v for k, v in attributes.items()}


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _check_attributes(name: str, attributes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(attributes) - allowed)
    if unknown:
        raise FormatError(
            f"Format {name!r} attribute(s) {', '.join(map(repr, unknown))} are not supported by "
            f"the local YT (supported: {', '.join(sorted(allowed))})",
            format=name,
        )


def make_control_row(**attributes: Any) -> yson.YsonEntity:
    """A control row such as ``<row_index=10>#``."""
    entity = yson.YsonEntity()
    entity.attributes = dict(attributes)
    return entity


def _without_control_rows(entries: Iterable[Any]) -> Iterator[Row]:
    return (entry for entry in entries if not is_control_row(entry))


def _write_in_batches(lines: Iterable[bytes], stream: BinaryIO, batch_bytes: int = 1 << 16) -> None:
    """Write encoded rows to ``stream`` about ``batch_bytes`` at a time (few, large writes)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= batch_bytes:
            stream.write(b"".join(batch))
            batch.clear()
            size = 0
    if batch:
        stream.write(b"".join(batch))


def column_name(key: Any) -> str:
    """A column name from the wire: ``bytes`` must be UTF-8 (a YT error otherwise)."""
    if not isinstance(key, bytes):
        return str(key)
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"Column name is not valid UTF-8: {key[:100]!r}") from None


def _row_from_loaded(loaded: Mapping[Any, Any]) -> Row:
    return {column_name(key): value for key, value in loaded.items()}


# --------------------------------------------------------------------------------------- YSON


class YsonFormat:
    """Rows as a YSON list fragment (``binary``, ``text`` or ``pretty``)."""

    name = "yson"
    _ALLOWED = frozenset(
        {
            "format",
            "ignore_inner_attributes",
            "always_create_attributes",
            "lazy",
            "sort_keys",
            "require_yson_bindings",
        }
    )

    def __init__(self, attributes: Mapping[str, Any] | None = None) -> None:
        attributes = dict(attributes or {})
        _check_attributes(self.name, attributes, self._ALLOWED)
        self.yson_format = _as_str(attributes.get("format", "binary"))
        if self.yson_format not in ("binary", "text", "pretty"):
            raise FormatError(f"Unknown YSON format flavour {self.yson_format!r}")

    def for_stream(self, index: int) -> YsonFormat:
        """The format of output stream ``index`` (the same for every stream)."""
        return self

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        yson.dump(
            rows,
            stream,
            yson_type="list_fragment",
            yson_format=self.yson_format,
            encoding="utf-8",
        )

    def load_rows(self, stream: BinaryIO) -> YsonStreamRows:
        return YsonStreamRows(stream)

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """Rows and control rows (``<table_index=2>#``...), in stream order."""
        return map(entry_as_row, parsed_yson_entries(stream))


class YsonStreamRows(Iterator[Row]):
    """The rows of a YSON stream, as :meth:`YsonFormat.load_rows` gives them (control rows
    skipped); ``stream`` is there for a table write that keeps the bytes as they came
    (:mod:`.verbatim_writes`) instead of iterating."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._rows: Iterator[Row] | None = None

    def __next__(self) -> Row:
        if self._rows is None:
            self._rows = _without_control_rows(YsonFormat().load_entries(self.stream))
        return next(self._rows)


def parsed_yson_entries(stream: BinaryIO) -> Iterator[Any]:
    """The items of a YSON list fragment as parsed: maps with ``bytes`` keys, control rows as
    ``YsonEntity``; plain Python values (bytes, int, float, bool, None) unless a value carries
    attributes, so that the row validator's fast paths work on exact types. A parse error is a
    :class:`FormatError`."""
    try:
        yield from yson.load(
            stream, yson_type="list_fragment", encoding=None, always_create_attributes=False
        )
    except yson.YsonError as error:
        raise FormatError(f"Error parsing YSON rows: {error}") from None


def entry_as_row(loaded: Any) -> Row | yson.YsonEntity:
    """A parsed item as a row with ``str`` keys (a row's own attributes dropped) or a control
    row; anything but a map is a :class:`FormatError`."""
    if is_control_row(loaded):
        return make_control_row(**{_as_str(key): value for key, value in loaded.attributes.items()})
    if not isinstance(loaded, Mapping):
        raise FormatError(f"Table row must be a map, got {type(loaded).__name__}")
    return _row_from_loaded(loaded)


# --------------------------------------------------------------------------------------- JSON


def _json_string_to_bytes(text: str, encode_utf8: bool) -> bytes:
    if encode_utf8:
        try:
            return text.encode("latin1")
        except UnicodeEncodeError:
            raise FormatError(
                "JSON string contains characters above U+00FF while encode_utf8 is enabled"
            ) from None
    return text.encode("utf-8")


def _is_string_proxy(value: Any) -> bool:
    """A non-UTF-8 string as ``yson.load(..., encoding="utf-8")`` returns it."""
    return isinstance(value, yson.YsonStringProxy)


def _string_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_string_proxy(value):
        return bytes(yson.get_bytes(value))
    return bytes(value)


def _bytes_to_json_string(value: Any, encode_utf8: bool) -> str:
    data = _string_bytes(value)
    if encode_utf8:
        return data.decode("latin1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(
            "Cannot write a non-UTF-8 string in JSON with encode_utf8=%false"
        ) from None


def json_to_value(node: Any, encode_utf8: bool) -> Any:
    """A decoded JSON document as a YSON value (``$attributes``/``$value``/``$type`` honoured)."""
    if isinstance(node, str):
        return yson.YsonString(_json_string_to_bytes(node, encode_utf8))
    if isinstance(node, list):
        return [json_to_value(item, encode_utf8) for item in node]
    if isinstance(node, dict):
        if "$value" in node:
            value = _typed_json_value(node, encode_utf8)
            attributes = node.get("$attributes")
            if attributes:
                value = yson.to_yson_type(
                    value,
                    attributes={
                        _as_str(_json_string_to_bytes(k, encode_utf8)): json_to_value(
                            v, encode_utf8
                        )
                        for k, v in attributes.items()
                    },
                )
            return value
        return {
            _json_string_to_bytes(key, encode_utf8): json_to_value(value, encode_utf8)
            for key, value in node.items()
        }
    if node is None:
        return yson.YsonEntity()
    return node


def _typed_json_value(node: dict[str, Any], encode_utf8: bool) -> Any:
    raw = node["$value"]
    type_name = node.get("$type")
    if type_name is None:
        return json_to_value(raw, encode_utf8)
    converters = {
        "int64": lambda v: yson.YsonInt64(int(v)),
        "uint64": lambda v: yson.YsonUint64(int(v)),
        "double": lambda v: yson.YsonDouble(float(v)),
        "boolean": lambda v: yson.YsonBoolean(as_bool(v)),
        "string": lambda v: yson.YsonString(_json_string_to_bytes(v, encode_utf8)),
    }
    if type_name not in converters:
        raise FormatError(f"Unknown JSON $type {type_name!r}")
    return converters[type_name](raw)


def value_to_json(value: Any, encode_utf8: bool) -> Any:
    """A YSON value as a JSON-serialisable document (attributes as ``$attributes``/``$value``)."""
    attributes = getattr(value, "attributes", None)
    plain = _plain_value_to_json(value, encode_utf8)
    if attributes:
        return {
            "$attributes": {
                _bytes_to_json_string(k, encode_utf8): value_to_json(v, encode_utf8)
                for k, v in attributes.items()
            },
            "$value": plain,
        }
    return plain


def _plain_value_to_json(value: Any, encode_utf8: bool) -> Any:
    if isinstance(value, (bytes, str)) or _is_string_proxy(value):
        return _bytes_to_json_string(value, encode_utf8)
    if isinstance(value, (bool, yson.YsonBoolean)):
        return bool(value)
    if isinstance(value, yson.YsonEntity) or value is None:
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {
            _bytes_to_json_string(k, encode_utf8): value_to_json(v, encode_utf8)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [value_to_json(item, encode_utf8) for item in value]
    raise FormatError(f"Cannot represent {type(value).__name__} in JSON")


class JsonFormat:
    """Rows as JSON lines; ``encode_utf8`` (default true) maps each byte to a code point."""

    name = "json"
    _ALLOWED = frozenset({"encode_utf8", "format"})

    def __init__(self, attributes: Mapping[str, Any] | None = None) -> None:
        attributes = dict(attributes or {})
        _check_attributes(self.name, attributes, self._ALLOWED)
        self.encode_utf8 = as_bool(attributes.get("encode_utf8", True))
        self.pretty = _as_str(attributes.get("format", "text")) == "pretty"

    def for_stream(self, index: int) -> JsonFormat:
        """The format of output stream ``index`` (the same for every stream)."""
        return self

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        _write_in_batches((self.dumps_row(row) for row in rows), stream)

    def dumps_row(self, row: Any) -> bytes:
        document = value_to_json(row, self.encode_utf8)
        if self.pretty:
            return json.dumps(document, ensure_ascii=True, indent=4).encode("ascii") + b"\n"
        # Compact, byte for byte as a cluster writes it ({"x":1}).
        return (
            json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
        )

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        return _without_control_rows(self.load_entries(stream))

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """Rows and control rows (``{"$value": null, "$attributes": {...}}``), in stream order."""
        for document in _iter_json_documents(stream):
            if not isinstance(document, dict):
                raise FormatError(f"JSON row must be an object, got {type(document).__name__}")
            if "$value" in document:
                attributes = document.get("$attributes")
                if document["$value"] is not None or not isinstance(attributes, dict):
                    raise FormatError(
                        "Incorrect control row in JSON: expected "
                        '{"$value": null, "$attributes": {...}}'
                    )
                yield make_control_row(**attributes)
                continue
            yield {
                column_name(_json_string_to_bytes(key, self.encode_utf8)): json_to_value(
                    value, self.encode_utf8
                )
                for key, value in document.items()
            }


_JSON_DECODER = json.JSONDecoder()
_JSON_READ_SIZE = 1 << 16


def _decode_json_input(decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> str:
    try:
        return decoder.decode(data, final=final)
    except UnicodeDecodeError as error:
        raise FormatError(f"JSON input is not valid UTF-8: {error}") from None


def _iter_json_documents(stream: BinaryIO) -> Iterator[Any]:
    """JSON documents one after another, separated by whitespace or nothing (as YT accepts)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    position = 0
    eof = False
    while True:
        while position < len(buffer) and buffer[position] in " \t\r\n":
            position += 1
        if position >= len(buffer):
            if eof:
                return
            data = stream.read(_JSON_READ_SIZE)
            eof = not data
            buffer, position = _decode_json_input(decoder, data, eof), 0
            continue
        try:
            document, end = _JSON_DECODER.raw_decode(buffer, position)
        except ValueError as error:
            if eof:
                raise FormatError(f"Error parsing JSON row: {error}") from None
            more = stream.read(_JSON_READ_SIZE)
            if not more:
                eof = True
            buffer = buffer[position:] + _decode_json_input(decoder, more, eof)
            position = 0
            continue
        yield document
        position = end


# ---------------------------------------------------------------------------------------- DSV

_DSV_UNESCAPE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"0": b"\0"}
_DSV_ESCAPE_RE = re.compile(rb"\\(.)", re.DOTALL)
_DSV_KEY_RE = re.compile(rb"(?:\\.|[^\\=])*", re.DOTALL)


def _dsv_unescape(field: bytes) -> bytes:
    return _DSV_ESCAPE_RE.sub(lambda m: _DSV_UNESCAPE.get(m.group(1), m.group(1)), field)


def _dsv_escape(data: bytes, is_key: bool) -> bytes:
    data = data.replace(b"\\", b"\\\\")
    data = data.replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\t", b"\\t")
    data = data.replace(b"\0", b"\\0")
    if is_key:
        data = data.replace(b"=", b"\\=")
    return data


class DsvFormat:
    """Tab-separated ``key=value`` lines, escaped as YT does (``\\=`` too in keys)."""

    name = "dsv"
    _ALLOWED = frozenset({"enable_escaping", "enable_table_index", "table_index_column"})

    def __init__(self, attributes: Mapping[str, Any] | None = None, in_job: bool = False) -> None:
        attributes = dict(attributes or {})
        _check_attributes(self.name, attributes, self._ALLOWED)
        self.enable_escaping = as_bool(attributes.get("enable_escaping", True))
        self.enable_table_index = as_bool(attributes.get("enable_table_index", False))
        self.table_index_column = _as_str(attributes.get("table_index_column", "@table_index"))
        if self.enable_table_index and not in_job:
            raise FormatError("DSV enable_table_index is only meaningful inside operations")

    def for_stream(self, index: int) -> DsvFormat:
        """The format of output stream ``index`` (the same for every stream)."""
        return self

    def _scalar_bytes(self, column: str, value: Any) -> bytes | None:
        if isinstance(value, (bytes, str)) or _is_string_proxy(value):
            return _string_bytes(value)
        if value is None or isinstance(value, yson.YsonEntity):
            return None
        if isinstance(value, (bool, yson.YsonBoolean)):
            return b"true" if value else b"false"
        if isinstance(value, (int, float)):
            return repr(value).encode("ascii") if isinstance(value, float) else b"%d" % value
        raise FormatError(f"DSV cannot represent the composite value of column {column!r}")

    def dumps_row(self, row: Mapping[str, Any]) -> bytes:
        fields = []
        for key, value in row.items():
            data = self._scalar_bytes(key, value)
            if data is None:
                continue
            key_bytes = key.encode("utf-8") if isinstance(key, str) else bytes(key)
            if self.enable_escaping:
                key_bytes = _dsv_escape(key_bytes, is_key=True)
                data = _dsv_escape(data, is_key=False)
            fields.append(key_bytes + b"=" + data)
        return b"\t".join(fields) + b"\n"

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        _write_in_batches(self._dump_lines(rows), stream)

    def _dump_lines(self, rows: Iterable[Any]) -> Iterator[bytes]:
        table_index = None
        for row in rows:
            if is_control_row(row):
                table_index = row.attributes.get("table_index", table_index)
                continue
            if self.enable_table_index and table_index is not None:
                row = {**row, self.table_index_column: int(table_index)}
            yield self.dumps_row(row)

    def loads_row(self, line: bytes) -> Row:
        row: Row = {}
        for field in line.rstrip(b"\n").split(b"\t"):
            if not field:
                continue
            if self.enable_escaping:
                key = _DSV_KEY_RE.match(field).group(0)  # type: ignore[union-attr]
                if len(key) == len(field):
                    raise FormatError(f"DSV field without '=': {field[:100]!r}")
                value = field[len(key) + 1 :]
                row[column_name(_dsv_unescape(key))] = yson.YsonString(_dsv_unescape(value))
            else:
                if b"=" not in field:
                    raise FormatError(f"DSV field without '=': {field[:100]!r}")
                key, value = field.split(b"=", 1)
                row[column_name(key)] = yson.YsonString(value)
        return row

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        return _without_control_rows(self.load_entries(stream))

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """Rows; with ``enable_table_index``, a table switch before a row whose
        ``table_index_column`` names another table (the column itself is removed)."""
        table_index = None
        for line in stream:
            if not line.strip(b"\n"):
                continue
            row = self.loads_row(line)
            if self.enable_table_index and self.table_index_column in row:
                value = row.pop(self.table_index_column)
                try:
                    index = int(bytes(value))
                except ValueError:
                    raise FormatError(
                        f"DSV {self.table_index_column} is not an integer: {bytes(value)[:50]!r}"
                    ) from None
                if index != table_index:
                    table_index = index
                    yield make_control_row(table_index=index)
            yield row


# ------------------------------------------------------------------------------ schemaful DSV

_MISSING_VALUE_MODES = ("fail", "skip_row", "print_sentinel")


class SchemafulDsvFormat:
    """Tab-separated values of the ``columns`` attribute, in that order, without keys."""

    name = "schemaful_dsv"
    _ALLOWED = frozenset(
        {
            "columns",
            "enable_escaping",
            "missing_value_mode",
            "missing_value_sentinel",
            "enable_table_index",
            "table_index_column",
        }
    )

    def __init__(self, attributes: Mapping[str, Any] | None = None, in_job: bool = False) -> None:
        attributes = dict(attributes or {})
        _check_attributes(self.name, attributes, self._ALLOWED)
        columns = attributes.get("columns")
        if not isinstance(columns, list) or not columns:
            raise FormatError('Format "schemaful_dsv" requires a non-empty "columns" list')
        self.columns = [_as_str(column) for column in columns]
        if len(set(self.columns)) != len(self.columns):
            raise FormatError('Format "schemaful_dsv": duplicate names in "columns"')
        self.enable_escaping = as_bool(attributes.get("enable_escaping", True))
        self.missing_value_mode = _as_str(attributes.get("missing_value_mode", "fail"))
        if self.missing_value_mode not in _MISSING_VALUE_MODES:
            raise FormatError(
                f"Unknown schemaful_dsv missing_value_mode {self.missing_value_mode!r} "
                f"(expected one of {', '.join(_MISSING_VALUE_MODES)})"
            )
        sentinel = attributes.get("missing_value_sentinel", b"")
        self.missing_value_sentinel = _string_bytes(sentinel)
        self._scalars = DsvFormat()
        # With enable_table_index, the first field of each line is the table index.
        self.enable_table_index = as_bool(attributes.get("enable_table_index", False))
        if self.enable_table_index and not in_job:
            raise FormatError(
                "schemaful_dsv enable_table_index is only meaningful inside operations"
            )

    def for_stream(self, index: int) -> SchemafulDsvFormat:
        """The format of output stream ``index`` (the same for every stream)."""
        return self

    def dumps_row(self, row: Mapping[str, Any]) -> bytes | None:
        """One line, or ``None`` for a row skipped by ``missing_value_mode=skip_row``."""
        fields = []
        for column in self.columns:
            data = self._scalars._scalar_bytes(column, row.get(column))
            if data is None:
                if self.missing_value_mode == "skip_row":
                    return None
                if self.missing_value_mode == "fail":
                    raise FormatError(
                        f'Column "{column}" is in the schemaful_dsv columns but missing in a row',
                        column=column,
                    )
                data = self.missing_value_sentinel
            elif self.enable_escaping:
                data = _dsv_escape(data, is_key=False)
            fields.append(data)
        return b"\t".join(fields) + b"\n"

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        _write_in_batches(self._dump_lines(rows), stream)

    def _dump_lines(self, rows: Iterable[Any]) -> Iterator[bytes]:
        table_index = 0
        for row in rows:
            if is_control_row(row):
                table_index = int(row.attributes.get("table_index", table_index))
                continue
            line = self.dumps_row(row)
            if line is None:
                continue
            yield b"%d\t" % table_index + line if self.enable_table_index else line

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        return _without_control_rows(self.load_entries(stream))

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """One row per line; every line has exactly one field per column."""
        table_index = None
        for line in stream:
            fields = line.rstrip(b"\n").split(b"\t")
            if self.enable_table_index:
                index = _table_index_field(fields.pop(0) if fields else b"")
                if index != table_index:
                    table_index = index
                    yield make_control_row(table_index=index)
            if len(fields) != len(self.columns):
                raise FormatError(
                    f"Row in schemaful_dsv has {len(fields)} field(s), expected "
                    f"{len(self.columns)}: {line[:100]!r}"
                )
            yield {
                column: yson.YsonString(_dsv_unescape(data) if self.enable_escaping else data)
                for column, data in zip(self.columns, fields, strict=True)
            }


# --------------------------------------------------------------------------------------- YAMR

_LENVAL_LENGTH = struct.Struct("<i")
_LENVAL_TABLE_INDEX = -1
_YAMR_ROW_INDEX = -4


class YamrFormat:
    """Rows of ``key``, ``subkey`` (with ``has_subkey``) and ``value`` string columns, as
    separated text lines or ``lenval`` (each field an int32 LE length, then its bytes). With
    ``enable_table_index`` a table index precedes the rows of each table: a line of one field, or
    ``-1`` and the index in ``lenval``."""

    name = "yamr"
    _ALLOWED = frozenset({"has_subkey", "lenval", "fs", "rs", "enable_table_index"})

    def __init__(self, attributes: Mapping[str, Any] | None = None, in_job: bool = False) -> None:
        attributes = dict(attributes or {})
        _check_attributes(self.name, attributes, self._ALLOWED)
        self.has_subkey = as_bool(attributes.get("has_subkey", False))
        self.lenval = as_bool(attributes.get("lenval", False))
        self.fs = _string_bytes(attributes.get("fs", b"\t"))
        self.rs = _string_bytes(attributes.get("rs", b"\n"))
        if len(self.fs) != 1 or len(self.rs) != 1:
            raise FormatError("yamr fs and rs must be single characters")
        self.enable_table_index = as_bool(attributes.get("enable_table_index", False))
        if self.enable_table_index and not in_job:
            raise FormatError("yamr enable_table_index is only meaningful inside operations")
        self.columns = ("key", "subkey", "value") if self.has_subkey else ("key", "value")

    def for_stream(self, index: int) -> YamrFormat:
        """The format of output stream ``index`` (the same for every stream)."""
        return self

    def _fields(self, row: Mapping[str, Any]) -> list[bytes]:
        fields = []
        for column in self.columns:
            value = row.get(column)
            if value is None and column == "subkey":
                value = b""
            if not (isinstance(value, (bytes, str)) or _is_string_proxy(value)):
                raise FormatError(
                    f'yamr requires a string "{column}" column, got {type(value).__name__}',
                    column=column,
                )
            fields.append(_string_bytes(value))
        return fields

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        _write_in_batches(self._dump_records(rows), stream)

    def _dump_records(self, rows: Iterable[Any]) -> Iterator[bytes]:
        for row in rows:
            if is_control_row(row):
                index = row.attributes.get("table_index")
                if self.enable_table_index and index is not None:
                    yield self._control_record(_LENVAL_TABLE_INDEX, int(index))
                continue
            fields = self._fields(row)
            if self.lenval:
                yield b"".join(_LENVAL_LENGTH.pack(len(f)) + f for f in fields)
            else:
                yield self.fs.join(fields) + self.rs

    def _control_record(self, kind: int, value: int) -> bytes:
        if self.lenval:
            return _LENVAL_LENGTH.pack(kind) + _LENVAL_LENGTH.pack(value)
        return b"%d" % value + self.rs

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        return _without_control_rows(self.load_entries(stream))

    def load_entries(self, stream: BinaryIO) -> Iterator[Row | yson.YsonEntity]:
        """Rows; a table index record becomes a table switch."""
        records = self._lenval_records(stream) if self.lenval else self._text_records(stream)
        for record in records:
            if isinstance(record, int):
                yield make_control_row(table_index=record)
                continue
            yield {
                column: yson.YsonString(field)
                for column, field in zip(self.columns, record, strict=True)
            }

    def _text_records(self, stream: BinaryIO) -> Iterator[list[bytes] | int]:
        for line in _split_records(stream, self.rs):
            fields = line.split(self.fs, len(self.columns) - 1)
            if len(fields) == 1 and self.enable_table_index:
                yield _table_index_field(fields[0])
                continue
            if len(fields) != len(self.columns):
                raise FormatError(
                    f"yamr record has {len(fields)} field(s), expected {len(self.columns)}: "
                    f"{line[:100]!r}"
                )
            yield fields

    def _lenval_records(self, stream: BinaryIO) -> Iterator[list[bytes] | int]:
        while True:
            fields: list[bytes] = []
            for position in range(len(self.columns)):
                head = stream.read(4)
                if not head and position == 0:
                    return
                if len(head) != 4:
                    raise FormatError("Incomplete record in yamr lenval")
                (length,) = _LENVAL_LENGTH.unpack(head)
                if length < 0 and position == 0:
                    value = stream.read(4)
                    if len(value) != 4:
                        raise FormatError("Incomplete control record in yamr lenval")
                    if length == _LENVAL_TABLE_INDEX:
                        yield _LENVAL_LENGTH.unpack(value)[0]
                    break
                if length < 0:
                    raise FormatError(f"Negative field length {length} in yamr lenval")
                field = stream.read(length)
                if len(field) != length:
                    raise FormatError("Incomplete field in yamr lenval")
                fields.append(field)
            else:
                yield fields


def _split_records(stream: BinaryIO, separator: bytes) -> Iterator[bytes]:
    """The records of a stream ended (or separated) by ``separator``, read in chunks."""
    rest = b""
    while chunk := stream.read(_JSON_READ_SIZE):
        *records, rest = (rest + chunk).split(separator)
        yield from records
    if rest:
        yield rest


def _table_index_field(data: bytes) -> int:
    try:
        return int(data)
    except ValueError:
        raise FormatError(f"Table index is not an integer: {data[:50]!r}") from None


# ------------------------------------------------------------------------------------ factory

AnyRowFormat = YsonFormat | JsonFormat | DsvFormat | SchemafulDsvFormat | YamrFormat | SkiffFormat

_ROW_FORMATS: dict[str, type[AnyRowFormat]] = {
    "yson": YsonFormat,
    "json": JsonFormat,
    "dsv": DsvFormat,
    "schemaful_dsv": SchemafulDsvFormat,
    "yamr": YamrFormat,
    "skiff": SkiffFormat,
}


def parse_job_format(spec: Any) -> AnyRowFormat:
    """A row format for job input/output (accepts job-only attributes: DSV ``enable_table_index``)."""
    return parse_format(spec, in_job=True)


def parse_format(spec: Any, *, in_job: bool = False) -> AnyRowFormat:
    """Build a row format from its YSON spec (``"json"``, ``<format=text>yson``...)."""
    if spec is None:
        raise FormatError("Format is not specified")
    name = format_name(spec)
    if name not in _ROW_FORMATS:
        raise FormatError(
            f"Format {name!r} is not supported by the local YT "
            f"(supported: {', '.join(sorted(_ROW_FORMATS))})",
            format=name,
        )
    attributes = _format_attributes(spec)
    if name == "dsv":
        return DsvFormat(attributes, in_job=in_job)
    if name in ("schemaful_dsv", "yamr"):
        return _ROW_FORMATS[name](attributes, in_job=in_job)  # type: ignore[call-arg]
    return _ROW_FORMATS[name](attributes)


# ------------------------------------------------------------------------------ structured I/O

_STRUCTURED_FORMATS = frozenset({"yson", "json"})


def dump_structured(value: Any, spec: Any) -> bytes:
    """A structured value (``get`` result, command output) in the requested format."""
    name = format_name(spec) if spec is not None else "json"
    attributes = _format_attributes(spec) if spec is not None else {}
    if name == "yson":
        fmt = YsonFormat(attributes)
        return yson.dumps(value, yson_format=fmt.yson_format, encoding="utf-8")
    if name == "json":
        json_format = JsonFormat(attributes)
        return json_format.dumps_row(value).rstrip(b"\n")
    raise FormatError(
        f"Format {name!r} is not supported for structured data (supported: yson, json)",
        format=name,
    )


def load_structured(data: bytes, spec: Any) -> Any:
    """A structured value (``set`` input, parameters body) parsed from the given format."""
    name = format_name(spec) if spec is not None else "yson"
    attributes = _format_attributes(spec) if spec is not None else {}
    try:
        if name == "yson":
            YsonFormat(attributes)
            return yson.loads(data)
        if name == "json":
            json_format = JsonFormat(attributes)
            return decode_json_strings(json_to_value(json.loads(data), json_format.encode_utf8))
    except (yson.YsonError, ValueError) as error:
        raise FormatError(f"Error parsing {name} input: {error}") from None
    raise FormatError(
        f"Format {name!r} is not supported for structured data (supported: yson, json)",
        format=name,
    )


def decode_json_strings(value: Any) -> Any:
    """Turn UTF-8 byte strings into ``str`` so JSON input matches what YSON input yields."""
    attributes = getattr(value, "attributes", None)
    if isinstance(value, bytes):
        try:
            result: Any = yson.YsonUnicode(value.decode("utf-8"))
        except UnicodeDecodeError:
            result = yson.YsonString(value)
    elif isinstance(value, Mapping):
        result = yson.YsonMap({_as_str(k): decode_json_strings(v) for k, v in value.items()})
    elif isinstance(value, list):
        result = yson.YsonList([decode_json_strings(v) for v in value])
    else:
        result = value
    if attributes:
        result = yson.to_yson_type(
            result, attributes={k: decode_json_strings(v) for k, v in attributes.items()}
        )
    return result
