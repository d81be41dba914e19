"""Cypress as a client expects it: list nodes addressed by position (``end``, ``begin``,
``before:N``, ``after:N``, negative indexes), ``generate_timestamp`` and
``get_supported_features``. Through the unmodified client and the ``yt`` CLI; runs against a
real cluster too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yt.wrapper as yt

from .conftest import YtEnv

YT_CLI = str(Path(sys.executable).with_name("yt"))


def test_list_node_positions(yt_env: YtEnv) -> None:
    path = yt_env.path("items")
    yt_env.client.set(path, [1, 2])
    assert yt_env.client.get(f"{path}/@type") == "list_node"
    for token, value in [("end", 3), ("begin", 0), ("before:1", 10), ("after:-1", 99), ("-1", 4)]:
        yt_env.client.set(f"{path}/{token}", value)
    assert yt_env.client.get(path) == [0, 10, 1, 2, 3, 4]


@pytest.mark.parametrize("token", ["6", "before:7", "after:-9", "middle"])
def test_list_position_out_of_range_is_a_resolve_error(yt_env: YtEnv, token: str) -> None:
    path = yt_env.path("items")
    yt_env.client.set(path, [1, 2])
    with pytest.raises(yt.YtResponseError) as caught:
        yt_env.client.set(f"{path}/{token}", 5)
    assert "Internal error" not in str(caught.value)
    assert yt_env.client.get(path) == [1, 2]


def test_list_append_inside_a_document_attribute(yt_env: YtEnv) -> None:
    path = yt_env.path("node")
    yt_env.client.create("map_node", path)
    yt_env.client.set(f"{path}/@history", ["a"])
    yt_env.client.set(f"{path}/@history/end", "b")
    assert yt_env.client.get(f"{path}/@history") == ["a", "b"]


def test_generated_timestamps_increase(yt_env: YtEnv) -> None:
    timestamps = [yt_env.client.generate_timestamp() for _ in range(5)]
    assert timestamps == sorted(set(timestamps))
    assert timestamps[0] >> 30 > 1_600_000_000  # unix seconds in the high bits


def test_supported_features(yt_env: YtEnv) -> None:
    features = yt_env.client.get_supported_features()
    assert {"int64", "uint64", "string", "boolean", "double"} <= set(features["primitive_types"])
    assert "none" in features["compression_codecs"]


def test_cli_appends_to_a_list(yt_env: YtEnv) -> None:
    path = yt_env.path("cli_items")
    yt_env.client.set(path, ["x"])
    env = {**os.environ, "YT_PROXY": yt_env.proxy_url}
    subprocess.run([YT_CLI, "set", f"{path}/end", '"y"'], check=True, env=env, timeout=120)
    listed = subprocess.run(
        [YT_CLI, "get", path, "--format", "json"],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    assert listed.stdout.strip() == b'["x","y"]'


def test_locks_attribute_lists_the_locks_held(yt_env: YtEnv) -> None:
    table = yt_env.path("locked")
    yt_env.client.create("table", table)
    with yt_env.client.Transaction() as transaction:
        lock = yt_env.client.lock(table, mode="exclusive")
        locks = yt_env.client.get(f"{table}/@locks")
        assert [
            (item["id"], item["mode"], item["state"], item["transaction_id"]) for item in locks
        ] == [(lock["lock_id"], "exclusive", "acquired", transaction.transaction_id)]
        assert yt_env.client.get(f"{table}/@lock_count") == 1
    assert yt_env.client.get(f"{table}/@locks") == []
