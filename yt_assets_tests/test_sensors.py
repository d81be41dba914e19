"""The new-S3-prefix sensor against moto's S3 server on loopback, ticked as the daemon would.

Each tick builds a sensor context on a real (temporary, SQLite) instance, evaluates the sensor,
applies its dynamic partition requests to the instance and carries its cursor to the next tick.
The S3 client is real boto3 over HTTP; a botocore event hook only records the requests it sends.
The last tests drive the pure :func:`scan_step` with an in-memory prefix list (no S3 at all).
"""

import json
import random
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.dynamic_partitions_request import AddDynamicPartitionsRequest
from dagster_aws.s3 import S3Resource

from yt_assets.partitions import s3_prefix_partitions
from yt_assets.s3.pages import LOST_CHARACTER
from yt_assets.s3.prefixes import (
    PrefixPage,
    S3PrefixError,
    ScanCursor,
    list_child_prefixes,
    prefix_is_ready,
    scan_step,
    start_after_prefix,
)
from yt_assets.sensors import (
    S3SensorTickError,
    _known_partitions_lookup,
    build_s3_prefix_sensor,
    unusable_partition_keys,
)
from yt_assets_tests.conftest import S3TestServer
from yt_assets_tests.fault_proxy import FaultPlan, FaultProxy

S3_REQUESTS: list[tuple[str, dict[str, Any]]] = []
"""(operation, parameters) of every request sent by clients of :class:`RecordingS3Resource`."""
# No ``from __future__ import annotations`` here: Dagster reads the asset's ``context`` annotation.


class RecordingS3Resource(S3Resource):
    """dagster-aws's ``S3Resource``, whose clients record the requests they send."""

    def get_client(self) -> Any:
        client = super().get_client()
        S3_REQUESTS.append(("get_client", {}))
        for operation in ("ListObjectsV2", "HeadObject"):
            client.meta.events.register(
                f"provide-client-params.s3.{operation}",
                lambda params, _op=operation, **_: S3_REQUESTS.append((_op, dict(params))),
            )
        return client


def recorded(operation: str) -> list[dict[str, Any]]:
    return [params for name, params in S3_REQUESTS if name == operation]


@pytest.fixture(autouse=True)
def clear_recorded_requests() -> None:
    S3_REQUESTS.clear()


def s3_resource(server: S3TestServer) -> RecordingS3Resource:
    return RecordingS3Resource(
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )


def put_keys(server: S3TestServer, bucket: str, keys: Sequence[str]) -> None:
    """One small object per key, 8 at a time through one client."""
    client = server.client(max_pool_connections=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))


def partitioned_job(
    partitions_def: dg.DynamicPartitionsDefinition, name: str = "process_prefix"
) -> tuple[dg.AssetsDefinition, Any]:
    @dg.asset(name=f"{name}_asset", partitions_def=partitions_def)
    def prefix_asset(context: dg.AssetExecutionContext) -> str:
        return context.partition_key

    return prefix_asset, dg.define_asset_job(name, selection=[prefix_asset])


class SensorTicker:
    """Ticks one sensor like the daemon: fresh context, partitions applied, cursor carried."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        sensor_name: str,
        resources: dict[str, Any],
    ) -> None:
        self.defs = defs
        self.instance = instance
        self.sensor_name = sensor_name
        self.resources = resources
        self.cursor: str | None = None
        self.requested: list[str] = []
        self.last_skip_message: str | None = None

    def tick(self) -> list[str]:
        """Evaluate once; return the requested partition keys."""
        with dg.build_sensor_context(
            instance_ref=self.instance.get_ref(),
            definitions=self.defs,
            resources=self.resources,
            cursor=self.cursor,
            sensor_name=self.sensor_name,
        ) as context:
            data = self.defs.resolve_sensor_def(self.sensor_name).evaluate_tick(context)
        for request in data.dynamic_partitions_requests or []:
            assert isinstance(request, AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = data.cursor
        self.last_skip_message = data.skip_message
        run_requests = list(data.run_requests or [])
        keys = [str(request.partition_key) for request in run_requests]
        assert [request.run_key for request in run_requests] == keys
        added = [
            key
            for request in data.dynamic_partitions_requests or []
            for key in request.partition_keys
        ]
        assert sorted(added) == sorted(keys), "every run has its partition added in the same tick"
        self.requested.extend(keys)
        return keys

    def tick_until_skip(self, max_ticks: int = 50) -> list[list[str]]:
        ticks: list[list[str]] = []
        while len(ticks) < max_ticks:
            keys = self.tick()
            if not keys:
                return ticks
            ticks.append(keys)
        raise AssertionError(f"still requesting runs after {max_ticks} ticks")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def make_ticker(
    server: S3TestServer,
    instance: dg.DagsterInstance,
    bucket: str,
    root: str,
    **sensor_options: Any,
) -> SensorTicker:
    prefix_asset, job = partitioned_job(s3_prefix_partitions)
    sensor = build_s3_prefix_sensor(bucket=bucket, root=root, target=job, **sensor_options)
    resources = {"s3": s3_resource(server)}
    defs = dg.Definitions(assets=[prefix_asset], jobs=[job], sensors=[sensor], resources=resources)
    return SensorTicker(defs, instance, sensor.name, resources)


# --- the sensor, ticked against moto ------------------------------------------------------------


def test_prefixes_appearing_across_ticks_get_one_run_each(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, ["events/a/1.json", "events/a/2.json", "events/b/1.json"])
    put_keys(s3_server, s3_bucket, ["events/top-level-object.json", "other/x/1.json"])
    ticker = make_ticker(s3_server, instance, s3_bucket, "events/")

    assert ticker.tick() == ["events/a/", "events/b/"]
    assert set(instance.get_dynamic_partitions("s3_prefixes")) == {"events/a/", "events/b/"}
    put_keys(s3_server, s3_bucket, ["events/c/1.json", "events/a/3.json"])
    assert ticker.tick() == ["events/c/"]
    assert ticker.tick() == []
    assert ticker.requested == ["events/a/", "events/b/", "events/c/"]

    # Only prefix listings of the root, one client and one page per tick (all fit in a page).
    listings = recorded("ListObjectsV2")
    assert len(listings) == 3 and len(recorded("get_client")) == 3
    assert all(p["Prefix"] == "events/" and p["Delimiter"] == "/" for p in listings)
    assert recorded("HeadObject") == []

    # The run a request stands for works: the job runs for the partition the tick added.
    result = ticker.defs.resolve_job_def("process_prefix").execute_in_process(
        partition_key="events/c/", instance=instance
    )
    assert result.success
    assert result.output_for_node("process_prefix_asset") == "events/c/"


def test_restart_with_saved_cursor_requests_nothing_again(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, [f"r/{name}/_SUCCESS" for name in "abcde"])
    ticker = make_ticker(s3_server, instance, s3_bucket, "r/", ready_marker="_SUCCESS")
    assert ticker.tick() == [f"r/{name}/" for name in "abcde"]
    saved_cursor = ticker.cursor

    # A restarted daemon: new ticker (new contexts), same instance, the saved cursor.
    S3_REQUESTS.clear()
    restarted = make_ticker(s3_server, instance, s3_bucket, "r/", ready_marker="_SUCCESS")
    restarted.cursor = saved_cursor
    assert restarted.tick() == []
    assert recorded("HeadObject") == [], "no marker of an added prefix is requested again"

    # A lost cursor costs one more pass, never a duplicate run.
    lost = make_ticker(s3_server, instance, s3_bucket, "r/", ready_marker="_SUCCESS")
    assert lost.tick() == []
    put_keys(s3_server, s3_bucket, ["r/f/_SUCCESS"])
    assert lost.tick() == ["r/f/"]
    assert restarted.tick() == []  # the other "process" sees it as a partition already

    # A cursor that is not ours (edited by hand, older format) starts a new pass, nothing twice.
    restarted.cursor = "not json"
    assert restarted.tick() == []
    assert json.loads(restarted.cursor or "")["cycle"] == 1


@pytest.fixture(scope="module")
def bucket_with_2500_prefixes(s3_server: S3TestServer) -> str:
    """``big/p00000/`` ... ``big/p02499/`` (one object each, two for every tenth), read-only."""
    bucket = s3_server.create_bucket("prefixes")
    keys = [f"big/p{index:05d}/part-0" for index in range(2500)]
    keys += [f"big/p{index:05d}/part-1" for index in range(0, 2500, 10)]
    put_keys(s3_server, bucket, keys)
    return bucket


def test_2500_prefixes_found_in_bounded_ticks_without_duplicates(
    s3_server: S3TestServer, bucket_with_2500_prefixes: str, instance: dg.DagsterInstance
) -> None:
    ticker = make_ticker(s3_server, instance, bucket_with_2500_prefixes, "big/", pages_per_tick=1)
    ticks = ticker.tick_until_skip()

    assert [len(keys) for keys in ticks] == [1000, 1000, 500]
    assert len(ticker.requested) == len(set(ticker.requested)) == 2500
    assert ticker.requested == [f"big/p{index:05d}/" for index in range(2500)]
    assert len(instance.get_dynamic_partitions("s3_prefixes")) == 2500
    listings = recorded("ListObjectsV2")
    assert len(listings) == 4, "one page per tick: 3 pages, then a new pass with nothing new"
    assert [p.get("StartAfter") for p in listings] == [None, "big/p009990", "big/p019990", None]
    assert all(p["MaxKeys"] == 1000 and p["Delimiter"] == "/" for p in listings)
    assert ticker.last_skip_message is not None
    assert (
        "0 new ready prefixes; listed 1 page(s) from the beginning, 1000 prefixes seen "
        "(1000 already known)" in ticker.last_skip_message
    )
    assert "stopped by the page budget after 1000 prefixes of cycle 2" in ticker.last_skip_message
    assert json.loads(ticker.cursor or "")["found_total"] == 2500


def test_prefix_created_before_the_scan_position_is_found_on_the_next_pass(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, [f"r/{name}/x" for name in ("b", "d", "f", "h")])
    ticker = make_ticker(s3_server, instance, s3_bucket, "r/", pages_per_tick=1, page_size=2)
    assert ticker.tick() == ["r/b/", "r/d/"]
    # Behind the position ("r/a/", "r/c/"), at it ("r/d0/" sorts right after everything in
    # "r/d/") and ahead of it ("r/g/"); "r/d./" sorts before "r/d/" ('.' < '/').
    put_keys(s3_server, s3_bucket, ["r/a/x", "r/c/x", "r/d0/x", "r/d./x", "r/g/x"])
    assert ticker.tick() == ["r/d0/", "r/f/"]
    assert ticker.tick() == ["r/g/", "r/h/"]  # the listing ended: this tick completed the pass
    assert ticker.tick_until_skip() == [["r/a/"], ["r/c/", "r/d./"]]
    assert sorted(ticker.requested) == sorted(
        ["r/a/", "r/b/", "r/c/", "r/d./", "r/d/", "r/d0/", "r/f/", "r/g/", "r/h/"]
    )
    assert len(ticker.requested) == len(set(ticker.requested))


def test_ready_marker_holds_a_prefix_back_until_it_appears(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, ["in/1/data", "in/1/_SUCCESS", "in/2/data", "in/3/data"])
    ticker = make_ticker(s3_server, instance, s3_bucket, "in/", ready_marker="_SUCCESS")

    assert ticker.tick() == ["in/1/"]
    assert ticker.tick() == []
    message = ticker.last_skip_message or ""
    assert f"s3://{s3_bucket}/in/" in message
    assert "2 '_SUCCESS' markers checked, 2 not ready (in/2/, in/3/)" in message
    put_keys(s3_server, s3_bucket, ["in/3/_SUCCESS"])
    assert ticker.tick() == ["in/3/"]
    put_keys(s3_server, s3_bucket, ["in/2/_SUCCESS"])
    assert ticker.tick() == ["in/2/"]
    assert ticker.tick() == []
    heads = [p["Key"] for p in recorded("HeadObject")]
    # in/1/ once; in/2/ on each of the 4 passes until ready; in/3/ on 3 passes.
    assert sorted(heads) == sorted(
        ["in/1/_SUCCESS"] + ["in/2/_SUCCESS"] * 4 + ["in/3/_SUCCESS"] * 3
    )


def test_check_budget_stops_mid_page_and_the_next_tick_resumes_there(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, [f"m/{index}/_SUCCESS" for index in range(7)])
    put_keys(s3_server, s3_bucket, ["m/7/data"])  # never ready
    ticker = make_ticker(
        s3_server, instance, s3_bucket, "m/", ready_marker="_SUCCESS", max_checks_per_tick=3
    )
    assert ticker.tick() == ["m/0/", "m/1/", "m/2/"]
    assert json.loads(ticker.cursor or "")["start_after"] == "m/20"
    assert ticker.tick() == ["m/3/", "m/4/", "m/5/"]
    assert ticker.tick() == ["m/6/"]  # and m/7/ checked: not ready, pass complete
    assert ticker.tick() == []
    assert len(recorded("HeadObject")) == 3 + 3 + 2 + 1
    assert all(p.get("StartAfter") in (None, "m/20", "m/50") for p in recorded("ListObjectsV2"))


def test_nothing_new_gives_a_skip_reason_naming_bucket_and_root(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    ticker = make_ticker(s3_server, instance, s3_bucket, "empty/root/")
    assert ticker.tick() == []
    assert ticker.last_skip_message == (
        f"s3://{s3_bucket}/empty/root/: 0 new ready prefixes; listed 1 page(s) from the "
        "beginning, 0 prefixes seen (0 already known); cycle 1 complete (0 prefixes), next call "
        "starts from the beginning"
    )


def test_one_factory_watches_two_roots_with_their_own_partitions(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, ["clicks/1/x", "views/1/x", "views/2/x"])
    clicks_partitions = dg.DynamicPartitionsDefinition(name="click_prefixes")
    views_partitions = dg.DynamicPartitionsDefinition(name="view_prefixes")
    clicks_asset, clicks_job = partitioned_job(clicks_partitions, "process_clicks")
    views_asset, views_job = partitioned_job(views_partitions, "process_views")
    sensors = [
        build_s3_prefix_sensor(
            "clicks_sensor",
            bucket=s3_bucket,
            root="clicks/",
            target=clicks_job,
            partitions_def=clicks_partitions,
            s3_resource_key="s3_in",
        ),
        build_s3_prefix_sensor(
            "views_sensor",
            bucket=s3_bucket,
            root="views/",
            target=views_job,
            partitions_def=views_partitions,
            s3_resource_key="s3_in",
        ),
    ]
    assert all(s.default_status == dg.DefaultSensorStatus.STOPPED for s in sensors)
    resources = {"s3_in": s3_resource(s3_server)}
    defs = dg.Definitions(
        assets=[clicks_asset, views_asset],
        jobs=[clicks_job, views_job],
        sensors=sensors,
        resources=resources,
    )
    dg.Definitions.validate_loadable(defs)
    clicks = SensorTicker(defs, instance, "clicks_sensor", resources)
    views = SensorTicker(defs, instance, "views_sensor", resources)
    assert clicks.tick() == ["clicks/1/"]
    assert views.tick() == ["views/1/", "views/2/"]
    assert instance.get_dynamic_partitions("click_prefixes") == ["clicks/1/"]
    assert sorted(instance.get_dynamic_partitions("view_prefixes")) == ["views/1/", "views/2/"]


def test_prefixes_that_cannot_be_partition_keys_are_left_out(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    put_keys(s3_server, s3_bucket, ["u/ok/x", "u/a...b/x", "u/tab\there/x", "u/sp ace+%/x"])
    ticker = make_ticker(s3_server, instance, s3_bucket, "u/")
    assert ticker.tick() == ["u/ok/", "u/sp ace+%/"]
    assert unusable_partition_keys(["u/a...b/", "u/tab\there/"]) == ["u/a...b/", "u/tab\there/"]


def test_a_missing_bucket_fails_the_tick_with_one_line_and_keeps_the_cursor(
    s3_server: S3TestServer, instance: dg.DagsterInstance
) -> None:
    ticker = make_ticker(s3_server, instance, "no-such-bucket-for-sensor", "r/")
    ticker.cursor = saved = ScanCursor.start("no-such-bucket-for-sensor", "r/").to_json()
    with pytest.raises(S3SensorTickError) as raised:
        ticker.tick()
    assert str(raised.value) == (
        "Listing prefixes of s3://no-such-bucket-for-sensor/r/ failed: NoSuchBucket (HTTP 404)"
    )
    assert ticker.cursor == saved and ticker.requested == []


def test_a_tick_through_throttling_resets_and_cut_bodies_finds_every_prefix_once(
    s3_server: S3TestServer, s3_bucket: str, instance: dg.DagsterInstance
) -> None:
    prefixes = [f"in/{i:03d}/" for i in range(60)]
    put_keys(s3_server, s3_bucket, [f"{p}part" for p in prefixes])
    put_keys(s3_server, s3_bucket, [f"{p}_SUCCESS" for p in prefixes[::2]])
    plan = FaultPlan(throttle=0.2, reset=0.05, cut=0.1)
    with FaultProxy(s3_server.endpoint_url, plan) as proxy:
        through_proxy = S3TestServer(endpoint_url=proxy.endpoint_url)
        ticker = make_ticker(
            through_proxy, instance, s3_bucket, "in/", ready_marker="_SUCCESS", page_size=7
        )
        ticker.tick_until_skip()
    assert sorted(ticker.requested) == prefixes[::2]  # each ready prefix once, none missed
    for fault in ("list_throttle", "head_throttle", "list_cut", "head_reset", "list_reset"):
        assert proxy.counts[fault] > 0, proxy.counts


def test_an_unreachable_server_raises_naming_bucket_and_key_without_secrets(
    s3_server: S3TestServer,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the socket is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = S3TestServer(endpoint_url=f"http://127.0.0.1:{closed_port}")
    client = unreachable.client(retries={"max_attempts": 1, "mode": "standard"})
    with pytest.raises(S3PrefixError) as raised:
        prefix_is_ready(client, "bkt", "events/1/", "_SUCCESS")
    message = str(raised.value)
    assert "s3://bkt/events/1/_SUCCESS" in message and "EndpointConnectionError" in message
    assert unreachable.secret_key not in message and unreachable.access_key not in message
    with pytest.raises(S3PrefixError, match=r"s3://bkt/events/"):
        list_child_prefixes(client, "bkt", "events/")


def test_list_child_prefixes_pages_past_objects_and_decodes_unusual_names(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    names = ["r/0.txt", "r/1.txt", "r/2.txt", "r/a b/x", "r/a+b/x", "r/é/x", "r/z/y/x"]
    put_keys(s3_server, s3_bucket, names)
    client = s3_server.client()
    everything = list_child_prefixes(client, s3_bucket, "r/", max_pages=10)
    assert everything.prefixes == ("r/a b/", "r/a+b/", "r/z/", "r/é/")
    assert everything.next_token is None

    # Pages of 2 entries: the first holds only objects, yet the next page starts after them.
    first = list_child_prefixes(client, s3_bucket, "r/", page_size=2)
    assert first.prefixes == () and first.next_token is not None
    assert first.resume_after == "r/1.txt"
    second = list_child_prefixes(client, s3_bucket, "r/", page_size=2, start_after="r/1.txt")
    assert second.prefixes == ("r/a b/",) and second.resume_after == "r/a b0"
    by_token = list_child_prefixes(
        client, s3_bucket, "r/", page_size=2, continuation_token=first.next_token
    )
    assert by_token.prefixes == second.prefixes
    assert prefix_is_ready(client, s3_bucket, "r/z/", "y/x")
    assert not prefix_is_ready(client, s3_bucket, "r/z/", "_SUCCESS")


XML_AWKWARD_PREFIXES = [
    *(f"ctl/{index:02d}-plain/" for index in range(5)),
    "ctl/05-soh\x01/",  # SeaweedFS's token after it reads "ctl/05-soh\ufffd/"
    "ctl/05-soh\x01x/",
    "ctl/05-stx\x02/",
    "ctl/06-noncharacter\ufffe/",
    "ctl/07-replacement\ufffd/",
    *(f"ctl/{index:02d}-plain/" for index in range(8, 12)),
]


@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_child_prefixes_xml_cannot_carry_are_found_exactly_once_on_seaweedfs(
    weed: Any, page_size: int
) -> None:
    """SeaweedFS's continuation token is the page's last entry written into XML, U+FFFD in place
    of ``\x01``, ``\x02`` or ``\ufffe``: a page after such a prefix goes on with StartAfter, so
    every prefix comes back once, in order, within a call and across calls."""
    client = weed.client("admin")
    bucket = f"xml-awkward-prefixes-{page_size}"
    client.create_bucket(Bucket=bucket)
    for prefix in XML_AWKWARD_PREFIXES:
        client.put_object(Bucket=bucket, Key=f"{prefix}part-0", Body=b"x")
    expected = tuple(sorted(XML_AWKWARD_PREFIXES, key=str.encode))

    in_one_call = list_child_prefixes(client, bucket, "ctl/", max_pages=50, page_size=page_size)

    assert in_one_call.prefixes == expected and in_one_call.next_token is None
    found: list[str] = []
    page = list_child_prefixes(client, bucket, "ctl/", max_pages=2, page_size=page_size)
    found += page.prefixes
    while page.next_token is not None:
        page = list_child_prefixes(
            client, bucket, "ctl/", max_pages=2, page_size=page_size, start_after=page.resume_after
        )
        found += page.prefixes
    assert tuple(found) == expected
    if page_size == 1:  # a call ending on a lossy token: its token can't be passed back
        stopped = list_child_prefixes(client, bucket, "ctl/", max_pages=6, page_size=1)
        assert stopped.prefixes[-1] == "ctl/05-soh\x01/" and stopped.next_token is not None
        assert LOST_CHARACTER in stopped.next_token
        with pytest.raises(S3PrefixError, match=r"lost characters \(U\+FFFD\); continue with"):
            list_child_prefixes(client, bucket, "ctl/", continuation_token=stopped.next_token)


def test_known_partitions_lookup_asks_about_the_page_only(
    instance: dg.DagsterInstance,
) -> None:
    instance.add_dynamic_partitions("s3_prefixes", ["r/a/", "r/b/"])

    lookup = _known_partitions_lookup(instance, "s3_prefixes")
    assert lookup(["r/a/", "r/c/"]) == {"r/a/"}
    assert lookup([]) == set()
    assert lookup(["r/b/"]) == {"r/b/"}


# --- the pure cursor logic, without S3 ----------------------------------------------------------


def memory_lister(prefixes: set[str], page_size: int) -> Any:
    """``list_page`` over an in-memory set, with S3's ordering and ``StartAfter`` semantics.

    Each prefix holds one key, ``prefix + "x"``; like S3 (and unlike moto, which compares the
    prefix itself), a prefix is listed when a key under it sorts after ``StartAfter``.
    """

    def list_page(start_after: str | None) -> PrefixPage:
        after = sorted(p for p in prefixes if start_after is None or p + "x" > start_after)
        page = tuple(after[:page_size])
        more = len(after) > page_size
        resume = start_after_prefix(page[-1]) if page else None
        return PrefixPage(prefixes=page, next_token="more" if more else None, resume_after=resume)

    return list_page


def test_scan_step_is_exact_under_random_arrivals_budgets_and_restarts() -> None:
    rng = random.Random(20261128)
    alphabet = ".-0a_"  # around '/' in byte order: '-' '.' < '/' < '0'
    existing: set[str] = set()
    ready: set[str] = set()
    known: set[str] = set()
    cursor_json: str | None = None
    for tick in range(400):
        if tick < 300:  # arrivals, anywhere in the order; some become ready later
            for _ in range(rng.randint(0, 4)):
                name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
                existing.add(f"r/{name}/")
                if rng.random() < 0.6:
                    ready.add(f"r/{name}/")
            if existing - ready and rng.random() < 0.3:
                ready.add(rng.choice(sorted(existing - ready)))
        if rng.random() < 0.05:
            cursor_json = None  # a lost cursor
        cursor = ScanCursor.from_json(cursor_json, bucket="b", root="r/")
        checked: list[str] = []

        def check_ready(prefixes: Sequence[str], _checked: list[str] = checked) -> list[bool]:
            _checked.extend(prefixes)
            return [prefix in ready for prefix in prefixes]

        step = scan_step(
            cursor,
            list_page=memory_lister(existing, page_size=rng.randint(1, 4)),
            known=known if rng.random() < 0.5 else lambda ps: {p for p in ps if p in known},
            check_ready=check_ready,
            max_pages=rng.randint(1, 3),
            max_checks=rng.randint(1, 5),
        )
        assert not set(checked) & known, "a known prefix is never checked again"
        assert len(checked) == len(set(checked))
        assert set(step.new_ready) <= ready and not set(step.new_ready) & known
        assert len(step.new_ready) == len(set(step.new_ready))
        known.update(step.new_ready)
        cursor_json = step.cursor.to_json()
    assert known == ready, "every ready prefix is found once arrivals stop"


def test_scan_cursor_json_round_trip_and_reset() -> None:
    cursor = ScanCursor(bucket="b", root="r/", start_after="r/x0", cycle=2, found_total=7)
    text = cursor.to_json()
    assert json.loads(text)["version"] == 1
    assert ScanCursor.from_json(text, bucket="b", root="r/") == cursor
    assert ScanCursor.from_json(text, bucket="b", root="other/") == ScanCursor.start("b", "other/")
    assert ScanCursor.from_json(None, bucket="b", root="r/") == ScanCursor.start("b", "r/")
    with pytest.raises(ValueError, match="not a prefix scan cursor"):
        ScanCursor.from_json("[1, 2]", bucket="b", root="r/")
