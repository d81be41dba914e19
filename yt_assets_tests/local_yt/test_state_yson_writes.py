"""YSON table writes kept as they came (``verbatim_writes``) against the row-by-row write path.

Each case writes one YSON body twice into fresh clusters: once as a request body
(``YsonStreamRows``: the bytes become the chunk, rows checked a batch at a time) and once as the rows
``YsonFormat.load_rows`` gives (parsed, validated and dumped one by one). The table read back,
its row count, sort attributes and the error (class and message) must be the same; a failed
write leaves the table's earlier rows. Bad rows sit past the first batch to check the batch
boundaries.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yt.yson

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import YtLocalError
from yt_assets.local_yt.formats import YsonStreamRows
from yt_assets.local_yt.operation_state import FilesInTurn
from yt_assets.local_yt.tables import make_batch_check, make_row_validator, normalize_schema
from yt_assets.local_yt.verbatim_writes import BATCH_ROWS, copy_yson_rows

TABLE = "//tmp/t"
EARLIER_ROWS = [{"k": "earlier", "n": 0}]


def _body(rows: list[Any], yson_format: str = "text") -> bytes:
    return yt.yson.dumps(rows, yson_type="list_fragment", yson_format=yson_format)


def _numbered(count: int, **override: Any) -> list[dict[str, Any]]:
    return [{"k": f"key-{index:06d}", "n": index, **override} for index in range(count)]


def _with(rows: list[dict[str, Any]], index: int, **values: Any) -> list[dict[str, Any]]:
    changed = [dict(row) for row in rows]
    changed[index].update(values)
    return changed


STRICT = [
    {"name": "k", "type": "string", "required": True},
    {"name": "n", "type": "int64"},
]
SORTED = [
    {"name": "k", "type": "string", "sort_order": "ascending"},
    {"name": "n", "type": "int64"},
]
UNIQUE = yt.yson.to_yson_type(SORTED, attributes={"unique_keys": True})
DESCENDING = [
    {"name": "k", "type": "string", "sort_order": "descending"},
    {"name": "n", "type": "int64"},
]
TYPED = [
    {"name": "i8", "type": "int8"},
    {"name": "u64", "type": "uint64"},
    {"name": "d", "type": "double"},
    {"name": "b", "type": "boolean"},
    {"name": "s", "type": "string"},
    {"name": "u", "type": "utf8"},
    {"name": "ts", "type": "timestamp"},
    {"name": "y", "type": "any"},
]
LIST_COLUMN = [
    {"name": "k", "type": "string"},
    {"name": "xs", "type_v3": {"type_name": "list", "item": "int64"}},
]

_MANY = 3 * BATCH_ROWS + 17
_TYPED_ROWS = [
    {
        "i8": index % 100 - 50,
        "u64": yt.yson.YsonUint64(2**64 - 1 - index),
        "d": index / 7,
        "b": index % 2 == 0,
        "s": bytes([index % 256, 0xFF]),
        "u": f"ü{index}",
        "ts": 1767225600000000 + index,
        "y": {"nested": [index, None, yt.yson.to_yson_type("v", attributes={"a": index})]},
    }
    for index in range(_MANY)
]

FAILS = True
CASES: dict[str, tuple[Any, bytes, bool]] = {
    "schemaless, mixed values": (
        None,
        _body([{"a": 1, "b": [1, {"c": b"\xff"}], "c": None, "d": yt.yson.YsonUint64(5)}] * _MANY),
        not FAILS,
    ),
    "strict, binary": (STRICT, _body(_numbered(_MANY), "binary"), not FAILS),
    "strict, pretty": (STRICT, _body(_numbered(30), "pretty"), not FAILS),
    "typed columns": (TYPED, _body(_TYPED_ROWS, "binary"), not FAILS),
    "typed columns, nulls": (TYPED, _body([{}] * _MANY), not FAILS),
    "int8 out of range in the third batch": (
        TYPED,
        _body([{"i8": 1}] * (2 * BATCH_ROWS + 5) + [{"i8": 128}]),
        FAILS,
    ),
    "negative uint64": (TYPED, _body([{"u64": 1}] * (BATCH_ROWS + 3) + [{"u64": -1}]), FAILS),
    "utf8 column holding other bytes": (
        TYPED,
        _body([{"u": "x"}] * BATCH_ROWS + [{"u": b"\xff"}]),
        FAILS,
    ),
    "wrong type in the second batch": (
        STRICT,
        _body(_with(_numbered(_MANY), BATCH_ROWS + 1, n="x")),
        FAILS,
    ),
    "null in a required column": (
        STRICT,
        _body(_with(_numbered(_MANY), BATCH_ROWS, k=None)),
        FAILS,
    ),
    "missing required column": (STRICT, _body([*_numbered(BATCH_ROWS), {"n": 1}]), FAILS),
    "unknown column of a strict schema": (
        STRICT,
        _body(_with(_numbered(_MANY), 2 * BATCH_ROWS - 1, extra=1)),
        FAILS,
    ),
    "unknown column of a non-strict schema": (
        yt.yson.to_yson_type(STRICT, attributes={"strict": False}),
        _body(_with(_numbered(_MANY), BATCH_ROWS + 7, extra=[1])),
        not FAILS,
    ),
    "column name not UTF-8": (None, _body([{"a": 1}] * BATCH_ROWS + [{b"\xff": 1}]), FAILS),
    "a row that is not a map": (STRICT, _body(_numbered(BATCH_ROWS + 2)) + b"1;", FAILS),
    "a bare entity": (STRICT, _body(_numbered(BATCH_ROWS + 2)) + b"#;", FAILS),
    "truncated body": (STRICT, _body(_numbered(BATCH_ROWS + 2)) + b'{"k"="x";"n"=', FAILS),
    "control rows": (
        STRICT,
        _body(_numbered(BATCH_ROWS)) + b"<table_index=0>#;" + _body(_numbered(5)),
        not FAILS,
    ),
    "rows with attributes": (
        None,
        _body([yt.yson.to_yson_type({"a": index}, attributes={"x": 1}) for index in range(5)])
        + _body([{"a": 7}] * BATCH_ROWS),
        not FAILS,
    ),
    "composite column": (
        LIST_COLUMN,
        _body([{"k": "a", "xs": [1, 2]}] * (BATCH_ROWS + 1)),
        not FAILS,
    ),
    "composite column, bad item": (
        LIST_COLUMN,
        _body([{"k": "a", "xs": [1]}] * BATCH_ROWS + [{"xs": ["x"]}]),
        FAILS,
    ),
    "sorted": (SORTED, _body(_numbered(_MANY)), not FAILS),
    "sorted, equal keys": (SORTED, _body(_numbered(_MANY, k="same")), not FAILS),
    "sorted, disorder at a batch boundary": (
        SORTED,
        _body(_with(_numbered(_MANY), BATCH_ROWS, k="key-000000")),
        FAILS,
    ),
    "sorted, disorder inside a batch": (
        SORTED,
        _body(_with(_numbered(_MANY), 10, k="zzz")),
        FAILS,
    ),
    "sorted, mixed key types": (
        [*SORTED[:1], {"name": "n", "type": "any"}],
        _body([{"k": None, "n": 1}] * BATCH_ROWS + [{"k": "a", "n": 1}, {"k": "a", "n": "x"}]),
        not FAILS,
    ),
    "sorted, nulls after strings": (
        [{"name": "k", "type": "any", "sort_order": "ascending"}],
        _body([{"k": "b"}] * BATCH_ROWS + [{"k": None}]),
        FAILS,
    ),
    "unique keys": (UNIQUE, _body(_numbered(_MANY)), not FAILS),
    "unique keys, duplicate at a batch boundary": (
        UNIQUE,
        _body(_with(_numbered(_MANY), BATCH_ROWS, k=f"key-{BATCH_ROWS - 1:06d}")),
        FAILS,
    ),
    "descending": (DESCENDING, _body(list(reversed(_numbered(_MANY)))), not FAILS),
    "descending, disorder": (DESCENDING, _body(_numbered(BATCH_ROWS + 2)), FAILS),
}


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    verbatim, by_row = Cluster(tmp_path / "verbatim"), Cluster(tmp_path / "by_row")
    yield verbatim, by_row
    verbatim.close()
    by_row.close()


def _takes_earlier_rows(schema: Any) -> bool:
    return schema is None or {"k", "n"} <= {column["name"] for column in schema}


def _outcome(cluster: Cluster, schema: Any, rows: Iterable[Any]) -> dict[str, Any]:
    cluster.create("table", TABLE, attributes={"schema": schema} if schema is not None else {})
    if _takes_earlier_rows(schema):
        cluster.write_table(TABLE, EARLIER_ROWS)
    error = None
    try:
        cluster.write_table(TABLE, rows)
    except YtLocalError as raised:
        error = (type(raised).__name__, str(raised).splitlines()[0])  # no parser timestamps
    return {
        "error": error,
        "rows": list(cluster.read_table(TABLE)[1]),
        "row_count": cluster.get(TABLE + "/@row_count"),
        "sorted": cluster.get(TABLE + "/@sorted"),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_a_yson_body_writes_what_the_row_path_writes(
    clusters: tuple[Cluster, Cluster], case: str
) -> None:
    schema, body, fails = CASES[case]
    verbatim, by_row = clusters
    kept = _outcome(verbatim, schema, YsonStreamRows(io.BytesIO(body)))
    # A generator of the same rows (not YsonStreamRows): parsed, checked and dumped one by one.
    expected = _outcome(by_row, schema, (row for row in YsonStreamRows(io.BytesIO(body))))
    assert kept == expected
    assert (kept["error"] is not None) == fails
    if fails:
        assert kept["rows"] == (EARLIER_ROWS if _takes_earlier_rows(schema) else [])


def test_a_truncated_body_is_a_format_error_and_keeps_the_table(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "root")
    try:
        cluster.create("table", TABLE, attributes={"schema": STRICT})
        cluster.write_table(TABLE, EARLIER_ROWS)
        body = _body(_numbered(BATCH_ROWS + 2)) + b'{"k"="x";"n"='
        with pytest.raises(Exception, match="Error parsing YSON rows"):
            cluster.write_table(TABLE, YsonStreamRows(io.BytesIO(body)))
        assert list(cluster.read_table(TABLE)[1]) == EARLIER_ROWS
    finally:
        cluster.close()


def test_a_plain_body_is_stored_as_it_came(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "root")
    try:
        body = _body(_numbered(_MANY))
        cluster.create("table", TABLE, attributes={"schema": STRICT})
        cluster.write_table(TABLE, YsonStreamRows(io.BytesIO(body)))
        assert cluster.get(TABLE + "/@uncompressed_data_size") == len(body)
        assert cluster.get(TABLE + "/@row_count") == _MANY
    finally:
        cluster.close()


def test_copy_yson_rows_copies_every_byte_and_says_when_the_copy_is_not_the_table() -> None:
    def copied(body: bytes) -> tuple[bytes, int, bool]:
        copy = io.BytesIO()
        schema = normalize_schema(STRICT)
        check_batch = make_batch_check(schema)
        assert check_batch is not None
        result = copy_yson_rows(
            io.BytesIO(body),
            copy,
            check_batch=check_batch,
            validate=make_row_validator(schema, table_path=TABLE),
            checker=None,
        )
        return copy.getvalue(), result.rows, result.exact

    plain = _body(_numbered(_MANY), "binary")
    assert copied(plain) == (plain, _MANY, True)
    with_control = _body(_numbered(3)) + b"<row_index=5>#;" + _body(_numbered(2))
    assert copied(with_control) == (with_control, 5, False)


@pytest.mark.parametrize("first_key", ["key-000000", "zzz"])
def test_an_appended_yson_body_is_checked_against_the_sorted_table(
    clusters: tuple[Cluster, Cluster], first_key: str
) -> None:
    body = _body([{"k": first_key, "n": 0}, *_numbered(BATCH_ROWS + 1, k="zzz")])
    outcomes = []
    for cluster, rows in zip(
        clusters,
        (YsonStreamRows(io.BytesIO(body)), (row for row in YsonStreamRows(io.BytesIO(body)))),
        strict=True,
    ):
        cluster.create("table", TABLE, attributes={"schema": SORTED})
        cluster.write_table(TABLE, [{"k": "m", "n": 1}])
        error = None
        try:
            cluster.write_table("<append=%true>" + TABLE, rows)
        except YtLocalError as raised:
            error = (type(raised).__name__, str(raised))
        outcomes.append((error, cluster.get(TABLE + "/@row_count")))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0][0] is not None) == (first_key < "m")


def test_job_output_files_in_turn_are_one_yson_body(
    clusters: tuple[Cluster, Cluster], tmp_path: Path
) -> None:
    parts = [_numbered(BATCH_ROWS + 3), [], _numbered(2, k="z")]
    paths = []
    for index, rows in enumerate(parts):
        path = tmp_path / f"routed_{index}"
        path.write_bytes(_body(rows, "binary"))
        paths.append(path)
    stream = FilesInTurn(paths)
    assert stream.read(0) == b""
    assert stream.read(7) == paths[0].read_bytes()[:7]
    assert (
        b"".join(iter(lambda: stream.read(1000), b""))
        == b"".join(path.read_bytes() for path in paths)[7:]
    )
    verbatim, by_row = clusters
    kept = _outcome(verbatim, STRICT, YsonStreamRows(FilesInTurn(paths)))
    expected = _outcome(by_row, STRICT, [row for rows in parts for row in rows])
    assert kept == expected
    assert kept["row_count"] == BATCH_ROWS + 5
