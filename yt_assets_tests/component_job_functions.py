"""A processor named by reference in a test ``defs.yaml`` (``processor: module:function``). It runs
inside YT jobs, in the bare job interpreter: this module imports nothing but the standard library."""

from __future__ import annotations

from typing import Any


def count_braces(body: Any, *, key: str) -> dict[str, Any]:
    """Counts ``{`` in the object."""
    data = body.read()
    return {"braces": data.count(b"{"), "key_length": len(key)}
