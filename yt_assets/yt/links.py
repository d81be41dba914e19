"""Links to YT tables and operations, from one place (no Dagster).

The base is the cluster's web UI when one is configured (``YT_WEB_UI``, e.g.
``https://yt.example.com/hahn``); for the embedded local YT it is the read-only web view that the
local YT serves itself under ``/ui`` on its proxy port (:mod:`yt_assets.local_yt.web_view`),
which keeps the same paths as the YT web UI. The local YT re-binds the port remembered in its
state directory, so links stored in metadata stay valid across its restarts.

Example::

    base = web_ui_base(None, "http://127.0.0.1:8000", is_local=True)
    assert table_url(base, "//home/t") == "http://127.0.0.1:8000/ui/navigation?path=//home/t"
    assert operation_url(base, "1-2-3-4") == "http://127.0.0.1:8000/ui/operations/1-2-3-4/details"
"""

from __future__ import annotations

from urllib.parse import quote

LOCAL_WEB_VIEW_PATH = "/ui"


def web_ui_base(web_ui: str | None, proxy_url: str | None, *, is_local: bool) -> str | None:
    """The base URL links start from: ``web_ui``, else the local YT's web view, else none."""
    if web_ui:
        return web_ui.rstrip("/")
    if is_local and proxy_url:
        return proxy_url.rstrip("/") + LOCAL_WEB_VIEW_PATH
    return None


def table_url(base: str | None, path: str) -> str | None:
    """The navigation page of a Cypress node (a table, a file, a map node)."""
    if not base:
        return None
    return f"{base}/navigation?path={quote(path, safe='/')}"


def operation_url(base: str | None, operation_id: str) -> str | None:
    """The page of one operation."""
    if not base:
        return None
    return f"{base}/operations/{quote(operation_id, safe='')}/details"
