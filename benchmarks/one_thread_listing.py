"""A probe behind section 1's reading (issue 13 item 1): how fast could a listing without threads be?

Not the project's code and not a section of its own. It lists the 100,000-key partitioned
layout of benchmark 1 the way obstore's fan-out mode does: one delimited request, then each
sub-prefix with its own ``Prefix``. All of it runs in the calling thread. ``N`` requests are in
flight on non-blocking sockets (``selectors``), each signed with botocore's ``S3SigV4Auth`` and
read with the project's page reader (``fast_listing._parse_plain_listing``); objects come out
in key order. There is no Python thread, so no interpreter lock changes hands. It is timed next
to ours as shipped (8 listing threads) and obstore, paired by round as in ``listing_gap.py``,
also after a sequential start of ``SEQUENTIAL_PAGES`` pages as ours makes (item 0), the rest
then listed past the start's last key. Before timing, it checks that both ways list exactly what
ours lists.

It covers only what this layout needs: plain HTTP on loopback, 200 responses with a
``Content-Length``, and no retries, TLS or fallback to botocore. It is a measure of what is
left, not a lister.

    benchmarks/.venv/bin/python benchmarks/one_thread_listing.py --rounds 11
"""

from __future__ import annotations

import argparse
import selectors
import socket
from collections import deque
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from bench_common import ACCESS_KEY, REGION, SECRET_KEY, time_in_rotation
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from listing_gap import OBSTORE, partitioned_listing, print_paired
from listing_speed import PARTITIONED, obstore_list

from yt_assets.s3 import fast_listing
from yt_assets.s3.fast_listing import SEQUENTIAL_PAGES
from yt_assets.s3.listing import iter_s3_objects
from yt_assets.s3.pages import ListingPage, S3Object, S3Row, s3_objects


class _Connection:
    """A kept-alive connection with the request it is waiting for."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.received = bytearray()
        self.body_start: int | None = None
        self.body_length = 0
        self.unit = ""


def _listing_query(prefix: str, **extra: str) -> dict[str, str]:
    """A ``ListObjectsV2`` query of pages of 1,000 keys under ``prefix``."""
    return {"list-type": "2", "prefix": prefix, "max-keys": "1000", **extra}


def _read_page(body: bytes) -> ListingPage:
    page = fast_listing._parse_plain_listing(body)
    if page is None:
        raise RuntimeError("a page the plain reader can't read")
    return page


class OneThreadLister:
    """``in_flight`` connections to ``endpoint``, driven from the calling thread."""

    def __init__(self, endpoint: str, bucket: str, in_flight: int) -> None:
        parts = urlsplit(endpoint)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._bucket = bucket
        self._credentials = Credentials(ACCESS_KEY, SECRET_KEY)
        self._selector = selectors.DefaultSelector()
        self._idle = [_Connection(self._host, self._port) for _ in range(in_flight)]
        for connection in self._idle:
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _send(self, unit: str, query: dict[str, str]) -> None:
        connection = self._idle.pop()
        target = f"/{self._bucket}?{percent_encode_sequence(query)}"
        request = AWSRequest(method="GET", url=f"http://{self._host}:{self._port}{target}")
        S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", REGION).add_auth(request)
        head = f"GET {target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in request.headers.items()
        )
        connection.received.clear()
        connection.body_start, connection.unit = None, unit
        connection.sock.setblocking(True)
        connection.sock.sendall((head + "\r\n").encode())
        connection.sock.setblocking(False)

    def _finished_bodies(self) -> list[tuple[str, bytes]]:
        """Wait for readable connections; the (unit, body) of each response now complete."""
        finished = []
        for key, _ in self._selector.select(timeout=30):
            connection: _Connection = key.data
            while True:
                try:
                    chunk = connection.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                if not chunk:
                    raise ConnectionError("the server closed a connection")
                connection.received += chunk
            if connection.body_start is None:
                end = connection.received.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = bytes(connection.received[:end]).decode("latin-1").lower()
                if not head.startswith("http/1.1 200"):
                    raise RuntimeError(f"not a 200 listing: {head.splitlines()[0]}")
                lengths = [
                    line for line in head.split("\r\n") if line.startswith("content-length:")
                ]
                if not lengths:
                    raise RuntimeError("a response without Content-Length")
                connection.body_start = end + 4
                connection.body_length = int(lengths[0].split(":", 1)[1])
            start = connection.body_start
            if len(connection.received) - start >= connection.body_length:
                body = bytes(connection.received[start : start + connection.body_length])
                finished.append((connection.unit, body))
                self._idle.append(connection)
        return finished

    def _one_page(self, unit: str, query: dict[str, str]) -> ListingPage:
        self._send(unit, query)
        bodies: list[tuple[str, bytes]] = []
        while not bodies:
            bodies = self._finished_bodies()
        return _read_page(bodies[0][1])

    def pages(self, prefix: str, sequential_pages: int = 0) -> Iterator[list[S3Row]]:
        """The first ``sequential_pages`` pages one at a time (as our lister starts), then the
        level's own objects and each later sub-prefix's pages, in key order."""
        query = _listing_query(prefix)
        last_key = ""
        for _ in range(sequential_pages):
            page = self._one_page(prefix, query)
            yield page.objects
            if not page.is_truncated or not page.next_continuation_token:
                return
            last_key = page.objects[-1][0]
            query = {**query, "continuation-token": page.next_continuation_token}
        level = self._one_page("", _listing_query(prefix, delimiter="/"))
        if level.is_truncated:
            raise RuntimeError("the probe handles one page of sub-prefixes only")
        yield [row for row in level.objects if row[0] > last_key]
        stopped_in = last_key[: last_key.rfind("/") + 1] if last_key else ""
        later = [sub for sub in level.common_prefixes if sub > last_key]
        units = ([stopped_in] if stopped_in and stopped_in != prefix else []) + later
        waiting = deque(units)
        pages: dict[str, deque[list[S3Row]]] = {}
        done: set[str] = set()

        def start_more() -> None:
            while self._idle and waiting:
                unit = waiting.popleft()
                pages[unit] = deque()
                after = {"start-after": last_key} if unit == stopped_in else {}
                self._send(unit, _listing_query(unit, **after))

        start_more()
        for unit in units:
            while True:
                if pages.get(unit):
                    yield pages[unit].popleft()
                elif unit in done:
                    break
                else:
                    for finished_unit, body in self._finished_bodies():
                        page = _read_page(body)
                        pages[finished_unit].append(page.objects)
                        if page.is_truncated and page.next_continuation_token:
                            token = {"continuation-token": page.next_continuation_token}
                            self._send(finished_unit, _listing_query(finished_unit, **token))
                        else:
                            done.add(finished_unit)
                    start_more()

    def objects(self, prefix: str, sequential_pages: int = 0) -> Iterator[S3Object]:
        for rows in self.pages(prefix, sequential_pages):
            yield from s3_objects(row for row in rows if not row[0].endswith("/"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    bucket, prefix = PARTITIONED.bucket, PARTITIONED.prefix
    with partitioned_listing() as (server, client, key_count):
        ours = [tuple(obj) for obj in iter_s3_objects(client, bucket, prefix)]
        probe = OneThreadLister(server.endpoint_url, bucket, in_flight=8)
        for sequential in (0, SEQUENTIAL_PAGES):
            if [tuple(obj) for obj in probe.objects(prefix, sequential)] != ours:
                raise RuntimeError("the probe does not list what ours lists")

        def one_thread(in_flight: int, sequential: int = 0) -> Callable[[], int]:
            lister = OneThreadLister(server.endpoint_url, bucket, in_flight)
            return lambda: sum(1 for _ in lister.objects(prefix, sequential))

        methods: dict[str, Callable[[], int]] = {
            "ours as shipped (8 listing threads)": lambda: sum(
                1 for _ in iter_s3_objects(client, bucket, prefix)
            ),
            "one thread, 8 requests in flight": one_thread(8),
            "one thread, 4 requests in flight": one_thread(4),
            f"one thread, 4 in flight, after {SEQUENTIAL_PAGES} sequential pages as ours": one_thread(
                4, SEQUENTIAL_PAGES
            ),
            f"one thread, 8 in flight, after {SEQUENTIAL_PAGES} sequential pages as ours": one_thread(
                8, SEQUENTIAL_PAGES
            ),
            OBSTORE: obstore_list(server, PARTITIONED, 8),
        }
        timings = time_in_rotation(methods, args.rounds, key_count, server_pid=server.pid)
    print_paired(timings, OBSTORE)


if __name__ == "__main__":
    main()
