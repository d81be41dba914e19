"""Operations of the local YT through the unmodified ``yt.wrapper`` client.

``yt_env`` runs these against a local YT subprocess (or a real cluster when ``YT_PROXY`` is set);
tests that need the server's file system or kill it use ``local_yt`` and skip on a real cluster.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import yt.wrapper as yt

from yt_assets.local_yt import LocalYT
from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.shipping import shipping
from yt_assets_tests.job_processors import add_ten

from .conftest import YtEnv

WAIT_S = 60.0


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def job_stderrs(client: yt.YtClient, operation_id: str) -> list[bytes]:
    jobs = client.list_jobs(operation_id)["jobs"]
    return [client.get_job_stderr(operation_id, job["id"]).read() for job in jobs]


def test_python_function_mapper(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("py_in"), yt_env.path("py_out")
    client.write_table(source, [{"x": n} for n in range(6)])

    # The job runs a bare python3: it gets yt.wrapper and the mapper's module from the operation.
    with shipping(client, add_ten):
        client.run_map(add_ten, source, destination, spec={"job_count": 2}, format=JOB_FORMAT)

    assert list(client.read_table(destination)) == [
        {"x": n + 10, "job": 0 if n < 3 else 1} for n in range(6)
    ]


def test_job_count_splits_rows_in_order(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("split_in"), yt_env.path("split_out")
    client.write_table(source, [{"x": n} for n in range(30)])

    operation = client.run_map(
        "cat", source, destination, format=yt.JsonFormat(), spec={"job_count": 3}
    )

    assert [row["x"] for row in client.read_table(destination)] == list(range(30))
    jobs = client.list_jobs(operation.id)["jobs"]
    assert len(jobs) == 3 and {job["state"] for job in jobs} == {"completed"}


def test_environment_and_secure_vault_reach_the_job(yt_env: YtEnv) -> None:
    client = yt_env.client
    secret = "vault-secret-for-client-test"
    source, destination = yt_env.path("env_in"), yt_env.path("env_out")
    client.write_table(source, [{"x": 1}])
    report = (
        'cat >/dev/null; echo "mode=$MODE" >&2; '
        'printf %s "$YT_SECURE_VAULT_S3_SECRET" | sha256sum >&2; '
        "env | grep -c '^YT_SECURE_VAULT' >&2"
    )

    operation = client.run_map(
        report,
        source,
        destination,
        format=yt.JsonFormat(),
        spec={
            "mapper": {"environment": {"MODE": "test"}},
            "secure_vault": {"S3_SECRET": secret},
        },
    )

    [stderr] = job_stderrs(client, operation.id)
    assert stderr.decode().splitlines() == [
        "mode=test",
        f"{hashlib.sha256(secret.encode()).hexdigest()}  -",
        "2",  # YT_SECURE_VAULT_S3_SECRET and YT_SECURE_VAULT
    ]
    spec = client.get_operation(operation.id)["spec"]
    assert "secure_vault" not in spec
    assert spec["mapper"]["environment"]["MODE"] == "test"
    assert secret not in str(client.get_operation(operation.id))


def test_failed_job_error_carries_its_stderr(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("fail_in"), yt_env.path("fail_out")
    client.write_table(source, [{"x": 1}])
    client.write_table(destination, [{"x": 42}])

    with pytest.raises(yt.YtOperationFailedError) as caught:
        client.run_map(
            "echo 'cannot parse row 17' >&2; exit 3",
            source,
            destination,
            format=yt.JsonFormat(),
            spec={"max_failed_job_count": 2},
        )

    error = caught.value
    assert "cannot parse row 17" in str(error)
    assert [item["stderr"] for item in error.attributes["stderrs"]] == ["cannot parse row 17\n"] * 2
    assert "2 job(s) failed" in str(error)
    assert list(client.read_table(destination)) == [{"x": 42}]


def test_failed_jobs_are_retried(local_yt: LocalYT, tmp_path: Path) -> None:
    client = local_yt.client()
    marker = tmp_path / "attempt"
    client.write_table("//tmp/retry_in", [{"x": 1}])
    command = f"if [ ! -e {marker} ]; then touch {marker}; exit 1; fi; cat"

    operation = client.run_map(
        command,
        "//tmp/retry_in",
        "//tmp/retry_out",
        format=yt.JsonFormat(),
        spec={"max_failed_job_count": 2},
    )

    assert list(client.read_table("//tmp/retry_out")) == [{"x": 1}]
    states = [job["state"] for job in client.list_jobs(operation.id)["jobs"]]
    assert sorted(states) == ["completed", "failed"]


def test_abort_kills_the_job_and_keeps_the_output(local_yt: LocalYT, tmp_path: Path) -> None:
    client = local_yt.client()
    pid_file = tmp_path / "job.pid"
    client.write_table("//tmp/abort_in", [{"x": 1}])
    client.write_table("//tmp/abort_out", [{"x": 42}])
    operation = client.run_map(
        f"echo $$ > {pid_file}; exec sleep 600",
        "//tmp/abort_in",
        "//tmp/abort_out",
        format=yt.JsonFormat(),
        sync=False,
    )
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the job to start")
    job_pid = int(pid_file.read_text())

    operation.abort()

    assert operation.get_state() == "aborted"
    assert not pid_alive(job_pid)
    assert list(client.read_table("//tmp/abort_out")) == [{"x": 42}]


def test_vanilla_operation(yt_env: YtEnv) -> None:
    client = yt_env.client
    builder = (
        yt.VanillaSpecBuilder()
        .begin_task("worker")
        .command("echo worker $YT_JOB_COOKIE >&2")
        .job_count(2)
        .end_task()
    )

    operation = client.run_operation(builder)

    assert sorted(job_stderrs(client, operation.id)) == [b"worker 0\n", b"worker 1\n"]


def test_operations_survive_a_server_crash(local_yt: LocalYT, tmp_path: Path) -> None:
    client = local_yt.client()
    client.write_table("//tmp/crash_in", [{"x": 1}])
    finished = client.run_map(
        "cat; echo kept >&2", "//tmp/crash_in", "//tmp/crash_out", format=yt.JsonFormat()
    )
    pid_file = tmp_path / "job.pid"
    running = client.run_map(
        f"echo $$ > {pid_file}; exec sleep 600",
        "//tmp/crash_in",
        "//tmp/crash_out2",
        format=yt.JsonFormat(),
        sync=False,
    )
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the job to start")
    job_pid = int(pid_file.read_text())

    local_yt.kill()
    local_yt.start()

    client = local_yt.client()
    assert client.get_operation(finished.id)["state"] == "completed"
    assert job_stderrs(client, finished.id) == [b"kept\n"]
    interrupted = client.get_operation(running.id)
    assert interrupted["state"] == "failed"
    assert "restarted" in interrupted["result"]["error"]["message"]
    wait_for(lambda: not pid_alive(job_pid), "the orphaned job to die")  # SIGKILL is async
    listed = {op["id"] for op in client.list_operations()["operations"]}
    assert {finished.id, running.id} <= listed
