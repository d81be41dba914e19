"""Iterating in a thread of one's own, a bounded distance ahead of the consumer (no Dagster).

Used where two halves of a pipeline each need the CPU (the listing and the table writer):
:func:`iter_in_background` lets the producer run while the consumer waits on the network.

Example::

    squares = iter_in_background((n * n for n in range(5)), max_ahead=2)
    assert list(squares) == [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Raised", "iter_in_background", "put_unless_stopped"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Raised:
    """An exception of a producer, handed to the consumer in its turn."""

    error: BaseException


def put_unless_stopped(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` into the bounded ``out``, waiting for room unless ``stop`` is set (then
    False)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def iter_in_background(
    items: Iterable[T], *, max_ahead: int, name: str = "background"
) -> Iterator[T]:
    """The items of ``items``, produced by a thread of its own at most ``max_ahead`` ahead.

    The producer's exception is raised after the items before it; closing the iterator (or an
    error of the consumer) stops the thread and closes ``items`` in it, before returning.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=max_ahead)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put_unless_stopped(buffer, item, stop):
                    return
            put_unless_stopped(buffer, end, stop)
        except BaseException as error:  # handed to the consumer, in order
            put_unless_stopped(buffer, Raised(error), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        thread = threading.Thread(target=produce, name=name, daemon=True)
        thread.start()
        try:
            while True:
                item = buffer.get()
                if item is end:
                    return
                if isinstance(item, Raised):
                    raise item.error
                yield item
        finally:
            stop.set()
            thread.join()

    return consume()
