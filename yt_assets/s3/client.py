"""The one boto3 S3 client builder, and the region default (stdlib and boto3 only: jobs import it).

Example::

    client = make_s3_client("AKID", "SECRET", endpoint_url="http://127.0.0.1:9000")
    assert client.meta.region_name == DEFAULT_REGION
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_REGION", "make_s3_client", "resolve_s3_client"]

DEFAULT_REGION = "us-east-1"
"""The region when none is configured (AWS's default; what local S3 servers expect)."""


def make_s3_client(
    access_key: str,
    secret_key: str,
    *,
    endpoint_url: str | None = None,
    region_name: str | None = DEFAULT_REGION,
    max_pool_connections: int = 10,
    addressing_style: str | None = None,
    max_attempts: int = 5,
    connect_timeout: float = 10,
    read_timeout: float = 120,
) -> Any:
    """A boto3 S3 client: standard retries, a connection pool of the given size.

    ``addressing_style`` defaults to ``"path"`` with a custom endpoint, ``"auto"`` on AWS. The
    keys are passed to boto3 only (never logged, never in the client's ``repr``).
    """
    import boto3
    from botocore.config import Config

    style = addressing_style or ("path" if endpoint_url else "auto")
    config = Config(
        s3={"addressing_style": style},
        max_pool_connections=max_pool_connections,
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region_name,
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def resolve_s3_client(s3_client: Any) -> Any:
    """Return a boto3 S3 client from a boto3 client or dagster-aws's ``S3Resource`` (anything
    with ``get_client()``; duck typing, no import of dagster-aws)."""
    if hasattr(s3_client, "list_objects_v2"):
        return s3_client
    get_client = getattr(s3_client, "get_client", None)
    if callable(get_client):
        return get_client()
    raise TypeError(
        "s3_client must be a boto3 S3 client or have a get_client() method "
        f"(like dagster-aws's S3Resource), got {type(s3_client).__name__}"
    )
