"""Typed data as a cluster handles it: type_v3 composite columns (struct, list, optional, variant,
dict, tuple, tagged, decimal) validated on write and read back in YT's default YSON
representation, the ``skiff`` format of ``yt.wrapper``'s typed API (``write_table_structured``,
``read_table_structured``), and ``schemaful_dsv``. Through the unmodified client; runs against a
real cluster too."""

from __future__ import annotations

from typing import Any

import pytest
import yt.type_info as ti
import yt.wrapper as yt
import yt.yson as yson
from yt.wrapper.driver import make_request

from yt_assets.yt.shipping import shipping
from yt_assets_tests.fidelity_job_functions import Measurement, Place, Summarize, Summary

from .conftest import YtEnv


@yt.yt_dataclass
class Point:
    x: int
    label: str | None


@yt.yt_dataclass
class Shape:
    name: str
    points: list[Point]
    tags: dict[str, int]
    weight: float | None


def _create(env: YtEnv, name: str, schema: Any) -> str:
    path = env.path(name)
    env.client.create("table", path, attributes={"schema": schema})
    return path


def _column(name: str, type_v3: Any) -> dict[str, Any]:
    return {"name": name, "type_v3": type_v3}


STRUCT = {
    "type_name": "struct",
    "members": [
        {"name": "a", "type": "int64"},
        {"name": "b", "type": {"type_name": "optional", "item": "string"}},
    ],
}
VARIANT = {
    "type_name": "variant",
    "members": [{"name": "num", "type": "int64"}, {"name": "text", "type": "string"}],
}
TUPLE_VARIANT = {"type_name": "variant", "elements": [{"type": "int64"}, {"type": "string"}]}
DICT = {"type_name": "dict", "key": "string", "value": "int64"}
LIST = {"type_name": "list", "item": "int64"}
TAGGED = {"type_name": "tagged", "tag": "image/svg", "item": "string"}
DECIMAL = {"type_name": "decimal", "precision": 5, "scale": 2}
NESTED_OPTIONAL = {"type_name": "optional", "item": {"type_name": "optional", "item": "int64"}}


def test_composite_values_round_trip_in_the_default_yson_representation(yt_env: YtEnv) -> None:
    schema = [
        _column("s", STRUCT),
        _column("v", VARIANT),
        _column("tv", TUPLE_VARIANT),
        _column("d", DICT),
        _column("l", LIST),
        _column("t", TAGGED),
        _column("n", NESTED_OPTIONAL),
        _column("dec", DECIMAL),
    ]
    path = _create(yt_env, "typed", schema)
    decimal_314 = b"\x80\x00\x01\x3a"  # 3.14 in decimal(5, 2): 314, big-endian, top bit flipped
    rows = [
        {
            "s": {"a": 1, "b": "x"},
            "v": ["num", 5],
            "tv": [1, "y"],
            "d": [["k", 1], ["m", 2]],
            "l": [1, 2, 3],
            "t": "<svg/>",
            "n": [None],
            "dec": decimal_314,
        },
        {
            "s": {"a": 2},
            "v": ["text", "t"],
            "tv": [0, 7],
            "d": [],
            "l": [],
            "t": "",
            "n": None,
            "dec": decimal_314,
        },
    ]
    yt_env.client.write_table(path, rows)
    read = list(yt_env.client.read_table(path))
    assert read[0]["s"] == {"a": 1, "b": "x"}
    assert read[1]["s"] == {"a": 2, "b": None}  # a missing optional member reads back as #
    assert [row["v"] for row in read] == [["num", 5], ["text", "t"]]
    assert [row["tv"] for row in read] == [[1, "y"], [0, 7]]
    assert [row["d"] for row in read] == [[["k", 1], ["m", 2]], []]
    assert [row["n"] for row in read] == [[None], None]
    assert yson.get_bytes(read[0]["dec"]) == decimal_314


@pytest.mark.parametrize(
    ("type_v3", "value"),
    [
        (STRUCT, {"a": "not an int"}),
        (STRUCT, {"b": "x"}),  # a required member missing
        (STRUCT, {"a": 1, "zzz": 2}),  # an unknown member
        (STRUCT, [1, "x"]),  # positional form in the default (named) mode
        (VARIANT, ["nope", 1]),
        (VARIANT, ["num", "not an int"]),
        (TUPLE_VARIANT, [2, 1]),
        (DICT, {"k": 1}),
        (DICT, [["k", "v"]]),
        (LIST, [1, "x"]),
        (LIST, 5),
        (DECIMAL, b"\x00\x01"),
        (NESTED_OPTIONAL, 5),
    ],
    ids=[
        "struct-member-type",
        "struct-missing-member",
        "struct-unknown-member",
        "struct-positional",
        "variant-unknown-name",
        "variant-value-type",
        "variant-index-range",
        "dict-as-map",
        "dict-value-type",
        "list-item-type",
        "list-scalar",
        "decimal-size",
        "nested-optional-bare",
    ],
)
def test_a_value_not_matching_its_composite_type_is_refused(
    yt_env: YtEnv, type_v3: Any, value: Any
) -> None:
    path = _create(yt_env, "strict", [_column("c", type_v3)])
    with pytest.raises(yt.YtResponseError) as raised:
        yt_env.client.write_table(path, [{"c": value}])
    assert raised.value.contains_code(307)  # SchemaViolation
    assert list(yt_env.client.read_table(path)) == []


def test_a_required_composite_column_cannot_be_missing(yt_env: YtEnv) -> None:
    path = _create(yt_env, "strict", [_column("l", LIST), _column("x", "int64")])
    with pytest.raises(yt.YtResponseError) as raised:
        yt_env.client.write_table(path, [{"x": 1}])
    assert raised.value.contains_code(307)
    assert 'Required column "l"' in str(raised.value)


@pytest.mark.parametrize(
    "type_v3",
    [
        {"type_name": "struct", "members": [{"name": "a"}]},
        {"type_name": "list"},
        {"type_name": "decimal", "precision": 99, "scale": 1},
        {"type_name": "no_such_type"},
        {"type_name": "variant", "members": []},
    ],
    ids=[
        "member-without-type",
        "list-without-item",
        "decimal-precision",
        "unknown",
        "empty-variant",
    ],
)
def test_a_schema_with_a_bad_type_is_refused(yt_env: YtEnv, type_v3: Any) -> None:
    with pytest.raises(yt.YtResponseError):
        yt_env.client.create(
            "table", yt_env.path("bad"), attributes={"schema": [_column("c", type_v3)]}
        )
    assert not yt_env.client.exists(yt_env.path("bad"))


def test_typed_api_writes_and_reads_dataclasses_through_skiff(yt_env: YtEnv) -> None:
    path = yt_env.path("shapes")
    shapes = [
        Shape(
            name="tri",
            points=[Point(x=1, label="a"), Point(x=2, label=None)],
            tags={"k": 1},
            weight=0.5,
        ),
        Shape(name="empty", points=[], tags={}, weight=None),
    ]
    yt_env.client.write_table_structured(path, Shape, shapes)
    schema = yt_env.client.get(path + "/@schema")
    assert schema.attributes["strict"]
    assert list(yt_env.client.read_table_structured(path, Shape)) == shapes
    # The same rows through YSON, in YT's default representation of the composite columns.
    assert next(iter(yt_env.client.read_table(path))) == {
        "name": "tri",
        "points": [{"x": 1, "label": "a"}, {"x": 2, "label": None}],
        "tags": [["k", 1]],
        "weight": 0.5,
    }


def test_typed_api_reads_a_table_written_in_yson(yt_env: YtEnv) -> None:
    path = yt_env.path("shapes")
    yt_env.client.create(
        "table", path, attributes={"schema": yt.schema.TableSchema.from_row_type(Shape)}
    )
    yt_env.client.write_table(
        path,
        [{"name": "sq", "points": [{"x": 3, "label": None}], "tags": [["a", 1]], "weight": 1.5}],
    )
    assert list(yt_env.client.read_table_structured(path, Shape)) == [
        Shape(name="sq", points=[Point(x=3, label=None)], tags={"a": 1}, weight=1.5)
    ]


def test_skiff_rows_not_matching_the_table_schema_are_refused(yt_env: YtEnv) -> None:
    path = _create(yt_env, "named", [_column("name", "string")])
    wrong = yt.SkiffFormat(
        [{"wire_type": "tuple", "children": [{"name": "name", "wire_type": "int64"}]}]
    )
    with pytest.raises(yt.YtResponseError) as raised:
        # table index 0, then the int64 1 where the table has a string column
        yt_env.client.write_table(
            path, b"\x00\x00" + (1).to_bytes(8, "little"), format=wrong, raw=True
        )
    assert raised.value.contains_code(307)  # SchemaViolation
    assert list(yt_env.client.read_table(path)) == []


def test_a_malformed_skiff_stream_is_refused(yt_env: YtEnv) -> None:
    path = _create(yt_env, "named", [_column("name", "string")])
    fmt = yt.SkiffFormat(
        [{"wire_type": "tuple", "children": [{"name": "name", "wire_type": "string32"}]}]
    )
    truncated = b"\x00\x00" + b"\x10\x00\x00\x00abc"  # a string32 of 16 bytes holding 3
    with pytest.raises(yt.YtResponseError):
        yt_env.client.write_table(path, truncated, format=fmt, raw=True)
    assert list(yt_env.client.read_table(path)) == []


def test_schemaful_dsv_writes_and_reads_the_named_columns(yt_env: YtEnv) -> None:
    path = yt_env.path("sdsv")
    yt_env.client.write_table(path, [{"a": "1", "b": "x\ty", "c": "ignored"}])
    fmt = yt.SchemafulDsvFormat(columns=["b", "a"])
    raw = yt_env.client.read_table(path, format=fmt, raw=True).read()
    assert raw == b"x\\ty\t1\n"
    yt_env.client.write_table(yt.TablePath(path, append=True), b"p\tq\n", format=fmt, raw=True)
    assert list(yt_env.client.read_table(path))[1] == {"b": "p", "a": "q"}


def test_schemaful_dsv_fails_on_a_missing_column(yt_env: YtEnv) -> None:
    path = yt_env.path("sdsv")
    yt_env.client.write_table(path, [{"a": "1"}])
    with pytest.raises(yt.YtError):
        yt_env.client.read_table(
            path, format=yt.SchemafulDsvFormat(columns=["a", "zzz"]), raw=True
        ).read()


def test_type_v3_schema_reads_back_as_written(yt_env: YtEnv) -> None:
    path = _create(yt_env, "typed", [_column("s", STRUCT), _column("t", TAGGED)])
    schema = yt.schema.TableSchema.from_yson_type(yt_env.client.get(path + "/@schema"))
    assert schema.columns[0].type == ti.Struct["a" : ti.Int64, "b" : ti.Optional[ti.String]]
    assert schema.columns[1].type == ti.Tagged[ti.String, "image/svg"]


@pytest.mark.slow  # a Python job: packs and ships yt.wrapper and the YSON bindings
def test_typed_job_maps_dataclass_rows_through_skiff(yt_env: YtEnv) -> None:
    first, second = yt_env.path("first"), yt_env.path("second")
    outputs = [yt_env.path("with_values"), yt_env.path("without_values")]
    yt_env.client.write_table_structured(
        first,
        Measurement,
        [Measurement(sensor="a", values=[1, 2, 3], location=Place(lat=1.5, lon=2.5))],
    )
    yt_env.client.write_table_structured(
        second,
        Measurement,
        [
            Measurement(sensor="b", values=[], location=None),
            Measurement(sensor="c", values=[4], location=None),
        ],
    )
    job = Summarize()
    with shipping(yt_env.client, job):  # jobs run a bare python3: ship what the job needs
        yt_env.client.run_map(job, [first, second], outputs, spec={"max_failed_job_count": 1})
    assert [list(yt_env.client.read_table_structured(t, Summary)) for t in outputs] == [
        [
            Summary(sensor="a", total=6, count=3, place=Place(lat=1.5, lon=2.5)),
            Summary(sensor="c", total=4, count=1, place=None),
        ],
        [Summary(sensor="b", total=0, count=0, place=None)],
    ]
    # The output tables got the schema of the job's output type, strict and typed.
    schema = yt.schema.TableSchema.from_yson_type(yt_env.client.get(outputs[0] + "/@schema"))
    assert schema == yt.schema.TableSchema.from_row_type(Summary)


def test_map_output_not_matching_a_composite_column_fails_the_operation(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    destination = _create(yt_env, "out", [_column("s", STRUCT)])
    with pytest.raises(yt.YtOperationFailedError):
        yt_env.client.run_map(
            "cat >/dev/null; echo '{s={a=x}}'",
            source,
            destination,
            format=yt.YsonFormat(format="text"),
            spec={"max_failed_job_count": 1},
        )
    assert list(yt_env.client.read_table(destination)) == []


def test_map_output_of_composite_columns_reads_back_normalised(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    destination = _create(yt_env, "out", [_column("s", STRUCT), _column("v", VARIANT)])
    yt_env.client.run_map(
        "cat >/dev/null; echo '{s={a=7};v=[text;t]}'",
        source,
        destination,
        format=yt.YsonFormat(format="text"),
        spec={"max_failed_job_count": 1},
    )
    assert list(yt_env.client.read_table(destination)) == [
        {"s": {"a": 7, "b": None}, "v": ["text", "t"]}
    ]


@pytest.mark.parametrize("lenval", [False, True], ids=["text", "lenval"])
def test_yamr_round_trips_key_subkey_value(yt_env: YtEnv, lenval: bool) -> None:
    path = yt_env.path("yamr")
    fmt = yt.YamrFormat(has_subkey=True, lenval=lenval)
    rows = [
        {"key": "k1", "subkey": "s", "value": "v\twith tab"},
        {"key": "k2", "subkey": "", "value": ""},
    ]
    yt_env.client.write_table(path, rows)
    raw = yt_env.client.read_table(path, format=fmt, raw=True).read()
    if not lenval:
        assert raw == b"k1\ts\tv\twith tab\nk2\t\t\n"
    yt_env.client.write_table(path, raw, format=fmt, raw=True)
    assert list(yt_env.client.read_table(path)) == rows


def test_yamr_refuses_a_row_without_its_columns(yt_env: YtEnv) -> None:
    path = yt_env.path("yamr")
    yt_env.client.write_table(path, [{"key": "k"}])
    with pytest.raises(yt.YtError):
        yt_env.client.read_table(path, format=yt.YamrFormat(), raw=True).read()


def test_yamr_table_switches_route_map_output(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"key": "a", "value": "1"}])
    outputs = [yt_env.path("out0"), yt_env.path("out1")]
    yt_env.client.run_map(
        "cat >/dev/null; printf '1\\nk\\tv\\n0\\nl\\tw\\n'",
        source,
        outputs,
        format=yt.YamrFormat(enable_table_index=True),
        spec={"max_failed_job_count": 1},
    )
    assert [list(yt_env.client.read_table(t)) for t in outputs] == [
        [{"key": "l", "value": "w"}],
        [{"key": "k", "value": "v"}],
    ]


def _int64(value: int) -> bytes:
    return value.to_bytes(8, "little", signed=True)


def test_skiff_schema_registry_and_other_columns(yt_env: YtEnv) -> None:
    path = yt_env.path("weak")
    yt_env.client.write_table(path, [{"a": 1, "b": "x", "c": [1]}])
    fmt = yt.SkiffFormat(
        ["$row"],
        schema_registry={
            "row": {
                "wire_type": "tuple",
                "children": [
                    {"name": "a", "wire_type": "int64"},
                    {"name": "$other_columns", "wire_type": "yson32"},
                ],
            }
        },
    )
    raw = yt_env.client.read_table(path, format=fmt, raw=True).read()
    assert raw[:10] == b"\x00\x00" + _int64(1)
    other = yson.loads(raw[14:])
    assert other == {"b": "x", "c": [1]}
    yt_env.client.write_table(path, raw, format=fmt, raw=True)
    assert list(yt_env.client.read_table(path)) == [{"a": 1, "b": "x", "c": [1]}]


@pytest.mark.parametrize(
    "schema",
    [
        {"wire_type": "int64"},  # the root of a table skiff schema must be a tuple
        {"wire_type": "tuple", "children": [{"wire_type": "int64"}]},  # an unnamed column
        {"wire_type": "tuple", "children": [{"name": "a", "wire_type": "int65"}]},
        {
            "wire_type": "tuple",
            "children": [
                {"name": "a", "wire_type": "int64"},
                {"name": "a", "wire_type": "string32"},
            ],
        },
        {"wire_type": "tuple", "children": [{"name": "$row_index", "wire_type": "int64"}]},
        {
            "wire_type": "tuple",
            "children": [
                {"name": "$other_columns", "wire_type": "yson32"},
                {"name": "a", "wire_type": "int64"},
            ],
        },
        {"wire_type": "variant8"},  # a compound type without children
        "$missing",
    ],
    ids=[
        "root-not-tuple",
        "unnamed-column",
        "unknown-wire-type",
        "duplicate-name",
        "row-index-type",
        "other-columns-not-last",
        "no-children",
        "dangling-ref",
    ],
)
def test_a_bad_skiff_schema_is_refused(yt_env: YtEnv, schema: Any) -> None:
    path = yt_env.path("t")
    yt_env.client.write_table(path, [{"a": 1}])
    # yt.wrapper checks a SkiffFormat it builds, so the format goes to the server as is.
    output_format = yson.to_yson_type("skiff", attributes={"table_skiff_schemas": [schema]})
    with pytest.raises(yt.YtResponseError) as raised:
        make_request(
            "read_table", {"path": path, "output_format": output_format}, client=yt_env.client
        )
    assert "Internal error" not in str(raised.value)  # a YT error, not a crash


def test_a_skiff_column_the_schema_lacks_is_refused_without_other_columns(yt_env: YtEnv) -> None:
    path = yt_env.path("t")
    yt_env.client.write_table(path, [{"a": 1, "b": 2}])
    fmt = yt.SkiffFormat(
        [{"wire_type": "tuple", "children": [{"name": "a", "wire_type": "int64"}]}]
    )
    with pytest.raises(yt.YtError):
        yt_env.client.read_table(path, format=fmt, raw=True).read()


def test_composite_values_travel_through_json_too(yt_env: YtEnv) -> None:
    path = _create(
        yt_env, "typed", [_column("s", STRUCT), _column("d", DICT), _column("y", "yson")]
    )
    body = b'{"s":{"a":1},"d":[["k",2]],"y":{"any":[1,"x"]}}\n'
    yt_env.client.write_table(path, body, format="json", raw=True)
    raw = yt_env.client.read_table(path, format="json", raw=True).read()
    assert raw == b'{"s":{"a":1,"b":null},"d":[["k",2]],"y":{"any":[1,"x"]}}\n'
    with pytest.raises(yt.YtResponseError) as raised:
        yt_env.client.write_table(path, b'{"s":{"a":1,"c":2}}\n', format="json", raw=True)
    assert raised.value.contains_code(307)
