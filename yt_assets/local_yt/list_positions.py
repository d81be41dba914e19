"""Where a ``set`` puts a value into a YSON list, as Cypress list nodes do.

The last token of a path into a list may be an index (``-1`` is the last item; the item is
replaced), ``end``/``begin`` (append/prepend), or ``before:N``/``after:N`` (insert next to item
``N``, negative ``N`` counting from the end). Anything else, or an index out of range, is a
:class:`~.exceptions.ResolveError` naming it.

Usage::

    items = [1, 2]
    place_in_list(items, "end", 3)        # [1, 2, 3]
    place_in_list(items, "before:0", 0)   # [0, 1, 2, 3]
    place_in_list(items, "-1", 9)         # [0, 1, 2, 9]
"""

from __future__ import annotations

from typing import Any

from .exceptions import ResolveError


def _index(text: str, size: int, token: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ResolveError(f"Invalid list index {token!r}", key=token)
    index = int(text)
    if not -size <= index < size:
        raise ResolveError(f"Index out of range: {token!r} in a list of {size} item(s)", key=token)
    return index % size


def place_in_list(items: list[Any], token: str, value: Any) -> None:
    """Put ``value`` into ``items`` at the position ``token`` names (in place)."""
    if token == "end":
        items.append(value)
    elif token == "begin":
        items.insert(0, value)
    elif token.startswith("before:"):
        items.insert(_index(token[len("before:") :], len(items), token), value)
    elif token.startswith("after:"):
        items.insert(_index(token[len("after:") :], len(items), token) + 1, value)
    else:
        items[_index(token, len(items), token)] = value
