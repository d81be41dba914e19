"""The Dagster UI in a real browser: ``yt-assets dev`` on a free loopback port, driven by Playwright
through Debian's Chromium (never ``playwright install``).

From a fresh demo home: materialise the listing asset then the processing asset with the UI's
Materialize button, open the YT operation and table links of the processing asset (the local
YT's web view), launch one partition of the daily pair from the partition dialog, confirm each
run through GraphQL by its id, check the asset pages show the row counts, and switch the sensor and
the schedule on (the sensor finds the one new ready prefix and its run succeeds), then off. Screenshots of every step go to ``artifacts/e2e/``. Finally Ctrl-C
stops ``dagster dev`` and the stack it started, leaving no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from yt_assets.demo.processes import free_port, group_members, pid_alive
from yt_assets.demo.seed import demo_objects, ready_prefixes
from yt_assets.partitions import S3_PREFIX_PARTITIONS_NAME

# Under pytest-xdist (scripts/test: --dist loadfile) one worker runs the module, in order: one
# `yt-assets dev` stack, Ctrl-C last.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
CHROMIUM = next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None)
if CHROMIUM is None:
    pytest.skip(
        "Debian's Chromium is not installed (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install playwright"
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "e2e"
LOCATION = "yt_assets"
REPOSITORY = "__repository__"
UI_START_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 240.0
PAGE_TIMEOUT_MS = 60_000
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class DagsterDev:
    """``yt-assets dev`` running in its own session, with its log file."""

    process: subprocess.Popen[bytes]
    url: str
    home: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started_pids(self) -> set[int]:
        """Pids the command reported: the S3 server, the local YT, ``dagster dev``."""
        return {int(pid) for pid in re.findall(r"\(pid (\d+)", self.log())}

    def stop(self) -> int:
        """Ctrl-C, as in a terminal; returns the exit status."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def run_status(url: str, run_id: str) -> str:
    data = graphql(
        url,
        "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
        {"id": run_id},
    )
    return str(data["runOrError"].get("status", data["runOrError"]["__typename"]))


def wait_for_run(url: str, run_id: str) -> str:
    """The run's final status, polled through GraphQL by its id."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = run_status(url, run_id)
    while status not in TERMINAL_RUN_STATUSES and time.monotonic() < deadline:
        time.sleep(1)
        status = run_status(url, run_id)
    return status


def wait_for_code_location(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "yt-assets dev exited early"
        try:
            nodes = graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        except OSError:
            nodes = []
        if nodes:
            return
        time.sleep(0.5)
    raise AssertionError(f"the UI did not load the code location within {UI_START_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    home = tmp_path_factory.mktemp("ui_home")
    port = free_port()
    log_path = home / "yt-assets-dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "YT_", "DAGSTER_"))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "yt_assets.cli", "dev", "--dir", str(home), "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = DagsterDev(process, f"http://127.0.0.1:{port}", home, log_path)
    try:
        wait_for_code_location(dev.url, process)
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _is_launch(response: Any) -> bool:
    post = response.request.post_data or ""
    return "/graphql" in response.url and '"operationName":"LaunchPipelineExecution"' in post


def launched_run_id(response: Any) -> str:
    result = response.json()["data"]["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return str(result["run"]["id"])


def confirm_run_succeeded(page: Any, url: str, run_id: str, name: str) -> None:
    """GraphQL says SUCCESS; the run page's event log shows RUN_SUCCESS, its header Success."""
    assert wait_for_run(url, run_id) == "SUCCESS", f"run {run_id} did not succeed"
    page.goto(f"{url}/runs/{run_id}")
    page.get_by_text("RUN_SUCCESS").first.wait_for()
    page.reload()  # the header lags the event log
    page.get_by_text("Success", exact=True).first.wait_for()
    page.get_by_text(run_id[:8]).first.wait_for()
    screenshot(page, name)


def confirm_row_count(page: Any, url: str, asset: str, rows: int, name: str) -> None:
    """The asset page's status section shows ``Row count`` with ``rows`` beside it."""
    page.goto(f"{url}/assets/{asset}")
    row_count = page.locator("xpath=//*[normalize-space(text())='Row count']/..").first
    sync_api.expect(row_count).to_contain_text(
        re.compile(rf"Row count\s*{rows}\b"), timeout=PAGE_TIMEOUT_MS
    )
    page.get_by_text(re.compile(r" ago$")).first.wait_for()  # the latest materialisation
    screenshot(page, name)


def materialize_unpartitioned(page: Any, url: str, asset: str) -> str:
    page.goto(f"{url}/assets/{asset}")
    button = page.get_by_role("button", name=re.compile(r"Materialize$")).first
    button.wait_for()
    with page.expect_response(_is_launch) as launch:
        button.click()
    return launched_run_id(launch.value)


def materialize_partition(page: Any, url: str, asset: str, partition: str, name: str) -> str:
    page.goto(f"{url}/assets/{asset}")
    page.get_by_role("button", name=re.compile(r"Materialize…$")).first.click()
    dialog = page.get_by_role("dialog")
    partitions = dialog.get_by_role("textbox").first
    partitions.fill(partition)
    partitions.press("Enter")
    launch_button = dialog.get_by_role("button", name="Launch 1 run")
    launch_button.wait_for()
    screenshot(page, name)
    with page.expect_response(_is_launch) as launch:
        launch_button.click()
    return launched_run_id(launch.value)


def test_materialize_listing_then_processing(dagster_dev: DagsterDev, page: Any) -> None:
    url = dagster_dev.url
    rows = len(demo_objects(datetime.now(UTC).date()))
    page.goto(f"{url}/assets/s3_listing")
    page.get_by_role("button", name=re.compile(r"Materialize$")).first.wait_for()
    table = page.get_by_text("//home/yt_assets/s3_listing", exact=True).first
    table.wait_for()  # the Overview names the YT table before the first run
    screenshot(page, "01_s3_listing_before")

    run_id = materialize_unpartitioned(page, url, "s3_listing")
    confirm_run_succeeded(page, url, run_id, "02_s3_listing_run_success")
    confirm_row_count(page, url, "s3_listing", rows, "03_s3_listing_row_count")
    table.wait_for()  # and after it

    run_id = materialize_unpartitioned(page, url, "s3_objects_processed")
    confirm_run_succeeded(page, url, run_id, "04_s3_objects_processed_run_success")
    confirm_row_count(page, url, "s3_objects_processed", rows, "05_s3_objects_processed_row_count")


def demo_secrets(home: Path) -> list[str]:
    """Every secret value the demo stack holds (its S3 keys), to look for on pages."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)
        elif isinstance(value, str) and len(value) >= 8:
            found.append(value)

    keys_file = home / ".yt_assets_demo" / "keys.json"
    walk(json.loads(keys_file.read_text()))
    assert found, f"no keys in {keys_file}"
    return found


def metadata_link(page: Any, pattern: str) -> str:
    """The href of the first link on the page whose URL contains ``pattern``."""
    link = page.locator(f"a[href*='{pattern}']").first
    link.wait_for()
    return str(link.get_attribute("href"))


def test_yt_links_open_the_local_web_view(dagster_dev: DagsterDev, page: Any) -> None:
    """After the processing run above: the asset page's operation and table links open the
    local YT's web view (operation state, jobs, a job's stderr; a table's schema and rows), and
    no page of it shows a secret."""
    url = dagster_dev.url
    secrets = demo_secrets(dagster_dev.home)
    pages: dict[str, str] = {}
    page.goto(f"{url}/assets/s3_objects_processed")
    operation_link = metadata_link(page, "/ui/operations/")
    table_link = metadata_link(page, "/ui/navigation?path=")
    page.locator("a[href*='/ui/operations/']").first.scroll_into_view_if_needed()
    screenshot(page, "05a_asset_page_with_yt_links")

    page.goto(operation_link)
    page.get_by_text("completed", exact=True).first.wait_for()
    jobs = page.get_by_role("table", name="jobs")
    sync_api.expect(jobs.locator("tbody tr").first).to_be_visible()
    sync_api.expect(page.get_by_role("table", name="job statistics")).to_contain_text(
        "custom/s3/objects_processed"
    )
    screenshot(page, "05b_yt_operation_page")
    pages["operation"] = page.content()

    page.get_by_role("link", name=re.compile(r"^stderr")).first.click()
    sync_api.expect(page.get_by_label("stderr")).to_contain_text("s3_processing:")
    screenshot(page, "05c_yt_job_stderr")
    pages["stderr"] = page.content()

    page.goto(table_link)
    sync_api.expect(page.get_by_role("table", name="schema")).to_contain_text("sha256")
    sync_api.expect(
        page.get_by_role("table", name="rows").locator("tbody tr").first
    ).to_be_visible()
    screenshot(page, "05d_yt_table_page")
    pages["table"] = page.content()

    page.get_by_role("link", name="Operations").click()
    page.get_by_role("table", name="operations").wait_for()
    pages["operations"] = page.content()
    for name, html in pages.items():
        for secret in secrets:
            assert secret not in html, f"a secret is shown on the web view's {name} page"


def test_materialize_one_daily_partition(dagster_dev: DagsterDev, page: Any) -> None:
    url = dagster_dev.url
    today = datetime.now(UTC).date()
    day = (today - timedelta(days=1)).isoformat()
    rows = sum(1 for key in demo_objects(today) if key.startswith(f"events/{day}/"))
    assert rows > 0

    run_id = materialize_partition(page, url, "daily_s3_listing", day, "06_daily_listing_dialog")
    confirm_run_succeeded(page, url, run_id, "07_daily_listing_run_success")
    confirm_row_count(page, url, "daily_s3_listing", rows, "08_daily_listing_row_count")

    run_id = materialize_partition(
        page, url, "daily_s3_processed", day, "09_daily_processed_dialog"
    )
    confirm_run_succeeded(page, url, run_id, "10_daily_processed_run_success")
    confirm_row_count(page, url, "daily_s3_processed", rows, "11_daily_processed_row_count")
    tags = graphql(
        url,
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
        {"id": run_id},
    )["runOrError"]["tags"]
    assert {"key": "dagster/partition", "value": day} in tags


def instigator_status(url: str, kind: str, name: str) -> str:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    if kind == "sensor":
        query = (
            "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) "
            "{ __typename ... on Sensor { sensorState { status } } } }"
        )
        data = graphql(url, query, {"s": {**selector, "sensorName": name}})["sensorOrError"]
        return str(data["sensorState"]["status"])
    query = (
        "query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) "
        "{ __typename ... on Schedule { scheduleState { status } } } }"
    )
    data = graphql(url, query, {"s": {**selector, "scheduleName": name}})["scheduleOrError"]
    return str(data["scheduleState"]["status"])


def wait_for_status(url: str, kind: str, name: str, wanted: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    status = instigator_status(url, kind, name)
    while status != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        status = instigator_status(url, kind, name)
    return status


def automation_switch(page: Any, kind: str, name: str) -> tuple[Any, Any]:
    """``(label, checkbox)`` of the on/off switch in ``name``'s row on the Automation page.

    The row is the parent of the link to the instigator; it holds a selection checkbox, then the
    switch, which appears once the instigator's state has loaded (wait for both)."""
    row = page.locator(f"xpath=//a[contains(@href, '/{kind}s/{name}')]/parent::*").first
    labels = row.locator("label")
    sync_api.expect(labels).to_have_count(2, timeout=PAGE_TIMEOUT_MS)
    return labels.last, labels.last.locator("input[type=checkbox]")


def flip_switch(page: Any, url: str, kind: str, name: str, on: bool) -> None:
    """Click ``name``'s switch, check the instance reports the new status, and that the switch
    shows it (the page re-renders the row, so the switch is looked up each time)."""
    wanted = "RUNNING" if on else "STOPPED"
    for _attempt in range(3):
        # A click while the row is still updating after the previous switch can be lost: click
        # again only once the instance confirms nothing changed.
        label, checkbox = automation_switch(page, kind, name)
        sync_api.expect(checkbox).to_be_checked(checked=not on, timeout=PAGE_TIMEOUT_MS)
        sync_api.expect(checkbox).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
        label.click()
        if wait_for_status(url, kind, name, wanted, timeout_s=10) == wanted:
            break
    assert instigator_status(url, kind, name) == wanted
    _label, checkbox = automation_switch(page, kind, name)
    sync_api.expect(checkbox).to_be_checked(checked=on, timeout=PAGE_TIMEOUT_MS)


def add_dynamic_partition(url: str, partitions_name: str, key: str) -> None:
    query = (
        "mutation($r: RepositorySelector!, $p: String!, $k: String!) { addDynamicPartition("
        "repositorySelector: $r, partitionsDefName: $p, partitionKey: $k) { __typename } }"
    )
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    result = graphql(url, query, {"r": selector, "p": partitions_name, "k": key})
    assert result["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", result


def sensor_run_ids(url: str, name: str) -> list[str]:
    """Run ids requested by the sensor's ticks so far (failing on a tick error)."""
    query = (
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { "
        "sensorState { ticks(limit: 10) { status runIds error { message } } } } } }"
    )
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    ticks = graphql(url, query, {"s": {**selector, "sensorName": name}})["sensorOrError"][
        "sensorState"
    ]["ticks"]
    assert not [tick for tick in ticks if tick["error"]], ticks
    return [run_id for tick in ticks for run_id in tick["runIds"]]


def test_sensor_and_schedule_are_listed_and_switch_on(dagster_dev: DagsterDev, page: Any) -> None:
    url = dagster_dev.url
    # As after `yt-assets demo`: the first ready prefixes are known partitions, the last is new.
    ready = ready_prefixes(demo_objects(datetime.now(UTC).date()))
    for key in ready[:-1]:
        add_dynamic_partition(url, S3_PREFIX_PARTITIONS_NAME, key)

    page.goto(f"{url}/automation")
    instigators = (("sensor", "s3_prefix_sensor"), ("schedule", "daily_s3_schedule"))
    for kind, name in instigators:
        page.get_by_role("link", name=re.compile(name)).first.wait_for()
        automation_switch(page, kind, name)
    screenshot(page, "12_automation_listed")
    for kind, name in instigators:
        assert instigator_status(url, kind, name) == "STOPPED"
        flip_switch(page, url, kind, name, on=True)
    screenshot(page, "13_automation_switched_on")

    # The sensor's first tick finds the one new ready prefix and runs its partition.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run_ids = sensor_run_ids(url, "s3_prefix_sensor")
    while not run_ids and time.monotonic() < deadline:
        time.sleep(1)
        run_ids = sensor_run_ids(url, "s3_prefix_sensor")
    assert len(run_ids) == 1, run_ids
    # Off again, so that nothing new starts while the test stack shuts down.
    for kind, name in instigators:
        flip_switch(page, url, kind, name, on=False)
    confirm_run_succeeded(page, url, run_ids[0], "14_sensor_run_success")
    tags = graphql(
        url,
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
        {"id": run_ids[0]},
    )["runOrError"]["tags"]
    assert {"key": "dagster/partition", "value": ready[-1]} in tags


def test_ctrl_c_stops_dagster_dev_and_the_stack(dagster_dev: DagsterDev) -> None:
    pids = dagster_dev.started_pids()
    assert len(pids) == 3, dagster_dev.log()  # S3 server, local YT, dagster dev
    assert all(pid_alive(pid) for pid in pids)
    dev_pid = int(re.findall(r"Starting dg dev \(pid (\d+)", dagster_dev.log())[0])
    assert re.search(r"yt --proxy http://127\.0\.0\.1:\d+ list //home/yt_assets", dagster_dev.log())
    assert "SupersessionWarning" not in dagster_dev.log()
    assert dagster_dev.stop() == 0, dagster_dev.log()[-3000:]
    assert not any(pid_alive(pid) for pid in pids)
    assert group_members(dev_pid) == []
    assert "Stopped the local S3" in dagster_dev.log()
