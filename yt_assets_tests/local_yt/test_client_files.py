"""Files and the file cache through the real ``yt.wrapper`` client."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yt.wrapper as yt

from .conftest import YtEnv, read_file_bytes


def test_write_and_read_file(yt_env: YtEnv) -> None:
    client = yt_env.client
    path = yt_env.path("files/data.bin")
    payload = os.urandom(3 * 1024 * 1024 + 17)
    client.create("map_node", yt_env.path("files"))
    client.write_file(path, payload)
    assert read_file_bytes(client, path) == payload
    assert client.get(path + "/@uncompressed_data_size") == len(payload)
    assert read_file_bytes(client, path, offset=10, length=20) == payload[10:30]


def test_write_file_from_stream_and_append(yt_env: YtEnv, tmp_path: Path) -> None:
    client = yt_env.client
    local = tmp_path / "local.txt"
    local.write_bytes(b"first line\n")
    path = yt_env.path("appended.txt")
    with open(local, "rb") as stream:
        client.write_file(path, stream)
    client.write_file(yt.FilePath(path, append=True), b"second line\n")
    assert read_file_bytes(client, path) == b"first line\nsecond line\n"


def test_read_missing_file_is_a_resolve_error(yt_env: YtEnv) -> None:
    with pytest.raises(yt.YtResponseError) as error:
        read_file_bytes(yt_env.client, yt_env.path("missing"))
    assert error.value.is_resolve_error()


def test_file_cache(yt_env: YtEnv) -> None:
    client = yt_env.client
    cache = yt_env.path("file_cache")
    payload = b"cached content " * 1000
    md5 = hashlib.md5(payload).hexdigest()
    assert client.get_file_from_cache(md5, cache_path=cache) in ("", None)

    source = yt_env.path("to_cache")
    client.write_file(source, payload, compute_md5=True)
    cached_path = client.put_file_to_cache(source, md5, cache_path=cache)
    assert cached_path
    assert client.get_file_from_cache(md5, cache_path=cache) == cached_path
    assert read_file_bytes(client, cached_path) == payload


def test_upload_file_to_cache(yt_env: YtEnv, tmp_path: Path) -> None:
    client = yt_env.new_client({"remote_temp_files_directory": yt_env.path("tmp_files")})
    local = tmp_path / "script.py"
    local.write_text("print('hello')\n")
    first = yt.file_commands.upload_file_to_cache(str(local), client=client)
    second = yt.file_commands.upload_file_to_cache(str(local), client=client)
    assert first == second
    assert read_file_bytes(client, first) == local.read_bytes()
