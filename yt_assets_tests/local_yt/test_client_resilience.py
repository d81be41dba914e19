"""Real faults against the local YT: injected 503s and dropped connections, a killed server,
restarts, several client processes at once. Local-only (skipped against a real cluster)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yt.wrapper as yt

from yt_assets.local_yt import LocalYT
from yt_assets.local_yt.server import LocalYtServer, serve_in_thread

from .conftest import read_file_bytes

WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import yt.wrapper as yt
    from yt_assets.local_yt.launcher import default_client_config

    proxy_url, table, tag, count, append = sys.argv[1:6]
    config = default_client_config(proxy_url)
    config["write_retries"]["chunk_size"] = 256 * 1024
    client = yt.YtClient(proxy=proxy_url, config=config)
    rows = ({"writer": tag, "n": n} for n in range(int(count)))
    client.write_table(yt.TablePath(table, append=append == "append"), rows)
    """
)

SLOW_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import yt.wrapper as yt
    from yt_assets.local_yt.launcher import default_client_config

    proxy_url, table, marker = sys.argv[1:4]
    config = default_client_config(proxy_url)
    config["write_retries"]["chunk_size"] = 64 * 1024
    config["proxy"]["retries"]["enable"] = False
    config["write_retries"]["enable"] = False
    client = yt.YtClient(proxy=proxy_url, config=config)

    def rows():
        for n in range(10**9):
            if n == 20_000:
                Path(marker).write_text("sent")
            if n > 20_000:
                time.sleep(0.01)
            yield {"n": n, "payload": "x" * 50}

    client.write_table(table, rows())
    """
)


def _start_writer(
    proxy_url: str, table: str, tag: str, count: int, append: bool
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER_SCRIPT,
            proxy_url,
            table,
            tag,
            str(count),
            "append" if append else "replace",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_light_commands_retry_through_503(local_yt: LocalYT) -> None:
    client = local_yt.client()
    local_yt.set_faults([{"command": "create", "mode": "503", "count": 2}])
    client.create("map_node", "//tmp/after_503", recursive=True)
    assert client.exists("//tmp/after_503")
    assert local_yt.get_faults()[0]["hits"] == 2


def test_retried_mutation_is_applied_once(local_yt: LocalYT) -> None:
    """The first attempt runs, its answer is lost; the retry (same mutation_id) gets its result."""
    client = local_yt.client()
    local_yt.set_faults([{"command": "create", "mode": "drop_after", "count": 1}])
    node_id = client.create("map_node", "//tmp/once")  # would fail "already exists" if re-applied
    assert client.get("//tmp/once/@id") == node_id
    assert local_yt.get_faults()[0]["hits"] == 1


def test_write_table_retries_through_503_and_drops(local_yt: LocalYT) -> None:
    client = local_yt.client({"write_retries": {"chunk_size": 128 * 1024}})
    local_yt.set_faults(
        [
            {"command": "write_table", "mode": "503", "count": 2},
            {"command": "write_table", "mode": "drop", "count": 1, "skip": 3},
        ]
    )
    rows = [{"n": n, "text": f"row {n}"} for n in range(30_000)]
    client.write_table("//tmp/faulty_write", rows)
    assert [row["n"] for row in client.read_table("//tmp/faulty_write")] == list(range(30_000))
    assert [rule["hits"] for rule in local_yt.get_faults()] == [2, 1]


def test_read_table_resumes_after_dropped_connections(local_yt: LocalYT) -> None:
    client = local_yt.client()
    table = "//tmp/faulty_read"
    client.write_table(table, ({"n": n, "pad": "y" * 100} for n in range(50_000)))
    local_yt.set_faults(
        [
            {"command": "read_table", "mode": "drop", "count": 1},
            {"command": "read_table", "mode": "drop_after", "count": 2},
            {"command": "read_table", "mode": "503", "count": 1},
        ]
    )
    numbers = [row["n"] for row in client.read_table(table)]
    assert numbers == list(range(50_000))
    assert [rule["hits"] for rule in local_yt.get_faults()] == [1, 2, 1]


def test_faults_from_the_start(tmp_path: Path) -> None:
    faults = [{"command": "get", "mode": "503", "count": 1}]
    with LocalYT(root=tmp_path / "yt", faults=faults) as server:
        assert server.client().get("//tmp/@type") == "map_node"
        assert server.get_faults()[0]["hits"] == 1
        server.clear_faults()
        assert server.get_faults() == []


def test_restart_keeps_everything(local_yt: LocalYT) -> None:
    client = local_yt.client()
    client.create("map_node", "//tmp/kept", recursive=True)
    client.write_table("//tmp/kept/table", [{"a": 1}, {"a": 2}])
    client.write_file("//tmp/kept/file", b"file content")
    client.set("//tmp/kept/@attribute", "value")
    port = local_yt.port
    local_yt.stop()
    local_yt.start()
    assert local_yt.port == port
    client = local_yt.client()
    assert list(client.read_table("//tmp/kept/table")) == [{"a": 1}, {"a": 2}]
    assert read_file_bytes(client, "//tmp/kept/file") == b"file content"
    assert client.get("//tmp/kept/@attribute") == "value"


def test_sigkill_during_write_keeps_the_old_table(local_yt: LocalYT, tmp_path: Path) -> None:
    client = local_yt.client()
    table = "//tmp/survivor"
    old_rows = [{"n": n, "payload": "old"} for n in range(1000)]
    client.write_table(table, old_rows)
    marker = tmp_path / "marker"
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER_SCRIPT, local_yt.proxy_url, table, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        while not marker.exists():
            assert writer.poll() is None, writer.communicate()[1].decode()[-2000:]
            time.sleep(0.05)
        local_yt.kill()
    finally:
        writer.kill()
        writer.wait()
    local_yt.start()
    client = local_yt.client()
    assert list(client.read_table(table)) == old_rows
    assert client.get(table + "/@row_count") == len(old_rows)
    # The killed writer's transaction still holds its lock until it expires, as on a cluster;
    # other tables are writable at once.
    client.write_table("//tmp/after_crash", [{"n": -1}])
    assert list(client.read_table("//tmp/after_crash")) == [{"n": -1}]


def test_two_processes_write_at_once(local_yt: LocalYT) -> None:
    client = local_yt.client()
    client.create("map_node", "//tmp/multi", recursive=True)
    client.create("table", "//tmp/multi/shared")
    writers = [
        _start_writer(local_yt.proxy_url, "//tmp/multi/own_a", "a", 20_000, append=False),
        _start_writer(local_yt.proxy_url, "//tmp/multi/own_b", "b", 20_000, append=False),
        _start_writer(local_yt.proxy_url, "//tmp/multi/shared", "a", 10_000, append=True),
        _start_writer(local_yt.proxy_url, "//tmp/multi/shared", "b", 10_000, append=True),
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr.decode()[-3000:]
    for tag in ("a", "b"):
        rows = list(client.read_table(f"//tmp/multi/own_{tag}"))
        assert rows == [{"writer": tag, "n": n} for n in range(20_000)]
    shared = list(client.read_table("//tmp/multi/shared"))
    assert len(shared) == 20_000
    for tag in ("a", "b"):
        assert [row["n"] for row in shared if row["writer"] == tag] == list(range(10_000))


def test_client_errors_are_yt_errors_after_server_death(local_yt: LocalYT) -> None:
    client = local_yt.client({"proxy": {"retries": {"enable": False}}})
    local_yt.kill()
    with pytest.raises((yt.YtError, OSError)):
        client.exists("//tmp")


def test_multi_range_read_resumes_after_dropped_connections(local_yt: LocalYT) -> None:
    client = local_yt.client()
    table = "//tmp/ranges"
    client.write_table(table, ({"n": n, "pad": "z" * 100} for n in range(30_000)))
    ranges = [
        {"lower_limit": {"row_index": 100}, "upper_limit": {"row_index": 5_000}},
        {"lower_limit": {"row_index": 20_000}, "upper_limit": {"row_index": 29_000}},
    ]
    local_yt.set_faults([{"command": "read_table", "mode": "drop_after", "count": 4}])
    numbers = [row["n"] for row in client.read_table(yt.TablePath(table, ranges=ranges))]
    assert numbers == list(range(100, 5_000)) + list(range(20_000, 29_000))
    assert local_yt.get_faults()[0]["hits"] == 4


def test_a_request_arriving_while_the_server_closes_gets_a_retriable_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = LocalYtServer(tmp_path / "yt", port=0)
    serve_in_thread(server)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/api/v4/exists?path=//sys")
        first = connection.getresponse()
        assert first.status == 200 and b"true" in first.read()
        server.shutdown()  # no new connections are served; this kept-alive one still is
        server.close()

        with caplog.at_level(logging.ERROR):
            connection.request("GET", "/api/v4/exists?path=//sys")
            answer = connection.getresponse()
            body = answer.read()
    finally:
        connection.close()

    assert answer.status == 503  # yt.wrapper retries it, as when a proxy goes away
    assert "shutting down" in json.loads(body)["message"]
    assert "shutting down" in answer.headers["X-YT-Error"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def _send_raw_write(local_yt: LocalYT, table: str, chunks: list[bytes], *, cut: bool) -> bytes:
    """PUT write_table with a chunked YSON text body of ``chunks`` (each sent as framed; a
    ``cut`` one goes away after them, without the last chunk): the response body, if any."""
    host, port = local_yt.proxy_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("PUT", "/api/v4/write_table")
    connection.putheader("X-YT-Header-Format", "json")
    input_format = {"$value": "yson", "$attributes": {"format": "text"}}
    connection.putheader(
        "X-YT-Parameters", json.dumps({"path": table, "input_format": input_format})
    )
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for chunk in chunks:
        connection.send(chunk)
    try:
        if cut:
            connection.sock.shutdown(socket.SHUT_RDWR)
            return b""
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return response.read()
    finally:
        connection.close()


def _framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("cut_inside", ["a row", "the chunk framing"])
def test_a_write_body_cut_midway_keeps_the_old_table(local_yt: LocalYT, cut_inside: str) -> None:
    """The client goes away mid-body (a YSON write, the one the server keeps as it came): the
    table keeps its rows, no partial chunk shows, and the next write works."""
    client = local_yt.client()
    table = "//tmp/cut_body"
    rows = b"".join(b"{n=%d};" % n for n in range(5000))
    client.create("table", table)
    _send_raw_write(local_yt, table, [_framed(rows)], cut=False)  # the request itself is right
    assert client.get(table + "/@row_count") == 5000
    client.write_table(table, [{"n": -1}])
    if cut_inside == "a row":
        chunks = [_framed(b"".join(b"{n=%d};" % n for n in range(2500)) + b"{n=25")]
    else:  # whole rows, then a chunk shorter than its size line says
        chunks = [_framed(rows), b"%x\r\n%s" % (100, b"{n=1};")]
    _send_raw_write(local_yt, table, chunks, cut=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.get(table + "/@lock_count"):
        time.sleep(0.05)  # the server notices the cut and unlocks the table
    assert list(client.read_table(table)) == [{"n": -1}]
    client.write_table(table, [{"n": n} for n in range(3)])
    assert list(client.read_table(table)) == [{"n": 0}, {"n": 1}, {"n": 2}]
