"""Benchmark 1: listing 100,000 keys on one local S3 server (SeaweedFS ``weed mini``), one run.

Ours (``iter_s3_objects``: fast path with fan-out, and sequential), the boto3 paginator,
yt-framework's ``list_s3_files``, ``s5cmd ls`` and obstore (benchmark environment only), each
``--rounds`` times in rotating order; medians reported with ratios, and written to
``BENCHMARKS.md``. Two layouts, each its own section: ``partitioned`` (100 sub-prefixes, section 1)
and ``flat`` (no sub-prefix at all, section 1c: our fan-out cuts at sampled keys, obstore has no
sub-prefixes to fan out over).

    benchmarks/.venv/bin/python benchmarks/listing_speed.py
    benchmarks/.venv/bin/python benchmarks/listing_speed.py --layout flat
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

GROUPS = 100


@dataclass(frozen=True)
class Layout:
    """Where a layout's keys live and how they are named."""

    bucket: str
    prefix: str
    key_format: str  # str.format with index= and group=
    key_pattern: str  # as BENCHMARKS.md shows it
    section: str
    title: str

    def keys(self, count: int) -> list[str]:
        return [self.key_format.format(index=i, group=i % GROUPS) for i in range(count)]


PARTITIONED = Layout(
    "bench-listing",
    "data/",
    "data/{group:03d}/part-{index:07d}.json",
    "data/<000-099>/part-<n>.json",
    "listing_speed",
    "1. Listing 100,000 keys (local S3)",
)
"""100 sub-prefixes, like a partitioned data set."""
FLAT = Layout(
    "bench-flat",
    "flat/",
    "flat/part-{index:07d}.json",
    "flat/part-<n>.json",
    "listing_flat",
    "1c. Listing 100,000 keys of a flat prefix (local S3)",
)
"""No sub-prefix, like a bucket of logs or exports."""
LAYOUTS = {"partitioned": PARTITIONED, "flat": FLAT}


def yt_framework_list(server: SeaweedS3, layout: Layout) -> Callable[[], int]:
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
    return lambda: len(list_s3_files(client, layout.bucket, layout.prefix, logger))


def s5cmd_ls(server: SeaweedS3, layout: Layout) -> Callable[[], int]:
    def run() -> int:
        completed = subprocess.run(
            [
                venv_tool("s5cmd"),
                "--endpoint-url",
                server.endpoint_url,
                "ls",
                f"s3://{layout.bucket}/{layout.prefix}*",
            ],
            env=server.environment(),
            check=True,
            capture_output=True,
        )
        return completed.stdout.count(b"\n")

    return run


def obstore_list(server: SeaweedS3, layout: Layout, fan_out: int) -> Callable[[], int]:
    """obstore (Rust ``object_store``), benchmark environment only: Arrow batches of 1,000 rows,
    sequential or ``fan_out`` threads over the sub-prefixes (its best modes in issue 13)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        layout.bucket,
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
            return count(layout.prefix)
        level = obstore.list_with_delimiter(store, layout.prefix)
        with ThreadPoolExecutor(max_workers=fan_out) as pool:
            return len(level["objects"]) + sum(pool.map(count, level["common_prefixes"]))

    return run


def check_same_as_paginator(client: Any, layout: Layout) -> None:
    """Ours lists exactly what the paginator lists (keys, sizes, etags, times, order)."""
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=layout.bucket, Prefix=layout.prefix
    )
    expected = [
        (entry["Key"], entry["Size"], entry["ETag"].strip('"'), entry["LastModified"])
        for page in pages
        for entry in page.get("Contents", ())
    ]
    listed = [
        (obj.key, obj.size, obj.etag, obj.last_modified)
        for obj in iter_s3_objects(client, layout.bucket, layout.prefix)
    ]
    if listed != expected:
        raise RuntimeError("the fast listing differs from the boto3 paginator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="partitioned")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    layout = LAYOUTS[args.layout]
    bucket, prefix = layout.bucket, layout.prefix

    with seaweed_s3(CACHE_DIR / "weed-listing") as server:
        upload_seconds = ensure_keys(server, bucket, prefix, layout.keys(args.keys))
        if upload_seconds:
            print(f"uploaded {args.keys:,} keys in {upload_seconds:.0f} s", flush=True)
        client = server.client(max_pool_connections=16)
        methods: dict[str, Callable[[], int]] = {
            "ours (`iter_s3_objects`, default: sequential start, then fan-out 8)": ours_lister(
                client, bucket, prefix, None
            ),
            "ours, fast path, sequential (`fan_out=1`)": ours_lister(client, bucket, prefix, 1),
            "boto3 `list_objects_v2` paginator": paginator_lister(client, bucket, prefix),
            "yt-framework `list_s3_files`": yt_framework_list(server, layout),
            "`s5cmd ls` (Go)": s5cmd_ls(server, layout),
            "obstore 0.12 (Rust), sequential, Arrow batches": obstore_list(server, layout, 1),
        }
        if layout is PARTITIONED:  # a flat prefix has no sub-prefixes to fan out over
            methods["obstore 0.12 (Rust), fan-out 8 over CommonPrefixes, Arrow batches"] = (
                obstore_list(server, layout, 8)
            )
        check_same_as_paginator(client, layout)
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
        header_lines(
            " ".join(["benchmarks/.venv/bin/python benchmarks/listing_speed.py", *sys.argv[1:]])
        )
        + f"- Data: {args.keys:,} keys `{layout.key_pattern}` in one bucket of SeaweedFS "
        f"`weed mini` on 127.0.0.1; each method listed all of them, {args.rounds} rounds in "
        "rotating order after one warm-up round; medians. CPU: user + system seconds of the "
        "benchmark process (its threads; s5cmd's process for s5cmd) and of the SeaweedFS process "
        "during each run, medians.\n\n" + table
    )
    print(table)
    if not args.no_write:
        write_section(layout.section, layout.title, body)


if __name__ == "__main__":
    main()
