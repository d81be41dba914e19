"""Running YT map operations from the driver side (no Dagster): spec building and starting
(waiting, progress and aborting: :mod:`yt_assets.yt.progress`).

Usage::

    operation = start_map(client, mapper, "//home/p/listing", "//tmp/p/out", MapSettings(job_count=4),
                          secure_vault={"S3_ACCESS_KEY": key, "S3_SECRET_KEY": secret})
    summary = wait_with_progress(client, operation, report=print)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema


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
) -> yt.Operation:
    """Start (without waiting) a map of ``mapper`` from ``source`` into a new ``destination`` table."""
    client.create(
        "table",
        destination,
        recursive=True,
        force=True,
        attributes={"schema": destination_schema.to_yson_type()},
    )
    return client.run_map(
        mapper,
        source,
        yt.TablePath(destination, append=True),
        spec=map_spec(settings, secure_vault),
        sync=False,
    )
