"""What a new user meets in the first hour: help texts, the launchpad, the sensor without a bucket,
table names before the first run, the shell environment of a running stack, and an on-demand
local YT that stops itself when idle and comes back with its state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.cli import main as cli_main
from yt_assets.definitions import build_definitions
from yt_assets.demo.stack import DemoHome, DemoStack
from yt_assets.io_manager import YTTableIOManager
from yt_assets.local_yt import running_server, stop_local_yt
from yt_assets.local_yt.__main__ import main as local_yt_main
from yt_assets.local_yt.processes import pid_alive
from yt_assets.resources import YTResource, build_s3_resource
from yt_assets.settings import Settings
from yt_assets_tests.conftest import S3TestServer, put_objects

# reST roles and literals (a literal block's "Example::" reads as plain text and stays).
MARKUP = re.compile(r"``|:(?:class|func|py|mod|meth|attr|data|obj|exc):")


def _descriptions(config_type: Any, path: str, depth: int = 0) -> list[tuple[str, str]]:
    """Every (path, description) of a Dagster config type, recursively (a tree)."""
    if depth > 20:
        return []
    found: list[tuple[str, str]] = []
    fields = getattr(config_type, "fields", None)
    if isinstance(fields, dict):
        for name, field in fields.items():
            if field.description:
                found.append((f"{path}.{name}", field.description))
            found += _descriptions(field.config_type, f"{path}.{name}", depth + 1)
    for attribute in ("inner_type", "scalar_type", "non_scalar_type"):
        inner = getattr(config_type, attribute, None)
        if inner is not None:
            found += _descriptions(inner, path, depth + 1)
    for parameter in getattr(config_type, "type_params", None) or []:
        found += _descriptions(parameter, path, depth + 1)
    return found


def test_launchpad_descriptions_are_plain_text() -> None:
    job = build_definitions({}).resolve_implicit_global_asset_job_def()
    descriptions = _descriptions(job.run_config_schema.config_type, "")
    paths = {path for path, _ in descriptions}
    # The resources and the run config of both kinds of asset are described...
    assert {".resources.yt_cluster", ".resources.s3", ".resources.io_manager"} <= paths
    assert ".ops.s3_listing.config" in paths and ".ops.s3_objects_processed.config" in paths
    # ... in plain text.
    assert [(path, text) for path, text in descriptions if MARKUP.search(text)] == []


def test_use_ssl_follows_the_endpoint_scheme() -> None:
    def use_ssl(endpoint: str | None) -> bool:
        environ = {"S3_ENDPOINT": endpoint} if endpoint is not None else {}
        resource = build_s3_resource("download", Settings.from_environ(environ))
        assert isinstance(resource, S3Resource)
        return bool(resource.use_ssl)

    assert use_ssl("http://127.0.0.1:9000") is False
    assert use_ssl("http://minio.internal:9000") is False
    assert use_ssl("https://storage.example.com") is True
    assert use_ssl(None) is True  # AWS itself


def test_help_is_plain_text_and_names_the_full_command() -> None:
    def help_of(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "yt_assets.cli", *args, "--help"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    texts = {
        args: help_of(*args)
        for args in [(), ("demo",), ("env",), ("exec",), ("local-yt",), ("local-yt", "status")]
    }
    for args, text in texts.items():
        assert not MARKUP.search(text), (args, text)
    assert texts[("local-yt",)].startswith("usage: yt-assets local-yt ")
    assert texts[("local-yt", "status")].startswith("usage: yt-assets local-yt status ")
    assert "pip install 'yt-assets[demo]'" in texts[()]


def test_sensor_without_a_bucket_is_there_and_skips_naming_the_variable() -> None:
    defs = build_definitions({"S3_SENSOR_ROOT": "incoming/"})
    sensor = defs.resolve_sensor_def("s3_prefix_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = sensor.evaluate_tick(context)
    assert result.run_requests == []
    assert result.skip_message is not None
    assert "set S3_BUCKET" in result.skip_message and "'incoming/'" in result.skip_message


def test_unpartitioned_assets_name_their_table_before_any_run() -> None:
    defs = build_definitions({"YT_ROOT": "//home/first_hour"})
    tables = {}
    for name in ("s3_listing", "s3_objects_processed", "daily_s3_listing", "s3_prefix_processed"):
        asset = defs.resolve_assets_def(name)
        tables[name] = asset.metadata_by_key[asset.key].get("dagster/table_name")
    assert tables == {
        "s3_listing": "//home/first_hour/s3_listing",
        "s3_objects_processed": "//home/first_hour/s3_objects_processed",
        # One table per partition: the materialisations name them.
        "daily_s3_listing": None,
        "s3_prefix_processed": None,
    }


def test_env_and_exec_give_the_running_stack_to_a_shell(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert cli_main(["env", "--dir", str(home)]) == 1
    error = capfd.readouterr().err
    assert error.count("\n") == 1 and "no demo stack runs in" in error

    with DemoStack(DemoHome(home), backend="moto") as stack:
        assert cli_main(["env", "--dir", str(home)]) == 0
        exports = capfd.readouterr().out
        assert f"export S3_ENDPOINT={stack.environment()['S3_ENDPOINT']}" in exports
        assert f"export YT_LOCAL_PROXY={stack.yt_proxy_url}" in exports
        assert f"yt --proxy {stack.yt_proxy_url} list //home/yt_assets" in exports

        # exec: the command sees the stack (here the local-yt status of YT_LOCAL_ROOT, the
        # stack's local YT) and its exit status is returned.
        assert cli_main(["exec", "--dir", str(home), "--", "yt-assets", "local-yt", "status"]) == 0
        status = capfd.readouterr().out
        assert f"pid {stack.yt_pid()}  {stack.yt_proxy_url}  shared" in status
        code = "import os, sys; print(os.environ['S3_BUCKET']); sys.exit(3)"
        assert cli_main(["exec", "--dir", str(home), "--", sys.executable, "-c", code]) == 3
        assert capfd.readouterr().out == "yt-assets-demo\n"
        assert cli_main(["exec", "--dir", str(home), "--", "no-such-command-here"]) == 127


def _wait_gone(pid: int, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not pid_alive(pid)


def _server_pid(root: Path) -> int:
    return int(json.loads((root / "server.json").read_text())["pid"])


def test_on_demand_local_yt_stops_when_idle_and_comes_back_with_its_state(
    tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    root = tmp_path / "yt"
    put_objects(s3_server, s3_bucket, {"in/a.jsonl": b'{"a": 1}\n', "in/b.jsonl": b"{}\n{}\n"})
    yt_cluster = YTResource(local_root=str(root), local_idle_timeout_s=3)
    s3 = S3Resource(
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )
    resources = {
        "yt_cluster": yt_cluster,
        "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root="//home/idle"),
        "s3": s3,
    }
    listing = build_s3_listing_asset("idle_listing", bucket=s3_bucket, prefix="in/")
    processed = build_s3_processing_asset("idle_processed", listing=listing, job_count=1)
    try:
        assert dg.materialize([listing], resources=resources).success
        first_pid = _server_pid(root)
        assert _wait_gone(first_pid), "the on-demand local YT did not stop when idle"
        assert running_server(root) is None
        assert not (root / "server.json").exists()  # it cleans up after itself

        # A later run starts it again; the listing table of the first run is still there.
        result = dg.materialize([listing, processed], resources=resources, selection=[processed])
        assert result.success
        second_pid = _server_pid(root)
        assert second_pid != first_pid
        with yt_cluster.get_client() as client:
            assert client.get("//home/idle/idle_listing/@row_count") == 2
            rows = {
                row["path"]: row["lines"] for row in client.read_table("//home/idle/idle_processed")
            }
        assert rows == {"in/a.jsonl": 1, "in/b.jsonl": 2}

        # local-yt status lists it; stop stops it by pid.
        assert local_yt_main(["status", "--root", str(root)]) == 0
        assert local_yt_main(["stop", "--root", str(root)]) == 0
        assert not pid_alive(second_pid)
        assert local_yt_main(["status", "--root", str(root)]) == 1
    finally:
        stop_local_yt(root)


def test_on_demand_local_yt_stays_up_while_a_client_is_held(tmp_path: Path) -> None:
    """A step that holds its client but sends nothing for longer than the idle period (a long S3
    listing, packing a job's modules) still finds the server; released, the server idles out."""
    root = tmp_path / "yt"
    resource = YTResource(local_root=str(root), local_idle_timeout_s=1)
    try:
        with resource.get_client() as client:
            client.create("map_node", "//home/held", recursive=True)
            pid = _server_pid(root)
            time.sleep(4)  # four idle periods without a request
            assert client.exists("//home/held")
            assert _server_pid(root) == pid
        assert _wait_gone(pid), "the released local YT did not stop when idle"
    finally:
        stop_local_yt(root)


def test_idle_timeout_setting() -> None:
    from yt_assets.resources import build_resources

    settings = Settings.from_environ({"YT_LOCAL_IDLE_TIMEOUT": "30"})
    assert build_resources(settings=settings)["yt_cluster"].local_idle_timeout_s == 30
    default = build_resources(settings=Settings.from_environ({}))["yt_cluster"]
    assert default.local_idle_timeout_s == 300
    for bad in ("0", "-1", "soon"):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"YT_LOCAL_IDLE_TIMEOUT={bad!r} is invalid: it must be a number of seconds > 0"
            ),
        ):
            Settings.from_environ({"YT_LOCAL_IDLE_TIMEOUT": bad})
