"""Running YT map operations from the driver side (no Dagster): spec building, waiting, aborting.

Usage::

    operation = start_map(client, mapper, "//home/p/listing", "//tmp/p/out", MapSettings(job_count=4),
                          secure_vault={"S3_ACCESS_KEY": key, "S3_SECRET_KEY": secret})
    wait_or_abort(operation)
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

STDERR_EXCERPT_CHARS = 4_000
JOB_FORMAT = yt.YsonFormat(require_yson_bindings=False)
"""Rows as YSON, parsed by ``yt.yson``'s pure-Python code where a node lacks the compiled
bindings (they are platform-specific and not shipped)."""


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
        except BaseException:  # interrupted before the caller could wait_or_abort
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


def failure_message(error: yt.YtError) -> str:
    """The chain of first inner errors of a failed operation, outermost first: e.g. "Failed jobs
    limit exceeded ...: Failed to prepare job environment: Failed to pull docker image ..."."""
    messages: list[str] = []
    inner = list(error.inner_errors or [])
    while inner:
        first = inner[0]
        message = str(first.get("message", "")).strip()
        if message and message not in messages:
            messages.append(message)
        inner = list(first.get("inner_errors") or [])
    return ": ".join(messages) or str(error)


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
