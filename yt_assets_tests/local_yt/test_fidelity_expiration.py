"""``expiration_time`` and ``expiration_timeout`` enforced: the node (and its subtree) disappears
after its deadline, temporary tables of ``create_temp_table`` included; malformed values are YT
errors. Through the unmodified client; runs against a real cluster too (whose sweep may lag)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import pytest
import yt.wrapper as yt

from .conftest import YtEnv

WAIT_SECONDS = 30.0


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_expiration_timeout_removes_the_node(yt_env: YtEnv) -> None:
    table = yt_env.path("short_lived")
    yt_env.client.create("table", table, attributes={"expiration_timeout": 200})
    assert wait_until(lambda: not yt_env.client.exists(table))


def test_expiration_time_removes_the_subtree(yt_env: YtEnv) -> None:
    directory = yt_env.path("dir")
    yt_env.client.create("table", f"{directory}/t", recursive=True)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=300)
    yt_env.client.set(f"{directory}/@expiration_time", soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert yt_env.client.exists(f"{directory}/t")
    assert wait_until(lambda: not yt_env.client.exists(directory))
    assert yt_env.client.exists(yt_env.directory)


def test_a_temporary_table_expires(yt_env: YtEnv) -> None:
    table = yt_env.client.create_temp_table(path=yt_env.directory, expiration_timeout=300)
    assert yt_env.client.exists(f"{table}/@expiration_time")
    assert wait_until(lambda: not yt_env.client.exists(table))


def test_a_node_without_a_deadline_stays(yt_env: YtEnv) -> None:
    later = yt_env.path("later")
    yt_env.client.create("table", later, attributes={"expiration_timeout": 3_600_000})
    expiring = yt_env.path("now")
    yt_env.client.create("table", expiring, attributes={"expiration_timeout": 100})
    assert wait_until(lambda: not yt_env.client.exists(expiring))
    assert yt_env.client.exists(later)


@pytest.mark.parametrize(
    ("name", "value"),
    [("expiration_time", "yesterday"), ("expiration_timeout", -1), ("expiration_timeout", "1s")],
)
def test_a_malformed_expiration_is_a_yt_error(yt_env: YtEnv, name: str, value: object) -> None:
    node = yt_env.path("node")
    yt_env.client.create("map_node", node)
    with pytest.raises(yt.YtResponseError) as caught:
        yt_env.client.set(f"{node}/@{name}", value)
    assert "Internal error" not in str(caught.value)
    assert not yt_env.client.exists(f"{node}/@{name}")


def test_a_locked_node_outlives_its_deadline_until_the_lock_goes(yt_env: YtEnv) -> None:
    table = yt_env.path("locked")
    yt_env.client.create("table", table)
    other = yt_env.new_client()
    with other.Transaction():
        other.lock(table, mode="snapshot")
        yt_env.client.set(f"{table}/@expiration_timeout", 100)
        time.sleep(0.6)
        assert yt_env.client.exists(table)
    assert wait_until(lambda: not yt_env.client.exists(table))
