"""Table schemas and row validation, as YT enforces them on write.

A schema is kept in one normal form, :class:`Schema`: columns as YT returns them in ``@schema``
(``name``, ``type`` (v1), ``required``, ``type_v3``, optional ``sort_order``/``group``/...) plus the
list attributes ``strict`` and ``unique_keys``. :func:`normalize_schema` accepts what clients send
(v1 ``type``+``required``, ``type_v3`` in either the short ``"string"`` or the ``{type_name=...}`` form,
a ``yt.wrapper.schema.TableSchema``) and :meth:`Schema.to_yson` renders what
``TableSchema.from_yson_type`` parses back.

:func:`make_row_validator` compiles a schema into a function that checks one row and raises YT's
errors: ``SchemaViolation`` (307) for a bad type, a null in a required column or an unknown column of a
strict schema, ``MissingRequiredColumnInSchema`` (323) for a missing required column. Sorted writes are
checked with :class:`SortedWriteChecker` (``SortOrderViolation`` 301, ``UniqueKeyViolation`` 306).

Usage::

    schema = normalize_schema([{"name": "a", "type": "int64", "sort_order": "ascending"}])
    check = make_row_validator(schema, table_path="//t")
    row = check({"a": 1})            # returns the row (keys as str); raises on a violation
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yt.type_info as ti
import yt.yson

from .exceptions import (
    IncompatibleKeyColumns,
    InvalidSchema,
    SchemaViolation,
    TableSortOrderViolation,
    UniqueKeyViolation,
)
from .typed_values import Normalizer, TypeMismatch, compile_value, is_composite
from .values import to_plain

Row = dict[str, Any]
ValueCheck = Callable[[Any], bool]

_COLUMN_OPTIONAL_KEYS = (
    "sort_order",
    "group",
    "lock",
    "aggregate",
    "expression",
    "max_inline_hunk_size",
)

# Dates, in days since the epoch (YT: [1970-01-01, 2106-01-01)).
_DATE_UPPER_BOUND = 49673
_DATETIME_UPPER_BOUND = _DATE_UPPER_BOUND * 86400
_TIMESTAMP_UPPER_BOUND = _DATETIME_UPPER_BOUND * 1000000


@dataclass
class Schema:
    """A table schema in normal form."""

    columns: list[dict[str, Any]] = field(default_factory=list)
    strict: bool = False
    unique_keys: bool = False

    @property
    def is_empty_weak(self) -> bool:
        return not self.strict and not self.columns

    @property
    def sort_columns(self) -> list[str]:
        result = []
        for column in self.columns:
            if column.get("sort_order") is None:
                break
            result.append(column["name"])
        return result

    @property
    def descending(self) -> list[bool]:
        return [c.get("sort_order") == "descending" for c in self.columns if c.get("sort_order")]

    def to_yson(self) -> Any:
        """The value of ``@schema``: a YSON list with ``strict`` and ``unique_keys`` attributes."""
        return yt.yson.to_yson_type(
            [dict(column) for column in self.columns],
            attributes={"strict": self.strict, "unique_keys": self.unique_keys},
        )

    def to_stored(self) -> dict[str, Any]:
        return {"columns": self.columns, "strict": self.strict, "unique_keys": self.unique_keys}

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> Schema:
        if not stored:
            return cls()
        return cls(
            columns=[dict(column) for column in stored["columns"]],
            strict=bool(stored["strict"]),
            unique_keys=bool(stored["unique_keys"]),
        )


def _type_from_v3(type_v3: Any) -> Any:
    try:
        return ti.deserialize_yson(yt.yson.dumps(type_v3))
    except Exception as error:
        raise InvalidSchema(f"Invalid type_v3 {type_v3!r}: {error}") from None


def _type_from_v1(type_v1: Any, required: bool) -> Any:
    try:
        return ti.deserialize_yson_v1(yt.yson.dumps(type_v1), required)
    except Exception as error:
        raise InvalidSchema(f"Invalid column type {type_v1!r}: {error}") from None


def _v1_of(type_info: Any) -> tuple[str, bool]:
    """(v1 type name, required) of a type_info type, as YT reports them."""
    required = True
    inner = type_info
    if inner.name == "Optional":
        required = False
        inner = inner.item
    if isinstance(inner, ti.type_base.Primitive):
        return str(inner.yt_type_name_v1), required
    if type_info.name == "Optional":
        return "any", False
    return "any", True


def normalize_column(column: Any) -> dict[str, Any]:
    """One column description in YT's ``@schema`` form."""
    if hasattr(column, "to_yson_type"):
        column = column.to_yson_type()
    column = to_plain(column, keep_attributes=False)
    if not isinstance(column, dict) or "name" not in column:
        raise InvalidSchema(f'Column description must be a map with a "name", got {column!r}')
    if "type_v3" in column:
        type_info = _type_from_v3(column["type_v3"])
    elif "type" in column:
        type_info = _type_from_v1(column["type"], bool(column.get("required", False)))
    else:
        raise InvalidSchema(f'Column {column["name"]!r} has neither "type" nor "type_v3"')
    type_v1, required = _v1_of(type_info)
    type_v3 = to_plain(
        yt.yson.loads(ti.serialize_yson(type_info), encoding="utf-8"), keep_attributes=False
    )
    if is_composite(type_v3):
        _compile_composite(type_v3)  # a type the row validator cannot check is refused here
    result: dict[str, Any] = {
        "name": str(column["name"]),
        "type": type_v1,
        "required": required,
        "type_v3": type_v3,
    }
    for key in _COLUMN_OPTIONAL_KEYS:
        if column.get(key) is not None:
            result[key] = column[key]
    if result.get("sort_order") not in (None, "ascending", "descending"):
        raise InvalidSchema(
            f"Invalid sort order {result['sort_order']!r} of column {result['name']!r}"
        )
    return result


def normalize_schema(value: Any) -> Schema:
    """A :class:`Schema` from what a client sends as ``schema``."""
    if isinstance(value, Schema):
        return value
    if hasattr(value, "to_yson_type") and not isinstance(value, list):
        value = value.to_yson_type()
    if not isinstance(value, list):
        raise InvalidSchema(f"Schema must be a list of columns, got {type(value).__name__}")
    attributes = getattr(value, "attributes", None) or {}
    columns = [normalize_column(column) for column in value]
    names = [column["name"] for column in columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidSchema(f"Duplicate column name {duplicates[0]!r} in table schema")
    seen_unsorted = False
    for column in columns:
        if column.get("sort_order") is None:
            seen_unsorted = True
        elif seen_unsorted:
            raise InvalidSchema(
                f"Key column {column['name']!r} follows a non-key column; key columns must form a prefix"
            )
    return Schema(
        columns=columns,
        strict=bool(attributes.get("strict", True)),
        unique_keys=bool(attributes.get("unique_keys", False)),
    )


def schema_with_sorted_by(schema: Schema, sorted_by: list[str]) -> Schema:
    """The schema a write with ``<sorted_by=[...]>`` gives the table (YT's ``ToSorted``)."""
    by_name = {column["name"]: column for column in schema.columns}
    key_columns = []
    for name in sorted_by:
        if name in by_name:
            column = dict(by_name[name])
        elif schema.strict:
            raise IncompatibleKeyColumns(
                f'Column "{name}" is not found in strict schema', sorted_by=sorted_by
            )
        else:
            column = normalize_column({"name": name, "type": "any", "required": False})
        column["sort_order"] = "ascending"
        key_columns.append(column)
    rest = [dict(c) for c in schema.columns if c["name"] not in set(sorted_by)]
    for column in rest:
        column.pop("sort_order", None)
    return Schema(columns=key_columns + rest, strict=schema.strict, unique_keys=False)


# ---- value checks ------------------------------------------------------------------------------


_BOOLEAN_TYPES = (bool, yt.yson.YsonBoolean)  # YsonBoolean (what YSON %true loads as) is an int


def _is_bool(value: Any) -> bool:
    return isinstance(value, _BOOLEAN_TYPES)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, _BOOLEAN_TYPES)


def _int_range(low: int, high: int) -> ValueCheck:
    return lambda v: _is_int(v) and not isinstance(v, yt.yson.YsonUint64) and low <= v < high


def _uint_range(high: int) -> ValueCheck:
    return lambda v: _is_int(v) and 0 <= v < high


def _is_string(value: Any) -> bool:
    return isinstance(value, (str, bytes)) or type(value).__name__ == "YsonStringProxy"


def _is_utf8(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return False


def _is_double(value: Any) -> bool:
    return isinstance(value, float)


def _is_float(value: Any) -> bool:
    return isinstance(value, float) and (
        not math.isfinite(value) or abs(value) <= 3.4028234663852886e38
    )


_INT64 = 2**63
_PRIMITIVE_CHECKS: dict[str, ValueCheck] = {
    "int8": _int_range(-(2**7), 2**7),
    "int16": _int_range(-(2**15), 2**15),
    "int32": _int_range(-(2**31), 2**31),
    "int64": _int_range(-_INT64, _INT64),
    "uint8": _uint_range(2**8),
    "uint16": _uint_range(2**16),
    "uint32": _uint_range(2**32),
    "uint64": _uint_range(2**64),
    "double": _is_double,
    "float": _is_float,
    "bool": _is_bool,
    "string": _is_string,
    "utf8": _is_utf8,
    "json": _is_utf8,
    "uuid": lambda v: (
        _is_string(v) and len(yt.yson.get_bytes(v) if not isinstance(v, str) else v.encode()) == 16
    ),
    "yson": lambda v: True,
    "date": _uint_range(_DATE_UPPER_BOUND),
    "datetime": _uint_range(_DATETIME_UPPER_BOUND),
    "timestamp": _uint_range(_TIMESTAMP_UPPER_BOUND),
    "interval": _int_range(-_TIMESTAMP_UPPER_BOUND + 1, _TIMESTAMP_UPPER_BOUND),
    "date32": _int_range(-(2**31), 2**31),
    "datetime64": _is_int,
    "timestamp64": _is_int,
    "interval64": _is_int,
    "tz_date": _is_string,
    "tz_datetime": _is_string,
    "tz_timestamp": _is_string,
    "tz_date32": _is_string,
    "tz_datetime64": _is_string,
    "tz_timestamp64": _is_string,
    "null": lambda v: v is None or isinstance(v, yt.yson.YsonEntity),
    "void": lambda v: v is None or isinstance(v, yt.yson.YsonEntity),
}
PRIMITIVE_TYPES = frozenset(_PRIMITIVE_CHECKS)  # the type_v3 names of primitive columns


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, yt.yson.YsonEntity)


def _compile_type(type_v3: Any) -> ValueCheck:
    """A predicate checking that a (non-null unless optional) value fits a type_v3 type."""
    if isinstance(type_v3, str):
        check = _PRIMITIVE_CHECKS.get(type_v3)
        if check is None:
            raise InvalidSchema(f"Unsupported type {type_v3!r}")
        if type_v3 in ("null", "void"):
            return check
        return lambda v: not _is_null(v) and check(v)
    name = type_v3["type_name"]
    if name in _PRIMITIVE_CHECKS:
        return _compile_type(name)
    if name == "decimal":
        return _is_string
    if name == "optional":
        item = _compile_type(type_v3["item"])
        return lambda v: _is_null(v) or item(v)
    if name == "tagged":
        return _compile_type(type_v3["item"])
    if name == "list":
        item = _compile_type(type_v3["item"])
        return lambda v: isinstance(v, list) and all(item(x) for x in v)
    if name in ("struct", "tuple"):
        members_key = "members" if name == "struct" else "elements"
        members = type_v3[members_key]
        names = [m.get("name") for m in members]
        checks = [_compile_type(m["type"]) for m in members]

        def check_struct(v: Any) -> bool:
            if isinstance(v, list):
                padded = list(v) + [None] * (len(checks) - len(v))
                return len(v) <= len(checks) and all(
                    c(x) for c, x in zip(checks, padded, strict=True)
                )
            if isinstance(v, dict) and name == "struct":
                keys = {str(k) for k in v}
                return keys <= set(names) and all(
                    c(v.get(n))
                    for c, n in zip(checks, names, strict=True)  # type: ignore[arg-type]
                )
            return False

        return check_struct
    if name == "dict":
        key = _compile_type(type_v3["key"])
        value = _compile_type(type_v3["value"])
        return lambda v: (
            isinstance(v, list)
            and all(isinstance(p, list) and len(p) == 2 and key(p[0]) and value(p[1]) for p in v)
        )
    if name in ("variant",):
        return lambda v: isinstance(v, list) and len(v) == 2
    raise InvalidSchema(f"Unsupported type {type_v3!r}")


def _null_in_required_column(name: str, table_path: str) -> SchemaViolation:
    return SchemaViolation(
        f'Required column "{name}" cannot have "null" value (table {table_path})',
        path=table_path,
        column=name,
    )


def _compile_composite(type_v3: Any) -> Normalizer:
    try:
        return compile_value(type_v3, _PRIMITIVE_CHECKS)
    except TypeMismatch as error:
        raise InvalidSchema(f"Invalid type_v3 {type_v3!r}: {error.args[0]}") from None


def _value_type_name(value: Any) -> str:
    """The YT value type of a Python value, for error messages."""
    if _is_null(value):
        return "null"
    if _is_bool(value):
        return "boolean"
    if isinstance(value, yt.yson.YsonUint64):
        return "uint64"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "double"
    if _is_string(value):
        return "string"
    return "any"


def _type_description(column: dict[str, Any]) -> str:
    type_v3 = column["type_v3"]
    return yt.yson.dumps(type_v3, yson_format="text").decode()


# Fast paths of the row validator: for a (possibly optional) primitive column, the Python types
# accepted as they are, and the range a plain ``int`` must fall in. Anything else goes through the
# full check compiled by ``_compile_type``.
_FAST_ACCEPTED_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str, bytes),
    "utf8": (str,),
    "json": (str,),
    "bool": _BOOLEAN_TYPES,
    "double": (float,),
    "yson": (str, bytes, int, float, bool, list, dict),
}
_FAST_INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7),
    "int16": (-(2**15), 2**15),
    "int32": (-(2**31), 2**31),
    "int64": (-_INT64, _INT64),
    "uint8": (0, 2**8),
    "uint16": (0, 2**16),
    "uint32": (0, 2**32),
    "uint64": (0, 2**64),
    "date": (0, _DATE_UPPER_BOUND),
    "datetime": (0, _DATETIME_UPPER_BOUND),
    "timestamp": (0, _TIMESTAMP_UPPER_BOUND),
}


def _primitive_name(type_v3: Any) -> str | None:
    """``"uint64"`` for ``uint64`` and ``optional<uint64>``; ``None`` for composite types."""
    if isinstance(type_v3, dict) and type_v3.get("type_name") == "optional":
        type_v3 = type_v3.get("item")
    if isinstance(type_v3, dict) and len(type_v3) == 1:
        type_v3 = type_v3.get("type_name")
    return type_v3 if isinstance(type_v3, str) else None


def make_row_validator(schema: Schema, *, table_path: str) -> Callable[[Row], Row]:
    """Compile ``schema`` into a function that checks one row (and decodes ``bytes`` keys).

    A missing column is a null, as in YT's static tables: a missing required column fails with
    ``Required column "a" cannot have "null" value`` (SchemaViolation, 307).
    """
    compiled = []
    composite: list[tuple[str, Normalizer, dict[str, Any]]] = []
    for c in schema.columns:
        if is_composite(c["type_v3"]):
            composite.append((c["name"], _compile_composite(c["type_v3"]), c))
            continue
        primitive = _primitive_name(c["type_v3"])
        compiled.append(
            (
                c["name"],
                c["required"],
                _FAST_ACCEPTED_TYPES.get(primitive or "", ()),
                _FAST_INT_RANGES.get(primitive or ""),
                _compile_type(c["type_v3"]),
                c,
            )
        )
    known = frozenset(c["name"] for c in schema.columns)
    strict = schema.strict

    def validate(row: Row) -> Row:
        if type(row) is not dict and not isinstance(row, dict):
            raise SchemaViolation(
                f"Table {table_path}: a row must be a map, got {type(row).__name__}",
                path=table_path,
            )
        # A decoder gives all keys as str or all as bytes: the first key tells which.
        if row and type(next(iter(row))) is not str:
            row = {
                (k.decode("utf-8") if isinstance(k, bytes) else str(k)): v for k, v in row.items()
            }
        for name, required, accepted, int_range, check, column in compiled:
            value = row.get(name)
            value_type = type(value)
            if value_type in accepted:
                continue
            if value_type is int and int_range is not None:
                if int_range[0] <= value < int_range[1]:  # type: ignore[operator]
                    continue
            elif value is None and not required:
                continue
            if check(value):
                continue
            if _is_null(value):
                if not required:
                    continue
                raise _null_in_required_column(name, table_path)
            raise SchemaViolation(
                f'Error validating column "{name}" of table {table_path}: value of type '
                f'"{_value_type_name(value)}" does not match type {_type_description(column)}',
                path=table_path,
                column=name,
            )
        for name, normalize, column in composite:
            value = row.get(name)
            if _is_null(value):
                if not column["required"]:
                    continue
                raise _null_in_required_column(name, table_path)
            try:
                row[name] = normalize(value, name)
            except TypeMismatch as mismatch:
                raise SchemaViolation(
                    f'Error validating column "{name}" of table {table_path}: {mismatch.args[0]} '
                    f"(type {_type_description(column)})",
                    path=table_path,
                    column=name,
                ) from None
        if strict and not known.issuperset(row):
            unknown = next(key for key in row if key not in known)
            raise SchemaViolation(
                f'Unknown column "{unknown}" in strict schema of table {table_path}',
                path=table_path,
                column=unknown,
            )
        return row

    return validate


def make_batch_check(schema: Schema) -> Callable[[list[Any]], bool] | None:
    """A check of many rows at once as the YSON parser gives them (``bytes`` keys), in C loops:
    ``True`` when each is a plain ``dict`` that :func:`make_row_validator`'s fast paths accept
    unchanged; ``False`` only says "check these one by one" (the validator then raises or passes).
    ``None`` for a schema with composite columns: the validator normalizes their values.

    >>> check = make_batch_check(normalize_schema([{"name": "a", "type": "int8"}]))
    >>> check([{b"a": 1}, {b"a": None}, {}]), check([{b"a": 1}, {b"a": 300}])
    (True, False)
    """
    columns = []
    for column in schema.columns:
        if is_composite(column["type_v3"]):
            return None
        primitive = _primitive_name(column["type_v3"]) or ""
        accepted = set(_FAST_ACCEPTED_TYPES.get(primitive, ()))
        if not column["required"]:
            accepted.add(type(None))
        columns.append(
            (
                operator.methodcaller("get", column["name"].encode("utf-8")),
                frozenset(accepted),
                _FAST_INT_RANGES.get(primitive),
            )
        )
    known = frozenset(column["name"].encode("utf-8") for column in schema.columns)
    strict = schema.strict

    def check(rows: list[Any]) -> bool:
        if set(map(type, rows)) - {dict}:
            return False
        unknown = set(itertools.chain.from_iterable(rows)) - known
        if unknown and (strict or not all(map(_is_column_name, unknown))):
            return False
        for get, accepted, int_range in columns:
            values = list(map(get, rows))
            kinds = set(map(type, values))
            if kinds <= accepted:
                continue
            if int_range is None or not kinds <= accepted | {int}:
                return False
            ints = [value for value in values if type(value) is int]
            if not (int_range[0] <= min(ints) and max(ints) < int_range[1]):
                return False
        return True

    return check


def _is_column_name(key: Any) -> bool:
    if type(key) is not bytes:
        return False
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---- keys and sort order -----------------------------------------------------------------------


def _value_sort_key(value: Any) -> tuple[int, Any]:
    """Order of YT values of different types: null < int64 < uint64 < double < boolean < string < any."""
    if _is_null(value):
        return (0, 0)
    if _is_bool(value):
        return (4, bool(value))
    if isinstance(value, yt.yson.YsonUint64):
        return (2, int(value))
    if isinstance(value, int):
        return (1, value)
    if isinstance(value, float):
        return (3, value)
    if isinstance(value, str):
        return (5, value.encode("utf-8"))
    if _is_string(value):
        return (5, yt.yson.get_bytes(value))
    return (6, yt.yson.dumps(value, yson_format="binary"))


class _Descending:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and other.key == self.key


def make_key_function(
    sort_columns: list[str], descending: list[bool] | None = None
) -> Callable[[Row], tuple]:
    """``row -> comparable key`` over ``sort_columns`` (missing columns are null)."""
    flags = descending or [False] * len(sort_columns)

    def key(row: Row) -> tuple:
        parts: list[Any] = []
        for name, desc in zip(sort_columns, flags, strict=False):
            part = _value_sort_key(row.get(name))
            parts.append(_Descending(part) if desc else part)
        return tuple(parts)

    return key


def key_values(row: Row, sort_columns: list[str]) -> list[Any]:
    """The raw key of a row (stored as a chunk's first/last key)."""
    return [row.get(name) for name in sort_columns]


class SortedWriteChecker:
    """Checks that written rows come in key order (and are unique when the schema says so)."""

    def __init__(
        self, schema: Schema, *, table_path: str, previous_last_key: list[Any] | None
    ) -> None:
        self.sort_columns = schema.sort_columns
        self.unique = schema.unique_keys
        self.table_path = table_path
        self._descending = schema.descending
        self._key = make_key_function(self.sort_columns, schema.descending)
        self.first_key: list[Any] | None = None
        self.last_key: list[Any] | None = None
        self._last_compiled: tuple | None = None
        if previous_last_key is not None:
            self._last_compiled = self._key(
                dict(zip(self.sort_columns, previous_last_key, strict=False))
            )
        self._previous_table_key = previous_last_key

    def check_run(self, key_columns: list[list[Any]], first: Row, last: Row) -> bool:
        """Check a run of rows at once, from each sort column's values over the run and the run's
        first and last rows: ``True`` when checked, ``False`` when the run's values are not all
        ``bytes`` or all ``int`` in each column (or a column is descending): check each row then."""
        if any(self._descending):
            return False
        for values in key_columns:
            kinds = set(map(type, values))
            if len(kinds) != 1 or not kinds <= {bytes, int}:
                return False
        keys = list(zip(*key_columns, strict=True))
        in_order = operator.lt if self.unique else operator.le
        if not all(map(in_order, keys, itertools.islice(keys, 1, None))):
            return False
        self.check(first)
        if len(keys) > 1:
            self.check(last)
        return True

    def check(self, row: Row) -> None:
        compiled = self._key(row)
        if self._last_compiled is not None:
            if compiled < self._last_compiled:
                if self.first_key is None:
                    raise TableSortOrderViolation(
                        f"Output table {self.table_path} is not sorted: key ranges overlap with "
                        "original table",
                        path=self.table_path,
                        table_max_key=self._previous_table_key,
                        min_key=key_values(row, self.sort_columns),
                    )
                raise TableSortOrderViolation(
                    f"Sort order violation in table {self.table_path}: "
                    f"{self.last_key!r} > {key_values(row, self.sort_columns)!r}",
                    path=self.table_path,
                )
            if self.unique and compiled == self._last_compiled:
                raise UniqueKeyViolation(
                    f"Duplicate key {key_values(row, self.sort_columns)!r} in table {self.table_path}",
                    path=self.table_path,
                )
        self._last_compiled = compiled
        values = key_values(row, self.sort_columns)
        if self.first_key is None:
            self.first_key = values
        self.last_key = values


def project_columns(rows: Iterable[Row], columns: list[str]) -> Iterable[Row]:
    """Keep only ``columns`` of each row (``//t{a,b}``)."""
    for row in rows:
        yield {name: row[name] for name in columns if name in row}
