"""Rich YPath parsing for the local YT state layer.

A request's ``path`` arrives as the client sends it: a ``str`` (maybe with an ``<attrs>`` prefix and
``{columns}``/``[ranges]`` suffixes) or a ``yt.yson`` string carrying ``.attributes``. The client's own
pure-Python parser (``yt.ypath.parser.parse_ypath``) turns either form into a plain path plus a dict of
attributes (``append``, ``schema``, ``sorted_by``, ``columns``, ``ranges``...); :func:`split_ypath` then
splits the plain path into tokens (children, ``@attribute``, ``@`` for all attributes).

Usage::

    rich = parse_rich_path("<append=%true>//home/t[#10:#20]")
    rich.path, rich.append, rich.ranges      # "//home/t", True, [{"lower_limit": ...}]
    root, tokens = split_ypath("#1-2-191-3/@schema")
    root, tokens                             # "#1-2-191-3", [PathToken("attribute", "schema")]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import yt.yson
from yt.ypath.parser import parse_ypath
from yt.yson.yson_types import NotUnicodeError

from .exceptions import InvalidYPath
from .values import to_plain

TokenKind = Literal["child", "attribute", "all_attributes"]

_SPECIAL_CHARACTERS = "\\/@&*[{"


@dataclass(frozen=True)
class PathToken:
    """One step of a YPath: a child key, an attribute name, or ``@`` (all attributes).
    ``keep_link``: the key was followed by ``&`` (address a link node itself, not its target)."""

    kind: TokenKind
    key: str = ""
    keep_link: bool = False


RANGE_LIMIT_KEYS = ("lower_limit", "upper_limit", "exact")


@dataclass(frozen=True)
class RichPath:
    """A parsed rich YPath: the plain path and its attributes (YSON values, ``str`` keys)."""

    path: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def append(self) -> bool:
        return bool(self.attributes.get("append", False))

    @property
    def columns(self) -> list[str] | None:
        columns = self.attributes.get("columns")
        return None if columns is None else [_text(column) for column in columns]

    @property
    def ranges(self) -> list[dict[str, Any]]:
        """The ``ranges`` attribute, or one range made of the path's own ``lower_limit``/
        ``upper_limit``/``exact`` attributes (the form the client's read retries send)."""
        if "ranges" in self.attributes:
            return list(self.attributes["ranges"] or [])
        limits = {key: self.attributes[key] for key in RANGE_LIMIT_KEYS if key in self.attributes}
        return [limits] if limits else []

    @property
    def schema(self) -> Any:
        return self.attributes.get("schema")

    @property
    def sorted_by(self) -> list[str] | None:
        sorted_by = self.attributes.get("sorted_by")
        return None if sorted_by is None else [str(column) for column in sorted_by]


def _text(value: Any) -> str:
    """A YSON string as text; a YT error (not a crash) when it is not UTF-8."""
    try:
        return str(value)
    except NotUnicodeError:
        raise InvalidYPath(f"String is not valid UTF-8: {bytes(value)[:100]!r}") from None


def parse_rich_path(value: Any) -> RichPath:
    """Parse what a request passes as ``path`` into a :class:`RichPath`."""
    if isinstance(value, RichPath):
        return value
    if hasattr(value, "to_yson_type") and not isinstance(value, (str, bytes)):
        value = value.to_yson_type()  # yt.wrapper.YPath / TablePath
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "attributes"}:
        value = yt.yson.to_yson_type(value["value"], attributes=value.get("attributes") or {})
    if isinstance(value, bytes) and not isinstance(value, yt.yson.YsonString):
        value = value.decode("utf-8")
    if not isinstance(value, (str, bytes)):
        raise InvalidYPath(f"Path must be a string, got {type(value).__name__}")
    try:
        parsed = parse_ypath(value)
    except Exception as error:  # the client's parser raises YPathError/YsonError
        raise InvalidYPath(f"Error parsing YPath {value!r}: {error}") from None
    attributes = {_text(key): item for key, item in parsed.attributes.items()}
    schema = attributes.get("schema")
    attributes = {
        k: (v if k == "schema" else to_plain(v, keep_attributes=False))
        for k, v in attributes.items()
    }
    if schema is not None:
        attributes["schema"] = schema
    path = parsed.decode("utf-8") if isinstance(parsed, bytes) else str(parsed)
    _check_selection(attributes, path)
    return RichPath(path=path, attributes=attributes)


def _check_selection(attributes: dict[str, Any], path: str) -> None:
    """``ranges``/limits and ``columns`` of a rich path have the shape YT requires."""
    ranges = attributes.get("ranges")
    if ranges is not None and not (
        isinstance(ranges, list) and all(isinstance(item, dict) for item in ranges)
    ):
        raise InvalidYPath(f"Attribute 'ranges' of {path} must be a list of maps")
    for range_ in [attributes, *(ranges or [])]:
        for key in RANGE_LIMIT_KEYS:
            limit = range_.get(key)
            if limit is None:
                continue
            if not isinstance(limit, dict):
                raise InvalidYPath(f"Read limit {key!r} of {path} must be a map")
            row_index = limit.get("row_index")
            if row_index is not None and (
                isinstance(row_index, bool) or not isinstance(row_index, int)
            ):
                raise InvalidYPath(f"Row index of {path} must be an integer, got {row_index!r}")
    columns = attributes.get("columns")
    if columns is not None and not (
        isinstance(columns, list) and all(isinstance(column, (str, bytes)) for column in columns)
    ):
        raise InvalidYPath(f"Attribute 'columns' of {path} must be a list of column names")


def _read_literal(path: str, position: int) -> tuple[str, int]:
    """Read an escaped YPath literal from ``position`` up to the next unescaped ``/``, ``@`` or ``&``."""
    chars: list[str] = []
    while position < len(path):
        char = path[position]
        if char in "/@&":
            break
        if char == "\\":
            if position + 1 >= len(path):
                raise InvalidYPath(f"Unexpected end of YPath {path!r} in an escape sequence")
            escaped = path[position + 1]
            if escaped == "x":
                digits = path[position + 2 : position + 4]
                try:
                    chars.append(chr(int(digits, 16)))
                except ValueError:
                    raise InvalidYPath(f"Malformed escape sequence in YPath {path!r}") from None
                position += 4
                continue
            chars.append(escaped)
            position += 2
            continue
        chars.append(char)
        position += 1
    return "".join(chars), position


def split_ypath(path: str) -> tuple[str, list[PathToken]]:
    """Split a plain YPath into its root (``"/"`` or ``"#<node-id>"``) and tokens."""
    path = path.strip()
    if path.startswith("#"):
        end = 1
        while end < len(path) and path[end] not in "/&":
            end += 1
        root = path[:end]
        if len(root) == 1:
            raise InvalidYPath(f"Empty object id in YPath {path!r}")
        position = end
    elif path.startswith("/"):
        root = "/"
        position = 1 if path.startswith("//") else 0  # "//a" is "/" + "/a"; "/@x" is "/" + "/@x"
    else:
        raise InvalidYPath(f'Expected "slash" or "hash" at the start of YPath {path!r}')
    tokens: list[PathToken] = []
    in_attribute = False
    while position < len(path):
        char = path[position]
        if char == "&":
            if tokens and tokens[-1].kind == "child":
                tokens[-1] = PathToken("child", tokens[-1].key, keep_link=True)
            position += 1
            continue
        if char != "/":
            raise InvalidYPath(f"Unexpected {char!r} in YPath {path!r}")
        position += 1
        if position < len(path) and path[position] == "@" and not in_attribute:
            key, position = _read_literal(path, position + 1)
            if key:
                tokens.append(PathToken("attribute", key))
                in_attribute = True
            elif position >= len(path):
                tokens.append(PathToken("all_attributes"))
            else:
                raise InvalidYPath(f"Empty attribute name in YPath {path!r}")
            continue
        key, position = _read_literal(path, position)
        if not key:
            if position >= len(path):
                break  # "//" (the root) or a trailing slash
            raise InvalidYPath(f"Empty key in YPath {path!r}")
        tokens.append(PathToken("child", key))
    return root, tokens


def escape_key(key: str) -> str:
    """Escape a child key for use inside a YPath."""
    return "".join("\\" + char if char in _SPECIAL_CHARACTERS else char for char in key)


def join_path(parent: str, key: str) -> str:
    """``//a`` + ``b`` -> ``//a/b``; the root ``/`` + ``a`` -> ``//a``."""
    return f"{parent}/{escape_key(key)}"
