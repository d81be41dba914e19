"""Benchmark 3: processing S3 objects in a map job with 20 ms added to every S3 request.

2,000 small objects (about 2 KB of JSON lines) and 20 objects of 50 MB on SeaweedFS ``weed
mini``, read through a delay proxy on 127.0.0.1 (``delay_proxy.py``) that holds every request
20 ms. Ours: the job entry point ``S3ObjectMapper`` (``process_rows``: several downloads in
flight, bodies streamed in 1 MiB chunks). The baseline: a sequential yt-framework-style mapper,
one ``ytjobs.s3.client.S3Client.download`` (whole body in memory) per row, then the same
``process_object`` over the bytes. Every job is a child process (its peak RSS is its VmHWM).
Then the same ``S3ObjectMapper`` runs end to end as a real map operation of the local YT
(``yt_assets.yt.operations.start_map``: packing and shipping the job, the scheduler, the job's
start and the output's commit included), one job, ``--operation-runs`` times (median).

    benchmarks/.venv/bin/python benchmarks/processing_latency.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
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
    header_lines,
    markdown_table,
    median,
    peak_rss_mb,
    run_child,
    seaweed_s3,
    write_section,
)
from delay_proxy import DelayProxy

BUCKET = "bench-processing"
SMALL_COUNT = 2000
LARGE_COUNT = 20
LARGE_BYTES = 50 * 1024 * 1024


def workload_keys(workload: str) -> list[str]:
    if workload == "small":
        return [f"small/obj-{index:05d}.jsonl" for index in range(SMALL_COUNT)]
    return [f"large/blob-{index:02d}.bin" for index in range(LARGE_COUNT)]


def small_body(index: int) -> bytes:
    return b"".join(
        json.dumps({"id": index, "line": line, "text": "x" * 40}).encode() + b"\n"
        for line in range(30)
    )


def ensure_objects(server: SeaweedS3) -> None:
    client = server.client(max_pool_connections=16)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    present = {
        entry["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for entry in page.get("Contents", ())
    }
    uploads: list[tuple[str, bytes | None]] = []
    for index, key in enumerate(workload_keys("small")):
        if key not in present:
            uploads.append((key, small_body(index)))
    for key in workload_keys("large"):
        if key not in present:
            uploads.append((key, None))

    def upload(item: tuple[str, bytes | None]) -> None:
        key, body = item
        if body is None:
            body = (os.urandom(1024) + b"\n") * (LARGE_BYTES // 1025) + b"e" * (LARGE_BYTES % 1025)
        client.put_object(Bucket=BUCKET, Key=key, Body=body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, uploads))
    if uploads:
        print(f"uploaded {len(uploads)} objects", flush=True)


def job_rows(workload: str) -> Iterator[dict[str, str]]:
    for key in workload_keys(workload):
        yield {"bucket": BUCKET, "path": key}


def ours_job(endpoint_url: str, workload: str, in_flight: int) -> Iterator[dict[str, Any]]:
    from yt_assets.yt_jobs.s3_processing import S3Credentials, S3ObjectMapper

    os.environ.update(
        {
            S3Credentials.ACCESS_KEY_VARIABLE: ACCESS_KEY,
            S3Credentials.SECRET_KEY_VARIABLE: SECRET_KEY,
        }
    )
    mapper = S3ObjectMapper(
        endpoint_url=endpoint_url, region_name=REGION, downloads_in_flight=in_flight
    )
    return mapper(job_rows(workload))


def sequential_job(endpoint_url: str, workload: str) -> Iterator[dict[str, Any]]:
    """yt-framework style: one whole-body download per row, in order, then the processing."""
    from botocore.client import Config as BotoConfig
    from ytjobs.s3.client import S3Client, S3ClientOptions

    from yt_assets.yt_jobs.s3_processing import process_object

    config = BotoConfig(
        s3={"addressing_style": "path"},  # ytjobs' default "virtual" can't reach 127.0.0.1
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
    for row in job_rows(workload):
        data = client.download(row["bucket"], row["path"])
        yield {**row, **process_object(io.BytesIO(data), key=row["path"])}


def operation_run(
    client: Any, source: str, endpoint_url: str, in_flight: int, run: int
) -> dict[str, Any]:
    """One map operation of ``S3ObjectMapper`` (one job) over ``source``, timed from the call
    to ``start_map`` (which packs and ships the job) until the output is committed."""
    import yt.wrapper as yt

    from yt_assets.yt.operations import MapSettings, start_map
    from yt_assets.yt.schemas import PROCESSED_COLUMNS, yt_schema
    from yt_assets.yt_jobs.s3_processing import S3Credentials, S3ObjectMapper

    mapper = S3ObjectMapper(
        endpoint_url=endpoint_url, region_name=REGION, downloads_in_flight=in_flight
    )
    destination = f"{source}.out{run}"
    started = time.perf_counter()
    operation = start_map(
        client,
        mapper,
        source,
        destination,
        yt_schema(PROCESSED_COLUMNS),
        MapSettings(job_count=1),
        secure_vault=S3Credentials(ACCESS_KEY, SECRET_KEY).secure_vault(),
    )
    submitted = time.perf_counter()
    operation.wait(print_progress=False)
    seconds = time.perf_counter() - started
    count = size = errors = 0
    for row in client.read_table(yt.TablePath(destination, columns=["size", "error"])):
        count += 1
        size += row.get("size") or 0
        errors += row.get("error") is not None
    return {
        "objects": count,
        "bytes": size,
        "errors": errors,
        "seconds": seconds,
        "start_map_seconds": submitted - started,
    }


def operation_results(
    endpoint_url: str, in_flights: list[int], runs: int
) -> list[tuple[str, int, dict[str, Any]]]:
    """Medians of ``runs`` operations per workload and downloads in flight, on a fresh local YT."""
    from yt_assets.local_yt import LocalYT

    results = []
    with tempfile.TemporaryDirectory() as root, LocalYT(root=Path(root)) as local_yt:
        client = local_yt.client()
        for workload in ("small", "large"):
            source = f"//tmp/bench/{workload}_listing"
            client.create("map_node", "//tmp/bench", recursive=True, ignore_existing=True)
            client.write_table(source, list(job_rows(workload)))
            for in_flight in in_flights:
                measured = [
                    operation_run(client, source, endpoint_url, in_flight, run)
                    for run in range(runs)
                ]
                for result in measured:
                    expected = SMALL_COUNT if workload == "small" else LARGE_COUNT
                    if result["objects"] != expected or result["errors"]:
                        raise RuntimeError(f"operation on {workload}: {result}")
                summary = {
                    "objects": measured[0]["objects"],
                    "bytes": measured[0]["bytes"],
                    "seconds": median([r["seconds"] for r in measured]),
                    "start_map_seconds": median([r["start_map_seconds"] for r in measured]),
                    "all_seconds": [round(r["seconds"], 1) for r in measured],
                }
                print(f"{workload}: operation, {in_flight} in flight: {summary}", flush=True)
                results.append((workload, in_flight, summary))
    return results


def run_as_child(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    if args.child == "ours":
        rows = ours_job(args.endpoint_url, args.workload, args.in_flight[0])
    else:
        rows = sequential_job(args.endpoint_url, args.workload)
    count = size = errors = 0
    for row in rows:
        count += 1
        size += row.get("size") or 0
        errors += row.get("error") is not None
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "objects": count,
                "bytes": size,
                "errors": errors,
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--operation-runs", type=int, default=3, help="operations per setting")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    parser.add_argument("--child", choices=["ours", "sequential"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=["small", "large"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_as_child(args)
        return

    results: list[tuple[str, str, dict[str, Any]]] = []
    with seaweed_s3(CACHE_DIR / "weed-processing") as server:
        ensure_objects(server)
        upstream = ("127.0.0.1", int(server.endpoint_url.rsplit(":", 1)[1]))
        with DelayProxy(upstream, delay_s=args.delay_ms / 1000) as proxy:
            for workload in ("small", "large"):
                jobs = [("sequential", "sequential (yt-framework style)", 1)] + [
                    ("ours", f"ours, `S3ObjectMapper`, {n} downloads in flight", n)
                    for n in args.in_flight
                ]
                for child, label, in_flight in jobs:
                    result = run_child(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            child,
                            "--workload",
                            workload,
                            "--endpoint-url",
                            proxy.url,
                            "--in-flight",
                            str(in_flight),
                        ]
                    )
                    expected = SMALL_COUNT if workload == "small" else LARGE_COUNT
                    if result["objects"] != expected or result["errors"]:
                        raise RuntimeError(f"{label} on {workload}: {result}")
                    results.append((workload, label, result))
                    print(f"{workload}: {label}: {result}", flush=True)
            operations = operation_results(proxy.url, args.in_flight, args.operation_runs)

    rows = []
    for workload in ("small", "large"):
        baseline = next(r for w, label, r in results if w == workload and "sequential" in label)
        for w, label, result in results:
            if w != workload:
                continue
            per_second = result["objects"] / result["seconds"]
            rows.append(
                [
                    f"{result['objects']:,} x "
                    + ("~2 KB JSON lines" if workload == "small" else "50 MB"),
                    label,
                    f"{result['seconds']:.1f}",
                    f"{per_second:,.1f}",
                    f"{result['bytes'] / result['seconds'] / 1e6:,.1f}",
                    f"{result['peak_rss_mb']:.0f}",
                    f"{baseline['seconds'] / result['seconds']:.2f}x",
                ]
            )
    operation_rows = []
    for workload, in_flight, result in operations:
        baseline = next(r for w, label, r in results if w == workload and "sequential" in label)
        child = next(
            r for w, label, r in results if w == workload and f", {in_flight} downloads" in label
        )
        operation_rows.append(
            [
                f"{result['objects']:,} x "
                + ("~2 KB JSON lines" if workload == "small" else "50 MB"),
                f"ours, YT map operation (1 job), {in_flight} downloads in flight",
                f"{result['seconds']:.1f} ({', '.join(str(s) for s in result['all_seconds'])})",
                f"{result['start_map_seconds']:.1f}",
                f"{result['objects'] / result['seconds']:,.1f}",
                f"{result['bytes'] / result['seconds'] / 1e6:,.1f}",
                f"{baseline['seconds'] / result['seconds']:.2f}x",
                f"{child['seconds']:.1f} s, {child['seconds'] / result['seconds']:.2f}x",
            ]
        )
    operation_table = markdown_table(
        [
            "objects",
            "job",
            "wall s, median (runs)",
            "of which start_map s",
            "objects/s",
            "MB/s",
            "objects/s vs sequential child",
            "same mapper as a child process",
        ],
        operation_rows,
    )
    table = markdown_table(
        [
            "objects",
            "job",
            "wall s",
            "objects/s",
            "MB/s",
            "peak RSS MB",
            "objects/s vs sequential",
        ],
        rows,
    )
    body = (
        header_lines("benchmarks/.venv/bin/python benchmarks/processing_latency.py")
        + f"- S3: SeaweedFS `weed mini` behind `benchmarks/delay_proxy.py` adding "
        f"{args.delay_ms:.0f} ms to every request (127.0.0.1). Each job is one child process "
        "running the mapper over all rows of the workload (the same work a YT map job does; "
        "launched directly, not through a YT operation), producing the default result columns "
        "(size, SHA-256, lines, JSON records).\n\n"
        + table
        + "\n\nThrough the operation: the same mapper as a map operation of the local YT "
        f"(`yt_assets.local_yt`, started for the benchmark; one job; median of {args.operation_runs} "
        "operations): the wall time runs from the call to `start_map` (packing the job's modules, "
        "the file cache, starting the operation) through the scheduler, the job process's start "
        "(a bare interpreter unpacking the shipped modules), the job and the output's commit, "
        "until the operation has completed.\n\n" + operation_table
    )
    print(table)
    print(operation_table)
    if not args.no_write:
        write_section("processing_latency", "3. Processing with 20 ms per S3 request", body)


if __name__ == "__main__":
    main()
