"""Schedules: the daily-partitioned listing and processing pair, run each day for the day before.

Usage::

    daily_job = dg.define_asset_job("daily_s3_job", selection=[daily_listing, daily_processed])
    schedule = build_daily_schedule(daily_job, hour_of_day=2)
"""

from __future__ import annotations

from typing import Any

import dagster as dg


def build_daily_schedule(
    job: dg.UnresolvedAssetJobDefinition,
    *,
    hour_of_day: int = 1,
    minute_of_hour: int = 0,
    name: str | None = None,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> Any:
    """A schedule that materialises, at ``hour_of_day`` each day, the previous day's partition."""
    # Returns Dagster's (non-public) unresolved partitioned schedule, resolved by Definitions.
    if not 0 <= hour_of_day <= 23:
        raise ValueError(f"hour_of_day={hour_of_day} must lie between 0 and 23")
    if not 0 <= minute_of_hour <= 59:
        raise ValueError(f"minute_of_hour={minute_of_hour} must lie between 0 and 59")
    return dg.build_schedule_from_partitioned_job(
        job,
        name=name,
        hour_of_day=hour_of_day,
        minute_of_hour=minute_of_hour,
        default_status=default_status,
    )
