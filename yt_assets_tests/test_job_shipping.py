"""The processing operation ships what its jobs import, and nothing of the driver.

The local YT runs jobs with a bare Python (``local_yt/job_python.py``): a processor in a user's
module works, Dagster and ``yt_assets.local_yt`` are not importable in a job, a second run uploads
nothing new, and ``docker_image`` selects an "image" (a venv with boto3 and ytsaurus-client) that
gets no third-party file. Real processes: moto's S3 server, local YT servers, Dagster in-process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.local_yt import JobEnvironment, LocalYT
from yt_assets.yt.schemas import ColumnSpec
from yt_assets.yt.shipping import plan_shipment
from yt_assets.yt_jobs.s3_processing import S3ObjectMapper
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.dagster_stack import stack_resources
from yt_assets_tests.job_processors import import_probe
from yt_assets_tests.wheel_venv import linked_venv

pytestmark = pytest.mark.slow

ROOT = "//home/shipping_tests"
IMAGE = "registry.example/yt-assets-job:1"
OTHER_PYTHON = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")
CACHE = "//tmp/yt_wrapper/file_storage"
PROBE_COLUMNS = [
    ColumnSpec("bucket", "string", required=True),
    ColumnSpec("path", "string", required=True),
    ColumnSpec("size", "int64"),
    ColumnSpec("importable", "string"),
    ColumnSpec("python", "string"),
    ColumnSpec("error", "string"),
]


@pytest.fixture(scope="module")
def imaged_local_yt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalYT]:
    """A local YT whose ``IMAGE`` is a venv with only boto3 and ytsaurus-client (and their
    requirements), and ``python:3.12`` another Python version."""
    directory = tmp_path_factory.mktemp("images")
    image = linked_venv(directory / "image", ["boto3", "ytsaurus-client"])
    images = {IMAGE: str(image.root)}
    if OTHER_PYTHON.exists():
        images["python:3.12"] = str(OTHER_PYTHON)
    environment = JobEnvironment(docker_images=images)
    with LocalYT(root=directory / "yt", job_environment=environment) as server:
        yield server


def probe_assets(name: str) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    listing = build_s3_listing_asset(f"{name}_listing", prefix="p/")
    processed = build_s3_processing_asset(
        f"{name}_processed",
        listing=listing,
        processor=import_probe,
        output_columns=PROBE_COLUMNS,
        max_failed_job_count=1,
    )
    return listing, processed


def materialise(
    local_yt: LocalYT, s3_server: S3TestServer, bucket: str, name: str, **processing: Any
) -> tuple[dg.ExecuteInProcessResult, str]:
    listing, processed = probe_assets(name)
    run_config = {
        "ops": {
            f"{name}_listing": {"config": {"bucket": bucket}},
            f"{name}_processed": {"config": processing},
        }
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [listing, processed],
            resources=stack_resources(local_yt, s3_server, ROOT),
            run_config=run_config,
            instance=instance,
            raise_on_error=False,
        )
        log = "\n".join(record.user_message or "" for record in instance.all_logs(result.run_id))
    return result, log


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    failure = result.get_step_failure_events()[0].step_failure_data
    return str(
        failure.user_failure_data.description if failure.user_failure_data else failure.error
    )


def cached_files(client: yt.YtClient) -> set[str]:
    """Every file in the client's file cache (``//tmp/yt_wrapper/file_storage``)."""
    found: set[str] = set()
    if not client.exists(CACHE):
        return found
    pending = [CACHE]
    while pending:
        directory = pending.pop()
        for child in client.list(directory, attributes=["type"]):
            path = f"{directory}/{child}"
            if child.attributes["type"] == "map_node":
                pending.append(path)
            elif child.attributes["type"] == "file":
                found.add(path)
    return found


def test_a_user_processor_runs_without_dagster_and_a_second_run_uploads_nothing(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"p/a.txt": b"abc", "p/b.txt": b"hello"})
    client = dagster_local_yt.client()

    first, log = materialise(dagster_local_yt, s3_server, s3_bucket, "user_probe")
    after_first = cached_files(client)
    second, second_log = materialise(dagster_local_yt, s3_server, s3_bucket, "user_probe")

    assert first.success, log
    rows = sorted(client.read_table(f"{ROOT}/user_probe_processed"), key=lambda row: row["path"])
    assert [(row["path"], row["size"], row["error"]) for row in rows] == [
        ("p/a.txt", 3, None),
        ("p/b.txt", 5, None),
    ]
    # The job has boto3 and yt.wrapper (shipped), not Dagster, the local YT or the assets.
    assert {row["importable"] for row in rows} == {"boto3,yt.wrapper"}
    assert "third-party: " in log and "new in the file cache" in log
    assert second.success, second_log
    assert cached_files(client) == after_first
    assert "0 new in the file cache (0.0 MB uploaded)" in second_log


def test_shipment_holds_job_code_and_dependencies_only() -> None:
    mapper = S3ObjectMapper(processor=import_probe)

    shipment = plan_shipment(mapper)
    with_image = plan_shipment(mapper, docker_image=IMAGE)

    assert {"yt_assets.yt_jobs.s3_processing", "yt_assets_tests.job_processors"} <= set(
        shipment.modules
    )
    assert not any(name.startswith(("dagster", "yt_assets.local_yt")) for name in shipment.modules)
    assert "yt_assets.assets" not in shipment.modules
    archived = {relative for _, relative in shipment.files}
    tops = {relative.split("/")[0] for relative in archived}
    assert {"yt", "boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil"} <= tops
    assert "six.py" in archived and "botocore/data/endpoints.json" in archived
    assert any(path.startswith("botocore/data/s3/") for path in archived)
    assert not any(top.startswith(("dagster", "yt_assets")) for top in tops)
    assert with_image.files == () and with_image.modules == shipment.modules


def test_docker_image_runs_in_the_image_with_nothing_third_party_shipped(
    imaged_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"p/a.txt": b"abc"})

    result, log = materialise(
        imaged_local_yt, s3_server, s3_bucket, "image_probe", docker_image=IMAGE
    )

    assert result.success, log
    [row] = imaged_local_yt.client().read_table(f"{ROOT}/image_probe_processed")
    assert (row["size"], row["error"], row["importable"]) == (3, None, "boto3,yt.wrapper")
    assert f"third-party: none (docker_image '{IMAGE}' provides them)" in log


def test_an_unmapped_image_fails_the_step_naming_the_image(
    imaged_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"p/a.txt": b"abc"})

    result, _ = materialise(
        imaged_local_yt,
        s3_server,
        s3_bucket,
        "missing_image",
        docker_image="registry.example/nope:2",
    )

    assert not result.success
    assert 'Failed to pull docker image "registry.example/nope:2"' in failure_text(result)


@pytest.mark.skipif(not OTHER_PYTHON.exists(), reason=f"needs {OTHER_PYTHON}")
def test_another_python_version_on_the_node_fails_naming_both_versions(
    imaged_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"p/a.txt": b"abc"})

    result, _ = materialise(
        imaged_local_yt, s3_server, s3_bucket, "other_python", docker_image="python:3.12"
    )

    assert not result.success
    text = failure_text(result)
    assert "this node runs Python 3.12.1" in text
    assert f"pickled by Python {sys.version.split()[0]}" in text


def test_plans_made_in_parallel_threads_are_the_same() -> None:
    """The steps of a backfill in one process plan their shipments at once: each thread gets the
    same plan (CPython 3.11's ``ast.parse`` is not thread-safe; shipping parses one at a time)."""
    job = S3ObjectMapper(processor=import_probe)
    expected = plan_shipment(job).pickling_config()
    with ThreadPoolExecutor(max_workers=8) as pool:
        plans = list(pool.map(lambda _: plan_shipment(job).pickling_config(), range(32)))
    assert all(plan == expected for plan in plans)
