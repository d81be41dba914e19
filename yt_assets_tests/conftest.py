"""Shared fixtures: a real S3 server (moto) on loopback.

``s3_server`` (session scope) runs moto's ``ThreadedMotoServer`` on ``127.0.0.1`` and a free port,
in this process, and stops it at the end of the session. Moto keeps all buckets in memory and shares
them across the session, so every test must use its own bucket: take the ``s3_bucket`` fixture (a
fresh, uniquely named, empty bucket) or call ``s3_server.create_bucket()``.

Example::

    def test_put_and_get(s3_server, s3_bucket):
        client = s3_server.client()
        client.put_object(Bucket=s3_bucket, Key="a.txt", Body=b"hi")
        assert client.get_object(Bucket=s3_bucket, Key="a.txt")["Body"].read() == b"hi"

``s3_server_subprocess`` is the same server in a child process (about 1 s to start): use it when a
test measures this process's memory (``tracemalloc``), because the in-process server's allocations
would count too.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from yt_assets_tests.leftovers import (
    abort_dropped_read_transactions,
    clear_stale_dagster_state_storage,
)
from yt_assets_tests.wheel_venv import project_wheel, wheel_venv, wheel_venv_factory

__all__ = ["project_wheel", "wheel_venv", "wheel_venv_factory"]  # fixtures for every test module


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After each test's body, what it left behind is cleared (``leftovers``)."""
    try:
        return (yield)
    finally:
        abort_dropped_read_transactions()
        clear_stale_dagster_state_storage()


S3_TEST_REGION = "us-east-1"
S3_TEST_ACCESS_KEY = "test-access-key-id"
S3_TEST_SECRET_KEY = "test-secret-access-key"


@dataclass(frozen=True)
class S3TestServer:
    """A running S3 endpoint with dummy credentials (moto accepts any)."""

    endpoint_url: str
    access_key: str = S3_TEST_ACCESS_KEY
    secret_key: str = field(default=S3_TEST_SECRET_KEY, repr=False)
    region: str = S3_TEST_REGION

    def client(self, **config_options: Any) -> Any:
        """A new boto3 S3 client for this server: path-style addressing, ``us-east-1``.

        ``config_options`` go to ``botocore.config.Config`` (e.g. ``max_pool_connections=16``).
        """
        config = Config(s3={"addressing_style": "path"}, **config_options)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def create_bucket(self, prefix: str = "test") -> str:
        """Create an empty bucket with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


def put_objects(server: S3TestServer, bucket: str, bodies: dict[str, bytes]) -> None:
    """Put ``bodies`` (key -> bytes) into ``bucket``, 8 requests at a time on one client."""
    from concurrent.futures import ThreadPoolExecutor

    client = server.client(max_pool_connections=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]),
                bodies.items(),
            )
        )


def bucket_of_keys(server: S3TestServer, name_prefix: str, keys: Iterable[str]) -> str:
    """A new bucket holding ``keys``, each with the first ``len(key) % 50`` bytes of its name as
    its body (sizes that differ, ETags that differ)."""
    bucket = server.create_bucket(name_prefix)
    put_objects(server, bucket, {key: key.encode()[: len(key) % 50] for key in keys})
    return bucket


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3TestServer]:
    """moto's S3 server on 127.0.0.1 (free port), in this process, for the whole session."""
    from moto.server import ThreadedMotoServer  # imported here: only S3 tests pay for it

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3TestServer(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3TestServer) -> str:
    """A fresh, empty bucket on ``s3_server`` for one test."""
    return s3_server.create_bucket()


_SUBPROCESS_SERVER_SCRIPT = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # runs until the parent closes stdin or kills us
server.stop()
"""


@pytest.fixture(scope="module")
def s3_server_subprocess() -> Iterator[S3TestServer]:
    """moto's S3 server on 127.0.0.1 (free port) in a child process, stopped by its handle."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SUBPROCESS_SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port_line = process.stdout.readline()
        if not port_line.strip().isdigit():
            raise RuntimeError(f"moto subprocess failed to start (exit code {process.poll()})")
        yield S3TestServer(endpoint_url=f"http://127.0.0.1:{int(port_line)}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """SeaweedFS ``weed mini`` on 127.0.0.1 (a ``LocalS3``; its ``admin`` identity may do all)."""
    from yt_assets.demo.local_s3 import DemoKeys, LocalS3, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS (weed) not installed")
    with LocalS3(tmp_path_factory.mktemp("weed"), DemoKeys.generate(), "seaweedfs") as server:
        yield server


@pytest.fixture(scope="session")
def dagster_local_yt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local YT server (a subprocess on a free loopback port) for the Dagster-level tests."""
    from yt_assets.local_yt import LocalYT

    with LocalYT(root=tmp_path_factory.mktemp("dagster_local_yt")) as server:
        yield server


@pytest.fixture
def yt_client(dagster_local_yt: Any) -> Any:
    """A ``YtClient`` of ``dagster_local_yt``."""
    return dagster_local_yt.client()
