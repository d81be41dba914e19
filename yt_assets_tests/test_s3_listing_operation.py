"""The listing asset's ``listing_mode: yt_operation``: one YT map lists the key ranges; the table is
the in-process listing's (rows, order, schema). Real servers: moto's S3 server, the local YT."""

from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource

from yt_assets.assets import build_s3_listing_asset
from yt_assets.local_yt import LocalYT
from yt_assets.resources import YTResource
from yt_assets.s3 import fast_listing
from yt_assets.yt_jobs import s3_listing
from yt_assets.yt_jobs.s3_listing import split_key_space
from yt_assets_tests.conftest import S3TestServer, bucket_of_keys
from yt_assets_tests.dagster_stack import UPLOAD_ACCESS, UPLOAD_SECRET, stack_resources
from yt_assets_tests.s3_fake_http import canned_s3_server, error_xml, list_page_xml, query_of
from yt_assets_tests.test_s3_listing_fast import AWKWARD_KEYS, SPREAD_KEYS

ROOT = "//home/listing_operation_tests"
FLAT_KEYS = [f"flat/{n:05d}.json" for n in range(1_200)]  # more than a page, no sub-prefix
KEYS = [
    *AWKWARD_KEYS,
    *SPREAD_KEYS,
    *FLAT_KEYS,
    "./dot",
    "x/./y",
    "ctl/\x01\x1f.json",
    "x/ spaced .JSON",
    "odd/",  # a folder marker named like a range's low end (listed with StartAfter=low)
    "spread/",
]

SLOW = pytest.mark.slow  # each materialisation runs a YT operation (5 s or more)


@pytest.fixture(scope="module")
def bucket(s3_server: S3TestServer) -> str:
    return bucket_of_keys(s3_server, "oplisting", KEYS)


def _materialize(
    local_yt: LocalYT, s3_server: S3TestServer, name: str, config: dict[str, Any]
) -> dg.ExecuteInProcessResult:
    listing = build_s3_listing_asset(name)
    return dg.materialize(
        [listing],
        resources=stack_resources(local_yt, s3_server, ROOT),
        run_config={"ops": {name: {"config": config}}},
        raise_on_error=False,
    )


def _table(client: yt.YtClient, name: str) -> tuple[list[dict[str, Any]], Any, Any]:
    path = f"{ROOT}/{name}"
    return (
        list(client.read_table(path)),
        client.get(f"{path}/@schema"),
        list(client.get(f"{path}/@sorted_by")),
    )


def _scratch_tables_left(client: yt.YtClient, run_id: str) -> list[str]:
    """The tables a run's listing step left under the scratch root (``.ranges``, ``.listed``)."""
    run_dir = f"{YTResource().scratch_root}/{run_id}"
    return [str(name) for name in client.list(run_dir)] if client.exists(run_dir) else []


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (materialization,) = [
        event.event_specific_data.materialization
        for event in result.get_asset_materialization_events()
    ]
    return dict(materialization.metadata)


@SLOW
@pytest.mark.usefixtures("sample_always")
@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("all", {}),
        ("filtered", {"extension": "json", "max_files": 9}),
        ("cut", {"prefix": "spread/", "max_files": 40}),
        ("flat", {"prefix": "flat/"}),  # cut at sampled keys
    ],
)
def test_operation_writes_the_in_process_table(
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    bucket: str,
    yt_client: yt.YtClient,
    case: str,
    options: dict[str, Any],
) -> None:
    config = {"bucket": bucket, **options}
    local = _materialize(dagster_local_yt, s3_server, f"local_{case}", config)
    assert local.success
    operation = _materialize(
        dagster_local_yt,
        s3_server,
        f"op_{case}",
        {**config, "listing_mode": "yt_operation", "listing_jobs": 3},
    )
    assert operation.success
    rows, schema, sorted_by = _table(yt_client, f"op_{case}")
    assert (rows, schema, sorted_by) == _table(yt_client, f"local_{case}")
    assert sorted_by == ["bucket", "path"]
    if "max_files" in options:
        assert len(rows) == options["max_files"]
    if options.get("extension"):
        assert rows and all(row["path"].lower().endswith(".json") for row in rows)
    metadata = _metadata(operation)
    assert metadata["yt_jobs_completed"].value == 3  # several jobs listed it
    assert metadata["dagster/row_count"].value == len(rows)
    if "max_files" not in options:  # with it, each job lists up to max_files of its own range
        local_metadata = _metadata(local)
        # the same counts whichever folder markers a mode's ranges skip (none is counted)
        assert metadata["s3/keys_listed"].value == local_metadata["keys_listed"].value
        assert metadata["s3/keys_matched"].value == local_metadata["keys_matched"].value
        assert local_metadata["keys_matched"].value == len(rows)
        listed = [key for key in KEYS if key.startswith(options.get("prefix", ""))]
        assert local_metadata["keys_listed"].value == sum(not k.endswith("/") for k in listed)
    if case == "all":
        assert {row["path"] for row in rows} == {key for key in KEYS if not key.endswith("/")}
        _check_jobs_saw_only_download_keys(
            yt_client, metadata["yt_operation_id"].value, s3_server.secret_key
        )


def _check_jobs_saw_only_download_keys(
    client: yt.YtClient, operation_id: str, secret_key: str
) -> None:
    spec = client.get_operation(operation_id, attributes=["spec"])["spec"]
    assert secret_key not in str(spec)  # not in the environment, nor anywhere in the spec
    jobs = client.list_jobs(operation_id)["jobs"]
    stderrs = [client.get_job_stderr(operation_id, job["id"]).read().decode() for job in jobs]
    assert len(stderrs) == 3
    for stderr in stderrs:
        assert "secure vault: YT_SECURE_VAULT_S3_ACCESS_KEY, YT_SECURE_VAULT_S3_SECRET_KEY\n" in (
            stderr
        )
        assert UPLOAD_ACCESS not in stderr and UPLOAD_SECRET not in stderr


@SLOW
def test_an_extension_matching_nothing_fails_as_in_process(
    dagster_local_yt: LocalYT, s3_server: S3TestServer, bucket: str, yt_client: yt.YtClient
) -> None:
    config = {"bucket": bucket, "prefix": "spread/", "extension": "parquet"}
    result = _materialize(
        dagster_local_yt, s3_server, "op_no_match", {**config, "listing_mode": "yt_operation"}
    )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None
    assert f"extension 'parquet' matched none of {len(SPREAD_KEYS)} keys under " in error.message
    assert not yt_client.exists(f"{ROOT}/op_no_match")
    assert _scratch_tables_left(yt_client, result.run_id) == []


def test_key_space_split_covers_every_key_once(s3_server: S3TestServer, bucket: str) -> None:
    from yt_assets.s3.fast_listing import FastPageFetcher, iter_range_pages

    fetch = FastPageFetcher(s3_server.client())
    level, ranges = split_key_space(fetch, bucket, "", jobs=4)
    assert level == "" and 4 < len(ranges) <= 9
    listed = [
        row[0]
        for key_range in ranges
        for page in iter_range_pages(fetch, bucket, level, key_range, 1000)
        for row in page
        if not row[0].endswith("/")
    ]
    expected = sorted((key for key in KEYS if not key.endswith("/")), key=str.encode)
    assert listed == expected


@pytest.fixture
def sample_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampled cuts even on moto's server and for a prefix of ranges of less than a page."""
    monkeypatch.setattr(fast_listing, "PROBE_COST_SHARE", float("inf"))
    monkeypatch.setattr(s3_listing, "MIN_RANGE_KEYS_PER_JOB", 1)


@pytest.mark.usefixtures("sample_always")
def test_a_flat_prefix_is_split_at_sampled_keys(s3_server: S3TestServer, bucket: str) -> None:
    from yt_assets.s3.fast_listing import FastPageFetcher, iter_range_pages

    fetch = FastPageFetcher(s3_server.client())
    level, ranges = split_key_space(fetch, bucket, "flat/", jobs=4)

    assert level == "flat/" and 3 <= len(ranges) <= 9
    assert ranges[0].low is None and ranges[-1].high is None
    assert all(key_range.high in FLAT_KEYS for key_range in ranges[:-1])  # real keys
    listed = [
        [row[0] for page in iter_range_pages(fetch, bucket, level, key_range, 1000) for row in page]
        for key_range in ranges
    ]
    assert all(listed)  # no empty range
    assert [key for keys in listed for key in keys] == FLAT_KEYS


@SLOW
def test_s3_error_in_a_job_fails_the_step_naming_it(
    dagster_local_yt: LocalYT, tmp_path: Any
) -> None:
    def respond(_number: int, path: str) -> tuple[int, str]:
        if "delimiter" in query_of(path):  # the driver's split request
            return 200, list_page_xml([], truncated=False)
        return 403, error_xml("AccessDenied", "Access Denied")  # the jobs' listing requests

    with canned_s3_server(respond) as server:
        secret = "listing-secret-never-shown"
        resources = stack_resources(
            dagster_local_yt, S3TestServer(endpoint_url=server.endpoint_url), ROOT
        )
        resources["s3"] = S3Resource(
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="AKIDLISTING",
            aws_secret_access_key=secret,
        )
        listing = build_s3_listing_asset("op_denied")
        result = dg.materialize(
            [listing],
            resources=resources,
            run_config={
                "ops": {
                    "op_denied": {"config": {"bucket": "denied", "listing_mode": "yt_operation"}}
                }
            },
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None
    headline = error.message.splitlines()[0]
    assert "failed: Listing s3://denied/ failed: AccessDenied (HTTP 403)" in headline, headline
    assert secret not in error.message and "AKIDLISTING" not in error.message
    assert _scratch_tables_left(dagster_local_yt.client(), result.run_id) == []
