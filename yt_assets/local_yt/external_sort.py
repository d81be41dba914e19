"""An external, stable sort of rows in bounded memory (what a sort operation and the shuffle of a
map_reduce run on).

The input is cut into *runs* of at most ``run_rows`` rows; each run is sorted in memory and spilled
to a binary YSON file; the runs are then merged lazily (:func:`heapq.merge`, at most ``fan_in``
files open at a time; more runs are merged in passes first). At most ``run_rows`` rows, plus one
row per open run, are held at once, whatever the input size. Equal keys keep their input order
(``sorted`` and ``heapq.merge`` are both stable), as in a YT sort.

Usage::

    sorter = ExternalSorter(work_dir, run_rows=2)
    rows = list(sorter.sort([{"k": 3}, {"k": 1}, {"k": 2}], key=lambda row: row["k"]))
    assert rows == [{"k": 1}, {"k": 2}, {"k": 3}] and sorter.run_count == 2
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .formats import YsonFormat
from .interfaces import Row

DEFAULT_RUN_ROWS = 100_000
DEFAULT_FAN_IN = 64
_SPILL_FORMAT = YsonFormat()


class ExternalSorter:
    """Sorts row streams in runs of ``run_rows`` rows spilled under ``work_dir``.

    ``run_count`` (runs spilled) and ``peak_rows_in_memory`` (the largest run held) tell what the
    last :meth:`sort` did; the spilled files are removed once the sorted stream is exhausted.
    """

    def __init__(
        self, work_dir: Path, *, run_rows: int = DEFAULT_RUN_ROWS, fan_in: int = DEFAULT_FAN_IN
    ) -> None:
        self.work_dir = work_dir
        self.run_rows = max(1, run_rows)
        self.fan_in = max(2, fan_in)
        self.run_count = 0
        self.peak_rows_in_memory = 0
        self._names = itertools.count()

    def sort(self, rows: Iterable[Row], key: Callable[[Row], Any]) -> Iterator[Row]:
        """The rows ordered by ``key`` (stable), streamed."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.run_count = 0
        self.peak_rows_in_memory = 0
        runs: list[Path] = []
        iterator = iter(rows)
        while batch := list(itertools.islice(iterator, self.run_rows)):
            self.peak_rows_in_memory = max(self.peak_rows_in_memory, len(batch))
            batch.sort(key=key)
            runs.append(self._spill(batch))
            self.run_count += 1
            del batch
        while len(runs) > self.fan_in:  # bound the open files: merge runs in passes
            group, runs = runs[: self.fan_in], runs[self.fan_in :]
            runs.append(self._spill(self._merge(group, key)))
        return self._merge(runs, key)

    def _spill(self, rows: Iterable[Row]) -> Path:
        path = self.work_dir / f"run{next(self._names)}.yson"
        with open(path, "wb") as stream:
            _SPILL_FORMAT.dump_rows(rows, stream)
        return path

    def _merge(self, runs: list[Path], key: Callable[[Row], Any]) -> Iterator[Row]:
        streams = [open(path, "rb") for path in runs]  # noqa: SIM115 - closed below
        try:
            yield from heapq.merge(*(_SPILL_FORMAT.load_rows(s) for s in streams), key=key)
        finally:
            for stream, path in zip(streams, runs, strict=True):
                stream.close()
                path.unlink(missing_ok=True)
