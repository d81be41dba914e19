"""What the processing operation ships and how long an operation takes to start, with and without
``docker_image``, on the local YT whose jobs run a bare Python (as on a YT exec node).

For each mode, on a fresh local YT (empty file cache): two operations of the default processing
mapper (``S3ObjectMapper``) in a row. Measured per operation: ``start_map`` (pickling, packing the
modules archive, file cache look-ups and uploads, starting the operation), then the time from its
return to the first job in state ``running``, and what the job files weigh and how much of them
was new in the file cache. The operation is aborted once a job runs (S3 is not involved).

Run: ``.venv/bin/python benchmarks/job_shipping.py`` (the dev venv: the "image" is a venv with only
boto3 and ytsaurus-client, linked by ``yt_assets_tests/wheel_venv.py``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import header_lines, markdown_table, write_section
from yt_assets.local_yt import JobEnvironment, LocalYT
from yt_assets.yt.operations import MapSettings, start_map
from yt_assets.yt.schemas import PROCESSED_COLUMNS, yt_schema
from yt_assets.yt_jobs.s3_processing import S3ObjectMapper
from yt_assets_tests.wheel_venv import linked_venv

IMAGE = "bench/yt-assets-job:1"
ROUNDS = 2
VAULT = {"S3_ACCESS_KEY": "bench", "S3_SECRET_KEY": "bench-secret"}


def first_job_running(client: Any, operation_id: str, timeout: float = 300.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.list_jobs(operation_id)["jobs"]
        if any(job["state"] in ("running", "completed", "failed") for job in jobs):
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"no job of {operation_id} ran within {timeout} s")


def file_sizes(client: Any, operation_id: str, since: float) -> tuple[int, int, int]:
    spec = client.get_operation(operation_id, attributes=["spec"])["spec"]
    paths = [str(path) for path in spec["mapper"].get("file_paths") or []]
    total = new = 0
    for path in paths:
        attributes = client.get(path + "/@", attributes=["uncompressed_data_size", "creation_time"])
        size = int(attributes["uncompressed_data_size"])
        total += size
        created = time.mktime(
            time.strptime(str(attributes["creation_time"])[:19], "%Y-%m-%dT%H:%M:%S")
        )
        new += size if created - time.timezone >= since - 1 else 0
    return len(paths), total, new


def one_mode(
    directory: Path, docker_image: str | None, environment: JobEnvironment
) -> list[dict[str, Any]]:
    results = []
    with LocalYT(root=directory, job_environment=environment) as server:
        client = server.client()
        client.write_table(
            "//tmp/listing", [{"bucket": "bench", "path": f"k{i}"} for i in range(4)]
        )
        mapper = S3ObjectMapper(endpoint_url="http://127.0.0.1:9")
        for run in (1, 2):
            lines: list[str] = []
            started = time.monotonic()
            wall = time.time()
            operation = start_map(
                client,
                mapper,
                "//tmp/listing",
                f"//tmp/out{run}",
                yt_schema(PROCESSED_COLUMNS),
                MapSettings(job_count=1, docker_image=docker_image),
                secure_vault=VAULT,
                log=lines.append,
            )
            returned = time.monotonic()
            running = first_job_running(client, operation.id)
            operation.abort()
            count, total, new = file_sizes(client, operation.id, wall)
            results.append(
                {
                    "run": run,
                    "start_map": returned - started,
                    "to_job": running - returned,
                    "files": count,
                    "bytes": total,
                    "new": new,
                    "log": lines[0] if lines else "",
                }
            )
    return results


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench_job_shipping_"))
    image = linked_venv(scratch / "image", ["boto3", "ytsaurus-client"])
    environment = JobEnvironment(docker_images={IMAGE: str(image.root)})
    rows = []
    notes = []
    for label, docker_image in (
        ("no docker_image (third-party shipped)", None),
        ("docker_image (venv with boto3 + ytsaurus-client)", IMAGE),
    ):
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for round_index in range(ROUNDS):
            for result in one_mode(
                scratch / f"yt_{docker_image is not None}_{round_index}", docker_image, environment
            ):
                runs[result["run"]].append(result)
        for run in (1, 2):
            items = runs[run]
            start = statistics.median(item["start_map"] for item in items)
            to_job = statistics.median(item["to_job"] for item in items)
            first = items[0]
            rows.append(
                [
                    label,
                    "first (empty cache)" if run == 1 else "second (unchanged)",
                    first["files"],
                    f"{first['bytes'] / 1e6:.2f}",
                    f"{statistics.median(i['new'] for i in items) / 1e6:.2f}",
                    f"{start:.2f}",
                    f"{to_job:.2f}",
                    f"{start + to_job:.2f}",
                    " / ".join(f"{i['start_map'] + i['to_job']:.1f}" for i in items),
                ]
            )
        notes.append(f"- {label}: `{runs[1][0]['log']}`")
    table = markdown_table(
        [
            "mode",
            "run",
            "job files",
            "MB (compressed)",
            "MB uploaded",
            "start_map s",
            "to first running job s",
            "total s (median)",
            "all runs s",
        ],
        rows,
    )
    body = (
        header_lines(".venv/bin/python benchmarks/job_shipping.py")
        + f'- Data: the default processing mapper on a fresh local YT per round ({ROUNDS} rounds, medians); jobs run a bare Python 3.11 venv, or the "image" venv.\n'
        + "- The run log line of each first run:\n"
        + "\n".join(notes)
        + "\n\n"
        + table
    )
    write_section(
        "job_shipping", "5. What the processing operation ships, and its start latency", body
    )
    print(table)


if __name__ == "__main__":
    main()
