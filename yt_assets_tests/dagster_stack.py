"""Helpers for the Dagster-level tests: resources on the real loopback stack, seeding S3.

The stack itself comes from fixtures: ``s3_server`` (moto, ``conftest.py``) and
``dagster_local_yt`` (one local YT server for the session's Dagster tests, ``conftest.py``).
Each test module keeps its tables under its own Cypress root.

Example::

    def test_listing(dagster_local_yt, s3_server, s3_bucket):
        put_objects(s3_server, s3_bucket, {"a/1.json": b"{}"})  # from conftest
        dg.materialize([listing], resources=stack_resources(dagster_local_yt, s3_server, "//home/t"))
"""

from typing import Any

from dagster_aws.s3 import S3Resource

from yt_assets.io_manager import YTTableIOManager
from yt_assets.local_yt import LocalYT
from yt_assets.resources import YTResource
from yt_assets_tests.conftest import S3TestServer
from yt_assets_tests.job_processors import UPLOAD_ACCESS, UPLOAD_SECRET

__all__ = ["UPLOAD_ACCESS", "UPLOAD_SECRET", "stack_resources"]


def stack_resources(local_yt: LocalYT, s3_server: S3TestServer, root: str) -> dict[str, Any]:
    """The resources of ``yt_assets.definitions``, pointed at the loopback stack."""
    yt_cluster = YTResource(proxy=local_yt.proxy_url)
    return {
        "yt_cluster": yt_cluster,
        "io_manager": YTTableIOManager(yt_cluster=yt_cluster, root=root),
        "s3": S3Resource(
            endpoint_url=s3_server.endpoint_url,
            region_name=s3_server.region,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
        ),
        "s3_upload": S3Resource(
            endpoint_url=s3_server.endpoint_url,
            region_name=s3_server.region,
            aws_access_key_id=UPLOAD_ACCESS,
            aws_secret_access_key=UPLOAD_SECRET,
        ),
    }
