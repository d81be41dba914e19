"""The local YT state layer's Cypress commands, called directly (no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt.yson

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import (
    AlreadyExistsError,
    GenericError,
    InvalidYPath,
    ResolveError,
)
from yt_assets.local_yt.ypath import PathToken, parse_rich_path, split_ypath


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    instance = Cluster(tmp_path / "root")
    yield instance
    instance.close()


def test_initial_tree_has_tmp_home_sys_and_no_client_config(cluster: Cluster) -> None:
    assert cluster.list("/") == ["home", "sys", "tmp"]
    assert cluster.exists("//sys/client_config") is False
    with pytest.raises(ResolveError) as error:
        cluster.get("//sys/client_config")
    assert error.value.code == 500
    assert 'no child with key "client_config"' in error.value.message


def test_create_recursive_ignore_existing_force(cluster: Cluster) -> None:
    with pytest.raises(ResolveError):
        cluster.create("map_node", "//home/a/b")
    node_id = cluster.create("map_node", "//home/a/b", recursive=True)
    assert cluster.get("//home/a/b/@id") == node_id
    assert cluster.get("//home/a/b/@type") == "map_node"
    with pytest.raises(AlreadyExistsError) as error:
        cluster.create("map_node", "//home/a/b")
    assert error.value.code == 501
    assert cluster.create("map_node", "//home/a/b", ignore_existing=True) == node_id
    with pytest.raises(AlreadyExistsError):
        cluster.create("table", "//home/a/b", ignore_existing=True)
    replaced = cluster.create("table", "//home/a/b", force=True)
    assert replaced != node_id
    assert cluster.get("//home/a/b/@type") == "table"


def test_get_tree_shows_tables_as_entities_with_requested_attributes(cluster: Cluster) -> None:
    cluster.create("table", "//home/d/t", recursive=True)
    cluster.create("file", "//home/d/f")
    cluster.create("map_node", "//home/d/sub")
    assert cluster.get("//home/d") == {
        "t": yt.yson.YsonEntity(),
        "f": yt.yson.YsonEntity(),
        "sub": {},
    }
    tree = cluster.get("//home/d", attributes=["type"])
    assert tree.attributes == {"type": "map_node"}
    assert tree["t"].attributes == {"type": "table"}
    assert tree["sub"].attributes == {"type": "map_node"}
    root = cluster.get("//")
    assert set(root) == {"home", "sys", "tmp"}


def test_list_with_attributes_and_max_size(cluster: Cluster) -> None:
    for name in ("c", "a", "b"):
        cluster.create("table", f"//tmp/{name}")
    assert cluster.list("//tmp") == ["a", "b", "c"]
    listed = cluster.list("//tmp", attributes=["type", "row_count"])
    assert [str(item) for item in listed] == ["a", "b", "c"]
    assert listed[0].attributes == {"type": "table", "row_count": 0}
    truncated: Any = cluster.list("//tmp", max_size=2)
    assert list(truncated) == ["a", "b"]
    assert truncated.attributes["incomplete"] is True


def test_attributes_set_get_remove_and_all_attributes(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t", attributes={"my": {"x": [1, 2]}})
    assert cluster.get("//tmp/t/@my") == {"x": [1, 2]}
    assert cluster.get("//tmp/t/@my/x/1") == 2
    cluster.set("//tmp/t/@my/y", "z")
    assert cluster.get("//tmp/t/@my") == {"x": [1, 2], "y": "z"}
    cluster.set("//tmp/t/@other", 5)
    everything = cluster.get("//tmp/t/@")
    for name in ("id", "type", "row_count", "schema", "creation_time", "modification_time", "my"):
        assert name in everything
    assert everything["path"] == "//tmp/t"
    assert cluster.get("//tmp/t/@", attributes=["other", "type", "missing"]) == {
        "other": 5,
        "type": "table",
    }
    assert cluster.exists("//tmp/t/@other")
    cluster.remove("//tmp/t/@other")
    assert not cluster.exists("//tmp/t/@other")
    with pytest.raises(ResolveError):
        cluster.get("//tmp/t/@other")
    cluster.remove("//tmp/t/@other", force=True)
    with pytest.raises(GenericError):
        cluster.set("//tmp/t/@row_count", 10)
    assert "my" in cluster.list("//tmp/t/@")


def test_set_builds_nodes_from_values_and_documents_hold_values(cluster: Cluster) -> None:
    cluster.set("//tmp/cfg", {"a": 1, "b": {"c": "d"}, "l": [1, 2]})
    assert cluster.get("//tmp/cfg") == {"a": 1, "b": {"c": "d"}, "l": [1, 2]}
    assert cluster.get("//tmp/cfg/a/@type") == "int64_node"
    assert cluster.get("//tmp/cfg/b/@type") == "map_node"
    cluster.set("//tmp/cfg/a", "text")
    assert cluster.get("//tmp/cfg/a") == "text"
    with pytest.raises(ResolveError):
        cluster.set("//tmp/x/y", 1)
    cluster.set("//tmp/x/y", 1, recursive=True)
    assert cluster.get("//tmp/x") == {"y": 1}

    cluster.create("document", "//tmp/doc", attributes={"value": {"k": {"n": 1}}})
    assert cluster.get("//tmp/doc") == {"k": {"n": 1}}
    cluster.set("//tmp/doc/k/m", 2)
    assert cluster.get("//tmp/doc/k") == {"n": 1, "m": 2}
    cluster.remove("//tmp/doc/k/n")
    assert cluster.get("//tmp/doc") == {"k": {"m": 2}}
    assert cluster.exists("//tmp/doc/k/m") and not cluster.exists("//tmp/doc/k/n")


def test_remove_recursive_and_force(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/a/b/t", recursive=True)
    with pytest.raises(GenericError):
        cluster.remove("//tmp/a")
    cluster.remove("//tmp/a", recursive=True)
    assert not cluster.exists("//tmp/a")
    with pytest.raises(ResolveError):
        cluster.remove("//tmp/a")
    cluster.remove("//tmp/a", force=True)


def test_move_and_copy(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/src/t", recursive=True, attributes={"tag": "x"})
    cluster.write_table("//tmp/src/t", [{"a": 1}])
    copied = cluster.copy("//tmp/src", "//tmp/copy")
    assert cluster.get("//tmp/copy/t/@tag") == "x"
    assert list(cluster.read_table("//tmp/copy/t")[1]) == [{"a": 1}]
    assert cluster.get("//tmp/copy/@id") == copied
    with pytest.raises(AlreadyExistsError):
        cluster.copy("//tmp/src", "//tmp/copy")
    assert cluster.copy("//tmp/src", "//tmp/copy", ignore_existing=True) == copied
    moved = cluster.move("//tmp/src/t", "//tmp/new/place", recursive=True)
    assert not cluster.exists("//tmp/src/t")
    assert cluster.get("//tmp/new/place/@id") == moved
    assert list(cluster.read_table("//tmp/new/place")[1]) == [{"a": 1}]
    with pytest.raises(AlreadyExistsError):
        cluster.move("//tmp/copy/t", "//tmp/new/place")
    cluster.move("//tmp/copy/t", "//tmp/new/place", force=True)
    with pytest.raises(GenericError):
        cluster.move("//tmp/new", "//tmp/new/inside")


def test_node_id_paths(cluster: Cluster) -> None:
    node_id = cluster.create("table", "//tmp/t", attributes={"k": "v"})
    cluster.write_table("//tmp/t", [{"a": 1}])
    assert cluster.get(f"#{node_id}/@k") == "v"
    assert cluster.get(f"#{node_id}/@path") == "//tmp/t"
    assert list(cluster.read_table(f"#{node_id}")[1]) == [{"a": 1}]
    map_id = cluster.get("//tmp/@id")
    assert cluster.get(f"#{map_id}/t/@id") == node_id
    assert not cluster.exists("#1-2-3-4")
    with pytest.raises(ResolveError):
        cluster.get("#1-2-3-4")


def test_rich_path_parsing() -> None:
    rich = parse_rich_path("<append=%true>//home/t{a,b}[#10:#20]")
    assert rich.path == "//home/t"
    assert rich.append is True
    assert rich.columns == ["a", "b"]
    assert rich.ranges == [{"lower_limit": {"row_index": 10}, "upper_limit": {"row_index": 20}}]
    yson_path = yt.yson.to_yson_type("//t", attributes={"append": True})
    assert parse_rich_path(yson_path).append is True
    assert split_ypath("//a\\/b/@attr/x") == (
        "/",
        [PathToken("child", "a/b"), PathToken("attribute", "attr"), PathToken("child", "x")],
    )
    assert split_ypath("#1-2-3-4/@") == ("#1-2-3-4", [PathToken("all_attributes")])
    assert split_ypath("//") == ("/", [])
    assert split_ypath("/") == ("/", [])
    assert split_ypath("/@attr") == ("/", [PathToken("attribute", "attr")])
    assert split_ypath("//tmp/f&/@touched") == (
        "/",
        [
            PathToken("child", "tmp"),
            PathToken("child", "f", keep_link=True),
            PathToken("attribute", "touched"),
        ],
    )
    with pytest.raises(InvalidYPath):
        split_ypath("relative/path")


def test_files_and_file_cache(cluster: Cluster) -> None:
    cluster.create("file", "//tmp/f")
    cluster.write_file("//tmp/f", [b"hello ", b"world"])
    assert b"".join(cluster.read_file("//tmp/f")) == b"hello world"
    assert b"".join(cluster.read_file("//tmp/f", offset=6)) == b"world"
    assert b"".join(cluster.read_file("//tmp/f", offset=2, length=3)) == b"llo"
    cluster.write_file("<append=%true>//tmp/f", [b"!"])
    assert b"".join(cluster.read_file("//tmp/f")) == b"hello world!"
    content = cluster.file_content_path("//tmp/f")
    assert content.read_bytes() == b"hello world!"

    import hashlib

    md5 = hashlib.md5(b"hello world!").hexdigest()
    cache = "//tmp/yt_wrapper/file_storage/new_cache"
    cluster.create("map_node", cache, recursive=True)
    assert cluster.get_file_from_cache(md5, cache) == ""
    with pytest.raises(GenericError):
        cluster.put_file_to_cache("//tmp/f", "0" * 32, cache)
    cached = cluster.put_file_to_cache("//tmp/f", md5, cache)
    assert cached == f"{cache}/{md5[-2:]}/{md5}"
    assert cluster.get_file_from_cache(md5, cache) == cached
    assert b"".join(cluster.read_file(cached)) == b"hello world!"
