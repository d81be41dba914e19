"""Benchmark: a ``sort`` of N listing rows in the local YT, through the real YtClient.

The sort is external (runs of ``DEFAULT_RUN_ROWS`` rows spilled to disk, then merged), so the
server's peak RSS should not grow with the row count: two sizes run side by side, each on a fresh
server, and the server's VmHWM is read after the write and again after the sort.

    .venv/bin/python benchmarks/local_yt_sort.py --rows 1000000 --small-rows 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yt.wrapper as yt
from bench_common import header_lines, markdown_table, write_section
from local_yt_tables import listing_rows, peak_rss_mb

from yt_assets.local_yt import LocalYT
from yt_assets.local_yt.external_sort import DEFAULT_RUN_ROWS

SORT_BY = ["size", "path"]  # the listing comes in path order: this order shuffles it


def run_once(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as root, LocalYT(root=Path(root)) as local_yt:
        client, pid = local_yt.client(), local_yt.pid
        assert pid is not None
        source, destination = "//tmp/bench/listing", "//tmp/bench/sorted"
        client.create("table", source, recursive=True)
        client.write_table(yt.TablePath(source, append=True), listing_rows(rows))
        after_write = peak_rss_mb(pid)
        started = time.perf_counter()
        client.run_sort(source, destination, sort_by=SORT_BY)
        seconds = time.perf_counter() - started
        after_sort = peak_rss_mb(pid)
        assert client.get(destination + "/@row_count") == rows
        assert client.get(destination + "/@sorted_by") == SORT_BY
    return {"rows": rows, "seconds": seconds, "after_write": after_write, "after_sort": after_sort}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    args = parser.parse_args()
    results = [run_once(rows) for rows in (args.small_rows, args.rows)]
    table = markdown_table(
        ["rows", "sort s", "rows/s", "server peak RSS after write, MB", "after sort, MB"],
        [
            [
                f"{r['rows']:,}",
                f"{r['seconds']:.1f}",
                f"{r['rows'] / r['seconds']:,.0f}",
                f"{r['after_write']:.0f}",
                f"{r['after_sort']:.0f}",
            ]
            for r in results
        ],
    )
    body = (
        header_lines(f".venv/bin/python benchmarks/local_yt_sort.py --rows {args.rows}")
        + f"- Data: listing rows (5 columns, weak schema), sorted by {SORT_BY}; external sort runs of "
        f"{DEFAULT_RUN_ROWS:,} rows; one run per size, each on a fresh server.\n\n" + table
    )
    print(body)
    write_section("local_yt_sort", "Sorting in the local YT", body)


if __name__ == "__main__":
    main()
