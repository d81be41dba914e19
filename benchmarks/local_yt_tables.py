"""Benchmark: write and read back N listing rows through the real YtClient against the local YT.

Reports rows/s both ways and the server's peak RSS (VmHWM) after each phase, for two sizes in one
run, so that "memory flat in the row count" is shown side by side.

    .venv/bin/python benchmarks/local_yt_tables.py --rows 1000000 --small-rows 100000
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema

from yt_assets.local_yt import LocalYT
from yt_assets.yt.schemas import LISTING_COLUMNS, yt_schema


def listing_rows(count: int) -> Iterator[dict[str, Any]]:
    """Rows in key order (the listing schema is sorted by ``(bucket, path)``)."""
    base = 1_764_000_000_000_000
    for index in range(count):
        yield {
            "bucket": "bench-bucket",
            "path": f"events/2026-11-{index * 28 // count + 1:02d}/part-{index:09d}.json",
            "size": 1000 + index % 5000,
            "etag": f"{index:032x}",
            "last_modified": base + index,
        }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(client: yt.YtClient, pid: int, rows: int, schema: TableSchema) -> dict[str, float]:
    path = f"//tmp/bench/table_{rows}"
    client.create(
        "table", path, recursive=True, force=True, attributes={"schema": schema.to_yson_type()}
    )
    started = time.perf_counter()
    client.write_table(yt.TablePath(path, append=True), listing_rows(rows))
    write_seconds = time.perf_counter() - started
    peak_after_write = peak_rss_mb(pid)
    started = time.perf_counter()
    read = sum(1 for _ in client.read_table(path))
    read_seconds = time.perf_counter() - started
    assert read == rows, (read, rows)
    return {
        "rows": rows,
        "write_rows_per_s": rows / write_seconds,
        "read_rows_per_s": rows / read_seconds,
        "server_peak_rss_mb_after_write": peak_after_write,
        "server_peak_rss_mb_after_read": peak_rss_mb(pid),
        "server_rss_mb_now": current_rss_mb(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    args = parser.parse_args()
    schema = yt_schema(LISTING_COLUMNS)
    print(
        f"# local YT tables benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"python {platform.python_version()}"
    )
    for rows in (args.small_rows, args.rows):
        # A fresh server per size, so each peak RSS belongs to one size only.
        with tempfile.TemporaryDirectory() as root, LocalYT(root=Path(root)) as local_yt:
            client = local_yt.client()
            result = run_once(client, local_yt.pid, rows, schema)
        print(
            f"rows={result['rows']:>9,}  write {result['write_rows_per_s']:>9,.0f} rows/s  "
            f"read {result['read_rows_per_s']:>9,.0f} rows/s  server peak RSS "
            f"{result['server_peak_rss_mb_after_write']:.0f} MB after write, "
            f"{result['server_peak_rss_mb_after_read']:.0f} MB after read"
        )


if __name__ == "__main__":
    main()
