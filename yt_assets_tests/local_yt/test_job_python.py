"""Jobs of the local YT run like on a bare exec node: a package-less ``python3`` by default,
``docker_image`` names mapped to local interpreters, an unmapped image failing its jobs.

Real job processes on a real ``Cluster``; the "image" interpreters are real virtualenvs and
interpreters of this machine.
"""

from __future__ import annotations

import json
import shutil
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yt_assets.local_yt import JobEnvironment
from yt_assets.local_yt.__main__ import main as local_yt_main
from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.operations import OperationEngine

from .test_operations_engine import make_table, map_spec, rows_of, run, state

# Each job prints, as one JSON row, what its python3 is and which imports it can resolve.
PROBE = (
    "cat >/dev/null; python3 -c '"
    "import importlib.util as u, json, sys; "
    'names = ["dagster", "yt_assets", "boto3", "yt", "pytest"]; '
    'print(json.dumps({"executable": sys.executable, "version": sys.version.split()[0], '
    '"found": [n for n in names if u.find_spec(n)]}))'
    "'"
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "root")
    yield cluster
    cluster.close()


def probe(engine: OperationEngine, cluster: Cluster, **mapper: Any) -> tuple[str, dict[str, Any]]:
    make_table(cluster, "//in", [{"x": 1}])
    make_table(cluster, "//out", [])
    spec = map_spec(PROBE, "//in", "//out")
    spec["mapper"].update(mapper)
    operation_id = run(engine, spec)
    rows = rows_of(cluster, "//out") if state(engine, operation_id) == "completed" else [{}]
    return operation_id, rows[0]


def test_default_job_python_sees_nothing_of_the_servers_packages(
    tmp_path: Path, cluster: Cluster
) -> None:
    # This test process has dagster, yt_assets, boto3, yt and pytest; a job sees none of them.
    engine = OperationEngine(tmp_path / "root", cluster)
    try:
        operation_id, row = probe(engine, cluster)
    finally:
        engine.close()

    assert state(engine, operation_id) == "completed"
    assert row["found"] == []
    assert row["executable"] != sys.executable
    assert row["version"] == sys.version.split()[0]


def test_docker_image_maps_to_a_virtualenv_or_an_interpreter(
    tmp_path: Path, cluster: Cluster
) -> None:
    image_env = tmp_path / "image_env"
    venv.EnvBuilder(with_pip=False).create(image_env)
    site = next((image_env / "lib").glob("python3.*")) / "site-packages"
    (site / "yt_assets").mkdir()  # a package only this "image" has
    (site / "yt_assets" / "__init__.py").write_text("")
    environment = JobEnvironment(
        docker_images={"registry/app:1": str(image_env), "plain:1": sys.executable}
    )
    engine = OperationEngine(tmp_path / "root", cluster, job_environment=environment)
    try:
        _, in_venv = probe(engine, cluster, docker_image="registry/app:1")
        _, with_interpreter = probe(engine, cluster, docker_image="plain:1")
    finally:
        engine.close()

    assert in_venv["found"] == ["yt_assets"]
    assert in_venv["executable"] == str(image_env / "bin" / "python3")
    # The interpreter itself (here this test's venv, which has every package).
    assert {"dagster", "yt_assets", "pytest"} <= set(with_interpreter["found"])


def test_an_unmapped_image_fails_its_jobs_naming_the_image(
    tmp_path: Path, cluster: Cluster
) -> None:
    engine = OperationEngine(tmp_path / "root", cluster)
    try:
        operation_id, _ = probe(engine, cluster, docker_image="registry/missing:7")
        operation = engine.get_operation(operation_id)
        jobs = engine.list_jobs(operation_id)["jobs"]
    finally:
        engine.close()

    assert operation["state"] == "failed"
    text = json.dumps(operation["result"]["error"])
    assert 'Failed to pull docker image \\"registry/missing:7\\"' in text
    assert jobs and {job["state"] for job in jobs} == {"failed"}


def test_shared_environment_is_an_explicit_opt_in(tmp_path: Path, cluster: Cluster) -> None:
    engine = OperationEngine(
        tmp_path / "root", cluster, job_environment=JobEnvironment(shared=True)
    )
    try:
        _, row = probe(engine, cluster)
    finally:
        engine.close()

    assert {"dagster", "yt_assets", "pytest"} <= set(row["found"])


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("no-equals-sign", "expected NAME=PATH"),
        ("img=/nonexistent/python", "is neither a virtualenv nor an interpreter"),
    ],
)
def test_serve_rejects_a_bad_image_mapping_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argument: str, message: str
) -> None:
    code = local_yt_main(["serve", "--root", str(tmp_path / "yt"), "--docker-image", argument])

    error = capsys.readouterr().err.strip()
    assert code == 2
    assert message in error and len(error.splitlines()) == 1


def test_bare_python_is_rebuilt_when_it_was_removed(tmp_path: Path, cluster: Cluster) -> None:
    OperationEngine(tmp_path / "root", cluster).close()
    shutil.rmtree(tmp_path / "root" / "operations" / "_node_python")
    engine = OperationEngine(tmp_path / "root", cluster)
    try:
        operation_id, row = probe(engine, cluster)
    finally:
        engine.close()
    assert state(engine, operation_id) == "completed" and row["found"] == []
