"""Running YT map operations from the driver side (no Dagster): spec building, waiting, aborting.

Usage::

    operation = start_map(client, mapper, "//home/p/listing", "//tmp/p/out", MapSettings(job_count=4),
                          secure_vault={"S3_ACCESS_KEY": key, "S3_SECRET_KEY": secret})
    wait_or_abort(operation)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema

STDERR_EXCERPT_CHARS = 4_000


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


def wait_or_abort(operation: yt.Operation) -> None:
    """Wait for the operation; abort it if the waiting thread is interrupted (e.g. a run terminated).

    ``Operation.wait`` aborts only on KeyboardInterrupt and TimeoutError; Dagster stops a step with
    its own exception, so every non-``Exception`` interruption aborts the operation here.
    """
    try:
        operation.wait(print_progress=False)
    except yt.YtOperationFailedError:
        raise
    except BaseException:
        try:
            operation.abort()
        finally:
            raise


def stderr_excerpt(
    error: yt.YtOperationFailedError, limit: int = STDERR_EXCERPT_CHARS, max_jobs: int = 3
) -> str:
    """The end of the first failed jobs' stderr (where a traceback names its cause), in at most
    ``limit`` characters."""
    jobs = [job for job in error.attributes.get("stderrs") or [] if job.get("stderr")][:max_jobs]
    if not jobs:
        return ""
    budget = max(200, limit // len(jobs))
    parts = []
    for job in jobs:
        stderr = job["stderr"]
        text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else str(stderr)
        text = text.strip()
        if len(text) > budget:
            text = "…" + text[-(budget - 1) :]
        parts.append(f"--- job {job.get('id', '')} on {job.get('host', '?')}\n{text}")
    return "\n".join(parts)
