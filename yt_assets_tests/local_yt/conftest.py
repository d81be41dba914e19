"""Fixtures for the client-level tests of the local YT.

The same tests run against a real cluster when ``YT_PROXY`` (and ``YT_TOKEN``) are set: the
``yt_env`` fixture then yields a client for that cluster and a unique temporary Cypress
directory, and tests of local-only behaviour (faults, SIGKILL, restart) skip.

- ``yt_server``: one local YT subprocess per test module (``None`` against a real cluster).
- ``yt_env``: a client plus a fresh Cypress directory for one test (local or real).
- ``local_yt``: a private local YT subprocess on a tmp root, for tests that inject faults, kill
  or restart the server (skips against a real cluster).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yt.wrapper as yt

from yt_assets.local_yt import LocalYT

REAL_PROXY = os.environ.get("YT_PROXY")
REAL_TEST_ROOT = os.environ.get("YT_TEST_ROOT", "//tmp/yt_assets_tests")
LOCAL_ONLY_REASON = "local YT only (YT_PROXY points at a real cluster)"


def real_cluster_client(config: dict[str, Any] | None = None) -> yt.YtClient:
    base = yt.default_config.get_default_config()
    base["pickling"]["ignore_system_modules"] = True
    base["write_retries"]["chunk_size"] = 16 * 1024 * 1024
    for key, value in (config or {}).items():
        base[key] = value
    return yt.YtClient(proxy=REAL_PROXY, token=os.environ.get("YT_TOKEN"), config=base)


@dataclass
class YtEnv:
    """A client, a fresh Cypress directory for the test, and the local server if any."""

    client: yt.YtClient
    directory: str
    proxy_url: str
    server: LocalYT | None
    _extra_clients: list[yt.YtClient] = field(default_factory=list)

    @property
    def is_local(self) -> bool:
        return self.server is not None

    def path(self, name: str) -> str:
        return f"{self.directory}/{name}"

    def new_client(self, config: dict[str, Any] | None = None) -> yt.YtClient:
        """Another client (one per thread), with ``config`` overrides."""
        if self.server is not None:
            client = self.server.client(config)
        else:
            client = real_cluster_client(config)
        self._extra_clients.append(client)
        return client


@pytest.fixture(scope="module")
def yt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalYT | None]:
    if REAL_PROXY:
        yield None
        return
    server = LocalYT(root=tmp_path_factory.mktemp("local_yt"))
    with server:
        yield server


@pytest.fixture
def yt_env(yt_server: LocalYT | None) -> Iterator[YtEnv]:
    if yt_server is None:
        client = real_cluster_client()
        directory = f"{REAL_TEST_ROOT}/{uuid.uuid4().hex}"
        proxy_url = str(REAL_PROXY)
    else:
        client = yt_server.client()
        directory = f"//tmp/tests/{uuid.uuid4().hex}"
        proxy_url = yt_server.proxy_url
    client.create("map_node", directory, recursive=True)
    env = YtEnv(client=client, directory=directory, proxy_url=proxy_url, server=yt_server)
    try:
        yield env
    finally:
        if yt_server is None or yt_server.pid is not None:
            with contextlib.suppress(yt.YtError):
                client.remove(directory, recursive=True, force=True)


@pytest.fixture
def local_yt(tmp_path: Path) -> Iterator[LocalYT]:
    if REAL_PROXY:
        pytest.skip(LOCAL_ONLY_REASON)
    with LocalYT(root=tmp_path / "yt") as server:
        yield server


def read_file_bytes(client: Any, path: str, **options: Any) -> bytes:
    """``client.read_file(path, **options).read()``, then the stream closed at once.

    A read stream left to the garbage collector has its read transaction aborted by yt.wrapper's
    background aborter thread, up to 10 s later; when the test's server is gone by then, that
    thread dies with a traceback (PytestUnhandledThreadExceptionWarning) in a later test.
    """
    return _read_and_close(client.read_file(path, **options))


def read_table_bytes(client: Any, path: Any, fmt: Any) -> bytes:
    """``client.read_table(path, format=fmt, raw=True).read()``, the stream closed at once (see
    :func:`read_file_bytes` for why)."""
    return _read_and_close(client.read_table(path, format=fmt, raw=True))


def _read_and_close(stream: Any) -> bytes:
    try:
        return bytes(stream.read())
    finally:
        stream.close()


def write_yson_text_rows(client: Any, path: str, rows: Iterator[bytes]) -> None:
    """Write rows already formatted as YSON text (``{"k"=1};`` each) in blocks of 10,000: a
    million rows in a few seconds, where yt.wrapper's per-row serialisation takes most of a
    test's time."""
    blocks = iter(lambda: b"".join(itertools.islice(rows, 10_000)), b"")
    client.write_table(path, blocks, raw=True, format=yt.YsonFormat(format="text"))


def peak_rss_kib(pid: int) -> int:
    """A local process's peak resident memory so far (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"VmHWM not found for process {pid}")
