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
from dataclasses import dataclass
from pathlib import Path

from yt_assets.s3.client import DEFAULT_REGION
from yt_assets.s3.settings import ENDPOINT_VAR, REGION_VAR, S3SettingsError, apply_secrets_file
from yt_assets.yt.paths import DEFAULT_ROOT

__all__ = ["Settings", "load_settings"]

DEFAULT_LOCAL_ROOT = ".yt_local"
DEFAULT_SENSOR_ROOT = "incoming/"
DEFAULT_DAILY_PREFIX_TEMPLATE = "events/{date}/"
DEFAULT_DAILY_SCHEDULE_HOUR = 2
DEFAULT_DAILY_START = "2026-11-01"


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
        error naming the variable (never the value: an endpoint URL may carry credentials)."""

        def get(name: str, default: str | None = None) -> str | None:
            return environ.get(name) or default

        endpoint = get(ENDPOINT_VAR)
        if endpoint is not None and not re.match(r"https?://[^/\s]+", endpoint):
            raise S3SettingsError(f"{ENDPOINT_VAR} must be an http:// or https:// URL")
        hour = get("DAILY_SCHEDULE_HOUR")
        try:
            schedule_hour = int(hour) if hour is not None else DEFAULT_DAILY_SCHEDULE_HOUR
        except ValueError:
            raise ValueError(f"DAILY_SCHEDULE_HOUR must be an hour 0-23, got {hour!r}") from None
        if not 0 <= schedule_hour <= 23:
            raise ValueError(f"DAILY_SCHEDULE_HOUR must be an hour 0-23, got {hour!r}")
        return cls(
            yt_proxy=get("YT_PROXY"),
            has_yt_token=bool(get("YT_TOKEN")),
            yt_root=get("YT_ROOT", DEFAULT_ROOT) or DEFAULT_ROOT,
            yt_web_ui=get("YT_WEB_UI"),
            yt_local_root=get("YT_LOCAL_ROOT", DEFAULT_LOCAL_ROOT) or DEFAULT_LOCAL_ROOT,
            s3_endpoint=endpoint,
            s3_region=get(REGION_VAR, DEFAULT_REGION) or DEFAULT_REGION,
            s3_bucket=get("S3_BUCKET"),
            s3_prefix=get("S3_PREFIX", "") or "",
            sensor_root=environ.get("S3_SENSOR_ROOT", DEFAULT_SENSOR_ROOT),
            ready_marker=get("S3_READY_MARKER"),
            daily_prefix_template=get("S3_DAILY_PREFIX_TEMPLATE", DEFAULT_DAILY_PREFIX_TEMPLATE)
            or DEFAULT_DAILY_PREFIX_TEMPLATE,
            daily_schedule_hour=schedule_hour,
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
