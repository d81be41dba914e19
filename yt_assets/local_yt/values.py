"""Values shared by every layer of the local YT: object ids, the one YSON-to-plain-Python
conversion, the control-row rule, and flags as YT passes them.

Example::

    import yt.yson as yson

    assert to_plain({b"a": [yson.YsonEntity(), b"x"]}) == {"a": [None, "x"]}
    assert is_control_row(yson.to_yson_type(None, attributes={"table_index": 1}))
    assert not is_control_row({"a": 1})
    assert as_bool("true") and not as_bool(None) and as_bool(None, default=True)
    assert new_object_id(0x191).split("-")[2] == "191"
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Literal

import yt.yson as yson

__all__ = ["as_bool", "is_control_row", "new_object_id", "plain_key", "to_plain"]


def new_object_id(type_code: int) -> str:
    """A YT-looking object id: four hex parts, the third carrying the object type."""
    parts = [secrets.randbits(32), secrets.randbits(32) | 1, type_code, secrets.randbits(32)]
    return "-".join(f"{part:x}" for part in parts)


def plain_key(key: Any) -> str:
    """A YSON map key (or id) as ``str``."""
    return key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)


def to_plain(
    value: Any,
    *,
    keep_attributes: bool = True,
    undecodable: Literal["keep", "replace"] = "keep",
) -> Any:
    """A decoded YSON value as plain Python: ``str`` strings and keys, ``None`` for entities,
    ``bool``/``int``/``float`` scalars, ``dict``/``list`` containers.

    Strings that are not UTF-8 stay ``bytes`` (``undecodable="keep"``) or get U+FFFD
    (``"replace"``, for messages). Attributes (of rich paths, formats) are kept on a ``yt.yson``
    type when ``keep_attributes``, else dropped.
    """
    attributes = getattr(value, "attributes", None) if keep_attributes else None
    plain: Any
    if isinstance(value, yson.YsonEntity) or value is None:
        plain = None
    elif isinstance(value, bool | yson.YsonBoolean):
        plain = bool(value)
    elif isinstance(value, bytes):
        try:
            plain = value.decode("utf-8")
        except UnicodeDecodeError:
            plain = bytes(value) if undecodable == "keep" else value.decode("utf-8", "replace")
    elif isinstance(value, str):
        plain = str(value)
    elif isinstance(value, int):
        plain = int(value)
    elif isinstance(value, float):
        plain = float(value)
    elif isinstance(value, Mapping):
        plain = {
            plain_key(k): to_plain(v, keep_attributes=keep_attributes, undecodable=undecodable)
            for k, v in value.items()
        }
    elif isinstance(value, list | tuple):
        plain = [
            to_plain(item, keep_attributes=keep_attributes, undecodable=undecodable)
            for item in value
        ]
    else:
        plain = value
    if attributes:
        return yson.to_yson_type(
            plain,
            attributes={
                plain_key(k): to_plain(v, undecodable=undecodable) for k, v in attributes.items()
            },
        )
    return plain


def is_control_row(row: Any) -> bool:
    """Whether an item of a table stream is a control row, as in YT: an entity carrying control
    attributes (``<table_index=1>#``; decoded with ``always_create_attributes=False`` it is a
    ``YsonEntity``). A bare entity (``#``, decoded as ``None``) is neither a row nor a control
    row: writing it fails as a row that is not a map."""
    return isinstance(row, yson.YsonEntity)


def as_bool(value: Any, default: bool = False) -> bool:
    """A flag as YT passes it: ``true``/``false`` strings (any case), YSON booleans, or missing."""
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)
