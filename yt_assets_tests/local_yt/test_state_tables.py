"""Tables in the local YT state layer: schemas enforced on write, appends, ranges, sorting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yt.type_info as ti
import yt.yson
from yt.wrapper.schema import TableSchema

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import (
    GenericError,
    IncompatibleKeyColumns,
    SchemaViolation,
    TableSortOrderViolation,
    UniqueKeyViolation,
)
from yt_assets.local_yt.interfaces import TableStore

STRICT_SCHEMA = [
    {"name": "id", "type_v3": "int64"},
    {"name": "name", "type_v3": {"type_name": "optional", "item": "string"}},
    {"name": "score", "type": "double", "required": False},
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    instance = Cluster(tmp_path / "root")
    yield instance
    instance.close()


def rows_of(cluster: Cluster, path: str, **kwargs: object) -> list[dict]:
    return list(cluster.read_table(path, **kwargs)[1])  # type: ignore[arg-type]


def test_schema_round_trips_through_the_clients_table_schema(cluster: Cluster) -> None:
    schema = (
        TableSchema(strict=True, unique_keys=False)
        .add_column("key", ti.String, sort_order="ascending")
        .add_column("value", ti.Optional[ti.Int64])
        .add_column("tags", ti.List[ti.String])
    )
    cluster.create("table", "//tmp/t", attributes={"schema": schema})
    returned = cluster.get("//tmp/t/@schema")
    assert returned.attributes == {"strict": True, "unique_keys": False}
    assert TableSchema.from_yson_type(returned) == schema
    key_column = returned[0]
    assert key_column["type"] == "string" and key_column["required"] is True
    assert cluster.get("//tmp/t/@sorted") is True
    assert cluster.get("//tmp/t/@sorted_by") == ["key"]
    assert cluster.get("//tmp/t/@schema_mode") == "strong"


def test_bad_type_is_a_schema_violation_naming_column_and_table(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t", attributes={"schema": STRICT_SCHEMA})
    with pytest.raises(SchemaViolation) as error:
        cluster.write_table("//tmp/t", [{"id": 1}, {"id": "two"}])
    assert error.value.code == 307
    assert '"id"' in error.value.message and "//tmp/t" in error.value.message
    with pytest.raises(SchemaViolation):
        cluster.write_table("//tmp/t", [{"id": 1, "score": 1}])  # int64 into double
    with pytest.raises(SchemaViolation):
        cluster.write_table("//tmp/t", [{"id": True}])  # boolean into int64
    assert rows_of(cluster, "//tmp/t") == []


def test_missing_required_and_unknown_columns(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t", attributes={"schema": STRICT_SCHEMA})
    with pytest.raises(SchemaViolation) as missing:
        cluster.write_table("//tmp/t", [{"name": "x"}])
    assert 'Required column "id"' in missing.value.message
    with pytest.raises(SchemaViolation) as null:
        cluster.write_table("//tmp/t", [{"id": None}])
    assert 'Required column "id" cannot have "null" value' in null.value.message
    with pytest.raises(SchemaViolation) as unknown:
        cluster.write_table("//tmp/t", [{"id": 1, "extra": 2}])
    assert 'Unknown column "extra" in strict schema' in unknown.value.message
    assert "//tmp/t" in unknown.value.message


def test_non_strict_schema_accepts_extra_columns(cluster: Cluster) -> None:
    schema = yt.yson.to_yson_type([{"name": "id", "type": "int64"}], attributes={"strict": False})
    cluster.create("table", "//tmp/t", attributes={"schema": schema})
    cluster.write_table("//tmp/t", [{"id": 1, "extra": "x"}])
    assert rows_of(cluster, "//tmp/t") == [{"id": 1, "extra": "x"}]
    with pytest.raises(SchemaViolation):
        cluster.write_table("//tmp/t", [{"id": "not an int"}])


def test_all_simple_types(cluster: Cluster) -> None:
    types = {
        "i8": ("int8", 127, 128),
        "i16": ("int16", -(2**15), 2**15),
        "i32": ("int32", 5, 2**31),
        "u8": ("uint8", 255, 256),
        "u16": ("uint16", 1, -1),
        "u32": ("uint32", 2**32 - 1, 2**32),
        "u64": ("uint64", yt.yson.YsonUint64(2**64 - 1), -1),
        "f": ("float", 1.5, "x"),
        "b": ("boolean", True, 1),
        "u": ("utf8", "ünï", b"\xff"),
        "y": ("any", {"nested": [1]}, None),
        "ts": ("timestamp", 1_700_000_000_000_000, -5),
        "d": ("date", 19000, 10**6),
        "dt": ("datetime", 1_700_000_000, -1),
    }
    schema = [{"name": name, "type": spec[0]} for name, spec in types.items()]
    cluster.create("table", "//tmp/t", attributes={"schema": schema})
    good = {name: spec[1] for name, spec in types.items()}
    cluster.write_table("//tmp/t", [good])
    assert rows_of(cluster, "//tmp/t") == [good]
    for name, spec in types.items():
        if spec[2] is None:
            continue
        with pytest.raises(SchemaViolation):
            cluster.write_table("//tmp/t", [{**good, name: spec[2]}])


def test_write_with_schema_attribute_replaces_schema_and_append_keeps_rows(
    cluster: Cluster,
) -> None:
    cluster.create("table", "//tmp/t")
    assert cluster.get("//tmp/t/@schema_mode") == "weak"
    cluster.write_table("//tmp/t", [{"anything": 1}])
    path = yt.yson.to_yson_type("//tmp/t", attributes={"schema": STRICT_SCHEMA})
    cluster.write_table(path, [{"id": 1}])
    assert cluster.get("//tmp/t/@schema")[0]["name"] == "id"
    cluster.write_table("<append=%true>//tmp/t", [{"id": 2, "name": "b"}])
    assert rows_of(cluster, "//tmp/t") == [{"id": 1}, {"id": 2, "name": "b"}]
    assert cluster.get("//tmp/t/@row_count") == 2
    assert cluster.get("//tmp/t/@chunk_count") == 2
    assert cluster.get("//tmp/t/@uncompressed_data_size") > 0
    with pytest.raises(GenericError):
        cluster.write_table(
            yt.yson.to_yson_type("//tmp/t", attributes={"append": True, "schema": STRICT_SCHEMA}),
            [{"id": 3}],
        )
    # Overwrite without a schema keeps a strong schema.
    cluster.write_table("//tmp/t", [{"id": 9}])
    assert rows_of(cluster, "//tmp/t") == [{"id": 9}]
    with pytest.raises(SchemaViolation):
        cluster.write_table("//tmp/t", [{"nope": 1}])


def test_row_ranges_columns_and_start_row_index(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", ({"i": i, "s": str(i)} for i in range(10)))
    cluster.write_table("<append=%true>//tmp/t", ({"i": i, "s": str(i)} for i in range(10, 20)))
    start, rows = cluster.read_table("//tmp/t[#8:#12]")
    assert start == 8
    assert [row["i"] for row in rows] == [8, 9, 10, 11]
    assert rows_of(cluster, "//tmp/t{i}[#18:]") == [{"i": 18}, {"i": 19}]
    assert [r["i"] for r in rows_of(cluster, "//tmp/t[#3]")] == [3]
    ranges = [
        {"lower_limit": {"row_index": 1}, "upper_limit": {"row_index": 3}},
        {"exact": {"row_index": 15}},
    ]
    path = yt.yson.to_yson_type("//tmp/t", attributes={"ranges": ranges})
    assert [row["i"] for row in rows_of(cluster, path)] == [1, 2, 15]
    assert cluster.row_count(path) == 3
    assert cluster.row_count("//tmp/t") == 20


def test_strings_round_trip_as_str_or_raw_bytes(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    row_with_bytes: dict = {b"k": b"\xff\xfe", "u": "ü", "b": b"ascii", "n": None}
    cluster.write_table("//tmp/t", [row_with_bytes])
    (row,) = rows_of(cluster, "//tmp/t")
    assert row["u"] == "ü" and row["b"] == "ascii" and row["n"] is None
    assert yt.yson.get_bytes(row["k"]) == b"\xff\xfe"


def test_sorted_writes_are_verified(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    sorted_path = yt.yson.to_yson_type("//tmp/t", attributes={"sorted_by": ["k"]})
    cluster.write_table(sorted_path, [{"k": 1, "v": "a"}, {"k": 2}, {"k": 2}])
    assert cluster.get("//tmp/t/@sorted_by") == ["k"]
    assert cluster.get("//tmp/t/@sorted") is True
    with pytest.raises(TableSortOrderViolation) as error:
        cluster.write_table(sorted_path, [{"k": 2}, {"k": 1}])
    assert error.value.code == 301
    cluster.write_table("<append=%true>//tmp/t", [{"k": 3}])
    with pytest.raises(TableSortOrderViolation):
        cluster.write_table("<append=%true>//tmp/t", [{"k": 0}])
    assert [row["k"] for row in rows_of(cluster, "//tmp/t")] == [1, 2, 2, 3]
    assert [row["k"] for row in rows_of(cluster, "//tmp/t[(2):(3)]")] == [2, 2]
    assert [row["k"] for row in rows_of(cluster, "//tmp/t[(3)]")] == [3]
    assert cluster.read_table("//tmp/t[(2):]")[0] == 1  # key limits resolve to row indexes
    assert cluster.row_count("//tmp/t[(2)]") == 2
    ranges = cluster.read_table_ranges("//tmp/t[(1),(3):]")
    assert [(start, [row["k"] for row in rows]) for start, rows in ranges] == [(0, [1]), (3, [3])]
    # An unsorted overwrite of a weak-schema table drops the sortedness.
    cluster.write_table("//tmp/t", [{"k": 5}, {"k": 4}])
    assert cluster.get("//tmp/t/@sorted") is False


def test_unique_keys_and_strict_sorted_by(cluster: Cluster) -> None:
    schema = yt.yson.to_yson_type(
        [
            {"name": "k", "type": "int64", "sort_order": "ascending"},
            {"name": "v", "type": "string"},
        ],
        attributes={"strict": True, "unique_keys": True},
    )
    cluster.create("table", "//tmp/u", attributes={"schema": schema})
    with pytest.raises(UniqueKeyViolation):
        cluster.write_table("//tmp/u", [{"k": 1}, {"k": 1}])
    cluster.create("table", "//tmp/s", attributes={"schema": STRICT_SCHEMA})
    with pytest.raises(IncompatibleKeyColumns):
        cluster.write_table(
            yt.yson.to_yson_type("//tmp/s", attributes={"sorted_by": ["nope"]}), [{"id": 1}]
        )


def test_concatenate(cluster: Cluster) -> None:
    for name, values in (("a", [1, 2]), ("b", [3]), ("dst", [0])):
        cluster.create("table", f"//tmp/{name}")
        cluster.write_table(f"//tmp/{name}", [{"v": v} for v in values])
    cluster.concatenate(["//tmp/a", "//tmp/b"], "<append=%true>//tmp/dst")
    assert [row["v"] for row in rows_of(cluster, "//tmp/dst")] == [0, 1, 2, 3]
    cluster.concatenate(["//tmp/b", "//tmp/a"], "//tmp/dst")
    assert [row["v"] for row in rows_of(cluster, "//tmp/dst")] == [3, 1, 2]
    assert cluster.get("//tmp/dst/@row_count") == 3
    cluster.create(
        "table", "//tmp/strict", attributes={"schema": [{"name": "v", "type": "string"}]}
    )
    with pytest.raises(SchemaViolation):
        cluster.concatenate(["//tmp/a"], "//tmp/strict")


def test_alter_schema_validates_existing_rows(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"id": 1}])
    with pytest.raises(SchemaViolation):
        cluster.set("//tmp/t/@schema", [{"name": "id", "type": "string"}])
    cluster.set("//tmp/t/@schema", [{"name": "id", "type": "int64"}])
    assert cluster.get("//tmp/t/@schema")[0]["type"] == "int64"


def test_cluster_is_a_table_store(cluster: Cluster) -> None:
    store: TableStore = cluster  # checked by mypy too
    cluster.create("table", "//tmp/in")
    cluster.create("file", "//tmp/f")
    cluster.write_file("//tmp/f", [b"script"])
    tx = store.start_transaction(None, "operation output")
    assert store.write_rows("//tmp/in", ({"v": v} for v in range(5)), tx) == 5
    assert store.row_count("//tmp/in") == 0
    store.commit_transaction(tx)
    assert store.row_count("//tmp/in[#1:#3]") == 2
    assert [row["v"] for row in store.read_rows("//tmp/in[#3:]")] == [3, 4]
    assert store.file_content_path("//tmp/f").read_bytes() == b"script"
    aborted = store.start_transaction(None, None)
    store.write_rows("<append=%true>//tmp/in", [{"v": 9}], aborted)
    store.abort_transaction(aborted)
    assert store.row_count("//tmp/in") == 5
