"""A tiny real HTTP server on 127.0.0.1 that answers S3 requests with canned responses.

For behaviour moto can't produce (a truncated page without a continuation token, access denied):
boto3 talks to it over real HTTP. Each response is chosen by a function of the request count.

Example::

    with CannedS3Server(lambda n, path: (200, list_page_xml(["a"], truncated=True))) as server:
        client = server.client()
        client.list_objects_v2(Bucket="b")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config

CannedResponse = tuple[int, str]
"""(HTTP status, XML body)."""


def list_page_xml(
    keys: list[str], *, truncated: bool, next_token: str | None = None, bucket: str = "bucket"
) -> str:
    contents = "".join(
        f"<Contents><Key>{escape(key)}</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
        f'<ETag>"etag-{index}"</ETag><Size>{index}</Size><StorageClass>STANDARD</StorageClass>'
        "</Contents>"
        for index, key in enumerate(keys)
    )
    token = f"<NextContinuationToken>{next_token}</NextContinuationToken>" if next_token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        f"{token}{contents}</ListBucketResult>"
    )


def query_of(path: str) -> dict[str, str]:
    """The query parameters of a request path (first value of each)."""
    return {name: values[0] for name, values in parse_qs(urlsplit(path).query).items()}


def error_xml(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>r1</RequestId></Error>"
    )


class LoopbackHTTPServer:
    """A threaded HTTP server on 127.0.0.1 (a free port), serving while the ``with`` block runs."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class CannedS3Server(LoopbackHTTPServer):
    """Serves ``respond(request_number, path) -> (status, xml)`` on 127.0.0.1, a free port."""

    def __init__(self, respond: Callable[[int, str], CannedResponse]) -> None:
        self.requests: list[str] = []
        self.queries: list[dict[str, str]] = []  # the query parameters of each request
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    outer.requests.append(self.path)
                    outer.queries.append(query_of(self.path))
                    number = len(outer.requests)
                status, body = respond(number, self.path)
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def client(self, access_key: str = "AKIDCANNED", secret_key: str = "canned-secret") -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


@contextmanager
def canned_s3_server(respond: Callable[[int, str], CannedResponse]) -> Iterator[CannedS3Server]:
    with CannedS3Server(respond) as server:
        yield server
