"""One-line descriptions of YT errors, for failure headlines (no Dagster).

A ``yt.YtError`` prints as a tree of messages with attributes (hosts, request ids, traces); a
headline needs its chain of messages and the innermost error code only.

>>> import yt.common
>>> inner = yt.common.YtError("Node //home/x has no child with key \\"t\\"", code=500)
>>> yt_error_line(yt.common.YtError("Error resolving path //home/x/t", inner_errors=[inner]))
'Error resolving path //home/x/t: Node //home/x has no child with key "t" (YT error 500)'
"""

from __future__ import annotations

from typing import Any

__all__ = ["yt_error_line"]

MAX_LINE_CHARS = 500


def yt_error_line(error: Any) -> str:
    """The messages from the outermost to the innermost (first) error, and its code, on one line."""
    messages: list[str] = []
    code = None
    current: Any = error
    while current is not None:
        if isinstance(current, dict):  # inner errors are plain dicts
            message, inner, current_code = (
                current.get("message", ""),
                current.get("inner_errors") or [],
                current.get("code"),
            )
        else:
            message = getattr(current, "message", None) or str(current)
            inner = getattr(current, "inner_errors", None) or []
            current_code = getattr(current, "code", None)
        text = " ".join(str(message).split())
        if text and text not in messages:
            messages.append(text)
        if current_code not in (None, 0, 1):
            code = current_code
        current = inner[0] if inner else None
    line = ": ".join(messages) + (f" (YT error {code})" if code is not None else "")
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
