"""Bad requests get YT errors naming the problem (never an internal error), and validation is as
strict as a cluster's: a node cannot be moved or copied onto itself. Runs against a real
cluster too (the wording is checked on the local YT only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yt.wrapper as yt

from .conftest import YtEnv

NO_RETRIES = {"proxy": {"retries": {"enable": False}}, "write_retries": {"enable": False}}


def _fails_with(env: YtEnv, action: Callable[[], Any], local_wording: str) -> None:
    with pytest.raises(yt.YtResponseError) as caught:
        action()
    message = str(caught.value)
    assert "Internal error" not in message
    if env.is_local:
        assert local_wording in message


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        (yt.YsonFormat(format="text"), b'{"\xff\xfe"=1;};'),
        (yt.JsonFormat(), b'{"\xff\xfe":1}\n'),
    ],
    ids=["yson", "json"],
)
def test_non_utf8_column_name_is_a_yt_error(yt_env: YtEnv, fmt: Any, body: bytes) -> None:
    client = yt_env.new_client(NO_RETRIES)
    table = yt_env.path("t")
    _fails_with(yt_env, lambda: client.write_table(table, body, format=fmt, raw=True), "UTF-8")


def test_non_utf8_schema_column_is_a_yt_error(yt_env: YtEnv) -> None:
    client = yt_env.new_client(NO_RETRIES)
    schema = [{"name": b"\xff", "type": "int64"}]
    _fails_with(
        yt_env,
        lambda: client.create("table", yt_env.path("t"), attributes={"schema": schema}),
        "UTF-8",
    )


@pytest.mark.parametrize(
    ("attributes", "wording"),
    [
        ({"ranges": 5}, "must be a list of maps"),
        ({"ranges": [{"lower_limit": {"row_index": "ten"}}]}, "must be an integer"),
        ({"columns": 5}, "list of column names"),
    ],
    ids=["ranges", "row_index", "columns"],
)
def test_malformed_rich_path_is_a_yt_error(
    yt_env: YtEnv, attributes: dict[str, Any], wording: str
) -> None:
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"x": 1}])
    client = yt_env.new_client(NO_RETRIES)
    path = yt.TablePath(table, attributes=attributes)
    _fails_with(yt_env, lambda: list(client.read_table(path)), wording)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("command", ["move", "copy"])
def test_move_or_copy_onto_itself_is_refused_and_loses_nothing(
    yt_env: YtEnv, command: str, force: bool
) -> None:
    table = yt_env.path("t")
    yt_env.client.write_table(table, [{"x": 1}, {"x": 2}])
    action = getattr(yt_env.client, command)
    _fails_with(yt_env, lambda: action(table, table, force=force), "to itself")
    assert list(yt_env.client.read_table(table)) == [{"x": 1}, {"x": 2}]
