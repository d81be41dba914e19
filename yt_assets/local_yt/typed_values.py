"""Values of type_v3 composite columns: checked and brought to YT's default YSON representation.

A cluster parses a composite value written in YSON/JSON in the format's default *named* mode
(the YTsaurus docs, "Data types"): a ``struct`` is a map of its members (an unknown member, a
repeated one or a missing non-optional one is an error; a missing optional one reads back as
``#``), a ``tuple`` a list of exactly its elements, a ``variant`` ``[name, value]`` over a struct
or ``[index, value]`` over a tuple, a ``dict`` a list of ``[key, value]`` pairs, an ``optional``
of an optional ``#`` or ``[value]``, a ``decimal`` its binary representation (4, 8, 16 or 32
bytes by precision), a ``tagged`` value its item. :func:`compile_value` turns a type into a
function returning the value in that representation (struct keys as ``str``) or raising
:class:`TypeMismatch` with the path of the offending part.

Usage::

    normalize = compile_value({"type_name": "struct", "members": [{"name": "a", "type": "int64"}]},
                              primitive_checks)
    normalize({b"a": 1})      # {"a": 1}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yt.yson

__all__ = ["Normalizer", "TypeMismatch", "compile_value", "is_composite"]

Normalizer = Callable[[Any, str], Any]
"""``(value, where) -> value`` in the canonical representation; raises :class:`TypeMismatch`."""


class TypeMismatch(Exception):
    """A value does not match its type; ``args[0]`` says where and why."""


_NULLABLE_PRIMITIVES = frozenset({"null", "void", "yson"})  # a yson value may be the entity #


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, yt.yson.YsonEntity)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, (bool, yt.yson.YsonBoolean))


def _type_name(type_v3: Any) -> str:
    return type_v3 if isinstance(type_v3, str) else str(type_v3["type_name"])


def is_composite(type_v3: Any) -> bool:
    """Whether values of ``type_v3`` need :func:`compile_value` (not a primitive, possibly optional)."""
    name = _type_name(type_v3)
    if name == "optional":
        item = type_v3["item"]
        return _type_name(item) == "optional" or is_composite(item)
    return name in _COMPOSITE


def _is_nullable(type_v3: Any) -> bool:
    name = _type_name(type_v3)
    if name == "tagged":
        return _is_nullable(type_v3["item"])
    return name == "optional" or name in _NULLABLE_PRIMITIVES


def _describe(value: Any) -> str:
    if _is_null(value):
        return "null"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, (str, bytes)) else type(value).__name__


def compile_value(
    type_v3: Any, primitive_checks: Mapping[str, Callable[[Any], bool]]
) -> Normalizer:
    """A normalizer for values of ``type_v3`` (``primitive_checks``: a predicate per primitive)."""
    name = _type_name(type_v3)
    if name in primitive_checks:
        check = primitive_checks[name]
        nullable = name in _NULLABLE_PRIMITIVES

        def primitive(value: Any, where: str) -> Any:
            if (_is_null(value) and not nullable) or not check(value):
                raise TypeMismatch(f"{where}: expected {name}, got {_describe(value)}")
            return value

        return primitive
    builder = _COMPOSITE.get(name)
    if builder is None:
        raise TypeMismatch(f"unsupported type {name!r}")
    return builder(type_v3, primitive_checks)


def _optional(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    item_type = type_v3["item"]
    item = compile_value(item_type, checks)
    wrapped = _is_nullable(item_type)

    def optional(value: Any, where: str) -> Any:
        if _is_null(value):
            return None
        if not wrapped:
            return item(value, where)
        if not isinstance(value, list) or len(value) != 1:
            raise TypeMismatch(
                f"{where}: a non-null optional of an optional must be a list of one item, "
                f"got {_describe(value)}"
            )
        return [item(value[0], f"{where}[0]")]

    return optional


def _list(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    item = compile_value(type_v3["item"], checks)

    def list_(value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise TypeMismatch(f"{where}: expected a list, got {_describe(value)}")
        return [item(element, f"{where}[{index}]") for index, element in enumerate(value)]

    return list_


def _members(type_v3: Any, key: str) -> list[Mapping[str, Any]]:
    members = type_v3.get(key)
    if not isinstance(members, list):
        raise TypeMismatch(f"{type_v3['type_name']} has no {key!r}")
    return members


def _struct(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    members = [
        (str(m["name"]), compile_value(m["type"], checks), _is_nullable(m["type"]))
        for m in _members(type_v3, "members")
    ]
    known = {name for name, _, _ in members}

    def struct(value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise TypeMismatch(f"{where}: a struct must be a map, got {_describe(value)}")
        fields: dict[str, Any] = {}
        for key, item in value.items():
            text = _text(key)
            if text not in known:
                raise TypeMismatch(f"{where}: unknown struct member {key!r}")
            fields[text] = item
        result = {}
        for name, normalize, nullable in members:
            if name not in fields and not nullable:
                raise TypeMismatch(f'{where}: struct member "{name}" is missing')
            result[name] = normalize(fields.get(name), f"{where}.{name}")
        return result

    return struct


def _tuple(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    elements = [compile_value(e["type"], checks) for e in _members(type_v3, "elements")]

    def tuple_(value: Any, where: str) -> Any:
        if not isinstance(value, list) or len(value) != len(elements):
            raise TypeMismatch(
                f"{where}: a tuple must be a list of {len(elements)} items, got {_describe(value)}"
            )
        return [
            normalize(item, f"{where}[{index}]")
            for index, (normalize, item) in enumerate(zip(elements, value, strict=True))
        ]

    return tuple_


def _variant(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    named = "members" in type_v3
    alternatives = _members(type_v3, "members" if named else "elements")
    if not alternatives:
        raise TypeMismatch("a variant must have alternatives")
    normalizers = [compile_value(a["type"], checks) for a in alternatives]
    names = [str(a["name"]) for a in alternatives] if named else []

    def variant(value: Any, where: str) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            raise TypeMismatch(f"{where}: a variant must be a list of two items")
        label, item = value
        if named:
            text = _text(label)
            if text not in names:
                raise TypeMismatch(f"{where}: unknown variant alternative {label!r}")
            index: int = names.index(text)  # type: ignore[arg-type]
            return [text, normalizers[index](item, f"{where}.{text}")]
        if not _is_index(label) or not 0 <= label < len(normalizers):
            raise TypeMismatch(f"{where}: variant alternative index {label!r} is out of range")
        return [int(label), normalizers[label](item, f"{where}[{label}]")]

    return variant


def _dict(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    key = compile_value(type_v3["key"], checks)
    item = compile_value(type_v3["value"], checks)

    def dict_(value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise TypeMismatch(
                f"{where}: a dict must be a list of [key, value] pairs, got {_describe(value)}"
            )
        result = []
        for index, pair in enumerate(value):
            if not isinstance(pair, list) or len(pair) != 2:
                raise TypeMismatch(f"{where}[{index}]: a dict item must be a [key, value] pair")
            result.append(
                [key(pair[0], f"{where}[{index}].key"), item(pair[1], f"{where}[{index}].value")]
            )
        return result

    return dict_


def _tagged(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    return compile_value(type_v3["item"], checks)


MAX_DECIMAL_PRECISION = 35  # the YTsaurus docs: "precision must be in the range [1, 35]"


def decimal_size(precision: int) -> int:
    """Bytes of the binary representation of ``decimal(precision, s)``."""
    return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32


def _decimal(type_v3: Any, checks: Mapping[str, Callable[[Any], bool]]) -> Normalizer:
    precision, scale = int(type_v3["precision"]), int(type_v3["scale"])
    if not 1 <= precision <= MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
        raise TypeMismatch(
            f"decimal precision must be in [1, {MAX_DECIMAL_PRECISION}] and scale in "
            f"[0, precision], got decimal({precision}, {scale})"
        )
    size = decimal_size(precision)

    def decimal(value: Any, where: str) -> Any:
        data = value if isinstance(value, bytes) else None
        if data is None and type(value).__name__ == "YsonStringProxy":
            data = bytes(yt.yson.get_bytes(value))
        if data is None or len(data) != size:
            raise TypeMismatch(
                f"{where}: a decimal of precision {type_v3['precision']} must be its {size}-byte "
                f"binary representation, got {_describe(value)}"
            )
        return value

    return decimal


_COMPOSITE: dict[str, Callable[[Any, Mapping[str, Callable[[Any], bool]]], Normalizer]] = {
    "optional": _optional,
    "list": _list,
    "struct": _struct,
    "tuple": _tuple,
    "variant": _variant,
    "dict": _dict,
    "tagged": _tagged,
    "decimal": _decimal,
}
