"""A TCP proxy on 127.0.0.1 that adds a fixed delay to every HTTP request it forwards.

Each client connection gets its own upstream connection. Data from the client that starts a new
HTTP request (a chunk beginning with a method name) is held for ``delay_s`` before it is
forwarded; request bodies and responses pass at once. With HTTP/1.1 keep-alive a connection
carries one request at a time, so every request pays the delay once, as over a real network
with that round-trip time.

    with DelayProxy(("127.0.0.1", 8333), delay_s=0.020) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.url, ...)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

_METHODS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")


class DelayProxy:
    """Threaded TCP proxy adding ``delay_s`` per HTTP request; ``url`` to connect to."""

    def __init__(self, upstream: tuple[str, int], delay_s: float) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.requests = 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="delay-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, to_server: bool) -> None:
        try:
            while True:
                data = source.recv(1 << 20)
                if not data:
                    break
                if to_server and data.startswith(_METHODS):
                    with self._lock:
                        self.requests += 1
                    time.sleep(self.delay_s)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
            source.close()
