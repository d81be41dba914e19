"""Sensors: new S3 prefixes become dynamic partitions, and one run each.

:func:`build_s3_prefix_sensor` is a factory, so one code location can watch several buckets or
roots. The work is done by :mod:`yt_assets.s3.prefixes` (pure, no Dagster): each tick lists at most
``pages_per_tick`` pages of child prefixes (1,000 prefixes a page) and ``HEAD`` s at most
``max_checks_per_tick`` readiness markers, resuming where the previous tick stopped and starting
over after the last page, so tens of thousands of prefixes never approach the 60 s sensor timeout
and a prefix created anywhere in the order is found within one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from typing import Any

import dagster as dg

from yt_assets.partitions import s3_prefix_partitions
from yt_assets.s3.prefixes import (
    DEFAULT_MAX_CHECKS,
    LIST_PAGE_SIZE,
    S3PrefixError,
    ScanCursor,
    check_prefixes_ready,
    list_child_prefixes,
    scan_step,
    summarize_scan,
)

__all__ = [
    "DEFAULT_PAGES_PER_TICK",
    "S3SensorTickError",
    "build_s3_prefix_sensor",
    "unusable_partition_keys",
]


class S3SensorTickError(dg.DagsterError):
    """A tick could not list the root or check a marker (after retries): the tick fails with this
    one line (bucket, root or key, S3 error code and HTTP status) and the cursor is kept.

    A ``DagsterError``, so Dagster records it as the tick's error itself instead of wrapping it
    in "Error occurred during the execution of evaluation_fn".
    """


DEFAULT_PAGES_PER_TICK = 10
"""Listing pages per tick: 10,000 prefixes, a few seconds even on a slow server."""

UNUSABLE_KEY_SUBSTRINGS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")
"""Dagster's invalid partition key substrings (``...`` is its range separator); mirrored here
because Dagster keeps the list private and does not check dynamic keys when adding them."""


def unusable_partition_keys(keys: Sequence[str]) -> list[str]:
    """The keys Dagster cannot use as partition keys (they contain a range separator or a control
    character). S3 allows such prefixes; the sensor leaves them out and logs a warning.

    >>> unusable_partition_keys(["a/", "b...c/", "tab\\there/"])
    ['b...c/', 'tab\\there/']
    """
    return [key for key in keys if any(bad in key for bad in UNUSABLE_KEY_SUBSTRINGS)]


def _known_partitions_lookup(
    instance: dg.DagsterInstance, partitions_name: str
) -> Callable[[Sequence[str]], AbstractSet[str]]:
    """``prefixes -> those already added as partitions``, one indexed query per listing page.

    ``DagsterInstance.get_existing_dynamic_partitions`` asks the database about the page's keys
    only (about 5 ms per 1,000 keys on SQLite, whatever the number of partitions), which beats
    loading all partition keys every tick (0.13 s per 50,000 keys, growing with the partition
    count, all held in memory) and ``has_dynamic_partition`` per key (2.2 s per 1,000 keys).
    """

    def existing(prefixes: Sequence[str]) -> AbstractSet[str]:
        if not prefixes:
            return set()
        return set(instance.get_existing_dynamic_partitions(partitions_name, list(prefixes)))

    return existing


def _s3_client(resource: Any) -> Any:
    """The boto3 client of a resource under ``required_resource_keys``: Dagster puts the result of
    ``S3Resource.get_client()`` there (one client per tick); a plain resource is asked for one."""
    if hasattr(resource, "list_objects_v2"):
        return resource
    return resource.get_client()


def build_s3_prefix_sensor(
    name: str = "s3_prefix_sensor",
    *,
    bucket: str,
    root: str,
    target: Any,
    partitions_def: dg.DynamicPartitionsDefinition = s3_prefix_partitions,
    ready_marker: str | None = None,
    pages_per_tick: int = DEFAULT_PAGES_PER_TICK,
    max_checks_per_tick: int = DEFAULT_MAX_CHECKS,
    page_size: int = LIST_PAGE_SIZE,
    minimum_interval_seconds: int = 60,
    s3_resource_key: str = "s3",
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
) -> dg.SensorDefinition:
    """A sensor adding each new ready child prefix of ``s3://bucket/root`` as a dynamic partition
    and requesting one run for it (``partition_key`` and ``run_key`` are the full prefix).

    - A child prefix is ``root + name + "/"`` (``ListObjectsV2`` ``CommonPrefixes``), e.g.
      ``events/2026-11-28/`` under ``root="events/"``.
    - ``ready_marker`` (e.g. ``"_SUCCESS"``): a prefix counts only once ``prefix + ready_marker``
      exists; until then it is left out and checked again on the next pass. ``None``: every new
      prefix is ready.
    - ``target``: a job or an asset selection partitioned by ``partitions_def``. Share one
      ``partitions_def`` between sensors or give each its own, as the targets need; sensor
      ``name`` s must be unique in a code location, and two sensors should not watch the same root
      with the same ``partitions_def``.
    - Per tick: at most ``pages_per_tick`` listing pages of ``page_size`` prefixes and
      ``max_checks_per_tick`` marker ``HEAD`` s (8 at a time); one client per tick from the
      ``S3Resource`` under ``s3_resource_key``; one database query per page for known partitions.
    - The cursor is JSON (:class:`yt_assets.s3.prefixes.ScanCursor`): the resume position and
      counters of the current pass, never a list of prefixes. Exactness comes from the dynamic
      partitions themselves, so a reset or lost cursor only costs one extra pass, never a
      duplicate run.

    Example::

        from dagster_aws.s3 import S3Resource
        from yt_assets.s3.client import DEFAULT_REGION

        @dg.asset(partitions_def=s3_prefix_partitions)
        def prefix_asset() -> None: ...

        processed_job = dg.define_asset_job("process_prefixes", selection=[prefix_asset])
        defs = dg.Definitions(
            assets=[prefix_asset],
            sensors=[
                build_s3_prefix_sensor(bucket="raw", root="events/", target=processed_job,
                                       ready_marker="_SUCCESS"),
                build_s3_prefix_sensor("clicks_sensor", bucket="raw", root="clicks/",
                                       target=processed_job),
            ],
            resources={"s3": S3Resource(region_name=DEFAULT_REGION)},
        )
    """
    partitions_name = getattr(partitions_def, "name", None)
    if not isinstance(partitions_def, dg.DynamicPartitionsDefinition) or not partitions_name:
        raise TypeError("partitions_def must be a DynamicPartitionsDefinition with a name")
    if pages_per_tick < 1:
        raise ValueError(f"pages_per_tick must be >= 1, got {pages_per_tick}")
    if max_checks_per_tick < 1:
        raise ValueError(f"max_checks_per_tick must be >= 1, got {max_checks_per_tick}")
    if not 1 <= page_size <= LIST_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {LIST_PAGE_SIZE}, got {page_size}")
    if not bucket:
        raise ValueError("bucket must not be empty")
    if ready_marker is not None and (not ready_marker or ready_marker.startswith("/")):
        raise ValueError(f"ready_marker must be a name like '_SUCCESS', got {ready_marker!r}")

    @dg.sensor(
        name=name,
        target=target,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={s3_resource_key},
        description=description
        or (
            f"New child prefixes of s3://{bucket}/{root}"
            + (f" with {ready_marker!r}" if ready_marker else "")
            + f" -> dynamic partitions {partitions_name!r}, one run each"
        ),
    )
    def _s3_prefix_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        try:
            cursor = ScanCursor.from_json(context.cursor, bucket=bucket, root=root)
        except ValueError as error:
            context.log.warning(f"Starting a new pass: {error}")
            cursor = ScanCursor.start(bucket, root)
        client = _s3_client(getattr(context.resources, s3_resource_key))
        check_ready = (
            None
            if ready_marker is None
            else partial(check_prefixes_ready, client, bucket, marker=ready_marker)
        )
        try:
            step = scan_step(
                cursor,
                list_page=lambda after: list_child_prefixes(
                    client, bucket, root, start_after=after, page_size=page_size
                ),
                known=_known_partitions_lookup(context.instance, partitions_name),
                check_ready=check_ready,
                max_pages=pages_per_tick,
                max_checks=max_checks_per_tick,
            )
        except S3PrefixError as error:
            raise S3SensorTickError(str(error)) from None
        summary = summarize_scan(step, ready_marker=ready_marker)
        unusable = unusable_partition_keys(step.new_ready)
        if unusable:
            context.log.warning(
                f"Left out {len(unusable)} prefixes that cannot be Dagster partition keys: "
                + ", ".join(repr(key) for key in unusable[:10])
            )
        new_keys = [key for key in step.new_ready if key not in unusable]
        if not new_keys:
            return dg.SensorResult(skip_reason=summary, cursor=step.cursor.to_json())
        context.log.info(summary)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in new_keys],
            dynamic_partitions_requests=[partitions_def.build_add_request(new_keys)],
            cursor=step.cursor.to_json(),
        )

    return _s3_prefix_sensor
