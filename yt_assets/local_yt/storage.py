"""Persistence of the local YT: SQLite metadata plus immutable chunk files, under one root directory.

Layout of a root::

    <root>/meta.sqlite3        Cypress nodes and their per-transaction versions, transactions, locks,
                               chunk metadata (WAL mode; several processes may open it at once)
    <root>/chunks/<chunk-id>   one immutable file per chunk: a table chunk is binary YSON
                               (``list_fragment``), a file chunk is raw bytes
    <root>/materialized/       files assembled from several chunks for ``file_content_path``

Rules that make a root durable and shareable:

- Every metadata mutation runs in ``BEGIN IMMEDIATE`` (:meth:`Storage.write`), with a busy timeout;
  reads run in a deferred transaction (:meth:`Storage.read`) so a command sees one consistent state.
- A chunk file is written, ``fsync``-ed, and only then referenced by committed metadata; until then it
  is an orphan. While it is being written, the writer holds an exclusive ``flock`` on it, so the
  garbage collector (run at open and by :meth:`Storage.collect_garbage`) deletes only orphans whose
  writer is gone (e.g. SIGKILLed) and that were last modified ``orphan_min_age_seconds`` ago: it
  never sees a live writer's file as garbage.
- A chunk no longer referenced by any node version is deleted after a grace period
  (``unreferenced_grace_seconds``), so a reader that resolved the chunk list just before an overwrite
  can still open it.

Usage::

    storage = Storage(Path("/tmp/yt-root"))
    with storage.write() as conn:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
    storage.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .values import new_object_id

DATABASE_FILE = "meta.sqlite3"
CHUNKS_DIRECTORY = "chunks"
MATERIALIZED_DIRECTORY = "materialized"
BUSY_TIMEOUT_SECONDS = 120.0
DEFAULT_UNREFERENCED_GRACE_SECONDS = 3600.0
DEFAULT_ORPHAN_MIN_AGE_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    creation_time TEXT NOT NULL,
    created_tx TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS versions (
    node_id TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    snapshot INTEGER NOT NULL DEFAULT 0,
    parent_id TEXT,
    key TEXT,
    removed INTEGER,
    attrs BLOB,
    attrs_removed TEXT,
    value BLOB,
    content_mode TEXT,
    chunks TEXT,
    modification_time TEXT,
    revision INTEGER,
    PRIMARY KEY (node_id, tx_id)
);
CREATE INDEX IF NOT EXISTS versions_by_parent ON versions (parent_id, key);
CREATE INDEX IF NOT EXISTS versions_by_tx ON versions (tx_id);
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL DEFAULT '',
    title TEXT,
    attributes BLOB,
    start_time TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    deadline REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_parent ON transactions (parent_id);
CREATE INDEX IF NOT EXISTS transactions_by_deadline ON transactions (deadline);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    child_key TEXT,
    attribute_key TEXT,
    creation_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS locks_by_node ON locks (node_id);
CREATE INDEX IF NOT EXISTS locks_by_tx ON locks (tx_id);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    data_size INTEGER NOT NULL,
    md5 TEXT,
    sort_columns TEXT,
    first_key BLOB,
    last_key BLOB,
    created REAL NOT NULL,
    unreferenced_since REAL
);
"""


@dataclass
class ChunkFile:
    """A chunk being written: the open file (flock-ed) and its id. See :meth:`Storage.new_chunk`."""

    id: str
    path: Path
    file: BinaryIO
    committed: bool = False
    size: int = 0

    def finish(self) -> int:
        """Flush and fsync the data (before its metadata is committed); returns the size."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.size = self.file.tell()
        return self.size


class Storage:
    """SQLite connections (one per thread) and chunk files under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        unreferenced_grace_seconds: float = DEFAULT_UNREFERENCED_GRACE_SECONDS,
        orphan_min_age_seconds: float = DEFAULT_ORPHAN_MIN_AGE_SECONDS,
    ) -> None:
        self.root = root
        self.orphan_min_age_seconds = orphan_min_age_seconds
        self.chunks_directory = root / CHUNKS_DIRECTORY
        self.materialized_directory = root / MATERIALIZED_DIRECTORY
        self.unreferenced_grace_seconds = unreferenced_grace_seconds
        self.chunks_directory.mkdir(parents=True, exist_ok=True)
        self.materialized_directory.mkdir(parents=True, exist_ok=True)
        self._database_path = root / DATABASE_FILE
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._owner_pid = os.getpid()
        connection = self.connection()
        connection.execute("PRAGMA journal_mode=WAL")
        with self.write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    # ---- connections ---------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        if self._closed:
            raise RuntimeError("Storage is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if getattr(self._local, "pid", None) != os.getpid():
            connection = None  # inherited through fork: never share a SQLite connection
        if connection is None:
            connection = sqlite3.connect(
                self._database_path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
            self._local.pid = os.getpid()
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def release_thread_connection(self) -> None:
        """Close this thread's connection, if any (a thread that ends must call it: each open
        connection holds descriptors of the database and its WAL)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            return
        self._local.connection = None
        with self._connections_lock:
            if connection in self._connections:
                self._connections.remove(connection)
        with contextlib.suppress(sqlite3.Error):
            connection.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A mutation: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
        connection = self.connection()
        if connection.in_transaction:
            raise RuntimeError("Nested storage transactions are not supported")
        with self._write_lock:  # threads of this process queue here, not in SQLite's busy loop
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read: a deferred transaction (a WAL snapshot from its first read)."""
        connection = self.connection()
        if connection.in_transaction:
            raise RuntimeError("Nested storage transactions are not supported")
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            if self._owner_pid != os.getpid():
                self._connections.clear()  # a forked child: the parent's connections are not ours
                return
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()

    # ---- chunks --------------------------------------------------------------------------------

    def chunk_path(self, chunk_id: str) -> Path:
        return self.chunks_directory / chunk_id

    @contextlib.contextmanager
    def new_chunk(self, type_code: int) -> Iterator[ChunkFile]:
        """Create a chunk file held under an exclusive flock until the block exits.

        The caller writes, calls :meth:`ChunkFile.finish`, commits the chunk's metadata and sets
        ``committed``; a chunk left uncommitted is deleted on exit.
        """
        chunk_id = new_object_id(type_code)
        path = self.chunk_path(chunk_id)
        file = open(path, "xb")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            chunk = ChunkFile(id=chunk_id, path=path, file=file)
            try:
                yield chunk
            finally:
                if not chunk.committed:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        finally:
            file.close()

    def sync_chunks_directory(self) -> None:
        """fsync the chunks directory so new chunk files survive a crash."""
        fd = os.open(self.chunks_directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---- garbage collection --------------------------------------------------------------------

    def collect_garbage(self) -> int:
        """Delete orphan chunk files and chunks unreferenced for longer than the grace period.

        Returns the number of files deleted.
        """
        deleted = self._delete_orphan_files()
        now = time.time()
        doomed: list[str] = []
        with self.write() as conn:
            referenced: set[str] = set()
            for (chunk_list,) in conn.execute(
                "SELECT chunks FROM versions WHERE chunks IS NOT NULL"
            ):
                referenced.update(json.loads(chunk_list))
            rows = conn.execute("SELECT id, unreferenced_since FROM chunks").fetchall()
            for chunk_id, since in rows:
                if chunk_id in referenced:
                    if since is not None:
                        conn.execute(
                            "UPDATE chunks SET unreferenced_since = NULL WHERE id = ?", (chunk_id,)
                        )
                elif since is None:
                    conn.execute(
                        "UPDATE chunks SET unreferenced_since = ? WHERE id = ?", (now, chunk_id)
                    )
                elif now - since >= self.unreferenced_grace_seconds:
                    conn.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
                    doomed.append(chunk_id)
        for chunk_id in doomed:
            with contextlib.suppress(FileNotFoundError):
                self.chunk_path(chunk_id).unlink()
                deleted += 1
        return deleted

    def _delete_orphan_files(self) -> int:
        with self.read() as conn:
            known = {row[0] for row in conn.execute("SELECT id FROM chunks")}
        deleted = 0
        for entry in os.scandir(self.chunks_directory):
            if entry.name in known or not entry.is_file():
                continue
            try:
                file = open(entry.path, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds it
                if time.time() - os.fstat(file.fileno()).st_mtime < self.orphan_min_age_seconds:
                    continue  # maybe created a moment ago, its writer not yet holding the flock
                with self.read() as conn:
                    committed = conn.execute(
                        "SELECT 1 FROM chunks WHERE id = ?", (entry.name,)
                    ).fetchone()
                if committed is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        deleted += 1
            finally:
                file.close()
        return deleted
