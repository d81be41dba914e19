"""yt-assets: S3 listings as Dagster assets, stored in YTsaurus tables and processed by YT map operations.

The package's public functions outside Dagster are :func:`list_s3_files` and
:func:`save_s3_paths_to_table` (yt-framework's names); its Dagster component types are
``S3ToYTComponent``, ``YTToS3ExportComponent`` and ``S3ToYTResourcesComponent`` (``type: yt_assets.S3ToYTComponent`` in a
``defs.yaml``). They are loaded on first use, so that importing a subpackage (the job code shipped
to YT nodes, say) loads nothing else.

Example::

    from yt_assets import list_s3_files, save_s3_paths_to_table
    assert callable(list_s3_files) and callable(save_s3_paths_to_table)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yt_assets.components import (
        S3ToYTComponent,
        S3ToYTResourcesComponent,
        YTToS3ExportComponent,
    )
    from yt_assets.s3.listing import list_s3_files
    from yt_assets.yt.tables import save_s3_paths_to_table

__all__ = [
    "S3ToYTComponent",
    "S3ToYTResourcesComponent",
    "YTToS3ExportComponent",
    "list_s3_files",
    "save_s3_paths_to_table",
]
_COMPONENTS = ("S3ToYTComponent", "S3ToYTResourcesComponent", "YTToS3ExportComponent")


def __getattr__(name: str) -> Any:
    if name == "list_s3_files":
        from yt_assets.s3.listing import list_s3_files

        return list_s3_files
    if name == "save_s3_paths_to_table":
        from yt_assets.yt.tables import save_s3_paths_to_table

        return save_s3_paths_to_table
    if name in _COMPONENTS:
        from yt_assets import components

        return getattr(components, name)
    raise AttributeError(f"module 'yt_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg finds component types by dir(); the lazy names are listed, not loaded.
    return sorted([*globals(), *__all__])
