"""The core product through Dagster: listing into YT, processing on YT, atomic publication, secrets.

Real servers only: moto's S3 server and the local YT on loopback.
"""

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource
from yt.logger import LOGGER as YT_LOGGER

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.io_manager import SCHEMA_METADATA_KEY, YTTableIOManager, dagster_table_schema
from yt_assets.local_yt import LocalYT
from yt_assets.resources import YTResource, build_resources
from yt_assets.yt.schemas import ColumnSpec
from yt_assets.yt.tables import YTTable, YTTableRows
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.dagster_stack import (
    UPLOAD_ACCESS,
    UPLOAD_SECRET,
    stack_resources,
)
from yt_assets_tests.job_processors import environment_probe, prints_its_keys_then_fails

ROOT = "//home/core_tests"


def make_resources(dagster_local_yt: LocalYT, s3_server: S3TestServer) -> dict[str, Any]:
    return stack_resources(dagster_local_yt, s3_server, ROOT)


def listing_config(name: str, bucket: str, **config: Any) -> dict[str, Any]:
    return {"ops": {name: {"config": {"bucket": bucket, **config}}}}


SAMPLE_OBJECTS = {
    "data/a.jsonl": b'{"x": 1}\n{"x": 2}\n',
    "data/b.json": b'[{"x": 1}, {"x": 2}, {"x": 3}]',
    "data/broken.json": b'{"x": 1, "y": ',
    "data/notes.txt": b"one\ntwo\nthree\n",
    "data/sub/": b"",  # a folder marker: never listed
    "data/sub/c.JSON": b'{"nested": true}\n',
    "other/ignored.txt": b"not under the prefix",
}


def test_listing_then_processing_records_every_object(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, SAMPLE_OBJECTS)
    listing = build_s3_listing_asset("core_listing", prefix="data/")
    processed = build_s3_processing_asset("core_processed", listing=listing, job_count=2)
    result = dg.materialize(
        [listing, processed],
        resources=make_resources(dagster_local_yt, s3_server),
        run_config=listing_config("core_listing", s3_bucket),
    )
    assert result.success

    listing_rows = list(yt_client.read_table(f"{ROOT}/core_listing"))
    expected_keys = sorted(
        k for k in SAMPLE_OBJECTS if k.startswith("data/") and not k.endswith("/")
    )
    assert [row["path"] for row in listing_rows] == expected_keys
    assert all(row["bucket"] == s3_bucket for row in listing_rows)
    # S3 lists in key order, so the listing table is a sorted YT table.
    assert list(yt_client.get(f"{ROOT}/core_listing/@sorted_by")) == ["bucket", "path"]
    assert {row["path"]: row["size"] for row in listing_rows} == {
        key: len(SAMPLE_OBJECTS[key]) for key in expected_keys
    }

    processed_rows = {row["path"]: row for row in yt_client.read_table(f"{ROOT}/core_processed")}
    assert sorted(processed_rows) == expected_keys
    for key in expected_keys:
        row = processed_rows[key]
        assert row["sha256"] == hashlib.sha256(SAMPLE_OBJECTS[key]).hexdigest(), key
        assert row["size"] == len(SAMPLE_OBJECTS[key])
        assert row["lines"] == SAMPLE_OBJECTS[key].count(b"\n")
    assert processed_rows["data/a.jsonl"]["records"] == 2
    assert processed_rows["data/b.json"]["records"] == 3
    assert processed_rows["data/sub/c.JSON"]["records"] == 1
    assert processed_rows["data/notes.txt"]["records"] is None
    broken = processed_rows["data/broken.json"]
    assert broken["parse_errors"] == 1 and broken["records"] == 0
    assert broken["error"] and "JSON" in broken["error"]
    assert all(processed_rows[k]["error"] is None for k in expected_keys if k != "data/broken.json")

    # Standard metadata on both materialisations.
    materializations = {
        m.asset_key.path[-1]: m.metadata
        for m in (
            e.event_specific_data.materialization for e in result.get_asset_materialization_events()
        )
    }
    listing_meta = materializations["core_listing"]
    assert listing_meta["dagster/table_name"].value == f"{ROOT}/core_listing"
    assert listing_meta["dagster/row_count"].value == len(expected_keys)
    assert [c.name for c in listing_meta[SCHEMA_METADATA_KEY].value.columns] == [
        "bucket",
        "path",
        "size",
        "etag",
        "last_modified",
    ]
    preview = listing_meta["preview"].value
    shown = [column.name for column in preview.schema.columns]
    same = dict(
        entry.split(" = ", 1)
        for entry in listing_meta["preview_same_on_every_row"].value.split(", ")
    )
    # bucket is the same on every row: named once instead of repeated (so may be last_modified,
    # the objects being put within one second).
    assert same["bucket"] == s3_bucket
    assert shown[:2] == ["path", "size"]
    assert sorted(shown + list(same)) == sorted(["bucket", "path", "size", "etag", "last_modified"])
    assert {record.data["path"] for record in preview.records} <= set(expected_keys)
    processed_meta = materializations["core_processed"]
    assert processed_meta["dagster/row_count"].value == len(expected_keys)
    assert processed_meta["yt_operation_id"].value


def test_extension_and_max_files_through_config(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, SAMPLE_OBJECTS)
    listing = build_s3_listing_asset("ext_listing")
    resources = make_resources(dagster_local_yt, s3_server)
    config = listing_config("ext_listing", s3_bucket, prefix="data/", extension="json")
    assert dg.materialize([listing], resources=resources, run_config=config).success
    paths = [row["path"] for row in yt_client.read_table(f"{ROOT}/ext_listing")]
    assert paths == ["data/b.json", "data/broken.json", "data/sub/c.JSON"]

    config = listing_config("ext_listing", s3_bucket, prefix="data/", max_files=0)
    assert dg.materialize([listing], resources=resources, run_config=config).success
    assert yt_client.get(f"{ROOT}/ext_listing/@row_count") == 0


def test_emptied_prefix_gives_an_empty_table_with_its_schema(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, {"p/1.txt": b"1", "p/2.txt": b"2"})
    listing = build_s3_listing_asset("emptied_listing", prefix="p/")
    resources = make_resources(dagster_local_yt, s3_server)
    config = listing_config("emptied_listing", s3_bucket)
    assert dg.materialize([listing], resources=resources, run_config=config).success
    assert yt_client.get(f"{ROOT}/emptied_listing/@row_count") == 2

    client = s3_server.client()
    for key in ("p/1.txt", "p/2.txt"):
        client.delete_object(Bucket=s3_bucket, Key=key)
    assert dg.materialize([listing], resources=resources, run_config=config).success
    assert list(yt_client.read_table(f"{ROOT}/emptied_listing")) == []
    schema = yt_client.get(f"{ROOT}/emptied_listing/@schema")
    assert [column["name"] for column in schema] == [
        "bucket",
        "path",
        "size",
        "etag",
        "last_modified",
    ]


def test_failure_in_the_middle_of_a_write_keeps_the_previous_table(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, yt_client: yt.YtClient
) -> None:
    fail = {"now": False}

    @dg.asset(
        name="fragile",
        metadata={
            SCHEMA_METADATA_KEY: dagster_table_schema([ColumnSpec("n", "int64", required=True)])
        },
        dagster_type=dg.Any,
    )
    def fragile() -> dg.Output[Iterator[dict[str, int]]]:
        def rows() -> Iterator[dict[str, int]]:
            for n in range(50_000):
                if fail["now"] and n == 30_000:
                    raise RuntimeError("source broke after 30,000 rows")
                yield {"n": n}

        return dg.Output(rows())

    resources = make_resources(dagster_local_yt, s3_server)
    assert dg.materialize([fragile], resources=resources).success
    fail["now"] = True
    result = dg.materialize([fragile], resources=resources, raise_on_error=False)
    assert not result.success
    assert yt_client.get(f"{ROOT}/fragile/@row_count") == 50_000
    assert sum(1 for _ in yt_client.read_table(f"{ROOT}/fragile")) == 50_000
    leftovers = [name for name in yt_client.list(ROOT) if name.startswith("fragile.tmp")]
    assert leftovers == []


def test_listing_error_names_the_bucket_and_keeps_the_previous_table(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    put_objects(s3_server, s3_bucket, {"k/1": b"1"})
    listing = build_s3_listing_asset("missing_bucket_listing")
    resources = make_resources(dagster_local_yt, s3_server)
    assert dg.materialize(
        [listing],
        resources=resources,
        run_config=listing_config("missing_bucket_listing", s3_bucket),
    ).success
    result = dg.materialize(
        [listing],
        resources=resources,
        run_config=listing_config("missing_bucket_listing", "no-such-bucket-here"),
        raise_on_error=False,
    )
    assert not result.success
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "no-such-bucket-here" in error
    assert yt_client.get(f"{ROOT}/missing_bucket_listing/@row_count") == 1


def test_on_error_fail_fails_the_run_with_the_job_stderr(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"f/present.txt": b"ok", "f/vanishing.txt": b"soon gone"})
    listing = build_s3_listing_asset("fail_listing", prefix="f/")
    processed = build_s3_processing_asset(
        "fail_processed", listing=listing, on_error="fail", max_failed_job_count=0
    )
    resources = make_resources(dagster_local_yt, s3_server)
    config = listing_config("fail_listing", s3_bucket)
    assert dg.materialize([listing], resources=resources, run_config=config).success
    s3_server.client().delete_object(Bucket=s3_bucket, Key="f/vanishing.txt")
    result = dg.materialize(
        [listing, processed],
        resources=resources,
        selection=[processed.key],
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    text = str(
        failure.user_failure_data.description if failure.user_failure_data else failure.error
    )
    assert "failed" in text
    assert "f/vanishing.txt" in text  # the job's stderr names the object it could not read
    assert "NoSuchKey" in text or "404" in text
    assert failure.user_failure_data is not None
    metadata = failure.user_failure_data.metadata
    assert "f/vanishing.txt" in metadata["failed_job_stderr"].value
    assert metadata["yt_operation_state"].value == "failed"
    assert metadata["yt_jobs_failed"].value == 1


def _all_run_text(instance: dg.DagsterInstance, run_id: str) -> str:
    parts = []
    for record in instance.all_logs(run_id):
        parts.append(record.user_message or "")
        if record.dagster_event is not None:
            parts.append(repr(record.dagster_event.event_specific_data))
    return "\n".join(parts)


def _processed_run(
    local_yt: LocalYT,
    s3_server: S3TestServer,
    bucket: str,
    name: str,
    objects: dict[str, bytes],
    **processing: Any,
) -> tuple[dg.ExecuteInProcessResult, str]:
    """``objects`` put under ``<name>/``, listed by ``<name>_listing`` and processed by
    ``<name>_processed`` (``processing``: its options) in one run; the run and all its text."""
    put_objects(s3_server, bucket, {f"{name}/{key}": body for key, body in objects.items()})
    listing = build_s3_listing_asset(f"{name}_listing", prefix=f"{name}/")
    processed = build_s3_processing_asset(f"{name}_processed", listing=listing, **processing)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [listing, processed],
            resources=make_resources(local_yt, s3_server),
            run_config=listing_config(f"{name}_listing", bucket),
            instance=instance,
            raise_on_error=False,
        )
        return result, _all_run_text(instance, result.run_id)


def test_secrets_stay_out_of_logs_metadata_and_environment(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    result, text = _processed_run(
        dagster_local_yt,
        s3_server,
        s3_bucket,
        "secret",
        {"one.txt": b"1\n"},
        processor=environment_probe,
        output_columns=[
            ColumnSpec("bucket", "string", required=True),
            ColumnSpec("path", "string", required=True),
            ColumnSpec("vault_names", "string"),
            ColumnSpec("upload_key_seen", "bool"),
            ColumnSpec("error", "string"),
        ],
    )
    assert result.success
    for secret in (s3_server.secret_key, s3_server.access_key, UPLOAD_ACCESS, UPLOAD_SECRET):
        assert secret not in text

    [row] = list(yt_client.read_table(f"{ROOT}/secret_processed"))
    assert (
        row["vault_names"]
        == "YT_SECURE_VAULT,YT_SECURE_VAULT_S3_ACCESS_KEY,YT_SECURE_VAULT_S3_SECRET_KEY"
    )
    assert row["upload_key_seen"] is False

    operation_id = next(
        m.metadata["yt_operation_id"].value
        for m in (
            e.event_specific_data.materialization for e in result.get_asset_materialization_events()
        )
        if "yt_operation_id" in m.metadata
    )
    spec = yt_client.get_operation(operation_id)["spec"]
    spec_text = json.dumps(yt.yson.convert.yson_to_json(spec), default=str)
    for secret in (s3_server.secret_key, s3_server.access_key, UPLOAD_ACCESS, UPLOAD_SECRET):
        assert secret not in spec_text
    assert "environment" not in spec.get("mapper", {}) or not any(
        secret in str(spec["mapper"]["environment"]) for secret in (s3_server.secret_key,)
    )


def test_a_job_printing_its_keys_shows_them_nowhere_in_the_run(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yt_log: list[str] = []  # what yt.wrapper's own logger says while the run fails
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: yt_log.append(record.getMessage())  # type: ignore[method-assign]
    monkeypatch.setattr(YT_LOGGER, "handlers", [*YT_LOGGER.handlers, handler])
    result, text = _processed_run(
        dagster_local_yt,
        s3_server,
        s3_bucket,
        "leak",
        {"one.txt": b"1\n"},
        processor=prints_its_keys_then_fails,
        on_error="fail",
        max_failed_job_count=1,
    )

    assert not result.success
    # the failure and its stderr excerpt are in the run, the keys are not
    assert "failing on purpose at leak/one.txt" in text
    assert "at exit: keys *** ***" in text
    assert s3_server.secret_key not in text and s3_server.access_key not in text
    assert yt_log and not [m for m in yt_log if s3_server.secret_key in m]  # nor yt.wrapper's log


def test_missing_setting_names_the_variable(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "S3_DOWNLOAD_ACCESS_KEY",
        "S3_DOWNLOAD_SECRET_KEY",
        "S3_UPLOAD_ACCESS_KEY",
        "S3_UPLOAD_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_ENDPOINT", s3_server.endpoint_url)
    monkeypatch.setenv("S3_DOWNLOAD_ACCESS_KEY", s3_server.access_key)
    resources = build_resources(secrets_file=tmp_path / "absent.env")
    resources["yt_cluster"] = YTResource(proxy=dagster_local_yt.proxy_url)
    resources["io_manager"] = YTTableIOManager(yt_cluster=resources["yt_cluster"], root=ROOT)
    listing = build_s3_listing_asset("unset_listing")
    with pytest.raises(Exception, match="S3_DOWNLOAD_SECRET_KEY") as raised:
        dg.materialize(
            [listing], resources=resources, run_config=listing_config("unset_listing", s3_bucket)
        )
    assert s3_server.access_key not in str(raised.value)


def test_downstream_reads_rows_when_annotated(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"r/1": b"a", "r/2": b"bb", "r/3": b"ccc"})
    listing = build_s3_listing_asset("rows_listing", prefix="r/")

    @dg.asset(ins={"listing_table": dg.AssetIn(key=listing.key)}, io_manager_key="mem")
    def total_size_from_rows(listing_table: YTTableRows) -> int:
        return sum(row["size"] for row in listing_table)

    @dg.asset(ins={"listing_table": dg.AssetIn(key=listing.key)}, io_manager_key="mem")
    def row_count_from_reference(listing_table: YTTable) -> int:
        return listing_table.row_count

    resources = {**make_resources(dagster_local_yt, s3_server), "mem": dg.InMemoryIOManager()}
    result = dg.materialize(
        [listing, total_size_from_rows, row_count_from_reference],
        resources=resources,
        run_config=listing_config("rows_listing", s3_bucket),
    )
    assert result.success
    assert result.output_for_node("total_size_from_rows") == 6
    assert result.output_for_node("row_count_from_reference") == 3


def test_custom_endpoints_use_path_style_addressing(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    """dagster-aws's S3Resource, unchanged, already addresses custom endpoints path-style with the
    pinned botocore (its endpoint rules); this guards that against a botocore upgrade."""
    port = s3_server.endpoint_url.rsplit(":", 1)[1]
    hostname_endpoint = f"http://localhost:{port}"  # a host name: boto3 would go virtual-host
    resource = S3Resource(
        endpoint_url=hostname_endpoint,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )
    client = resource.get_client()
    urls: list[str] = []
    client.meta.events.register("before-send.s3.*", lambda request, **_: urls.append(request.url))
    client.put_object(Bucket=s3_bucket, Key="x/y.txt", Body=b"1")
    assert client.get_object(Bucket=s3_bucket, Key="x/y.txt")["Body"].read() == b"1"
    assert urls and all(url.startswith(f"{hostname_endpoint}/{s3_bucket}/") for url in urls)
