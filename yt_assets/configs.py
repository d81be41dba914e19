"""Run configuration of the assets (Dagster ``Config`` classes), validated with named rules."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import dagster as dg
from pydantic import Field, field_validator

_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


def bucket_name_problem(name: str) -> str | None:
    """Which S3 bucket naming rule ``name`` breaks, or ``None`` when it is a valid bucket name."""
    if not 3 <= len(name) <= 63:
        return "a bucket name has 3 to 63 characters"
    if not _BUCKET_CHARACTERS.match(name):
        return (
            "a bucket name holds only lowercase letters, digits, dots and hyphens, and starts and "
            "ends with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "a bucket name has no two adjacent dots, nor a dot next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "a bucket name is not formatted as an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "a bucket name does not use the reserved prefixes xn--/sthree- or suffixes -s3alias/--ol-s3"
    return None


class S3ListingConfig(dg.Config):
    """What an S3 listing asset lists.

    Example (run config of an asset named ``s3_listing``)::

        {"ops": {"s3_listing": {"config": {"bucket": "my-bucket", "prefix": "events/", "extension": ".json"}}}}
    """

    bucket: str = Field(description="S3 bucket to list.")
    prefix: str = Field(default="", description="Key prefix to list under ('' lists the bucket).")
    extension: str | None = Field(
        default=None,
        description="Keep only keys with this extension ('.json' or 'json', case-insensitive).",
    )
    max_files: int | None = Field(
        default=None, description="Stop after this many objects (0 lists nothing; unset: no limit)."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_is_valid(cls, value: str) -> str:
        problem = bucket_name_problem(value)
        if problem:
            raise ValueError(f"bucket {value!r} is not a valid S3 bucket name: {problem}")
        return value

    @field_validator("max_files")
    @classmethod
    def _max_files_not_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(
                f"max_files={value} is invalid: it must be >= 0 (or unset for no limit)"
            )
        return value

    @field_validator("extension")
    @classmethod
    def _extension_is_one_suffix(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "/" in value or value.strip(".") == "":
            raise ValueError(
                f"extension {value!r} is invalid: give a suffix such as '.json' or 'json'"
            )
        return value


class S3ProcessingConfig(dg.Config):
    """How the YT map operation that processes the listed objects runs.

    Example (run config of an asset named ``s3_objects_processed``)::

        {"ops": {"s3_objects_processed": {"config": {"job_count": 16, "downloads_in_flight": 8}}}}
    """

    job_count: int | None = Field(
        default=None, ge=1, description="Number of map jobs (unset: chosen by YT from data size)."
    )
    max_failed_job_count: int = Field(
        default=3,
        ge=0,
        description="Failed jobs tolerated (each retried) before the operation fails.",
    )
    memory_limit_mb: int = Field(default=1024, ge=64, description="Memory limit of each job.")
    docker_image: str | None = Field(
        default=None,
        description="Docker image of the jobs (must hold Python, boto3 and yt-wrapper).",
    )
    pool: str | None = Field(default=None, description="YT scheduler pool.")
    downloads_in_flight: int = Field(
        default=16, ge=1, le=64, description="Concurrent S3 downloads inside each job."
    )
    progress_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        description="While the operation runs, its job counts are logged when they change, at "
        "most once per this many seconds.",
    )
    on_error: Literal["record", "fail"] = Field(
        default="record",
        description="'record': a failing object gets its error in the 'error' column; "
        "'fail': it fails the job (and the operation once max_failed_job_count is exceeded).",
    )
