"""Bad input and transient faults (issue 15): nothing stored is lost, nothing is recorded as broken
that a retry would fix, and every error is one clear line at its cause.

Real servers only: moto's S3 server, the local YT, and a fault-injecting HTTP proxy on loopback
(``fault_proxy.py``) in front of moto.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.definitions import build_definitions
from yt_assets.local_yt import LocalYT
from yt_assets.partitions import daily_partitions, prefix_for_day
from yt_assets.s3.listing import iter_s3_objects
from yt_assets.s3.retries import RetryCounter, RetryPolicy
from yt_assets.settings import InvalidSettingError
from yt_assets.yt.paths import escape_node_name
from yt_assets.yt.schemas import LISTING_COLUMNS, yt_schema
from yt_assets.yt.tables import OWNER_ATTRIBUTE, publish_rows
from yt_assets.yt_jobs.s3_processing import S3Credentials, process_rows
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.dagster_stack import stack_resources
from yt_assets_tests.fault_proxy import FaultPlan, FaultProxy
from yt_assets_tests.s3_fake_http import CannedS3Server, error_xml, list_page_xml

ROOT = "//home/fault_tests"

OBJECTS = {
    "data/a.jsonl": b'{"x": 1}\n{"x": 2}\n',
    "data/b.jsonl": b'{"x": 3}\n',
    "data/c.csv": b"x\n1\n",
}


def resources(
    local_yt: LocalYT, s3_server: S3TestServer, root: str = ROOT, **s3_options: Any
) -> dict[str, Any]:
    built = stack_resources(local_yt, s3_server, root)
    if s3_options:
        built["s3"] = S3Resource(
            **{
                "endpoint_url": s3_server.endpoint_url,
                "region_name": s3_server.region,
                "aws_access_key_id": s3_server.access_key,
                "aws_secret_access_key": s3_server.secret_key,
                **s3_options,
            }
        )
    return built


def run_config(**configs: dict[str, Any]) -> dict[str, Any]:
    return {"ops": {name: {"config": config} for name, config in configs.items()}}


def step_failure(result: dg.ExecuteInProcessResult, step: str) -> Any:
    """The error of the failed ``step`` (a SerializableErrorInfo)."""
    [event] = [
        e for e in result.all_events if e.event_type_value == "STEP_FAILURE" and e.step_key == step
    ]
    return event.event_specific_data.error


def refused(
    assets: list[dg.AssetsDefinition],
    built_resources: dict[str, Any],
    step: str,
    *,
    selection: list[dg.AssetsDefinition] | None = None,
    config: dict[str, Any] | None = None,
) -> Any:
    """Materialise ``assets``; the run must fail at ``step``: that step's error."""
    result = dg.materialize(
        assets,
        selection=selection,
        resources=built_resources,
        run_config=run_config(**{step: config}) if config is not None else None,
        raise_on_error=False,
    )
    assert not result.success
    return step_failure(result, step)


def headline(error: Any) -> str:
    """What the UI and CLI show first: the error's first line, without the class name."""
    first_line = error.message.splitlines()[0]
    return first_line.split(": ", 1)[1] if ": " in first_line else first_line


def snapshot(client: yt.YtClient, path: str) -> tuple[str, int, list[dict[str, Any]]]:
    """Node id, row count and rows of a table: what must stay unchanged after a refused run."""
    return (
        client.get(f"{path}/@id"),
        client.get(f"{path}/@row_count"),
        list(client.read_table(path)),
    )


@pytest.fixture
def materialised(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> dict[str, Any]:
    """A listing and a processed table materialised once, with their snapshots."""
    put_objects(s3_server, s3_bucket, OBJECTS)
    name = f"bad_{s3_bucket[-8:]}"
    listing = build_s3_listing_asset(f"{name}_listing", bucket=s3_bucket, prefix="data/")
    processed = build_s3_processing_asset(f"{name}_processed", listing=listing, job_count=1)
    result = dg.materialize([listing, processed], resources=resources(dagster_local_yt, s3_server))
    assert result.success
    listing_path = f"{ROOT}/{name}_listing"
    processed_path = f"{ROOT}/{name}_processed"
    assert yt_client.get(f"{listing_path}/@row_count") == len(OBJECTS)
    return {
        "listing": listing,
        "processed": processed,
        "listing_path": listing_path,
        "processed_path": processed_path,
        "before": (snapshot(yt_client, listing_path), snapshot(yt_client, processed_path)),
    }


def assert_unchanged(client: yt.YtClient, materialised: dict[str, Any]) -> None:
    after = (
        snapshot(client, materialised["listing_path"]),
        snapshot(client, materialised["processed_path"]),
    )
    assert after == materialised["before"]


# --- 1. an empty result from a non-empty listing is not a success --------------------------------


def test_glob_extension_is_refused_and_the_tables_stay(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
) -> None:
    """The issue's first case: ``extension: "*.json"`` in the launchpad, end to end."""
    listing, processed = materialised["listing"], materialised["processed"]
    error = refused(
        [listing, processed],
        resources(dagster_local_yt, s3_server),
        listing.key.path[-1],
        config={"extension": "*.json"},
    )
    assert error.cls_name == "InvalidConfigError"
    line = headline(error)
    assert "\n" not in line and "pydantic" not in line
    assert "extension '*.json' is invalid" in line and "write '.json'" in line
    assert_unchanged(yt_client, materialised)


def test_extension_matching_nothing_fails_naming_filter_and_keys(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    s3_bucket: str,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
) -> None:
    listing, processed = materialised["listing"], materialised["processed"]
    name = listing.key.path[-1]
    error = refused(
        [listing, processed],
        resources(dagster_local_yt, s3_server),
        name,
        config={"extension": ".jsn"},
    )
    assert error.cls_name == "Failure"
    assert headline(error) == (
        f"extension '.jsn' matched none of 3 keys under s3://{s3_bucket}/data/ (e.g. "
        "data/a.jsonl, data/b.jsonl, data/c.csv); write '.csv' or '.jsonl', or set "
        "allow_no_match: true to accept an empty table. The stored table is unchanged."
    )
    assert_unchanged(yt_client, materialised)

    # Accepted deliberately: an empty table with its schema.
    result = dg.materialize(
        [listing],
        resources=resources(dagster_local_yt, s3_server),
        run_config=run_config(**{name: {"extension": ".jsn", "allow_no_match": True}}),
    )
    assert result.success
    path = materialised["listing_path"]
    assert yt_client.get(f"{path}/@row_count") == 0
    assert [c["name"] for c in yt_client.get(f"{path}/@schema")] == [
        c.name for c in LISTING_COLUMNS
    ]


def test_a_prefix_without_objects_still_gives_an_empty_table(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, {"empty/": b"", "other/a.json": b"{}"})
    listing = build_s3_listing_asset("empty_prefix_listing", bucket=s3_bucket, prefix="empty/")
    result = dg.materialize(
        [listing],
        resources=resources(dagster_local_yt, s3_server),
        run_config=run_config(empty_prefix_listing={"extension": ".json"}),
    )
    assert result.success
    assert yt_client.get(f"{ROOT}/empty_prefix_listing/@row_count") == 0


# --- 2. config that can't mean what was written is refused when it is read -----------------------


@pytest.mark.parametrize(
    ("asset", "config", "expected"),
    [
        (
            "listing",
            {"prefix": "/data/"},
            "prefix '/data/' is invalid: S3 keys don't start with '/'",
        ),
        ("listing", {"extension": "data/.json"}, "extension 'data/.json' is invalid"),
        ("listing", {"extension": "js?n"}, "extension 'js?n' is invalid: it is a suffix"),
        ("listing", {"bucket": "Bad_Bucket"}, "bucket 'Bad_Bucket' is not a valid S3 bucket name"),
        ("listing", {"bucket": "192.168.1.1"}, "is not formatted as an IP address"),
        ("listing", {"max_files": -1}, "max_files=-1 is invalid: it must be >= 0"),
        ("processed", {"job_count": 0}, "job_count=0 is invalid: input should be greater"),
        ("processed", {"memory_limit_mb": 0}, "memory_limit_mb=0 is invalid"),
        ("processed", {"downloads_in_flight": 0}, "downloads_in_flight=0 is invalid"),
        ("processed", {"docker_image": ""}, "docker_image='' is invalid: it must not be empty"),
        ("processed", {"download_attempts": 0}, "download_attempts=0 is invalid"),
    ],
)
def test_invalid_config_fails_the_step_with_one_line_and_the_tables_stay(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
    asset: str,
    config: dict[str, Any],
    expected: str,
) -> None:
    listing, processed = materialised["listing"], materialised["processed"]
    step = materialised[asset].key.path[-1]
    error = refused(
        [listing, processed],
        resources(dagster_local_yt, s3_server),
        step,
        selection=[materialised[asset]],  # the processing step alone reads the stored listing
        config=config,
    )
    assert error.cls_name == "InvalidConfigError"
    line = headline(error)
    assert expected in line, line
    assert "errors.pydantic.dev" not in error.message and "validation error" not in line
    assert_unchanged(yt_client, materialised)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("YT_ROOT", "home/x", "YT_ROOT='home/x' is invalid: it must be an absolute Cypress path"),
        ("YT_ROOT", "/home/x", "YT_ROOT='/home/x' is invalid"),
        (
            "DAILY_SCHEDULE_HOUR",
            "24",
            "DAILY_SCHEDULE_HOUR='24' is invalid: it must be a whole hour",
        ),
        ("DAILY_SCHEDULE_HOUR", "two", "DAILY_SCHEDULE_HOUR='two' is invalid"),
        (
            "S3_DAILY_PREFIX_TEMPLATE",
            "events/",
            "S3_DAILY_PREFIX_TEMPLATE='events/' is invalid: it needs a date field",
        ),
        ("S3_DAILY_PREFIX_TEMPLATE", "events/%Y/%m/", "needs a date field"),
    ],
)
def test_invalid_environment_settings_stop_loading_with_one_line(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        build_definitions({"S3_BUCKET": "demo-bucket", variable: value})
    assert expected in str(raised.value) and "\n" not in str(raised.value)


# --- 3. errors surface at their cause ------------------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as probe:  # nothing listens there once the socket is closed
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_such_bucket", "failed: NoSuchBucket (HTTP 404)"),
        ("access_denied", "failed: AccessDenied (HTTP 403)"),
        ("throttled", "failed: SlowDown (HTTP 503, gave up after 4 attempts)"),
        (
            "wrong_endpoint",
            "failed: EndpointConnectionError (endpoint {endpoint}, gave up after 4 attempts)",
        ),
        ("denied_on_page_2", "failed: AccessDenied (HTTP 403)"),  # while the IO manager writes
    ],
)
def test_s3_errors_fail_the_listing_step_with_one_line(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
    case: str,
    expected: str,
) -> None:
    listing, processed = materialised["listing"], materialised["processed"]
    step = listing.key.path[-1]
    bucket = "no-such-bucket-15" if case == "no_such_bucket" else "b15"

    def run(endpoint_url: str) -> Any:
        built = resources(dagster_local_yt, s3_server, endpoint_url=endpoint_url, max_attempts=1)
        return refused([listing, processed], built, step, config={"bucket": bucket})

    if case == "denied_on_page_2":

        def respond(number: int, _path: str) -> tuple[int, str]:
            if number == 1:
                return 200, list_page_xml(["data/a.json"], truncated=True, next_token="t2")
            return 403, error_xml("AccessDenied", "no")

        with CannedS3Server(respond) as server:
            error = run(server.endpoint_url)
    elif case in ("access_denied", "throttled"):
        status, code = (403, "AccessDenied") if case == "access_denied" else (503, "SlowDown")
        with CannedS3Server(lambda _n, _path: (status, error_xml(code, "no"))) as server:
            error = run(server.endpoint_url)
    else:
        endpoint = closed_port_url() if case == "wrong_endpoint" else s3_server.endpoint_url
        error = run(endpoint)
        expected = expected.replace("{endpoint}", endpoint)
    assert error.cls_name == "Failure"  # not DagsterExecutionHandleOutputError
    assert headline(error) == f"Listing s3://{bucket}/data/ {expected}"
    assert s3_server.secret_key not in error.to_string()
    assert_unchanged(yt_client, materialised)


# --- 4. the YT side refuses to clobber what isn't its own ----------------------------------------


def test_a_map_node_at_the_table_path_is_refused_and_kept(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, OBJECTS)
    listing = build_s3_listing_asset("dir_listing", bucket=s3_bucket, prefix="data/")
    path = f"{ROOT}/dir_listing"
    yt_client.create("map_node", path, recursive=True, force=True)
    yt_client.create("document", f"{path}/notes", attributes={"value": {"keep": "me"}})
    node_id = yt_client.get(f"{path}/@id")
    error = refused([listing], resources(dagster_local_yt, s3_server), "dir_listing")
    assert headline(error).startswith(
        f"{path} holds a map_node, not a table: refusing to replace it"
    )
    assert yt_client.get(f"{path}/@id") == node_id
    assert yt_client.get(f"{path}/notes") == {"keep": "me"}
    assert yt_client.list(path) == ["notes"]  # no temporary table left beside it
    assert [n for n in yt_client.list(ROOT) if n.startswith("dir_listing.tmp")] == []


def test_a_foreign_table_of_another_schema_is_refused_and_kept(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, OBJECTS)
    listing = build_s3_listing_asset("foreign_listing", bucket=s3_bucket, prefix="data/")
    path = f"{ROOT}/foreign_listing"
    schema = [{"name": "id", "type": "int64"}, {"name": "name", "type": "string"}]
    yt_client.create("table", path, recursive=True, force=True, attributes={"schema": schema})
    yt_client.write_table(path, [{"id": 1, "name": "precious"}])
    before = snapshot(yt_client, path)
    line = headline(refused([listing], resources(dagster_local_yt, s3_server), "foreign_listing"))
    assert line.startswith(
        f"{path} is a table not published by asset 'foreign_listing', with schema "
        "[id int64, name string]; the asset's schema is [bucket string required ascending, "
    )
    assert f"set @{OWNER_ATTRIBUTE}='foreign_listing' on it" in line
    assert snapshot(yt_client, path) == before


def test_schema_evolution_replaces_the_assets_own_table(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    """A table the asset published with an older schema (one column fewer) is replaced."""
    put_objects(s3_server, s3_bucket, OBJECTS)
    listing = build_s3_listing_asset("evolving_listing", bucket=s3_bucket, prefix="data/")
    path = f"{ROOT}/evolving_listing"
    old_columns = [column for column in LISTING_COLUMNS if column.name != "etag"]
    old_rows = [{"bucket": s3_bucket, "path": "old", "size": 1, "last_modified": 0}]
    publish_rows(yt_client, path, old_rows, yt_schema(old_columns), owner="evolving_listing")
    assert yt_client.get(f"{path}/@{OWNER_ATTRIBUTE}") == "evolving_listing"
    result = dg.materialize([listing], resources=resources(dagster_local_yt, s3_server))
    assert result.success
    assert "etag" in [c["name"] for c in yt_client.get(f"{path}/@schema")]
    assert sorted(row["path"] for row in yt_client.read_table(path)) == sorted(OBJECTS)
    assert yt_client.get(f"{path}/@{OWNER_ATTRIBUTE}") == "evolving_listing"


def test_a_table_of_another_asset_is_refused_and_kept(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    """Same schema, but published by another asset (two assets configured onto one path)."""
    put_objects(s3_server, s3_bucket, OBJECTS)
    listing = build_s3_listing_asset("second_owner", bucket=s3_bucket, prefix="data/")
    path = f"{ROOT}/second_owner"
    rows = [{"bucket": s3_bucket, "path": "x", "size": 1, "etag": "e", "last_modified": 0}]
    publish_rows(yt_client, path, rows, yt_schema(LISTING_COLUMNS), owner="first_owner")
    before = snapshot(yt_client, path)
    error = refused([listing], resources(dagster_local_yt, s3_server), "second_owner")
    assert headline(error) == (
        f"{path} is the table of asset 'first_owner', not of 'second_owner': refusing to replace "
        "it (two assets share one path; give one another path)"
    )
    assert snapshot(yt_client, path) == before


def test_processing_over_a_missing_listing_table_fails_with_one_line(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
) -> None:
    listing, processed = materialised["listing"], materialised["processed"]
    yt_client.remove(materialised["listing_path"])
    error = refused(
        [listing, processed],
        resources(dagster_local_yt, s3_server),
        processed.key.path[-1],
        selection=[processed],
    )
    assert error.cls_name == "Failure"
    assert headline(error) == (
        f"Input 'listing_table': no YT table at {materialised['listing_path']} (materialise "
        f"{listing.key.path[-1]} or its partition first)"
    )
    assert snapshot(yt_client, materialised["processed_path"]) == materialised["before"][1]


def test_processing_refuses_a_foreign_output_table_and_drops_its_scratch_output(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    yt_client: yt.YtClient,
    materialised: dict[str, Any],
) -> None:
    listing, processed = materialised["listing"], materialised["processed"]
    path = materialised["processed_path"]
    yt_client.create(
        "table", path, force=True, attributes={"schema": [{"name": "bucket", "type": "string"}]}
    )
    yt_client.write_table(path, [{"bucket": "someone else's"}])
    before = snapshot(yt_client, path)
    result = dg.materialize(
        [listing, processed],
        selection=[processed],
        resources=resources(dagster_local_yt, s3_server),
        raise_on_error=False,
    )
    line = headline(step_failure(result, processed.key.path[-1]))
    assert line.startswith(f"{path} is a table not published by asset ")
    assert "with schema [bucket string]; the asset's schema is [bucket string required, " in line
    assert snapshot(yt_client, path) == before
    scratch = f"//tmp/yt_assets/{result.run_id}"
    assert yt_client.list(scratch) == []  # the operation's output was removed


# --- 5. transient faults are retried, permanent ones recorded ------------------------------------

FAULTS = FaultPlan(throttle=0.2, cut=0.08, reset=0.04, slow=0.03, slow_seconds=2.5)


def test_listing_and_processing_through_faults_are_exact(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    bodies = {f"many/{i:04d}.jsonl": b'{"n": %d}\n' % i * (1 + i % 7) for i in range(240)}
    put_objects(s3_server, s3_bucket, bodies)
    listing = build_s3_listing_asset("chaos_listing", bucket=s3_bucket, prefix="many/")
    processed = build_s3_processing_asset(
        "chaos_processed", listing=listing, job_count=2, download_timeout_seconds=1.0
    )
    with FaultProxy(s3_server.endpoint_url, FAULTS) as proxy:
        result = dg.materialize(
            [listing, processed],
            resources=resources(dagster_local_yt, s3_server, endpoint_url=proxy.endpoint_url),
        )
    assert result.success
    listed = [row["path"] for row in yt_client.read_table(f"{ROOT}/chaos_listing")]
    assert listed == sorted(bodies)
    rows = list(yt_client.read_table(f"{ROOT}/chaos_processed"))
    assert sorted(row["path"] for row in rows) == sorted(bodies)  # each object once
    assert [row for row in rows if row["error"]] == []
    for row in rows:
        assert row["sha256"] == hashlib.sha256(bodies[row["path"]]).hexdigest()
        assert row["size"] == len(bodies[row["path"]])
    # The faults were real: every kind hit the downloads.
    for fault in ("get_throttle", "get_cut", "get_reset", "get_slow"):
        assert proxy.counts[fault] > 0, proxy.counts


@pytest.mark.parametrize("fetcher", ["fast", "boto3"])
def test_listing_pages_through_faults_are_exact(
    s3_server: S3TestServer, s3_bucket: str, fetcher: str
) -> None:
    keys = [f"p/{i // 50}/{i:04d}.json" for i in range(300)]
    put_objects(s3_server, s3_bucket, dict.fromkeys(keys, b"{}"))
    plan = FaultPlan(throttle=0.2, cut=0.1, reset=0.05, kinds=frozenset({"list"}))
    counter = RetryCounter()
    with FaultProxy(s3_server.endpoint_url, plan) as proxy:
        client = S3TestServer(endpoint_url=proxy.endpoint_url).client(
            retries={"mode": "standard", "max_attempts": 2}
        )
        listed = [
            obj.key
            for obj in iter_s3_objects(
                client, s3_bucket, "p/", fetcher=fetcher, page_size=10, retry_counter=counter
            )
        ]
    assert listed == keys
    assert proxy.counts["list_throttle"] and proxy.counts["list_cut"] and proxy.counts["list_reset"]


def test_permanent_errors_and_exhausted_budgets_become_error_rows_naming_attempts(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"ok.txt": b"fine\n"})
    credentials = S3Credentials(s3_server.access_key, s3_server.secret_key)
    rows = [{"bucket": s3_bucket, "path": "ok.txt"}, {"bucket": s3_bucket, "path": "gone.txt"}]
    counter = RetryCounter()
    with FaultProxy(s3_server.endpoint_url, FaultPlan()) as proxy:
        client = credentials.client(endpoint_url=proxy.endpoint_url, max_attempts=0)
        results = list(process_rows(rows, client, retry_counter=counter))
        assert results[0]["error"] is None and results[0]["sha256"]
        assert results[1]["error"] == "NoSuchKey (HTTP 404)"  # permanent: not retried
        assert counter.retries == 0

        proxy.set_plan(FaultPlan(throttle=1.0, kinds=frozenset({"get"})))
        policy = RetryPolicy(max_attempts=3, max_seconds=30, base_delay=0.01)
        results = list(process_rows(rows[:1], client, retry=policy, retry_counter=counter))
    [row] = results
    assert row["sha256"] is None
    assert row["error"].startswith(
        "SlowDown (HTTP 503): retry budget exhausted after 3 attempts in "
    )
    assert counter.retries == 2 and counter.gave_up == 1
    assert counter.summary() == "2 retries (SlowDown (HTTP 503): 2)"
    assert proxy.counts["get_throttle"] == 3


# --- 6. concurrent runs never fail on each other's bookkeeping -----------------------------------


def run_at_once(calls: list[Callable[[], dg.ExecuteInProcessResult]]) -> list[Any]:
    """Start every call at the same moment, each in its own thread; their results (or errors)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def target(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def no_temporary_nodes(client: yt.YtClient, directory: str) -> bool:
    return not [name for name in client.list(directory) if ".tmp-" in name]


def test_three_concurrent_runs_of_one_asset_on_a_fresh_root(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, {**OBJECTS, "more/x.jsonl": b"{}\n"})
    root = f"//home/fresh_{s3_bucket[-8:]}/deeper"
    listing = build_s3_listing_asset("concurrent_listing", bucket=s3_bucket)
    prefixes = ["data/", "data/", "more/"]
    results = run_at_once(
        [
            lambda prefix=prefix: dg.materialize(
                [listing],
                resources=resources(dagster_local_yt, s3_server, root=root),
                run_config=run_config(concurrent_listing={"prefix": prefix}),
            )
            for prefix in prefixes
        ]
    )
    assert all(isinstance(r, dg.ExecuteInProcessResult) and r.success for r in results), results
    paths = sorted(row["path"] for row in yt_client.read_table(f"{root}/concurrent_listing"))
    assert paths in (sorted(OBJECTS), ["more/x.jsonl"])  # one run's whole table
    assert no_temporary_nodes(yt_client, root)


def test_a_backfill_of_ten_daily_partitions_at_once_on_a_fresh_root(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    template = "days/{date}/"
    days = daily_partitions.get_partition_keys()[:10]
    bodies = {
        f"{prefix_for_day(template, day)}{i}.jsonl": b'{"d": "%s"}\n' % day.encode()
        for day in days
        for i in range(2)
    }
    put_objects(s3_server, s3_bucket, bodies)
    root = f"//home/backfill_{s3_bucket[-8:]}"
    listing = build_s3_listing_asset(
        "backfill_listing",
        bucket=s3_bucket,
        prefix=template,
        partitions_def=daily_partitions,
        prefix_for_partition=prefix_for_day,
    )
    processed = build_s3_processing_asset(
        "backfill_processed", listing=listing, partitions_def=daily_partitions, job_count=1
    )
    results = run_at_once(
        [
            lambda day=day: dg.materialize(
                [listing, processed],
                resources=resources(dagster_local_yt, s3_server, root=root),
                partition_key=day,
            )
            for day in days
        ]
    )
    assert all(isinstance(r, dg.ExecuteInProcessResult) and r.success for r in results), results
    for asset in ("backfill_listing", "backfill_processed"):
        directory = f"{root}/{asset}"
        assert sorted(yt_client.list(directory)) == sorted(escape_node_name(d) for d in days)
        for day in days:
            rows = list(yt_client.read_table(f"{directory}/{escape_node_name(day)}"))
            assert sorted(row["path"] for row in rows) == sorted(
                key for key in bodies if key.startswith(prefix_for_day(template, day))
            )
        assert no_temporary_nodes(yt_client, directory)
