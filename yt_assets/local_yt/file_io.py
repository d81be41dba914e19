"""Files and the file cache: ``write_file``, ``read_file``, ``get_file_from_cache``,
``put_file_to_cache`` (a layer of :class:`~.cluster.Cluster`).
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .cluster_base import RichPathLike
from .cypress import (
    FILE_CHUNK_TYPE_CODE,
    TRUNK,
    ChunkInfo,
)
from .exceptions import (
    GenericError,
    InvalidNodeType,
    InvalidYPath,
    ResolveError,
)
from .table_io import TableIO
from .transactions import (
    acquire_lock,
    check_lock,
)
from .ypath import parse_rich_path


class FileIO(TableIO):
    """File nodes' contents and the MD5-keyed file cache."""

    def write_file(
        self, path: RichPathLike, data: Iterable[bytes], *, transaction_id: str | None = None
    ) -> None:
        """Stream bytes into a file node (``<append=%true>`` appends)."""
        rich = parse_rich_path(path)
        with self._mutation(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "file":
                raise InvalidNodeType(
                    f"Cannot write file data to {view.path_of(node)}: it is a {node.type}"
                )
            file_path = view.path_of(node)
            mode = "shared" if rich.append else "exclusive"
            acquire_lock(view, node, mode=mode, path=file_path)
        md5 = hashlib.md5()
        with self._storage.new_chunk(FILE_CHUNK_TYPE_CODE) as chunk:
            for piece in data:
                if piece:
                    md5.update(piece)
                    chunk.file.write(piece)
            size = chunk.finish()
            if size:
                self._storage.sync_chunks_directory()
            with self._mutation(transaction_id) as view:
                current = view.node(node.id)
                if current is None:
                    raise ResolveError(
                        f"File {file_path} was removed while being written", path=file_path
                    )
                if view.tx == TRUNK:
                    check_lock(view, current, mode=mode, path=file_path)
                chunk_ids: builtins.list[str] = []
                if size:
                    self._insert_chunk(
                        view,
                        chunk.id,
                        kind="file",
                        row_count=0,
                        data_size=size,
                        md5=md5.hexdigest(),
                    )
                    chunk_ids = [chunk.id]
                if rich.append:
                    view.append_chunks(current, chunk_ids)
                else:
                    view.replace_chunks(current, chunk_ids)
                if "md5" in current.attrs:
                    view.remove_attribute(current, "md5")
                chunk.committed = bool(size)

    def _file_chunks(
        self, path: RichPathLike, transaction_id: str | None
    ) -> tuple[builtins.list[ChunkInfo], str]:
        with self._reading(transaction_id) as view:
            _rich, node = self._resolve_node(view, path)
            if node.type != "file":
                raise InvalidNodeType(
                    f"Cannot read file data from {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            return view.chunk_infos(node.chunks), view.path_of(node)

    def read_file(
        self,
        path: RichPathLike,
        *,
        offset: int | None = None,
        length: int | None = None,
        transaction_id: str | None = None,
    ) -> Iterator[bytes]:
        infos, _file_path = self._file_chunks(path, transaction_id)
        return self._file_bytes(infos, offset or 0, length)

    def _file_bytes(
        self, infos: builtins.list[ChunkInfo], offset: int, length: int | None
    ) -> Iterator[bytes]:
        remaining = length
        position = 0
        for info in infos:
            start, end = position, position + info.data_size
            position = end
            if end <= offset:
                continue
            if remaining is not None and remaining <= 0:
                break
            with open(self._storage.chunk_path(info.id), "rb") as stream:
                stream.seek(max(offset - start, 0))
                while True:
                    size = 1 << 20 if remaining is None else min(1 << 20, remaining)
                    if size <= 0:
                        break
                    piece = stream.read(size)
                    if not piece:
                        break
                    if remaining is not None:
                        remaining -= len(piece)
                    yield piece

    def file_content_path(self, path: RichPathLike, transaction_id: str | None = None) -> Path:
        """The immutable on-disk content of a file node (to copy or link into a job sandbox)."""
        infos, _file_path = self._file_chunks(path, transaction_id)
        if len(infos) == 1:
            return self._storage.chunk_path(infos[0].id)
        name = hashlib.sha256(",".join(info.id for info in infos).encode()).hexdigest()
        target = self._storage.materialized_directory / name
        if not target.exists():
            temporary = target.with_name(f"{name}.{os.getpid()}.tmp")
            with open(temporary, "wb") as out:
                for piece in self._file_bytes(infos, 0, None):
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        return target

    @staticmethod
    def _cache_entry_path(md5: str, cache_path: str) -> str:
        return f"{str(cache_path).rstrip('/')}/{md5[-2:]}/{md5}"

    def get_file_from_cache(self, md5: str, cache_path: str) -> str:
        """The path of the cached file with this MD5 under ``cache_path``, or ``""``."""
        entry = self._cache_entry_path(str(md5), str(cache_path))
        try:
            with self._reading(None) as view:
                _rich, node = self._resolve_node(view, entry)
                if node.type != "file" or self._attributes(view, node, ["md5"]).get("md5") != md5:
                    return ""
        except (ResolveError, InvalidYPath):
            return ""
        return entry

    def put_file_to_cache(self, path: str, md5: str, cache_path: str) -> str:
        """Copy file ``path`` into the cache (checking its MD5); returns the cache path."""
        infos, file_path = self._file_chunks(path, None)
        digest = hashlib.md5()
        for piece in self._file_bytes(infos, 0, None):
            digest.update(piece)
        if digest.hexdigest() != md5:
            raise GenericError(
                f"MD5 mismatch for {file_path}: expected {md5}, actual {digest.hexdigest()}",
                path=file_path,
            )
        entry = self._cache_entry_path(str(md5), str(cache_path))
        self.copy(path, entry, recursive=True, force=True)
        self.set(entry + "/@md5", md5)
        self.set(entry + "/@touched", True)
        return entry
