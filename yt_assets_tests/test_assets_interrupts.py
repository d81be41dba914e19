"""Killed and interrupted Dagster steps, for real: a separate process runs the step and is signalled.

- SIGTERM (how Dagster terminates a run) while the processing operation runs: the operation is aborted and its jobs killed,
  also when it comes between the start and the wait (a slow log line there).
- SIGKILL in the middle of a listing write: the previous table stays intact.
- An interruption that is no ``KeyboardInterrupt`` (as Dagster's) during ``wait_or_abort``'s wait
  for a sort (the listing operation mode's last step): the sort is aborted.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from yt_assets.local_yt import LocalYT
from yt_assets_tests.conftest import S3TestServer, put_objects

ROOT = "//home/interrupt_tests"
WAIT_SECONDS = 60

STEP_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    import dagster as dg
    from dagster_aws.s3 import S3Resource
    from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
    from yt_assets.io_manager import YTTableIOManager
    from yt_assets.resources import YTResource
    from yt_assets.s3.pages import S3Object
    from yt_assets_tests.job_processors import slow_processor

    def stalling_objects():
        # 50,000 objects (several 1 MB write chunks sent to YT), then a stall until killed.
        for i in range(50_000):
            yield S3Object(f"stall/{i:06d}", 1, "e" * 32, datetime(2026, 1, 1, tzinfo=UTC))
        print("stalling", flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        settings = json.loads(sys.argv[1])
        yt_cluster = YTResource(proxy=settings["proxy"], write_chunk_size_mb=1)
        s3 = S3Resource(endpoint_url=settings["endpoint"], region_name="us-east-1",
                        aws_access_key_id=settings["key"], aws_secret_access_key=settings["secret"])
        listing = build_s3_listing_asset("listing", bucket=settings["bucket"])
        processed = build_s3_processing_asset("processed", listing=listing, processor=slow_processor)
        if settings["mode"] == "stall":
            import yt_assets.assets as assets_module
            assets_module.iter_s3_objects = lambda *args, **kwargs: stalling_objects()
            listing = build_s3_listing_asset("listing", bucket=settings["bucket"])
        if settings["mode"] == "slow_start":  # the step is slow between the start and the wait
            def slow_operation_url(self, operation_id):
                print("operation started", flush=True)
                time.sleep(600)
            YTResource.operation_url = slow_operation_url
        assets = [listing, processed] if settings["mode"] in ("process", "slow_start") else [listing]
        print("starting", flush=True)
        dg.materialize(assets, resources={"yt_cluster": yt_cluster, "s3": s3,
                       "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root=settings["root"])})
    """
)


def start_step(
    tmp_path: Path, dagster_local_yt: LocalYT, s3_server: S3TestServer, bucket: str, mode: str
) -> subprocess.Popen[str]:
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    settings = {
        "proxy": dagster_local_yt.proxy_url,
        "endpoint": s3_server.endpoint_url,
        "key": s3_server.access_key,
        "secret": s3_server.secret_key,
        "bucket": bucket,
        "root": ROOT,
        "mode": mode,
    }
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        # The processor's module (yt_assets_tests.job_processors) is importable from the checkout.
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.kill()
    output, _ = process.communicate(timeout=WAIT_SECONDS)
    return output


def started_operation(client: Any, before: set[str], step: subprocess.Popen[str]) -> str:
    """The step's operation, once the step says it started it (its slow_start mode)."""
    assert step.stdout is not None
    lines = iter(step.stdout.readline, "")
    assert any(line.strip() == "operation started" for line in lines), "no operation started"
    started = [op for op in client.list_operations()["operations"] if op["id"] not in before]
    assert len(started) == 1, started
    return str(started[0]["id"])


def operation_running_a_job(client: Any, before: set[str], step: subprocess.Popen[str]) -> str:
    """The step's operation, once one of its jobs runs."""

    def running_operation() -> str | None:
        for op in client.list_operations()["operations"]:
            if op["id"] not in before and op["state"] == "running":
                jobs = client.list_jobs(op["id"])["jobs"]
                if any(job["state"] == "running" for job in jobs):
                    return str(op["id"])
        return None

    wait_until(lambda: running_operation() is not None, "the map operation to run a job")
    operation_id = running_operation()
    assert operation_id is not None
    return operation_id


@pytest.mark.parametrize(
    ("mode", "find_operation"),
    [("process", operation_running_a_job), ("slow_start", started_operation)],
    ids=["while a job runs", "between the start and the wait"],
)
def test_terminating_the_step_aborts_the_operation(
    tmp_path: Path,
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    s3_bucket: str,
    mode: str,
    find_operation: Callable[[Any, set[str], subprocess.Popen[str]], str],
) -> None:
    put_objects(s3_server, s3_bucket, {"slow/1": b"1"})
    client = dagster_local_yt.client()
    before = {op["id"] for op in client.list_operations()["operations"]}
    step = start_step(tmp_path, dagster_local_yt, s3_server, s3_bucket, mode)
    try:
        operation_id = find_operation(client, before, step)
        step.send_signal(signal.SIGTERM)  # what terminating a Dagster run sends its worker
        wait_until(
            lambda: client.get_operation(operation_id, attributes=["state"])["state"] == "aborted",
            "the operation to be aborted",
        )
        step.wait(timeout=WAIT_SECONDS)
    finally:
        output = stop(step)
    jobs = client.list_jobs(operation_id)["jobs"]
    assert all(job["state"] != "running" for job in jobs), output
    assert not client.exists(f"{ROOT}/processed")


def test_killing_the_step_mid_write_keeps_the_previous_table(
    tmp_path: Path, dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    client = dagster_local_yt.client()
    put_objects(s3_server, s3_bucket, {f"k/{i:04d}": b"x" for i in range(10)})
    first = start_step(tmp_path, dagster_local_yt, s3_server, s3_bucket, "list")
    assert first.wait(timeout=WAIT_SECONDS) == 0, stop(first)
    assert client.get(f"{ROOT}/listing/@row_count") == 10
    original = list(client.read_table(f"{ROOT}/listing"))

    second = start_step(tmp_path, dagster_local_yt, s3_server, s3_bucket, "stall")
    try:
        assert second.stdout is not None
        lines = iter(second.stdout.readline, "")
        assert any(line.strip() == "stalling" for line in lines), "the step never reached the stall"
        os.kill(second.pid, signal.SIGKILL)
    finally:
        stop(second)
    assert list(client.read_table(f"{ROOT}/listing")) == original
    assert [name for name in client.list(ROOT) if name != "listing"] == []


SORT_WAIT_SCRIPT = textwrap.dedent(
    """
    import json, signal, sys
    import yt.wrapper as yt
    from yt_assets.local_yt.launcher import default_client_config
    from yt_assets.yt.progress import wait_or_abort

    class Terminated(BaseException):  # what Dagster raises on SIGTERM: no KeyboardInterrupt
        pass

    def terminated(signum, frame):
        raise Terminated()

    if __name__ == "__main__":
        settings = json.loads(sys.argv[1])
        signal.signal(signal.SIGTERM, terminated)
        client = yt.YtClient(config=default_client_config(settings["proxy"]))
        sort = client.run_sort(settings["source"], settings["destination"], sort_by=["k"], sync=False)
        print("sort", sort.id, flush=True)
        wait_or_abort(sort)
    """
)


def test_an_interrupted_wait_for_a_sort_aborts_it(
    tmp_path: Path, dagster_local_yt: LocalYT
) -> None:
    client = dagster_local_yt.client()
    source, destination = f"{ROOT}/unsorted", f"{ROOT}/sorted"
    client.create("table", source, recursive=True, force=True)
    rows = 400_000  # a sort of about 3 s on the local YT
    client.write_table(
        source, ({"k": rows - index, "path": f"p/{index:09d}.json"} for index in range(rows))
    )
    client.create("table", destination, force=True)
    script = tmp_path / "sort_wait.py"
    script.write_text(SORT_WAIT_SCRIPT)
    settings = {"proxy": dagster_local_yt.proxy_url, "source": source, "destination": destination}
    waiter = subprocess.Popen(
        [sys.executable, str(script), json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert waiter.stdout is not None
        lines = iter(waiter.stdout.readline, "")  # yt.wrapper logs its own lines too
        operation_id = next(line.split()[1] for line in lines if line.startswith("sort "))
        state = client.get_operation(operation_id, attributes=["state"])["state"]
        assert state in ("starting", "materializing", "running"), f"the sort is {state}: too small"
        waiter.send_signal(signal.SIGTERM)
        wait_until(
            lambda: client.get_operation(operation_id, attributes=["state"])["state"] == "aborted",
            "the sort to be aborted",
        )
        assert waiter.wait(timeout=WAIT_SECONDS) != 0
    finally:
        output = stop(waiter)
    assert "Terminated" in output, output
    assert client.get(f"{destination}/@row_count") == 0
