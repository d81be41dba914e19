"""Benchmark 2: listing 1,000,000 S3 keys into a YT table on the local YT, wall time and peak RSS.

Ours: ``save_s3_paths_to_table(yt, bucket, iter_s3_objects(...), table)`` (rows streamed from
S3 pages into ``write_table``). yt-framework: ``list_s3_files`` then ``save_s3_paths_to_table``
(yt_framework/operations/s3.py) with its production client ``YTProdClient`` pointed at the same
local YT proxy. Each runs in a child process of its own (its peak RSS is the child's VmHWM), in
alternating order, ``--rounds`` times. S3 is SeaweedFS ``weed mini`` on 127.0.0.1; the local YT
server runs in its own process.

    benchmarks/.venv/bin/python benchmarks/listing_to_table.py
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    ACCESS_KEY,
    CACHE_DIR,
    REGION,
    SECRET_KEY,
    count_keys,
    ensure_keys,
    header_lines,
    markdown_table,
    median,
    peak_rss_mb,
    run_child,
    seaweed_s3,
    write_section,
)

BUCKET = "bench-table"
PREFIX = "events/"
GROUPS = 100


def bench_keys(count: int) -> list[str]:
    return [f"{PREFIX}{index % GROUPS:03d}/part-{index:08d}.json" for index in range(count)]


def s3_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


def child_ours(endpoint_url: str, proxy_url: str, table: str) -> dict[str, Any]:
    import yt.wrapper as yt

    from yt_assets.s3.listing import iter_s3_objects
    from yt_assets.yt.tables import save_s3_paths_to_table

    client = s3_client(endpoint_url)
    yt_client = yt.YtClient(
        proxy=proxy_url, token="bench", config={"proxy": {"enable_proxy_discovery": False}}
    )
    logger = logging.getLogger("ours")
    started = time.perf_counter()
    objects = iter_s3_objects(client, BUCKET, PREFIX, logger=logger)
    rows = save_s3_paths_to_table(yt_client, BUCKET, objects, table, logger)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def child_list_only(endpoint_url: str, proxy_url: str, table: str) -> dict[str, Any]:
    """Listing alone: ``iter_s3_objects`` consumed, nothing written."""
    from yt_assets.s3.listing import iter_s3_objects

    client = s3_client(endpoint_url)
    started = time.perf_counter()
    rows = sum(1 for _ in iter_s3_objects(client, BUCKET, PREFIX))
    return {"rows": rows, "seconds": time.perf_counter() - started, "writes": False}


def child_write_only(endpoint_url: str, proxy_url: str, table: str) -> dict[str, Any]:
    """Writing alone: ``save_s3_paths_to_table`` of the same keys in the same (key) order,
    generated in memory instead of listed."""
    import yt.wrapper as yt

    from yt_assets.yt.tables import save_s3_paths_to_table

    yt_client = yt.YtClient(
        proxy=proxy_url, token="bench", config={"proxy": {"enable_proxy_discovery": False}}
    )
    count = int(os.environ["BENCH_KEYS"])
    keys = (
        f"{PREFIX}{group:03d}/part-{index:08d}.json"
        for group in range(GROUPS)
        for index in range(group, count, GROUPS)
    )
    started = time.perf_counter()
    rows = save_s3_paths_to_table(yt_client, BUCKET, keys, table)
    return {"rows": rows, "seconds": time.perf_counter() - started}


OPERATION_JOBS = 4
"""``listing_jobs`` of the operation-mode row (jobs are processes on the local YT: 2 CPUs)."""


def child_asset(
    endpoint_url: str, proxy_url: str, table: str, listing_jobs: int | None = None
) -> dict[str, Any]:
    """The Dagster ``s3_listing`` asset (``build_s3_listing_asset``) materialised into ``table``
    through ``YTTableIOManager``: the listing table's 5 columns, Dagster included; with
    ``listing_jobs``, in its ``yt_operation`` listing mode (one map operation of that many
    jobs lists the key ranges, then a sort)."""
    import dagster as dg
    from dagster_aws.s3 import S3Resource

    from yt_assets.assets import build_s3_listing_asset
    from yt_assets.io_manager import YTTableIOManager
    from yt_assets.resources import YTResource

    root, _, name = table.rpartition("/")
    asset = build_s3_listing_asset(name, bucket=BUCKET, prefix=PREFIX)
    yt_cluster = YTResource(proxy=proxy_url, token="bench")
    resources = {
        "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root=root),
        "yt_cluster": yt_cluster,
        "s3": S3Resource(
            endpoint_url=endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        ),
    }
    started = time.perf_counter()
    config = {"listing_mode": "yt_operation", "listing_jobs": listing_jobs} if listing_jobs else {}
    run_config = {"ops": {name: {"config": config}}} if config else None
    result = dg.materialize([asset], resources=resources, run_config=run_config)
    seconds = time.perf_counter() - started
    metadata = result.asset_materializations_for_node(name)[0].metadata
    return {"rows": metadata["dagster/row_count"].value, "seconds": seconds}


def child_yt_framework(endpoint_url: str, proxy_url: str, table: str) -> dict[str, Any]:
    from botocore.client import Config as BotoConfig
    from yt_framework.operations.s3 import list_s3_files, save_s3_paths_to_table
    from yt_framework.yt.factory import create_yt_client
    from ytjobs.s3.client import S3Client, S3ClientOptions

    logger = logging.getLogger("yt_framework")
    # yt-framework's S3 client settings, except path-style addressing (its "virtual" default
    # can't address a bucket on 127.0.0.1).
    config = BotoConfig(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 30, "mode": "standard"},
        read_timeout=360,
        max_pool_connections=1,
    )
    client = S3Client(
        endpoint_url,
        ACCESS_KEY,
        SECRET_KEY,
        options=S3ClientOptions(region_name=REGION, boto_config=config),
    )
    yt_client = create_yt_client(
        logger, mode="prod", secrets={"YT_PROXY": proxy_url, "YT_TOKEN": "bench"}
    )
    started = time.perf_counter()
    paths = list_s3_files(client, BUCKET, PREFIX, logger)
    listed = time.perf_counter() - started
    save_s3_paths_to_table(yt_client, BUCKET, paths, table, logger)
    return {"rows": len(paths), "seconds": time.perf_counter() - started, "list_seconds": listed}


LABELS = {
    "ours": "ours: `iter_s3_objects` streamed into `save_s3_paths_to_table` (overlapped)",
    "before": "before (the baseline checkout, `--baseline-src`: same call)",
    "list-only": "ours, listing alone (`iter_s3_objects`, nothing written)",
    "write-only": "ours, writing alone (`save_s3_paths_to_table` of keys made in memory)",
    "asset": "ours, the Dagster `s3_listing` asset (5 columns, `dg.materialize`, overlapped)",
    "asset-before": "the `s3_listing` asset in the baseline checkout (`--baseline-src`)",
    "asset-operation": "ours, the `s3_listing` asset, `listing_mode: yt_operation`, "
    f"`listing_jobs: {OPERATION_JOBS}` (a map operation, then a sort)",
    "yt-framework": "yt-framework: `list_s3_files` + `save_s3_paths_to_table`, `YTProdClient`",
}

CHILDREN = {
    "ours": child_ours,
    "before": child_ours,
    "list-only": child_list_only,
    "write-only": child_write_only,
    "asset": child_asset,
    "asset-before": child_asset,
    "asset-operation": lambda *args: child_asset(*args, listing_jobs=OPERATION_JOBS),
    "yt-framework": child_yt_framework,
}


def run_as_child(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    child = CHILDREN[args.child]
    result = child(args.endpoint_url, args.proxy_url, args.table)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--framework-rounds", type=int, default=1)
    parser.add_argument("--use-existing", action="store_true", help="the keys already there")
    parser.add_argument(
        "--baseline-src", help="a checkout whose yt_assets runs as the 'before' row (e.g. main)"
    )
    parser.add_argument("--populate-only", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint-url", help=argparse.SUPPRESS)
    parser.add_argument("--proxy-url", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_as_child(args)
        return

    from yt_assets.local_yt import LocalYT

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in LABELS}
    server_peak_mb = float("nan")
    with seaweed_s3(CACHE_DIR / "weed-table") as server:
        if args.use_existing:  # whatever an interrupted --populate-only left: keys 0..N-1
            args.keys = count_keys(server.client(), BUCKET, PREFIX)
        upload_seconds = ensure_keys(server, BUCKET, PREFIX, bench_keys(args.keys))
        if upload_seconds:
            print(f"uploaded {args.keys:,} keys in {upload_seconds:.0f} s", flush=True)
        if args.populate_only:
            return
        with tempfile.TemporaryDirectory() as root, LocalYT(root=Path(root)) as local_yt:
            check = local_yt.client()
            names = list(LABELS)
            for round_index in range(args.rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    if name == "yt-framework" and round_index >= args.framework_rounds:
                        continue
                    if name.endswith("before") and not args.baseline_src:
                        continue
                    environment = {**os.environ, "BENCH_KEYS": str(args.keys)}
                    if name.endswith("before"):
                        environment["PYTHONPATH"] = args.baseline_src
                    table = f"//home/bench/{name.replace('-', '_')}_{round_index}/paths"
                    result = run_child(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            name,
                            "--endpoint-url",
                            server.endpoint_url,
                            "--proxy-url",
                            local_yt.proxy_url,
                            "--table",
                            table,
                        ],
                        env=environment,
                    )
                    row_count = (
                        args.keys if name == "list-only" else check.get(f"{table}/@row_count")
                    )
                    if result["rows"] != args.keys or row_count != args.keys:
                        raise RuntimeError(
                            f"{name}: {result['rows']} listed, {row_count} in {table}"
                        )
                    if name != "list-only":
                        check.remove(table)
                    results[name].append(result)
                    print(f"round {round_index + 1}: {name}: {result}", flush=True)
            assert local_yt.pid is not None
            for line in Path(f"/proc/{local_yt.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    server_peak_mb = int(line.split()[1]) / 1024

    ours_s = median([r["seconds"] for r in results["ours"]])
    reference = "yt-framework" if results["yt-framework"] else "before"
    theirs_s = median([r["seconds"] for r in results[reference]])
    alone_s = max(
        median([r["seconds"] for r in results["list-only"]]),
        median([r["seconds"] for r in results["write-only"]]),
    )
    rows = []
    for name, label in LABELS.items():
        if not results[name]:
            continue
        seconds = median([r["seconds"] for r in results[name]])
        peak = max(r["peak_rss_mb"] for r in results[name])
        rows.append(
            [
                label,
                f"{seconds:.1f}",
                " / ".join(f"{r['seconds']:.1f}" for r in results[name]),
                f"{args.keys / seconds:,.0f}",
                f"{peak:.0f}",
                f"{theirs_s / seconds:.2f}x",
            ]
        )
    table = markdown_table(
        [
            "method",
            "median wall s",
            "all runs s",
            "keys/s",
            "peak RSS MB (max)",
            f"speed vs {reference}",
        ],
        rows,
    )
    framework_listing = (
        f"- yt-framework spent "
        f"{median([r['list_seconds'] for r in results['yt-framework']]):.1f} s (median) in "
        "`list_s3_files` alone; the local "
        if results["yt-framework"]
        else "- The local "
    )
    body = (
        header_lines(
            "benchmarks/.venv/bin/python benchmarks/listing_to_table.py " + " ".join(sys.argv[1:])
        )
        + f"- Data: {args.keys:,} keys `{PREFIX}<000-099>/part-<n>.json` on SeaweedFS `weed mini`"
        f" (127.0.0.1), into a `{{bucket, path}}` table on the local YT (`yt_assets.local_yt`, its "
        f"own process); each method in a child process, {args.rounds} rounds in rotating order "
        + (
            f"(yt-framework: {min(args.rounds, args.framework_rounds)}, it is slow); "
            if args.framework_rounds
            else "(yt-framework not run: `--framework-rounds 0`); "
        )
        + "wall time from the start of listing to the committed table; peak RSS is the child's "
        "VmHWM (Python, boto3, yt.wrapper included).\n"
        + framework_listing
        + f"YT server's own peak RSS over the run: {server_peak_mb:.0f} MB.\n"
        f"- Ours listing and writing together vs the slower of the two alone: {ours_s:.1f} s vs "
        f"{alone_s:.1f} s ({ours_s / alone_s:.2f}x).\n\n" + table
    )
    print(table)
    print(f"ours {ours_s:.1f} s vs {reference} {theirs_s:.1f} s")
    if not args.no_write:
        write_section("listing_to_table", "2. Listing 1,000,000 keys into a YT table", body)


if __name__ == "__main__":
    main()
