"""A processing run as seen from Dagster: progress lines while the YT operation runs, the final
summary, job statistics as metadata, failed jobs' stderr in the run log, links that open.

Real servers only: moto's S3 server and the local YT on loopback.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.io_manager import YTTableIOManager
from yt_assets.local_yt import LocalYT
from yt_assets.resources import YTResource
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.dagster_stack import stack_resources
from yt_assets_tests.job_processors import SLOW_SECONDS, FailsOnce, one_second_processor

ROOT = "//home/visibility_tests"
OBJECTS = {
    "v/a.jsonl": b'{"x": 1}\n{"x": 2}\n',
    "v/b.json": b'[{"x": 1}]',
    "v/broken.json": b'{"x": ',
    "v/notes.txt": b"one\ntwo\n",
}
PROGRESS = re.compile(r"YT operation \S+ \w+: (\d+)/(\d+) jobs completed")


def resources_with_links(local_yt: LocalYT, s3_server: S3TestServer) -> dict[str, Any]:
    """The loopback stack, with the local YT's web view as the web UI (as YT_WEB_UI would)."""
    resources = stack_resources(local_yt, s3_server, ROOT)
    yt_cluster = YTResource(proxy=local_yt.proxy_url, web_ui=f"{local_yt.proxy_url}/ui")
    resources["yt_cluster"] = yt_cluster
    resources["io_manager"] = YTTableIOManager(yt_cluster=yt_cluster, root=ROOT)
    return resources


def run_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [record.user_message or "" for record in instance.all_logs(run_id)]


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {
        event.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def test_slow_jobs_log_progress_a_summary_and_report_statistics(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, OBJECTS)
    listing = build_s3_listing_asset("visible_listing", prefix="v/")
    processed = build_s3_processing_asset(
        "visible_processed",
        listing=listing,
        processor=one_second_processor,
        job_count=len(OBJECTS),
        progress_interval_seconds=0.2,
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [listing, processed],
            resources=resources_with_links(dagster_local_yt, s3_server),
            run_config={"ops": {"visible_listing": {"config": {"bucket": s3_bucket}}}},
            instance=instance,
        )
        assert result.success
        messages = run_messages(instance, result.run_id)

    progress = [
        (int(match[1]), int(match[2]))
        for message in messages
        if (match := PROGRESS.search(message))
    ]
    completed = [done for done, _total in progress]
    assert completed == sorted(completed) and len(set(completed)) >= 2, progress
    assert all(total == len(OBJECTS) for _done, total in progress)
    [summary] = [m for m in messages if re.search(r"YT operation \S+ completed in", m)]
    assert f"{len(OBJECTS)} jobs completed, 0 failed" in summary
    assert f"rows in {len(OBJECTS)}, out {len(OBJECTS)}" in summary
    assert f"{sum(map(len, OBJECTS.values())):,} bytes read from S3" in summary

    metadata = materializations(result)
    listing_meta = metadata["visible_listing"]
    assert listing_meta["keys_listed"].value == len(OBJECTS)
    assert listing_meta["keys_matched"].value == len(OBJECTS)
    assert listing_meta["listing_pages"].value == 1

    meta = metadata["visible_processed"]
    assert meta["s3/objects_processed"].value == len(OBJECTS)
    assert meta["s3/objects_with_error"].value == 1  # broken.json
    assert meta["s3/bytes_downloaded"].value == sum(map(len, OBJECTS.values()))
    assert meta["s3/download_seconds"].value >= SLOW_SECONDS * len(OBJECTS)
    assert meta["yt_jobs_completed"].value == len(OBJECTS)
    assert meta["yt_rows_out"].value == len(OBJECTS)
    assert meta["yt_operation_state"].value == "completed"

    # The links open the local YT's web view.
    operation_page = urllib.request.urlopen(meta["yt_operation_url"].value, timeout=30).read()
    assert b"<span class='state'>completed</span>" in operation_page
    assert b"custom/s3/objects_processed" in operation_page
    assert meta["yt_table_url"].value == meta["dagster/uri"].value
    table_page = urllib.request.urlopen(meta["dagster/uri"].value, timeout=30).read()
    assert b"aria-label='schema'" in table_page and b"v/notes.txt" in table_page


def test_a_job_failing_once_puts_its_stderr_in_the_run(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, tmp_path: Path
) -> None:
    put_objects(s3_server, s3_bucket, {"f/one.txt": b"1", "f/two.txt": b"2", "f/bad.txt": b"3"})
    marker = tmp_path / "failed-once"

    listing = build_s3_listing_asset("flaky_listing", prefix="f/")
    processed = build_s3_processing_asset(
        "flaky_processed",
        listing=listing,
        processor=FailsOnce(str(marker)),
        on_error="fail",
        job_count=3,
        max_failed_job_count=3,
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [listing, processed],
            resources=resources_with_links(dagster_local_yt, s3_server),
            run_config={"ops": {"flaky_listing": {"config": {"bucket": s3_bucket}}}},
            instance=instance,
        )
        assert result.success
        messages = run_messages(instance, result.run_id)

    [failure] = [m for m in messages if m.startswith("YT job failure")]
    assert "injected failure for f/bad.txt" in failure
    assert "1 failed job(s)" in failure
    meta = materializations(result)["flaky_processed"]
    assert meta["yt_jobs_failed"].value == 1
    assert "injected failure for f/bad.txt" in meta["failed_job_stderr"].value
    assert meta["s3/objects_processed"].value == 3
