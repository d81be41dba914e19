"""The driver's side of an export to S3 (no Dagster): the ``_SUCCESS`` marker and the removal
of objects an earlier export left that the new manifest does not name.

An export is complete when ``<prefix>_SUCCESS`` exists: it is removed before the jobs write and
written last (holding the manifest as JSON), so a reader that waits for it never sees a mix of
two exports.

Example::

    destination = S3Destination("my-bucket", "exports/table/")
    clear_success_marker(client, destination)
    # ... the jobs write part-*.jsonl ...
    delete_stale_objects(client, destination, keep={"exports/table/part-00000-00001.jsonl"})
    write_success_marker(client, destination, {"objects": [], "rows": 0})
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from yt_assets.s3.listing import iter_s3_objects
from yt_assets.s3.uploads import S3Destination, S3Sink, UploadedObject

__all__ = [
    "SUCCESS_MARKER",
    "clear_success_marker",
    "delete_stale_objects",
    "write_success_marker",
]

SUCCESS_MARKER = "_SUCCESS"
DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request (S3's maximum)."""


def clear_success_marker(client: Any, destination: S3Destination) -> None:
    """Remove ``_SUCCESS`` (if any): from now on the prefix is an export in progress."""
    client.delete_object(Bucket=destination.bucket, Key=destination.key(SUCCESS_MARKER))


def write_success_marker(
    client: Any, destination: S3Destination, manifest: Mapping[str, Any]
) -> UploadedObject:
    """Write ``_SUCCESS`` holding ``manifest`` as JSON: the export is complete."""
    body = json.dumps(dict(manifest), sort_keys=True).encode()
    return S3Sink(client, destination).put(SUCCESS_MARKER, body, content_type="application/json")


def delete_stale_objects(client: Any, destination: S3Destination, keep: set[str]) -> int:
    """Delete every object under the destination whose key is not in ``keep`` (nor the marker);
    returns how many were deleted. Raises on an object S3 refused to delete."""
    deleted = 0
    for batch in _batches(_stale_keys(client, destination, keep)):
        response = client.delete_objects(
            Bucket=destination.bucket,
            Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise RuntimeError(
                f"Deleting {len(errors)} stale object(s) under {destination.url()} failed, e.g. "
                f"{first.get('Key')}: {first.get('Code')}"
            )
        deleted += len(batch)
    return deleted


def _stale_keys(client: Any, destination: S3Destination, keep: set[str]) -> Iterator[str]:
    marker = destination.key(SUCCESS_MARKER)
    for listed in iter_s3_objects(client, destination.bucket, destination.prefix):
        if listed.key not in keep and listed.key != marker:
            yield listed.key


def _batches(keys: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == DELETE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
