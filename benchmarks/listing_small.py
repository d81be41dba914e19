"""Benchmark 1b: small and medium listings on two local S3 servers (issue 13 item 0).

No listing may be slower than the boto3 paginator on any server: the default (a sequential
start, then fan-out) is timed next to our sequential fast path and the paginator, on moto's
server (Python, its own process, one CPU: parallel requests only queue) and on SeaweedFS
``weed mini``, for listings of a few pages up to a few dozen, keys spread over 10 sub-prefixes.
Each size is its own bucket; ``--rounds`` rounds in rotating order after a warm-up; medians.

    benchmarks/.venv/bin/python benchmarks/listing_small.py
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    CACHE_DIR,
    SeaweedS3,
    ensure_keys,
    header_lines,
    markdown_table,
    median,
    moto_s3,
    ours_lister,
    paginator_lister,
    seaweed_s3,
    time_in_rotation,
    write_section,
)

PREFIX = "data/"
GROUPS = 10
SIZES = (2_000, 5_000, 20_000)


def bench_keys(count: int) -> list[str]:
    """``data/<group>/part-<n>.json``: 10 sub-prefixes."""
    return [f"{PREFIX}{index % GROUPS:02d}/part-{index:07d}.json" for index in range(count)]


def bucket_name(count: int) -> str:
    return f"small-{count}"


def methods(client: Any, bucket: str) -> dict[str, Callable[[], int]]:
    return {
        "ours, default": ours_lister(client, bucket, PREFIX, None),
        "ours, sequential (`fan_out=1`)": ours_lister(client, bucket, PREFIX, 1),
        "boto3 paginator": paginator_lister(client, bucket, PREFIX),
    }


@contextlib.contextmanager
def server_named(name: str) -> Iterator[SeaweedS3]:
    if name == "moto":
        with moto_s3() as server:
            yield server
    else:
        with seaweed_s3(CACHE_DIR / "weed-small") as server:
            yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = []
    for server_label, name in (("moto server", "moto"), ("SeaweedFS `weed mini`", "seaweedfs")):
        with server_named(name) as server:
            client = server.client(max_pool_connections=16)
            for size in args.sizes:
                ensure_keys(server, bucket_name(size), PREFIX, bench_keys(size))
                runs = time_in_rotation(methods(client, bucket_name(size)), args.rounds, size).wall
                medians = {name: median(values) for name, values in runs.items()}
                paginator = medians["boto3 paginator"]
                for method, value in medians.items():
                    rows.append(
                        [
                            server_label,
                            f"{size:,}",
                            method,
                            f"{value:.3f}",
                            f"{paginator / value:.2f}x",
                        ]
                    )
                    print(rows[-1], flush=True)
    table = markdown_table(["server", "keys", "method", "median s", "speed vs the paginator"], rows)
    body = (
        header_lines("benchmarks/.venv/bin/python benchmarks/listing_small.py")
        + f"- Data: per size one bucket of `{PREFIX}<00-09>/part-<n>.json` (10 sub-prefixes), "
        f"pages of 1,000 keys; {args.rounds} rounds in rotating order after one warm-up; "
        "medians.\n\n" + table
    )
    print(table)
    if not args.no_write:
        write_section("listing_small", "1b. Small and medium listings on two servers", body)


if __name__ == "__main__":
    main()
