"""Cypress commands through the real ``yt.wrapper`` client (and the ``yt`` CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yt.wrapper as yt
import yt.yson as yson

from .conftest import LOCAL_ONLY_REASON, YtEnv


def test_create_get_set_exists_remove(yt_env: YtEnv) -> None:
    client = yt_env.client
    node = yt_env.path("dir/sub")
    assert not client.exists(node)
    node_id = client.create("map_node", node, recursive=True)
    assert isinstance(node_id, str) and node_id
    assert client.exists(node)
    assert client.get(node + "/@type") == "map_node"

    client.set(node + "/@my_attribute", {"answer": 42, "items": [1, "two"]})
    assert client.get(node + "/@my_attribute") == {"answer": 42, "items": [1, "two"]}

    client.set(yt_env.path("dir/document"), {"a": [1, 2, {"b": "c"}]})
    assert client.get(yt_env.path("dir/document")) == {"a": [1, 2, {"b": "c"}]}
    assert client.get(yt_env.path("dir/document/a/1")) == 2

    client.remove(node)
    assert not client.exists(node)
    with pytest.raises(yt.YtResponseError) as error:
        client.remove(node)
    assert error.value.is_resolve_error()
    client.remove(node, force=True)  # force: no error for a missing node


def test_create_conflicts(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("t")
    first = client.create("table", table)
    with pytest.raises(yt.YtResponseError) as error:
        client.create("table", table)
    assert error.value.contains_code(501)  # already exists
    assert client.create("table", table, ignore_existing=True) == first
    with pytest.raises(yt.YtResponseError) as error:
        client.create("table", yt_env.path("missing/parent/t"))
    assert error.value.is_resolve_error()


def test_list_with_attributes(yt_env: YtEnv) -> None:
    client = yt_env.client
    for name in ("b", "a", "c"):
        client.create("map_node", yt_env.path(f"listing/{name}"), recursive=True)
    client.create("table", yt_env.path("listing/t"))
    assert sorted(client.list(yt_env.path("listing"))) == ["a", "b", "c", "t"]
    listed = client.list(yt_env.path("listing"), attributes=["type"])
    types = {str(item): item.attributes["type"] for item in listed}
    assert types == {"a": "map_node", "b": "map_node", "c": "map_node", "t": "table"}
    absolute = client.list(yt_env.path("listing"), absolute=True)
    assert yt_env.path("listing/t") in absolute


def test_get_with_attributes(yt_env: YtEnv) -> None:
    client = yt_env.client
    client.create("map_node", yt_env.path("g/child"), recursive=True)
    tree = client.get(yt_env.path("g"), attributes=["type"])
    assert tree.attributes["type"] == "map_node"
    assert tree["child"].attributes["type"] == "map_node"


def test_move_and_copy(yt_env: YtEnv) -> None:
    client = yt_env.client
    source = yt_env.path("src")
    client.write_table(source, [{"x": 1}, {"x": 2}])
    client.copy(source, yt_env.path("copied"))
    assert list(client.read_table(yt_env.path("copied"))) == [{"x": 1}, {"x": 2}]
    client.move(source, yt_env.path("moved/deep"), recursive=True)
    assert not client.exists(source)
    assert list(client.read_table(yt_env.path("moved/deep"))) == [{"x": 1}, {"x": 2}]

    client.write_table(yt_env.path("other"), [{"x": 3}])
    with pytest.raises(yt.YtResponseError) as error:
        client.move(yt_env.path("other"), yt_env.path("copied"))
    assert error.value.contains_code(501)
    client.move(yt_env.path("other"), yt_env.path("copied"), force=True)
    assert list(client.read_table(yt_env.path("copied"))) == [{"x": 3}]


def test_root_listing(yt_env: YtEnv) -> None:
    assert "tmp" in yt_env.client.list("/")


def test_client_with_default_config(yt_env: YtEnv) -> None:
    """Proxy discovery (``/hosts``) and the remote config patch (``//sys/client_config``) on."""
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    client = yt.YtClient(proxy=yt_env.proxy_url, config={"enable_token": False})
    table = yt_env.path("default_config")
    client.write_table(table, [{"a": 1}])
    assert list(client.read_table(table)) == [{"a": 1}]


def test_batch_requests_report_errors_per_subrequest(yt_env: YtEnv) -> None:
    client = yt_env.client
    client.create("map_node", yt_env.path("batch"))
    batch = client.create_batch_client(raise_errors=False)
    exists = batch.exists(yt_env.path("batch"))
    missing = batch.get(yt_env.path("batch/missing"))
    created = batch.create("map_node", yt_env.path("batch/new"))
    listed = batch.list(yt_env.path("batch"))
    batch.commit_batch()
    assert exists.get_result() == True  # noqa: E712  (a YsonBoolean)
    assert not missing.is_ok()
    assert yt.YtResponseError(missing.get_error()).is_resolve_error()
    assert created.is_ok() and created.get_result()
    assert listed.get_result() == [] or "new" in listed.get_result()
    assert client.exists(yt_env.path("batch/new"))


def test_lock_in_transaction(yt_env: YtEnv) -> None:
    client = yt_env.client
    node = yt_env.path("locked")
    client.create("map_node", node)
    with client.Transaction():
        lock_id = client.lock(node, mode="snapshot")
        assert lock_id


def test_unknown_command_and_parameter_are_named(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    url = f"{yt_env.proxy_url}/api/v4/definitely_not_a_command"
    request = urllib.request.Request(url, headers={"X-YT-Header-Format": "<format=text>yson"})
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(http_error.value.headers["X-YT-Error"])
    assert "definitely_not_a_command" in error["message"]

    client = yt_env.client
    with pytest.raises(yt.YtResponseError) as response_error:
        yt.driver.make_request(
            "get",
            {"path": yt_env.directory, "no_such_option": True},
            client=client,
        )
    assert "no_such_option" in str(response_error.value)


def test_discovery_endpoints(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    with urllib.request.urlopen(f"{yt_env.proxy_url}/api/v4", timeout=10) as response:
        descriptors = {item["name"]: item for item in json.loads(response.read())}
    assert descriptors["write_table"]["input_type"] == "tabular"
    assert descriptors["write_table"]["is_heavy"] is True
    assert descriptors["read_table"]["output_type"] == "tabular"
    assert descriptors["write_file"]["input_type"] == "binary"
    assert descriptors["create"]["is_volatile"] is True
    assert descriptors["get"]["is_volatile"] is False
    with urllib.request.urlopen(f"{yt_env.proxy_url}/hosts?address_type=http", timeout=10) as rsp:
        assert json.loads(rsp.read()) == []


def test_yt_cli_lists_root(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)
    yt_cli = Path(sys.executable).parent / "yt"
    result = subprocess.run(
        [str(yt_cli), "--proxy", yt_env.proxy_url, "list", "/"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "YT_USE_TOKEN": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert "tmp" in result.stdout.split()


def test_structured_output_formats(yt_env: YtEnv) -> None:
    client = yt_env.client
    node = yt_env.path("formats")
    client.set(node, {"text": "héllo", "number": 7})
    as_json = json.loads(client.get(node, format="json"))
    assert as_json["number"] == 7
    as_yson = yson.loads(client.get(node, format=yt.YsonFormat(format="text")))
    assert as_yson["number"] == 7
    assert as_yson["text"] == "héllo"
