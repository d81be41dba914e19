"""Run configuration of the assets (Dagster ``Config`` classes), validated with named rules.

Dagster's config schema types the fields (the launchpad flags a string where an int belongs, an
unknown ``on_error``); the rules it cannot express (ranges, bucket names, extension syntax) are
checked when the step builds its config: a broken rule fails the step at once with
:class:`InvalidConfigError`, a ``dg.Failure`` whose description is one line naming the field, the
value and the rule, before anything is listed or written.

The config classes' docstrings and field descriptions are plain text: the launchpad shows them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

import dagster as dg
from pydantic import Field, ValidationError, ValidationInfo, field_validator

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


def checked_bucket(value: str) -> str:
    """``value`` if it is a valid bucket name, else the ``ValueError`` naming the rule."""
    problem = bucket_name_problem(value)
    if problem:
        raise ValueError(f"bucket {value!r} is not a valid S3 bucket name: {problem}")
    return value


GLOB_CHARACTERS = frozenset("*?[]{}")


class InvalidConfigError(dg.Failure, ValueError):
    """A run config value breaks a rule; the description is one line (field, value, rule)."""

    def __init__(self, description: str) -> None:
        super().__init__(description=description, allow_retries=False)

    def __str__(self) -> str:
        return self.description or ""


def config_error_line(config_name: str, error: ValidationError) -> str:
    """One line per broken rule, joined with ``; `` (pydantic's own text without its URL)."""
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item.get("loc", ())) or config_name
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        if item.get("type") == "value_error":
            problems.append(message)  # our validators name field and value themselves
        else:
            problems.append(
                f"{field}={item.get('input')!r} is invalid: {message[:1].lower()}{message[1:]}"
            )
    return f"Invalid {config_name}: " + "; ".join(problems)


class ValidatedConfig(dg.Config):
    """A ``dg.Config`` whose broken rules raise :class:`InvalidConfigError` (one line), in the
    step as well as in Python code."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise InvalidConfigError(config_error_line(type(self).__name__, error)) from None


class S3ListingConfig(ValidatedConfig):
    """What an S3 listing asset lists.

    Example (run config of an asset named s3_listing)::

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
    allow_no_match: bool = Field(
        default=False,
        description="Accept an empty table when keys were listed but none matched 'extension' "
        "(otherwise the step fails and the stored table stays as it was).",
    )
    listing_mode: Literal["local", "yt_operation"] = Field(
        default="local",
        description="'local': the step lists the prefix itself. 'yt_operation': one YT map "
        "operation lists it, its key ranges (cut at the prefix's sub-prefixes) spread over "
        "'listing_jobs' jobs; same table (rows, order, schema). The jobs get only the S3 "
        "download keys, in the operation's secure_vault.",
    )
    listing_jobs: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="With listing_mode 'yt_operation': at most this many jobs (the key space "
        "is cut into up to twice as many ranges).",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_key_prefix(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError(
                f"prefix {value!r} is invalid: S3 keys don't start with '/'; write "
                f"{value.lstrip('/')!r}"
            )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket_is_valid(cls, value: str) -> str:
        return checked_bucket(value)

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
        if GLOB_CHARACTERS & set(value):
            suggestion = "".join(ch for ch in value if ch not in GLOB_CHARACTERS).lstrip(".")
            hint = f"; write '.{suggestion}'" if suggestion else ""
            raise ValueError(
                f"extension {value!r} is invalid: it is a suffix, not a pattern (no * ? [ ] "
                f"{{ }}){hint}"
            )
        if "/" in value or "\\" in value or value.strip(".") == "":
            raise ValueError(
                f"extension {value!r} is invalid: give a suffix such as '.json' or 'json' "
                "(no path separator)"
            )
        return value


class MapOperationConfig(ValidatedConfig):
    """How a YT map operation of an asset runs (the fields every operation asset shares)."""

    job_count: int | None = Field(
        default=None, ge=1, description="Number of map jobs (unset: chosen by YT from data size)."
    )
    max_failed_job_count: int = Field(
        default=3,
        ge=0,
        description="Failed jobs tolerated (each retried) before the operation fails.",
    )
    memory_limit_mb: int = Field(
        default=1024, ge=64, description="Memory limit of each job, in MB (at least 64)."
    )
    docker_image: str | None = Field(
        default=None,
        description="Docker image of the jobs (must hold Python, boto3 and yt-wrapper).",
    )
    pool: str | None = Field(default=None, description="YT scheduler pool.")
    progress_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        description="While the operation runs, its job counts are logged when they change, at "
        "most once per this many seconds.",
    )

    @field_validator("docker_image", "pool")
    @classmethod
    def _not_blank(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                f"{info.field_name}={value!r} is invalid: it must not be empty (leave it unset "
                "for the default)"
            )
        return value


class S3ProcessingConfig(MapOperationConfig):
    """How the YT map operation that processes the listed objects runs.

    Example (run config of an asset named s3_objects_processed)::

        {"ops": {"s3_objects_processed": {"config": {"job_count": 16, "downloads_in_flight": 8}}}}
    """

    download_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Attempts per object when S3 throttles, answers 5xx or the body breaks off "
        "(each from the first byte); then the object gets an 'error'.",
    )
    download_retry_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Longest time an object's download is retried, from its first attempt.",
    )
    download_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Seconds without a byte from S3 before an attempt fails."
    )
    downloads_in_flight: int = Field(
        default=16, ge=1, le=64, description="Concurrent S3 downloads inside each job."
    )
    on_error: Literal["record", "fail"] = Field(
        default="record",
        description="'record': a failing object gets its error in the 'error' column; "
        "'fail': it fails the job (and the operation once max_failed_job_count is exceeded).",
    )


class S3ExportConfig(MapOperationConfig):
    """Where and how a YT table is exported to S3 as JSON Lines.

    Example (run config of an asset named s3_objects_processed_export)::

        {"ops": {"s3_objects_processed_export": {"config": {"bucket": "b", "prefix": "exports/t/", "compression": "gzip"}}}}
    """

    bucket: str = Field(description="S3 bucket to write to.")
    prefix: str = Field(
        description="Key prefix of the export (a folder: end it with '/'); a partition writes "
        "under prefix + partition key + '/'."
    )
    rows_per_object: int | None = Field(
        default=None, ge=1, description="Rows per object (unset: one object per job)."
    )
    compression: Literal["none", "gzip"] = Field(
        default="none", description="'gzip' writes .jsonl.gz objects."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_is_valid(cls, value: str) -> str:
        return checked_bucket(value)

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(
                f"prefix {value!r} is invalid: give a key prefix ending with '/' and not "
                "starting with '/', e.g. 'exports/table/'"
            )
        return value
