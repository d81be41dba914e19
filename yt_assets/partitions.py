"""Partitions of the assets: new S3 prefixes (dynamic) and days (daily).

Usage::

    s3_prefix_partitions.build_add_request(["events/2026-11-28/"])   # from a sensor
    daily_partitions.get_last_partition_key()                       # '2026-11-27'
"""

from __future__ import annotations

import dagster as dg

from yt_assets.settings import DEFAULT_DAILY_START, prefix_for_day

__all__ = ["build_daily_partitions", "daily_partitions", "prefix_for_day", "s3_prefix_partitions"]

S3_PREFIX_PARTITIONS_NAME = "s3_prefixes"

s3_prefix_partitions = dg.DynamicPartitionsDefinition(name=S3_PREFIX_PARTITIONS_NAME)


def build_daily_partitions(start_date: str = DEFAULT_DAILY_START) -> dg.DailyPartitionsDefinition:
    """Daily partitions from ``start_date`` (``YYYY-MM-DD``; the code location passes
    ``Settings.daily_start``, i.e. ``YT_ASSETS_DAILY_START``)."""
    return dg.DailyPartitionsDefinition(start_date=start_date)


daily_partitions = build_daily_partitions()
"""The daily partitions from :data:`~yt_assets.settings.DEFAULT_DAILY_START`."""
