"""Dagster Components: an S3-to-YT pipeline, and the resources it runs on, declared in YAML.

A ``defs.yaml`` per pipeline (the way yt-framework users declare a stage in its ``config.yaml``)::

    type: yt_assets.S3ToYTComponent
    attributes:
      bucket: my-logs
      prefix: app/
      extension: .json
      partitioning:
        kind: daily
        prefix_template: "app/{date}/"

gives the same definitions as the Python factories (:mod:`yt_assets.assets`, ``checks``,
``sensors``, ``schedules``), named after the component (``name``, by default its folder):
``<name>_listing`` and ``<name>_processed`` with their two checks; with partitions also
``<name>_job`` and either ``<name>_schedule`` (daily) or ``<name>_sensor`` (new prefixes, dynamic
partitions ``<name>_prefixes``). ``names`` overrides any of them.

Resources come from one :class:`S3ToYTResourcesComponent` (``yt_cluster``, ``io_manager``,
``s3``, ``s3_upload``). Its plain settings may use ``{{ settings.* }}``
(:class:`yt_assets.settings.Settings`) or ``{{ env(...) }}``, rendered when the code location
loads; secrets are given as the *names* of their environment variables and become ``dg.EnvVar``,
resolved at launch and shown by name only. (A ``ConfigurableResource`` typed field would not do:
Dagster 1.13 leaves ``{{ env(...) }}`` inside it unresolved, dagster-io/dagster#33677.)

Problems in a ``defs.yaml`` (unknown field, wrong type, missing ``bucket``, a daily template
without a date...) are reported by ``dg check defs`` as ``<file>:<line>: attributes.<field>: ...``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from dagster.components.resolved.errors import ResolutionException
from dagster_aws.s3 import S3Resource
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from yt_assets.assets import (
    build_s3_export_asset,
    build_s3_listing_asset,
    build_s3_processing_asset,
)
from yt_assets.checks import build_processing_checks
from yt_assets.configs import S3ExportConfig, S3ListingConfig, S3ProcessingConfig
from yt_assets.io_manager import PATH_METADATA_KEY, YTTableIOManager
from yt_assets.partitions import prefix_for_day
from yt_assets.resources import YTResource, s3_resource
from yt_assets.s3.client import DEFAULT_REGION
from yt_assets.s3.settings import S3_ENV_VARS
from yt_assets.s3.uploads import S3Destination
from yt_assets.schedules import build_daily_schedule
from yt_assets.sensors import build_s3_prefix_sensor
from yt_assets.settings import DEFAULT_DAILY_START, DEFAULT_LOCAL_ROOT, Settings
from yt_assets.yt.paths import DEFAULT_ROOT, validate_root
from yt_assets.yt.schemas import PROCESSED_COLUMNS, ColumnSpec
from yt_assets.yt_jobs.s3_processing import process_object

__all__ = ["S3ToYTComponent", "S3ToYTResourcesComponent"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATE_FIELDS = ("{date}", "%Y", "%m", "%d", "%F", "%j")


_TEMPLATE_SETTINGS: ContextVar[Settings | None] = ContextVar("yt_assets_settings", default=None)


@contextmanager
def settings_for_templates(settings: Settings) -> Iterator[None]:
    """Within this block, ``{{ settings.* }}`` in a ``defs.yaml`` renders from ``settings``."""
    token = _TEMPLATE_SETTINGS.set(settings)
    try:
        yield
    finally:
        _TEMPLATE_SETTINGS.reset(token)


def template_settings() -> Settings:
    """The :class:`Settings` that ``{{ settings.* }}`` renders: those of
    :func:`settings_for_templates`, else read from the environment."""
    return _TEMPLATE_SETTINGS.get() or Settings.from_environ(os.environ)


class _LocatedModel(dg.Resolvable, dg.Model):
    """A YAML-declared model whose validation errors name the file, line and field."""

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: BaseModel) -> Any:
        try:
            return super().resolve_from_model(context, model)
        except ValidationError as error:
            raise _located(error, context) from None


def _config_rule(config_class: type[BaseModel], field: str, value: Any, **required: Any) -> Any:
    """``value`` if ``config_class`` accepts it for ``field`` (one source for the rules: the run
    config classes), else a ``ValueError`` with that class's message."""
    try:
        config_class(**required, **{field: value})
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return value


def _dagster_name(value: str | None) -> str | None:
    problem = _name_problem(value) if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


def _as_text(value: Any) -> Any:
    """A template renders ``2026`` as a number (Dagster's templates are native Jinja): a text
    field takes it back as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _in_range(value: Any, info: ValidationInfo, low: Any, high: Any) -> Any:
    if not low <= value <= high:
        raise ValueError(f"{info.field_name}={value} must lie between {low} and {high}")
    return value


def _name_problem(name: str) -> str | None:
    if _NAME.match(name):
        return None
    return f"{name!r} is not a valid Dagster name: use letters, digits and underscores"


class Partitioning(_LocatedModel):
    """How the pipeline is partitioned: ``none``, ``daily`` or ``prefixes`` (found by a sensor)."""

    kind: Literal["none", "daily", "prefixes"] = Field(
        default="none",
        description="'none': one table; 'daily': one table a day, listed from prefix_template and "
        "run by a schedule; 'prefixes': one table per new child prefix of root, found by a sensor.",
    )
    prefix_template: str | None = Field(
        default=None,
        description="daily: the prefix of a day, with '{date}' (YYYY-MM-DD) or strftime fields, "
        "e.g. 'events/{date}/' or 'events/%Y/%m/%d/'.",
    )
    start_date: str = Field(
        default=DEFAULT_DAILY_START, description="daily: the first partition (YYYY-MM-DD)."
    )
    schedule_hour: int = Field(
        default=2,
        description="daily: the hour (UTC) at which the schedule runs the previous day.",
    )
    root: str | None = Field(
        default=None,
        description="prefixes: the sensor watches the child prefixes of this prefix, e.g. "
        "'incoming/'.",
    )
    ready_marker: str | None = Field(
        default=None,
        description="prefixes: a prefix is taken only once '<prefix><ready_marker>' exists, e.g. "
        "'_SUCCESS' (unset: at once).",
    )

    @field_validator("prefix_template", "root", "ready_marker", "start_date", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("prefix_template")
    @classmethod
    def _template_holds_a_date(cls, value: str | None) -> str | None:
        if value is not None and not any(field in value for field in _DATE_FIELDS):
            raise ValueError(
                f"prefix_template {value!r} holds no date: put '{{date}}' or strftime fields "
                "(%Y, %m, %d) in it, e.g. 'events/{date}/'"
            )
        return value

    @field_validator("start_date")
    @classmethod
    def _start_is_a_date(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"start_date {value!r} is not a date such as 2026-11-01") from None
        return value

    @field_validator("schedule_hour")
    @classmethod
    def _hour_of_a_day(cls, value: int, info: ValidationInfo) -> int:
        return _in_range(value, info, 0, 23)

    @field_validator("ready_marker")
    @classmethod
    def _marker_is_a_name(cls, value: str | None) -> str | None:
        if not value:
            return None  # e.g. a template rendering an unset variable
        if "/" in value:
            raise ValueError(f"ready_marker must be a name such as '_SUCCESS', got {value!r}")
        return value

    @model_validator(mode="after")
    def _settings_match_kind(self) -> Partitioning:
        if self.kind == "daily":
            if not self.prefix_template:
                raise ValueError(
                    "partitioning 'daily' needs a prefix_template such as 'events/{date}/'"
                )
        elif self.prefix_template is not None:
            raise ValueError(f"prefix_template applies to partitioning 'daily', not {self.kind!r}")
        if self.kind == "prefixes":
            if self.root is None:
                raise ValueError("partitioning 'prefixes' needs a root such as 'incoming/'")
        elif self.root is not None or self.ready_marker is not None:
            raise ValueError(
                f"root and ready_marker apply to partitioning 'prefixes', not {self.kind!r}"
            )
        return self


class Processing(_LocatedModel):
    """Defaults of the processing asset's run config (:class:`S3ProcessingConfig`), same rules."""

    job_count: int | None = None
    max_failed_job_count: int = 3
    memory_limit_mb: int = 1024
    docker_image: str | None = None
    pool: str | None = None
    downloads_in_flight: int = 16
    on_error: Literal["record", "fail"] = "record"

    @field_validator("*")
    @classmethod
    def _follows_the_run_config_rules(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        return _config_rule(S3ProcessingConfig, info.field_name, value)


class WritesTo(_LocatedModel):
    """Where the processor writes objects (it is then called with ``sink=``)."""

    bucket: str = Field(
        default="", description="Bucket of the written objects (empty: each input object's own)."
    )
    prefix: str = Field(description="Key prefix of the written objects, e.g. 'derived/'.")

    @field_validator("bucket", "prefix", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("bucket")
    @classmethod
    def _bucket_is_valid(cls, value: str) -> str:
        return _config_rule(S3ListingConfig, "bucket", value) if value else value

    def destination(self) -> S3Destination:
        return S3Destination(self.bucket, self.prefix)


class Column(_LocatedModel):
    """A column of the processor's output table."""

    name: str
    type: str = Field(description="YT type name: string, int64, uint64, double, bool, timestamp...")
    required: bool = False
    description: str = ""


class Names(_LocatedModel):
    """Names of the definitions, each defaulting to ``<name>_<what>``."""

    listing: str | None = None
    processed: str | None = None
    job: str | None = None
    sensor: str | None = None
    schedule: str | None = None
    partitions: str | None = Field(
        default=None, description="The dynamic partitions of 'prefixes' (default <name>_prefixes)."
    )

    @field_validator("*")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return _dagster_name(value)


def _load_processor(reference: str) -> Callable[..., dict[str, Any]]:
    """The function named by ``package.module:function`` (or ``package.module.function``)."""
    module_name, _, attribute = reference.rpartition(":" if ":" in reference else ".")
    if not module_name or not attribute:
        raise ValueError(
            f"processor {reference!r} is not a Python reference such as 'my_package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"processor {reference!r}: cannot import {module_name!r} ({error})"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"processor {reference!r}: {module_name!r} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


class StarterParams(BaseModel):
    """``dg scaffold defs yt_assets.S3ToYTComponent NAME [--bucket B] [--prefix P]``."""

    bucket: str = "my-bucket"
    prefix: str = "data/"


STARTER_YAML = """\
# An S3-to-YT pipeline (README: "Pipelines in YAML"). Check it with `dg check defs`.
type: {type}
attributes:
  name: {name}                 # -> {name}_listing, {name}_processed and their checks
  bucket: {bucket}
  prefix: {prefix}
  # extension: .json           # keep only these keys
  # max_files: 1000
  # table_root: //home/my_project/{name}   # default: the io_manager's root (YT_ROOT)
  # partitioning:              # kind: none (default), daily or prefixes
  #   kind: daily              # adds {name}_job and {name}_schedule
  #   prefix_template: "{prefix}{{date}}/"
  #   schedule_hour: 2
  # partitioning:
  #   kind: prefixes           # adds {name}_job and {name}_sensor (partitions {name}_prefixes)
  #   root: incoming/
  #   ready_marker: _SUCCESS
  # processing:                # defaults of the YT map operation's run config
  #   job_count: 8
  #   downloads_in_flight: 16
  #   on_error: record         # or fail
  #   docker_image: registry.example.com/yt-python:latest
  #   pool: my_pool
  # processor: my_package.processors:count_bytes   # with output_columns
"""


RESOURCES_YAML = """\
# The resources of the S3-to-YT pipelines (README: "Pipelines in YAML"): the embedded local YT
# unless YT_PROXY is set; S3 keys are named by their environment variables, read at launch.
type: yt_assets.S3ToYTResourcesComponent
attributes:
  yt:
    proxy: "{{ env('YT_PROXY', '') }}"
    root: "{{ env('YT_ROOT', '//home/yt_assets') }}"
  s3:
    endpoint_url: "{{ env('S3_ENDPOINT', '') }}"
    region_name: "{{ env('S3_REGION', 'us-east-1') }}"
"""
RESOURCES_FOLDER = "s3_to_yt_resources"


def _declares_resources(root: Path) -> bool:
    return any(
        S3ToYTResourcesComponent.__name__ in path.read_text(errors="replace")
        for path in root.rglob("defs.yaml")
    )


class StarterScaffolder(dg.Scaffolder[StarterParams]):
    """Writes a commented ``defs.yaml`` that loads as it is (a bucket to list, no partitions), and
    the resources beside it (``s3_to_yt_resources/defs.yaml``) when its folder declares none yet."""

    @classmethod
    def get_scaffold_params(cls) -> type[StarterParams]:
        return StarterParams

    def scaffold(self, request: dg.ScaffoldRequest[StarterParams]) -> None:
        params = request.params or StarterParams()
        name = re.sub(r"\W", "_", request.target_path.name)
        if not _NAME.match(name):
            name = f"pipeline_{name}"
        text = STARTER_YAML.format(
            type=request.type_name, name=name, bucket=params.bucket, prefix=params.prefix
        )
        (request.target_path / "defs.yaml").write_text(text)
        defs_root = request.target_path.parent
        if not _declares_resources(defs_root):
            (defs_root / RESOURCES_FOLDER).mkdir(exist_ok=True)
            (defs_root / RESOURCES_FOLDER / "defs.yaml").write_text(RESOURCES_YAML)


@dg.scaffold_with(StarterScaffolder)
class S3ToYTComponent(dg.Component, _LocatedModel):
    """One S3-to-YT pipeline: a listing of ``bucket``/``prefix`` into a YT table, a YT map that
    downloads and processes every listed object, their checks, and the job, sensor or schedule of
    its partitioning.

    Example ``defs.yaml``::

        type: yt_assets.S3ToYTComponent
        attributes:
          bucket: my-bucket
          prefix: data/
          extension: .jsonl
          partitioning: {kind: prefixes, root: incoming/, ready_marker: _SUCCESS}
          processing: {job_count: 8, on_error: record}

    Example::

        component = S3ToYTComponent(name="logs", bucket="my-bucket", prefix="raw/")
        defs = component.definitions()
        assert [a.key.path for a in defs.assets] == [["logs_listing"], ["logs_processed"]]
    """

    @staticmethod
    @dg.template_var
    def settings() -> Settings:
        """``{{ settings.s3_bucket }}``, ``{{ settings.yt_root }}``...: :func:`template_settings`."""
        return template_settings()

    name: str | None = Field(
        default=None,
        description="Prefix of the definitions' names (default: the component's folder name).",
    )
    bucket: str | None = Field(
        description="S3 bucket to list (required; a template that renders empty leaves it to the "
        "run config, and then the sensor's ticks skip, naming bucket_variable)."
    )
    bucket_variable: str | None = Field(
        default=None,
        description="The environment variable the bucket comes from (e.g. S3_BUCKET), named by the "
        "sensor's skip reason when the bucket is empty.",
    )
    prefix: str = Field(default="", description="Key prefix to list (unpartitioned pipelines).")
    extension: str | None = Field(
        default=None, description="Keep only keys with this extension ('.json' or 'json')."
    )
    max_files: int | None = Field(default=None, description="List at most this many objects.")
    table_root: str | None = Field(
        default=None,
        description="Cypress directory of this pipeline's tables (default: the io_manager's root, "
        "YT_ROOT).",
    )
    partitioning: Partitioning = Field(default_factory=Partitioning)
    processing: Processing = Field(default_factory=Processing)
    processor: str | None = Field(
        default=None,
        description="'package.module:function' called as function(body_stream, key=key) -> dict "
        "in the YT jobs (default: size, sha256, lines, JSON records).",
    )
    output_columns: list[Column] | None = Field(
        default=None,
        description="Columns of the processed table (needed with a processor; must include "
        "bucket, path and, unless on_error is 'fail', error).",
    )
    writes_to: WritesTo | None = Field(
        default=None,
        description="Where the processor writes objects (then it is called with sink= and its "
        "jobs get the upload keys); unset: a read-only pipeline.",
    )
    names: Names = Field(default_factory=Names)
    group_name: str = "s3"
    max_error_share: float = Field(
        default=0.05, description="Threshold of the error-share check (0 to 1)."
    )

    @field_validator("bucket", "prefix", "extension", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("bucket")
    @classmethod
    def _bucket_is_valid(cls, value: str | None) -> str | None:
        return _config_rule(S3ListingConfig, "bucket", value) if value else None

    @field_validator("extension", "max_files")
    @classmethod
    def _follows_the_listing_rules(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        return _config_rule(S3ListingConfig, info.field_name, value, bucket="placeholder")

    @field_validator("processor")
    @classmethod
    def _processor_is_importable(cls, value: str | None) -> str | None:
        if value is not None:
            _load_processor(value)
        return value

    @field_validator("max_error_share")
    @classmethod
    def _a_share(cls, value: float, info: ValidationInfo) -> float:
        return _in_range(value, info, 0.0, 1.0)

    @field_validator("name")
    @classmethod
    def _name_is_valid(cls, value: str | None) -> str | None:
        return _dagster_name(value)

    @field_validator("table_root")
    @classmethod
    def _root_is_absolute(cls, value: str | None) -> str | None:
        return validate_root(value) if value else None

    @model_validator(mode="after")
    def _columns_fit_the_processor(self) -> S3ToYTComponent:
        if self.processor and self.output_columns is None:
            raise ValueError("a processor needs output_columns (the columns of its table)")
        if self.output_columns is not None:
            names = {column.name for column in self.output_columns}
            needed = ["bucket", "path"] + (
                ["error"] if self.processing.on_error == "record" else []
            )
            missing = [name for name in needed if name not in names]
            if missing:
                raise ValueError(f"output_columns must include {', '.join(missing)}")
        return self

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions(default_name=context.path.name)

    def definitions(self, default_name: str | None = None) -> dg.Definitions:
        """The pipeline's definitions (``build_defs`` without a load context)."""
        base = self.name or default_name
        if not base or _name_problem(base):
            raise ValueError(
                f"name: {base!r} cannot prefix Dagster names; set 'name' in the component's attributes"
            )
        names = self.names
        listing_name = names.listing or f"{base}_listing"
        processed_name = names.processed or f"{base}_processed"
        kind = self.partitioning.kind
        partitions_def: dg.PartitionsDefinition | None = None
        if kind == "daily":
            partitions_def = dg.DailyPartitionsDefinition(start_date=self.partitioning.start_date)
        elif kind == "prefixes":
            partitions_def = dg.DynamicPartitionsDefinition(
                name=names.partitions or f"{base}_prefixes"
            )

        listing = build_s3_listing_asset(
            listing_name,
            bucket=self.bucket,
            prefix=self.partitioning.prefix_template or self.prefix,
            extension=self.extension,
            max_files=self.max_files,
            group_name=self.group_name,
            partitions_def=partitions_def,
            prefix_for_partition=prefix_for_day if kind == "daily" else None,
            metadata=self._table_metadata(listing_name),
        )
        processed = build_s3_processing_asset(
            processed_name,
            listing=listing,
            processor=_load_processor(self.processor) if self.processor else process_object,
            output_columns=self._output_columns(),
            group_name=self.group_name,
            partitions_def=partitions_def,
            metadata=self._table_metadata(processed_name),
            writes_to=self.writes_to.destination() if self.writes_to else None,
            **self.processing.model_dump(exclude_unset=True),
        )
        checks = build_processing_checks(processed, listing, max_error_share=self.max_error_share)
        if partitions_def is None:
            return dg.Definitions(assets=[listing, processed], asset_checks=checks)

        job = dg.define_asset_job(names.job or f"{base}_job", selection=[listing, processed])
        sensors: list[dg.SensorDefinition] = []
        schedules: list[Any] = []
        if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
            assert self.partitioning.root is not None
            # Always there; without a bucket its ticks skip, naming where the bucket comes from.
            sensors.append(
                build_s3_prefix_sensor(
                    names.sensor or f"{base}_sensor",
                    bucket=self.bucket or None,
                    root=self.partitioning.root,
                    target=job,
                    partitions_def=partitions_def,
                    ready_marker=self.partitioning.ready_marker or None,
                    bucket_setting=self.bucket_variable
                    or f"'bucket' in the defs.yaml of component {base!r}",
                )
            )
        else:
            schedules.append(
                build_daily_schedule(
                    job,
                    hour_of_day=self.partitioning.schedule_hour,
                    name=names.schedule or f"{base}_schedule",
                )
            )
        return dg.Definitions(
            assets=[listing, processed],
            asset_checks=checks,
            jobs=[job],
            sensors=sensors,
            schedules=schedules,
        )

    def _table_metadata(self, asset_name: str) -> dict[str, Any] | None:
        if not self.table_root:
            return None
        return {PATH_METADATA_KEY: f"{self.table_root}/{asset_name}"}

    def _output_columns(self) -> Sequence[ColumnSpec]:
        if self.output_columns is None:
            return PROCESSED_COLUMNS
        return [
            ColumnSpec(c.name, c.type, required=c.required, description=c.description)
            for c in self.output_columns
        ]


class YTToS3ExportComponent(dg.Component, _LocatedModel):
    """A YT table exported to S3 as JSON Lines (:func:`yt_assets.assets.build_s3_export_asset`).

    Example ``defs.yaml``::

        type: yt_assets.YTToS3ExportComponent
        attributes:
          name: s3_objects_processed_export
          table: s3_objects_processed
          bucket: my-bucket
          prefix: exports/s3_objects_processed/
          rows_per_object: 1000
          compression: gzip

    Example::

        component = YTToS3ExportComponent(
            name="t_export", table="t", bucket="my-bucket", prefix="e/t/"
        )
        assert [a.key.path for a in component.definitions().assets] == [["t_export"]]
    """

    @staticmethod
    @dg.template_var
    def settings() -> Settings:
        """``{{ settings.s3_bucket }}``...: :func:`template_settings`."""
        return template_settings()

    name: str = Field(description="The export asset's name.")
    table: str = Field(description="The asset whose YT table is exported (its key).")
    bucket: str | None = Field(
        default=None, description="Bucket to write to (empty: chosen in the launchpad)."
    )
    prefix: str = Field(description="Key prefix of the export, ending with '/'.")
    rows_per_object: int | None = Field(
        default=None, description="Rows per object (unset: one object per job)."
    )
    compression: Literal["none", "gzip"] = "none"
    table_root: str | None = Field(
        default=None, description="Cypress directory of the manifest table (default: YT_ROOT)."
    )
    group_name: str = "s3"

    @field_validator("bucket", "prefix", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("bucket", "prefix", "rows_per_object")
    @classmethod
    def _follows_the_export_rules(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        if value in (None, ""):
            return value or None
        required = {"bucket": "placeholder", "prefix": "p/"}
        required.pop(info.field_name, None)
        return _config_rule(S3ExportConfig, info.field_name, value, **required)

    @field_validator("name")
    @classmethod
    def _name_is_valid(cls, value: str) -> str:
        problem = _name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions()

    def definitions(self) -> dg.Definitions:
        """The export asset's definitions (``build_defs`` without a load context)."""
        metadata = (
            {PATH_METADATA_KEY: f"{self.table_root}/{self.name}"} if self.table_root else None
        )
        export = build_s3_export_asset(
            self.name,
            table=dg.AssetKey(self.table),
            bucket=self.bucket,
            prefix=self.prefix,
            rows_per_object=self.rows_per_object,
            compression=self.compression,
            group_name=self.group_name,
            metadata=metadata,
        )
        return dg.Definitions(assets=[export])


class YTSettings(_LocatedModel):
    """The YT cluster: ``proxy`` unset, empty or ``local`` is the embedded local YT."""

    proxy: str | None = Field(default=None, description="YT HTTP proxy, e.g. 'hahn'.")
    token_env: str | None = Field(
        default="YT_TOKEN",
        description="Name of the environment variable holding the YT token (read at launch; "
        "used when it is set at load).",
    )
    local_root: str = Field(
        default=DEFAULT_LOCAL_ROOT, description="State directory of the embedded local YT."
    )
    root: str = Field(default=DEFAULT_ROOT, description="Cypress directory of the asset tables.")
    web_ui: str | None = Field(default=None, description="Base URL of the YT web UI.")


class S3Keys(_LocatedModel):
    """Names of the environment variables holding one S3 key pair (never the keys themselves)."""

    access_key_env: str
    secret_key_env: str


class S3Settings(_LocatedModel):
    """The S3 endpoint and which environment variables hold its keys."""

    endpoint_url: str | None = Field(default=None, description="S3 endpoint (unset: AWS).")
    region_name: str = "us-east-1"
    download_keys: S3Keys = Field(
        default_factory=lambda: S3Keys(
            access_key_env=S3_ENV_VARS["download"][0], secret_key_env=S3_ENV_VARS["download"][1]
        ),
        description="Keys for listing and downloading; only these reach YT jobs (secure_vault).",
    )
    upload_keys: S3Keys = Field(
        default_factory=lambda: S3Keys(
            access_key_env=S3_ENV_VARS["upload"][0], secret_key_env=S3_ENV_VARS["upload"][1]
        ),
        description="Keys of the s3_upload resource; never sent to jobs.",
    )


def _s3_resource(settings: S3Settings, keys: S3Keys) -> S3Resource:
    return s3_resource(
        settings.endpoint_url or None,
        settings.region_name or DEFAULT_REGION,
        keys.access_key_env,
        keys.secret_key_env,
    )


class S3ToYTResourcesComponent(dg.Component, _LocatedModel):
    """The resources of S3-to-YT pipelines: ``yt_cluster``, ``io_manager``, ``s3``, ``s3_upload``.

    Example ``defs.yaml``::

        type: yt_assets.S3ToYTResourcesComponent
        attributes:
          yt:
            proxy: "{{ env('YT_PROXY', 'local') }}"
            root: //home/my_project
          s3:
            endpoint_url: "{{ env.S3_ENDPOINT }}"
            download_keys: {access_key_env: MY_S3_KEY_ID, secret_key_env: MY_S3_SECRET}

    Example::

        resources = S3ToYTResourcesComponent().resources()
        assert sorted(resources) == ["io_manager", "s3", "s3_upload", "yt_cluster"]
        assert resources["s3"].aws_secret_access_key == "S3_DOWNLOAD_SECRET_KEY"  # a name
    """

    @staticmethod
    @dg.template_var
    def settings() -> Settings:
        """``{{ settings.s3_bucket }}``, ``{{ settings.yt_root }}``...: :func:`template_settings`."""
        return template_settings()

    yt: YTSettings = Field(default_factory=YTSettings)
    s3: S3Settings = Field(default_factory=S3Settings)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(resources=self.resources())

    def resources(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The resources, keyed as the assets require them."""
        env = os.environ if environ is None else environ
        yt_settings = self.yt
        token_env = yt_settings.token_env
        yt_cluster = YTResource(
            proxy=yt_settings.proxy or None,
            token=dg.EnvVar(token_env) if token_env and env.get(token_env) else None,
            local_root=yt_settings.local_root,
            web_ui=yt_settings.web_ui or None,
        )
        return {
            "yt_cluster": yt_cluster,
            "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root=yt_settings.root),
            "s3": _s3_resource(self.s3, self.s3.download_keys),
            "s3_upload": _s3_resource(self.s3, self.s3.upload_keys),
        }


def _located(error: ValidationError, context: dg.ResolutionContext) -> ResolutionException:
    """One line per problem: ``<file>:<line>: <dotted field path>: <message>``."""
    lines = []
    tree = context.source_position_tree
    for problem in error.errors():
        path = [*context.path, *(part for part in problem["loc"] if part != "__root__")]
        where = ".".join(str(part) for part in path)
        message = problem["msg"].removeprefix("Value error, ")
        if tree is not None:
            position, _ = tree.lookup_closest_and_path(path, None)
            lines.append(f"{position}: {where}: {message}")
        else:
            lines.append(f"{where}: {message}")
    return ResolutionException("\n".join(lines))
