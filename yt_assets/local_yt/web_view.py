"""A read-only web view of the local YT, served on its proxy port under ``/ui``.

Plain server-rendered HTML, no scripts. The paths follow the YT web UI's, so a link built for
a cluster's UI (``<base>/navigation?path=...``, ``<base>/operations/<id>/details``) opens here
with ``<base> = http://127.0.0.1:<port>/ui``:

* ``/ui/navigation?path=//home/x``: a map node's children, a table's attributes, schema and
  first rows, a file's size;
* ``/ui/operations``: the operations, newest first;
* ``/ui/operations/<id>/details``: state, progress, job statistics, the spec, the jobs;
* ``/ui/operations/<id>/jobs/<job_id>/stderr``: one job's stderr.

``/`` redirects to the root's navigation page, and the operation links ``yt.wrapper`` prints
(``/?page=operation&id=<id>``) redirect to the operation's page.

Secrets never reach a page: the secure vault is never stored by the local YT, and the spec is
shown with every ``environment`` value, ``secure_vault`` and any field whose name looks like a
credential (token, secret, password, key...) replaced by ``***``; a running server's operation
and stderr pages also show ``***`` wherever a job printed one of its secure vault values
(:func:`without_secrets`; the ``get_job_stderr`` command returns what the job wrote, as YT does).

Usage::

    response = render_web_page(cluster, engine, "/ui/navigation", {"path": "//tmp"})
    assert response.status == 200 and b"<table" in response.body
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from .values import to_plain

WEB_VIEW_PREFIX = "/ui"
PREVIEW_ROWS = 20
CELL_CHARS = 200
REDACTED = "***"
SECRET_FIELD = re.compile(r"token|secret|password|passwd|credential|access_key|private", re.I)
TABLE_ATTRIBUTES = (
    "type",
    "row_count",
    "uncompressed_data_size",
    "compressed_data_size",
    "chunk_count",
    "sorted",
    "key_columns",
    "creation_time",
    "modification_time",
    "account",
    "id",
)
FILE_ATTRIBUTES = ("type", "uncompressed_data_size", "md5", "creation_time", "modification_time")
CHILD_ATTRIBUTES = ["type", "row_count", "uncompressed_data_size", "modification_time"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
a{color:#0b5cad;text-decoration:none} a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.5em 0 1.2em} td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top;font-size:14px} th{background:#f2f2f2}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:13px;max-height:40em}
nav{margin-bottom:1em} .state{font-weight:bold} .muted{color:#777}
"""


class CypressReader(Protocol):
    """What the web view reads of the Cypress tree (the local YT's ``Cluster``)."""

    def get(self, path: str, *, attributes: list[str] | None = None) -> Any: ...

    def list(self, path: str, *, attributes: list[str] | None = None) -> list[Any]: ...

    def read_rows(self, path: str, transaction_id: str | None = None) -> Iterator[Any]: ...


class OperationsReader(Protocol):
    """What the web view reads of the operations (the local YT's ``OperationEngine``)."""

    def list_operations(self, **filters: Any) -> dict[str, Any]: ...

    def get_operation(
        self, operation_id: str, *, attributes: list[str] | None = None
    ) -> dict[str, Any]: ...

    def list_jobs(self, operation_id: str, **filters: Any) -> dict[str, Any]: ...

    def get_job_stderr(self, operation_id: str, job_id: str) -> bytes: ...

    def secret_values(self, operation_id: str) -> list[str]: ...


@dataclass(frozen=True)
class WebResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None


def render_web_page(
    cluster: CypressReader,
    operations: OperationsReader | None,
    path: str,
    query: Mapping[str, str],
) -> WebResponse:
    """The response to a GET of ``path`` (``/``, or under ``/ui``) with ``query`` parameters."""
    if path == "/":
        if query.get("page") == "operation" and query.get("id"):
            return _redirect(_operation_href(query["id"]))
        return _redirect(_navigation_href("/"))
    route = path[len(WEB_VIEW_PREFIX) :].strip("/").split("/") if path != WEB_VIEW_PREFIX else []
    try:
        if not route or route == ["navigation"]:
            return _page(*_navigation(cluster, query.get("path") or "/"))
        if route[0] == "operations" and operations is not None:
            if len(route) == 1:
                return _page(*_operations_list(operations))
            if len(route) in (2, 3):
                title, body = _operation(operations, route[1])
            elif len(route) == 5 and route[2] == "jobs" and route[4] == "stderr":
                title, body = _job_stderr(operations, route[1], route[3])
            else:
                return _page(
                    "Not found", f"<p>No page {_e(path)} in the local YT web view.</p>", 404
                )
            return _page(title, without_secrets(body, operations.secret_values(route[1])))
    except Exception as error:  # a missing node or operation: say so on the page
        message = getattr(error, "message", None) or str(error)
        return _page("Not found", f"<p>{_e(message)}</p>", status=404)
    return _page("Not found", f"<p>No page {_e(path)} in the local YT web view.</p>", status=404)


# --------------------------------------------------------------------------------- rendering


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


MIN_SECRET_LENGTH = 4
"""Shorter secure vault values are left alone (replacing them would garble every page)."""


def without_secrets(page: str, secrets: list[str]) -> str:
    """``page`` (HTML) with every occurrence of ``secrets`` (as written, or HTML-escaped)
    replaced by ``***``: a job that prints its secure vault to stderr, or an error quoting it, is
    shown without it. ``get_job_stderr`` itself returns what the job wrote, as YT does.

    >>> without_secrets("<pre>key=s3cr&amp;t!</pre>", ["s3cr&t!"])
    '<pre>key=***</pre>'
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            page = page.replace(_e(secret), "***").replace(secret, "***")
    return page


def _redirect(location: str) -> WebResponse:
    return WebResponse(status=302, location=location)


def _page(title: str, body: str, status: int = 200) -> WebResponse:
    document = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)} · local YT</title><style>{STYLE}</style></head><body>"
        f"<nav><a href='{_navigation_href('/')}'>Navigation</a> · "
        f"<a href='{WEB_VIEW_PREFIX}/operations'>Operations</a> "
        "<span class='muted'>· local YT (read-only)</span></nav>"
        f"<h1>{_e(title)}</h1>{body}</body></html>"
    )
    return WebResponse(status=status, body=document.encode("utf-8"))


def _navigation_href(path: str) -> str:
    return f"{WEB_VIEW_PREFIX}/navigation?path={quote(path, safe='/')}"


def _operation_href(operation_id: str) -> str:
    return f"{WEB_VIEW_PREFIX}/operations/{quote(operation_id, safe='')}/details"


def _stderr_href(operation_id: str, job_id: str) -> str:
    return (
        f"{WEB_VIEW_PREFIX}/operations/{quote(operation_id, safe='')}"
        f"/jobs/{quote(job_id, safe='')}/stderr"
    )


def _table(headers: list[str], rows: list[list[str]], *, label: str | None = None) -> str:
    """An HTML table; ``rows`` hold already-escaped HTML."""
    aria = f" aria-label='{_e(label)}'" if label else ""
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{aria}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "<span class='muted'>null</span>"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        value = json.dumps(_plain(value), ensure_ascii=False)
    text = str(value)
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return _e(text)


def _plain(value: Any) -> Any:
    """YSON values as plain JSON-able Python values (attributes dropped)."""
    return to_plain(value, keep_attributes=False, undecodable="replace")


def _size(value: Any) -> str:
    """``1,234 B (1.2 KiB)``: the exact byte count, and a rounded one when large."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        return ""
    text = f"{size:,} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            return text if size < 1024 else f"{text} ({scaled:,.1f} {unit})"
    return text


def _breadcrumbs(path: str) -> str:
    parts = [part for part in path.strip("/").split("/") if part]
    links = [f"<a href='{_navigation_href('/')}'>/</a>"]
    for index, part in enumerate(parts):
        links.append(
            f"<a href='{_navigation_href('//' + '/'.join(parts[: index + 1]))}'>{_e(part)}</a>"
        )
    return "<p>" + " / ".join(links) + "</p>"


# -------------------------------------------------------------------------------- navigation


def _navigation(cluster: CypressReader, path: str) -> tuple[str, str]:
    node_type = str(cluster.get(f"{path}/@type"))
    body = _breadcrumbs(path) + f"<p>Type: <b>{_e(node_type)}</b></p>"
    if node_type == "map_node":
        body += _map_node(cluster, path)
    elif node_type == "table":
        body += _table_node(cluster, path)
    elif node_type == "file":
        body += _attributes_table(cluster, path, FILE_ATTRIBUTES)
    else:
        body += _attributes_table(cluster, path, ("type", "creation_time", "modification_time"))
    return path, body


def _map_node(cluster: CypressReader, path: str) -> str:
    children = cluster.list(path, attributes=CHILD_ATTRIBUTES)
    rows = []
    for child in sorted(children, key=str):
        attributes = getattr(child, "attributes", {}) or {}
        child_path = f"{path.rstrip('/')}/{child}" if path != "/" else f"//{child}"
        rows.append(
            [
                f"<a href='{_navigation_href(child_path)}'>{_e(child)}</a>",
                _cell(attributes.get("type")),
                _cell(attributes.get("row_count", "")),
                _e(_size(attributes.get("uncompressed_data_size"))),
                _cell(attributes.get("modification_time", "")),
            ]
        )
    if not rows:
        return "<p class='muted'>Empty map node.</p>"
    return _table(["name", "type", "rows", "size", "modified"], rows, label="children")


def _attributes_table(cluster: CypressReader, path: str, names: tuple[str, ...]) -> str:
    attributes = cluster.get(f"{path}/@", attributes=list(names))
    rows = []
    for name in names:
        if name in attributes:
            value = attributes[name]
            shown = _size(value) if name.endswith("data_size") else _cell(value)
            rows.append([_e(name), _e(shown) if name.endswith("data_size") else shown])
    return "<h2>Attributes</h2>" + _table(["attribute", "value"], rows, label="attributes")


def _table_node(cluster: CypressReader, path: str) -> str:
    body = _attributes_table(cluster, path, TABLE_ATTRIBUTES)
    schema = list(cluster.get(f"{path}/@schema"))
    columns = [str(_plain(column.get("name"))) for column in schema]
    schema_rows = [
        [
            _cell(column.get("name")),
            _cell(column.get("type")),
            _cell(column.get("required", False)),
            _cell(column.get("sort_order", "")),
        ]
        for column in schema
    ]
    body += "<h2>Schema</h2>" + (
        _table(["column", "type", "required", "sort order"], schema_rows, label="schema")
        if schema_rows
        else "<p class='muted'>No schema (weak).</p>"
    )
    rows = list(itertools.islice(cluster.read_rows(path), PREVIEW_ROWS))
    if not columns:
        columns = sorted({str(key) for row in rows for key in row})
    body += f"<h2>First rows ({len(rows)})</h2>" + _table(
        columns, [[_cell(row.get(name)) for name in columns] for row in rows], label="rows"
    )
    return body


# -------------------------------------------------------------------------------- operations


def redact_spec(value: Any, *, under_environment: bool = False) -> Any:
    """The spec with secrets replaced by ``***``: ``secure_vault``, every ``environment`` value,
    and fields whose name looks like a credential."""
    if isinstance(value, Mapping):
        redacted = {}
        for key, child in value.items():
            name = str(_plain(key))
            if name == "secure_vault" or under_environment or SECRET_FIELD.search(name):
                redacted[name] = REDACTED
            else:
                redacted[name] = redact_spec(child, under_environment=name == "environment")
        return redacted
    if isinstance(value, list | tuple):
        return [redact_spec(child) for child in value]
    if under_environment:
        return REDACTED
    return _plain(value)


def _operations_list(operations: OperationsReader) -> tuple[str, str]:
    listed = operations.list_operations(limit=100).get("operations") or []
    rows = []
    for view in listed:
        operation_id = str(view["id"])
        jobs = (view.get("brief_progress") or {}).get("jobs") or {}
        title = (view.get("brief_spec") or {}).get("title", "")
        rows.append(
            [
                f"<a href='{_operation_href(operation_id)}'>{_e(operation_id)}</a>",
                _cell(view.get("type")),
                f"<span class='state'>{_e(view.get('state'))}</span>",
                _cell(title),
                _e(f"{jobs.get('completed', 0)}/{jobs.get('total', 0)}"),
                _cell(view.get("start_time")),
                _cell(view.get("finish_time", "")),
            ]
        )
    body = (
        _table(
            ["id", "type", "state", "title", "jobs done", "started", "finished"],
            rows,
            label="operations",
        )
        if rows
        else "<p class='muted'>No operations yet.</p>"
    )
    return "Operations", body


def _operation(operations: OperationsReader, operation_id: str) -> tuple[str, str]:
    view = operations.get_operation(operation_id)
    spec = view.get("spec") or {}
    progress = view.get("progress") or {}
    jobs_progress = progress.get("jobs") or {}
    summary = [
        ["state", f"<span class='state'>{_e(view.get('state'))}</span>"],
        ["type", _cell(view.get("type"))],
        ["title", _cell(spec.get("title", ""))],
        ["user", _cell(view.get("authenticated_user"))],
        ["started", _cell(view.get("start_time"))],
        ["finished", _cell(view.get("finish_time", ""))],
        ["duration", _e(_duration(view.get("start_time"), view.get("finish_time")))],
        ["input", _cell(", ".join(map(str, spec.get("input_table_paths") or [])))],
        ["output", _cell(", ".join(map(str, spec.get("output_table_paths") or [])))],
    ]
    body = _table(["", ""], summary, label="operation")
    error = (view.get("result") or {}).get("error")
    if error:
        body += f"<h2>Error</h2><pre>{_e(_error_text(error))}</pre>"
    counts = [
        [_e(name), _e(jobs_progress.get(name, 0))]
        for name in ("total", "pending", "running", "completed", "failed", "aborted")
    ]
    body += "<h2>Progress</h2>" + _table(["jobs", "count"], counts, label="progress")
    body += _statistics_section(progress.get("job_statistics") or {})
    body += _jobs_section(operations, operation_id)
    spec_text = json.dumps(redact_spec(spec), indent=2, ensure_ascii=False, sort_keys=True)
    body += f"<h2>Specification</h2><pre>{_e(spec_text)}</pre>"
    return f"Operation {operation_id}", body


def _statistics_section(statistics: Mapping[str, Any]) -> str:
    rows = []

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, child in node.items():
            if key == "$" and isinstance(child, Mapping):
                for state, by_type in child.items():
                    for job_type, summary in (by_type or {}).items():
                        rows.append(
                            [_e(path), _e(state), _e(job_type)]
                            + [_e(summary.get(name, "")) for name in ("sum", "count", "min", "max")]
                        )
            elif isinstance(child, Mapping):
                walk(child, f"{path}/{key}" if path else str(key))

    walk(statistics, "")
    if not rows:
        return ""
    rows.sort(key=lambda row: (not row[0].startswith("custom"), row[0]))
    headers = ["statistic", "job state", "job type", "sum", "count", "min", "max"]
    return "<h2>Job statistics</h2>" + _table(headers, rows, label="job statistics")


def _jobs_section(operations: OperationsReader, operation_id: str) -> str:
    jobs = operations.list_jobs(operation_id, limit=1000).get("jobs") or []
    rows = []
    for job in jobs:
        job_id = str(job["id"])
        stderr = (
            f"<a href='{_stderr_href(operation_id, job_id)}'>stderr ({_e(_size(job['stderr_size']))})</a>"
            if job.get("stderr_size")
            else "<span class='muted'>none</span>"
        )
        rows.append(
            [
                _e(job_id),
                f"<span class='state'>{_e(job.get('state'))}</span>",
                _cell(job.get("start_time")),
                _cell(job.get("finish_time", "")),
                _cell(job.get("exit_code", "")),
                _cell(_error_text(job.get("error"))),
                stderr,
            ]
        )
    if not rows:
        return "<h2>Jobs</h2><p class='muted'>No jobs.</p>"
    headers = ["job", "state", "started", "finished", "exit code", "error", "stderr"]
    return f"<h2>Jobs ({len(rows)})</h2>" + _table(headers, rows, label="jobs")


def _job_stderr(operations: OperationsReader, operation_id: str, job_id: str) -> tuple[str, str]:
    stderr = operations.get_job_stderr(operation_id, job_id).decode("utf-8", "replace")
    back = f"<p><a href='{_operation_href(operation_id)}'>← operation {_e(operation_id)}</a></p>"
    text = stderr or "(empty)"
    return f"Stderr of job {job_id}", back + f"<pre aria-label='stderr'>{_e(text)}</pre>"


def _error_text(error: Any) -> str:
    messages = []
    while isinstance(error, Mapping):
        message = _plain(error.get("message"))
        if message:
            messages.append(str(message))
        inner = error.get("inner_errors") or []
        error = inner[0] if inner else None
    return ": ".join(messages)


def _duration(start: Any, finish: Any) -> str:
    def parse(text: Any) -> datetime:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))

    try:
        seconds = (parse(finish) - parse(start)).total_seconds()
    except (TypeError, ValueError):
        return ""
    return f"{seconds:.1f} s"
