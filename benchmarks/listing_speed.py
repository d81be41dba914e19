"""Benchmark 1: listing 100,000 keys on one local S3 server (SeaweedFS ``weed mini``), one run.

Ours (``iter_s3_objects``: fast path with fan-out, and sequential), the boto3 paginator,
yt-framework's ``list_s3_files``, ``s5cmd ls`` and obstore (benchmark environment only), each ``--rounds`` times in rotating order;
medians reported with ratios, and written to ``BENCHMARKS.md``.

    benchmarks/.venv/bin/python benchmarks/listing_speed.py
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    ACCESS_KEY,
    CACHE_DIR,
    REGION,
    SECRET_KEY,
    SeaweedS3,
    ensure_keys,
    header_lines,
    markdown_table,
    median,
    ours_lister,
    paginator_lister,
    seaweed_s3,
    time_in_rotation,
    venv_tool,
    write_section,
)

from yt_assets.s3.listing import iter_s3_objects

BUCKET = "bench-listing"
PREFIX = "data/"
GROUPS = 100


def bench_keys(count: int) -> list[str]:
    """``data/<group>/part-<n>.json``: 100 sub-prefixes, like a partitioned data set."""
    return [f"{PREFIX}{index % GROUPS:03d}/part-{index:07d}.json" for index in range(count)]


def yt_framework_list(server: SeaweedS3) -> Callable[[], int]:
    from botocore.client import Config as BotoConfig
    from yt_framework.operations.s3 import list_s3_files
    from ytjobs.s3.client import S3Client, S3ClientOptions

    # yt-framework's own client settings (ytjobs/s3/client.py), except path-style addressing:
    # its default "virtual" would address http://bench-listing.127.0.0.1:PORT, which can't work.
    config = BotoConfig(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 30, "mode": "standard"},
        read_timeout=360,
        max_pool_connections=1,
    )
    client = S3Client(
        server.endpoint_url,
        ACCESS_KEY,
        SECRET_KEY,
        options=S3ClientOptions(region_name=REGION, boto_config=config),
    )
    logger = logging.getLogger("yt_framework_bench")
    return lambda: len(list_s3_files(client, BUCKET, PREFIX, logger))


def s5cmd_ls(server: SeaweedS3) -> Callable[[], int]:
    def run() -> int:
        completed = subprocess.run(
            [
                venv_tool("s5cmd"),
                "--endpoint-url",
                server.endpoint_url,
                "ls",
                f"s3://{BUCKET}/{PREFIX}*",
            ],
            env=server.environment(),
            check=True,
            capture_output=True,
        )
        return completed.stdout.count(b"\n")

    return run


def obstore_list(server: SeaweedS3, fan_out: int) -> Callable[[], int]:
    """obstore (Rust ``object_store``), benchmark environment only: Arrow batches of 1,000 rows,
    sequential or ``fan_out`` threads over the sub-prefixes (its best modes in issue 13)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=server.endpoint_url,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )

    def count(prefix: str) -> int:
        batches = obstore.list(store, prefix, chunk_size=1000, return_arrow=True)
        return sum(batch.num_rows for batch in batches)

    def run() -> int:
        if fan_out == 1:
            return count(PREFIX)
        level = obstore.list_with_delimiter(store, PREFIX)
        with ThreadPoolExecutor(max_workers=fan_out) as pool:
            return len(level["objects"]) + sum(pool.map(count, level["common_prefixes"]))

    return run


def check_same_as_paginator(client: Any) -> None:
    """Ours lists exactly what the paginator lists (keys, sizes, etags, times, order)."""
    expected = [
        (entry["Key"], entry["Size"], entry["ETag"].strip('"'), entry["LastModified"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        for entry in page.get("Contents", ())
    ]
    listed = [
        (obj.key, obj.size, obj.etag, obj.last_modified)
        for obj in iter_s3_objects(client, BUCKET, PREFIX)
    ]
    if listed != expected:
        raise RuntimeError("the fast listing differs from the boto3 paginator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with seaweed_s3(CACHE_DIR / "weed-listing") as server:
        upload_seconds = ensure_keys(server, BUCKET, PREFIX, bench_keys(args.keys))
        if upload_seconds:
            print(f"uploaded {args.keys:,} keys in {upload_seconds:.0f} s", flush=True)
        client = server.client(max_pool_connections=16)
        methods: dict[str, Callable[[], int]] = {
            "ours (`iter_s3_objects`, default: sequential start, then fan-out 8)": ours_lister(
                client, BUCKET, PREFIX, None
            ),
            "ours, fast path, sequential (`fan_out=1`)": ours_lister(client, BUCKET, PREFIX, 1),
            "boto3 `list_objects_v2` paginator": paginator_lister(client, BUCKET, PREFIX),
            "yt-framework `list_s3_files`": yt_framework_list(server),
            "`s5cmd ls` (Go)": s5cmd_ls(server),
            "obstore 0.12 (Rust), sequential, Arrow batches": obstore_list(server, 1),
            "obstore 0.12 (Rust), fan-out 8 over CommonPrefixes, Arrow batches": obstore_list(
                server, 8
            ),
        }
        check_same_as_paginator(client)
        timings = time_in_rotation(methods, args.rounds, args.keys, server_pid=server.pid)

    seconds = timings.wall
    medians = {name: median(values) for name, values in seconds.items()}
    paginator = medians["boto3 `list_objects_v2` paginator"]
    s5cmd = medians["`s5cmd ls` (Go)"]
    rows = [
        [
            name,
            f"{medians[name]:.2f}",
            " / ".join(f"{value:.2f}" for value in seconds[name]),
            f"{args.keys / medians[name]:,.0f}",
            f"{paginator / medians[name]:.2f}x",
            f"{s5cmd / medians[name]:.2f}x",
            f"{median(timings.client_cpu[name]):.2f}",
            f"{median(timings.server_cpu[name]):.2f}",
        ]
        for name in methods
    ]
    table = markdown_table(
        [
            "method",
            "median s",
            "all runs s",
            "keys/s",
            "speed vs boto3 paginator",
            "speed vs s5cmd",
            "client CPU s",
            "server CPU s",
        ],
        rows,
    )
    body = (
        header_lines("benchmarks/.venv/bin/python benchmarks/listing_speed.py")
        + f"- Data: {args.keys:,} keys `{PREFIX}<000-099>/part-<n>.json` in one bucket of SeaweedFS "
        f"`weed mini` on 127.0.0.1; each method listed all of them, {args.rounds} rounds in "
        "rotating order after one warm-up round; medians. CPU: user + system seconds of the "
        "benchmark process (its threads; s5cmd's process for s5cmd) and of the SeaweedFS process "
        "during each run, medians.\n\n" + table
    )
    print(table)
    if not args.no_write:
        write_section("listing_speed", "1. Listing 100,000 keys (local S3)", body)


if __name__ == "__main__":
    main()
