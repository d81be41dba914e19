"""HTTP protocol details: JSON headers, errors after the response started (trailers), request
body encodings. Mostly through the real client; raw requests where the client cannot be made to
send something. Raw-request tests are local-only."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import zlib

import pytest
import yt.wrapper as yt
import yt.yson as yson

from .conftest import LOCAL_ONLY_REASON, YtEnv


def test_json_header_and_structured_format(yt_env: YtEnv) -> None:
    client = yt_env.new_client(
        {"proxy": {"header_format": "json"}, "structured_data_format": "json"}
    )
    node = yt_env.path("json_headers")
    client.create("map_node", node)
    client.set(node + "/@note", {"text": "ünïcode", "n": 3})
    assert client.get(node + "/@note") == {"text": "ünïcode", "n": 3}
    table = yt_env.path("json_headers_table")
    client.write_table(table, [{"a": "x"}, {"a": "y"}], format=yt.JsonFormat())
    params: dict = {}
    rows = list(
        client.read_table(table + "[#1:]", format=yt.JsonFormat(), response_parameters=params)
    )
    assert rows == [{"a": "y"}]
    assert params["start_row_index"] == 1


def test_error_after_the_stream_started_reaches_the_client(yt_env: YtEnv) -> None:
    """DSV cannot carry a list: the read fails on that row, after earlier rows were sent."""
    client = yt_env.client
    table = yt_env.path("mixed")
    rows = [{"value": "scalar " * 20} for _ in range(5_000)] + [{"value": [1, 2, 3]}]
    client.write_table(table, rows)
    received = 0
    with pytest.raises(yt.YtResponseError) as error:
        for _ in client.read_table(table, format=yt.DsvFormat()):
            received += 1
    assert received < len(rows) - 1
    assert "value" in str(error.value)


def _raw_write_request(
    env: YtEnv, table: str, body: bytes, encoding: str
) -> urllib.request.Request:
    params = {"path": table, "input_format": "json"}
    return urllib.request.Request(
        f"{env.proxy_url}/api/v4/write_table",
        data=body,
        method="PUT",
        headers={
            "X-YT-Header-Format": "json",
            "X-YT-Parameters": json.dumps(params),
            "Content-Encoding": encoding,
        },
    )


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", zlib.compress),  # what yt.wrapper sends as "gzip": a zlib stream
        ("gzip", gzip.compress),  # a real gzip stream
        ("deflate", zlib.compress),
        ("identity", lambda data: data),
    ],
    ids=["gzip-zlib", "gzip-gzip", "deflate", "identity"],
)
def test_request_body_encodings(yt_env: YtEnv, encoding: str, compress: object) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    table = yt_env.path(f"encoded_{encoding}")
    yt_env.client.create("table", table)
    body = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(1000))
    request = _raw_write_request(yt_env, table, compress(body), encoding)  # type: ignore[operator]
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert [row["n"] for row in yt_env.client.read_table(table)] == list(range(1000))


def test_unsupported_encoding_is_named(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    table = yt_env.path("brotli")
    yt_env.client.create("table", table)
    for encoding in ("br", "z-lz4"):
        request = _raw_write_request(yt_env, table, b"\x00\x01\x02", encoding)
        try:
            import brotli  # type: ignore[import-not-found]  # noqa: F401

            if encoding == "br":
                continue
        except ImportError:
            pass
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=30)
        assert error.value.code == 400
        assert repr(encoding) in json.loads(error.value.headers["X-YT-Error"])["message"]


def test_parameters_in_query_and_body(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    node = yt_env.path("raw")
    create = urllib.request.Request(
        f"{yt_env.proxy_url}/api/v4/create",
        data=yson.dumps({"type": "map_node", "path": node}, yson_format="text"),
        method="POST",
        headers={
            "X-YT-Header-Format": "<format=text>yson",
            "Content-Type": "application/x-yt-yson-text",
        },
    )
    with urllib.request.urlopen(create, timeout=10) as response:
        assert json.loads(response.read())["node_id"]
    query = f"{yt_env.proxy_url}/api/v4/exists?path={node}&output_format=json"
    with urllib.request.urlopen(query, timeout=10) as response:
        assert json.loads(response.read()) == {"value": True}


def test_unknown_http_path(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{yt_env.proxy_url}/no/such/page", timeout=10)
    assert error.value.code == 404
    assert "/no/such/page" in json.loads(error.value.headers["X-YT-Error"])["message"]
