"""Static tables through the real ``yt.wrapper`` client: schemas, formats, ranges, parallelism."""

from __future__ import annotations

import pytest
import yt.type_info as ti
import yt.wrapper as yt
from yt.wrapper.schema import TableSchema

from .conftest import YtEnv


def _schema() -> TableSchema:
    return (
        TableSchema(strict=True)
        .add_column("id", ti.Int64)
        .add_column("name", ti.String)
        .add_column("score", ti.Optional[ti.Double])
    )


def test_schema_round_trip(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("schematic")
    schema = _schema()
    client.create("table", table, attributes={"schema": schema})
    stored = TableSchema.from_yson_type(client.get(table + "/@schema"))
    assert stored == schema
    rows = [{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": "b", "score": None}]
    client.write_table(table, rows)
    assert list(client.read_table(table)) == rows
    assert client.get(table + "/@row_count") == 2


def test_write_with_schema_in_path(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("via_path")
    schema = _schema()
    client.write_table(yt.TablePath(table, schema=schema), [{"id": 1, "name": "x", "score": 1.0}])
    assert TableSchema.from_yson_type(client.get(table + "/@schema")) == schema


@pytest.mark.parametrize(
    "bad_row",
    [
        {"id": "not an int", "name": "a", "score": None},
        {"id": 1, "name": "a", "score": None, "unknown_column": 1},
        {"name": "missing required id", "score": None},
    ],
)
def test_bad_rows_are_rejected(yt_env: YtEnv, bad_row: dict) -> None:
    client = yt_env.client
    table = yt_env.path("strict")
    client.create("table", table, attributes={"schema": _schema()})
    client.write_table(table, [{"id": 0, "name": "kept", "score": None}])
    with pytest.raises(yt.YtResponseError):
        client.write_table(
            yt.TablePath(table, append=True), [{"id": 1, "name": "ok", "score": None}, bad_row]
        )
    # The failed write left nothing behind.
    assert list(client.read_table(table)) == [{"id": 0, "name": "kept", "score": None}]


def test_append_and_overwrite(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("appended")
    client.write_table(table, [{"a": 1}])
    client.write_table(yt.TablePath(table, append=True), [{"a": 2}, {"a": 3}])
    assert [row["a"] for row in client.read_table(table)] == [1, 2, 3]
    client.write_table(table, [{"a": 9}])
    assert list(client.read_table(table)) == [{"a": 9}]


def test_read_ranges_and_columns(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("ranged")
    client.write_table(table, [{"i": i, "sq": i * i, "s": str(i)} for i in range(100)])
    assert [row["i"] for row in client.read_table(table + "[#10:#20]")] == list(range(10, 20))
    assert list(client.read_table(table + "{i,s}[#3:#5]")) == [
        {"i": 3, "s": "3"},
        {"i": 4, "s": "4"},
    ]
    path = yt.TablePath(table, start_index=95, columns=["sq"])
    assert list(client.read_table(path)) == [{"sq": i * i} for i in range(95, 100)]
    params: dict = {}
    list(client.read_table(table + "[#42:#44]", response_parameters=params))
    assert params["start_row_index"] == 42
    assert params["approximate_row_count"] == 2
    whole: dict = {}
    list(client.read_table(table, response_parameters=whole))
    assert whole == {"start_row_index": 0, "approximate_row_count": 100}


@pytest.mark.parametrize(
    "fmt",
    [
        yt.YsonFormat(),
        yt.YsonFormat(format="text"),
        yt.JsonFormat(),
        yt.JsonFormat(encode_utf8=False),
    ],
    ids=["yson-binary", "yson-text", "json", "json-no-encode-utf8"],
)
def test_format_round_trip(yt_env: YtEnv, fmt: yt.format.Format) -> None:
    client = yt_env.client
    table = yt_env.path("formatted")
    rows = [
        {"int": -5, "text": "héllo wörld", "float": 2.5, "flag": True, "list": [1, "x", None]},
        {"int": 7, "text": "tab\tand\nnewline", "float": -0.25, "flag": False, "list": []},
    ]
    client.write_table(table, rows, format=fmt)
    assert list(client.read_table(table, format=fmt)) == rows
    assert list(client.read_table(table)) == rows  # and in the default format


def test_dsv_round_trip(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("dsv")
    rows = [
        {"key": "a=b", "value": "tab\there", "escaped": "back\\slash\nnew"},
        {"key": "plain", "value": "", "escaped": "x"},
    ]
    client.write_table(table, rows, format=yt.DsvFormat())
    assert list(client.read_table(table, format=yt.DsvFormat())) == rows


def test_raw_binary_strings(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("binary")
    payload = bytes(range(256))
    client.write_table(table, [{b"blob": payload}], format=yt.YsonFormat(encoding=None))
    rows = list(client.read_table(table, format=yt.YsonFormat(encoding=None)))
    assert rows == [{b"blob": payload}]


def test_parallel_write_keeps_count_and_order(yt_env: YtEnv) -> None:
    client = yt_env.new_client(
        {
            "write_parallel": {
                "enable": True,
                "max_thread_count": 4,
                "unordered": False,
            },
            "write_retries": {"chunk_size": 256 * 1024},
        }
    )
    table = yt_env.path("parallel")
    count = 100_000
    if yt_env.server is not None:  # count concatenate requests (a rule that never fires)
        yt_env.server.set_faults([{"command": "concatenate", "probability": 0.0}])
    try:
        client.write_table(table, ({"n": n, "payload": f"row-{n}"} for n in range(count)))
    finally:
        if yt_env.server is not None:
            faults = yt_env.server.get_faults()
            yt_env.server.clear_faults()
    if yt_env.server is not None:
        assert faults[0]["seen"] >= 1, "the parallel writer did not concatenate"
    assert yt_env.client.get(table + "/@row_count") == count
    previous = -1
    for row in yt_env.client.read_table(table):
        assert row["n"] == previous + 1
        previous = row["n"]
    assert previous == count - 1


def test_generator_write_and_streamed_read(yt_env: YtEnv) -> None:
    client = yt_env.new_client({"write_retries": {"chunk_size": 64 * 1024}})
    table = yt_env.path("streamed")
    client.write_table(table, ({"n": n} for n in range(20_000)))
    total = sum(row["n"] for row in client.read_table(table))
    assert total == sum(range(20_000))


@pytest.mark.parametrize("yson_format", ["binary", "text"])
def test_a_bad_row_deep_in_a_yson_write_fails_it_and_keeps_the_table(
    yt_env: YtEnv, yson_format: str
) -> None:
    client = yt_env.client
    table = yt_env.path(f"deep_{yson_format}")
    client.create("table", table, attributes={"schema": _schema()})
    earlier = [{"id": 0, "name": "earlier", "score": None}]
    client.write_table(table, earlier)
    rows = [{"id": index, "name": f"n{index}", "score": index / 3} for index in range(5000)]
    bad = [*rows[:4000], {"id": "not an int", "name": "x", "score": None}, *rows[4000:]]
    fmt = yt.YsonFormat(format=yson_format)
    with pytest.raises(yt.YtResponseError, match="id"):
        client.write_table(table, bad, format=fmt)
    assert list(client.read_table(table)) == earlier
    client.write_table(table, rows, format=fmt)
    assert list(client.read_table(table)) == rows
    assert client.get(table + "/@row_count") == len(rows)
