"""Load on the local YT: hundreds of short-lived clients, thousands of requests, and the server
keeps answering with its file descriptors and threads bounded. Loopback only, bounded in client
count (500) and time (each wait has a deadline). Local-only: it reads the server's /proc entry."""

from __future__ import annotations

import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from yt.wrapper.http_helpers import _get_session

from yt_assets.local_yt import LocalYT

CLIENTS = 500
CONCURRENT_CLIENTS = 24
TABLE_CLIENT_EVERY = 25
SETTLE_DEADLINE_SECONDS = 120.0
# Descriptors/threads the server may hold above its idle level once every client is gone.
SLACK = 32
GROWTH_SLACK = 4
LINGERING_CLIENTS = 40


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _settle(pid: int, limit_fds: int, limit_threads: int) -> tuple[int, int]:
    """Wait (bounded) for the server to release what finished clients held."""
    deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
    while True:
        fds, threads = _descriptors(pid), _threads(pid)
        if (fds <= limit_fds and threads <= limit_threads) or time.monotonic() > deadline:
            return fds, threads
        time.sleep(0.2)


def _one_client(server: LocalYT, directory: str, number: int) -> int:
    """A short-lived client: a few reads and writes, then its connections are closed."""
    client = server.client()
    path = f"{directory}/c{number}"
    try:
        client.create("map_node", path)
        client.set(f"{path}/@owner_number", number)
        assert client.get(f"{path}/@owner_number") == number
        expected = []
        if number % TABLE_CLIENT_EVERY == 0:  # some clients also write and read a table
            client.write_table(f"{path}/t", [{"n": number}])
            assert list(client.read_table(f"{path}/t")) == [{"n": number}]
            expected = ["t"]
        assert client.list(path) == expected
        client.remove(path, recursive=True)
        return number
    finally:
        _get_session(client).close()


def _wave(server: LocalYT, first: int, count: int) -> None:
    with ThreadPoolExecutor(max_workers=CONCURRENT_CLIENTS) as pool:
        numbers = range(first, first + count)
        finished = list(pool.map(lambda n: _one_client(server, "//tmp/load", n), numbers))
    assert finished == list(numbers)
    gc.collect()


@pytest.mark.slow
def test_hundreds_of_short_lived_clients_leave_the_server_bounded(local_yt: LocalYT) -> None:
    pid = local_yt.pid
    assert pid is not None
    warm = local_yt.client()
    warm.create("map_node", "//tmp/load", recursive=True)
    _get_session(warm).close()
    del warm
    idle_fds, idle_threads = _descriptors(pid), _threads(pid)
    # SQLite keeps the descriptor of a closed connection for reuse while others hold locks, so
    # the level after load may reach the peak count of concurrent connections, but no more.
    fd_bound = idle_fds + CONCURRENT_CLIENTS + SLACK

    _wave(local_yt, 0, CLIENTS // 2)
    first_fds, first_threads = _settle(pid, fd_bound, idle_threads + SLACK)
    _wave(local_yt, CLIENTS // 2, CLIENTS - CLIENTS // 2)
    second_fds, second_threads = _settle(pid, first_fds, idle_threads + SLACK)

    for fds, threads in ((first_fds, first_threads), (second_fds, second_threads)):
        assert fds <= fd_bound, f"{fds} descriptors open (idle: {idle_fds})"
        assert threads <= idle_threads + SLACK, f"{threads} threads (idle: {idle_threads})"
    # Twice the clients, no more descriptors: nothing accumulates per client.
    assert second_fds <= first_fds + GROWTH_SLACK

    # Still answering, with the state intact.
    after = local_yt.client()
    assert after.list("//tmp/load") == []
    after.write_table("//tmp/load/final", [{"ok": True}])
    assert list(after.read_table("//tmp/load/final")) == [{"ok": True}]


def test_clients_that_never_close_their_connections_do_not_pin_server_threads(
    local_yt: LocalYT,
) -> None:
    pid = local_yt.pid
    assert pid is not None
    idle_threads = _threads(pid)
    clients = []
    for _ in range(LINGERING_CLIENTS):
        client = local_yt.client()
        client.exists("//tmp")
        clients.append(client)
    peak_fds, peak_threads = _descriptors(pid), _threads(pid)
    assert peak_threads >= idle_threads + LINGERING_CLIENTS  # one thread per open connection
    clients.clear()
    gc.collect()  # the clients' sockets are closed by the garbage collector only
    fds, threads = _settle(pid, peak_fds - LINGERING_CLIENTS, idle_threads + 4)
    assert threads <= idle_threads + 4
    assert fds <= peak_fds - LINGERING_CLIENTS  # at least each connection's socket is gone
