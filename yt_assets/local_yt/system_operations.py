"""The operations without user code: ``sort``, ``merge`` and ``erase``, as what each writes.

Each function reads its input tables from a :class:`~.interfaces.TableStore` under the operation's
transaction and returns the ``(output path, rows)`` pairs to write in the output transaction (one
pair per written chunk; several pairs for one table append to the first):

- ``sort``: the rows of every input (ranges applied) sorted by ``sort_by`` (stable, external:
  :class:`~.external_sort.ExternalSorter`); the output gets ``sorted_by`` in its schema.
- ``merge``: ``unordered``/``ordered`` concatenate the inputs in order; ``sorted`` merges sorted
  inputs by ``merge_by`` (default: the inputs' common key columns) and keeps the output sorted.
  With ``combine_chunks`` (or ``force_transform``) each job writes one chunk (``job_count``
  jobs, else one); otherwise an unordered/ordered merge writes one chunk per input table.
- ``erase``: the table without the rows the ``table_path`` ranges select (all of them without
  ranges), keeping its schema and sortedness.

The output schema, as YT infers it: a table with a user-set (strong) schema keeps it; otherwise,
when every input has the same strong schema, the output takes it (key order of ``sorted`` output
only); otherwise the output schema is weak.

Usage::

    outputs = plan_sort(store, spec, transaction_id, sorter)
    for path, rows in outputs:
        store.write_rows(path, rows, output_transaction)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .exceptions import GenericError
from .external_sort import ExternalSorter
from .input_splits import even_split
from .interfaces import RichPath, Row, TableStore
from .job_io import InputRow, input_rows
from .operation_state import appended_path
from .sorted_inputs import check_sorted_input, key_columns, merge_sorted, table_streams
from .tables import Schema, make_key_function
from .values import as_bool
from .ypath import RichPath as ParsedPath
from .ypath import parse_rich_path

Outputs = list[tuple[RichPath, Iterable[Row]]]
MERGE_MODES = ("unordered", "ordered", "sorted")


def _input_paths(spec: Mapping[str, Any]) -> list[RichPath]:
    paths = list(spec.get("input_table_paths") or [])
    if not paths:
        raise GenericError("Spec field 'input_table_paths' is required and must be non-empty")
    return paths


def _output_path(spec: Mapping[str, Any]) -> ParsedPath:
    if spec.get("output_table_path") is None:
        raise GenericError("Spec field 'output_table_path' is required")
    return parse_rich_path(spec["output_table_path"])


def validate_system_spec(operation_type: str, spec: Mapping[str, Any]) -> None:
    """The checks made when the operation starts (a bad spec fails ``start_operation``)."""
    if operation_type == "erase":
        if spec.get("table_path") is None:
            raise GenericError("Spec field 'table_path' is required")
        return
    _input_paths(spec)
    _output_path(spec)
    if operation_type == "sort":
        key_columns(spec, "sort_by")
    elif operation_type == "merge":
        mode = str(spec.get("mode", "unordered"))
        if mode not in MERGE_MODES:
            raise GenericError(f"Unknown merge mode {mode!r} (expected one of {MERGE_MODES})")
        key_columns(spec, "merge_by", required=False)


def _inferred_schema(
    store: TableStore, inputs: list[RichPath], output: ParsedPath, tx: str | None
) -> Schema | None:
    """The input schema the output takes, if the output has no schema of its own."""
    if output.append or store.table_schema(output.path, tx)[1]:
        return None
    schemas = [store.table_schema(path, tx) for path in inputs]
    first, strong = schemas[0]
    if not strong or any(schema != first or not s for schema, s in schemas[1:]):
        return None
    return Schema(
        columns=[{k: v for k, v in c.items() if k != "sort_order"} for c in first.columns],
        strict=first.strict,
    )


def _output_with(
    output: ParsedPath, schema: Schema | None, sorted_by: list[str] | None
) -> ParsedPath:
    attributes = dict(output.attributes)
    if schema is not None:
        attributes["schema"] = schema.to_yson()
    if sorted_by:
        attributes["sorted_by"] = sorted_by
    return ParsedPath(path=output.path, attributes=attributes)


def _chunked(path: ParsedPath, rows: Iterator[Row], sizes: list[int] | None) -> Outputs:
    """One ``(path, rows)`` per chunk of ``sizes`` rows (the later ones append)."""
    if not sizes or len(sizes) == 1:
        return [(path, rows)]
    outputs: Outputs = [(path, itertools.islice(rows, sizes[0]))]
    for size in sizes[1:]:
        outputs.append((appended_path(path), itertools.islice(rows, size)))
    return outputs


def _rows(store: TableStore, paths: list[RichPath], tx: str | None) -> Iterator[InputRow]:
    return input_rows(lambda path: store.read_table_ranges(path, transaction_id=tx), paths)


def plan_sort(
    store: TableStore, spec: Mapping[str, Any], tx: str | None, sorter: ExternalSorter
) -> Outputs:
    inputs, output = _input_paths(spec), _output_path(spec)
    sort_by = key_columns(spec, "sort_by")
    schema = _inferred_schema(store, inputs, output, tx)
    rows = (item.row for item in _rows(store, inputs, tx))
    sorted_rows = sorter.sort(rows, make_key_function(sort_by))
    return [(_output_with(output, schema, sort_by), sorted_rows)]


def plan_merge(store: TableStore, spec: Mapping[str, Any], tx: str | None) -> Outputs:
    inputs, output = _input_paths(spec), _output_path(spec)
    mode = str(spec.get("mode", "unordered"))
    schema = _inferred_schema(store, inputs, output, tx)
    total = sum(store.row_count(path, tx) for path in inputs)
    sizes: list[int] | None = None
    if as_bool(spec.get("combine_chunks")) or as_bool(spec.get("force_transform")):
        job_count = spec.get("job_count")
        sizes = even_split(total, int(job_count)) if job_count is not None else [total]
    if mode != "sorted":
        if sizes is None:  # chunks are moved as they are (about one per input here)
            sizes = [store.row_count(path, tx) for path in inputs]
        rows = (item.row for item in _rows(store, inputs, tx))
        return _chunked(_output_with(output, schema, None), rows, sizes)
    input_keys = [(str(parse_rich_path(p).path), store.table_schema(p, tx)[0]) for p in inputs]
    merge_by = key_columns(spec, "merge_by", required=False) or input_keys[0][1].sort_columns
    for path, input_schema in input_keys:
        check_sorted_input(path, input_schema.sort_columns, merge_by)
    streams = table_streams(lambda p: store.read_table_ranges(p, transaction_id=tx), inputs)
    rows = (item.row for item in merge_sorted(streams, merge_by))
    return _chunked(_output_with(output, schema, merge_by), rows, sizes)


def plan_erase(store: TableStore, spec: Mapping[str, Any], tx: str | None) -> Outputs:
    target = parse_rich_path(spec["table_path"])
    erased: list[tuple[int, int]] = []
    for start, rows in store.read_table_ranges(target, transaction_id=tx):
        erased.append((start, start + sum(1 for _ in rows)))
    schema, _strong = store.table_schema(target.path, tx)
    whole = ParsedPath(path=target.path, attributes={})
    kept = (
        row
        for index, row in enumerate(store.read_rows(whole, tx))
        if not any(lower <= index < upper for lower, upper in erased)
    )
    return [(_output_with(whole, None, schema.sort_columns), kept)]
