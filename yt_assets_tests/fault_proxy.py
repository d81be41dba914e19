"""An HTTP proxy on 127.0.0.1 that injects real network faults in front of an S3 server.

Each request (``GET``/``HEAD``, and the writes ``PUT``/``POST``/``DELETE``) is forwarded to the upstream S3 server, unless it draws a fault:

- ``throttle``: answered ``503 SlowDown`` without reaching upstream;
- ``reset``: the connection is reset (TCP RST) before any answer;
- ``cut``: the upstream answer's headers (with its full ``Content-Length``) and half of its body
  are sent, then the connection is closed;
- ``slow``: the answer is held ``slow_seconds`` before its first byte (longer than the client's
  read timeout, it is a timeout).

With ``close_after_answer``, every connection is closed after its answer without a
``Connection: close`` header, as a server closing idle kept-alive connections does.

Faults are drawn per request from a seeded generator, with a probability per kind, and only for
the request kinds in ``kinds`` (``list``: ``ListObjectsV2``; ``get``: object downloads; ``head``;
``put``: ``PutObject`` and ``UploadPart``; ``post``: creating and completing a multipart upload;
``delete``; a write's body is read before its fault, so a throttled write is a clean ``503``).
``counts`` says how many of each happened, so a test can show that the faults were real.
Requests are forwarded with their headers unchanged (SigV4 signatures stay valid for servers that
don't check the ``Host`` port, as moto's).

Example::

    with FaultProxy(s3_server.endpoint_url, FaultPlan(throttle=0.2, cut=0.05)) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.endpoint_url, ...)
        ...
        assert proxy.counts["cut"] > 0
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from yt_assets_tests.s3_fake_http import LoopbackHTTPServer, error_xml, query_of

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass(frozen=True)
class FaultPlan:
    """Probability of each fault per eligible request, and which requests are eligible."""

    throttle: float = 0.0
    reset: float = 0.0
    cut: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.5
    close_after_answer: bool = False
    kinds: frozenset[str] = frozenset({"list", "get", "head"})
    seed: int = 1234


def request_kind(method: str, path: str) -> str:
    """``list`` (``ListObjectsV2``), ``head``, ``get`` (an object), ``put``, ``post``,
    ``delete`` or ``other``."""
    if method == "HEAD":
        return "head"
    if method in ("PUT", "POST", "DELETE"):
        return method.lower()
    parts = urlsplit(path)
    if method == "GET" and "list-type" in query_of(path):
        return "list"
    if method == "GET" and parts.path.strip("/").count("/") >= 1:
        return "get"
    return "other"


class FaultProxy(LoopbackHTTPServer):
    """Serves on 127.0.0.1 (a free port) and forwards to ``upstream_url`` with faults."""

    def __init__(self, upstream_url: str, plan: FaultPlan) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer._serve(self, "GET")

            def do_HEAD(self) -> None:
                outer._serve(self, "HEAD")

            def do_PUT(self) -> None:
                outer._serve(self, "PUT")

            def do_POST(self) -> None:
                outer._serve(self, "POST")

            def do_DELETE(self) -> None:
                outer._serve(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def set_plan(self, plan: FaultPlan) -> None:
        """Change the faults from the next request on (e.g. none while a test seeds data)."""
        with self._lock:
            self.plan = plan

    def _draw(self, kind: str) -> str | None:
        with self._lock:
            plan = self.plan
            self.counts[f"{kind}_requests"] += 1
            if kind not in plan.kinds:
                return None
            draw = self._random.random()
            for fault in ("throttle", "reset", "cut", "slow"):
                probability = float(getattr(plan, fault))
                if draw < probability:
                    self.counts[fault] += 1
                    self.counts[f"{kind}_{fault}"] += 1
                    return fault
                draw -= probability
            return None

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        try:
            self._handle(handler, method)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (e.g. its read timed out)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        kind = request_kind(method, handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request_body = handler.rfile.read(length) if length else None
        fault = self._draw(kind)
        if fault == "reset":
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.close_connection = True
            handler.connection.close()
            return
        if fault == "throttle":
            payload = error_xml("SlowDown", "Please reduce your request rate.").encode()
            handler.send_response(503)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(payload)
            return
        status, headers, body = self._forward(handler, method, request_body)
        if fault == "slow":
            time.sleep(self.plan.slow_seconds)
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        length = headers_value(headers, "content-length")
        handler.send_header("Content-Length", length if method == "HEAD" else str(len(body)))
        handler.end_headers()
        handler.close_connection = self.plan.close_after_answer
        if method == "HEAD":
            return
        if fault == "cut" and len(body) >= 2:
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(body)

    def _forward(
        self, handler: BaseHTTPRequestHandler, method: str, request_body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        # The proxy answered "100 Continue" itself; upstream gets the whole body at once.
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "expect"}
        try:
            connection.request(method, handler.path, body=request_body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.getheaders(), body
        finally:
            connection.close()


def headers_value(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "0")
