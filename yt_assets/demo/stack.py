"""The embedded demo stack: a local S3 seeded with the demo bucket, and the local YT.

Everything lives under the working directory (git-ignored):

- ``.yt_assets_demo/s3/``: the S3 server's data and log; ``.yt_assets_demo/keys.json``: its keys,
  random per demo home; ``.yt_assets_demo/yt/``: the local YT's state.
- ``.dagster_home/``: the Dagster instance (runs, event logs, partitions) with its ``dagster.yaml``.

Usage::

    with DemoStack(DemoHome(Path.cwd())) as stack:
        env = stack.environment()        # what the code location needs (S3_*, YT_*, DAGSTER_HOME)
        ...                              # both servers are stopped by pid when the block ends
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from yt_assets.demo.local_s3 import REGION, Backend, DemoKeys, LocalS3
from yt_assets.demo.seed import (
    DAILY_PREFIX_TEMPLATE,
    DEMO_BUCKET,
    READY_MARKER,
    SENSOR_ROOT,
    demo_objects,
    missing_objects,
)
from yt_assets.local_yt.launcher import SERVER_STATE_FILE

DEMO_DIR = ".yt_assets_demo"
DAGSTER_HOME_DIR = ".dagster_home"
DEMO_YT_ROOT = "//home/yt_assets"

DAGSTER_YAML = """\
# Written by `yt-assets demo` / `yt-assets dev`: the local demo instance.
telemetry:
  enabled: false
nux:
  enabled: false
"""

WORKSPACE_YAML = """\
# Written by `yt-assets dev`: the code location, named as in pyproject.toml [tool.dagster].
load_from:
  - python_module:
      module_name: yt_assets.definitions
      location_name: yt_assets
"""

# Variables the demo sets for itself and its children; anything else set in the shell that
# would point the code location elsewhere is removed.
_CLEARED_VARS = ("YT_TOKEN", "S3_DOWNLOAD_ACCESS_KEY", "S3_UPLOAD_ACCESS_KEY")


class DemoStackError(RuntimeError):
    """The demo stack could not start; the message says why."""


@dataclass(frozen=True)
class DemoHome:
    """Where one demo keeps its state: ``root`` is the working directory (a clone of the repo).

    Example::

        home = DemoHome(Path.cwd())
        home.dagster_home       # <cwd>/.dagster_home
    """

    root: Path

    @property
    def demo_dir(self) -> Path:
        return self.root.resolve() / DEMO_DIR

    @property
    def s3_dir(self) -> Path:
        return self.demo_dir / "s3"

    @property
    def yt_root(self) -> Path:
        return self.demo_dir / "yt"

    @property
    def keys_file(self) -> Path:
        return self.demo_dir / "keys.json"

    @property
    def lock_file(self) -> Path:
        return self.demo_dir / "stack.lock"

    @property
    def dagster_home(self) -> Path:
        return self.root.resolve() / DAGSTER_HOME_DIR

    def write_dagster_yaml(self) -> Path:
        """``.dagster_home/dagster.yaml``: telemetry and the sign-up prompt off."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        path = self.dagster_home / "dagster.yaml"
        if not path.exists() or path.read_text() != DAGSTER_YAML:
            path.write_text(DAGSTER_YAML)
        return path

    def write_workspace_yaml(self) -> Path:
        """``.dagster_home/workspace.yaml``: the code location for ``dagster dev -w``."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        path = self.dagster_home / "workspace.yaml"
        path.write_text(WORKSPACE_YAML)
        return path


def demo_environment(
    home: DemoHome,
    endpoint_url: str,
    keys: DemoKeys,
    base: dict[str, str] | None = None,
    *,
    backend: Backend = "seaweedfs",
) -> dict[str, str]:
    """The environment of the code location for the demo (``base`` plus the demo's settings)."""
    env = dict(os.environ if base is None else base)
    for name in _CLEARED_VARS:
        env.pop(name, None)
    env.update(
        {
            "DAGSTER_HOME": str(home.dagster_home),
            "YT_PROXY": "",
            "YT_LOCAL_ROOT": str(home.yt_root),
            "YT_ROOT": DEMO_YT_ROOT,
            "S3_ENDPOINT": endpoint_url,
            "S3_REGION": REGION,
            "S3_DOWNLOAD_ACCESS_KEY": keys.download.access_key,
            "S3_DOWNLOAD_SECRET_KEY": keys.download.secret_key,
            "S3_UPLOAD_ACCESS_KEY": keys.upload.access_key,
            "S3_UPLOAD_SECRET_KEY": keys.upload.secret_key,
            "S3_BUCKET": DEMO_BUCKET,
            "S3_PREFIX": "",
            "S3_SENSOR_ROOT": SENSOR_ROOT,
            "S3_READY_MARKER": READY_MARKER,
            "S3_DAILY_PREFIX_TEMPLATE": DAILY_PREFIX_TEMPLATE,
        }
    )
    return env


def seed_bucket(client: Any, objects: dict[str, bytes], bucket: str = DEMO_BUCKET) -> int:
    """Create ``bucket`` if needed and put the objects it lacks; returns how many were put."""
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)
    existing: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        existing.extend(item["Key"] for item in page.get("Contents", []))
    to_put = missing_objects(objects, existing)
    for index, (key, body) in enumerate(to_put.items()):
        attempts = 50 if index == 0 else 3  # a fresh SeaweedFS may still be growing volumes
        for attempt in range(attempts):
            try:
                client.put_object(Bucket=bucket, Key=key, Body=body)
                break
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)
    return len(to_put)


@contextlib.contextmanager
def stack_lock(home: DemoHome) -> Iterator[None]:
    """One demo stack per home at a time (``demo`` and ``dev`` share the data directories)."""
    home.demo_dir.mkdir(parents=True, exist_ok=True)
    with open(home.lock_file, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise DemoStackError(
                f"the demo stack in {home.root} is in use by {holder} (a running "
                "`yt-assets demo` or `yt-assets dev`?); stop it first"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


class DemoStack:
    """Starts the local S3 (seeded) and the local YT of a :class:`DemoHome`; stops what it started.

    Example::

        with DemoStack(DemoHome(Path.cwd()), report=print) as stack:
            environment = stack.environment()   # S3_*, YT_* and DAGSTER_HOME for a code location
    """

    def __init__(
        self,
        home: DemoHome,
        *,
        today: date | None = None,
        backend: Backend | None = None,
        report: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.home = home
        self.today = today or datetime.now(UTC).date()
        self.backend = backend
        self.report = report
        self.keys: DemoKeys | None = None
        self.s3: LocalS3 | None = None
        self.yt_proxy_url = ""
        self.yt_started = False
        self._exit_stack = contextlib.ExitStack()

    def start(self) -> DemoStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from yt_assets.local_yt import ensure_local_yt, running_server

        self._exit_stack.enter_context(stack_lock(self.home))
        self.home.write_dagster_yaml()
        self.keys = DemoKeys.load_or_create(self.home.keys_file)
        self.s3 = LocalS3(self.home.s3_dir, self.keys, backend=self.backend)
        started = time.monotonic()
        self.s3.start()
        kind = "kept on disk" if self.s3.persistent else "in memory, seeded on each start"
        self.report(
            f"S3 ({self.s3.backend}, data {kind}): {self.s3.endpoint_url} (pid {self.s3.pid}), "
            f"ready in {time.monotonic() - started:.1f} s"
        )
        put = seed_bucket(self.s3.client("admin"), demo_objects(self.today))
        self.report(f"Seeded s3://{DEMO_BUCKET}: {put} new objects")
        started = time.monotonic()
        # Under the stack lock a running local YT of this home is one a killed demo left behind:
        # it is reused, and stopped at the end like one started here.
        verb = "started" if running_server(self.home.yt_root) is None else "reused"
        self.yt_started = True
        self.yt_proxy_url = ensure_local_yt(self.home.yt_root)
        self.report(
            f"Local YT {verb}: {self.yt_proxy_url} (pid {self.yt_pid()}, state in "
            f"{self.home.yt_root}), {time.monotonic() - started:.1f} s"
        )

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        assert self.s3 is not None and self.keys is not None, "start() the stack first"
        return demo_environment(
            self.home, self.s3.endpoint_url, self.keys, base, backend=self.s3.backend
        )

    def yt_pid(self) -> int | None:
        """The local YT server's process id (from its state file), while it runs."""
        try:
            return int(json.loads((self.home.yt_root / SERVER_STATE_FILE).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pids(self) -> list[int]:
        """The process ids of the servers this stack runs."""
        pids = [self.s3.pid] if self.s3 is not None and self.s3.pid else []
        yt_pid = self.yt_pid()
        if yt_pid is not None:
            pids.append(yt_pid)
        return pids

    def stop(self) -> None:
        """Stop the local YT (if this stack started it) and the S3 server, by pid."""
        from yt_assets.local_yt import stop_local_yt

        try:
            if self.yt_started:
                stop_local_yt(self.home.yt_root)
                self.yt_started = False
                self.report("Stopped the local YT")
        finally:
            try:
                if self.s3 is not None and self.s3.pid is not None:
                    pid = self.s3.pid
                    self.s3.stop()
                    self.report(f"Stopped the local S3 (pid {pid})")
            finally:
                self._exit_stack.close()

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
