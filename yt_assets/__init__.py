"""yt-assets: S3 listings as Dagster assets, stored in YTsaurus tables and processed by YT map operations.

The component types are importable from here (``type: yt_assets.S3ToYTComponent`` in a
``defs.yaml``), loaded on first access so that the Dagster-free parts (``yt_assets.yt_jobs``,
``yt_assets.local_yt``) never import Dagster.
"""

from typing import Any

_COMPONENTS = ("S3ToYTComponent", "S3ToYTResourcesComponent")


def __getattr__(name: str) -> Any:
    if name in _COMPONENTS:
        from yt_assets import components

        return getattr(components, name)
    raise AttributeError(f"module 'yt_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_COMPONENTS])
