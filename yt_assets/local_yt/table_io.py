"""Static tables: writing rows into chunks (planning sorted and appending writes), reading row and
key ranges back, ``concatenate`` (a layer of :class:`~.cluster.Cluster`).
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import yt.yson

from .cluster_base import RichPathLike, Row
from .cypress import (
    CHUNK_TYPES,
    TABLE_CHUNK_TYPE_CODE,
    TRUNK,
    ChunkInfo,
    CypressView,
    Node,
    dump_yson,
)
from .cypress_writes import CypressWrites
from .exceptions import (
    GenericError,
    InvalidNodeType,
    ResolveError,
    TableSortOrderViolation,
)
from .formats import YsonStreamRows
from .tables import (
    Schema,
    SortedWriteChecker,
    make_batch_check,
    make_key_function,
    make_row_validator,
    normalize_schema,
    project_columns,
    schema_with_sorted_by,
)
from .transactions import (
    acquire_lock,
    check_lock,
)
from .values import is_control_row
from .verbatim_writes import copy_yson_rows
from .ypath import RichPath, parse_rich_path


def _dump_rows(rows: Iterable[Row], chunk: Any) -> None:
    yt.yson.dump(rows, chunk, yson_type="list_fragment", yson_format="binary")


def _row_limits(
    range_: dict[str, Any],
) -> tuple[int | None, int | None, list[Any] | None, list[Any] | None, list[Any] | None]:
    """(lower row, upper row, lower key, upper key, exact key) of one ``ranges`` item."""
    lower_row = upper_row = None
    lower_key = upper_key = exact_key = None
    exact = range_.get("exact") or {}
    lower = range_.get("lower_limit") or {}
    upper = range_.get("upper_limit") or {}
    if "row_index" in exact:
        lower_row = int(exact["row_index"])
        upper_row = lower_row + 1
    if "key" in exact:
        exact_key = list(exact["key"])
    if "row_index" in lower:
        lower_row = int(lower["row_index"])
    if "row_index" in upper:
        upper_row = int(upper["row_index"])
    if "key" in lower:
        lower_key = list(lower["key"])
    if "key" in upper:
        upper_key = list(upper["key"])
    for limit in (exact, lower, upper):
        unsupported = set(limit) - {"row_index", "key"}
        if unsupported:
            raise GenericError(f"Unsupported read limit {sorted(unsupported)} in the local YT")
    return lower_row, upper_row, lower_key, upper_key, exact_key


def _chunk_limits_as_rows(range_: dict[str, Any], chunk_rows: list[int]) -> dict[str, Any]:
    """``chunk_index`` limits of a range as the row indexes where those chunks start."""
    starts = list(itertools.accumulate(chunk_rows, initial=0))

    def start_of(chunk_index: Any) -> int:
        return starts[min(max(int(chunk_index), 0), len(chunk_rows))]

    result = dict(range_)
    exact = dict(range_.get("exact") or {})
    if "chunk_index" in exact:
        index = exact.pop("chunk_index")
        result["exact"] = exact
        result["lower_limit"] = {**(range_.get("lower_limit") or {}), "chunk_index": index}
        result["upper_limit"] = {**(range_.get("upper_limit") or {}), "chunk_index": int(index) + 1}
    for name, pick in (("lower_limit", max), ("upper_limit", min)):
        limit = dict(result.get(name) or {})
        if "chunk_index" in limit:
            row = start_of(limit.pop("chunk_index"))
            limit["row_index"] = pick(row, int(limit["row_index"])) if "row_index" in limit else row
            result[name] = limit
    return result


class _WritePlan:
    """What a table write does, decided before streaming (schema, lock mode, previous key)."""

    def __init__(
        self,
        schema: Schema,
        stored_schema: dict[str, Any] | None,
        append: bool,
        lock_mode: str,
        previous_last_key: list[Any] | None,
    ) -> None:
        self.schema = schema
        self.stored_schema = stored_schema
        self.append = append
        self.lock_mode = lock_mode
        self.previous_last_key = previous_last_key


def _key_bound(schema: Schema, key: list[Any]) -> tuple[Callable[[Row], tuple], tuple]:
    """(row -> key prefix, the limit's key) for a key limit of a sorted table."""
    columns = schema.sort_columns[: len(key)]
    key_of = make_key_function(columns, schema.descending[: len(columns)])
    return key_of, key_of(dict(zip(columns, key, strict=False)))


class TableIO(CypressWrites):
    """``write_table``, ``read_table``, ``concatenate`` and the :class:`~.interfaces.TableStore` row methods."""

    def _last_key(self, view: CypressView, node: Node, schema: Schema) -> builtins.list[Any] | None:
        if not node.chunks or not schema.sort_columns:
            return None
        infos = view.chunk_infos(node.chunks)
        for info in reversed(infos):
            if info.row_count == 0:
                continue
            if info.sort_columns == schema.sort_columns:
                return info.last_key
            last = None
            for row in self._iterate_chunks([info], 0, None):
                last = row
            if last is not None:
                return [last.get(name) for name in schema.sort_columns]
        return None

    def write_table(
        self, path: RichPathLike, rows: Iterable[Row], *, transaction_id: str | None = None
    ) -> int:
        """Stream rows into a table (``<append=%true>`` appends, ``<schema=...>``/``<sorted_by=...>``
        as in YT). Returns the number of rows written. Atomic: readers see all rows or none."""
        rich = parse_rich_path(path)
        with self._mutation(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "table":
                raise InvalidNodeType(
                    f"Cannot write table rows to {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            table_path = view.path_of(node)
            plan = self._plan_table_write(view, node, rich, table_path)
            acquire_lock(view, node, mode=plan.lock_mode, path=table_path)
        node_id = node.id
        validate = make_row_validator(plan.schema, table_path=table_path)
        checker = (
            SortedWriteChecker(
                plan.schema, table_path=table_path, previous_last_key=plan.previous_last_key
            )
            if plan.schema.sort_columns
            else None
        )
        count = 0

        def validated_rows() -> Iterator[Row]:
            nonlocal count
            for row in rows:
                if is_control_row(row):
                    continue
                row = validate(row)
                if checker is not None:
                    checker.check(row)
                count += 1
                yield row

        check_batch = make_batch_check(plan.schema) if isinstance(rows, YsonStreamRows) else None
        with contextlib.ExitStack() as chunks:
            chunk = chunks.enter_context(self._storage.new_chunk(TABLE_CHUNK_TYPE_CODE))
            if isinstance(rows, YsonStreamRows) and check_batch is not None:
                copied = copy_yson_rows(
                    rows.stream,
                    chunk.file,
                    check_batch=check_batch,
                    validate=validate,
                    checker=checker,
                )
                count = copied.rows
                if not copied.exact:
                    chunk.file.flush()
                    copy = chunks.enter_context(open(chunk.path, "rb"))
                    chunk = chunks.enter_context(self._storage.new_chunk(TABLE_CHUNK_TYPE_CODE))
                    _dump_rows(YsonStreamRows(copy), chunk.file)
            else:
                _dump_rows(validated_rows(), chunk.file)
            size = chunk.finish()
            if count:
                self._storage.sync_chunks_directory()
            with self._mutation(transaction_id) as view:
                current = view.node(node_id)
                if current is None:
                    raise ResolveError(
                        f"Table {table_path} was removed while being written", path=table_path
                    )
                if view.tx == TRUNK:
                    check_lock(view, current, mode=plan.lock_mode, path=table_path)
                    if checker is not None and plan.append and checker.first_key is not None:
                        last_key = self._last_key(view, current, plan.schema)
                        if last_key != plan.previous_last_key:
                            recheck = SortedWriteChecker(
                                plan.schema, table_path=table_path, previous_last_key=last_key
                            )
                            recheck.check(
                                dict(zip(plan.schema.sort_columns, checker.first_key, strict=False))
                            )
                chunk_ids: builtins.list[str] = []
                if count:
                    self._insert_chunk(
                        view,
                        chunk.id,
                        kind="table",
                        row_count=count,
                        data_size=size,
                        sort_columns=plan.schema.sort_columns if checker is not None else None,
                        first_key=checker.first_key if checker is not None else None,
                        last_key=checker.last_key if checker is not None else None,
                    )
                    chunk_ids = [chunk.id]
                if plan.append:
                    view.append_chunks(current, chunk_ids)
                else:
                    view.replace_chunks(current, chunk_ids)
                if plan.stored_schema is not None:
                    view.set_attribute(current, "schema", plan.stored_schema)
                chunk.committed = bool(count)
        return count

    def _plan_table_write(
        self, view: CypressView, node: Node, rich: RichPath, table_path: str
    ) -> _WritePlan:
        current = self._schema_of(node)
        stored = node.attrs.get("schema") or {}
        strong = stored.get("mode") == "strong"
        if rich.append:
            if rich.schema is not None:
                raise GenericError(
                    f'Cannot append to {table_path} with a "schema" attribute; alter the table instead',
                    path=table_path,
                )
            schema = current
            new_stored = None
            if rich.sorted_by is not None and rich.sorted_by != schema.sort_columns:
                if node.chunks:
                    raise TableSortOrderViolation(
                        f"Cannot append sorted data to table {table_path}: its key columns "
                        f"{schema.sort_columns} differ from {rich.sorted_by}",
                        path=table_path,
                    )
                schema = schema_with_sorted_by(schema, rich.sorted_by)
                new_stored = {**schema.to_stored(), "mode": "strong" if strong else "weak"}
            previous = self._last_key(view, node, schema)
            mode = "exclusive" if schema.sort_columns else "shared"
            return _WritePlan(schema, new_stored, True, mode, previous)
        if rich.schema is not None:
            schema = normalize_schema(rich.schema)
            strong = True
        elif strong:
            schema = current
        else:
            schema = Schema()
        if rich.sorted_by is not None:
            schema = schema_with_sorted_by(schema, rich.sorted_by)
        new_stored = {**schema.to_stored(), "mode": "strong" if strong else "weak"}
        if new_stored == stored:
            new_stored = None
        return _WritePlan(schema, new_stored, False, "exclusive", None)

    def _insert_chunk(
        self,
        view: CypressView,
        chunk_id: str,
        *,
        kind: str,
        row_count: int,
        data_size: int,
        md5: str | None = None,
        sort_columns: builtins.list[str] | None = None,
        first_key: builtins.list[Any] | None = None,
        last_key: builtins.list[Any] | None = None,
    ) -> None:
        view.conn.execute(
            "INSERT INTO chunks (id, kind, row_count, data_size, md5, sort_columns, first_key, last_key,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chunk_id,
                kind,
                row_count,
                data_size,
                md5,
                json.dumps(sort_columns) if sort_columns else None,
                dump_yson(first_key) if first_key is not None else None,
                dump_yson(last_key) if last_key is not None else None,
                time.time(),
            ),
        )

    def _table_selection(
        self, path: RichPathLike, transaction_id: str | None
    ) -> tuple[RichPath, Node, builtins.list[ChunkInfo], Schema, str]:
        rich = parse_rich_path(path)
        with self._reading(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            if node.type != "table":
                raise InvalidNodeType(
                    f"Cannot read table rows from {view.path_of(node)}: it is a {node.type}",
                    path=view.path_of(node),
                )
            return (
                rich,
                node,
                view.chunk_infos(node.chunks),
                self._schema_of(node),
                view.path_of(node),
            )

    def _first_row_index(
        self,
        infos: builtins.list[ChunkInfo],
        schema: Schema,
        key: builtins.list[Any],
        *,
        after: bool,
    ) -> int:
        """Index of the first row whose key prefix is ``>= key`` (``> key`` when ``after``)."""
        key_of, bound = _key_bound(schema, key)
        index = 0
        for info in infos:
            if info.sort_columns == schema.sort_columns and info.last_key is not None:
                last = key_of(dict(zip(schema.sort_columns, info.last_key, strict=True)))
                if last < bound or (after and last == bound):
                    index += info.row_count
                    continue
            for row in self._iterate_chunks([info], 0, None):
                row_key = key_of(row)
                if bound < row_key or (not after and row_key == bound):
                    return index
                index += 1
        return index

    def _range_bounds(
        self,
        infos: builtins.list[ChunkInfo],
        schema: Schema,
        range_: dict[str, Any],
        table_path: str,
    ) -> tuple[int, int]:
        """Row-index bounds ``[lower, upper)`` of one read range (key limits resolved by a scan)."""
        total = sum(info.row_count for info in infos)
        lower_row, upper_row, lower_key, upper_key, exact_key = _row_limits(
            _chunk_limits_as_rows(range_, [info.row_count for info in infos])
        )
        lower = min(max(lower_row or 0, 0), total)
        upper = total if upper_row is None else min(max(upper_row, 0), total)
        if lower_key is not None or upper_key is not None or exact_key is not None:
            if not schema.sort_columns:
                raise GenericError(
                    f"Cannot use key limits to read unsorted table {table_path}", path=table_path
                )
            if lower_key is not None:
                lower = max(lower, self._first_row_index(infos, schema, lower_key, after=False))
            if upper_key is not None:
                upper = min(upper, self._first_row_index(infos, schema, upper_key, after=False))
            if exact_key is not None:
                lower = max(lower, self._first_row_index(infos, schema, exact_key, after=False))
                upper = min(upper, self._first_row_index(infos, schema, exact_key, after=True))
        return lower, max(upper, lower)

    def read_table_ranges(
        self, path: RichPathLike, *, transaction_id: str | None = None
    ) -> builtins.list[tuple[int, Iterator[Row]]]:
        """One ``(start_row_index, rows)`` per range of the rich path (one for a path without
        ranges), for callers that mark range boundaries (``range_index``/``row_index`` control
        attributes). Key limits are resolved to row indexes; rows stream lazily."""
        rich, _node, infos, schema, table_path = self._table_selection(path, transaction_id)
        columns = rich.columns
        result: builtins.list[tuple[int, Iterator[Row]]] = []
        for range_ in rich.ranges or [{}]:
            lower, upper = self._range_bounds(infos, schema, range_, table_path)
            rows: Iterator[Row] = self._iterate_chunks(infos, lower, upper)
            if columns is not None:
                rows = iter(project_columns(rows, columns))
            result.append((lower, rows))
        return result

    def read_table(
        self, path: RichPathLike, *, transaction_id: str | None = None
    ) -> tuple[int, Iterator[Row]]:
        """``(start_row_index, rows)``: all ranges one after another, streamed lazily from the
        chunks as of this call (later commits do not change what the iterator yields)."""
        ranges = self.read_table_ranges(path, transaction_id=transaction_id)
        return ranges[0][0], itertools.chain.from_iterable(rows for _start, rows in ranges)

    def read_rows(self, path: RichPathLike, transaction_id: str | None = None) -> Iterator[Row]:
        return self.read_table(path, transaction_id=transaction_id)[1]

    def row_count(self, path: RichPathLike, transaction_id: str | None = None) -> int:
        return sum(upper - lower for lower, upper in self.range_bounds(path, transaction_id))

    def range_bounds(
        self, path: RichPathLike, transaction_id: str | None = None
    ) -> builtins.list[tuple[int, int]]:
        """Row-index bounds ``[lower, upper)`` of each range of a rich path (one for none)."""
        rich, _node, infos, schema, table_path = self._table_selection(path, transaction_id)
        return [
            self._range_bounds(infos, schema, range_, table_path) for range_ in rich.ranges or [{}]
        ]

    def table_schema(
        self, path: RichPathLike, transaction_id: str | None = None
    ) -> tuple[Schema, bool]:
        """The table's schema and whether it is strong (set by the user, not inferred)."""
        rich = parse_rich_path(path)
        with self._reading(transaction_id) as view:
            _rich, node = self._resolve_node(view, rich)
            stored = node.attrs.get("schema") or {}
            return self._schema_of(node), stored.get("mode") == "strong"

    def write_rows(
        self, path: RichPathLike, rows: Iterable[Row], transaction_id: str | None = None
    ) -> int:
        return self.write_table(path, rows, transaction_id=transaction_id)

    def concatenate(
        self,
        source_paths: builtins.list[RichPathLike],
        destination_path: RichPathLike,
        *,
        transaction_id: str | None = None,
    ) -> None:
        """Concatenate tables (or files) into ``destination_path`` (``<append=%true>`` keeps its rows).

        Source chunks are shared, not copied. Into a strict-schema table, rows of sources with another
        schema are validated; into a sorted table, key order across sources is checked.
        """
        destination_rich = parse_rich_path(destination_path)
        # Phase 1: resolve and validate without holding the write lock.
        with self._reading(transaction_id) as view:
            _rich, destination = self._resolve_node(view, destination_rich)
            sources = [self._resolve_node(view, path)[1] for path in source_paths]
            for source in sources:
                if source.type != destination.type or source.type not in CHUNK_TYPES:
                    raise InvalidNodeType(
                        f"Type of {view.path_of(source)} ({source.type}) does not match the type of "
                        f"destination {view.path_of(destination)} ({destination.type})"
                    )
            source_chunks = [list(source.chunks) for source in sources]
            destination_path_text = view.path_of(destination)
            if destination.type == "table":
                self._validate_concatenation(
                    view, destination, sources, append=destination_rich.append
                )
        # Phase 2: apply, if the sources did not change meanwhile.
        with self._mutation(transaction_id) as view:
            destination = view.node(destination.id)  # type: ignore[assignment]
            if destination is None:
                raise ResolveError(f"Node {destination_path_text} was removed during concatenate")
            for source, chunks in zip(sources, source_chunks, strict=True):
                current = view.node(source.id)
                if current is None or current.chunks != chunks:
                    raise GenericError(
                        f"Source {source.id} changed during concatenate; retry",
                    )
            schema = self._schema_of(destination)
            append = destination_rich.append
            mode = "exclusive" if (not append or schema.sort_columns) else "shared"
            acquire_lock(view, destination, mode=mode, path=destination_path_text)
            all_chunks = [chunk for chunks in source_chunks for chunk in chunks]
            if append:
                view.append_chunks(destination, all_chunks)
            else:
                view.replace_chunks(destination, all_chunks)

    def _validate_concatenation(
        self, view: CypressView, destination: Node, sources: builtins.list[Node], *, append: bool
    ) -> None:
        schema = self._schema_of(destination)
        path = view.path_of(destination)
        if schema.strict:
            validate = make_row_validator(schema, table_path=path)
            for source in sources:
                source_schema = self._schema_of(source)
                if source_schema.to_stored() == schema.to_stored():
                    continue
                for row in self._iterate_chunks(view.chunk_infos(source.chunks), 0, None):
                    validate(row)
        if schema.sort_columns:
            infos: builtins.list[ChunkInfo] = []
            if append:
                infos.extend(view.chunk_infos(destination.chunks[-1:]))
            for source in sources:
                infos.extend(view.chunk_infos(source.chunks))
            checker = SortedWriteChecker(schema, table_path=path, previous_last_key=None)
            for info in infos:
                if info.sort_columns == schema.sort_columns and info.first_key is not None:
                    checker.check(dict(zip(schema.sort_columns, info.first_key, strict=False)))
                    checker.check(
                        dict(
                            zip(schema.sort_columns, info.last_key or info.first_key, strict=False)
                        )
                    )
                else:
                    for row in self._iterate_chunks([info], 0, None):
                        checker.check(row)
