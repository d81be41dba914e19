"""Symbolic links as a client uses them: ``link`` (with ``ignore_existing``/``force``), paths
resolved through links, ``&`` to address the link itself, broken and cyclic links. Through the
unmodified client; runs against a real cluster too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yt.wrapper as yt

from .conftest import YtEnv

YT_CLI = str(Path(sys.executable).with_name("yt"))


def test_a_link_resolves_to_its_target_and_amp_names_the_link(yt_env: YtEnv) -> None:
    client = yt_env.client
    table, link = yt_env.path("table"), yt_env.path("latest")
    client.write_table(table, [{"a": 1}])
    client.link(table, link)
    assert client.get(f"{link}/@type") == "table"
    assert client.get(f"{link}&/@type") == "link"
    assert client.get(f"{link}&/@target_path") == table
    assert client.get(f"{link}&/@target_id") == client.get(f"{table}/@id")
    assert client.get(f"{link}&/@broken") == False  # noqa: E712 (a YsonBoolean)
    assert list(client.read_table(link)) == [{"a": 1}]


def test_a_path_passes_through_a_linked_directory(yt_env: YtEnv) -> None:
    client = yt_env.client
    directory, link = yt_env.path("dir"), yt_env.path("dir_link")
    client.mkdir(directory)
    client.link(directory, link)
    client.create("table", f"{link}/t")
    assert client.list(directory) == ["t"]
    assert client.list(link) == ["t"]


def test_link_refuses_an_existing_node_unless_told(yt_env: YtEnv) -> None:
    client = yt_env.client
    first, second, link = yt_env.path("first"), yt_env.path("second"), yt_env.path("link")
    client.create("table", first)
    client.create("table", second)
    client.link(first, link)
    with pytest.raises(yt.YtResponseError):
        client.link(first, link)
    client.link(first, link, ignore_existing=True)
    client.link(second, link, force=True)  # replaces the link, not its target
    assert client.get(f"{link}&/@target_path") == second
    assert client.exists(first)


def test_removing_path_amp_removes_the_link_only(yt_env: YtEnv) -> None:
    client = yt_env.client
    table, link = yt_env.path("table"), yt_env.path("link")
    client.create("table", table)
    client.link(table, link)
    client.remove(f"{link}&")
    assert not client.exists(f"{link}&")
    assert client.exists(table)


def test_a_broken_link_is_a_resolve_error(yt_env: YtEnv) -> None:
    client = yt_env.client
    link = yt_env.path("dangling")
    client.link(yt_env.path("missing"), link)
    assert client.get(f"{link}&/@broken") == True  # noqa: E712 (a YsonBoolean)
    assert client.exists(f"{link}&")
    assert not client.exists(link)
    with pytest.raises(yt.YtResponseError) as caught:
        client.get(link)
    assert caught.value.is_resolve_error()


def test_a_cyclic_link_is_refused(yt_env: YtEnv) -> None:
    client = yt_env.client
    first, second = yt_env.path("first"), yt_env.path("second")
    with pytest.raises(yt.YtResponseError):
        client.link(first, first)
    client.link(second, first)
    with pytest.raises(yt.YtResponseError):
        client.link(first, second)
    assert not client.exists(f"{second}&")


def test_a_node_by_object_id(yt_env: YtEnv) -> None:
    client = yt_env.client
    directory = yt_env.path("dir")
    client.create("map_node", directory)
    client.set(f"{directory}/value", 5)
    node_id = client.get(f"{directory}/@id")
    assert client.get(f"#{node_id}/@path") == directory
    assert client.get(f"#{node_id}/value") == 5


def test_cli_links_and_lists_transactions(yt_env: YtEnv) -> None:
    table, link = yt_env.path("table"), yt_env.path("cli_link")
    yt_env.client.create("table", table)
    env = {**os.environ, "YT_PROXY": yt_env.proxy_url}
    subprocess.run([YT_CLI, "link", table, link], check=True, env=env, timeout=120)
    assert yt_env.client.get(f"{link}&/@target_path") == table
    transaction = yt_env.client.start_transaction()
    try:
        listed = subprocess.run(
            [YT_CLI, "list", "//sys/transactions"],
            check=True,
            env=env,
            timeout=120,
            capture_output=True,
        )
        assert transaction in listed.stdout.decode().split()
    finally:
        yt_env.client.abort_transaction(transaction)
