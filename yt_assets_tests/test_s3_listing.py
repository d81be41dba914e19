"""yt_assets.s3.listing against moto's S3 server and a canned real HTTP server."""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from yt_assets import list_s3_files, save_s3_paths_to_table
from yt_assets.s3.background import iter_in_background
from yt_assets.s3.errors import S3ListingError
from yt_assets.s3.listing import (
    ListingProgress,
    iter_s3_objects,
    key_matches_extension,
    normalize_extension,
)
from yt_assets.s3.pages import S3Object
from yt_assets.yt.schemas import LISTING_COLUMNS, PATHS_TABLE_COLUMNS, listing_row, yt_schema
from yt_assets.yt.tables import (
    PUBLICATION_TRANSACTION_SLEEP_MS,
    listing_yson_blocks,
    publish_rows,
)
from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.s3_fake_http import canned_s3_server, error_xml, list_page_xml, query_of


def count_list_requests(client: Any) -> list[dict[str, Any]]:
    """Record the parameters of every ListObjectsV2 call the client makes (botocore event hook)."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    return calls


def keys_of(objects: Iterable[S3Object]) -> list[str]:
    return [obj.key for obj in objects]


BIG_BUCKET_BODIES = {
    f"data/{index:05d}.{'json' if index % 3 == 0 else 'txt'}": b"x" * (index % 97)
    for index in range(2500)
}


@pytest.fixture(scope="module")
def big_bucket(s3_server: S3TestServer) -> str:
    """2,500 objects under ``data/`` (every third one ``.json``), shared read-only by tests."""
    bucket = s3_server.create_bucket("big")
    put_objects(s3_server, bucket, BIG_BUCKET_BODIES)
    return bucket


def test_lists_2500_keys_over_several_pages_with_exact_sizes_and_etags(
    s3_server: S3TestServer, big_bucket: str
) -> None:
    client = s3_server.client()
    calls = count_list_requests(client)
    progress: list[ListingProgress] = []

    objects = list(
        iter_s3_objects(
            client, big_bucket, "data/", on_progress=progress.append, progress_every_pages=1
        )
    )

    bodies = BIG_BUCKET_BODIES
    assert keys_of(objects) == sorted(bodies)
    assert [obj.size for obj in objects] == [len(bodies[obj.key]) for obj in objects]
    assert [obj.etag for obj in objects] == [
        hashlib.md5(bodies[obj.key]).hexdigest() for obj in objects
    ]
    assert all(obj.last_modified.tzinfo is UTC for obj in objects)
    assert len(calls) == 3
    assert [p.keys_listed for p in progress] == [1000, 2000, 2500, 2500]
    assert progress[-1].finished and progress[-1].keys_matched == 2500
    assert not any(p.finished for p in progress[:-1])


def test_unusual_keys_come_back_exact(s3_server: S3TestServer, s3_bucket: str) -> None:
    keys = [
        "odd/with space.txt",
        "odd/plus+sign.txt",
        "odd/percent%20literal.txt",
        "odd/percent%2Bplus",
        "odd/100%",
        "odd/unicodé/ключ/日本語.json",
        "odd/emoji-😀.txt",
        "odd/a//double-slash",
        "odd/amp&lt;<>'\"",
        "odd/question?hash#",
        "odd/tilde~ and trailing space ",
        "odd/tab\there",
    ]
    put_objects(s3_server, s3_bucket, {key: b"1" for key in keys})

    listed = list_s3_files(s3_server.client(), s3_bucket, "odd/")

    assert listed == sorted(keys, key=lambda key: key.encode())


@pytest.mark.parametrize("extension", [".json", "json", "JSON", ".Json"])
def test_extension_accepts_dot_or_not_and_any_case(
    s3_server: S3TestServer, s3_bucket: str, extension: str
) -> None:
    keys = ["a.json", "b.JSON", "c.notjson", "d.jsonl", "json", "e.json.gz", "f/x.json", "g.json/"]
    put_objects(s3_server, s3_bucket, {key: b"{}" for key in keys})

    listed = list_s3_files(s3_server.client(), s3_bucket, "", extension=extension)

    assert listed == ["a.json", "b.JSON", "f/x.json"]


def test_multi_part_extension(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(s3_server, s3_bucket, {"a.tar.gz": b"", "b.gz": b"", "c.TAR.GZ": b""})

    assert list_s3_files(s3_server.client(), s3_bucket, "", extension="tar.gz") == [
        "a.tar.gz",
        "c.TAR.GZ",
    ]


def test_extension_rules_as_pure_functions() -> None:
    assert normalize_extension(None) is None
    assert normalize_extension("") is None
    assert normalize_extension(".JSON") == "json"
    assert key_matches_extension("x/Y.Json", "json")
    assert not key_matches_extension("foo.notjson", "json")
    with pytest.raises(ValueError, match="extension"):
        normalize_extension(".")


def test_folder_markers_are_skipped(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(
        s3_server, s3_bucket, {"dir/": b"", "dir/sub/": b"", "dir/sub/file.txt": b"abc", "top": b""}
    )

    assert list_s3_files(s3_server.client(), s3_bucket, "") == ["dir/sub/file.txt", "top"]


def test_max_files_zero_returns_nothing_without_a_request(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"a": b"", "b": b""})
    client = s3_server.client()
    calls = count_list_requests(client)

    assert list_s3_files(client, s3_bucket, "", max_files=0) == []
    assert calls == []


@pytest.mark.parametrize("max_files", [-1, -100])
def test_negative_max_files_raises_at_call_time(max_files: int) -> None:
    with pytest.raises(ValueError, match="max_files"):
        iter_s3_objects(object(), "bucket", "", max_files=max_files)


def test_max_files_stops_early_and_asks_only_for_what_it_needs(
    s3_server: S3TestServer, big_bucket: str
) -> None:
    client = s3_server.client()
    calls = count_list_requests(client)
    all_keys = sorted(BIG_BUCKET_BODIES)

    assert list_s3_files(client, big_bucket, "data/", max_files=5) == all_keys[:5]
    assert [call["MaxKeys"] for call in calls] == [5]

    calls.clear()
    assert list_s3_files(client, big_bucket, "data/", max_files=1200) == all_keys[:1200]
    assert [call["MaxKeys"] for call in calls] == [1000, 200]


def test_max_files_counts_matching_keys_only(s3_server: S3TestServer, big_bucket: str) -> None:
    client = s3_server.client()
    calls = count_list_requests(client)

    keys = list_s3_files(client, big_bucket, "data/", extension="json", max_files=500)

    assert keys == sorted(key for key in BIG_BUCKET_BODIES if key.endswith(".json"))[:500]
    assert [call["MaxKeys"] for call in calls] == [1000, 1000]


def test_missing_bucket_raises_error_naming_it_and_its_code(s3_server: S3TestServer) -> None:
    with pytest.raises(S3ListingError) as caught:
        list_s3_files(s3_server.client(), "no-such-bucket-here", "raw/")

    error = caught.value
    assert (error.bucket, error.prefix, error.code) == (
        "no-such-bucket-here",
        "raw/",
        "NoSuchBucket",
    )
    assert "no-such-bucket-here" in str(error) and "NoSuchBucket" in str(error)
    assert s3_server.secret_key not in str(error) and s3_server.access_key not in str(error)


def test_access_denied_raises_error_naming_bucket_without_secrets() -> None:
    def deny(_request_number: int, _path: str) -> tuple[int, str]:
        return 403, error_xml("AccessDenied", "Access Denied")

    with canned_s3_server(deny) as server:
        client = server.client(access_key="AKIDSECRETLOOKING", secret_key="very-secret-value")
        with pytest.raises(S3ListingError) as caught:
            list(iter_s3_objects(client, "private-bucket", "x/"))

    message = str(caught.value)
    assert caught.value.code == "AccessDenied"
    assert "private-bucket" in message and "AccessDenied" in message and "403" in message
    assert "very-secret-value" not in message and "AKIDSECRETLOOKING" not in message


def test_truncated_page_without_continuation_token_raises_instead_of_looping() -> None:
    def truncated_page(_request_number: int, _path: str) -> tuple[int, str]:
        return 200, list_page_xml(["a", "b"], truncated=True, next_token=None)

    with canned_s3_server(truncated_page) as server:
        seen: list[str] = []
        with pytest.raises(S3ListingError) as caught:
            seen.extend(obj.key for obj in iter_s3_objects(server.client(), "bucket", ""))

    assert caught.value.code == "TruncatedWithoutContinuationToken"
    assert seen == ["a", "b"]
    assert len(server.requests) == 1


def test_repeated_continuation_token_raises_instead_of_looping() -> None:
    def same_token(request_number: int, _path: str) -> tuple[int, str]:
        return 200, list_page_xml([f"k{request_number}"], truncated=True, next_token="tok")

    with canned_s3_server(same_token) as server, pytest.raises(S3ListingError) as caught:
        list(iter_s3_objects(server.client(), "bucket", ""))

    assert caught.value.code == "RepeatedContinuationToken"
    assert len(server.requests) == 2


def test_a_token_that_lost_characters_is_not_followed_the_listing_goes_on_after_the_last_key() -> (
    None
):
    def lossy_token(request_number: int, _path: str) -> tuple[int, str]:
        if request_number == 1:
            # as SeaweedFS answers when the last key is "b\x01": the token is that key, in XML
            return 200, list_page_xml(["a", "b"], truncated=True, next_token="b\ufffd")
        if request_number == 2:
            return 200, list_page_xml(["b0", "b1"], truncated=True, next_token="tok-3")
        return 200, list_page_xml(["c"], truncated=False)

    with canned_s3_server(lossy_token) as server:
        keys = [obj.key for obj in iter_s3_objects(server.client(), "bucket", "", fetcher="boto3")]

    assert keys == ["a", "b", "b0", "b1", "c"]
    queries = [query_of(path) for path in server.requests]
    assert "continuation-token" not in queries[1] and queries[1]["start-after"] == "b"
    assert queries[2]["continuation-token"] == "tok-3"


def test_a_token_that_lost_characters_after_a_page_without_keys_raises() -> None:
    def keyless(request_number: int, _path: str) -> tuple[int, str]:
        return 200, list_page_xml([], truncated=True, next_token="x\ufffd")

    with canned_s3_server(keyless) as server, pytest.raises(S3ListingError) as caught:
        list(iter_s3_objects(server.client(), "bucket", "raw/", fetcher="boto3"))

    assert caught.value.code == "LossyContinuationToken"
    assert "bucket" in str(caught.value) and len(server.requests) == 1


def test_progress_is_logged(
    s3_server: S3TestServer, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_objects(s3_server, s3_bucket, {f"k{index}": b"" for index in range(10)})
    logger = logging.getLogger("test_s3_listing.progress")

    with caplog.at_level(logging.INFO, logger=logger.name):
        list_s3_files(s3_server.client(), s3_bucket, "", logger=logger)

    messages = [record.getMessage() for record in caplog.records]
    assert any("10 keys listed" in message and "keys/s" in message for message in messages)
    assert messages[-1] == "Found 10 files"


@pytest.mark.parametrize(
    ("extension", "max_files", "listed", "matched", "filtered_out"),
    [
        # stops at p/d.json: p/e.txt, p/f/ and p/g.json are never looked at
        ("json", 2, 6, 2, ["p/b.txt"]),
        ("json", 5, 5, 3, ["p/b.txt", "p/e.txt"]),
        # without a filter, pages ask for no more keys than still wanted: 3, then 1
        (None, 3, 3, 3, []),
        (None, None, 5, 5, []),
    ],
)
def test_progress_counts_only_the_keys_up_to_where_max_files_stops(
    s3_server: S3TestServer,
    s3_bucket: str,
    extension: str | None,
    max_files: int | None,
    listed: int,
    matched: int,
    filtered_out: list[str],
) -> None:
    """Within one page: the folder markers and filtered keys past the max_files-th match are
    not counted, as when the keys are walked one by one and the walk stops there."""
    keys = ["p/a.json", "p/b.txt", "p/c/", "p/d.json", "p/e.txt", "p/f/", "p/g.json"]
    put_objects(s3_server, s3_bucket, dict.fromkeys(keys, b""))
    progress: list[ListingProgress] = []

    objects = iter_s3_objects(
        s3_server.client(),
        s3_bucket,
        "p/",
        extension=extension,
        max_files=max_files,
        on_progress=progress.append,
    )
    yielded = [obj.key for obj in objects]

    assert len(yielded) == matched
    final = progress[-1]
    assert final.finished
    assert (final.keys_listed, final.keys_matched) == (listed, matched)
    assert list(final.filtered_out_examples) == filtered_out[:3]
    assert final.keys_filtered_out == len(filtered_out)


def test_accepts_dagster_aws_s3_resource(s3_server: S3TestServer, s3_bucket: str) -> None:
    dagster_aws_s3 = pytest.importorskip("dagster_aws.s3")
    put_objects(s3_server, s3_bucket, {"a.json": b"{}", "b.txt": b""})
    resource = dagster_aws_s3.S3Resource(
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )

    assert list_s3_files(resource, s3_bucket, "", extension="json") == ["a.json"]


@pytest.fixture(scope="module")
def yt_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A client of a local YT server (in this process); skips while the local YT can't import."""
    local_yt_module = pytest.importorskip("yt_assets.local_yt")
    server = local_yt_module.LocalYT(root=tmp_path_factory.mktemp("yt"), in_process=True)
    try:
        server.start()
    except ImportError as error:
        pytest.skip(f"the local YT server is not ready yet: {error}")
    try:
        yield server.client()
    finally:
        server.stop()


def read_paths_table(yt_client: Any, table: str) -> list[dict[str, Any]]:
    return [dict(row) for row in yt_client.read_table(table)]


def test_save_s3_paths_streams_a_listing_into_a_strict_table(
    yt_client: Any, s3_server: S3TestServer, big_bucket: str
) -> None:
    table = f"//tmp/s3_listing_{uuid.uuid4().hex}/deep/dir/paths"
    objects = iter_s3_objects(s3_server.client(), big_bucket, "data/", extension="json")

    written = save_s3_paths_to_table(yt_client, big_bucket, objects, table)

    expected = sorted(key for key in BIG_BUCKET_BODIES if key.endswith(".json"))
    assert written == len(expected)
    assert read_paths_table(yt_client, table) == [
        {"bucket": big_bucket, "path": key} for key in expected
    ]
    schema = yt_client.get(f"{table}/@schema")
    assert [(c["name"], c["type"], c["required"]) for c in schema] == [
        ("bucket", "string", True),
        ("path", "string", True),
    ]
    assert schema.attributes["strict"] == True  # noqa: E712 (a YsonBoolean)
    assert yt_client.list(table.rsplit("/", 1)[0]) == ["paths"]


def test_save_s3_paths_replaces_the_table_or_leaves_it_untouched(yt_client: Any) -> None:
    directory = f"//tmp/s3_listing_{uuid.uuid4().hex}"
    table = f"{directory}/paths"
    save_s3_paths_to_table(yt_client, "b", ["old/1", "old/2"], table)

    assert save_s3_paths_to_table(yt_client, "b", iter(["new/1"]), table) == 1
    assert read_paths_table(yt_client, table) == [{"bucket": "b", "path": "new/1"}]

    def listing_that_breaks() -> Iterator[str]:
        yield "half/1"
        raise RuntimeError("listing broke")

    with pytest.raises(RuntimeError, match="listing broke"):
        save_s3_paths_to_table(yt_client, "b", listing_that_breaks(), table)
    assert read_paths_table(yt_client, table) == [{"bucket": "b", "path": "new/1"}]
    assert yt_client.list(directory) == ["paths"]


def test_save_s3_paths_rejects_what_is_not_a_key(yt_client: Any) -> None:
    table = f"//tmp/s3_listing_{uuid.uuid4().hex}/paths"
    with pytest.raises(TypeError, match="paths must be"):
        save_s3_paths_to_table(yt_client, "b", ["a", 3], table)  # type: ignore[list-item]
    assert not yt_client.exists(table)


def test_save_s3_paths_writes_in_bounded_chunks_and_restores_the_client(yt_client: Any) -> None:
    table = f"//tmp/s3_listing_{uuid.uuid4().hex}/paths"
    config = yt_client.config
    write_retries = config["write_retries"]
    previous = write_retries["chunk_size"], config["transaction_sleep_period"]
    seen: list[tuple[int | None, int]] = []

    def paths() -> Iterator[str]:
        for index in range(3):
            # read while write_table runs
            seen.append((write_retries["chunk_size"], config["transaction_sleep_period"]))
            yield f"k{index}"

    try:
        write_retries["chunk_size"] = None  # yt.wrapper's default: 128 MB
        config["transaction_sleep_period"] = 100  # yt.wrapper's default
        assert (
            save_s3_paths_to_table(yt_client, "b", paths(), table, write_chunk_bytes=1 << 20) == 3
        )
        assert seen == [(1 << 20, PUBLICATION_TRANSACTION_SLEEP_MS)] * 3
        assert write_retries["chunk_size"] is None
        assert config["transaction_sleep_period"] == 100
        assert yt_client.get(f"{table}/@row_count") == 3
    finally:
        write_retries["chunk_size"], config["transaction_sleep_period"] = previous


AWKWARD_TABLE_KEYS = [
    "a",
    'quote"and\\backslash',
    "tab\there",
    "new\nline",
    "ctrl\x01\x7f",
    "unicodé/ключ/日本語/😀",
    "a//b",
    "odd/./c.json",
    "semi;colon=equals{}[]<>#%",
    " leading and trailing ",
    "percent %s %d %% %",
    # Lengths around the binary YSON string's one-byte length (63 bytes) and past 1,024 bytes
    # (S3's limit; save_s3_paths_to_table takes any path).
    "k" * 63,
    "k" * 64,
    "é" * 40,
    "x" * 1024,
    "long/" + "y" * 3000,
]


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 4096], ids=["one-chunk", "many-chunks"])
def test_save_s3_paths_writes_the_same_table_as_writing_row_dicts(
    yt_client: Any, chunk_bytes: int
) -> None:
    """Our YSON blocks and yt.wrapper's own row serialisation give identical tables: the
    same rows byte for byte (awkward keys included), order, schema; over several write chunks
    (each block whole: a chunk never cuts a row)."""
    directory = f"//tmp/s3_listing_{uuid.uuid4().hex}"
    keys = AWKWARD_TABLE_KEYS + [f"many/{index:05d}" for index in range(2500)]

    written = save_s3_paths_to_table(
        yt_client, "bucket-é", iter(keys), f"{directory}/ours", write_chunk_bytes=chunk_bytes
    )
    publish_rows(
        yt_client,
        f"{directory}/dicts",
        ({"bucket": "bucket-é", "path": key} for key in keys),
        yt_schema(PATHS_TABLE_COLUMNS),
    )

    ours = read_paths_table(yt_client, f"{directory}/ours")
    assert written == len(keys) == len(ours)
    assert ours == read_paths_table(yt_client, f"{directory}/dicts")
    assert [row["path"] for row in ours] == keys
    assert yt_client.get(f"{directory}/ours/@schema") == yt_client.get(f"{directory}/dicts/@schema")


class TextRows:
    """Listing rows as :class:`~yt_assets.yt.tables.YsonRows` (what the listing asset returns)."""

    def __init__(self, bucket: str, objects: list[S3Object]) -> None:
        self.bucket, self.objects = bucket, objects

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (listing_row(self.bucket, obj) for obj in self.objects)

    def yson_blocks(self) -> Iterator[bytes]:
        return listing_yson_blocks(self.bucket, self.objects)


def test_listing_rows_as_yson_blocks_make_the_same_table_as_row_dicts(yt_client: Any) -> None:
    """The listing asset's publication (YSON blocks) and yt.wrapper's serialisation of the
    row dicts give identical tables: rows (awkward keys and ETags, sizes past 2**32, times with
    and without microseconds), order, schema; over several blocks."""
    directory = f"//tmp/s3_listing_{uuid.uuid4().hex}"
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(1999, 12, 31, tzinfo=UTC),
    ]
    objects = [
        S3Object(key, index * 7_000_000_011, f'e"\\{index}\t', moments[index % 2])
        for index, key in enumerate(
            sorted(AWKWARD_TABLE_KEYS + [f"many/{index:05d}" for index in range(2500)])
        )
    ]
    schema = yt_schema(LISTING_COLUMNS)

    publish_rows(yt_client, f"{directory}/text", TextRows("bucket-é", objects), schema)
    publish_rows(yt_client, f"{directory}/dicts", list(TextRows("bucket-é", objects)), schema)

    text = read_paths_table(yt_client, f"{directory}/text")
    assert text == read_paths_table(yt_client, f"{directory}/dicts")
    assert [row["path"] for row in text] == [obj.key for obj in objects]
    assert yt_client.get(f"{directory}/text/@schema") == yt_client.get(f"{directory}/dicts/@schema")


def test_a_background_producer_stops_and_is_closed_when_the_consumer_stops() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.set()

    items = iter_in_background(endless(), max_ahead=3, name="test-producer")
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # type: ignore[attr-defined]

    assert closed.is_set()  # closed in its own thread, before close() returned
    assert not [thread for thread in threading.enumerate() if thread.name == "test-producer"]


def test_a_background_producers_error_comes_after_its_items() -> None:
    def breaking() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("producer broke")

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="producer broke"):
        seen.extend(iter_in_background(breaking(), max_ahead=1))
    assert seen == [1, 2]
