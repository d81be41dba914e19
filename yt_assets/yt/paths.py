"""Where each asset (and each of its partitions) lives in Cypress: pure path naming, no Dagster.

Usage::

    >>> asset_table_path("//home/yt_assets", ["s3", "listing"])
    '//home/yt_assets/s3/listing'
    >>> asset_table_path("//home/yt_assets", ["listing"], partition_key="events/2026-11-28/")
    '//home/yt_assets/listing/events%2F2026-11-28%2F'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

DEFAULT_ROOT = "//home/yt_assets"

# Characters kept as they are in a Cypress node name; everything else is %-escaped, so that a name
# never carries YPath syntax (/ @ & * [ { \ #) and the escaping can be undone exactly.
_SAFE_NAME_CHARACTERS = "-_.~"
_ABSOLUTE_PATH = re.compile(r"^//[^/]")


def validate_root(root: str) -> str:
    """``root`` without a trailing slash; raises naming the rule when it is not an absolute YPath."""
    stripped = root.rstrip("/")
    if not _ABSOLUTE_PATH.match(stripped):
        raise ValueError(
            f"YT root {root!r} must be an absolute Cypress path such as //home/project"
        )
    return stripped


def escape_node_name(name: str) -> str:
    """A reversible (``urllib.parse.unquote``), YPath-safe node name (``a/b`` -> ``a%2Fb``); daily
    keys stay readable."""
    if not name:
        raise ValueError("A Cypress node name cannot be empty")
    return quote(name, safe=_SAFE_NAME_CHARACTERS)


def asset_table_path(
    root: str,
    asset_key_path: Sequence[str],
    *,
    partition_key: str | None = None,
    override: str | None = None,
) -> str:
    """The table of an asset: ``{root}/{key parts}``, or ``override`` (metadata ``yt_path``).

    A partitioned asset is a map_node holding one table per partition key.
    """
    if override:
        base = validate_root(override)
    else:
        if not asset_key_path:
            raise ValueError("An asset key has at least one part")
        base = validate_root(root) + "/" + "/".join(escape_node_name(p) for p in asset_key_path)
    if partition_key is None:
        return base
    return f"{base}/{escape_node_name(partition_key)}"
