"""The code location: every asset, resource, sensor and schedule, assembled in one place.

``dagster dev`` loads ``defs`` from here (see ``pyproject.toml`` ``[tool.dagster]`` and
``workspace.yaml``). Settings come from the environment: ``YT_PROXY`` (unset: the embedded local
YT), ``YT_TOKEN``, ``S3_*`` (or ``configs/secrets.env``), ``S3_BUCKET`` / ``S3_PREFIX`` for the
default listing's defaults.
"""

from __future__ import annotations

import os

import dagster as dg

from yt_assets.assets import build_s3_listing_asset, build_s3_processing_asset
from yt_assets.io_manager import YTTableIOManager
from yt_assets.resources import build_resources
from yt_assets.table_paths import DEFAULT_ROOT


def build_definitions() -> dg.Definitions:
    """The project's ``Definitions``, configured from the environment at load time."""
    resources = build_resources()
    s3_listing = build_s3_listing_asset(
        "s3_listing",
        bucket=os.environ.get("S3_BUCKET") or None,
        prefix=os.environ.get("S3_PREFIX", ""),
    )
    s3_objects_processed = build_s3_processing_asset("s3_objects_processed", listing=s3_listing)
    return dg.Definitions(
        assets=[s3_listing, s3_objects_processed],
        resources={
            **resources,
            "io_manager": YTTableIOManager(
                yt_cluster=resources["yt_cluster"], root=os.environ.get("YT_ROOT", DEFAULT_ROOT)
            ),
        },
    )


defs = build_definitions()
