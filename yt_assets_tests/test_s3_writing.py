"""Writing to S3: processors that upload derived objects, and the YT-table-to-S3 export.

Real servers: SeaweedFS (``weed mini``) with separate identities (download: read and list only;
upload: read, write, list) and the local YT. Nothing mocks boto3 or ``yt.wrapper``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource

from yt_assets.assets import (
    build_s3_export_asset,
    build_s3_listing_asset,
    build_s3_processing_asset,
)
from yt_assets.components import YTToS3ExportComponent
from yt_assets.configs import InvalidConfigError, S3ExportConfig
from yt_assets.demo.local_s3 import DemoKeys, LocalS3, S3Keys, weed_binary
from yt_assets.io_manager import YTTableIOManager
from yt_assets.local_yt import LocalYT
from yt_assets.resources import YTResource
from yt_assets.s3.client import make_s3_client
from yt_assets.s3.retries import RetryCounter, RetryPolicy
from yt_assets.s3.uploads import MIN_PART_SIZE, S3Destination, S3Sink, S3UploadError
from yt_assets.yt.schemas import EXPORT_COLUMNS, ColumnSpec
from yt_assets.yt_jobs.s3_export import EXPORT_COLUMN_NAMES
from yt_assets.yt_jobs.s3_processing import process_rows
from yt_assets_tests.conftest import S3TestServer
from yt_assets_tests.fault_proxy import FaultPlan, FaultProxy
from yt_assets_tests.job_processors import copy_then_fail, copy_to_sink
from yt_assets_tests.test_assets_core import _all_run_text
from yt_assets_tests.test_components import _config_defaults

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="SeaweedFS (weed) not installed")

ROOT = "//home/s3_writing_tests"
BIG = 48 << 20  # 50.3 MB


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    with LocalS3(tmp_path_factory.mktemp("weed"), DemoKeys.generate(), "seaweedfs") as server:
        yield server


@pytest.fixture
def bucket(weed: LocalS3, request: pytest.FixtureRequest) -> str:
    name = "w-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    weed.client("admin").create_bucket(Bucket=name)
    return name


def _s3(weed: LocalS3, keys: S3Keys) -> S3Resource:
    return S3Resource(
        endpoint_url=weed.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
    )


def _resources(local_yt: LocalYT, weed: LocalS3, *, upload: S3Keys | None = None) -> dict[str, Any]:
    yt_cluster = YTResource(proxy=local_yt.proxy_url)
    return {
        "yt_cluster": yt_cluster,
        "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root=ROOT),
        "s3": _s3(weed, weed.keys.download),
        "s3_upload": _s3(weed, upload or weed.keys.upload),
    }


def _keys(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {item["Key"]: item["ETag"].strip('"') for item in listed}


COPY_COLUMNS = [
    ColumnSpec("bucket", "string", required=True),
    ColumnSpec("path", "string", required=True),
    ColumnSpec("size", "int64"),
    ColumnSpec("max_rss_kb", "int64"),
    ColumnSpec("vault_names", "string"),
    ColumnSpec("error", "string"),
]


@pytest.mark.slow
def test_processor_writes_one_object_per_input_in_bounded_memory_and_reruns_idempotently(
    dagster_local_yt: LocalYT, weed: LocalS3, bucket: str, yt_client: yt.YtClient
) -> None:
    admin = weed.client("admin")
    big = os.urandom(1 << 20) * (BIG >> 20)
    admin.put_object(Bucket=bucket, Key="in/a-small.txt", Body=b"small\n")
    admin.put_object(Bucket=bucket, Key="in/b-big.bin", Body=big)
    listing = build_s3_listing_asset("w_listing", bucket=bucket, prefix="in/")
    copies = build_s3_processing_asset(
        "w_copies",
        listing=listing,
        processor=copy_to_sink,
        output_columns=COPY_COLUMNS,
        writes_to=S3Destination(bucket, "derived/"),
        job_count=1,
        downloads_in_flight=1,  # in key order: the small object's peak is the baseline
    )
    for _run in range(2):  # the rerun overwrites the same keys
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [listing, copies], resources=_resources(dagster_local_yt, weed), instance=instance
            )
            assert result.success
            text = _all_run_text(instance, result.run_id)
        for pair in (weed.keys.download, weed.keys.upload):
            assert pair.secret_key not in text and pair.access_key not in text
        rows = {row["path"]: row for row in yt_client.read_table(f"{ROOT}/w_copies")}
        derived = _keys(admin, bucket, "derived/")
        assert sorted(derived) == ["derived/in/a-small.txt.copy", "derived/in/b-big.bin.copy"]
        for path, row in rows.items():
            assert row["error"] is None
            [written] = row["written"]
            assert written["key"] == f"derived/{path}.copy"
            assert written["etag"] == derived[written["key"]]
        assert rows["in/b-big.bin"]["written"][0]["size"] == BIG
        assert rows["in/b-big.bin"]["written"][0]["etag"].endswith("-6")  # six 8 MiB parts
        # typed, so YT queries see the members: optional<list<struct<key, size, etag>>>
        schema = yt_client.get(f"{ROOT}/w_copies/@schema")
        (written_type,) = [c["type_v3"] for c in schema if c["name"] == "written"]
        members = written_type["item"]["item"]["members"]
        assert [(m["name"], m["type"]) for m in members] == [
            ("key", "string"),
            ("size", "int64"),
            ("etag", "string"),
        ]
        body = admin.get_object(Bucket=bucket, Key="derived/in/b-big.bin.copy")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
        # The writing job got the upload keys besides the download keys.
        assert rows["in/a-small.txt"]["vault_names"] == (
            "YT_SECURE_VAULT_S3_ACCESS_KEY,YT_SECURE_VAULT_S3_SECRET_KEY,"
            "YT_SECURE_VAULT_S3_UPLOAD_ACCESS_KEY,YT_SECURE_VAULT_S3_UPLOAD_SECRET_KEY"
        )
        growth_kb = rows["in/b-big.bin"]["max_rss_kb"] - rows["in/a-small.txt"]["max_rss_kb"]
        print(f"job peak RSS grew by {growth_kb / 1024:.1f} MiB for a {BIG >> 20} MiB object")
        assert growth_kb * 1024 < BIG // 2  # a few parts, never the whole object
    metadata = result.asset_materializations_for_node("w_copies")[0].metadata
    assert metadata["s3/objects_uploaded"].value == 2
    assert metadata["s3/bytes_uploaded"].value == BIG + len(b"small\n")
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.slow
def test_writing_with_the_download_keys_is_an_access_denied_row(
    dagster_local_yt: LocalYT, weed: LocalS3, bucket: str, yt_client: yt.YtClient
) -> None:
    weed.client("admin").put_object(Bucket=bucket, Key="in/x.txt", Body=b"x\n")
    listing = build_s3_listing_asset("w_denied_listing", bucket=bucket, prefix="in/")
    copies = build_s3_processing_asset(
        "w_denied",
        listing=listing,
        processor=copy_to_sink,
        output_columns=COPY_COLUMNS,
        writes_to=S3Destination(bucket, "derived/"),
    )
    resources = _resources(dagster_local_yt, weed, upload=weed.keys.download)
    result = dg.materialize([listing, copies], resources=resources)
    assert result.success
    [row] = list(yt_client.read_table(f"{ROOT}/w_denied"))
    assert (
        row["error"]
        == f"Uploading s3://{bucket}/derived/in/x.txt.copy failed: AccessDenied (HTTP 403)"
    )
    assert row["written"] is None
    assert _keys(weed.client("admin"), bucket, "derived/") == {}


def test_a_failure_mid_upload_aborts_it_and_keeps_the_previous_object(
    weed: LocalS3, bucket: str
) -> None:
    admin = weed.client("admin")
    admin.put_object(Bucket=bucket, Key="in/x.bin", Body=os.urandom(20 << 20))
    admin.put_object(Bucket=bucket, Key="derived/in/x.bin.copy", Body=b"previous run")
    uploads = weed.client("upload")

    def sink(bucket: str) -> S3Sink:
        return S3Sink(uploads, S3Destination(bucket, "derived/"), part_size=MIN_PART_SIZE)

    [row] = list(
        process_rows(
            [{"bucket": bucket, "path": "in/x.bin"}],
            weed.client("download"),
            processor=copy_then_fail,
            sink_factory=sink,
            retry=RetryPolicy(max_attempts=1),
        )
    )
    assert row["error"].startswith("RuntimeError: injected failure after")
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    body = admin.get_object(Bucket=bucket, Key="derived/in/x.bin.copy")["Body"].read()
    assert body == b"previous run"  # never a partial object


def test_sink_keys_stay_under_the_destination() -> None:
    destination = S3Destination("b", "derived/")
    assert destination.key("a/x.json") == "derived/a/x.json"
    assert S3Destination("", "d/").in_bucket("input") == S3Destination("input", "d/")
    assert destination.in_bucket("input") == destination
    assert destination.under("2026-12-01/").key("x") == "derived/2026-12-01/x"
    for bad in ("", "/abs"):
        with pytest.raises(ValueError):
            destination.key(bad)


def test_export_columns_match_the_job() -> None:
    assert tuple(column.name for column in EXPORT_COLUMNS) == EXPORT_COLUMN_NAMES


@pytest.mark.slow
def test_export_round_trips_row_counts_and_a_rerun_leaves_one_export(
    dagster_local_yt: LocalYT, weed: LocalS3, bucket: str, yt_client: yt.YtClient
) -> None:
    admin = weed.client("admin")
    for index in range(25):
        admin.put_object(Bucket=bucket, Key=f"src/{index:02d}.txt", Body=b"line\n" * index)
    listing = build_s3_listing_asset("x_listing", bucket=bucket, prefix="src/")
    export = build_s3_export_asset(
        "x_export", table=listing, bucket=bucket, prefix="exports/listing/", rows_per_object=10
    )
    resources = _resources(dagster_local_yt, weed)
    result = dg.materialize([listing, export], resources=resources)
    assert result.success
    exported = _keys(admin, bucket, "exports/listing/")
    assert len(exported) == 4 and "exports/listing/_SUCCESS" in exported
    manifest = json.loads(
        admin.get_object(Bucket=bucket, Key="exports/listing/_SUCCESS")["Body"].read()
    )
    assert manifest["rows"] == 25 and [o["rows"] for o in manifest["objects"]] == [10, 10, 5]
    metadata = result.asset_materializations_for_node("x_export")[0].metadata
    assert metadata["rows_exported"].value == 25
    assert metadata["manifest"].value == manifest
    assert [row["key"] for row in yt_client.read_table(f"{ROOT}/x_export")] == [
        o["key"] for o in manifest["objects"]
    ]

    # Listed again by s3_listing and processed: the same row count.
    relisting = build_s3_listing_asset(
        "x_relisting", bucket=bucket, prefix="exports/listing/", extension=".jsonl"
    )
    reprocessed = build_s3_processing_asset("x_reprocessed", listing=relisting)
    assert dg.materialize([relisting, reprocessed], resources=resources).success
    records = [row["records"] for row in yt_client.read_table(f"{ROOT}/x_reprocessed")]
    assert sum(records) == 25
    first = json.loads(
        admin.get_object(Bucket=bucket, Key=manifest["objects"][0]["key"])["Body"]
        .read()
        .splitlines()[0]
    )
    assert first["bucket"] == bucket and first["path"] == "src/00.txt" and first["size"] == 0

    # Rerun gzipped, one object per job: the earlier export's objects are gone.
    rerun = dg.materialize(
        [listing, export],
        resources=resources,
        run_config={
            "ops": {
                "x_export": {
                    "config": {"rows_per_object": None, "compression": "gzip", "job_count": 1}
                }
            }
        },
        selection=[export],
    )
    assert rerun.success
    exported = _keys(admin, bucket, "exports/listing/")
    [part] = [key for key in exported if key != "exports/listing/_SUCCESS"]
    assert part.endswith(".jsonl.gz")
    lines = gzip.decompress(admin.get_object(Bucket=bucket, Key=part)["Body"].read()).splitlines()
    assert len(lines) == 25


@pytest.mark.slow
def test_export_of_a_partitioned_table_writes_per_partition(
    dagster_local_yt: LocalYT, weed: LocalS3, bucket: str
) -> None:
    admin = weed.client("admin")
    for day, count in (("2026-11-01", 2), ("2026-11-02", 3)):
        for index in range(count):
            admin.put_object(Bucket=bucket, Key=f"ev/{day}/{index}.txt", Body=b"x")
    days = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02"])
    listing = build_s3_listing_asset(
        "p_listing",
        bucket=bucket,
        prefix="ev/",
        partitions_def=days,
        prefix_for_partition=lambda prefix, key: f"{prefix}{key}/",
    )
    export = build_s3_export_asset(
        "p_export", table=listing, bucket=bucket, prefix="exports/ev/", partitions_def=days
    )
    for day in ("2026-11-01", "2026-11-02"):
        result = dg.materialize(
            [listing, export], resources=_resources(dagster_local_yt, weed), partition_key=day
        )
        assert result.success
    for day, count in (("2026-11-01", 2), ("2026-11-02", 3)):
        marker = admin.get_object(Bucket=bucket, Key=f"exports/ev/{day}/_SUCCESS")["Body"].read()
        assert json.loads(marker)["rows"] == count


def _through(proxy: FaultProxy, server: S3TestServer) -> Any:
    return make_s3_client(
        server.access_key, server.secret_key, endpoint_url=proxy.endpoint_url, max_attempts=0
    )


def test_uploads_retry_throttled_writes(s3_server: S3TestServer, s3_bucket: str) -> None:
    data = os.urandom(12 << 20)  # three parts of 5 MiB
    plan = FaultPlan(throttle=0.4, kinds=frozenset({"put", "post"}))
    with FaultProxy(s3_server.endpoint_url, plan) as proxy:
        counter = RetryCounter()
        sink = S3Sink(
            _through(proxy, s3_server),
            S3Destination(s3_bucket, "out/"),
            part_size=MIN_PART_SIZE,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=20),
            counter=counter,
        )
        written = sink.put("big.bin", data)
        small = sink.put("small.json", b"{}", content_type="application/json")
    assert proxy.counts["throttle"] > 0 and counter.retries == proxy.counts["throttle"]
    client = s3_server.client()
    assert client.get_object(Bucket=s3_bucket, Key="out/big.bin")["Body"].read() == data
    assert written.size == len(data) and written.etag.endswith("-3")
    head = client.head_object(Bucket=s3_bucket, Key="out/small.json")
    assert head["ContentType"] == "application/json" and small.etag == head["ETag"].strip('"')
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_persistent_throttling_aborts_the_upload(s3_server: S3TestServer, s3_bucket: str) -> None:
    plan = FaultPlan(throttle=1.0, kinds=frozenset({"put"}))  # every part refused
    with FaultProxy(s3_server.endpoint_url, plan) as proxy:
        sink = S3Sink(
            _through(proxy, s3_server),
            S3Destination(s3_bucket, "out/"),
            part_size=MIN_PART_SIZE,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02, max_attempts=3),
        )
        with pytest.raises(S3UploadError) as raised:
            sink.put("big.bin", os.urandom(6 << 20))
    assert str(raised.value) == (
        f"Uploading s3://{s3_bucket}/out/big.bin failed: SlowDown (HTTP 503): retry budget "
        f"exhausted after 3 attempts in {raised.value.__cause__.seconds:.1f} s"  # type: ignore[union-attr]
    )
    # Created (POST), three attempts at part 1 (PUT), aborted (DELETE, not faulted).
    assert (proxy.counts["post_requests"], proxy.counts["put_throttle"]) == (1, 3)
    assert proxy.counts["delete_requests"] == 1
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_an_export_prefix_must_be_a_folder() -> None:
    with pytest.raises(InvalidConfigError, match="ending with '/'"):
        S3ExportConfig(bucket="my-bucket", prefix="exports")
    with pytest.raises(ValueError, match="ending with '/'"):
        YTToS3ExportComponent(name="t_export", table="t", bucket="my-bucket", prefix="/exports/")
    component = YTToS3ExportComponent(name="t_export", table="t", bucket="", prefix="e/t/")
    [export] = component.definitions().assets  # type: ignore[misc]
    defaults = _config_defaults(export)  # type: ignore[arg-type]
    assert defaults["bucket"] == "<required>"  # an empty bucket: chosen in the launchpad
    assert defaults["prefix"] == "e/t/"
