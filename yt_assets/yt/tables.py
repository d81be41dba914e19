"""Publishing and describing YT static tables: the YT half of the IO manager, with no Dagster in it.

Every publication is atomic and goes through one function, :func:`write_table_atomically` (used by
the IO manager's :func:`publish_rows` and by :func:`save_s3_paths_to_table`): inside one master
transaction a temporary table is created next to the target with the declared schema, the rows are
streamed into it, and it is moved over the target with ``force=True``. Readers see the old table
or the new one, never a missing or half-written table; a failed or killed writer leaves the old
table untouched (the transaction is aborted, or expires).

What is replaced (:func:`check_replaceable`): only a table the same ``owner`` published (recorded in
the table's ``@yt_assets_owner`` attribute, set at each publication), or an unowned table with the
same schema (adopted). A node of another type, a table of another owner, or an unowned table with
another schema raise :class:`TableConflictError` before anything is written. An owner's table is
replaced whatever its old schema: a new column in the declared schema takes effect at the next
materialisation (the whole table is rewritten, old rows are not kept).

Concurrent publications: parent directories are created before the transaction (idempotently), so
writers of sibling tables (partitions) never conflict; two writers of one table conflict only at the
final move, which is retried with backoff (:data:`LOCK_CONFLICT_RETRY_SECONDS`) until the other
commits. The later commit wins; each result is one writer's whole table.

Usage::

    schema = yt_schema([ColumnSpec("bucket", "string", required=True), ColumnSpec("path", "string", required=True)])
    table = publish_rows(client, "//home/project/listing", rows, schema)
    print(table.row_count)
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema

from yt_assets.s3.pages import S3Object
from yt_assets.yt.schemas import PATHS_TABLE_COLUMNS, ColumnSpec, column_specs, yt_schema

__all__ = [
    "LOCK_CONFLICT_RETRY_SECONDS",
    "OWNER_ATTRIBUTE",
    "SAVE_WRITE_CHUNK_BYTES",
    "ColumnSpec",
    "TableConflictError",
    "YTTable",
    "YTTableRows",
    "check_replaceable",
    "count_non_empty",
    "describe_table",
    "ensure_directory",
    "markdown_preview",
    "publish_rows",
    "publish_table",
    "read_rows",
    "retry_lock_conflicts",
    "save_s3_paths_to_table",
    "schema_text",
    "write_table_atomically",
]

Row = dict[str, Any]

PREVIEW_ROWS = 5
TRANSACTION_TIMEOUT_MS = 120_000
OWNER_ATTRIBUTE = "yt_assets_owner"
"""Attribute naming the asset that published a table (e.g. ``s3_listing``)."""
LOCK_CONFLICT_RETRY_SECONDS = 300.0
"""How long a publication waits, retrying, for a concurrent writer's lock on the same node."""


class TableConflictError(Exception):
    """The node at a table's path is not the asset's to replace; one line naming the path and
    what is there (and both schemas when it is another table)."""


_DEFAULT_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class YTTable:
    """A YT static table handed between assets: its path, schema and row count.

    Example::

        import dagster as dg

        @dg.asset
        def row_total(s3_listing: YTTable) -> int:
            return s3_listing.row_count
    """

    path: str
    schema: TableSchema | None = None
    row_count: int = 0
    data_size: int = 0
    preview: list[Row] = field(default_factory=list)


class YTTableRows(Iterable[Row]):
    """The rows of YT tables, read lazily each time it is iterated (it never holds the rows).

    Annotate a downstream asset's input with it to receive rows instead of a :class:`YTTable`::

        @dg.asset
        def total_size(s3_listing: YTTableRows) -> int:
            return sum(row["size"] for row in s3_listing)
    """

    def __init__(self, paths: Sequence[str], open_rows: Callable[[Sequence[str]], Iterator[Row]]):
        self.paths = list(paths)
        self._open_rows = open_rows

    def __iter__(self) -> Iterator[Row]:
        return self._open_rows(self.paths)

    def __repr__(self) -> str:
        return f"YTTableRows({', '.join(self.paths)})"


def temporary_sibling(path: str) -> str:
    """A unique path next to ``path`` for a table being written, invisible outside its transaction."""
    return f"{path}.tmp-{uuid.uuid4().hex[:12]}"


def parent_of(path: str) -> str:
    parent, _, _ = path.rpartition("/")
    return parent if parent not in ("", "/") else "/"


def write_table_atomically(
    client: yt.YtClient,
    path: str,
    rows: Iterable[Row],
    schema: TableSchema,
    *,
    owner: str | None = None,
) -> None:
    """Atomically replace the table at ``path`` with ``rows`` (streamed, never collected): the one
    publication path (module docstring). ``owner`` (e.g. the asset key) is recorded on the
    table; see :func:`check_replaceable`."""
    ensure_directory(client, parent_of(path))
    with client.Transaction(timeout=TRANSACTION_TIMEOUT_MS):
        check_replaceable(client, path, schema, owner)
        temporary = temporary_sibling(path)
        attributes: dict[str, Any] = {"schema": schema.to_yson_type()}
        if owner is not None:
            attributes[OWNER_ATTRIBUTE] = owner
        client.create("table", temporary, attributes=attributes)
        client.write_table(yt.TablePath(temporary, append=True), rows, raw=False)
        retry_lock_conflicts(lambda: client.move(temporary, path, force=True))


def publish_rows(
    client: yt.YtClient,
    path: str,
    rows: Iterable[Row],
    schema: TableSchema,
    *,
    owner: str | None = None,
) -> YTTable:
    """:func:`write_table_atomically`, then :func:`describe_table` of the result."""
    write_table_atomically(client, path, rows, schema, owner=owner)
    return describe_table(client, path)


def publish_table(
    client: yt.YtClient, source: str, path: str, *, owner: str | None = None
) -> YTTable:
    """Atomically move a table written elsewhere (e.g. by an operation) over ``path``."""
    ensure_directory(client, parent_of(path))
    with client.Transaction(timeout=TRANSACTION_TIMEOUT_MS):
        schema = TableSchema.from_yson_type(client.get(f"{source}/@schema"))
        check_replaceable(client, path, schema, owner)
        if owner is not None:
            client.set(f"{source}/@{OWNER_ATTRIBUTE}", owner)
        retry_lock_conflicts(lambda: client.move(source, path, force=True))
    return describe_table(client, path)


def ensure_directory(client: yt.YtClient, path: str) -> None:
    """Create the map_node ``path`` and its parents if missing, outside any transaction (so that
    concurrent publications never lock each other on it); a concurrent creator is no error."""
    if path in ("/", "//") or client.exists(path):
        return
    retry_lock_conflicts(
        lambda: client.create("map_node", path, recursive=True, ignore_existing=True)
    )


def check_replaceable(
    client: yt.YtClient, path: str, schema: TableSchema, owner: str | None
) -> None:
    """Raise :class:`TableConflictError` unless the node at ``path`` may be replaced by a table
    of ``owner`` with ``schema`` (module docstring); nothing there is fine."""
    if not client.exists(path):
        return
    attributes = client.get(f"{path}/@", attributes=["type", "schema", OWNER_ATTRIBUTE])
    node_type = str(attributes.get("type"))
    if node_type != "table":
        raise TableConflictError(
            f"{path} holds a {node_type}, not a table: refusing to replace it (move or remove it, "
            "or store the asset elsewhere: YT_ROOT or metadata yt_path)"
        )
    existing_owner = attributes.get(OWNER_ATTRIBUTE)
    if owner is None or existing_owner == owner:
        return
    existing = TableSchema.from_yson_type(attributes["schema"])
    if existing_owner is not None:
        raise TableConflictError(
            f"{path} is the table of asset {existing_owner!r}, not of {owner!r}: refusing to "
            "replace it (two assets share one path; give one another path)"
        )
    if schema_text(existing) == schema_text(schema):
        return  # an unowned table of the same shape (e.g. published before owners were recorded)
    raise TableConflictError(
        f"{path} is a table not published by asset {owner!r}, with schema "
        f"{schema_text(existing)}; the asset's schema is {schema_text(schema)}: refusing to "
        f"replace it (remove it, or set @{OWNER_ATTRIBUTE}={owner!r} on it to hand it over)"
    )


def schema_text(schema: TableSchema) -> str:
    """A one-line description of a schema: ``[bucket string required, size int64, ...]``."""
    columns = []
    for spec in column_specs(schema):
        text = f"{spec.name} {spec.type}" + (" required" if spec.required else "")
        if spec.sort_order:
            text += f" {spec.sort_order}"
        columns.append(text)
    return "[" + ", ".join(columns) + "]"


def retry_lock_conflicts(
    action: Callable[[], Any], *, seconds: float = LOCK_CONFLICT_RETRY_SECONDS
) -> Any:
    """``action()``, retried with backoff while YT answers a concurrent transaction's lock
    conflict (error 402), for at most ``seconds``; any other error is raised at once."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        try:
            return action()
        except yt.YtResponseError as error:
            if not error.is_cypress_transaction_lock_conflict():
                raise
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, 2.0)


def describe_table(client: yt.YtClient, path: str, preview_rows: int = PREVIEW_ROWS) -> YTTable:
    """Path, schema, row count, data size and the first rows of an existing table."""
    attributes = client.get(
        f"{path}/@", attributes=["schema", "row_count", "uncompressed_data_size"]
    )
    schema = TableSchema.from_yson_type(attributes["schema"])
    row_count = int(attributes.get("row_count", 0))
    preview = list(read_rows(client, path, end=min(preview_rows, row_count))) if row_count else []
    return YTTable(
        path=path,
        schema=schema,
        row_count=row_count,
        data_size=int(attributes.get("uncompressed_data_size", 0)),
        preview=preview,
    )


def read_rows(
    client: yt.YtClient, path: str, *, start: int | None = None, end: int | None = None
) -> Iterator[Row]:
    """Rows of a table, streamed; ``start``/``end`` select a row range."""
    table_path = yt.TablePath(path, start_index=start, end_index=end)
    yield from client.read_table(table_path, raw=False)


def markdown_preview(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """The rows as a markdown table (values shortened), for Dagster metadata."""
    if not rows:
        return "_(empty table)_"
    names = list(columns) if columns else list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(name)) for name in names) + " |")
    return "\n".join(lines)


def _cell(value: Any, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count_non_empty(client: yt.YtClient, path: str, column: str) -> int:
    """Rows whose ``column`` is neither null nor empty, reading only that column."""
    table_path = yt.TablePath(path, columns=[column])
    return sum(1 for row in client.read_table(table_path, raw=False) if row.get(column))


SAVE_WRITE_CHUNK_BYTES = 4 << 20
"""Write chunk of :func:`save_s3_paths_to_table` unless the client sets a smaller one: rows are
buffered per chunk, so this (not the number of keys) bounds the memory of a write. yt.wrapper
holds a chunk about 5 times over (row objects, joined, split into 2 MB pieces, the request):
4 MB keeps a 1,000,000-key listing under 100 MB of RSS, 16 MB reaches about 200 MB."""


def _paths_table_rows(bucket: str, paths: Iterable[str | S3Object]) -> Iterator[dict[str, str]]:
    for path in paths:
        key = path.key if isinstance(path, S3Object) else path
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"paths must be non-empty str keys or S3Object, got {type(key).__name__}"
            )
        yield {"bucket": bucket, "path": key}


@contextmanager
def _bounded_write_chunk(yt_client: Any, limit_bytes: int) -> Iterator[None]:
    """Cap the client's ``write_retries/chunk_size`` at ``limit_bytes`` inside the block."""
    write_retries = getattr(yt_client, "config", {}).get("write_retries")
    if not isinstance(write_retries, MutableMapping):  # yt.wrapper's VerifiedDict is no dict
        yield
        return
    previous = write_retries.get("chunk_size")
    write_retries["chunk_size"] = min(previous or limit_bytes, limit_bytes)
    try:
        yield
    finally:
        write_retries["chunk_size"] = previous


def save_s3_paths_to_table(
    yt_client: Any,
    bucket: str,
    paths: Iterable[str | S3Object],
    output_table: str,
    logger: logging.Logger | None = None,
    *,
    write_chunk_bytes: int = SAVE_WRITE_CHUNK_BYTES,
) -> int:
    """Replace ``output_table`` with rows ``{bucket, path}``, atomically; return the row count.

    ``path`` is the object key (not an ``s3://`` URL). ``paths`` may be any iterable (a generator
    from :func:`~yt_assets.s3.listing.iter_s3_objects` included); it is streamed, never turned into a list. Inside one
    YT transaction: create the parent directories, write a temporary table with the strict
    :data:`~yt_assets.yt.schemas.PATHS_TABLE_COLUMNS`, then ``move(force=True)`` it over ``output_table``. Readers see the
    old table or the new one, never a missing or partial one; on error nothing changes.

    Memory: ``write_table`` buffers one chunk of rows (to retry it); the chunk is the client's
    ``write_retries/chunk_size`` capped at ``write_chunk_bytes`` (yt.wrapper's default is
    128 MB), set on the client for the duration of the call.

    Example::

        from yt_assets.s3.listing import iter_s3_objects

        objects = iter_s3_objects(s3, "my-bucket", "raw/", extension="json")
        save_s3_paths_to_table(yt_client, "my-bucket", objects, "//home/me/raw_paths")
    """
    log = logger or _DEFAULT_LOGGER
    rows_written = 0

    def counted_rows() -> Iterator[dict[str, str]]:
        nonlocal rows_written
        for row in _paths_table_rows(bucket, paths):
            rows_written += 1
            yield row

    log.info("Saving S3 paths of bucket %s to YT table %s", bucket, output_table)
    with _bounded_write_chunk(yt_client, write_chunk_bytes):
        write_table_atomically(
            yt_client, output_table, counted_rows(), yt_schema(PATHS_TABLE_COLUMNS)
        )
    log.info("Saved %d paths to %s", rows_written, output_table)
    return rows_written
