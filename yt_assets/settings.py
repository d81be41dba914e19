"""The code location's settings: one model, read once (in :mod:`yt_assets.definitions`) from the
environment and ``configs/secrets.env``, then passed down. No Dagster here, and nothing is read at
import.

The secrets file's S3 variables are copied into the environment first (where unset), because
Dagster resolves the keys as ``EnvVar``s at launch (:func:`yt_assets.s3.settings.apply_secrets_file`;
its parser is ours, not python-dotenv's: python-dotenv skips a malformed line with a log warning
and accepts invalid names such as ``3BAD``, where a typo in a key's line must fail naming the line).

Example::

    settings = Settings.from_environ({"S3_BUCKET": "raw", "DAILY_SCHEDULE_HOUR": "3"})
    assert (settings.s3_bucket, settings.daily_schedule_hour, settings.yt_proxy) == ("raw", 3, None)
    assert settings.s3_region == "us-east-1" and settings.yt_root == "//home/yt_assets"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from yt_assets.s3.client import DEFAULT_REGION
from yt_assets.s3.settings import ENDPOINT_VAR, REGION_VAR, S3SettingsError, apply_secrets_file
from yt_assets.yt.paths import DEFAULT_ROOT, validate_root

__all__ = [
    "InvalidSettingError",
    "Settings",
    "load_settings",
    "parse_docker_images",
    "prefix_for_day",
]

DEFAULT_LOCAL_ROOT = ".yt_local"
DEFAULT_SENSOR_ROOT = "incoming/"
DEFAULT_DAILY_PREFIX_TEMPLATE = "events/{date}/"
DEFAULT_DAILY_SCHEDULE_HOUR = 2
DEFAULT_DAILY_START = "2026-11-01"
LOCAL_DOCKER_IMAGES_VAR = "YT_LOCAL_DOCKER_IMAGES"


def parse_docker_images(text: str) -> dict[str, str]:
    """``NAME=PATH[,NAME=PATH...]`` (``YT_LOCAL_DOCKER_IMAGES``) -> ``{NAME: PATH}``.

    Example::

        images = parse_docker_images("python:3.11=/opt/venv, app:1=/usr/bin/python3.11")
        assert images == {"python:3.11": "/opt/venv", "app:1": "/usr/bin/python3.11"}
    """
    images = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            raise ValueError(f"{LOCAL_DOCKER_IMAGES_VAR}: {item!r} is not NAME=PATH")
        images[name] = path
    return images


_DISTINCT_DAYS = ("2026-01-01", "2026-01-02", "2026-02-01", "2027-01-01")


class InvalidSettingError(ValueError):
    """A setting breaks its rule; the message is one line naming the variable, its value and the
    rule, so that the code location fails to load with it (instead of a run failing later)."""


def prefix_for_day(template: str, day: str) -> str:
    """The S3 prefix of a daily partition: ``{date}`` and strftime fields of ``template`` filled in.

    >>> prefix_for_day("events/{date}/", "2026-11-28")
    'events/2026-11-28/'
    >>> prefix_for_day("events/%Y/%m/%d/", "2026-11-28")
    'events/2026/11/28/'
    """
    moment = datetime.strptime(day, "%Y-%m-%d")
    return moment.strftime(template.replace("{date}", day.replace("%", "%%")))


def _checked_yt_root(value: str) -> str:
    try:
        return validate_root(value)
    except ValueError:
        raise InvalidSettingError(
            f"YT_ROOT={value!r} is invalid: it must be an absolute Cypress path such as "
            "//home/project"
        ) from None


def _checked_schedule_hour(value: str | None) -> int:
    if value is None:
        return DEFAULT_DAILY_SCHEDULE_HOUR
    try:
        hour = int(value)
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise InvalidSettingError(
            f"DAILY_SCHEDULE_HOUR={value!r} is invalid: it must be a whole hour from 0 to 23 (UTC)"
        )
    return hour


def _checked_daily_template(value: str) -> str:
    """Each day must get its own prefix (``{date}``, or ``%Y``, ``%m`` and ``%d``), or every
    partition would list the same objects."""
    if value.startswith("/"):
        raise InvalidSettingError(
            f"S3_DAILY_PREFIX_TEMPLATE={value!r} is invalid: S3 keys don't start with '/'"
        )
    if len({prefix_for_day(value, day) for day in _DISTINCT_DAYS}) != len(_DISTINCT_DAYS):
        raise InvalidSettingError(
            f"S3_DAILY_PREFIX_TEMPLATE={value!r} is invalid: it needs a date field ({{date}}, or "
            "%Y, %m and %d) so that each day lists its own prefix, e.g. 'events/{date}/'"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Every setting of the code location (README "Configuration"); never holds a secret (the
    YT token and S3 keys stay in the environment and reach Dagster as ``EnvVar``s)."""

    yt_proxy: str | None = None
    """``YT_PROXY``; unset or ``local``: the embedded local YT."""
    has_yt_token: bool = False
    """Whether ``YT_TOKEN`` is set."""
    yt_root: str = DEFAULT_ROOT
    yt_web_ui: str | None = None
    yt_local_root: str = DEFAULT_LOCAL_ROOT
    yt_local_docker_images: Mapping[str, str] = field(default_factory=dict)
    """``YT_LOCAL_DOCKER_IMAGES`` (``NAME=PATH,...``): embedded local YT only, the virtualenv or
    interpreter that runs the jobs of ``docker_image`` NAME."""
    s3_endpoint: str | None = None
    s3_region: str = DEFAULT_REGION
    s3_bucket: str | None = None
    s3_prefix: str = ""
    sensor_root: str = DEFAULT_SENSOR_ROOT
    ready_marker: str | None = None
    daily_prefix_template: str = DEFAULT_DAILY_PREFIX_TEMPLATE
    daily_schedule_hour: int = DEFAULT_DAILY_SCHEDULE_HOUR
    daily_start: str = DEFAULT_DAILY_START
    """``YT_ASSETS_DAILY_START``: the first daily partition (``YYYY-MM-DD``)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The settings in ``environ``; an empty value counts as unset. A bad value raises an
        error naming the variable (:class:`InvalidSettingError` with the value for the YT root,
        the schedule hour and the daily template; never the value of ``S3_ENDPOINT``: an
        endpoint URL may carry credentials)."""

        def get(name: str, default: str | None = None) -> str | None:
            return environ.get(name) or default

        endpoint = get(ENDPOINT_VAR)
        if endpoint is not None and not re.match(r"https?://[^/\s]+", endpoint):
            raise S3SettingsError(f"{ENDPOINT_VAR} must be an http:// or https:// URL")
        return cls(
            yt_proxy=get("YT_PROXY"),
            has_yt_token=bool(get("YT_TOKEN")),
            yt_root=_checked_yt_root(get("YT_ROOT", DEFAULT_ROOT) or DEFAULT_ROOT),
            yt_web_ui=get("YT_WEB_UI"),
            yt_local_root=get("YT_LOCAL_ROOT", DEFAULT_LOCAL_ROOT) or DEFAULT_LOCAL_ROOT,
            yt_local_docker_images=parse_docker_images(get(LOCAL_DOCKER_IMAGES_VAR, "") or ""),
            s3_endpoint=endpoint,
            s3_region=get(REGION_VAR, DEFAULT_REGION) or DEFAULT_REGION,
            s3_bucket=get("S3_BUCKET"),
            s3_prefix=get("S3_PREFIX", "") or "",
            sensor_root=environ.get("S3_SENSOR_ROOT", DEFAULT_SENSOR_ROOT),
            ready_marker=get("S3_READY_MARKER"),
            daily_prefix_template=_checked_daily_template(
                get("S3_DAILY_PREFIX_TEMPLATE", DEFAULT_DAILY_PREFIX_TEMPLATE)
                or DEFAULT_DAILY_PREFIX_TEMPLATE
            ),
            daily_schedule_hour=_checked_schedule_hour(get("DAILY_SCHEDULE_HOUR")),
            daily_start=get("YT_ASSETS_DAILY_START", DEFAULT_DAILY_START) or DEFAULT_DAILY_START,
        )


def load_settings(
    environ: MutableMapping[str, str] | None = None, secrets_file: Path | None = None
) -> Settings:
    """Copy ``secrets_file`` (default ``configs/secrets.env``) into ``environ`` (default
    ``os.environ``) where unset, then read the :class:`Settings` from it."""
    environ = os.environ if environ is None else environ
    apply_secrets_file(secrets_file, environ)
    return Settings.from_environ(environ)
