"""Cluster-wide commands of the local YT: ``generate_timestamp`` and ``get_supported_features``.

Timestamps are built as YT builds them (unix seconds in the bits above bit 30, a counter below),
strictly increasing within one server. The supported features name what this server accepts:
the primitive column types of its schemas and no chunk compression or erasure codec but
``none``.

Usage::

    timestamps = TimestampGenerator()
    first, second = timestamps.next(), timestamps.next()
    assert second > first and first >> 30 > 1_600_000_000
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .tables import PRIMITIVE_TYPES

TIMESTAMP_COUNTER_BITS = 30
_V1_NAMES = {"bool": "boolean", "yson": "any"}


TIMESTAMPS: TimestampGenerator


class TimestampGenerator:
    """Strictly increasing YT timestamps (``unix_seconds << 30 | counter``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            candidate = int(time.time()) << TIMESTAMP_COUNTER_BITS
            self._last = max(candidate, self._last + 1)
            return self._last


def supported_features() -> dict[str, Any]:
    """The ``features`` map of ``get_supported_features``."""
    return {
        # Named as YT's simple logical types are (type_v1 names: boolean, any).
        "primitive_types": sorted(_V1_NAMES.get(name, name) for name in PRIMITIVE_TYPES),
        "compression_codecs": ["none"],
        "erasure_codecs": ["none"],
    }


TIMESTAMPS = TimestampGenerator()  # one per server process
