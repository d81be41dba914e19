"""Partitioned assets: one table per partition, published atomically; schedule; asset checks."""

from datetime import datetime
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.checks import build_processing_checks
from yt_assets.io_manager import SCHEMA_METADATA_KEY, dagster_table_schema
from yt_assets.local_yt import LocalYT
from yt_assets.partitions import daily_partitions, prefix_for_day
from yt_assets.schedules import build_daily_schedule
from yt_assets.yt.paths import escape_node_name
from yt_assets.yt.schemas import ColumnSpec
from yt_assets.yt.tables import YTTable, YTTableRows
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.dagster_stack import stack_resources

ROOT = "//home/partition_tests"


def resources(dagster_local_yt: LocalYT, s3_server: S3TestServer) -> dict[str, Any]:
    return stack_resources(dagster_local_yt, s3_server, ROOT)


def test_partitions_are_separate_tables_replaced_one_at_a_time(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    partitions = dg.DynamicPartitionsDefinition(name="prefixes_a")
    listing = build_s3_listing_asset("prefix_listing", bucket=s3_bucket, partitions_def=partitions)
    a, b = "in/a/", "in/b/"
    put_objects(s3_server, s3_bucket, {f"{a}1": b"1", f"{a}2": b"2", f"{b}1": b"1"})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("prefixes_a", [a, b])
        for key in (a, b):
            assert dg.materialize(
                [listing],
                resources=resources(dagster_local_yt, s3_server),
                partition_key=key,
                instance=instance,
            ).success
        a_path = f"{ROOT}/prefix_listing/{escape_node_name(a)}"
        b_path = f"{ROOT}/prefix_listing/{escape_node_name(b)}"
        assert yt_client.get(f"{ROOT}/prefix_listing/@type") == "map_node"
        assert sorted(yt_client.list(f"{ROOT}/prefix_listing")) == sorted(
            [escape_node_name(a), escape_node_name(b)]
        )
        assert [r["path"] for r in yt_client.read_table(a_path)] == [f"{a}1", f"{a}2"]
        b_id = yt_client.get(f"{b_path}/@id")

        put_objects(s3_server, s3_bucket, {f"{a}3": b"3"})
        result = dg.materialize(
            [listing],
            resources=resources(dagster_local_yt, s3_server),
            partition_key=a,
            instance=instance,
        )
        assert result.success
        assert [r["path"] for r in yt_client.read_table(a_path)] == [f"{a}1", f"{a}2", f"{a}3"]
        assert yt_client.get(f"{b_path}/@id") == b_id  # B untouched
        assert [r["path"] for r in yt_client.read_table(b_path)] == [f"{b}1"]
        [materialization] = [
            e.event_specific_data.materialization for e in result.get_asset_materialization_events()
        ]
        assert materialization.partition == a
        assert materialization.metadata["dagster/partition_row_count"].value == 3
        assert materialization.metadata["dagster/table_name"].value == a_path


def test_downstream_partitions_and_unpartitioned_readers(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    partitions = dg.DynamicPartitionsDefinition(name="prefixes_b")
    listing = build_s3_listing_asset(
        "prefix_listing_b", bucket=s3_bucket, partitions_def=partitions
    )
    processed = build_s3_processing_asset(
        "prefix_processed_b", listing=listing, partitions_def=partitions
    )

    @dg.asset(ins={"tables": dg.AssetIn(key=listing.key)}, io_manager_key="mem")
    def all_partitions(tables: dict[str, YTTable]) -> dict[str, int]:
        return {key: table.row_count for key, table in tables.items()}

    @dg.asset(ins={"rows": dg.AssetIn(key=listing.key)}, io_manager_key="mem")
    def all_rows(rows: YTTableRows) -> int:
        return sum(1 for _ in rows)

    keys = ["x/1/", "x/2/"]
    put_objects(s3_server, s3_bucket, {"x/1/a": b"a", "x/2/a": b"a", "x/2/b": b"bb"})
    res = {**resources(dagster_local_yt, s3_server), "mem": dg.InMemoryIOManager()}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("prefixes_b", keys)
        for key in keys:
            assert dg.materialize(
                [listing, processed], resources=res, partition_key=key, instance=instance
            ).success
        processed_rows = list(
            yt_client.read_table(f"{ROOT}/prefix_processed_b/{escape_node_name('x/2/')}")
        )
        assert sorted(r["path"] for r in processed_rows) == ["x/2/a", "x/2/b"]

        result = dg.materialize(
            [listing, all_partitions, all_rows],
            resources=res,
            instance=instance,
            selection=[all_partitions.key, all_rows.key],
        )
        assert result.success
        assert result.output_for_node("all_partitions") == {"x/1/": 1, "x/2/": 2}
        assert result.output_for_node("all_rows") == 3


def test_missing_upstream_partition_is_a_clear_error(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str
) -> None:
    partitions = dg.DynamicPartitionsDefinition(name="prefixes_c")
    listing = build_s3_listing_asset(
        "prefix_listing_c", bucket=s3_bucket, partitions_def=partitions
    )
    processed = build_s3_processing_asset(
        "prefix_processed_c", listing=listing, partitions_def=partitions
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("prefixes_c", ["never/"])
        result = dg.materialize(
            [listing, processed],
            resources=resources(dagster_local_yt, s3_server),
            partition_key="never/",
            instance=instance,
            selection=[processed.key],
            raise_on_error=False,
        )
    assert not result.success
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "no YT table at" in error and escape_node_name("never/") in error


def test_daily_partition_lists_its_dated_prefix(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, s3_bucket: str, yt_client: yt.YtClient
) -> None:
    listing = build_s3_listing_asset(
        "daily_listing",
        bucket=s3_bucket,
        prefix="logs/%Y/%m/%d/",
        partitions_def=daily_partitions,
        prefix_for_partition=prefix_for_day,
    )
    put_objects(
        s3_server,
        s3_bucket,
        {"logs/2026/11/26/a": b"a", "logs/2026/11/27/b": b"b", "logs/2026/11/27/c": b"c"},
    )
    assert dg.materialize(
        [listing], resources=resources(dagster_local_yt, s3_server), partition_key="2026-11-27"
    ).success
    rows = list(yt_client.read_table(f"{ROOT}/daily_listing/2026-11-27"))
    assert [r["path"] for r in rows] == ["logs/2026/11/27/b", "logs/2026/11/27/c"]


def test_schedule_requests_the_previous_day() -> None:
    @dg.asset(partitions_def=daily_partitions)
    def daily() -> None:
        return None

    job = dg.define_asset_job("daily_job", selection=[daily])
    schedule = build_daily_schedule(job, hour_of_day=3)
    defs = dg.Definitions(assets=[daily], jobs=[job], schedules=[schedule])
    schedule_def = defs.resolve_schedule_def(schedule.name)
    assert schedule_def.cron_schedule == "0 3 * * *"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 28, 3, 0)
        )
        [request] = schedule_def.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-27"
    with pytest.raises(ValueError, match="hour_of_day=24"):
        build_daily_schedule(job, hour_of_day=24)


def _rows_asset(
    name: str, partitions: dg.PartitionsDefinition, rows_by_key: dict[str, list[dict]]
) -> dg.AssetsDefinition:
    columns = [
        ColumnSpec("bucket", "string", required=True),
        ColumnSpec("path", "string", required=True),
        ColumnSpec("error", "string"),
    ]

    @dg.asset(
        name=name,
        partitions_def=partitions,
        metadata={SCHEMA_METADATA_KEY: dagster_table_schema(columns)},
        dagster_type=dg.Any,
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.Output:
        return dg.Output(iter(rows_by_key[context.partition_key]))

    return _asset


def test_checks_pass_on_consistent_data_and_fail_on_missing_rows(
    dagster_local_yt: LocalYT, s3_server: S3TestServer
) -> None:
    partitions = dg.StaticPartitionsDefinition(["good", "short"])
    row = {"bucket": "b", "path": "k", "error": None}
    listing = _rows_asset("check_listing", partitions, {"good": [row] * 4, "short": [row] * 4})
    processed = _rows_asset(
        "check_processed",
        partitions,
        {"good": [row] * 3 + [{**row, "error": "NoSuchKey"}], "short": [row, row]},
    )
    checks = build_processing_checks(processed, listing, max_error_share=0.3)
    outcomes = {}
    for key in ("good", "short"):
        result = dg.materialize(
            [listing, processed, *checks],
            resources=resources(dagster_local_yt, s3_server),
            partition_key=key,
            raise_on_error=False,
        )
        outcomes[key] = {
            e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()
        }
    assert outcomes["good"] == {
        "check_processed_rows_match_listing": True,
        "check_processed_error_share_below_threshold": True,
    }
    assert outcomes["short"]["check_processed_rows_match_listing"] is False
