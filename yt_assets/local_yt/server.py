"""The HTTP surface of the local YT: a loopback server speaking the YT HTTP proxy API v4.

It speaks what ``yt.wrapper`` sends (see ``http_driver.py`` of the client): command descriptors on
``GET /api/v4``, ``GET /hosts`` for heavy-proxy discovery, commands on ``/api/v4/<command>`` with
parameters in ``X-YT-Parameters`` (or in the body of volatile commands without input), chunked and
``gzip``/``deflate`` request bodies (decoded lazily: a table is never held in memory), streamed
tabular output with ``X-YT-Response-Parameters``, optional framing (``X-YT-Accept-Framing``) and
errors in ``X-YT-Error`` headers, or in HTTP trailers when they happen mid-stream.

The stdlib :class:`http.server.ThreadingHTTPServer` is enough here (one thread per connection,
HTTP/1.1 keep-alive); request and response bodies are streamed by hand in this module.

Usage::

    server = LocalYtServer(Path(".yt_local"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = yt.wrapper.YtClient(proxy=server.proxy_url, config={"enable_token": False})
    server.shutdown(); server.close()
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

import yt.yson as yson
from yt.yson.yson_types import NotUnicodeError

from .cluster import Cluster
from .commands import (
    BinaryResult,
    CommandDispatcher,
    CommandResult,
    CommandSpec,
    StructuredResult,
    TabularResult,
)
from .exceptions import GenericError, YtLocalError
from .faults import FaultConfigError, FaultInjector
from .formats import (
    decode_json_strings,
    dump_structured,
    format_name,
    json_to_value,
    parse_format,
    value_to_json,
)
from .idle import IdleMonitor
from .operations import OperationEngine
from .values import to_plain
from .web_view import WEB_VIEW_PREFIX, render_web_page

logger = logging.getLogger("yt_assets.local_yt.server")

LOOPBACK_HOST = "127.0.0.1"
API_VERSION = "v4"
IO_CHUNK_SIZE = 1 << 16
RESPONSE_FLUSH_SIZE = 1 << 16
FRAME_DATA_TAG = 0x01
MAX_ERROR_HEADER_SIZE = 16 * 1024
ERROR_TRAILERS = ("X-YT-Error", "X-YT-Response-Code", "X-YT-Response-Message")

try:  # brotli is optional: the client only sends "br" when it has brotli itself
    import brotli as _brotli  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None


class BadRequest(GenericError):
    """The HTTP request itself is malformed (headers, encoding, method)."""


class ConnectionDropped(Exception):
    """Raised to abandon a request without any answer (fault injection)."""


# ------------------------------------------------------------------------------ request body


class _LengthBodyReader(io.RawIOBase):
    """Exactly ``length`` bytes of a request body with ``Content-Length``."""

    def __init__(self, rfile: io.BufferedIOBase, length: int) -> None:
        self._rfile = rfile
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._rfile.read(min(len(buffer), self._left))
        if not data:
            raise BadRequest("Connection closed before the whole request body arrived")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


class _ChunkedBodyReader(io.RawIOBase):
    """A ``Transfer-Encoding: chunked`` request body, decoded chunk by chunk."""

    def __init__(self, rfile: io.BufferedIOBase) -> None:
        self._rfile = rfile
        self._left = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def _next_chunk_size(self) -> int:
        line = self._rfile.readline(1 << 16)
        if not line:
            raise BadRequest("Connection closed inside a chunked request body")
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(f"Bad chunk size line in the request body: {line[:40]!r}") from None

    def readinto(self, buffer: Any) -> int:
        if self._finished:
            return 0
        if self._left == 0:
            size = self._next_chunk_size()
            if size == 0:
                while self._rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                    pass  # request trailers: ignored
                self._finished = True
                return 0
            self._left = size
        data = self._rfile.read(min(len(buffer), self._left))
        if not data:
            raise BadRequest("Connection closed inside a chunk of the request body")
        buffer[: len(data)] = data
        self._left -= len(data)
        if self._left == 0:
            self._rfile.readline(1 << 16)  # CRLF after the chunk
        return len(data)


class _DecodingReader(io.RawIOBase):
    """Decompresses a raw body stream lazily (zlib or gzip framing, or brotli)."""

    def __init__(self, source: io.RawIOBase, encoding: str) -> None:
        self._source = source
        if encoding == "br":
            self._decompress = _brotli.Decompressor().process  # type: ignore[union-attr]
            self._flush = lambda: b""
        else:
            # wbits 32 + 15: accept zlib and gzip headers ("gzip" from yt.wrapper is zlib).
            decompressor = zlib.decompressobj(32 + zlib.MAX_WBITS)
            self._decompress = decompressor.decompress
            self._flush = decompressor.flush
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._eof:
            compressed = self._source.read(IO_CHUNK_SIZE)
            if not compressed:
                self._eof = True
                self._pending = self._flush()
                break
            try:
                self._pending = self._decompress(compressed)
            except zlib.error as error:
                raise BadRequest(f"Cannot decompress the request body: {error}") from None
        if not self._pending:
            return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _drain(raw: io.RawIOBase | None) -> None:
    if raw is None:
        return
    while raw.read(IO_CHUNK_SIZE):
        pass


# ----------------------------------------------------------------------------- response body


class _ChunkedResponseWriter:
    """Writes a chunked response body, optionally in YT framing, with trailers at the end."""

    def __init__(
        self, wfile: io.BufferedIOBase, framing: bool, drop_after_first_chunk: bool
    ) -> None:
        self._wfile = wfile
        self._framing = framing
        self._drop_after_first_chunk = drop_after_first_chunk
        self._buffer: list[bytes] = []
        self._size = 0
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        if data:
            self._buffer.append(bytes(data))
            self._size += len(data)
            if self._size >= RESPONSE_FLUSH_SIZE:
                self.flush()
        return len(data)

    def flush(self) -> None:
        if not self._size:
            return
        payload = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        for start in range(0, len(payload), 1 << 24):
            piece = payload[start : start + (1 << 24)]
            if self._framing:
                piece = struct.pack("<Bi", FRAME_DATA_TAG, len(piece)) + piece
            self._wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            self.bytes_written += len(piece)
            if self._drop_after_first_chunk:
                self._wfile.flush()
                raise ConnectionDropped()

    def finish(self, trailers: dict[str, str] | None = None) -> None:
        self.flush()
        lines = b"".join(
            f"{name}: {value}\r\n".encode("latin-1") for name, value in (trailers or {}).items()
        )
        self._wfile.write(b"0\r\n" + lines + b"\r\n")
        self._wfile.flush()


# ---------------------------------------------------------------------------------- helpers


_CONNECTION_LOSS = (ConnectionDropped, BrokenPipeError, ConnectionResetError)


def _connection_loss(error: BaseException) -> BaseException | None:
    """The lost-connection error behind ``error`` (C extensions re-raise it as ``SystemError``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, _CONNECTION_LOSS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _header_format(headers: Any) -> str:
    value = headers.get("X-YT-Header-Format")
    if not value:
        return "json"
    try:
        spec = yson.loads(value.encode("latin-1"))
    except yson.YsonError:
        raise BadRequest(f"Bad X-YT-Header-Format: {value!r}") from None
    name = format_name(spec)
    if name not in ("json", "yson"):
        raise BadRequest(f"Header format {name!r} is not supported (yson, json)")
    return name


def _parse_header_value(text: str, header_format: str) -> Any:
    data = text.encode("latin-1")
    try:
        if header_format == "yson":
            return yson.loads(data)
        return _json_params(json.loads(data))
    except (yson.YsonError, ValueError) as error:
        raise BadRequest(f"Cannot parse request parameters: {error}") from None


def _json_params(document: Any) -> Any:
    return decode_json_strings(json_to_value(document, encode_utf8=False))


def render_header_value(value: Any, header_format: str) -> str:
    """A structured value as an HTTP header value in the client's header format."""
    if header_format == "yson":
        return yson.dumps(value, yson_format="text", encoding="utf-8").decode("latin-1")
    return json.dumps(value_to_json(value, encode_utf8=False), ensure_ascii=True)


def error_to_dict(error: BaseException) -> dict[str, Any]:
    if isinstance(error, YtLocalError):
        return error.to_dict()
    if isinstance(error, (NotUnicodeError, UnicodeError)):
        # Text the request carries (a key, a name) that must be UTF-8 and is not.
        return GenericError(f"Invalid UTF-8 in the request: {error}").to_dict()
    return GenericError(
        f"Internal error of the local YT: {type(error).__name__}: {error}"
    ).to_dict()


def _error_header_value(error_dict: dict[str, Any]) -> str:
    """The error as one JSON header line, shortened when too long for an HTTP header."""
    text = json.dumps(
        to_plain(error_dict, keep_attributes=False, undecodable="replace"),
        ensure_ascii=True,
        default=str,
    )
    if len(text) <= MAX_ERROR_HEADER_SIZE:
        return text
    short = {
        "code": error_dict.get("code", 1),
        "message": str(error_dict.get("message", ""))[: MAX_ERROR_HEADER_SIZE // 2],
        "attributes": {"truncated": True},
        "inner_errors": [],
    }
    return json.dumps(short, ensure_ascii=True)


def _error_headers(error_dict: dict[str, Any]) -> dict[str, str]:
    message = str(error_dict.get("message", ""))
    return {
        "X-YT-Error": _error_header_value(error_dict),
        "X-YT-Response-Code": str(int(error_dict.get("code", 1)) or 1),
        "X-YT-Response-Message": json.dumps(message, ensure_ascii=True)[1:-1][:4096],
    }


def _content_type(output_format: Any) -> str:
    if output_format is None:
        return "application/json"
    name = format_name(output_format)
    if name == "yson":
        attributes = getattr(output_format, "attributes", None) or {}
        flavour = attributes.get("format", "binary")
        return (
            "application/x-yt-yson-binary" if flavour == "binary" else "application/x-yt-yson-text"
        )
    if name == "json":
        return "application/json"
    if name == "dsv":
        return "text/tab-separated-values"
    return "application/octet-stream"


# ------------------------------------------------------------------------------- the server


class LocalYtServer(ThreadingHTTPServer):
    """The local YT HTTP proxy on ``127.0.0.1`` (port 0: a free port; ``fallback_to_free_port``:
    a free one when ``port`` is taken). It also serves a read-only web view under ``/ui``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # bursts of hundreds of clients connecting at once

    def __init__(
        self,
        root: Path,
        port: int = 0,
        *,
        faults: Any = None,
        enable_operations: bool = True,
        max_parallel_jobs: int | None = None,
        verbose: bool = False,
        cluster: Any = None,
        idle_timeout_s: float | None = None,
        fallback_to_free_port: bool = False,
        job_environment: Any = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if cluster is None:
            cluster = Cluster(self.root)
        self.cluster = cluster
        self.operations = None
        if enable_operations:
            self.operations = OperationEngine(
                self.root,
                self.cluster,
                max_parallel_jobs=max_parallel_jobs,
                job_environment=job_environment,
            )
        self.dispatcher = CommandDispatcher(self.cluster, self.operations)
        self.faults = FaultInjector(faults)
        self.verbose = verbose
        try:
            super().__init__((LOOPBACK_HOST, port), LocalYtRequestHandler)
        except OSError:
            if not (fallback_to_free_port and port):
                raise
            logger.warning("Port %d is taken: serving on a free port instead", port)
            super().__init__((LOOPBACK_HOST, 0), LocalYtRequestHandler)
        # Stops serve_forever after idle_timeout_s without requests or running operations.
        self.idle: IdleMonitor | None = None
        if idle_timeout_s:
            engine = self.operations
            self.idle = IdleMonitor(
                idle_timeout_s,
                on_idle=self.shutdown,
                busy=engine.has_running_operations if engine is not None else lambda: False,
            )
            self.idle.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """One connection's thread: frees the thread's state resources when the connection ends
        (thousands of short-lived clients otherwise exhaust descriptors)."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            release = getattr(self.cluster, "release_thread_resources", None)
            if release is not None:
                release()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def proxy_url(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}"

    closing = False
    """Set by :meth:`close`: requests still arriving on kept-alive connections get a 503 (a
    retriable YT error, as from a proxy going away), not an error from the released state."""

    def close(self) -> None:
        """Stop accepting connections and release the state (call after ``shutdown``)."""
        self.closing = True
        self.server_close()
        if self.idle is not None:
            self.idle.stop()
        if self.operations is not None:
            self.operations.close()
        self.cluster.close()


class LocalYtRequestHandler(BaseHTTPRequestHandler):
    """One HTTP request: routing, parameters, body decoding, response rendering."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body until the client's delayed ACK (40 ms on Linux) and every light request costs
    # about 44 ms instead of 1-2 ms.
    disable_nagle_algorithm = True
    server: LocalYtServer
    timeout = 600

    # ------------------------------------------------------------------ http.server plumbing

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"local-yt {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        self._raw_body: io.RawIOBase | None = None
        self._response_started = False
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        idle = self.server.idle
        try:
            with idle.request() if idle is not None else contextlib.nullcontext():
                self._route(path, url.query)
        except ConnectionDropped:
            self._drop_connection()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # never leave a request hanging
            if self.server.closing and not self._response_started:
                self._answer_shutting_down()  # the state was released under this request
                return
            if not isinstance(error, YtLocalError):
                logger.exception("Unexpected error in %s %s", self.command, self.path)
            if self._response_started:
                self.close_connection = True
            else:
                self._finish_body_or_close()
                self._send_error(error_to_dict(error), HTTPStatus.BAD_REQUEST)

    def _answer_shutting_down(self) -> None:
        self._finish_body_or_close()
        self.close_connection = True
        self._send_error(
            GenericError("The local YT server is shutting down").to_dict(),
            HTTPStatus.SERVICE_UNAVAILABLE,
        )

    def _route(self, path: str, query: str) -> None:
        if self.server.closing:
            self._answer_shutting_down()
        elif path == "/api":
            self._send_json([API_VERSION])
        elif path == f"/api/{API_VERSION}":
            self._send_json(self.server.dispatcher.descriptors())
        elif path.startswith(f"/api/{API_VERSION}/"):
            self._handle_command(path[len(f"/api/{API_VERSION}/") :], query)
        elif path.startswith("/api/"):
            raise BadRequest(f"API version of {path!r} is not supported (only {API_VERSION})")
        elif path == "/hosts" or path.startswith("/hosts/"):
            self._send_json([])
        elif path in ("/auth/whoami", "/auth/login"):
            self._send_json({"login": self._user()})
        elif path == "/ping":
            self._send_bytes(b"", "text/plain")
        elif path == "/_local/faults":
            self._handle_faults()
        elif path == "/_local/health":
            self._send_json({"pid": os.getpid(), "root": str(self.server.root.resolve())})
        elif path == "/" or path == WEB_VIEW_PREFIX or path.startswith(WEB_VIEW_PREFIX + "/"):
            self._send_web_page(path, query)
        else:
            self._finish_body_or_close()
            self._send_error(
                GenericError(f"Unknown HTTP path {path!r} on the local YT", path=path).to_dict(),
                HTTPStatus.NOT_FOUND,
            )

    # ------------------------------------------------------------------------- commands

    def _user(self) -> str:
        return self.headers.get("X-YT-User-Name") or "root"

    def _handle_command(self, name: str, query: str) -> None:
        dispatcher = self.server.dispatcher
        header_format = _header_format(self.headers)
        spec = dispatcher.spec(name)
        params = self._collect_params(spec, query, header_format)

        fault = self.server.faults.decide(name)
        if fault == "503":
            self._finish_body_or_close()
            self._send_error(
                GenericError(f"Injected fault: command {name!r} unavailable").to_dict(),
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
            return
        if fault == "drop":
            raise ConnectionDropped()

        input_stream = self._input_stream(spec)
        result = dispatcher.execute(spec, params, user=self._user(), input_stream=input_stream)
        self._finish_body_or_close()
        drop_after = fault == "drop_after"
        if isinstance(result, StructuredResult):
            if drop_after:
                raise ConnectionDropped()
            self._send_structured(result, params.get("output_format"))
        else:
            self._send_stream(result, params.get("output_format"), header_format, drop_after)

    def _collect_params(self, spec: CommandSpec, query: str, header_format: str) -> dict[str, Any]:
        params: dict[str, Any] = {key: value for key, value in parse_qsl(query)}
        header_value = self.headers.get("X-YT-Parameters")
        if header_value:
            params.update(self._as_params(_parse_header_value(header_value, header_format)))
        if spec.input_type is None and self._has_body():
            body = self._body_raw().read()
            if body.strip():
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                body_format = "json" if content_type == "application/json" else header_format
                if content_type == "application/x-yt-yson-text":
                    body_format = "yson"
                params.update(
                    self._as_params(_parse_header_value(body.decode("latin-1"), body_format))
                )
        if spec.input_type is not None and self.command != "PUT":
            raise BadRequest(
                f"Command {spec.name!r} has input and must be sent with PUT, not {self.command}"
            )
        if spec.is_volatile and self.command in ("GET", "HEAD"):
            raise BadRequest(
                f"Command {spec.name!r} is a mutation and must be sent with POST, not "
                f"{self.command}"
            )
        return params

    @staticmethod
    def _as_params(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadRequest("Request parameters must be a map")
        return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in value.items()}

    def _has_body(self) -> bool:
        return (
            "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            or int(self.headers.get("Content-Length") or 0) > 0
        )

    def _body_raw(self) -> io.RawIOBase:
        if self._raw_body is None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self._raw_body = _ChunkedBodyReader(self.rfile)
            else:
                length = int(self.headers.get("Content-Length") or 0)
                self._raw_body = _LengthBodyReader(self.rfile, length)
        return self._raw_body

    def _input_stream(self, spec: CommandSpec) -> BinaryIO | None:
        if spec.input_type is None:
            return None
        raw: io.RawIOBase = self._body_raw()
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding in ("gzip", "deflate", "x-gzip"):
            raw = _DecodingReader(raw, "gzip")
        elif encoding == "br":
            if _brotli is None:
                raise BadRequest(
                    "Content-Encoding 'br' is not supported by this local YT (the 'brotli' module "
                    "is not installed); use gzip or identity"
                )
            raw = _DecodingReader(raw, "br")
        elif encoding != "identity":
            raise BadRequest(f"Content-Encoding {encoding!r} is not supported by the local YT")
        return io.BufferedReader(raw, buffer_size=IO_CHUNK_SIZE)  # type: ignore[arg-type]

    def _finish_body_or_close(self) -> None:
        """Consume what is left of the request body so the connection can be reused."""
        try:
            if self._raw_body is None and self._has_body():
                self._body_raw()
            _drain(self._raw_body)
        except Exception:
            self.close_connection = True

    # ------------------------------------------------------------------------ responses

    def _send_structured(self, result: StructuredResult, output_format: Any) -> None:
        body = b"" if result.value is None else dump_structured(result.value, output_format)
        extra = {}
        if self.headers.get("X-YT-Accept-Framing") == "1":
            extra["X-YT-Framing"] = "1"
            body = struct.pack("<Bi", FRAME_DATA_TAG, len(body)) + body if body else b""
        self._send_bytes(body, _content_type(output_format), extra)

    def _send_stream(
        self, result: CommandResult, output_format: Any, header_format: str, drop_after: bool
    ) -> None:
        row_format = None
        if isinstance(result, TabularResult):
            row_format = parse_format(output_format)
            content_type = _content_type(output_format)
        else:
            content_type = "application/octet-stream"
        assert isinstance(result, (TabularResult, BinaryResult))
        framing = self.headers.get("X-YT-Accept-Framing") == "1"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", ", ".join(ERROR_TRAILERS))
        self.send_header(
            "X-YT-Response-Parameters",
            render_header_value(result.response_parameters, header_format),
        )
        if framing:
            self.send_header("X-YT-Framing", "1")
        self.end_headers()
        self._response_started = True
        writer = _ChunkedResponseWriter(self.wfile, framing, drop_after)
        try:
            if row_format is not None:
                assert isinstance(result, TabularResult)
                row_format.dump_rows(result.rows, writer)  # type: ignore[arg-type]
            else:
                assert isinstance(result, BinaryResult)
                for chunk in result.chunks:
                    writer.write(chunk)
        except _CONNECTION_LOSS:
            raise
        except Exception as error:
            lost = _connection_loss(error)
            if lost is not None:  # raised through the YSON bindings, which wrap it
                raise lost from None
            if not isinstance(error, YtLocalError):
                logger.exception("Unexpected error while streaming %s", self.path)
            writer.finish(_error_headers(error_to_dict(error)))
            self.close_connection = True
            return
        finally:
            close = getattr(
                result.rows if isinstance(result, TabularResult) else result.chunks, "close", None
            )
            if close is not None:
                close()
        if drop_after and writer.bytes_written == 0:
            raise ConnectionDropped()
        writer.finish()

    def _send_web_page(self, path: str, query: str) -> None:
        self._finish_body_or_close()
        server = self.server
        page = render_web_page(server.cluster, server.operations, path, dict(parse_qsl(query)))
        self.send_response(page.status)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        self.send_header("Cache-Control", "no-store")
        if page.location:
            self.send_header("Location", page.location)
        self.end_headers()
        self._response_started = True
        if self.command != "HEAD":
            self.wfile.write(page.body)
        self.wfile.flush()

    def _send_json(self, value: Any) -> None:
        self._finish_body_or_close()
        self._send_bytes(json.dumps(value).encode("utf-8"), "application/json")

    def _send_bytes(
        self, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-YT-Response-Code", "0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._response_started = True
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, error_dict: dict[str, Any], status: HTTPStatus) -> None:
        headers = _error_headers(error_dict)
        body = json.dumps(
            to_plain(error_dict, keep_attributes=False, undecodable="replace"),
            ensure_ascii=True,
            default=str,
        ).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._response_started = True
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -------------------------------------------------------------------------- faults

    def _handle_faults(self) -> None:
        if not self.client_address[0].startswith("127."):
            self._finish_body_or_close()
            self._send_error(
                GenericError("Control endpoint is loopback-only").to_dict(), HTTPStatus.FORBIDDEN
            )
            return
        faults = self.server.faults
        if self.command == "POST" or self.command == "PUT":
            body = self._body_raw().read() if self._has_body() else b""
            try:
                faults.replace(body.decode("utf-8") or "[]")
            except (FaultConfigError, ValueError, TypeError) as error:
                self._send_error(
                    GenericError(f"Bad fault rules: {error}").to_dict(), HTTPStatus.BAD_REQUEST
                )
                return
        elif self.command == "DELETE":
            faults.clear()
        self._send_json(faults.describe())


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = stream.read(IO_CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def serve_in_thread(server: LocalYtServer) -> threading.Thread:
    """Run ``server.serve_forever`` on a daemon thread (stop with ``server.shutdown()``)."""
    thread = threading.Thread(target=server.serve_forever, name="local-yt-http", daemon=True)
    thread.start()
    return thread
