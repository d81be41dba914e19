"""The fast listing path (our XML parsing, parallel fan-out) against real loopback servers.

Correctness only: the same results as the boto3 paginator on a bucket built to be awkward, key
order under fan-out, exact ``max_files``/``extension``, errors and retries. Speed is shown by
``benchmarks/``, not asserted here.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, cast
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.config import Config

from yt_assets.s3 import fast_listing
from yt_assets.s3.direct_requests import DirectLister, direct_lister_from
from yt_assets.s3.errors import S3ListingError
from yt_assets.s3.fast_listing import (
    LOOKAHEAD_PAGES,
    SEQUENTIAL_PAGES,
    FastPageFetcher,
    KeyRange,
    iter_fanned_out_pages,
    key_ranges,
    parse_list_objects_v2,
    parse_list_objects_v2_tree,
)
from yt_assets.s3.listing import FETCHER_ENV_VARIABLE, LISTING_RETRY, iter_s3_objects
from yt_assets.s3.pages import ListingPage, S3Object, iter_listing_pages
from yt_assets_tests.conftest import S3TestServer, bucket_of_keys, put_objects
from yt_assets_tests.fault_proxy import FaultPlan, FaultProxy
from yt_assets_tests.s3_fake_http import CannedS3Server, query_of

ObjectTuple = tuple[str, int, str, datetime]

AWKWARD_KEYS = [
    # keys sorting just before and after a sub-prefix ("." < "/" < "0"), and the bare name
    "a",
    "a!",
    "a-",
    "a.txt",
    "a/",
    "a/x",
    "a/y/z",
    "a0",
    # unicode, spaces, "+", "%", XML specials, control characters
    "odd/with space.txt",
    "odd/plus+sign.txt",
    "odd/percent%20literal.txt",
    "odd/percent%2Bplus",
    "odd/100%",
    "odd/unicodé/ключ/日本語.json",
    "odd/emoji-😀.txt",
    "odd/amp&lt;<>'\"",
    "odd/question?hash#",
    "odd/tilde~ and trailing space ",
    "odd/tab\there",
    "odd/soh\x01, carriage\rreturn, del\x7f",  # moto writes them raw into a plain listing
    "odd/ sub with space/x.json",
    "odd/+/plus-dir.json",
    "odd/%/percent-dir.json",
    # empty path segments and folder markers without anything beneath
    "empty/",
    "empty-too/",
    "gaps/a//b",
    "gaps//c",
    "gaps/marker/",
    "gaps/marker/inside.txt",
    "/leading-slash",
    # deep single-child chains and very long keys
    "deep/1/2/3/4/5/leaf.json",
    "deep/1/2/3/4/5/leaf2.json",
    "long/" + "k" * 900 + "/end.txt",
    "long/" + "ü" * 450 + ".json",
    "z-last",
]
PAGE_EDGE_KEYS = [
    f"many/{index:04d}.{'json' if index % 4 == 0 else 'txt'}" for index in range(1001)
]
SPREAD_KEYS = [
    *(f"spread/{group:02d}/{index:03d}.txt" for group in range(30) for index in range(7)),
    # the level's own objects between sub-prefixes
    "spread/05.txt",
    "spread/12-direct.json",
    "spread/zz-last.txt",
]


@pytest.fixture(scope="module")
def awkward_bucket(s3_server: S3TestServer) -> str:
    """Awkward keys, a 1,001-key sub-prefix and 30 sub-prefixes; shared read-only."""
    keys = AWKWARD_KEYS + PAGE_EDGE_KEYS + SPREAD_KEYS + ["spread/20/"]  # and a folder marker
    return bucket_of_keys(s3_server, "awkward", keys)


def paginator_objects(client: Any, bucket: str, prefix: str) -> list[ObjectTuple]:
    """What boto3's paginator lists (folder markers dropped), independently of our code."""
    listed: list[ObjectTuple] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", ()):
            if not entry["Key"].endswith("/"):
                listed.append(
                    (
                        entry["Key"],
                        entry["Size"],
                        entry["ETag"].strip('"'),
                        entry["LastModified"].astimezone(UTC),
                    )
                )
    return listed


def as_tuples(objects: Iterator[S3Object]) -> list[ObjectTuple]:
    return [(obj.key, obj.size, obj.etag, obj.last_modified) for obj in objects]


def record_list_calls(client: Any) -> list[dict[str, Any]]:
    """Parameters and thread of every ListObjectsV2 call the client makes (botocore hook)."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append({**params, "thread": threading.current_thread().name})

    client.meta.events.register("provide-client-params.s3.ListObjectsV2", record)
    return calls


LISTING_MODES: dict[str, dict[str, Any]] = {
    "fast-default": {},
    "fast-sequential": {"fetcher": "fast", "fan_out": 1},
    "fast-fanout-small-pages": {"fetcher": "fast", "fan_out": 4, "page_size": 7},
    "fast-fanout-2-pages-of-3": {"fetcher": "fast", "fan_out": 2, "page_size": 3},
    "boto3-fanout": {"fetcher": "boto3", "fan_out": 3, "page_size": 11},
}


@pytest.mark.parametrize("mode", list(LISTING_MODES))
@pytest.mark.parametrize("prefix", ["", "a", "odd/", "gaps/", "deep/", "many/", "spread/", "no/"])
def test_same_objects_in_the_same_order_as_the_boto3_paginator(
    s3_server: S3TestServer, awkward_bucket: str, mode: str, prefix: str
) -> None:
    client = s3_server.client()
    expected = paginator_objects(client, awkward_bucket, prefix)

    listed = as_tuples(iter_s3_objects(client, awkward_bucket, prefix, **LISTING_MODES[mode]))

    assert listed == expected
    assert [key for key, *_ in listed] == sorted((key for key, *_ in listed), key=str.encode)


def test_fan_out_lists_ranges_in_parallel_threads_and_keeps_key_order(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    client = s3_server.client()
    calls = record_list_calls(client)

    # 20 keys a page: the sequential start sees sub-prefixes of well under half a page each
    listed = as_tuples(iter_s3_objects(client, awkward_bucket, "spread/", fan_out=4, page_size=20))

    assert listed == paginator_objects(s3_server.client(), awkward_bucket, "spread/")
    range_calls = [call for call in calls if "StartAfter" in call]
    assert len(range_calls) >= 4
    assert len({call["thread"] for call in calls if call["thread"].startswith("s3-list")}) >= 2
    # sequential first, the paginator's requests; the delimited discovery once 5 came back full
    assert [("Delimiter" in call, "StartAfter" in call) for call in calls[:6]] == [
        (False, False)
    ] * SEQUENTIAL_PAGES + [(True, False)]


@pytest.mark.parametrize("page_size", [5, 7])
def test_sub_prefixes_of_half_a_page_or_more_are_each_listed_with_their_own_prefix(
    s3_server: S3TestServer, awkward_bucket: str, page_size: int
) -> None:
    """spread/ has 30 sub-prefixes of 7 keys and objects of its own between them: past the
    sequential start, the sub-prefix it stopped in is listed after its last key and each later
    sub-prefix from its start, with Prefix set to it (so no page runs into the next
    sub-prefix: no key is listed twice), and the level's own objects come from the delimited
    listing; the same objects in the same order as the paginator's."""
    client = s3_server.client()
    calls = record_list_calls(client)

    listed = as_tuples(
        iter_s3_objects(client, awkward_bucket, "spread/", fan_out=4, page_size=page_size)
    )

    assert listed == paginator_objects(s3_server.client(), awkward_bucket, "spread/")
    assert "spread/05.txt" in [key for key, *_ in listed]
    after_discovery = calls[SEQUENTIAL_PAGES + 1 :]
    sequential_reached = max(key for key, *_ in listed[: SEQUENTIAL_PAGES * page_size])
    stopped_in = sequential_reached[: sequential_reached.rindex("/") + 1]
    assert [(call["Prefix"], call["StartAfter"]) for call in calls if "StartAfter" in call] == [
        (stopped_in, sequential_reached)
    ]
    assert all(call["Prefix"] != "spread/" or "Delimiter" in call for call in after_discovery)
    per_sub_prefix = [
        call for call in after_discovery if call["Prefix"] != "spread/" and "StartAfter" not in call
    ]
    first_calls = {call["Prefix"] for call in per_sub_prefix if "ContinuationToken" not in call}
    later = sorted(
        {key[: key.rindex("/") + 1] for key, *_ in listed if key > sequential_reached} - {"spread/"}
    )
    assert sorted(first_calls) == [group for group in later if group > sequential_reached]
    assert len(first_calls) == sum(1 for call in per_sub_prefix if "ContinuationToken" not in call)
    assert len({call["thread"] for call in per_sub_prefix}) >= 2


def test_a_sequential_start_ending_on_a_level_object_goes_on_from_the_level(
    s3_server: S3TestServer,
) -> None:
    """The sequential start's last key is the level's own object (no sub-prefix to finish):
    everything after it comes from the later sub-prefixes and the delimited listing."""
    bucket = s3_server.create_bucket("level-object-last")
    keys = [
        *(f"level/a/{index:02d}" for index in range(14)),
        "level/a0",  # the 15th key: the last of 5 pages of 3
        "level/b/0",
        "level/b/1",
        "level/c0",
        "level/d/0",
    ]
    put_objects(s3_server, bucket, dict.fromkeys(keys, b""))
    client = s3_server.client()
    calls = record_list_calls(client)

    listed = [obj.key for obj in iter_s3_objects(client, bucket, "level/", fan_out=3, page_size=3)]

    assert listed == sorted(keys)
    assert not [call for call in calls if "StartAfter" in call]
    later = [call["Prefix"] for call in calls[SEQUENTIAL_PAGES + 1 :] if "Delimiter" not in call]
    assert sorted(later) == ["level/b/", "level/d/"]


@pytest.mark.parametrize(
    ("key_count", "fans_out"), [(3, False), (10, False), (50, False), (51, True), (90, True)]
)
def test_small_listings_send_exactly_the_paginators_requests(
    s3_server: S3TestServer, key_count: int, fans_out: bool
) -> None:
    """Counted at a real proxy in front of the server: up to SEQUENTIAL_PAGES full pages, no
    request more than the paginator's; past them, the fan-out, with the same objects."""
    bucket = s3_server.create_bucket("counted")
    put_objects(s3_server, bucket, {f"p/{i % 9}/{i:03d}": b"" for i in range(key_count)})
    with FaultProxy(s3_server.endpoint_url, FaultPlan()) as proxy:
        client = S3TestServer(proxy.endpoint_url).client(max_pool_connections=8)
        paginated = [
            entry["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="p/", PaginationConfig={"PageSize": 10}
            )
            for entry in page.get("Contents", ())
        ]
        paginator_requests = proxy.counts["list_requests"]

        listed = [obj.key for obj in iter_s3_objects(client, bucket, "p/", page_size=10)]
        our_requests = proxy.counts["list_requests"] - paginator_requests

    assert listed == paginated and len(listed) == key_count
    assert paginator_requests == -(-key_count // 10)
    if fans_out:
        assert our_requests > paginator_requests
    else:
        assert our_requests == paginator_requests


def test_a_single_sub_prefix_chain_is_walked_down_before_fanning_out(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    client = s3_server.client()
    calls = record_list_calls(client)
    fetch = FastPageFetcher(client)

    pages = iter_fanned_out_pages(
        fetch, awkward_bucket, "deep/", workers=4, page_size=1, sequential_pages=1
    )
    keys = [row[0] for rows in pages for row in rows]

    assert keys == ["deep/1/2/3/4/5/leaf.json", "deep/1/2/3/4/5/leaf2.json"]
    assert [call["Prefix"] for call in calls[:7]] == [
        "deep/",  # the sequential first page
        "deep/",
        "deep/1/",
        "deep/1/2/",
        "deep/1/2/3/",
        "deep/1/2/3/4/",
        "deep/1/2/3/4/5/",
    ]
    # no sub-prefix there: one-key probes after the last key listed, then the listing goes on
    probes = [call for call in calls[7:] if call["MaxKeys"] == 1 and "StartAfter" in call]
    assert probes
    assert all(call["Prefix"] == "deep/" for call in calls[7:])
    assert all(call["StartAfter"] >= keys[0] for call in probes)


@pytest.mark.parametrize("max_files", [1, 6, 7, 250, 1000, 1001, 1100, 5000])
@pytest.mark.parametrize("extension", [None, "json", ".TXT"])
def test_max_files_and_extension_are_exact_under_fan_out(
    s3_server: S3TestServer, awkward_bucket: str, max_files: int, extension: str | None
) -> None:
    client = s3_server.client()
    sequential = [
        obj.key
        for obj in iter_s3_objects(
            client, awkward_bucket, "", extension=extension, max_files=max_files, fetcher="boto3"
        )
    ]

    fanned_out = [
        obj.key
        for obj in iter_s3_objects(
            client,
            awkward_bucket,
            "",
            extension=extension,
            max_files=max_files,
            fan_out=3,
            page_size=97,
        )
    ]

    assert fanned_out == sequential
    assert len(sequential) == min(max_files, len(sequential))


def test_stopping_early_stops_the_pool_and_lookahead_is_bounded(
    s3_server: S3TestServer, awkward_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_listing, "PROBE_COST_SHARE", float("inf"))  # fan out at tiny pages
    monkeypatch.setattr(fast_listing, "SAMPLE_ONLY_LARGE_RESTS", False)
    monkeypatch.setattr(fast_listing, "MIN_SAMPLED_RANGE_PAGES", 1)
    client = s3_server.client()
    calls = record_list_calls(client)
    objects = cast(
        Generator[S3Object, None, None],
        iter_s3_objects(client, awkward_bucket, "spread/", fan_out=3, page_size=2),
    )

    first = next(objects)
    for _ in range(SEQUENTIAL_PAGES * 2):
        next(objects)  # past the sequential start: the fan-out begins
    # Let the producers run until they block on their bounded queues (or finish).
    settled_count, deadline = -1, time.monotonic() + 10
    while settled_count != len(calls) and time.monotonic() < deadline:
        settled_count = len(calls)
        time.sleep(0.3)
    objects.close()

    assert first.key == "spread/00/000.txt"
    # the sequential pages, 1 discovery page, the level pages read to cut ranges (or one-key
    # probes for sampled cuts), and per range in the window at most its lookahead + 1 blocked on
    # the queue + 1 being fetched: far from the 107 pages of the whole prefix.
    pages = [call for call in calls if call["MaxKeys"] != 1]
    assert any(call["thread"].startswith("s3-list") for call in pages)  # it did fan out
    assert len(pages) <= SEQUENTIAL_PAGES + 1 + 3 + 3 * (LOOKAHEAD_PAGES + 2) < 107
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("s3-list")]


def test_other_callers_of_the_same_client_still_get_botocore_results(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    client = s3_server.client()
    list(iter_s3_objects(client, awkward_bucket, "odd/"))

    response = client.list_objects_v2(Bucket=awkward_bucket, Prefix="odd/p")

    assert [entry["Key"] for entry in response["Contents"]] == [
        "odd/percent%20literal.txt",
        "odd/percent%2Bplus",
        "odd/plus+sign.txt",
    ]
    assert "YtAssetsListingPage" not in response


@pytest.mark.parametrize(
    ("fetcher", "environment", "botocore_parses"),
    [(None, None, False), (None, "boto3", True), ("boto3", None, True), ("fast", "boto3", False)],
)
def test_the_boto3_path_can_be_forced_by_argument_or_environment(
    s3_server: S3TestServer,
    awkward_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    fetcher: str | None,
    environment: str | None,
    botocore_parses: bool,
) -> None:
    if environment is None:
        monkeypatch.delenv(FETCHER_ENV_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(FETCHER_ENV_VARIABLE, environment)
    client = s3_server.client()
    parsed_contents: list[bool] = []
    client.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **_: parsed_contents.append("Contents" in parsed),
    )

    keys = [
        obj.key
        for obj in iter_s3_objects(client, awkward_bucket, "many/", fetcher=fetcher)  # type: ignore[arg-type]
    ]

    assert keys == PAGE_EDGE_KEYS
    assert parsed_contents and all(parsed is botocore_parses for parsed in parsed_contents)


def test_invalid_fetcher_fan_out_and_page_size_raise_at_call_time() -> None:
    with pytest.raises(ValueError, match="fetcher"):
        iter_s3_objects(object(), "b", "", fetcher="curl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fan_out"):
        iter_s3_objects(object(), "b", "", fan_out=0)
    with pytest.raises(ValueError, match="page_size"):
        iter_s3_objects(object(), "b", "", page_size=1001)


# ---------------------------------------------------------------------------------------------
# Parsing, as a pure function


def list_result_xml(
    keys: list[str],
    *,
    common_prefixes: tuple[str, ...] = (),
    truncated: bool = False,
    next_token: str | None = None,
    encoding_type: str | None = None,
    namespace: bool = True,
    last_modified: str = "2024-01-02T03:04:05.678Z",
) -> str:
    contents = "".join(
        f"<Contents><Key>{escape(key)}</Key><LastModified>{last_modified}</LastModified>"
        f"<ETag>&quot;etag-{index}&quot;</ETag><Size>{index * 10}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for index, key in enumerate(keys)
    )
    prefixes = "".join(
        f"<CommonPrefixes><Prefix>{escape(prefix)}</Prefix></CommonPrefixes>"
        for prefix in common_prefixes
    )
    token = f"<NextContinuationToken>{next_token}</NextContinuationToken>" if next_token else ""
    encoding = f"<EncodingType>{encoding_type}</EncodingType>" if encoding_type else ""
    xmlns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' if namespace else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult{xmlns}>'
        f"<Name>bucket</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys>{encoding}"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        f"{token}{contents}{prefixes}</ListBucketResult>"
    )


@pytest.mark.parametrize("namespace", [True, False])
def test_parser_decodes_url_encoded_keys_like_botocore(namespace: bool) -> None:
    body = list_result_xml(
        ["a+b%2Bc", "%E6%97%A5+%25"],
        common_prefixes=("sub%2F+dir/",),
        truncated=True,
        next_token="tok+/=",
        encoding_type="url",
        namespace=namespace,
    )

    page = parse_list_objects_v2(body.encode())

    assert [row[0] for row in page.objects] == ["a b+c", "日 %"]
    assert page.common_prefixes == ("sub/ dir/",)
    assert page.is_truncated and page.next_continuation_token == "tok+/="
    assert page.objects[1] == (
        "日 %",
        10,
        "etag-1",
        datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    )
    gc.collect()  # plain tuples: the collector stops tracking them (a named tuple it never does)
    assert not any(gc.is_tracked(row) for row in page.objects)


def test_parser_leaves_keys_alone_without_encoding_type() -> None:
    page = parse_list_objects_v2(list_result_xml(["a+b%2B"]).encode())

    assert [row[0] for row in page.objects] == ["a+b%2B"]
    assert page == ListingPage(
        objects=page.objects, is_truncated=False, next_continuation_token=None
    )


def test_parser_refuses_what_is_not_a_listing() -> None:
    with pytest.raises(ValueError, match="ListBucketResult"):
        parse_list_objects_v2(b"<Error><Code>AccessDenied</Code></Error>")


def test_key_ranges_cut_at_sub_prefixes_in_order() -> None:
    def page(*prefixes: str) -> ListingPage:
        return ListingPage(
            [], is_truncated=True, next_continuation_token="t", common_prefixes=prefixes
        )

    first = page(*(f"p/{index:02d}/" for index in range(10)))
    later = page("p/20/", "p/21/", "p/22/", "p/23/")

    ranges = list(key_ranges(iter([first, later]), workers=2))

    bounds = [key_range.low or "" for key_range in ranges[1:]]
    assert ranges[0] == KeyRange(None, bounds[0])
    assert all(a.high == b.low for a, b in pairwise(ranges))
    assert ranges[-1].high is None
    assert bounds == sorted(bounds) and len(bounds) == 4 + 2
    assert "p/00/" not in bounds


# ---------------------------------------------------------------------------------------------
# Errors and retries through a real HTTP server on loopback

Responder = Callable[[int, dict[str, str]], tuple[int, str]]


@contextmanager
def scripted_s3(respond: Responder) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server on 127.0.0.1 answering ``respond(request_number, query)``."""
    with CannedS3Server(lambda number, path: respond(number, query_of(path))) as server:
        yield server.endpoint_url, server.queries


def retrying_client(endpoint_url: str, attempts: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDRETRY",
        aws_secret_access_key="retry-secret-value",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=2,
            read_timeout=5,
        ),
    )


def error_body(code: str) -> str:
    return f"<Error><Code>{code}</Code><Message>m</Message><RequestId>r</RequestId></Error>"


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "SlowDown")])
def test_server_errors_are_retried_then_the_listing_succeeds(status: int, code: str) -> None:
    def flaky(number: int, _query: dict[str, str]) -> tuple[int, str]:
        if number <= 2:
            return status, error_body(code)
        return 200, list_result_xml(["a", "b"], encoding_type="url")

    with scripted_s3(flaky) as (url, requests):
        keys = [obj.key for obj in iter_s3_objects(retrying_client(url, 3), "bucket", "")]

    assert keys == ["a", "b"]
    assert len(requests) == 3
    assert requests[0]["encoding-type"] == "url"


def test_a_persistent_500_raises_after_the_retries_naming_bucket_not_secrets() -> None:
    failing = scripted_s3(lambda _n, _q: (500, error_body("InternalError")))
    with failing as (url, requests), pytest.raises(S3ListingError) as caught:
        list(iter_s3_objects(retrying_client(url, 3), "flaky-bucket", "raw/"))

    error = caught.value
    assert (error.bucket, error.prefix, error.code) == ("flaky-bucket", "raw/", "InternalError")
    assert "HTTP 500" in str(error) and "flaky-bucket" in str(error)
    assert "retry-secret-value" not in str(error) and "AKIDRETRY" not in str(error)
    # botocore's 3 attempts, repeated by each of the listing's own attempts
    assert len(requests) == 3 * LISTING_RETRY.max_attempts
    assert f"gave up after {LISTING_RETRY.max_attempts} attempts" in str(error)


def test_an_unreachable_server_raises_a_listing_error() -> None:
    with scripted_s3(lambda _n, _q: (200, "")) as (url, _requests):
        pass  # stopped: its port is now closed
    with pytest.raises(S3ListingError) as caught:
        list(iter_s3_objects(retrying_client(url, 2), "gone-bucket", ""))

    assert caught.value.code == "EndpointConnectionError"
    assert "gone-bucket" in str(caught.value)


def sequential_start(query: dict[str, str]) -> tuple[int, str]:
    """The sequential start: SEQUENTIAL_PAGES full pages ``a/0``..``a/4`` (tokens ``1``..``5``),
    then, going on from the last token, ``a/5`` and ``b/1``."""
    number = int(query.get("continuation-token", "0"))
    if number < SEQUENTIAL_PAGES:
        return 200, list_result_xml([f"a/{number}"], truncated=True, next_token=str(number + 1))
    return 200, list_result_xml(["a/5", "b/1"])


def test_a_failing_range_raises_after_the_keys_before_it() -> None:
    def sub_prefixes_then_failure(_number: int, query: dict[str, str]) -> tuple[int, str]:
        if query.get("delimiter") == "/":
            return 200, list_result_xml([], common_prefixes=("a/", "b/", "c/"))
        if "start-after" not in query:  # the start, then the first range: up to b/
            return sequential_start(query)
        if query["start-after"] == "b/":
            return 200, list_result_xml(["b/1", "b/2", "c/1"])
        return 403, error_body("AccessDenied")

    with scripted_s3(sub_prefixes_then_failure) as (url, _requests):
        seen: list[str] = []
        with pytest.raises(S3ListingError) as caught:
            seen.extend(
                obj.key for obj in iter_s3_objects(retrying_client(url, 1), "bucket", "", fan_out=4)
            )

    assert seen == ["a/0", "a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "b/2"]
    assert caught.value.code == "AccessDenied"


def test_truncated_without_token_raises_under_fan_out_too() -> None:
    def broken_level(_number: int, query: dict[str, str]) -> tuple[int, str]:
        if query.get("delimiter") == "/" and "continuation-token" not in query:
            return 200, list_result_xml([], common_prefixes=("a/", "b/"), truncated=True)
        return sequential_start(query)

    with scripted_s3(broken_level) as (url, _requests), pytest.raises(S3ListingError) as caught:
        list(iter_s3_objects(retrying_client(url, 1), "bucket", "", fan_out=2))

    assert caught.value.code == "TruncatedWithoutContinuationToken"


@pytest.mark.parametrize(
    "bad_200_body",
    [error_body("InternalError"), list_result_xml(["a", "b"], truncated=True)[:-40]],
    ids=["error-inside-a-200", "cut-off-body"],
)
def test_a_200_that_is_an_error_or_cut_off_is_retried_like_botocore_does(bad_200_body: str) -> None:
    def bad_then_good(number: int, _query: dict[str, str]) -> tuple[int, str]:
        if number == 1:
            return 200, bad_200_body
        return 200, list_result_xml(["a", "b"], encoding_type="url")

    with scripted_s3(bad_then_good) as (url, requests):
        keys = [obj.key for obj in iter_s3_objects(retrying_client(url, 3), "bucket", "")]

    assert keys == ["a", "b"]
    assert len(requests) == 2


def test_other_clients_keep_botocore_handlers_untouched(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    session = boto3.session.Session(
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    config = Config(s3={"addressing_style": "path"})
    ours = session.client("s3", endpoint_url=s3_server.endpoint_url, config=config)
    other = session.client("s3", endpoint_url=s3_server.endpoint_url, config=config)
    list(iter_s3_objects(ours, awkward_bucket, "odd/"))
    list(iter_s3_objects(ours, awkward_bucket, "odd/"))  # installing twice is harmless

    def handler_names(client: Any) -> list[str]:
        # botocore internals (its events have no public listing): the handlers in call order.
        trie = client.meta.events._emitter._handlers
        handlers = trie.prefix_search("before-parse.s3.ListObjectsV2")
        return [getattr(handler, "__name__", "") for handler in handlers]

    assert "_handle_200_error" in handler_names(other)
    assert "_handle_200_error" not in handler_names(ours)
    assert handler_names(ours)[0] == "parse_or_check_200_error"


PLAIN = list_result_xml(["a&b <c>", "d'e\"f"], common_prefixes=("p&q/",), next_token="t&amp;x")


@pytest.mark.parametrize(
    "body",
    [
        PLAIN,
        PLAIN.replace("a&amp;b", "a&#38;b&#x1F600;"),
        PLAIN.replace("<Key>d", "<Key><![CDATA[<raw>]]>d"),
        PLAIN.replace("<IsTruncated>", "<!-- note --><IsTruncated>"),
        PLAIN.replace("<ListBucketResult ", '<s3:ListBucketResult xmlns:s3="x" ').replace(
            "</ListBucketResult>", "</s3:ListBucketResult>"
        ),
        PLAIN.replace(
            "<NextContinuationToken>t&amp;x</NextContinuationToken>",
            '<s3:NextContinuationToken xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">'
            "t&amp;x</s3:NextContinuationToken>",
        ),
        PLAIN.replace(
            "<CommonPrefixes>",
            '<s3:CommonPrefixes xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">',
        ).replace("</CommonPrefixes>", "</s3:CommonPrefixes>"),
        list_result_xml([f"k{index}" for index in range(50)], namespace=False),
        list_result_xml(["x%2Fy+z%25"], encoding_type="url", last_modified="2024-01-02T03:04:05Z"),
        list_result_xml([]),
    ],
    ids=[
        "entities",
        "numeric",
        "cdata",
        "comment",
        "prefixed",
        "a prefixed element after the blocks",
        "prefixed common prefixes",
        "plain",
        "encoded",
        "empty",
    ],
)
def test_the_quick_reader_and_the_tree_reader_agree(body: str) -> None:
    try:
        expected: ListingPage | str = parse_list_objects_v2_tree(body.encode())
    except ValueError as error:  # a prefixed root is no ListBucketResult for either reader
        expected = type(error).__name__
    try:
        parsed: ListingPage | str = parse_list_objects_v2(body.encode())
    except ValueError as error:
        parsed = type(error).__name__

    assert parsed == expected


def listed_with(fetch: FastPageFetcher, bucket: str, prefix: str) -> list[ObjectTuple]:
    pages = iter_listing_pages(fetch, bucket, prefix, max_keys=lambda: 5)
    return [row for page in pages for row in page.objects if not row[0].endswith("/")]


@pytest.mark.parametrize("prefix", ["", "odd/", "gaps/"])
def test_requests_after_the_first_are_sent_directly_and_list_the_same(
    s3_server: S3TestServer, awkward_bucket: str, prefix: str
) -> None:
    fetch = FastPageFetcher(s3_server.client())

    listed = listed_with(fetch, awkward_bucket, prefix)

    assert fetch.sends_directly(awkward_bucket)
    assert listed == paginator_objects(s3_server.client(), awkward_bucket, prefix)


def test_a_client_with_hooks_of_its_own_sees_every_request(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    client = s3_server.client()
    calls = record_list_calls(client)
    fetch = FastPageFetcher(client)

    listed = listed_with(fetch, awkward_bucket, "odd/")

    assert not fetch.sends_directly(awkward_bucket)
    assert len(calls) == -(-len(listed) // 5)  # one call a page
    assert listed == paginator_objects(s3_server.client(), awkward_bucket, "odd/")


def test_an_error_after_direct_requests_is_reported_with_its_s3_code(
    s3_server: S3TestServer,
) -> None:
    client = s3_server.client()
    bucket = s3_server.create_bucket("vanishing")
    put_objects(s3_server, bucket, {f"k/{index}": b"x" for index in range(7)})
    fetch = FastPageFetcher(client)
    assert len(listed_with(fetch, bucket, "k/")) == 7
    assert fetch.sends_directly(bucket)
    for index in range(7):
        client.delete_object(Bucket=bucket, Key=f"k/{index}")
    client.delete_bucket(Bucket=bucket)

    with pytest.raises(S3ListingError) as raised:
        listed_with(fetch, bucket, "k/")

    assert raised.value.code == "NoSuchBucket"
    assert "HTTP 404" in str(raised.value)


def contents_xml(key: str, etag: str, modified: str = "2024-01-02T03:04:05.678Z") -> str:
    etag_element = f"<ETag>{etag}</ETag>" if etag else ""
    return (
        f"<Contents><Key>{key}</Key><LastModified>{modified}</LastModified>{etag_element}"
        "<Size>7</Size></Contents>"
    )


ODD_PAGES = {
    "entity-escaped keys": [contents_xml("a&amp;b&lt;&gt;&#34;&#x9;", "&quot;e1&quot;")],
    "numeric-quoted etags": [contents_xml("a", "&#34;e1&#34;"), contents_xml("b", "&#34;e2&#34;")],
    "raw quotes and no etag": [contents_xml("a", '"e1"'), contents_xml("b", "")],
    "an etag with an entity inside": [contents_xml("a", "&quot;e&amp;1&quot;")],
    "a newline in a key": [
        contents_xml("a\nb", "&quot;e&quot;"),
        contents_xml("c", "&quot;f&quot;"),
    ],
    "spaced blocks": ["\n  " + contents_xml("a", "&quot;e&quot;") + "\n  ", contents_xml("b", "")],
    "a spaced block after compact ones": [
        contents_xml("a", "&quot;e&quot;"),
        contents_xml("b", "&quot;f&quot;").replace("><", ">\n    <"),
        contents_xml("c", "&quot;g&quot;"),
    ],
    "compact blocks after a spaced one": [
        contents_xml("a", "&quot;e&quot;").replace("><", "> <"),
        contents_xml("b", "&quot;f&quot;"),
    ],
    "prefixes between blocks": [
        contents_xml("a", "&quot;e&quot;"),
        "<CommonPrefixes><Prefix>p%2F/</Prefix></CommonPrefixes>",
        contents_xml("b", "&quot;f&quot;", "2024-05-06T07:08:09Z"),
    ],
    "mixed quote forms": [contents_xml("a", "&#34;e1&#34;"), contents_xml("b", "&quot;e2&quot;")],
    "a quote inside an etag": [
        contents_xml("a", "&#34;e&#34;1&#34;"),
        contents_xml("b", "&#34;f&#34;"),
    ],
    "quoted etags around raw quotes": [
        contents_xml("a", '&#34;"e"&#34;'),
        contents_xml("b", "&#34;f&#34;"),
    ],
    "a line break in an etag": [
        contents_xml("a", "&#34;e\n&#34;"),
        contents_xml("b", "&#34;f&#34;"),
    ],
    "nested and plain other children": [
        contents_xml("a!b?c", "&#34;e&#34;").replace(
            "<Size>", "<Owner><ID>o</ID></Owner><StorageClass>STANDARD</StorageClass><Size>"
        ),
        contents_xml("b", "&#34;f&#34;").replace(
            "<Size>", "<Owner><ID>p</ID></Owner><StorageClass>GLACIER</StorageClass><Size>"
        ),
    ],
    "a namespace prefix on a later block": [
        contents_xml("a", "&#34;e&#34;"),
        '<s3:Contents xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Key>b</s3:Key>'
        "<s3:LastModified>2024-01-02T03:04:05Z</s3:LastModified><s3:Size>7</s3:Size></s3:Contents>",
    ],
    "a namespace prefix on the first block": [
        '<s3:Contents xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Key>a</s3:Key>'
        "<s3:LastModified>2024-01-02T03:04:05Z</s3:LastModified><s3:Size>7</s3:Size></s3:Contents>",
        contents_xml("b", "&#34;e&#34;"),
    ],
    "a prefix declared inside a block, on its owner": [
        contents_xml("a", "&#34;e&#34;").replace(
            "<Size>", '<Owner xmlns:o="urn:o"><o:ID>i</o:ID></Owner><Size>'
        ),
        contents_xml("b", "&#34;f&#34;"),
    ],
    "url escapes besides slashes": [
        contents_xml("a%2Fb%20c+d", "&quot;e&quot;"),
        contents_xml("%E6%97%A5%2F", "&quot;f&quot;"),
    ],
}


@pytest.mark.parametrize("encoding", [None, "url"])
@pytest.mark.parametrize("case", list(ODD_PAGES))
def test_the_plain_reader_reads_what_xml_etree_reads(case: str, encoding: str | None) -> None:
    head = '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
    encoding_element = f"<EncodingType>{encoding}</EncodingType>" if encoding else ""
    body = (
        head
        + encoding_element
        + "<IsTruncated>false</IsTruncated>"
        + "".join(ODD_PAGES[case])
        + "</ListBucketResult>"
    ).encode()

    assert parse_list_objects_v2(body) == parse_list_objects_v2_tree(body)


def test_later_fetchers_of_a_client_send_directly_from_their_first_request_unless_hooked(
    s3_server: S3TestServer, awkward_bucket: str
) -> None:
    client = s3_server.client()
    expected = paginator_objects(s3_server.client(), awkward_bucket, "odd/")
    first = FastPageFetcher(client)
    assert not first.sends_directly(awkward_bucket)
    assert listed_with(first, awkward_bucket, "odd/") == expected

    later = FastPageFetcher(client)
    assert later.sends_directly(awkward_bucket)  # before any request of its own
    assert listed_with(later, awkward_bucket, "odd/") == expected
    assert not FastPageFetcher(s3_server.client()).sends_directly(awkward_bucket)

    calls = record_list_calls(client)  # a hook of someone else's: it must see every request
    hooked = FastPageFetcher(client)
    assert listed_with(hooked, awkward_bucket, "odd/") == expected
    assert not hooked.sends_directly(awkward_bucket)
    assert len(calls) == -(-len(expected) // 5)


def test_a_kept_connection_the_server_closed_is_replaced_not_reported_as_a_failure(
    s3_server: S3TestServer,
) -> None:
    """Behind a proxy closing every connection after its answer (no ``Connection: close``), each
    direct request after the first finds its kept connection closed: it is sent again once on a
    new one, and every answer is the listing (None would send it through botocore)."""
    bucket = s3_server.create_bucket("closing")
    put_objects(s3_server, bucket, {f"k/{index}": b"x" for index in range(3)})
    with FaultProxy(s3_server.endpoint_url, FaultPlan(close_after_answer=True)) as proxy:
        sent: list[Any] = []
        recorder = S3TestServer(proxy.endpoint_url).client()
        recorder.meta.events.register(
            "before-send.s3.ListObjectsV2", lambda request, **_: sent.append(request)
        )
        recorder.list_objects_v2(Bucket=bucket, Prefix="k/")
        lister = direct_lister_from(S3TestServer(proxy.endpoint_url).client(), sent[0], 2)
        assert lister is not None
        before = proxy.counts["list_requests"]

        bodies = [lister.get({"list-type": "2", "prefix": "k/"}) for _ in range(4)]

        assert proxy.counts["list_requests"] - before == 4
    assert all(body is not None and body.count(b"<Key>k/") == 3 for body in bodies)


LOSSY_IN_XML = ("\x01", "\x02", "\ufffe", "\ufffd")
"""What a plain (not URL-encoded) SeaweedFS listing can't carry: it writes U+FFFD for the first
three, so U+FFFD itself can't be told from them either."""
XML_AWKWARD_KEYS = [
    *(f"ctl/{index:02d}-plain" for index in range(8)),
    "ctl/08-soh\x01",  # a page of 3 ends here: its token "ctl/08-soh\ufffd" skips the next two
    "ctl/08-soh\x01x",
    "ctl/08-stx\x02",
    "ctl/09-carriage\rreturn",
    "ctl/10-line\nfeed",
    "ctl/11-tab\there",
    "ctl/12-amp&amp;lt",
    "ctl/13-reference&#x41;",
    *(f"ctl/{index:02d}-plain" for index in range(14, 19)),
    "ctl/20-noncharacter\ufffe",  # a page ends here: its token lists it again
    "ctl/21-replacement\ufffd",
    *(f"ctl/{index:02d}-plain" for index in range(22, 30)),
]


@pytest.mark.parametrize(("fetcher", "fan_out"), [("fast", 1), ("fast", 4), ("boto3", 1)])
def test_keys_xml_cannot_carry_are_listed_exactly_once_on_seaweedfs(
    weed: Any, monkeypatch: pytest.MonkeyPatch, fetcher: str, fan_out: int
) -> None:
    """SeaweedFS writes U+FFFD for ``\\x01``, ``\\x02`` and ``\\ufffe`` in plain listings, and in
    its continuation tokens (the page's last key) even URL-encoded: every key still comes back
    exactly once. Direct pages are asked for plain, and again URL-encoded only if they hold
    U+FFFD."""
    client = weed.client("admin")
    bucket = f"xml-awkward-{fetcher}-{fan_out}"
    client.create_bucket(Bucket=bucket)
    for key in XML_AWKWARD_KEYS:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode()[:7])
    expected = paginator_objects(client, bucket, "ctl/")  # one page: no token to follow
    keys = sorted(XML_AWKWARD_KEYS, key=str.encode)
    assert [key for key, *_ in expected] == keys
    queries: list[dict[str, str]] = []
    original_get = DirectLister.get

    def recording_get(self: DirectLister, query: dict[str, str]) -> bytes | None:
        queries.append(dict(query))
        return original_get(self, query)

    monkeypatch.setattr(DirectLister, "get", recording_get)

    listed = as_tuples(
        iter_s3_objects(client, bucket, "ctl/", fan_out=fan_out, page_size=3, fetcher=fetcher)
    )

    assert listed == expected
    if fetcher == "boto3":
        assert not queries
        return
    encoded = [query for query in queries if query.get("encoding-type") == "url"]
    plain = [query for query in queries if "encoding-type" not in query]
    assert len(plain) >= 9 and len(encoded) + len(plain) == len(queries)
    for again in encoded:  # right after the same request, plain
        before = queries[queries.index(again) - 1]
        assert before == {name: value for name, value in again.items() if name != "encoding-type"}
    if fan_out == 1:  # pages of 3 keys in order, the first through botocore (URL-encoded)
        pages = [keys[start : start + 3] for start in range(3, len(keys), 3)]
        lossy = [page for page in pages if any(c in key for key in page for c in LOSSY_IN_XML)]
        assert len(plain) == len(pages) and len(encoded) == len(lossy)
        # the page after "ctl/08-soh\x01" (whose token is "ctl/08-soh\ufffd") goes on after it
        after_lossy_token = plain[2]
        assert after_lossy_token["start-after"] == "ctl/08-soh\x01"
        assert "continuation-token" not in after_lossy_token


def test_numeric_character_references_of_a_plain_listing_are_read_as_characters() -> None:
    """AWS, asked without ``encoding-type``, writes a control character as ``&#x1;``."""
    body = list_result_xml(["KEY"]).replace("<Key>KEY<", "<Key>a&#x1;b&#13;c&amp;#x41;<")

    page = parse_list_objects_v2(body.encode())

    assert [row[0] for row in page.objects] == ["a\x01b\rc&#x41;"]


def test_a_slow_range_at_the_head_does_not_hold_back_the_ranges_after_it() -> None:
    """With 2 workers, while the first range waits, the next three still get listed one after
    another on the other worker; the pages come out in range order all the same."""
    later_started: list[str] = []
    all_later_started = threading.Event()
    waited: list[bool] = []

    def list_range(name: str) -> Iterator[list[Any]]:
        if name == "slow":
            waited.append(all_later_started.wait(timeout=10))  # False: they never started
        else:
            later_started.append(name)
            if len(later_started) == 3:
                all_later_started.set()
        yield [(name, 0, "", datetime(2026, 1, 1, tzinfo=UTC))]

    pages = fast_listing._iter_ranges_in_parallel(
        list_range, iter(["slow", "b", "c", "d"]), workers=2, lookahead_pages=4
    )

    assert [page[0][0] for page in pages] == ["slow", "b", "c", "d"]
    assert waited == [True] and later_started == ["b", "c", "d"]
