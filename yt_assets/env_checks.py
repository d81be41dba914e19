"""The code location's environment settings, checked when the definitions load (no Dagster).

A setting that cannot mean what was written stops the code location from loading with one line
naming the variable, its value and the rule (:class:`InvalidSettingError`), instead of a run
failing later or a schedule firing at an hour that does not exist.

>>> daily_prefix_template_setting({"S3_DAILY_PREFIX_TEMPLATE": "events/%Y/%m/%d/"})
'events/%Y/%m/%d/'
>>> try:
...     schedule_hour_setting({"DAILY_SCHEDULE_HOUR": "25"})
... except InvalidSettingError as error:
...     print(error)
DAILY_SCHEDULE_HOUR='25' is invalid: it must be a whole hour from 0 to 23 (UTC)
"""

from __future__ import annotations

from collections.abc import Mapping

from yt_assets.partitions import prefix_for_day
from yt_assets.table_paths import DEFAULT_ROOT, validate_root

__all__ = [
    "DEFAULT_DAILY_PREFIX_TEMPLATE",
    "DEFAULT_DAILY_SCHEDULE_HOUR",
    "InvalidSettingError",
    "daily_prefix_template_setting",
    "schedule_hour_setting",
    "yt_root_setting",
]

DEFAULT_DAILY_PREFIX_TEMPLATE = "events/{date}/"
DEFAULT_DAILY_SCHEDULE_HOUR = 2
_DISTINCT_DAYS = ("2026-01-01", "2026-01-02", "2026-02-01", "2027-01-01")


class InvalidSettingError(ValueError):
    """An environment setting breaks its rule; the message is one line (variable, value, rule)."""


def yt_root_setting(env: Mapping[str, str]) -> str:
    """``YT_ROOT`` (default ``//home/yt_assets``): an absolute Cypress path."""
    value = env.get("YT_ROOT", DEFAULT_ROOT)
    try:
        return validate_root(value)
    except ValueError:
        raise InvalidSettingError(
            f"YT_ROOT={value!r} is invalid: it must be an absolute Cypress path such as "
            "//home/project"
        ) from None


def schedule_hour_setting(env: Mapping[str, str]) -> int:
    """``DAILY_SCHEDULE_HOUR`` (default 2): the UTC hour of the daily schedule, 0 to 23."""
    value = env.get("DAILY_SCHEDULE_HOUR", str(DEFAULT_DAILY_SCHEDULE_HOUR))
    try:
        hour = int(value)
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise InvalidSettingError(
            f"DAILY_SCHEDULE_HOUR={value!r} is invalid: it must be a whole hour from 0 to 23 (UTC)"
        )
    return hour


def daily_prefix_template_setting(env: Mapping[str, str]) -> str:
    """``S3_DAILY_PREFIX_TEMPLATE``: it must give each day its own prefix (``{date}``, or
    ``%Y``, ``%m`` and ``%d``), or every partition would list the same objects."""
    value = env.get("S3_DAILY_PREFIX_TEMPLATE", DEFAULT_DAILY_PREFIX_TEMPLATE)
    try:
        prefixes = {prefix_for_day(value, day) for day in _DISTINCT_DAYS}
    except ValueError as error:
        raise InvalidSettingError(
            f"S3_DAILY_PREFIX_TEMPLATE={value!r} is invalid: {error}"
        ) from None
    if len(prefixes) != len(_DISTINCT_DAYS):
        raise InvalidSettingError(
            f"S3_DAILY_PREFIX_TEMPLATE={value!r} is invalid: it needs a date field ({{date}}, or "
            "%Y, %m and %d) so that each day lists its own prefix, e.g. 'events/{date}/'"
        )
    if value.startswith("/"):
        raise InvalidSettingError(
            f"S3_DAILY_PREFIX_TEMPLATE={value!r} is invalid: S3 keys don't start with '/'"
        )
    return value
