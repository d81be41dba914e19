"""The operations engine (``local_yt/operations.py``) on a real ``Cluster`` and real formats.

Jobs are real processes; waits are bounded by a generous timeout, never asserted on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import GenericError, NoSuchJob, NoSuchOperation
from yt_assets.local_yt.input_splits import even_split
from yt_assets.local_yt.operation_state import secure_vault_environment
from yt_assets.local_yt.operations import OperationEngine

WAIT_S = 60.0
JSON = "json"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "root")
    yield cluster
    cluster.close()


@pytest.fixture
def engine(tmp_path: Path, cluster: Cluster) -> Iterator[OperationEngine]:
    engine = OperationEngine(tmp_path / "root", cluster, max_parallel_jobs=2)
    yield engine
    engine.close()


def make_table(cluster: Cluster, path: str, rows: list[dict[str, Any]]) -> None:
    cluster.create("table", path, recursive=True, ignore_existing=True)
    cluster.write_table(path, rows)


def rows_of(cluster: Cluster, path: str) -> list[dict[str, Any]]:
    return list(cluster.read_rows(path))


def map_spec(command: str, source: str | list[str], *outputs: str, **extra: Any) -> dict[str, Any]:
    sources = [source] if isinstance(source, str) else source
    spec: dict[str, Any] = {
        "mapper": {"command": command, "format": JSON},
        "input_table_paths": sources,
        "output_table_paths": list(outputs),
    }
    spec.update(extra)
    return spec


def run(engine: OperationEngine, spec: dict[str, Any], operation_type: str = "map") -> str:
    operation_id = engine.start_operation(operation_type, spec)
    engine.wait(operation_id, WAIT_S)
    return operation_id


def state(engine: OperationEngine, operation_id: str) -> str:
    return str(engine.get_operation(operation_id, attributes=["state"])["state"])


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------ map basics


def test_map_with_job_count_keeps_row_order_and_replaces_output(
    engine: OperationEngine, cluster: Cluster
) -> None:
    make_table(cluster, "//in", [{"x": n} for n in range(10)])
    make_table(cluster, "//out", [{"x": -1}])

    operation_id = run(engine, map_spec("cat", "//in", "//out", job_count=3))

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"x": n} for n in range(10)]
    jobs = engine.list_jobs(operation_id)["jobs"]
    assert sorted(job["job_cookie"] for job in jobs) == [0, 1, 2]
    assert {job["state"] for job in jobs} == {"completed"}
    progress = engine.get_operation(operation_id)["progress"]["jobs"]
    assert (progress["total"], progress["completed"], progress["failed"]) == (3, 3, 0)


def test_append_output_and_rows_changed_by_the_job(
    engine: OperationEngine, cluster: Cluster
) -> None:
    make_table(cluster, "//in", [{"x": 1}, {"x": 2}])
    make_table(cluster, "//out", [{"x": 0}])
    command = """python3 -c '
import json, sys
for line in sys.stdin:
    row = json.loads(line)
    print(json.dumps({"x": row["x"] * 10}))
'"""

    operation_id = run(engine, map_spec(command, "//in", "<append=%true>//out"))

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"x": 0}, {"x": 10}, {"x": 20}]


def test_second_output_table_is_descriptor_4(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//even", [])
    make_table(cluster, "//odd", [])

    operation_id = run(engine, map_spec("""cat; echo '{"y": 2}' >&4""", "//in", "//odd", "//even"))

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//odd") == [{"x": 1}]
    assert rows_of(cluster, "//even") == [{"y": 2}]


def test_several_inputs_carry_table_switches(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//a", [{"x": 1}])
    make_table(cluster, "//b", [{"x": 2}])
    make_table(cluster, "//out0", [])
    make_table(cluster, "//out1", [])

    # `cat` echoes the input's table switches: each row lands in the output of its input's index.
    operation_id = run(engine, map_spec("tee /dev/stderr", ["//a", "//b"], "//out0", "//out1"))

    assert rows_of(cluster, "//out0") == [{"x": 1}]
    assert rows_of(cluster, "//out1") == [{"x": 2}]
    job_id = engine.list_jobs(operation_id)["jobs"][0]["id"]
    lines = [json.loads(line) for line in engine.get_job_stderr(operation_id, job_id).splitlines()]
    assert lines == [
        {"$attributes": {"table_index": 0}, "$value": None},
        {"x": 1},
        {"$attributes": {"table_index": 1}, "$value": None},
        {"x": 2},
    ]


def test_empty_input_runs_no_job_and_empties_the_output(
    engine: OperationEngine, cluster: Cluster
) -> None:
    make_table(cluster, "//in", [])
    make_table(cluster, "//out", [{"x": 1}])

    operation_id = run(engine, map_spec("cat", "//in", "//out", job_count=4))

    assert state(engine, operation_id) == "completed"
    assert engine.list_jobs(operation_id)["jobs"] == []
    assert rows_of(cluster, "//out") == []


def test_data_weight_per_job_splits_the_input(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"payload": "x" * 100, "n": n} for n in range(2000)])
    make_table(cluster, "//out", [])

    operation_id = run(engine, map_spec("cat", "//in", "//out", data_weight_per_job=50_000))

    jobs = engine.list_jobs(operation_id)["jobs"]
    assert len(jobs) > 1
    assert [row["n"] for row in rows_of(cluster, "//out")] == list(range(2000))


def test_jobs_run_in_parallel(engine: OperationEngine, cluster: Cluster, tmp_path: Path) -> None:
    # Each job announces itself, then waits for the other one: only parallel jobs both finish.
    make_table(cluster, "//in", [{"x": 1}, {"x": 2}])
    make_table(cluster, "//out", [])
    command = (
        f"cat; touch {tmp_path}/started-$YT_JOB_COOKIE; other=$((1 - YT_JOB_COOKIE)); "
        f"for i in $(seq 600); do [ -e {tmp_path}/started-$other ] && exit 0; sleep 0.05; done; "
        "exit 1"
    )

    operation_id = run(engine, map_spec(command, "//in", "//out", job_count=2))

    assert engine.max_parallel_jobs == 2
    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"x": 1}, {"x": 2}]


# ------------------------------------------------------------------ job environment


def test_job_environment_files_and_interpreter(
    engine: OperationEngine, cluster: Cluster, tmp_path: Path
) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    cluster.create("file", "//files/tool.sh", recursive=True)
    cluster.write_file("//files/tool.sh", [b"#!/bin/sh\necho tool-ran >&2\n"])
    command = (
        "cat >/dev/null; ./bin/tool; "
        "python3 -c 'import sys; print(sys.executable)' >&2; env >&2; pwd >&2"
    )
    spec = map_spec(command, "//in", "//out")
    spec["mapper"]["environment"] = {"GREETING": "hello", "WHERE": "$(SandboxPath)/data"}
    spec["mapper"]["file_paths"] = [_rich("//files/tool.sh", file_name="bin/tool", executable=True)]

    operation_id = run(engine, spec)

    assert state(engine, operation_id) == "completed"
    job = engine.list_jobs(operation_id)["jobs"][0]
    lines = engine.get_job_stderr(operation_id, job["id"]).decode().splitlines()
    sandbox = lines[-1]
    env = dict(line.split("=", 1) for line in lines[2:-1] if "=" in line)
    assert lines[0] == "tool-ran"
    # A bare interpreter of this machine's base Python, as a node's python3 (not this venv's).
    assert lines[1] != sys.executable and "/_node_python/bin/" in lines[1]
    assert env["GREETING"] == "hello"
    assert env["WHERE"] == f"{sandbox}/data"
    assert env["HOME"] == sandbox
    assert env["YT_OPERATION_ID"] == operation_id
    assert env["YT_JOB_ID"] == job["id"]
    assert env["YT_JOB_INDEX"] == "0" and env["YT_JOB_COOKIE"] == "0"
    assert not any(name.startswith("YT_SECURE_VAULT") for name in env)
    assert not Path(sandbox).exists()  # the sandbox is removed after the job


def test_secure_vault_reaches_only_the_job(
    engine: OperationEngine, cluster: Cluster, tmp_path: Path
) -> None:
    secret = "s3cr3t-value-for-the-job"
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    # The command must not contain the secret itself: it is part of the (visible) spec.
    report = (
        'cat; printf %s "$YT_SECURE_VAULT_TOKEN" | sha256sum >&2; '
        'echo "$YT_SECURE_VAULT_COUNT" >&2; printf %s "$YT_SECURE_VAULT" | sha256sum >&2'
    )
    spec = map_spec(report, "//in", "//out", secure_vault={"TOKEN": secret, "COUNT": 3})

    operation_id = run(engine, spec)

    assert state(engine, operation_id) == "completed"
    job_id = engine.list_jobs(operation_id)["jobs"][0]["id"]
    lines = engine.get_job_stderr(operation_id, job_id).decode().splitlines()
    whole_vault = '{"TOKEN"="' + secret + '";"COUNT"=3;}'
    assert lines == [
        f"{hashlib.sha256(secret.encode()).hexdigest()}  -",
        "3",
        f"{hashlib.sha256(whole_vault.encode()).hexdigest()}  -",
    ]
    operation = engine.get_operation(operation_id)
    assert "secure_vault" not in operation["spec"]
    assert secret not in json.dumps(operation, default=str)
    assert secret not in json.dumps(engine.list_operations(), default=str)
    on_disk = [path.read_bytes() for path in (tmp_path / "root").rglob("*") if path.is_file()]
    assert not any(secret.encode() in data for data in on_disk)
    assert secure_vault_environment({"A": "x", "B": {"nested": 1}}) == {
        "YT_SECURE_VAULT_A": "x",
        "YT_SECURE_VAULT": '{"A"="x";"B"={"nested"=1;};}',
    }


# --------------------------------------------------------------------- failures & retries


def test_failed_job_is_retried_until_it_succeeds(
    engine: OperationEngine, cluster: Cluster, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt-done"
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    command = f"if [ ! -e {marker} ]; then touch {marker}; echo flaky >&2; exit 1; fi; cat"

    operation_id = run(engine, map_spec(command, "//in", "//out", max_failed_job_count=2))

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"x": 1}]
    jobs = engine.list_jobs(operation_id)["jobs"]
    assert [job["state"] for job in jobs] == ["failed", "completed"]
    failed = engine.list_jobs(operation_id, job_state="failed")["jobs"]
    assert engine.get_job_stderr(operation_id, failed[0]["id"]) == b"flaky\n"


def test_operation_fails_when_failed_jobs_reach_the_limit(
    engine: OperationEngine, cluster: Cluster
) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [{"x": 42}])

    operation_id = run(
        engine, map_spec("echo 'bad input' >&2; exit 7", "//in", "//out", max_failed_job_count=3)
    )

    operation = engine.get_operation(operation_id)
    assert operation["state"] == "failed"
    error = operation["result"]["error"]
    assert "3 job(s) failed" in error["message"]
    assert error["inner_errors"][0]["inner_errors"][0]["attributes"]["exit_code"] == 7
    jobs = engine.list_jobs(operation_id, job_state="failed")["jobs"]
    assert len(jobs) == 3 and all(job["error"]["attributes"] for job in jobs)
    assert all(engine.get_job_stderr(operation_id, job["id"]) == b"bad input\n" for job in jobs)
    assert rows_of(cluster, "//out") == [{"x": 42}]  # nothing written


def test_malformed_job_output_fails_the_job(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])

    operation_id = run(engine, map_spec("echo not-json", "//in", "//out", max_failed_job_count=1))

    operation = engine.get_operation(operation_id)
    assert operation["state"] == "failed"
    assert operation["result"]["error"]["inner_errors"][0]["message"] == "Error parsing job output"


def test_missing_input_fails_the_operation(engine: OperationEngine) -> None:
    operation_id = run(engine, map_spec("cat", "//no/such/table", "//out"))

    operation = engine.get_operation(operation_id)
    assert operation["state"] == "failed"
    assert operation["result"]["error"]["code"] == 500


# ------------------------------------------------------------------ abort & complete


def test_abort_kills_the_job_and_writes_nothing(
    engine: OperationEngine, cluster: Cluster, tmp_path: Path
) -> None:
    pid_file = tmp_path / "job.pid"
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [{"x": 42}])
    operation_id = engine.start_operation(
        "map", map_spec(f"cat; echo $$ > {pid_file}; exec sleep 600", "//in", "//out")
    )
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the job to start")
    job_pid = int(pid_file.read_text())

    engine.abort_operation(operation_id, abort_message="stop it")

    operation = engine.get_operation(operation_id)
    assert operation["state"] == "aborted"
    assert operation["result"]["error"]["message"] == "stop it"
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid, 0)
    assert [job["state"] for job in engine.list_jobs(operation_id)["jobs"]] == ["aborted"]
    assert rows_of(cluster, "//out") == [{"x": 42}]


def test_complete_keeps_finished_jobs_output(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"x": 1}, {"x": 2}])
    make_table(cluster, "//out", [])
    command = 'if [ "$YT_JOB_COOKIE" = 1 ]; then exec sleep 600; fi; cat'
    operation_id = engine.start_operation("map", map_spec(command, "//in", "//out", job_count=2))
    wait_for(
        lambda: engine.list_jobs(operation_id, job_state="completed")["jobs"],
        "the first job to complete",
    )

    engine.complete_operation(operation_id)

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"x": 1}]
    assert sorted(job["state"] for job in engine.list_jobs(operation_id)["jobs"]) == [
        "aborted",
        "completed",
    ]


# ------------------------------------------------------------------------------ vanilla


def test_vanilla_tasks_run_job_count_jobs(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//out", [])
    spec = {
        "tasks": {
            "writer": {
                "command": """echo "{\\"cookie\\": $YT_JOB_COOKIE}" """,
                "job_count": 3,
                "format": JSON,
                "output_table_paths": ["//out"],
            },
            "idle": {"command": "echo idle >&2", "job_count": 1},
        }
    }

    operation_id = run(engine, spec, "vanilla")

    assert state(engine, operation_id) == "completed"
    assert rows_of(cluster, "//out") == [{"cookie": 0}, {"cookie": 1}, {"cookie": 2}]
    jobs = engine.list_jobs(operation_id)["jobs"]
    assert sorted(job["task_name"] for job in jobs) == ["idle", "writer", "writer", "writer"]
    assert engine.get_operation(operation_id)["task_names"] == ["writer", "idle"]


# ------------------------------------------------------------- records, listing, restart


def test_finished_operations_survive_a_restart(tmp_path: Path, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    first = OperationEngine(tmp_path / "root", cluster, max_parallel_jobs=1)
    operation_id = run(first, map_spec("cat; echo remembered >&2", "//in", "//out"))
    before = first.get_operation(operation_id)
    with pytest.raises(GenericError):
        OperationEngine(tmp_path / "root", cluster)  # one engine per root
    first.close()

    second = OperationEngine(tmp_path / "root", cluster, max_parallel_jobs=1)
    try:
        after = second.get_operation(operation_id)
        assert {k: after[k] for k in ("state", "spec", "start_time", "finish_time")} == {
            k: before[k] for k in ("state", "spec", "start_time", "finish_time")
        }
        job = second.list_jobs(operation_id)["jobs"][0]
        assert second.get_job_stderr(operation_id, job["id"]) == b"remembered\n"
        assert [op["id"] for op in second.list_operations()["operations"]] == [operation_id]
    finally:
        second.close()


def test_list_operations_filters_and_pages(engine: OperationEngine, cluster: Cluster) -> None:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    good = [run(engine, map_spec("cat", "//in", "//out")) for _ in range(3)]
    bad = run(engine, map_spec("exit 1", "//in", "//out", max_failed_job_count=1))

    listed = engine.list_operations()
    assert [op["id"] for op in listed["operations"]] == [bad, *reversed(good)]
    assert listed["state_counts"] == {"completed": 3, "failed": 1}
    assert [op["id"] for op in engine.list_operations(state="failed")["operations"]] == [bad]
    page = engine.list_operations(limit=2)
    assert len(page["operations"]) == 2 and page["incomplete"] is True
    older = engine.list_operations(cursor_time=page["operations"][-1]["start_time"], limit=10)
    assert [op["id"] for op in older["operations"]] == list(reversed(good))[1:]
    assert engine.list_operations(filter=bad[:8])["operations"][0]["id"] == bad
    brief = engine.list_operations(attributes=["id", "state"])["operations"][0]
    assert set(brief) == {"id", "state"}


def test_unknown_operation_job_and_type(engine: OperationEngine, cluster: Cluster) -> None:
    with pytest.raises(NoSuchOperation):
        engine.get_operation("1-2-3-4")
    with pytest.raises(GenericError, match="not supported"):
        engine.start_operation("remote_copy", {"input_table_paths": ["//in"]})
    with pytest.raises(GenericError, match="command"):
        engine.start_operation("map", {"mapper": {}, "input_table_paths": ["//in"]})
    make_table(cluster, "//in", [{"x": 1}])
    operation_id = run(engine, map_spec("cat >/dev/null", "//in"))
    with pytest.raises(NoSuchJob):
        engine.get_job_stderr(operation_id, "5-6-7-8")


def test_even_split() -> None:
    assert even_split(10, 3) == [4, 3, 3]
    assert even_split(2, 5) == [1, 1]
    assert even_split(7, 1) == [7]


def _rich(path: str, **attributes: Any) -> Any:
    import yt.yson as yson

    return yson.to_yson_type(path, attributes=attributes)
