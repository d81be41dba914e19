"""The code location: every asset, check, job, sensor and schedule, assembled in one place.

``dagster dev`` and ``dg`` load ``defs`` from here (``pyproject.toml`` ``[tool.dagster]`` and
``[tool.dg]``, ``workspace.yaml``). ``defs`` is built from the components in ``yt_assets/defs/``
(one ``defs.yaml`` per pipeline, plus the resources, whose templates read ``{{ settings.* }}``);
:func:`build_definitions` builds the same with the Python factories. Everything is configured by
one :class:`~yt_assets.settings.Settings`, read once here from the environment and
``configs/secrets.env`` (see README):

- ``YT_PROXY`` (unset: the embedded local YT under ``YT_LOCAL_ROOT``), ``YT_TOKEN``, ``YT_ROOT``.
- ``S3_ENDPOINT``, ``S3_REGION``, ``S3_DOWNLOAD_*``, ``S3_UPLOAD_*`` (or ``configs/secrets.env``).
- ``S3_BUCKET`` and ``S3_PREFIX``: defaults of the listings' run config.
- ``S3_SENSOR_ROOT`` and ``S3_READY_MARKER``: what the new-prefix sensor watches (in ``S3_BUCKET``;
  without a bucket the sensor's ticks skip, naming ``S3_BUCKET``).
- ``S3_DAILY_PREFIX_TEMPLATE`` and ``DAILY_SCHEDULE_HOUR``: the daily pair and its schedule.
"""

import warnings
from collections.abc import MutableMapping
from pathlib import Path

import dagster as dg

from yt_assets.assets import (
    build_s3_export_asset,
    build_s3_listing_asset,
    build_s3_processing_asset,
)
from yt_assets.checks import build_processing_checks
from yt_assets.components import settings_for_templates
from yt_assets.io_manager import YTTableIOManager
from yt_assets.partitions import build_daily_partitions, prefix_for_day, s3_prefix_partitions
from yt_assets.resources import build_resources
from yt_assets.s3.uploads import S3Destination
from yt_assets.schedules import build_daily_schedule
from yt_assets.sensors import build_s3_prefix_sensor
from yt_assets.settings import Settings, load_settings
from yt_assets.yt.schemas import PROCESSED_COLUMNS
from yt_assets.yt_jobs.s3_processing import write_summary


def build_component_definitions(
    environ: MutableMapping[str, str] | None = None, *, settings: Settings | None = None
) -> dg.Definitions:
    """The project's ``Definitions``: the pipelines declared in ``yt_assets/defs/*/defs.yaml``,
    their ``{{ settings.* }}`` templates rendered from ``settings`` (default: read once from
    ``environ``, default the environment, and ``configs/secrets.env``)."""
    if settings is None:
        settings = load_settings(environ)
    with settings_for_templates(settings):
        defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    io_manager = (defs.resources or {}).get("io_manager")
    if isinstance(io_manager, YTTableIOManager):  # table paths on the Overview before a run
        with warnings.catch_warnings():  # "preview" in 1.13; the mapping itself is plain
            warnings.simplefilter("ignore", dg.PreviewWarning)
            defs = defs.map_asset_specs(func=io_manager.with_table_name)
    return defs


def build_definitions(
    environ: MutableMapping[str, str] | None = None, *, settings: Settings | None = None
) -> dg.Definitions:
    """The same ``Definitions`` built with the Python factories, configured from ``settings``
    (default: read once from ``environ``, default the environment, and ``configs/secrets.env``):
    the reference the YAML pipelines are tested against."""
    if settings is None:
        settings = load_settings(environ)
    resources = build_resources(settings=settings)
    bucket = settings.s3_bucket
    daily_partitions = build_daily_partitions(settings.daily_start)

    # Unpartitioned: list a prefix chosen in the launchpad, process every listed object.
    s3_listing = build_s3_listing_asset("s3_listing", bucket=bucket, prefix=settings.s3_prefix)
    s3_objects_processed = build_s3_processing_asset("s3_objects_processed", listing=s3_listing)
    # ...and exported to S3 as gzipped JSON Lines.
    s3_export = build_s3_export_asset(
        "s3_objects_processed_export",
        table=s3_objects_processed,
        bucket=bucket,
        prefix="exports/s3_objects_processed/",
        rows_per_object=100,
        compression="gzip",
    )

    # Objects under events/ processed, each result written back as summaries/<key>.summary.json.
    events_listing = build_s3_listing_asset("s3_events_listing", bucket=bucket, prefix="events/")
    events_summaries = build_s3_processing_asset(
        "s3_events_summaries",
        listing=events_listing,
        processor=write_summary,
        output_columns=PROCESSED_COLUMNS,
        writes_to=S3Destination("", "summaries/"),
    )

    # One partition per new S3 prefix, found by the sensor.
    prefix_listing = build_s3_listing_asset(
        "s3_prefix_listing", bucket=bucket, partitions_def=s3_prefix_partitions
    )
    prefix_processed = build_s3_processing_asset(
        "s3_prefix_processed", listing=prefix_listing, partitions_def=s3_prefix_partitions
    )
    prefix_job = dg.define_asset_job("s3_prefix_job", selection=[prefix_listing, prefix_processed])
    # Always part of the code location; without S3_BUCKET its ticks skip, naming the variable.
    prefix_sensor = build_s3_prefix_sensor(
        "s3_prefix_sensor",
        bucket=bucket,
        root=settings.sensor_root,
        target=prefix_job,
        ready_marker=settings.ready_marker,
        bucket_setting="S3_BUCKET",
    )

    # One partition per day, listed from a dated prefix and run by a schedule.
    template = settings.daily_prefix_template
    daily_listing = build_s3_listing_asset(
        "daily_s3_listing",
        bucket=bucket,
        prefix=template,
        partitions_def=daily_partitions,
        prefix_for_partition=prefix_for_day,
    )
    daily_processed = build_s3_processing_asset(
        "daily_s3_processed", listing=daily_listing, partitions_def=daily_partitions
    )
    daily_job = dg.define_asset_job("daily_s3_job", selection=[daily_listing, daily_processed])
    daily_schedule = build_daily_schedule(
        daily_job,
        hour_of_day=settings.daily_schedule_hour,
        name="daily_s3_schedule",
    )

    checks = [
        *build_processing_checks(s3_objects_processed, s3_listing),
        *build_processing_checks(events_summaries, events_listing),
        *build_processing_checks(prefix_processed, prefix_listing),
        *build_processing_checks(daily_processed, daily_listing),
    ]
    io_manager = YTTableIOManager(yt_cluster=resources["yt_cluster"], root=settings.yt_root)
    return dg.Definitions(
        assets=io_manager.with_table_names(
            [
                s3_listing,
                s3_objects_processed,
                s3_export,
                events_listing,
                events_summaries,
                prefix_listing,
                prefix_processed,
                daily_listing,
                daily_processed,
            ]
        ),
        asset_checks=checks,
        jobs=[prefix_job, daily_job],
        sensors=[prefix_sensor],
        schedules=[daily_schedule],
        resources={**resources, "io_manager": io_manager},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Built when Dagster loads the code location, not on import (YT jobs import modules that
    import this one, and must not load the defs folder)."""
    return build_component_definitions()
