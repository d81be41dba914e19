"""``get_table_columnar_statistics`` and ``partition_tables`` through the unmodified client: the
numbers a client plans work with, and partitions that together read every row once, in order.
Runs against a real cluster too (exact weights are checked only locally)."""

from __future__ import annotations

import pytest
import yt.wrapper as yt
from yt.wrapper.driver import make_request

from .conftest import YtEnv


def test_columnar_statistics_of_selected_columns(yt_env: YtEnv) -> None:
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"a": i, "s": "x" * i} for i in range(5)])
    [whole, ranged] = yt_env.client.get_table_columnar_statistics(
        [f"{table}{{a,s}}", f"{table}{{s}}[#3:]"]
    )
    assert set(whole["column_data_weights"]) == {"a", "s"}
    assert whole["column_data_weights"]["s"] == 0 + 1 + 2 + 3 + 4
    assert ranged["column_data_weights"]["s"] == 3 + 4
    if yt_env.is_local:
        assert whole["column_data_weights"]["a"] == 5 * 8
        assert whole["column_min_values"]["a"] == 0
        assert whole["column_max_values"]["s"] == "xxxx"


def test_columnar_statistics_need_a_column_selector(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip("a cluster may answer for every column")
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"a": 1}])
    with pytest.raises(yt.YtResponseError) as caught:
        yt_env.client.get_table_columnar_statistics([table])
    assert "Internal error" not in str(caught.value)


def _read_partitions(client: yt.YtClient, partitions: list) -> list[list[dict]]:
    """Rows of each input table, in partition order."""
    per_table: list[list[dict]] = [[] for _ in partitions[0]["table_ranges"]]
    for partition in partitions:
        for index, path in enumerate(partition["table_ranges"]):
            if path.attributes.get("ranges") != []:
                per_table[index].extend(client.read_table(path))
    return per_table


def test_partitions_cover_every_row_once_in_order(yt_env: YtEnv) -> None:
    first, second = yt_env.path("first"), yt_env.path("second")
    first_rows = [{"i": i, "pad": "p" * 20} for i in range(40)]
    second_rows = [{"j": j} for j in range(7)]
    yt_env.client.write_table(first, first_rows)
    yt_env.client.write_table(second, second_rows)
    weight = yt_env.client.get(f"{first}/@data_weight") // 4
    partitions = yt_env.client.partition_tables([first, second], data_weight_per_partition=weight)
    assert len(partitions) >= 3
    assert _read_partitions(yt_env.client, partitions) == [first_rows, second_rows]
    assert sum(p["aggregate_statistics"]["row_count"] for p in partitions) == 47


def test_max_partition_count_bounds_the_partitions(yt_env: YtEnv) -> None:
    table = yt_env.path("t")
    rows = [{"i": i} for i in range(30)]
    yt_env.client.write_table(table, rows)
    partitions = yt_env.client.partition_tables(
        [table], data_weight_per_partition=1, max_partition_count=4
    )
    assert 1 <= len(partitions) <= 4
    assert _read_partitions(yt_env.client, partitions) == [rows]


def test_partition_tables_refuses_what_it_does_not_do(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip("a cluster does these")
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"i": 1}])
    for options in [{"partition_mode": "sorted"}, {"enable_cookies": True}]:
        with pytest.raises(yt.YtResponseError) as caught:
            yt_env.client.partition_tables([table], data_weight_per_partition=10, **options)
        assert "Internal error" not in str(caught.value)


@pytest.mark.parametrize(
    ("command", "params"),
    [
        ("partition_tables", {"paths": ["{t}"], "data_weight_per_partition": "abc"}),
        ("partition_tables", {"paths": "{t}", "data_weight_per_partition": 5}),
        ("partition_tables", {"paths": ["{d}"], "data_weight_per_partition": 5}),
        ("get_table_columnar_statistics", {"paths": 5}),
        ("get_table_columnar_statistics", {"paths": ["{d}{{a}}"]}),
    ],
)
def test_bad_requests_are_yt_errors(yt_env: YtEnv, command: str, params: dict) -> None:
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"a": 1}])
    formatted = {
        key: [item.format(t=table, d=yt_env.directory) for item in value]
        if isinstance(value, list)
        else value.format(t=table)
        if isinstance(value, str) and key == "paths"
        else value
        for key, value in params.items()
    }
    with pytest.raises(yt.YtResponseError) as caught:
        make_request(command, formatted, client=yt_env.client)
    assert "Internal error" not in str(caught.value)
