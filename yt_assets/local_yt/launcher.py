"""Starting and stopping local YT servers: :class:`LocalYT` (one per test or script) and
:func:`ensure_local_yt` (one shared, detached server per root directory).

Usage::

    with LocalYT(root=tmp_path / "yt") as local_yt:
        client = local_yt.client()
        client.create("map_node", "//home/project", recursive=True)

    proxy_url = ensure_local_yt(Path(".yt_local"))  # starts one, or reuses the running one
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, MutableMapping
from copy import deepcopy
from pathlib import Path
from types import TracebackType
from typing import Any

from .idle import DEFAULT_IDLE_TIMEOUT_S
from .job_python import JobEnvironment
from .processes import pid_alive, stop_process

DEFAULT_ROOT = Path(".yt_local")
SERVER_STATE_FILE = "server.json"
SERVER_LOCK_FILE = "server.lock"
SERVER_LOG_FILE = "server.log"
PORT_FILE = "port"
STARTUP_TIMEOUT_S = 60.0

_DETACHED_SERVERS: list[subprocess.Popen[bytes]] = []


class LocalYtStartError(RuntimeError):
    """The local YT server did not come up."""


def default_client_config(proxy_url: str) -> dict[str, Any]:
    """A ``YtClient`` config for the local YT: no token, no discovery, quick retries."""
    import yt.wrapper as yt

    config = yt.default_config.get_default_config()
    config["proxy"]["url"] = proxy_url
    config["token"] = None
    config["enable_token"] = False
    config["proxy"]["enable_proxy_discovery"] = False
    config["proxy"]["retries"]["total_timeout"] = 60_000
    _quick_backoff(config["proxy"]["retries"], start_ms=200, max_ms=2_000)
    _quick_backoff(config["read_retries"], start_ms=100, max_ms=2_000)
    _quick_backoff(config["write_retries"], start_ms=300, max_ms=3_000)
    config["write_retries"]["chunk_size"] = 16 * 1024 * 1024
    config["pickling"]["ignore_system_modules"] = True
    # Loopback: compressing request bodies costs client CPU and saves nothing.
    config["proxy"]["content_encoding"] = "identity"
    return config


def _quick_backoff(retries: Any, *, start_ms: int, max_ms: int) -> None:
    retries["backoff"]["policy"] = "exponential"
    policy = retries["backoff"]["exponential_policy"]
    policy["start_timeout"] = start_ms
    policy["max_timeout"] = max_ms


def _merge(base: Any, overrides: Mapping[str, Any]) -> Any:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), MutableMapping):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def remembered_port(root: Path) -> int:
    """The port the server of ``root`` listened on last (``0`` if none is remembered).

    Links to the local YT's web view stored in Dagster metadata carry this port: a restarted
    server binds it again, so they keep working (unless another process took the port).
    """
    try:
        port = int((Path(root) / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def remember_port(root: Path, port: int) -> None:
    path = Path(root) / PORT_FILE
    temporary = path.with_name(f"{PORT_FILE}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n")
    os.replace(temporary, path)


def server_command(
    root: Path,
    *,
    port: int = 0,
    state_file: Path | None = None,
    faults: Any = None,
    max_parallel_jobs: int | None = None,
    idle_timeout_s: float | None = None,
    job_environment: JobEnvironment | None = None,
) -> list[str]:
    """The command line that runs a server in the foreground."""
    command = [sys.executable, "-m", "yt_assets.local_yt", "serve", "--root", str(root)]
    command += ["--port", str(port)]
    if state_file is not None:
        command += ["--state-file", str(state_file)]
    if faults:
        command += ["--faults", json.dumps(faults)]
    if max_parallel_jobs is not None:
        command += ["--max-parallel-jobs", str(max_parallel_jobs)]
    if idle_timeout_s:
        command += ["--idle-timeout", str(idle_timeout_s)]
    if job_environment is not None:
        command += job_environment.to_arguments()
    return command


@contextlib.contextmanager
def keeping_alive(proxy_url: str, idle_timeout_s: float) -> Iterator[None]:
    """While the block runs, a background thread checks the server's health three times per idle
    period: a server started on demand does not stop itself under a caller that holds a client
    but sends nothing for a while (a long S3 listing, packing a job's modules).

    Example::

        root = Path(tempfile.mkdtemp()) / "yt"
        proxy_url = ensure_local_yt(root, idle_timeout_s=0.5)
        with keeping_alive(proxy_url, 0.5):
            time.sleep(2.0)  # four idle periods without a request of ours
        assert running_server(root) == proxy_url
        assert stop_local_yt(root)
    """
    stop = threading.Event()
    period = min(max(idle_timeout_s / 3, 0.05), 60.0)

    def ping() -> None:
        while not stop.wait(period):
            _health(proxy_url)

    thread = threading.Thread(target=ping, name="local-yt-keep-alive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _health(proxy_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{proxy_url}/_local/health", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _wait_for_state_file(
    state_file: Path, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_file.exists():
            with contextlib.suppress(ValueError):
                state = json.loads(state_file.read_text())
                if state.get("pid") == process.pid:
                    return state
        if process.poll() is not None:
            raise LocalYtStartError(
                f"Local YT server exited with code {process.returncode} before it was ready; "
                f"see {log_path}"
            )
        time.sleep(0.05)
    stop_process(process.pid, process)
    raise LocalYtStartError(f"Local YT server was not ready within {timeout:.0f}s; see {log_path}")


class LocalYT:
    """A local YT server for one test or script: a subprocess (or a thread) on a free port.

    Usage::

        with LocalYT(root=tmp_path / "yt") as local_yt:
            client = local_yt.client()
            client.write_table("//tmp/t", [{"a": 1}])
            local_yt.set_faults([{"command": "read_table", "mode": "503", "count": 1}])
            assert list(client.read_table("//tmp/t")) == [{"a": 1}]

    ``pid`` is the server's process id (``None`` with ``in_process=True``); ``kill()`` sends it
    SIGKILL and ``start()`` brings a new server up on the same root and port.

    Jobs run a bare interpreter, as on a YT exec node; ``job_environment`` maps ``docker_image``
    names to virtualenvs or interpreters (see :mod:`yt_assets.local_yt.job_python`).
    """

    def __init__(
        self,
        root: Path | str = DEFAULT_ROOT,
        *,
        port: int = 0,
        in_process: bool = False,
        faults: Any = None,
        max_parallel_jobs: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        job_environment: JobEnvironment | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.job_environment = job_environment
        self.port = port
        self.in_process = in_process
        self.faults = faults
        self.max_parallel_jobs = max_parallel_jobs
        self.startup_timeout = startup_timeout
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._proxy_url: str | None = None

    @property
    def proxy_url(self) -> str:
        if self._proxy_url is None:
            raise RuntimeError("LocalYT is not started")
        return self._proxy_url

    @property
    def log_path(self) -> Path:
        return self.root / SERVER_LOG_FILE

    def start(self) -> LocalYT:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.in_process:
            self._start_in_process()
        else:
            self._start_subprocess()
        return self

    def _start_in_process(self) -> None:
        from .server import LocalYtServer, serve_in_thread

        self._server = LocalYtServer(
            self.root,
            self.port,
            faults=self.faults,
            max_parallel_jobs=self.max_parallel_jobs,
            job_environment=self.job_environment,
        )
        serve_in_thread(self._server)
        self.port = self._server.port
        self._proxy_url = self._server.proxy_url

    def _start_subprocess(self) -> None:
        state_dir = Path(tempfile.mkdtemp(prefix="local_yt_"))
        state_file = state_dir / "ready.json"
        command = server_command(
            self.root,
            port=self.port,
            state_file=state_file,
            faults=self.faults,
            max_parallel_jobs=self.max_parallel_jobs,
            job_environment=self.job_environment,
        )
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            state = _wait_for_state_file(
                state_file, self._process, self.log_path, self.startup_timeout
            )
        finally:
            with contextlib.suppress(OSError):
                state_file.unlink()
                state_dir.rmdir()
        self.pid = self._process.pid
        self.port = int(state["port"])
        self._proxy_url = str(state["proxy_url"])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); a no-op when it is not running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.close()
            self._server = None
        if self._process is not None:
            stop_process(self._process.pid, self._process)
            self._process = None
        self.pid = None

    def kill(self) -> None:
        """SIGKILL the server subprocess (crash simulation); ``start()`` restarts it."""
        if self._process is None:
            raise RuntimeError("kill() needs a subprocess server (in_process=False)")
        self._process.kill()
        self._process.wait()
        self._process = None
        self.pid = None

    def client(self, config: dict[str, Any] | None = None) -> Any:
        """A ``yt.wrapper.YtClient`` for this server (``config`` entries override defaults)."""
        import yt.wrapper as yt

        merged = _merge(default_client_config(self.proxy_url), deepcopy(config or {}))
        return yt.YtClient(proxy=self.proxy_url, token=None, config=merged)

    def set_faults(self, rules: Any) -> list[dict[str, Any]]:
        """Replace the fault rules at run time (see :mod:`yt_assets.local_yt.faults`)."""
        return self._control("POST", json.dumps(rules).encode("utf-8"))

    def clear_faults(self) -> list[dict[str, Any]]:
        return self._control("DELETE", None)

    def get_faults(self) -> list[dict[str, Any]]:
        return self._control("GET", None)

    def _control(self, method: str, body: bytes | None) -> Any:
        request = urllib.request.Request(
            f"{self.proxy_url}/_local/faults", data=body, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def __enter__(self) -> LocalYT:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    with open(root / SERVER_LOCK_FILE, "a+") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def _server_state(root: Path) -> dict[str, Any]:
    try:
        state = json.loads((root / SERVER_STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def running_server(root: Path) -> str | None:
    """The proxy URL of the live shared server of ``root``, if there is one."""
    root = Path(root).resolve()
    state_path = root / SERVER_STATE_FILE
    try:
        state = json.loads(state_path.read_text())
        pid, proxy_url = int(state["pid"]), str(state["proxy_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid):
        return None
    health = _health(proxy_url)
    if health is None or health.get("pid") != pid or health.get("root") != str(root):
        return None
    return proxy_url


def ensure_local_yt(
    root: Path | str = DEFAULT_ROOT,
    job_environment: JobEnvironment | None = None,
    *,
    idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
) -> str:
    """The proxy URL of the shared local YT of ``root``: reused if alive, started otherwise.

    The server is detached (its own session) and outlives the caller; ``{pid, port, proxy_url}``
    is kept in ``<root>/server.json``. A lock file serialises processes racing to start it.
    Stop it with ``stop_local_yt(root)``. A running server whose job environment (docker image
    mapping) differs from ``job_environment`` is an error: stop it to change the mapping.
    A server started here stops itself after ``idle_timeout_s`` seconds without requests or
    running operations (``None``: it runs until ``stop_local_yt(root)``); a later call starts it
    again on the same state. A reused server keeps the timeout it was started with.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    wanted = (job_environment or JobEnvironment()).describe()
    with _root_lock(root):
        proxy_url = running_server(root)
        if proxy_url is not None:
            running = _server_state(root).get("job_environment", JobEnvironment().describe())
            if running != wanted:
                raise LocalYtStartError(
                    f"The local YT of {root} runs with job environment {running}, not {wanted}; "
                    f"stop it first (yt-assets local-yt stop --root {root})"
                )
            return proxy_url
        state_file = root / SERVER_STATE_FILE
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()
        log_path = root / SERVER_LOG_FILE
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                server_command(
                    root,
                    state_file=state_file,
                    idle_timeout_s=idle_timeout_s,
                    job_environment=job_environment,
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        state = _wait_for_state_file(state_file, process, log_path, STARTUP_TIMEOUT_S)
        _DETACHED_SERVERS.append(process)  # keep the handle: no "still running" warning at exit
        return str(state["proxy_url"])


def stop_local_yt(root: Path | str = DEFAULT_ROOT) -> bool:
    """Stop the shared server of ``root`` if it runs; returns whether one was stopped."""
    root = Path(root).resolve()
    if not root.exists():
        return False
    with _root_lock(root):
        if running_server(root) is None:
            return False
        state = json.loads((root / SERVER_STATE_FILE).read_text())
        stop_process(int(state["pid"]))
        with contextlib.suppress(FileNotFoundError):
            (root / SERVER_STATE_FILE).unlink()
        return True
