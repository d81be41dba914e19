"""Processors of the tests, as a user would write them: a module of their own (outside
``yt_assets``) that imports no Dagster, shipped with the operation and imported by the jobs.

Each takes ``(body, *, key)`` like :func:`yt_assets.yt_jobs.s3_processing.process_object`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yt_assets.yt_jobs.s3_processing import process_object

UPLOAD_ACCESS = "upload-access-key-must-not-leak"
UPLOAD_SECRET = "upload-secret-key-must-not-leak"

IMPORT_PROBES = ("dagster", "yt_assets.local_yt", "yt_assets.assets", "boto3", "yt.wrapper")


def environment_probe(body: Any, *, key: str) -> dict[str, Any]:
    """Which secure vault variables the job sees, and whether an upload key reached it."""
    vault = sorted(name for name in os.environ if name.startswith("YT_SECURE_VAULT"))
    values = "\n".join(os.environ.values())
    return {
        "vault_names": ",".join(vault),
        "upload_key_seen": UPLOAD_ACCESS in values or UPLOAD_SECRET in values,
    }


def prints_its_keys_then_fails(body: Any, *, key: str) -> dict[str, Any]:
    """A careless processor: raises, and has the job print the secure vault's S3 keys on stderr
    when it exits (after the traceback: the last line, in every excerpt of it)."""
    import atexit
    import sys

    access, secret = (
        os.environ.get(f"YT_SECURE_VAULT_S3_{kind}_KEY") for kind in ("ACCESS", "SECRET")
    )
    atexit.register(lambda: print(f"at exit: keys {access} {secret}", file=sys.stderr))
    raise RuntimeError(f"failing on purpose at {key}")


def import_probe(body: Any, *, key: str) -> dict[str, Any]:
    """The bytes of the object, and which of :data:`IMPORT_PROBES` the job can import."""
    data = body.read()
    importable = []
    for name in IMPORT_PROBES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        importable.append(name)
    return {
        "size": len(data),
        "importable": ",".join(importable),
        "python": sys.version.split()[0],
    }


def add_ten(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A Python mapper (not a processor), pickled by the client and run by ``_py_runner.py``."""
    yield {"x": row["x"] + 10, "job": int(os.environ["YT_JOB_COOKIE"])}


def slow_processor(body: Any, *, key: str) -> dict[str, Any]:
    """Never finishes in a test's time: the job must be aborted."""
    time.sleep(600)
    return {}


SLOW_SECONDS = 1.0


def one_second_processor(body: Any, *, key: str) -> dict[str, Any]:
    """The default processing, after :data:`SLOW_SECONDS` of sleep: a job that takes a while."""
    time.sleep(SLOW_SECONDS)
    return process_object(body, key=key)


@dataclass(frozen=True)
class FailsOnce:
    """The default processing, except that the first attempt at a key ending in ``bad_suffix``
    raises (the marker file remembers it across job processes)."""

    marker: str
    bad_suffix: str = "bad.txt"

    def __call__(self, body: Any, *, key: str) -> dict[str, Any]:
        marker = Path(self.marker)
        if key.endswith(self.bad_suffix) and not marker.exists():
            marker.write_text("failed")
            raise RuntimeError(f"injected failure for {key}")
        return process_object(body, key=key)


def copy_to_sink(body: Any, *, key: str, sink: Any) -> dict[str, Any]:
    """Writes the object's bytes, streamed, to ``<key>.copy`` under the sink's prefix; reports
    the job's peak resident memory (``ru_maxrss``, KiB) after it and the vault names it saw."""
    import resource

    written = sink.put(key + ".copy", body, content_type="application/octet-stream")
    vault = sorted(name for name in os.environ if name.startswith("YT_SECURE_VAULT_"))
    return {
        "size": written.size,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vault_names": ",".join(vault),
    }


FAIL_AFTER_BYTES = 12 << 20


class _BreaksAfter:
    """A body that raises after :data:`FAIL_AFTER_BYTES`: a processor failing mid-upload."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._read = 0

    def read(self, amount: int = -1) -> bytes:
        if self._read >= FAIL_AFTER_BYTES:
            raise RuntimeError(f"injected failure after {self._read} bytes")
        data: bytes = self._body.read(amount)
        self._read += len(data)
        return data


def copy_then_fail(body: Any, *, key: str, sink: Any) -> dict[str, Any]:
    """Starts writing ``<key>.copy`` like :func:`copy_to_sink`, then fails after 12 MiB."""
    sink.put(key + ".copy", _BreaksAfter(body))
    return {}
