"""Operations through the real ``yt.wrapper`` client: ``run_map``, polling, job stderr, abort."""

from __future__ import annotations

import pytest
import yt.wrapper as yt

from .conftest import YtEnv


def test_run_map_with_a_command(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("map_in"), yt_env.path("map_out")
    client.write_table(source, [{"x": n} for n in range(100)])
    client.run_map(
        "cat",
        source,
        destination,
        format=yt.JsonFormat(),
        spec={"job_count": 3, "max_failed_job_count": 1},
    )
    assert sorted(row["x"] for row in client.read_table(destination)) == list(range(100))
    operations = client.list_operations(limit=100)["operations"]
    assert operations


def test_failed_job_reports_its_stderr(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("fail_in"), yt_env.path("fail_out")
    client.write_table(source, [{"x": 1}])
    with pytest.raises(yt.YtOperationFailedError) as error:
        client.run_map(
            "echo 'broken on purpose' >&2; exit 3",
            source,
            destination,
            format=yt.JsonFormat(),
            spec={"max_failed_job_count": 1},
        )
    stderrs = error.value.attributes.get("stderrs") or []
    assert any("broken on purpose" in str(item.get("stderr", "")) for item in stderrs)


def test_async_operation_abort(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("slow_in"), yt_env.path("slow_out")
    client.write_table(source, [{"x": 1}])
    operation = client.run_map(
        "sleep 600; cat", source, destination, format=yt.JsonFormat(), sync=False
    )
    operation.abort()
    assert operation.get_state() == "aborted"
    assert operation.url is not None


def test_vanilla_operation(yt_env: YtEnv) -> None:
    client = yt_env.client
    spec = (
        yt.VanillaSpecBuilder().begin_task("hello").command("echo hi >&2").job_count(2).end_task()
    )
    operation = client.run_operation(spec)
    assert operation.get_state() == "completed"
    jobs = client.list_jobs(operation.id)["jobs"]
    assert len(jobs) == 2
    assert all(client.get_job_stderr(operation.id, job["id"]).read() == b"hi\n" for job in jobs)


def test_complete_operation_keeps_finished_jobs(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("complete_in"), yt_env.path("complete_out")
    client.write_table(source, [{"x": 1}])
    operation = client.run_map("sleep 600", source, destination, format=yt.JsonFormat(), sync=False)
    client.complete_operation(operation.id)
    assert operation.get_state() == "completed"
