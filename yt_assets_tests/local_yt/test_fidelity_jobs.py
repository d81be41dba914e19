"""What a map job reads and writes, as on a cluster: one descriptor per output table (1, 4, 7,
10, 13...), table switches inside an output stream (YSON, JSON, DSV), input control attributes
(table, range and row indexes, the ``context`` of ``yt.wrapper`` Python jobs), and malformed job
output failing the job. Through the unmodified client; runs against a real cluster too."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yt.wrapper as yt

from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.shipping import shipping
from yt_assets_tests.fidelity_job_functions import fanout, where_from

from .conftest import YtEnv

NO_RETRY = {"max_failed_job_count": 1}


def _outputs(env: YtEnv, count: int) -> list[str]:
    return [env.path(f"out{index}") for index in range(count)]


def _read_all(env: YtEnv, tables: list[str]) -> list[list[dict[str, Any]]]:
    return [list(env.client.read_table(table)) for table in tables]


@pytest.mark.parametrize("redirect", [False, True], ids=["stdout", "redirect_stdout_to_stderr"])
def test_every_output_table_has_its_descriptor(yt_env: YtEnv, redirect: bool) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    outputs = _outputs(yt_env, 6)
    first = 4 if redirect else 1
    writes = "; ".join(
        f"echo '{{\"table\":{index}}}' >&{3 * index + first}" for index in range(len(outputs))
    )
    yt_env.client.run_map(
        f"cat >/dev/null; {writes}",
        source,
        outputs,
        format="json",
        spec={"mapper": {"redirect_stdout_to_stderr": redirect}, **NO_RETRY},
    )
    assert _read_all(yt_env, outputs) == [[{"table": index}] for index in range(len(outputs))]


SWITCHING_OUTPUT = {
    "json": (
        '{"n":0}\\n{"$value":null,"$attributes":{"table_index":2}}\\n{"n":1}\\n{"n":2}\\n'
        '{"$value":null,"$attributes":{"table_index":1}}\\n{"n":3}\\n'
        '{"$value":null,"$attributes":{"table_index":0}}\\n{"n":4}\\n'
    ),
    "<format=text>yson": (
        "{n=0};<table_index=2>#;{n=1};{n=2};<table_index=1>#;{n=3};<table_index=0>#;{n=4};"
    ),
    "<enable_table_index=%true>dsv": (
        "n=0\\n@table_index=2\\tn=1\\nn=2\\t@table_index=2\\n@table_index=1\\tn=3\\n"
        "@table_index=0\\tn=4\\n"
    ),
}


@pytest.mark.parametrize("fmt", list(SWITCHING_OUTPUT))
def test_table_switches_route_rows_of_one_stream(yt_env: YtEnv, fmt: str) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    outputs = _outputs(yt_env, 3)
    yt_env.client.run_map(
        f"cat >/dev/null; printf '{SWITCHING_OUTPUT[fmt]}'",
        source,
        outputs,
        format=yt.create_format(fmt) if fmt.startswith("<") else fmt,
        spec=NO_RETRY,
    )
    tables = [[int(row["n"]) for row in rows] for rows in _read_all(yt_env, outputs)]
    assert tables == [[0, 4], [3], [1, 2]]


def test_table_switch_in_another_descriptor_stream(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    outputs = _outputs(yt_env, 3)
    yt_env.client.run_map(
        "cat >/dev/null; printf '{a=4};<table_index=0>#;{a=0};' >&4",
        source,
        outputs,
        format=yt.YsonFormat(format="text"),
        spec=NO_RETRY,
    )
    assert _read_all(yt_env, outputs) == [[{"a": 0}], [{"a": 4}], []]


@pytest.mark.slow  # a Python job: packs and ships yt.wrapper and the YSON bindings
def test_python_mapper_table_switches(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"n": 1}, {"n": 2}])
    outputs = _outputs(yt_env, 3)
    with shipping(yt_env.client, fanout):  # jobs run a bare python3: ship what the job needs
        yt_env.client.run_map(fanout, source, outputs, spec=NO_RETRY, format=JOB_FORMAT)
    assert _read_all(yt_env, outputs) == [
        [{"n": 1, "table": index}, {"n": 2, "table": index}] for index in range(3)
    ]


@pytest.mark.parametrize(
    ("fmt", "output"),
    [
        ("json", '{"a":1}\\nnot json at all\\n'),
        ("json", "[1,2]\\n"),
        ("json", '{"$value":null,"$attributes":{"table_index":7}}\\n{"a":1}\\n'),
        ("<format=text>yson", "{a=1};garbage{{{"),
        ("<format=text>yson", "1;2;3;"),
        ("<format=text>yson", "<table_index=1>#;{a=1};"),
        ("dsv", "a=1\\nno equals sign here\\n"),
    ],
    ids=[
        "json-text",
        "json-list",
        "json-switch",
        "yson-text",
        "yson-scalars",
        "yson-switch",
        "dsv",
    ],
)
def test_malformed_job_output_fails_the_job(yt_env: YtEnv, fmt: str, output: str) -> None:
    source = yt_env.path("in")
    destination = yt_env.path("out")
    yt_env.client.write_table(source, [{"x": 1}])
    with pytest.raises(yt.YtOperationFailedError):
        yt_env.client.run_map(
            f"cat >/dev/null; printf '{output}'",
            source,
            destination,
            format=yt.create_format(fmt) if fmt.startswith("<") else fmt,
            spec=NO_RETRY,
        )


@pytest.mark.slow  # a Python job: packs and ships yt.wrapper and the YSON bindings
def test_python_job_context_carries_table_row_and_range_indexes(yt_env: YtEnv) -> None:
    first, second = yt_env.path("first"), yt_env.path("second")
    yt_env.client.write_table(first, [{"n": n} for n in range(10)])
    yt_env.client.write_table(second, [{"n": 100 + n} for n in range(5)])
    destination = yt_env.path("out")
    ranged = yt.TablePath(
        first,
        ranges=[
            {"lower_limit": {"row_index": 2}, "upper_limit": {"row_index": 4}},
            {"exact": {"row_index": 7}},
        ],
    )
    with shipping(yt_env.client, where_from):
        _run_where_from(yt_env, ranged, second, destination)
    rows = sorted(yt_env.client.read_table(destination), key=lambda row: row["n"])
    assert [(r["n"], r["table_index"], r["range_index"], r["row_index"]) for r in rows] == [
        (2, 0, 0, 2),
        (3, 0, 0, 3),
        (7, 0, 1, 7),
        *[(100 + n, 1, 0, n) for n in range(5)],
    ]


def _run_where_from(yt_env: YtEnv, ranged: Any, second: str, destination: str) -> None:
    yt_env.client.run_map(
        where_from,
        [ranged, second],
        destination,
        format=JOB_FORMAT,
        spec={
            "job_count": 1,
            "job_io": {
                "control_attributes": {"enable_row_index": True, "enable_range_index": True}
            },
            **NO_RETRY,
        },
    )


def _control_and_rows(lines: list[str]) -> list[Any]:
    """Job input lines as [control attributes merged, row, control..., row...]."""
    items: list[Any] = []
    for line in lines:
        document = json.loads(base64.b64decode(line))
        if "$value" in document:
            if not items or not isinstance(items[-1], dict) or "n" in items[-1]:
                items.append({})
            items[-1].update(document["$attributes"])
        else:
            items.append(document)
    return items


def test_raw_job_input_carries_control_rows(yt_env: YtEnv) -> None:
    first, second = yt_env.path("first"), yt_env.path("second")
    yt_env.client.write_table(first, [{"n": n} for n in range(6)])
    yt_env.client.write_table(second, [{"n": 10}])
    destination = yt_env.path("out")
    # The job stores each input line, base64-encoded, so the control rows become visible.
    command = (
        "while IFS= read -r line; do "
        'printf \'{"line":"%s"}\\n\' "$(printf %s "$line" | base64 -w0)"; done'
    )
    path = yt.TablePath(
        first, ranges=[{"lower_limit": {"row_index": 4}}, {"exact": {"row_index": 1}}]
    )
    yt_env.client.run_map(
        command,
        [path, second],
        destination,
        format="json",
        spec={
            "job_count": 1,
            "job_io": {
                "control_attributes": {"enable_row_index": True, "enable_range_index": True}
            },
            **NO_RETRY,
        },
    )
    lines = [row["line"] for row in yt_env.client.read_table(destination)]
    assert _control_and_rows(lines) == [
        {"table_index": 0, "range_index": 0, "row_index": 4},
        {"n": 4},
        {"n": 5},
        {"range_index": 1, "row_index": 1},
        {"n": 1},
        {"table_index": 1, "range_index": 0, "row_index": 0},
        {"n": 10},
    ]
