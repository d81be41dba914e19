"""Running YT map operations from the driver side (no Dagster): spec building and starting
(waiting, progress and aborting: :mod:`yt_assets.yt.progress`).

Usage::

    operation = start_map(client, mapper, "//home/p/listing", "//tmp/p/out", MapSettings(job_count=4),
                          secure_vault={"S3_ACCESS_KEY": key, "S3_SECRET_KEY": secret})
    with aborted_if_left(operation):  # from yt_assets.yt.progress
        summary = wait_with_progress(client, operation, report=print)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema

from yt_assets.yt.shipping import shipping

JOB_FORMAT = yt.YsonFormat(require_yson_bindings=False)
"""Rows as YSON, parsed by ``yt.yson``'s pure-Python code where a node lacks the compiled
bindings (they are shipped, but ``yt.wrapper`` drops them on a node of another platform)."""


@dataclass(frozen=True)
class MapSettings:
    """Scheduling settings of a map operation (the cluster-side knobs users tune)."""

    job_count: int | None = None
    max_failed_job_count: int = 3
    memory_limit_mb: int = 1024
    docker_image: str | None = None
    pool: str | None = None
    title: str | None = None


def map_spec(settings: MapSettings, secure_vault: Mapping[str, str]) -> dict[str, Any]:
    """The operation spec: secrets go only to ``secure_vault``, never to ``environment``."""
    mapper: dict[str, Any] = {"memory_limit": settings.memory_limit_mb * 1024 * 1024}
    if settings.docker_image:
        mapper["docker_image"] = settings.docker_image
    spec: dict[str, Any] = {
        "mapper": mapper,
        "max_failed_job_count": settings.max_failed_job_count,
        "secure_vault": dict(secure_vault),
    }
    if settings.job_count is not None:
        spec["job_count"] = settings.job_count
    if settings.pool:
        spec["pool"] = settings.pool
    if settings.title:
        spec["title"] = settings.title
    return spec


def start_map(
    client: yt.YtClient,
    mapper: Callable[..., Any],
    source: str,
    destination: str,
    destination_schema: TableSchema,
    settings: MapSettings,
    *,
    secure_vault: Mapping[str, str],
    log: Callable[[str], None] | None = None,
) -> yt.Operation:
    """Start (without waiting) a map of ``mapper`` from ``source`` into a new ``destination`` table.

    The operation ships what the mapper imports (:mod:`yt_assets.yt.shipping`); ``log`` gets one
    line saying what was shipped, how much of it was new in the file cache and how long the
    packing, upload and start took.
    """
    client.create(
        "table",
        destination,
        recursive=True,
        force=True,
        attributes={"schema": destination_schema.to_yson_type()},
    )
    started = time.time()
    with shipping(client, mapper, docker_image=settings.docker_image) as shipment:
        operation = client.run_map(
            mapper,
            source,
            yt.TablePath(destination, append=True),
            spec=map_spec(settings, secure_vault),
            format=JOB_FORMAT,
            sync=False,
        )
    elapsed = time.time() - started
    if log is not None:
        try:
            try:
                files = shipped_files(client, operation.id, started)
            except yt.YtError as error:  # a report only: never fail the step for it
                files = f"job files not described ({str(error).splitlines()[0]})"
            log(f"{shipment.describe()}; {files}; packed, uploaded and started in {elapsed:.1f} s")
        except BaseException:  # interrupted before the caller could open aborted_if_left
            operation.abort()
            raise
    return operation


def shipped_files(client: yt.YtClient, operation_id: str, since: float) -> str:
    """What the operation's job files weigh and how many of them the file cache got new
    (created after ``since``, a Unix time) rather than reused."""
    spec = client.get_operation(operation_id, attributes=["spec"])["spec"]
    paths = [str(path) for path in (spec.get("mapper") or {}).get("file_paths") or []]
    total = new = new_size = 0
    for path in paths:
        attributes = client.get(path + "/@", attributes=["uncompressed_data_size", "creation_time"])
        size = int(attributes.get("uncompressed_data_size") or 0)
        total += size
        created = attributes.get("creation_time")
        if created and _unix_time(str(created)) >= since - 1.0:
            new += 1
            new_size += size
    return (
        f"{len(paths)} job files, {total / 1e6:.1f} MB; {new} new in the file cache "
        f"({new_size / 1e6:.1f} MB uploaded)"
    )


def _unix_time(iso: str) -> float:
    return (
        datetime.strptime(iso.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        .replace(tzinfo=UTC)
        .timestamp()
    )
