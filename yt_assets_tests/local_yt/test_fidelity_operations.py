"""Operation introspection as on a cluster: ``list_operations`` with ``attributes`` (so
``iterate_operations`` works), ``aborted`` as soon as ``abort_operation`` returns,
``unrecognized_spec`` for unknown spec keys, and finished operations removed past a limit.
Client tests run against a real cluster too; the retention test drives the engine directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt.wrapper as yt

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import NoSuchOperation
from yt_assets.local_yt.operations import OperationEngine
from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.shipping import shipping
from yt_assets_tests.fidelity_job_functions import double

from .conftest import YtEnv

WAIT_S = 60.0


def _titled_maps(env: YtEnv, title: str, count: int) -> list[str]:
    source = env.path("in")
    env.client.write_table(source, [{"x": 1}])
    ids = []
    for index in range(count):
        operation = env.client.run_map(
            "cat",
            source,
            env.path(f"out{index}"),
            format="json",
            spec={"title": title, "max_failed_job_count": 1},
        )
        ids.append(operation.id)
    return ids


def test_list_operations_returns_the_attributes_asked_for(yt_env: YtEnv) -> None:
    title = f"attributes-{uuid.uuid4().hex}"
    [operation_id] = _titled_maps(yt_env, title, 1)
    listed = yt_env.client.list_operations(
        filter=title, attributes=["id", "state", "full_spec", "brief_progress", "type"]
    )["operations"]
    assert [operation["id"] for operation in listed] == [operation_id]
    [operation] = listed
    assert set(operation) == {"id", "state", "full_spec", "brief_progress", "type"}
    assert operation["state"] == "completed"
    assert operation["type"] == "map"
    assert operation["full_spec"]["title"] == title


def test_iterate_operations_pages_through_every_operation(yt_env: YtEnv) -> None:
    title = f"iterate-{uuid.uuid4().hex}"
    started = _titled_maps(yt_env, title, 3)
    seen = list(
        yt_env.client.iterate_operations(
            filter=title, attributes=["id", "state", "start_time"], limit_per_request=1
        )
    )
    assert sorted(operation["id"] for operation in seen) == sorted(started)
    assert {operation["state"] for operation in seen} == {"completed"}


def test_abort_returns_with_the_operation_aborted(yt_env: YtEnv) -> None:
    spec = (
        yt.VanillaSpecBuilder().begin_task("sleeper").command("sleep 600").job_count(2).end_task()
    )
    operation = yt_env.client.run_operation(spec, sync=False)
    yt_env.client.abort_operation(operation.id)
    assert yt_env.client.get_operation_state(operation.id) == "aborted"
    assert yt_env.client.get_operation(operation.id, attributes=["state"])["state"] == "aborted"


def test_unknown_spec_keys_are_reported_as_unrecognized(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    operation = yt_env.client.run_map(
        "cat",
        source,
        yt_env.path("out"),
        format="json",
        spec={
            "no_such_option_xyz": 5,
            "mapper": {"no_such_job_option_xyz": "v"},
            "max_failed_job_count": 1,
        },
    )
    unrecognized = yt_env.client.get_operation(operation.id, attributes=["unrecognized_spec"])[
        "unrecognized_spec"
    ]
    assert unrecognized == {"no_such_option_xyz": 5, "mapper": {"no_such_job_option_xyz": "v"}}


@pytest.mark.slow  # a Python job: packs and ships yt.wrapper and the YSON bindings
def test_a_plain_client_operation_has_nothing_unrecognized(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": 1}])
    with shipping(yt_env.client, double):  # jobs run a bare python3: ship what the job needs
        operation = yt_env.client.run_map(
            double, source, yt_env.path("out"), spec={"max_failed_job_count": 1}, format=JOB_FORMAT
        )
    attributes = yt_env.client.get_operation(operation.id, attributes=["unrecognized_spec"])
    assert attributes["unrecognized_spec"] == {}


# ------------------------------------------------------------------- retention (engine level)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "root")
    yield cluster
    cluster.close()


def _vanilla(command: str) -> dict[str, Any]:
    return {"tasks": {"task": {"command": command, "job_count": 1}}}


def test_finished_operations_past_the_limit_are_removed(tmp_path: Path, cluster: Cluster) -> None:
    engine = OperationEngine(
        tmp_path / "root", cluster, max_parallel_jobs=2, max_finished_operations=2
    )
    try:
        ids = []
        for _ in range(4):
            ids.append(engine.start_operation("vanilla", _vanilla("true")))
            engine.wait(ids[-1], WAIT_S)
        kept = [operation["id"] for operation in engine.list_operations()["operations"]]
        assert sorted(kept) == sorted(ids[2:])
        for removed in ids[:2]:
            with pytest.raises(NoSuchOperation):
                engine.get_operation(removed)
            assert not (tmp_path / "root" / "operations" / removed).exists()
        running = engine.start_operation("vanilla", _vanilla("sleep 600"))
        for _ in range(2):
            engine.wait(engine.start_operation("vanilla", _vanilla("true")), WAIT_S)
        assert engine.get_operation(running, attributes=["state"])["state"] == "running"
    finally:
        engine.close()

    reopened = OperationEngine(tmp_path / "root", cluster, max_finished_operations=1)
    try:  # the limit also applies to what a restart finds on disk
        assert len(reopened.list_operations()["operations"]) == 1
    finally:
        reopened.close()
