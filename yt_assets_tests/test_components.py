"""Pipelines declared in YAML (``yt_assets.S3ToYTComponent``): the project's defs folder against
the Python factories, one pipeline materialised end to end on the local YT and moto's S3 server,
errors located in the YAML, and the real ``dg`` CLI (list, check, scaffold).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource

from yt_assets.components import S3ToYTComponent, S3ToYTResourcesComponent
from yt_assets.definitions import build_component_definitions, build_definitions
from yt_assets.local_yt import LocalYT
from yt_assets_tests.conftest import S3TestServer, put_objects

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Every variable the code location reads, set to non-default values: both builds must follow them.
PROJECT_ENV = {
    "S3_BUCKET": "components-bucket",
    "S3_PREFIX": "2026",  # a template renders it as a number: the YAML side takes it as text
    "S3_SENSOR_ROOT": "batches/",
    "S3_READY_MARKER": "_READY",
    "S3_DAILY_PREFIX_TEMPLATE": "logs/%Y/%m/%d/",
    "DAILY_SCHEDULE_HOUR": "5",
    "S3_ENDPOINT": "http://127.0.0.1:9",
    "S3_REGION": "eu-west-1",
    "YT_ROOT": "//home/components_root",
    "YT_LOCAL_ROOT": "/tmp/components-yt",
    "YT_WEB_UI": "https://yt.example.com/c",
}
UNSET_ENV = [name for name in PROJECT_ENV if name not in ("YT_LOCAL_ROOT",)]


COMPONENT_METADATA = {"dagster/code_references", "dagster/component_origin"}


def _config_defaults(assets_def: dg.AssetsDefinition) -> dict[str, Any]:
    fields = assets_def.op.config_schema.as_field().config_type.fields  # type: ignore[attr-defined]
    return {
        name: field.default_value if field.default_provided else "<required>"
        for name, field in fields.items()
    }


def _shape(defs: dg.Definitions) -> dict[str, Any]:
    """Everything a user sees of a code location, in comparable form."""
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        assets_def = graph.get(key).assets_def
        spec = next(s for s in assets_def.specs if s.key == key)
        assets[key.to_user_string()] = {
            "group": spec.group_name,
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "kinds": sorted(spec.kinds),
            "partitions": assets_def.partitions_def,
            # Components add where they were declared (the UI links to the defs.yaml).
            "metadata": sorted(set(spec.metadata) - COMPONENT_METADATA),
            "config": _config_defaults(assets_def),
            "resources": sorted(assets_def.required_resource_keys),
        }
    checks = sorted(key.to_user_string() for key in graph.asset_check_keys)
    jobs = {
        job.name: sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")
    }
    sensors = {
        sensor.name: (sensor.job_name, sensor.description, sensor.minimum_interval_seconds)
        for sensor in repository.sensor_defs
    }
    schedules = {
        schedule.name: (schedule.job_name, schedule.cron_schedule)
        for schedule in repository.schedule_defs
    }
    resources = {
        key: (type(resource).__name__, _dump(resource))
        for key, resource in sorted((defs.resources or {}).items())
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "sensors": sensors,
        "schedules": schedules,
        "resources": resources,
    }


def _dump(resource: Any) -> Any:
    """A resource's configuration (an ``EnvVar`` dumps as its name, as the UI shows it)."""
    dumped = resource.model_dump()
    return {name: repr(value) for name, value in dumped.items()}


@pytest.mark.parametrize("bucket_set", [True, False], ids=["with_bucket", "without_bucket"])
def test_defs_folder_gives_what_the_factories_give(
    monkeypatch: pytest.MonkeyPatch, bucket_set: bool
) -> None:
    for name, value in PROJECT_ENV.items():
        monkeypatch.setenv(name, value)
    if not bucket_set:
        monkeypatch.delenv("S3_BUCKET")

    component_defs = build_component_definitions()
    from_yaml = _shape(component_defs)
    from_python = _shape(build_definitions())

    assert from_yaml == from_python
    # Not an empty match: the code location's whole shape is there.
    assert len(from_yaml["assets"]) == 9
    assert len(from_yaml["checks"]) == 8
    # Only the assets that write to S3 ask for the upload keys.
    uploading = sorted(
        name for name, asset in from_yaml["assets"].items() if "s3_upload" in asset["resources"]
    )
    assert uploading == ["s3_events_summaries", "s3_objects_processed_export"]
    assert from_yaml["assets"]["s3_objects_processed_export"]["deps"] == ["s3_objects_processed"]
    assert set(from_yaml["jobs"]) == {"s3_prefix_job", "daily_s3_job"}
    assert set(from_yaml["schedules"]) == {"daily_s3_schedule"}
    # The sensor is always there; without a bucket its ticks skip, naming S3_BUCKET.
    assert set(from_yaml["sensors"]) == {"s3_prefix_sensor"}
    [table_name_asset] = [
        s for s in component_defs.resolve_all_asset_specs() if s.key.path == ["s3_listing"]
    ]
    assert table_name_asset.metadata["dagster/table_name"] == "//home/components_root/s3_listing"
    assert from_yaml["schedules"]["daily_s3_schedule"][1] == "0 5 * * *"
    assert from_yaml["assets"]["daily_s3_listing"]["config"]["prefix"] == "logs/%Y/%m/%d/"
    assert set(from_yaml["resources"]) == {"io_manager", "s3", "s3_upload", "yt_cluster"}
    [spec] = [
        s for s in component_defs.resolve_all_asset_specs() if s.key.path == ["daily_s3_listing"]
    ]
    assert "daily_s3/defs.yaml" in str(spec.metadata["dagster/code_references"])


def test_defs_folder_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*PROJECT_ENV, "YT_TOKEN", "YT_PROXY"]:
        monkeypatch.delenv(name, raising=False)
    assert _shape(build_component_definitions()) == _shape(build_definitions())


def test_secrets_are_environment_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_DOWNLOAD_SECRET_KEY", "value-that-must-not-show")
    monkeypatch.setenv("YT_TOKEN", "token-that-must-not-show")
    resources = S3ToYTResourcesComponent().resources()
    s3 = resources["s3"]
    assert isinstance(s3.aws_secret_access_key, dg.EnvVar)
    assert s3.aws_secret_access_key == "S3_DOWNLOAD_SECRET_KEY"
    assert resources["yt_cluster"].token == "YT_TOKEN"
    shown = json.dumps(
        {key: _dump(value) for key, value in resources.items()}, sort_keys=True, default=str
    )
    assert "value-that-must-not-show" not in shown
    assert "token-that-must-not-show" not in shown


class _ResourceFieldProbe(dg.Component, dg.Resolvable, dg.Model):
    """What dagster-io/dagster#33677 reports: a ConfigurableResource typed field."""

    plain: str
    s3: S3Resource

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions()


def test_env_templates_resolve_in_plain_fields_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the resources component takes plain fields: Dagster 1.13 renders ``{{ env(...) }}`` in
    them, but leaves it as literal text inside a ``ConfigurableResource`` field (#33677)."""
    monkeypatch.setenv("COMPONENTS_PROBE", "eu-central-1")
    template = "\"{{ env('COMPONENTS_PROBE') }}\""
    probe = _ResourceFieldProbe.resolve_from_yaml(
        f"plain: {template}\ns3:\n  region_name: {template}\n"
    )
    assert probe.plain == "eu-central-1"
    assert probe.s3.region_name == "{{ env('COMPONENTS_PROBE') }}"  # #33677: not rendered

    ours = S3ToYTResourcesComponent.resolve_from_yaml(f"s3:\n  region_name: {template}\n")
    assert ours.resources()["s3"].region_name == "eu-central-1"


# -- one pipeline in a temporary project, end to end --------------------------------------------


def _write_project(root: Path, package: str, pipelines: dict[str, str]) -> Path:
    """A dg project: ``pyproject.toml`` with ``[tool.dg]`` and ``<package>/defs/<name>/defs.yaml``."""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{package}"
            version = "0.0.0"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "{package}"
            code_location_target_module = "{package}.definitions"
            """
        )
    )
    package_dir = root / package
    (package_dir / "defs").mkdir(parents=True)
    (package_dir / "__init__.py").write_text("")
    (package_dir / "defs" / "__init__.py").write_text("")
    (package_dir / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    for name, text in pipelines.items():
        (package_dir / "defs" / name).mkdir()
        (package_dir / "defs" / name / "defs.yaml").write_text(textwrap.dedent(text))
    return package_dir


@pytest.mark.slow
def test_yaml_pipeline_materialises_on_the_local_yt(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dagster_local_yt: LocalYT,
    s3_server: S3TestServer,
    s3_bucket: str,
    yt_client: yt.YtClient,
) -> None:
    bodies = {
        "in/a.json": b'{"x": 1}\n{"x": {"y": 2}}\n',
        "in/b.json": b"[]",
        "in/skip.txt": b"{not json",
        "out/c.json": b"{}",
    }
    put_objects(s3_server, s3_bucket, bodies)
    monkeypatch.setenv("E2E_S3_ID", s3_server.access_key)
    monkeypatch.setenv("E2E_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("E2E_BUCKET", s3_bucket)
    package = f"yaml_e2e_{uuid.uuid4().hex[:8]}"
    root = f"//home/components_e2e/{package}"
    _write_project(
        tmp_path,
        package,
        {
            "resources": f"""\
                type: yt_assets.S3ToYTResourcesComponent
                attributes:
                  yt:
                    proxy: {dagster_local_yt.proxy_url}
                    root: {root}/default
                  s3:
                    endpoint_url: {s3_server.endpoint_url}
                    region_name: {s3_server.region}
                    download_keys: {{access_key_env: E2E_S3_ID, secret_key_env: E2E_S3_SECRET}}
                """,
            "events": f"""\
                type: yt_assets.S3ToYTComponent
                attributes:
                  bucket: "{{{{ env.E2E_BUCKET }}}}"
                  prefix: in/
                  extension: .json
                  table_root: {root}/events
                  processing: {{job_count: 2, downloads_in_flight: 2}}
                  processor: yt_assets_tests.component_job_functions:count_braces
                  output_columns:
                    - {{name: bucket, type: string, required: true}}
                    - {{name: path, type: string, required: true}}
                    - {{name: braces, type: int64}}
                    - {{name: key_length, type: int64}}
                    - {{name: error, type: string}}
                """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    defs = dg.load_from_defs_folder(path_within_project=tmp_path)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success

    # Named after the component's folder, stored under its table_root.
    listing = list(yt_client.read_table(f"{root}/events/events_listing"))
    assert [row["path"] for row in listing] == ["in/a.json", "in/b.json"]
    processed = {
        row["path"]: row for row in yt_client.read_table(f"{root}/events/events_processed")
    }
    assert {path: row["braces"] for path, row in processed.items()} == {
        "in/a.json": 3,
        "in/b.json": 0,
    }
    assert all(row["error"] is None for row in processed.values())
    checks = {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
    assert checks == {
        "events_processed_rows_match_listing": True,
        "events_processed_error_share_below_threshold": True,
    }
    assert not yt_client.exists(f"{root}/default")


# -- errors in a defs.yaml ----------------------------------------------------------------------

BROKEN = {
    "unknown_field": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: my-bucket
          colour: blue
        """,
        4,
        "attributes.colour",
    ),
    "wrong_type": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: my-bucket
          processing:
            job_count: many
        """,
        5,
        "attributes.processing.job_count",
    ),
    "missing_bucket": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          prefix: data/
        """,
        2,
        "attributes.bucket",
    ),
    "daily_without_date": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: my-bucket
          partitioning:
            kind: daily
            prefix_template: events/
        """,
        6,
        "attributes.partitioning.prefix_template",
    ),
    "processor_not_importable": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: my-bucket
          processor: no_such_package.processors:count
          output_columns: [{name: bucket, type: string}, {name: path, type: string}]
        """,
        4,
        "attributes.processor",
    ),
    "bucket_name": (
        """\
        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: My_Bucket
        """,
        3,
        "attributes.bucket",
    ),
}


def _error_text(error: BaseException) -> str:
    parts = []
    current: BaseException | None = error
    while current is not None:
        parts.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_defs_yaml_names_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    text, line, field = BROKEN[case]
    package = f"broken_{case}_{uuid.uuid4().hex[:8]}"
    package_dir = _write_project(tmp_path, package, {"pipeline": text})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Exception) as raised:
        dg.load_from_defs_folder(path_within_project=tmp_path)
    message = _error_text(raised.value)
    assert f"{package_dir / 'defs' / 'pipeline' / 'defs.yaml'}:{line}" in message
    assert field in message


# -- the dg CLI ---------------------------------------------------------------------------------


def _dg(*args: str, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(VENV_BIN.parent),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(extra_path), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    return subprocess.run(
        [str(VENV_BIN / "dg"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_dg_list_and_check_defs_on_the_project() -> None:
    listed = _dg("list", "defs", "--json", cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    dg_listed = json.loads(listed.stdout)
    expected = _shape(build_component_definitions())
    assert {asset["asset_key"] for asset in dg_listed["assets"]} == set(expected["assets"])
    assert sorted(check["key"] for check in dg_listed["asset_checks"]) == expected["checks"]
    assert {job["name"] for job in dg_listed["jobs"]} == set(expected["jobs"])
    assert {s["name"] for s in dg_listed["schedules"]} == set(expected["schedules"])
    assert {s["name"] for s in dg_listed["sensors"]} == set(expected["sensors"])
    assert {r["name"] for r in dg_listed["resources"]} == set(expected["resources"])

    checked = _dg("check", "defs", cwd=REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", ["unknown_field", "daily_without_date"])
def test_dg_check_defs_reports_a_broken_defs_yaml(tmp_path: Path, case: str) -> None:
    text, line, field = BROKEN[case]
    package = f"dg_broken_{uuid.uuid4().hex[:8]}"
    package_dir = _write_project(tmp_path, package, {"pipeline": text})

    checked = _dg("check", "defs", cwd=tmp_path, extra_path=tmp_path)

    output = checked.stdout + checked.stderr
    assert checked.returncode != 0
    path = package_dir / "defs" / "pipeline" / "defs.yaml"
    assert f"{path}:{line}" in output or f"{path.relative_to(tmp_path)}:{line}" in output, output
    assert field.removeprefix("attributes.").split(".")[-1] in output


@pytest.mark.slow
def test_dg_scaffold_defs_creates_a_working_starter(tmp_path: Path) -> None:
    package = f"dg_scaffold_{uuid.uuid4().hex[:8]}"
    package_dir = _write_project(tmp_path, package, {})

    scaffolded = _dg(
        "scaffold",
        "defs",
        "yt_assets.S3ToYTComponent",
        "my_pipeline",
        "--bucket",
        "logs-bucket",
        cwd=tmp_path,
        extra_path=tmp_path,
    )
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    starter = package_dir / "defs" / "my_pipeline" / "defs.yaml"
    assert "bucket: logs-bucket" in starter.read_text()
    # The project had no resources yet: the starter brings them, once.
    resources = package_dir / "defs" / "s3_to_yt_resources" / "defs.yaml"
    assert "type: yt_assets.S3ToYTResourcesComponent" in resources.read_text()
    again = _dg(
        "scaffold", "defs", "yt_assets.S3ToYTComponent", "second", cwd=tmp_path, extra_path=tmp_path
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in (package_dir / "defs").iterdir() if p.is_dir()) == [
        "my_pipeline",
        "s3_to_yt_resources",
        "second",
    ]

    checked = _dg("check", "defs", cwd=tmp_path, extra_path=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    sys.path.insert(0, str(tmp_path))
    try:
        defs = dg.load_from_defs_folder(path_within_project=tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
    shape = _shape(defs)
    assert set(shape["assets"]) == {
        "my_pipeline_listing",
        "my_pipeline_processed",
        "second_listing",
        "second_processed",
    }
    assert shape["assets"]["my_pipeline_listing"]["config"]["bucket"] == "logs-bucket"


def test_the_component_in_python() -> None:
    component = S3ToYTComponent(
        name="logs", bucket="my-logs", partitioning={"kind": "prefixes", "root": "in/"}
    )
    defs = component.definitions()
    shape = _shape(dg.Definitions.merge(defs, dg.Definitions(resources=_stub_resources())))
    assert set(shape["sensors"]) == {"logs_sensor"}
    assert shape["jobs"] == {"logs_job": ["logs_listing", "logs_processed"]}
    assert shape["assets"]["logs_listing"]["partitions"] == dg.DynamicPartitionsDefinition(
        name="logs_prefixes"
    )


def _stub_resources() -> dict[str, Any]:
    return S3ToYTResourcesComponent().resources()


@pytest.fixture(autouse=True)
def _no_stray_modules() -> Iterator[None]:
    """Temporary projects' packages leave ``sys.modules`` as they found it."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("yaml_e2e_", "broken_", "dg_")):
            del sys.modules[name]


@pytest.mark.slow
def test_a_wheel_carries_the_pipelines(tmp_path: Path) -> None:
    """Built as a wheel and imported away from the checkout (no pyproject.toml above it), the
    code location still finds its defs folder (``yt_assets/dg.toml``, package data)."""
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".yt_*"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("yt_assets-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    probe = (
        "import json, warnings, yt_assets\n"
        "warnings.simplefilter('ignore')\n"
        "from yt_assets.definitions import build_component_definitions\n"
        "defs = build_component_definitions()\n"
        "keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())\n"
        "print(json.dumps({'file': yt_assets.__file__, 'keys': keys}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(unpacked)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(unpacked))
    assert result["keys"] == sorted(_shape(build_component_definitions())["assets"])
