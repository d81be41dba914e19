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

import itertools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import yt.wrapper as yt
from yt.wrapper.schema import TableSchema
from yt.wrapper.stream import ItemStream

from yt_assets.s3.background import iter_in_background
from yt_assets.s3.pages import S3Object
from yt_assets.yt.schemas import (
    PATHS_TABLE_COLUMNS,
    ColumnSpec,
    column_specs,
    timestamp_microseconds,
    yt_schema,
)

__all__ = [
    "LOCK_CONFLICT_RETRY_SECONDS",
    "OWNER_ATTRIBUTE",
    "SAVE_WRITE_CHUNK_BYTES",
    "ColumnSpec",
    "Preview",
    "TableConflictError",
    "YTTable",
    "YTTableRows",
    "YsonRows",
    "check_replaceable",
    "count_non_empty",
    "describe_table",
    "ensure_directory",
    "listing_yson_blocks",
    "publish_rows",
    "publish_table",
    "read_rows",
    "retry_lock_conflicts",
    "save_s3_paths_to_table",
    "schema_text",
    "table_preview",
    "write_table_atomically",
    "write_yson_blocks_atomically",
]

Row = dict[str, Any]

PREVIEW_ROWS = 5
TRANSACTION_TIMEOUT_MS = 120_000
OWNER_ATTRIBUTE = "yt_assets_owner"
"""Attribute naming the asset that published a table (e.g. ``s3_listing``)."""
LOCK_CONFLICT_RETRY_SECONDS = 300.0
"""How long a publication waits, retrying, for a concurrent writer's lock on the same node."""

PUBLICATION_TRANSACTION_SLEEP_MS = 10
"""yt.wrapper's ``transaction_sleep_period`` during a publication (its default: 100 ms). Each
transaction's pinger thread sleeps in steps of it, and leaving the transaction waits for the
pinger to wake: up to a step per transaction, and a write commits one per 4 MB chunk. Writing
1,000,000 rows to the local YT with a plain ``YtClient``: 5.60 s with 100 ms, 4.55 s with 10 ms
(medians of 3, side by side). Pings keep their own period."""


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


@contextmanager
def _publication_transaction(client: yt.YtClient) -> Iterator[None]:
    """``client.Transaction`` with its pingers (and those of the writes inside it) quick to
    stop: :data:`PUBLICATION_TRANSACTION_SLEEP_MS`, restored after."""
    config = getattr(client, "config", None)
    with (
        _config_capped(config, "transaction_sleep_period", PUBLICATION_TRANSACTION_SLEEP_MS),
        client.Transaction(timeout=TRANSACTION_TIMEOUT_MS),
    ):
        yield


def write_table_atomically(
    client: yt.YtClient,
    path: str,
    rows: Iterable[Row] | Iterable[bytes],
    schema: TableSchema,
    *,
    owner: str | None = None,
    raw_format: yt.format.Format | None = None,
) -> None:
    """Atomically replace the table at ``path`` with ``rows`` (streamed, never collected): the one
    publication path (module docstring). ``owner`` (e.g. the asset key) is recorded on the
    table; see :func:`check_replaceable`. With ``raw_format``, ``rows`` are blocks of bytes,
    each holding whole rows in that format, sent as they are (never split: a write retry
    repeats whole blocks)."""
    ensure_directory(client, parent_of(path))
    with _publication_transaction(client):
        check_replaceable(client, path, schema, owner)
        temporary = temporary_sibling(path)
        attributes: dict[str, Any] = {"schema": schema.to_yson_type()}
        if owner is not None:
            attributes[OWNER_ATTRIBUTE] = owner
        client.create("table", temporary, attributes=attributes)
        target = yt.TablePath(temporary, append=True)
        if raw_format is None:
            client.write_table(target, rows, raw=False)
        else:
            client.write_table(target, ItemStream(rows), raw=True, format=raw_format)
        retry_lock_conflicts(lambda: client.move(temporary, path, force=True))


@runtime_checkable
class YsonRows(Protocol):
    """Rows that can format themselves as YSON (e.g. a listing's): :func:`publish_rows`
    writes their :meth:`yson_blocks` instead of serialising row dicts."""

    def yson_blocks(self) -> Iterator[bytes]:
        """The rows as YSON (binary strings, text integers), whole rows per block (each row ends with ``;``)."""
        ...


def publish_rows(
    client: yt.YtClient,
    path: str,
    rows: Iterable[Row],
    schema: TableSchema,
    *,
    owner: str | None = None,
) -> YTTable:
    """:func:`write_table_atomically`, then :func:`describe_table` of the result.

    Rows that are :class:`YsonRows` are written as their YSON blocks, formatted in a thread
    of their own while this one waits on the proxy (:func:`write_yson_blocks_atomically`).
    """
    if isinstance(rows, YsonRows):
        write_yson_blocks_atomically(client, path, rows.yson_blocks(), schema, owner=owner)
    else:
        write_table_atomically(client, path, rows, schema, owner=owner)
    return describe_table(client, path)


def publish_table(
    client: yt.YtClient, source: str, path: str, *, owner: str | None = None
) -> YTTable:
    """Atomically move a table written elsewhere (e.g. by an operation) over ``path``."""
    ensure_directory(client, parent_of(path))
    with _publication_transaction(client):
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


PREVIEW_CELL_CHARS = 40
"""Longest value shown in a preview cell; longer ones keep their start and end around an ellipsis."""
PREVIEW_HASH_CHARS = 10
"""A hexadecimal digest (an ETag, a SHA-256) shows its first characters only."""
_HEX_DIGEST = re.compile(r"^[0-9a-f]{16,}$")


@dataclass(frozen=True)
class Preview:
    """The first rows of a table, made for reading at a glance (see :func:`table_preview`)."""

    columns: list[str]
    rows: list[dict[str, str | int | float | bool | None]]
    constants: dict[str, str]
    """Columns left out because every previewed row has the same value (e.g. ``bucket``)."""


def table_preview(
    rows: Sequence[Row],
    columns: Sequence[str] | None = None,
    *,
    types: Mapping[str, str] | None = None,
    limit: int = PREVIEW_CELL_CHARS,
) -> Preview:
    """The rows with the useful columns and short values: a column whose value is the same on
    every row (of two or more) moves to ``constants``; timestamps (``types[name] ==
    "timestamp"``, microseconds) show as UTC date and time; hexadecimal digests their first
    characters; other long strings keep their start and end.

    >>> p = table_preview(
    ...     [{"bucket": "b", "path": "events/2026-12-01/part-000001.jsonl", "size": 10},
    ...      {"bucket": "b", "path": "x.json", "size": 2}],
    ...     limit=20,
    ... )
    >>> p.columns, p.constants
    (['path', 'size'], {'bucket': 'b'})
    >>> p.rows[0]
    {'path': 'events/20…0001.jsonl', 'size': 10}
    """
    names = list(columns) if columns else (list(rows[0]) if rows else [])
    kinds = types or {}
    cells = [
        {name: _preview_cell(row.get(name), kinds.get(name), limit) for name in names}
        for row in rows
    ]
    constants: dict[str, str] = {}
    if len(cells) > 1:
        for name in names:
            values = {row[name] for row in cells}
            if len(values) == 1 and None not in values:
                constants[name] = str(values.pop())
    shown = [name for name in names if name not in constants]
    return Preview(
        columns=shown,
        rows=[{name: row[name] for name in shown} for row in cells],
        constants=constants,
    )


def _preview_cell(value: Any, kind: str | None, limit: int) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if kind == "timestamp" and isinstance(value, int):
        moment = datetime.fromtimestamp(value / 1_000_000, tz=UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int | float):
        return value
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    text = text.replace("\n", " ")
    if _HEX_DIGEST.match(text):
        return text[:PREVIEW_HASH_CHARS] + "…"
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def count_non_empty(client: yt.YtClient, path: str, column: str) -> int:
    """Rows whose ``column`` is neither null nor empty, reading only that column."""
    table_path = yt.TablePath(path, columns=[column])
    return sum(1 for row in client.read_table(table_path, raw=False) if row.get(column))


SAVE_WRITE_CHUNK_BYTES = 4 << 20
"""Write chunk of :func:`save_s3_paths_to_table` unless the client sets a smaller one: rows are
buffered per chunk, so this (not the number of keys) bounds the memory of a write. yt.wrapper
holds a chunk about 5 times over (row objects, joined, split into 2 MB pieces, the request):
4 MB keeps a 1,000,000-key listing under 100 MB of RSS, 16 MB reaches about 200 MB."""


PATHS_BLOCK_ROWS = 1000
"""Rows of the paths table per block of YSON handed to ``write_table``."""
PATHS_BLOCKS_AHEAD = 32
"""Blocks the listing may run ahead of the writer (32,000 rows, about 2 MB)."""

PATHS_ROW_FORMAT = yt.YsonFormat(format="binary")
"""The format of the blocks: binary YSON strings (length-prefixed, no escapes), integers as text
(YSON parsers read the two mixed)."""
_Item = TypeVar("_Item")


def _varint(value: int) -> bytes:
    """``value`` (>= 0) as a base-128 varint, low group first."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_STRING_HEADERS = [b"\x01" + _varint(2 * length) for length in range(1025)]
"""The binary YSON string marker and zigzag-encoded length of strings of up to 1,024 bytes
(an S3 key's limit)."""


def _string_header(length: int) -> bytes:
    if length < len(_STRING_HEADERS):
        return _STRING_HEADERS[length]
    return b"\x01" + _varint(2 * length)


def yson_binary_string(text: str) -> bytes:
    r"""``text`` (UTF-8) as a binary YSON string: the marker, its length, its bytes; any text
    comes back byte for byte.

    >>> yson_binary_string("a\tb/é")
    b'\x01\x0ca\tb/\xc3\xa9'
    """
    data = text.encode("utf-8")
    return _string_header(len(data)) + data


def _binary_string_parts(texts: Sequence[str]) -> tuple[Iterable[bytes], Sequence[bytes]]:
    """Each text's binary YSON string header and its UTF-8 bytes; the usual texts (no newline
    in any) encoded in one piece."""
    if not texts:
        return [], []
    joined = "\n".join(texts)
    if joined.count("\n") == len(texts) - 1:
        encoded: Sequence[bytes] = joined.encode("utf-8").split(b"\n")
    else:
        encoded = [text.encode("utf-8") for text in texts]
    lengths = list(map(len, encoded))
    if max(lengths) < len(_STRING_HEADERS):
        return map(_STRING_HEADERS.__getitem__, lengths), encoded
    return map(_string_header, lengths), encoded


def _path_key(path: str | S3Object) -> str:
    key = path.key if isinstance(path, S3Object) else path
    if not isinstance(key, str) or not key:
        raise TypeError(f"paths must be non-empty str keys or S3Object, got {type(key).__name__}")
    return key


def _row_template(bucket: str, columns: Sequence[tuple[str, bytes]]) -> bytes:
    r"""A ``bytes %`` template of a row: ``bucket`` first, then each column with its value's
    placeholder (``%s%s`` for a binary string's header and bytes, ``%d`` for an integer).

    >>> _row_template("b", [("size", b"%d")]) % (3,)
    b'{\x01\x0cbucket=\x01\x02b;\x01\x08size=3;};'
    """
    fixed = [b"{", yson_binary_string("bucket"), b"=", yson_binary_string(bucket), b";"]
    template = b"".join(fixed).replace(b"%", b"%%")
    for name, placeholder in columns:
        template += yson_binary_string(name).replace(b"%", b"%%") + b"=" + placeholder + b";"
    return template + b"};"


def _chunks(items: Iterable[_Item], counter: list[int] | None) -> Iterator[list[_Item]]:
    """``items`` in lists of :data:`PATHS_BLOCK_ROWS` (at least one list, maybe empty);
    ``counter[0]`` counts them."""
    iterator = iter(items)
    chunk = list(itertools.islice(iterator, PATHS_BLOCK_ROWS))
    while True:
        if counter is not None:
            counter[0] += len(chunk)
        yield chunk
        if len(chunk) < PATHS_BLOCK_ROWS:
            return
        chunk = list(itertools.islice(iterator, PATHS_BLOCK_ROWS))
        if not chunk:
            return


def _paths_yson_blocks(
    bucket: str, paths: Iterable[str | S3Object], counter: list[int] | None = None
) -> Iterator[bytes]:
    """The rows ``{bucket, path}`` as YSON (:data:`PATHS_ROW_FORMAT`), :data:`PATHS_BLOCK_ROWS`
    rows to a block."""
    template = _row_template(bucket, [("path", b"%s%s")])
    for chunk in _chunks(paths, counter):
        headers, keys = _binary_string_parts(list(map(_path_key, chunk)))
        yield b"".join(map(template.__mod__, zip(headers, keys, strict=True)))


def listing_yson_blocks(
    bucket: str, objects: Iterable[S3Object], counter: list[int] | None = None
) -> Iterator[bytes]:
    r""":func:`~yt_assets.yt.schemas.listing_row` of each object as YSON
    (:data:`PATHS_ROW_FORMAT`; the same values: ``size`` and ``last_modified`` as int64, like
    yt.wrapper writes Python ints), joined :data:`PATHS_BLOCK_ROWS` rows to a block (a page's
    columns formatted at once: about 4x less CPU than a row at a time); ``counter[0]`` counts
    the rows.

    >>> from datetime import UTC, datetime
    >>> import yt.yson
    >>> moment = datetime(2026, 1, 1, tzinfo=UTC)
    >>> block = next(listing_yson_blocks("b", [S3Object("k\t", 3, "e", moment)]))
    >>> yt.yson.loads(block, yson_type="list_fragment").__next__()["path"]
    'k\t'
    """
    template = _row_template(
        bucket,
        [("path", b"%s%s"), ("size", b"%d"), ("etag", b"%s%s"), ("last_modified", b"%d")],
    )
    for chunk in _chunks(objects, counter):
        if not chunk:
            yield b""
            continue
        keys, sizes, etags, times = zip(*chunk, strict=True)
        microseconds = {moment: timestamp_microseconds(moment) for moment in set(times)}
        key_headers, key_bytes = _binary_string_parts(keys)
        etag_headers, etag_bytes = _binary_string_parts(etags)
        yield b"".join(
            map(
                template.__mod__,
                zip(
                    key_headers,
                    key_bytes,
                    sizes,
                    etag_headers,
                    etag_bytes,
                    map(microseconds.__getitem__, times),
                    strict=True,
                ),
            )
        )


@contextmanager
def _config_capped(config: Any, key: str, limit: int) -> Iterator[None]:
    """``config[key]`` (a ``None`` one: unset) at most ``limit`` inside the block, restored
    after; nothing changes when ``config`` is no mapping (yt.wrapper's VerifiedDict is no dict)."""
    if not isinstance(config, MutableMapping):
        yield
        return
    previous = config.get(key)
    config[key] = min(previous or limit, limit)
    try:
        yield
    finally:
        config[key] = previous


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
    counter = [0]
    log.info("Saving S3 paths of bucket %s to YT table %s", bucket, output_table)
    write_yson_blocks_atomically(
        yt_client,
        output_table,
        _paths_yson_blocks(bucket, paths, counter),
        yt_schema(PATHS_TABLE_COLUMNS),
        write_chunk_bytes=write_chunk_bytes,
    )
    log.info("Saved %d paths to %s", counter[0], output_table)
    return counter[0]


def write_yson_blocks_atomically(
    yt_client: Any,
    path: str,
    blocks: Iterable[bytes],
    schema: TableSchema,
    *,
    owner: str | None = None,
    write_chunk_bytes: int = SAVE_WRITE_CHUNK_BYTES,
) -> None:
    """:func:`write_table_atomically` of blocks of YSON rows, overlapped: the blocks are
    produced (e.g. listed and formatted) in a thread of their own, at most
    :data:`PATHS_BLOCKS_AHEAD` ahead, while this thread waits on the YT proxy; the client's write
    chunk is capped at ``write_chunk_bytes`` (see :func:`save_s3_paths_to_table`)."""
    ahead = iter_in_background(blocks, max_ahead=PATHS_BLOCKS_AHEAD, name="yt-rows")
    try:
        write_retries = getattr(yt_client, "config", {}).get("write_retries")
        with _config_capped(write_retries, "chunk_size", write_chunk_bytes):
            write_table_atomically(
                yt_client, path, ahead, schema, owner=owner, raw_format=PATHS_ROW_FORMAT
            )
    finally:
        ahead.close()  # type: ignore[attr-defined]
