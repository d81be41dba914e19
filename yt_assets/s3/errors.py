"""S3 errors and the one rule for what of a botocore error may be shown (stdlib and botocore only).

What may be shown: for an S3 error response (``ClientError``), its error code and HTTP status;
for another botocore error (network, timeout...), its type; for anything else (a processor's
error), its type and text. Never a botocore error's text, which may quote a request URL with
signed parameters. Strings to ``redact`` (keys) are replaced by
``***`` whatever their source.

Example::

    from botocore.exceptions import BotoCoreError, ClientError

    error = ClientError({"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject")
    assert describe_s3_error(error) == "NoSuchKey (HTTP 404)"
    assert describe_s3_error(ValueError("bad row")) == "ValueError: bad row"
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["S3ListingError", "describe_s3_error", "listing_error", "s3_error_code"]

MAX_DESCRIPTION_CHARS = 500


def s3_error_code(error: BaseException) -> tuple[str, int | None]:
    """The S3 error code and HTTP status of a ``ClientError``; the type name (and no status) else."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "UnknownError")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code, int(status) if status else None
    return type(error).__name__, None


def describe_s3_error(error: BaseException, redact: Sequence[str] = ()) -> str:
    """A short, secret-free, one-line description of ``error`` (module docstring)."""
    code, status = s3_error_code(error)
    if isinstance(error, ClientError):
        text = f"{code} (HTTP {status})" if status else code
    elif isinstance(error, BotoCoreError):
        text = code
    else:
        detail = " ".join(str(error).split())
        text = f"{code}: {detail}" if detail else code
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    return text[:MAX_DESCRIPTION_CHARS]


class S3ListingError(Exception):
    """Listing a bucket failed: missing bucket, denied access, bad pagination, unreachable server.

    The message names the bucket, the prefix and an error code (the S3 error code such as
    ``NoSuchBucket`` or ``AccessDenied``, or the exception type for network errors); never keys or
    secrets. The original exception, if any, is chained as ``__cause__``.

    Example::

        error = S3ListingError("no-such-bucket", "raw/", "NoSuchBucket", "HTTP 404")
        assert str(error) == "Listing s3://no-such-bucket/raw/ failed: NoSuchBucket (HTTP 404)"
    """

    def __init__(self, bucket: str, prefix: str, code: str, detail: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.code = code
        self.detail = detail
        message = f"Listing s3://{bucket}/{prefix} failed: {code}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


def listing_error(error: Exception, bucket: str, prefix: str) -> S3ListingError:
    """An :class:`S3ListingError` for a botocore exception: its S3 error code and HTTP status,
    or its type."""
    code, status = s3_error_code(error)
    if status:
        return S3ListingError(bucket, prefix, code, f"HTTP {status}")
    return S3ListingError(bucket, prefix, code, _endpoint_of(error))


def _endpoint_of(error: BaseException) -> str:
    """``endpoint http://host:port`` of a botocore connection error (scheme and host only: never a
    path or query), or ``""``.

    >>> from botocore.exceptions import EndpointConnectionError
    >>> _endpoint_of(EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b?list-type=2"))
    'endpoint http://127.0.0.1:9'
    """
    url = (
        getattr(error, "kwargs", {}).get("endpoint_url")
        if isinstance(error, BotoCoreError)
        else None
    )
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    return f"endpoint {parts.scheme}://{parts.netloc}" if parts.netloc else ""
