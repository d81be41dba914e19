"""Partitions of the assets: new S3 prefixes (dynamic) and days (daily).

Usage::

    s3_prefix_partitions.build_add_request(["events/2026-11-28/"])   # from a sensor
    daily_partitions.get_last_partition_key()                       # '2026-11-27'
"""

from __future__ import annotations

import os
from datetime import datetime

import dagster as dg

S3_PREFIX_PARTITIONS_NAME = "s3_prefixes"
DAILY_START_DATE = os.environ.get("YT_ASSETS_DAILY_START", "2026-11-01")

s3_prefix_partitions = dg.DynamicPartitionsDefinition(name=S3_PREFIX_PARTITIONS_NAME)
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START_DATE)


def prefix_for_day(template: str, day: str) -> str:
    """The S3 prefix of a daily partition: ``{date}`` and strftime fields of ``template`` filled in.

    >>> prefix_for_day("events/{date}/", "2026-11-28")
    'events/2026-11-28/'
    >>> prefix_for_day("events/%Y/%m/%d/", "2026-11-28")
    'events/2026/11/28/'
    """
    moment = datetime.strptime(day, "%Y-%m-%d")
    return moment.strftime(template.replace("{date}", day.replace("%", "%%")))
