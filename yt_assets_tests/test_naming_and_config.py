"""Pure logic: table paths, partition-key escaping, config validation, row shaping."""

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote

import dagster as dg
import pytest

from yt_assets.configs import S3ListingConfig, S3ProcessingConfig, bucket_name_problem
from yt_assets.partitions import prefix_for_day
from yt_assets.yt.paths import asset_table_path, escape_node_name
from yt_assets.yt.tables import markdown_preview


@pytest.mark.parametrize(
    "key",
    ["2026-11-28", "events/2026-11-28/", "a b+c%d", "weird@&*[{\\#key", "юникод/ключ", "..", "~x"],
)
def test_partition_key_escaping_round_trips_and_carries_no_ypath_syntax(key: str) -> None:
    escaped = escape_node_name(key)
    assert unquote(escaped) == key
    assert not set(escaped) & set("/@&*[{\\# ")


def test_daily_keys_stay_readable() -> None:
    assert escape_node_name("2026-11-28") == "2026-11-28"


def test_asset_table_path_follows_the_key_and_partition() -> None:
    assert asset_table_path("//home/p/", ["s3", "listing"]) == "//home/p/s3/listing"
    assert (
        asset_table_path("//home/p", ["listing"], partition_key="in/2026/")
        == "//home/p/listing/in%2F2026%2F"
    )
    assert asset_table_path("//home/p", ["x"], override="//other/place") == "//other/place"


@pytest.mark.parametrize("root", ["home/p", "/home/p", "", "//"])
def test_asset_table_path_rejects_a_relative_root(root: str) -> None:
    with pytest.raises(ValueError, match="absolute Cypress path"):
        asset_table_path(root, ["x"])


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("My-Bucket", "lowercase"),
        ("-bucket", "starts and ends"),
        ("bucket_name", "lowercase"),
        ("a..b", "adjacent dots"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "reserved"),
    ],
)
def test_bucket_rules_are_named(name: str, rule: str) -> None:
    problem = bucket_name_problem(name)
    assert problem is not None and rule in problem
    with pytest.raises(Exception, match=rule):
        S3ListingConfig(bucket=name)


def test_valid_listing_config() -> None:
    config = S3ListingConfig(bucket="my.bucket-1", prefix="a/", extension="json", max_files=0)
    assert (config.bucket, config.max_files, config.extension) == ("my.bucket-1", 0, "json")


def test_negative_max_files_names_the_value_and_rule() -> None:
    with pytest.raises(Exception, match=r"max_files=-1 is invalid: it must be >= 0"):
        S3ListingConfig(bucket="bucket", max_files=-1)


def test_processing_config_rejects_bad_values() -> None:
    with pytest.raises(Exception, match="job_count"):
        S3ProcessingConfig(job_count=0)
    with pytest.raises(Exception, match="on_error"):
        S3ProcessingConfig(on_error="ignore")  # type: ignore[arg-type]


def test_invalid_config_fails_a_run_naming_the_rule() -> None:
    @dg.asset
    def listing(config: S3ListingConfig) -> None:
        raise AssertionError("must not run")

    result = dg.materialize(
        [listing],
        run_config={"ops": {"listing": {"config": {"bucket": "Bad_Bucket"}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "not a valid S3 bucket name" in str(failure)


def test_prefix_templates() -> None:
    assert prefix_for_day("events/{date}/", "2026-01-02") == "events/2026-01-02/"
    assert prefix_for_day("logs/%Y/%m/%d/", "2026-01-02") == "logs/2026/01/02/"
    assert prefix_for_day("odd%%/{date}", "2026-01-02") == "odd%/2026-01-02"


def test_timestamp_microseconds() -> None:
    from yt_assets.yt.schemas import timestamp_microseconds

    moment = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
    assert timestamp_microseconds(moment) == int(moment.timestamp()) * 1_000_000 + 123456
    shifted = moment.astimezone(timezone(timedelta(hours=3)))
    assert timestamp_microseconds(shifted) == timestamp_microseconds(moment)


def test_markdown_preview_escapes_cells() -> None:
    text = markdown_preview([{"a": "x|y", "b": None}, {"a": "line\nbreak", "b": 3}])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y |  |", "| line break | 3 |"]
    assert markdown_preview([]) == "_(empty table)_"


def test_declared_columns_round_trip_through_the_yt_schema() -> None:
    from yt_assets.yt.schemas import (
        LISTING_COLUMNS,
        PROCESSED_COLUMNS,
        ColumnSpec,
        column_specs,
        yt_schema,
    )

    for columns in (LISTING_COLUMNS, PROCESSED_COLUMNS):
        expected = [ColumnSpec(c.name, c.type, c.required, "", c.sort_order) for c in columns]
        assert column_specs(yt_schema(columns)) == expected
    nested = [ColumnSpec("tags", "{type_name=list;item=string}")]
    assert column_specs(yt_schema(nested))[0].type.replace(" ", "") in (
        '{"type_name"="list";"item"="string";}',
        "{type_name=list;item=string}",
    )
