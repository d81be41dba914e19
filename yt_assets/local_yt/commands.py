"""The YT API v4 commands the local YT understands: descriptors, allowed parameters, dispatch.

A thin layer: each handler turns request parameters into one call on the state layer
(:class:`~yt_assets.local_yt.cluster.Cluster`) or the operations engine and shapes the result as
the v4 HTTP API does (``{"node_id": ...}``, ``{"value": ...}``...). It holds no state of its own
except the bounded cache of mutation results that makes retried mutations idempotent.

Usage::

    dispatcher = CommandDispatcher(cluster, operations)
    spec = dispatcher.spec("get")
    result = dispatcher.execute(spec, {"path": "//tmp", "return_only_value": True}, user="root")
    assert isinstance(result, StructuredResult)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import yt.yson as yson

from . import system_commands, system_paths, table_statistics
from .exceptions import GenericError, NoSuchCommand, ResolveError, YtLocalError
from .formats import load_structured, make_control_row, parse_format
from .values import as_bool

NULL_TRANSACTION_ID = "0-0-0-0"

# Parameters any command may carry (the client adds some of them to every request).
GENERIC_PARAMETERS = frozenset(
    {
        "transaction_id",
        "ping_ancestor_transactions",
        "suppress_transaction_coordinator_sync",
        "suppress_upstream_sync",
        "suppress_access_tracking",
        "suppress_modification_tracking",
        "suppress_expiration_timeout_renewal",
        "prerequisite_transaction_ids",
        "prerequisite_revisions",
        "mutation_id",
        "retry",
        "trace",
        "trace_id",
        "read_from",
        "cache_sticky_group_size",
        "input_format",
        "output_format",
    }
)


class UnsupportedParameter(GenericError):
    """A request carries a parameter the local YT does not emulate."""


@dataclass(frozen=True)
class StructuredResult:
    """A structured value (``None``: empty body) to render in the request's ``output_format``."""

    value: Any


@dataclass
class TabularResult:
    """Rows streamed in the request's ``output_format`` after the headers."""

    rows: Iterator[Any]
    response_parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class BinaryResult:
    """Raw bytes streamed after the headers."""

    chunks: Iterator[bytes]
    response_parameters: dict[str, Any] = field(default_factory=dict)


CommandResult = StructuredResult | TabularResult | BinaryResult


@dataclass
class CommandRequest:
    """One parsed command invocation, as handlers see it."""

    name: str
    params: dict[str, Any]
    user: str
    input_stream: BinaryIO | None = None
    input_value: Any = None  # structured input already parsed (batch subrequests)

    @property
    def transaction_id(self) -> str | None:
        value = self.params.get("transaction_id")
        if value is None or str(value) == NULL_TRANSACTION_ID:
            return None
        return str(value)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def required(self, name: str) -> Any:
        if name not in self.params:
            raise GenericError(
                f"Error parsing parameters of command {self.name!r}: missing required "
                f"parameter {name!r}"
            )
        return self.params[name]

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name, default)
        if isinstance(value, (bytes, str)):
            text = value.decode() if isinstance(value, bytes) else value
            return text.lower() == "true"
        return bool(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        """An integer parameter (None when absent and not ``required``); a YT error otherwise."""
        value = self.required(name) if required else self.params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise GenericError(
                f"Error parsing parameters of command {self.name!r}: {name!r} must be an "
                f"integer, got {value!r}"
            )
        return int(value)

    def paths(self, name: str) -> list[Any]:
        """A required list-of-paths parameter; a YT error when it is not a list."""
        value = self.required(name)
        if not isinstance(value, list):
            raise GenericError(
                f"Error parsing parameters of command {self.name!r}: {name!r} must be a list "
                "of paths"
            )
        return list(value)


Handler = Callable[["CommandDispatcher", CommandRequest], CommandResult]


@dataclass(frozen=True)
class CommandSpec:
    """A command: its v4 descriptor (as ``GET /api/v4`` lists it), parameters and handler."""

    name: str
    input_type: str | None
    output_type: str | None
    is_volatile: bool
    is_heavy: bool
    parameters: frozenset[str]
    handler: Handler

    def descriptor(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_type": self.input_type or "null",
            "output_type": self.output_type or "null",
            "is_volatile": self.is_volatile,
            "is_heavy": self.is_heavy,
        }

    def check_parameters(self, params: Mapping[str, Any]) -> None:
        unknown = sorted(set(params) - self.parameters - GENERIC_PARAMETERS)
        if unknown:
            raise UnsupportedParameter(
                f"Command {self.name!r} got parameter(s) {', '.join(map(repr, unknown))} that "
                f"the local YT does not support",
                command=self.name,
                parameters=unknown,
            )


# ------------------------------------------------------------------------------- helpers


def _str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [_str(item) for item in value]


def _input_value(dispatcher: CommandDispatcher, request: CommandRequest) -> Any:
    if request.input_value is not None:
        return request.input_value
    if request.input_stream is None:
        raise GenericError(f"Command {request.name!r} expects a structured input body")
    data = request.input_stream.read()
    return load_structured(data, request.param("input_format", "yson"))


def _read_chunks(stream: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk


def _v4_value(request: CommandRequest, value: Any) -> StructuredResult:
    if request.flag("return_only_value"):
        return StructuredResult(value)
    return StructuredResult({"value": value})


# ------------------------------------------------------------------------------- cypress


def _create_node(
    d: CommandDispatcher, r: CommandRequest, type: str, path: Any, attributes: Any
) -> CommandResult:
    node_id = d.cluster.create(
        type,
        path,
        recursive=r.flag("recursive"),
        ignore_existing=r.flag("ignore_existing"),
        force=r.flag("force"),
        attributes=attributes,
        transaction_id=r.transaction_id,
    )
    return StructuredResult({"node_id": node_id})


def _create(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    attributes = r.param("attributes") or {}
    return _create_node(d, r, _str(r.required("type")), r.param("path"), attributes)


def _link(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    attributes = {**(r.param("attributes") or {}), "target_path": r.required("target_path")}
    return _create_node(d, r, "link", r.required("link_path"), attributes)


def _virtual(d: CommandDispatcher, r: CommandRequest) -> Any:
    """``//sys/transactions``, ``//sys/operations``, ``#<transaction-id>`` (or None)."""
    return system_paths.lookup(d.cluster, d.operations, r.required("path"))


def _exists(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    try:
        virtual = _virtual(d, r)
    except ResolveError:
        return StructuredResult({"value": False})
    if virtual is not None:
        node, tokens = virtual
        return StructuredResult({"value": system_paths.exists(node, tokens)})
    return StructuredResult(
        {"value": d.cluster.exists(r.required("path"), transaction_id=r.transaction_id)}
    )


_VIRTUAL_READS = {"get": system_paths.get, "list": system_paths.list_}


def _read_node(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    """``get`` and ``list``: of the virtual ``//sys`` paths, or of the tree."""
    names = _str_list(r.param("attributes"))
    virtual = _virtual(d, r)
    if virtual is not None:
        node, tokens = virtual
        return _v4_value(r, _VIRTUAL_READS[r.name](node, tokens, names))
    read = d.cluster.get if r.name == "get" else d.cluster.list
    value = read(
        r.required("path"),
        attributes=names,
        max_size=r.param("max_size"),
        transaction_id=r.transaction_id,
    )
    return _v4_value(r, value)


def _set(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.set(
        r.required("path"),
        _input_value(d, r),
        recursive=r.flag("recursive"),
        force=r.flag("force"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(None)


def _remove(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.remove(
        r.required("path"),
        recursive=r.flag("recursive"),
        force=r.flag("force"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(None)


def _move(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    node_id = d.cluster.move(
        r.required("source_path"),
        r.required("destination_path"),
        recursive=r.flag("recursive"),
        force=r.flag("force"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult({"node_id": node_id})


def _copy(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    node_id = d.cluster.copy(
        r.required("source_path"),
        r.required("destination_path"),
        recursive=r.flag("recursive"),
        force=r.flag("force"),
        ignore_existing=r.flag("ignore_existing"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult({"node_id": node_id})


def _lock(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    result = d.cluster.lock(
        r.required("path"),
        mode=_str(r.param("mode", "exclusive")),
        waitable=r.flag("waitable"),
        child_key=_opt_str(r.param("child_key")),
        attribute_key=_opt_str(r.param("attribute_key")),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(dict(result))


def _concatenate(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.concatenate(
        r.paths("source_paths"),
        r.required("destination_path"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(None)


# --------------------------------------------------------------------------- transactions


def _start_transaction(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    attributes = dict(r.param("attributes") or {})
    title = attributes.get("title")
    timeout = r.param("timeout")
    transaction_id = d.cluster.start_transaction(
        parent_id=r.transaction_id,
        timeout=None if timeout is None else int(timeout),
        title=_opt_str(title),
        attributes=attributes,
    )
    return StructuredResult({"transaction_id": transaction_id})


def _transaction_id_or_fail(r: CommandRequest) -> str:
    transaction_id = r.transaction_id
    if transaction_id is None:
        raise GenericError(f"Command {r.name!r} needs a non-null transaction_id")
    return transaction_id


def _ping_transaction(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.ping_transaction(_transaction_id_or_fail(r))
    return StructuredResult(None)


def _commit_transaction(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.commit_transaction(_transaction_id_or_fail(r))
    return StructuredResult(None)


def _abort_transaction(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    d.cluster.abort_transaction(_transaction_id_or_fail(r))
    return StructuredResult(None)


# ------------------------------------------------------------------------------- tables


def _write_table(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    if r.input_stream is None:
        raise GenericError("Command 'write_table' expects a tabular input body")
    row_format = parse_format(r.required("input_format"))
    d.cluster.write_table(
        r.required("path"),
        row_format.load_rows(r.input_stream),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(None)


def _read_table(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    parse_format(r.required("output_format"))  # fail early on an unsupported format
    control = r.param("control_attributes") or {}
    with_range_index = as_bool(control.get("enable_range_index"))
    with_row_index = as_bool(control.get("enable_row_index"))
    path = r.required("path")
    if with_range_index or with_row_index:
        # One (start_row_index, rows) per range, so each range starts with its control rows.
        reads = d.cluster.read_table_ranges(path, transaction_id=r.transaction_id)
    else:
        reads = [d.cluster.read_table(path, transaction_id=r.transaction_id)]

    def rows() -> Iterator[Any]:
        for range_index, (start_row_index, segment_rows) in enumerate(reads):
            if with_range_index:
                yield make_control_row(range_index=range_index)
            if with_row_index:
                yield make_control_row(row_index=start_row_index)
            yield from segment_rows

    row_count = d.cluster.row_count(path, transaction_id=r.transaction_id)
    return TabularResult(
        rows=rows(),
        response_parameters={"start_row_index": reads[0][0], "approximate_row_count": row_count},
    )


# -------------------------------------------------------------------------------- files


def _write_file(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    if r.input_stream is None:
        raise GenericError("Command 'write_file' expects a binary input body")
    d.cluster.write_file(
        r.required("path"), _read_chunks(r.input_stream), transaction_id=r.transaction_id
    )
    return StructuredResult(None)


def _read_file(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    offset = r.param("offset")
    length = r.param("length")
    chunks = d.cluster.read_file(
        r.required("path"),
        offset=None if offset is None else int(offset),
        length=None if length is None else int(length),
        transaction_id=r.transaction_id,
    )
    return BinaryResult(chunks=iter(chunks))


def _get_file_from_cache(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    path = d.cluster.get_file_from_cache(_str(r.required("md5")), r.required("cache_path"))
    return StructuredResult(path or "")


def _put_file_to_cache(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    path = d.cluster.put_file_to_cache(
        r.required("path"), _str(r.required("md5")), r.required("cache_path")
    )
    return StructuredResult(path)


# --------------------------------------------------------------------------- operations


def _operations(d: CommandDispatcher) -> Any:
    if d.operations is None:
        raise GenericError("Operations are not available in this local YT server")
    return d.operations


def _operation_id(r: CommandRequest) -> str:
    if "operation_id" in r.params:
        return _str(r.params["operation_id"])
    if "operation_alias" in r.params:
        raise UnsupportedParameter(
            f"Command {r.name!r}: operation_alias is not supported by the local YT"
        )
    raise GenericError(f"Command {r.name!r} needs operation_id")


def _start_operation(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    operation_id = _operations(d).start_operation(
        _str(r.required("operation_type")),
        r.required("spec"),
        transaction_id=r.transaction_id,
        user=r.user,
    )
    return StructuredResult({"operation_id": operation_id})


def _get_operation(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    result = _operations(d).get_operation(
        _operation_id(r), attributes=_str_list(r.param("attributes"))
    )
    return StructuredResult(result)


_LIST_OPERATIONS_FILTERS = (
    "user",
    "state",
    "type",
    "filter",
    "pool",
    "pool_tree",
    "with_failed_jobs",
    "from_time",
    "to_time",
    "cursor_time",
    "cursor_direction",
    "include_archive",
    "include_counters",
    "limit",
    "enable_ui_mode",
    "attributes",
)


def _list_operations(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    filters = {name: r.params[name] for name in _LIST_OPERATIONS_FILTERS if name in r.params}
    return StructuredResult(_operations(d).list_operations(**filters))


def _abort_operation(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    _operations(d).abort_operation(
        _operation_id(r), abort_message=_opt_str(r.param("abort_message"))
    )
    return StructuredResult(None)


def _update_operation_parameters(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    _operations(d).update_operation_parameters(_operation_id(r), r.required("parameters"))
    return StructuredResult(None)


def _get_table_columnar_statistics(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    return StructuredResult(
        table_statistics.get_table_columnar_statistics(
            d.cluster, r.paths("paths"), r.transaction_id
        )
    )


def _partition_tables(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    result = table_statistics.partition_tables(
        d.cluster,
        r.paths("paths"),
        partition_mode=_str(r.param("partition_mode", "ordered")),
        data_weight_per_partition=r.integer("data_weight_per_partition", required=True) or 0,
        max_partition_count=r.integer("max_partition_count"),
        adjust_data_weight_per_partition=r.flag("adjust_data_weight_per_partition", True),
        enable_cookies=r.flag("enable_cookies"),
        transaction_id=r.transaction_id,
    )
    return StructuredResult(result)


def _complete_operation(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    _operations(d).complete_operation(_operation_id(r))
    return StructuredResult(None)


_LIST_JOBS_FILTERS = (
    "job_type",
    "job_state",
    "address",
    "job_competition_id",
    "sort_field",
    "sort_order",
    "limit",
    "offset",
    "with_stderr",
    "with_spec",
    "with_fail_context",
    "with_competitors",
    "with_monitoring_descriptor",
    "with_interruption_info",
    "include_cypress",
    "include_runtime",
    "include_archive",
    "attributes",
    "data_source",
)


def _list_jobs(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    filters = {name: r.params[name] for name in _LIST_JOBS_FILTERS if name in r.params}
    return StructuredResult(_operations(d).list_jobs(_operation_id(r), **filters))


def _get_job_stderr(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    data = _operations(d).get_job_stderr(_operation_id(r), _str(r.required("job_id")))
    return BinaryResult(chunks=iter([bytes(data)] if data else []))


# -------------------------------------------------------------------------------- batch


def _execute_batch(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    results = []
    for subrequest in r.required("requests"):
        try:
            output = d.execute_subrequest(subrequest, user=r.user)
        except YtLocalError as error:
            results.append({"error": error.to_dict()})
        except Exception as error:  # an unexpected failure of one subrequest stays in it
            results.append({"error": GenericError(f"{type(error).__name__}: {error}").to_dict()})
        else:
            results.append({} if output is None else {"output": output})
    return StructuredResult({"results": results})


# ---------------------------------------------------------------------------- the table

_PATH = frozenset({"path"})
_PARTITION = frozenset(
    {
        "paths",
        "partition_mode",
        "data_weight_per_partition",
        "max_partition_count",
        "enable_key_guarantee",
        "adjust_data_weight_per_partition",
        "enable_cookies",
        "omit_inaccessible_columns",
        "omit_inaccessible_rows",
    }
)
_LINK = frozenset(
    {
        "target_path",
        "link_path",
        "recursive",
        "ignore_existing",
        "lock_existing",
        "force",
        "attributes",
    }
)
_COPY_MOVE = frozenset(
    {
        "source_path",
        "destination_path",
        "recursive",
        "force",
        "ignore_existing",
        "lock_existing",
        "preserve_account",
        "preserve_owner",
        "preserve_acl",
        "preserve_expiration_time",
        "preserve_expiration_timeout",
        "preserve_creation_time",
        "preserve_modification_time",
        "pessimistic_quota_check",
        "enable_cross_cell_copying",
    }
)


def _generate_timestamp(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    return StructuredResult({"timestamp": yson.YsonUint64(system_commands.TIMESTAMPS.next())})


def _get_supported_features(d: CommandDispatcher, r: CommandRequest) -> CommandResult:
    return StructuredResult({"features": system_commands.supported_features()})


def _spec(
    name: str,
    input_type: str | None,
    output_type: str | None,
    volatile: bool,
    heavy: bool,
    parameters: Iterable[str],
    handler: Handler,
) -> CommandSpec:
    return CommandSpec(
        name, input_type, output_type, volatile, heavy, frozenset(parameters), handler
    )


COMMAND_SPECS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in [
        _spec("generate_timestamp", None, "structured", False, False, (), _generate_timestamp),
        _spec(
            "get_supported_features", None, "structured", False, False, (), _get_supported_features
        ),
        # Cypress. Descriptors as the ytsaurus driver registers them for API v4.
        _spec(
            "create",
            None,
            "structured",
            True,
            False,
            {
                "type",
                "path",
                "recursive",
                "ignore_existing",
                "lock_existing",
                "force",
                "attributes",
                "ignore_type_mismatch",
            },
            _create,
        ),
        _spec("link", None, "structured", True, False, _LINK, _link),
        _spec(
            "get_table_columnar_statistics",
            None,
            "structured",
            False,
            True,
            {"paths", "fetcher_mode", "enable_early_finish", "max_chunks_per_node_fetch"},
            _get_table_columnar_statistics,
        ),
        _spec("partition_tables", None, "structured", False, False, _PARTITION, _partition_tables),
        _spec("exists", None, "structured", False, False, _PATH, _exists),
        _spec(
            "get",
            None,
            "structured",
            False,
            False,
            {"path", "attributes", "max_size", "return_only_value"},
            _read_node,
        ),
        _spec(
            "list",
            None,
            "structured",
            False,
            False,
            {"path", "attributes", "max_size", "return_only_value"},
            _read_node,
        ),
        _spec("set", "structured", "structured", True, False, {"path", "recursive", "force"}, _set),
        _spec("remove", None, "structured", True, False, {"path", "recursive", "force"}, _remove),
        _spec("move", None, "structured", True, False, _COPY_MOVE, _move),
        _spec("copy", None, "structured", True, False, _COPY_MOVE, _copy),
        _spec(
            "lock",
            None,
            "structured",
            True,
            False,
            {"path", "mode", "waitable", "child_key", "attribute_key"},
            _lock,
        ),
        _spec(
            "concatenate",
            None,
            "structured",
            True,
            False,
            {"source_paths", "destination_path"},
            _concatenate,
        ),
        # Transactions.
        _spec(
            "start_transaction",
            None,
            "structured",
            True,
            False,
            {"timeout", "deadline", "attributes", "type", "sticky"},
            _start_transaction,
        ),
        _spec("ping_transaction", None, "structured", True, False, (), _ping_transaction),
        _spec("commit_transaction", None, "structured", True, False, (), _commit_transaction),
        _spec("abort_transaction", None, "structured", True, False, (), _abort_transaction),
        # Tables.
        _spec(
            "write_table",
            "tabular",
            "structured",
            True,
            True,
            {"path", "table_writer"},
            _write_table,
        ),
        _spec(
            "read_table",
            None,
            "tabular",
            False,
            True,
            {
                "path",
                "table_reader",
                "unordered",
                "omit_inaccessible_columns",
                "omit_inaccessible_rows",
                "control_attributes",
            },
            _read_table,
        ),
        # Files.
        _spec(
            "write_file",
            "binary",
            "structured",
            True,
            True,
            {"path", "file_writer", "compute_md5"},
            _write_file,
        ),
        _spec(
            "read_file",
            None,
            "binary",
            False,
            True,
            {"path", "offset", "length", "file_reader"},
            _read_file,
        ),
        _spec(
            "get_file_from_cache",
            None,
            "structured",
            False,
            False,
            {"md5", "cache_path"},
            _get_file_from_cache,
        ),
        _spec(
            "put_file_to_cache",
            None,
            "structured",
            True,
            False,
            {"path", "md5", "cache_path"},
            _put_file_to_cache,
        ),
        # Operations.
        _spec(
            "start_operation",
            None,
            "structured",
            True,
            False,
            {"operation_type", "spec"},
            _start_operation,
        ),
        _spec(
            "get_operation",
            None,
            "structured",
            False,
            False,
            {
                "operation_id",
                "operation_alias",
                "attributes",
                "include_runtime",
                "include_scheduler",
                "maximum_cypress_progress_age",
            },
            _get_operation,
        ),
        _spec(
            "list_operations",
            None,
            "structured",
            False,
            False,
            _LIST_OPERATIONS_FILTERS,
            _list_operations,
        ),
        _spec(
            "abort_operation",
            None,
            "structured",
            True,
            False,
            {"operation_id", "operation_alias", "abort_message"},
            _abort_operation,
        ),
        _spec(
            "update_operation_parameters",
            None,
            "structured",
            True,
            False,
            {"operation_id", "operation_alias", "parameters"},
            _update_operation_parameters,
        ),
        _spec(
            "complete_operation",
            None,
            "structured",
            True,
            False,
            {"operation_id", "operation_alias"},
            _complete_operation,
        ),
        _spec(
            "list_jobs",
            None,
            "structured",
            False,
            False,
            {"operation_id", "operation_alias", *_LIST_JOBS_FILTERS},
            _list_jobs,
        ),
        _spec(
            "get_job_stderr",
            None,
            "binary",
            False,
            True,
            {"operation_id", "operation_alias", "job_id", "type"},
            _get_job_stderr,
        ),
        # Batch.
        _spec(
            "execute_batch",
            None,
            "structured",
            True,
            False,
            {"requests", "concurrency"},
            _execute_batch,
        ),
    ]
}


# ------------------------------------------------------------------------ mutation cache


class MutationCache:
    """Results of recent mutations by ``mutation_id``, so a retried mutation is applied once.

    A retry (``retry=%true``) of a known ``mutation_id`` gets the first result; a retry that
    arrives while the first attempt still runs waits for it. Failed attempts are forgotten,
    so their retries execute again. Bounded: the oldest entries are evicted.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _MutationEntry] = OrderedDict()

    def run(self, mutation_id: str, retry: bool, action: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(mutation_id)
            owner = entry is None
            if owner:
                entry = _MutationEntry()
                self._entries[mutation_id] = entry
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
        assert entry is not None
        if not owner:
            if not retry:
                raise GenericError(
                    f'Duplicate request is not marked as "retry" (mutation_id {mutation_id})',
                    mutation_id=mutation_id,
                )
            entry.done.wait()
            if entry.succeeded:
                return entry.result
            return self.run(mutation_id, retry, action)
        try:
            entry.result = action()
            entry.succeeded = True
            return entry.result
        except BaseException:
            with self._lock:
                self._entries.pop(mutation_id, None)
            raise
        finally:
            entry.done.set()


@dataclass
class _MutationEntry:
    done: threading.Event = field(default_factory=threading.Event)
    succeeded: bool = False
    result: Any = None


# ----------------------------------------------------------------------------- dispatcher


class CommandDispatcher:
    """Routes parsed commands to the state layer and the operations engine.

    Usage::

        dispatcher = CommandDispatcher(Cluster(root), OperationEngine(root, cluster))
        dispatcher.execute(dispatcher.spec("exists"), {"path": "//tmp"}, user="root")
    """

    def __init__(self, cluster: Any, operations: Any = None) -> None:
        self.cluster = cluster
        self.operations = operations
        self.mutations = MutationCache()

    def descriptors(self) -> list[dict[str, Any]]:
        return [spec.descriptor() for spec in COMMAND_SPECS.values()]

    def spec(self, name: str) -> CommandSpec:
        spec = COMMAND_SPECS.get(name)
        if spec is None:
            raise NoSuchCommand(f"Command {name!r} is not supported by the local YT", command=name)
        return spec

    def execute(
        self,
        spec: CommandSpec,
        params: dict[str, Any],
        *,
        user: str,
        input_stream: BinaryIO | None = None,
        input_value: Any = None,
    ) -> CommandResult:
        spec.check_parameters(params)
        request = CommandRequest(spec.name, params, user, input_stream, input_value)
        mutation_id = params.get("mutation_id")
        if spec.is_volatile and not spec.is_heavy and mutation_id is not None:
            return self.mutations.run(
                _str(mutation_id), request.flag("retry"), lambda: spec.handler(self, request)
            )
        return spec.handler(self, request)

    def execute_subrequest(self, subrequest: Mapping[str, Any], *, user: str) -> Any:
        """One ``execute_batch`` subrequest; returns its structured output (``None``: none)."""
        name = _str(subrequest.get("command", ""))
        spec = self.spec(name)
        if spec.is_heavy or spec.input_type not in (None, "structured"):
            raise GenericError(f"Command {name!r} is not allowed in a batch request")
        params = {_str(k): v for k, v in (subrequest.get("parameters") or {}).items()}
        input_value = subrequest.get("input")
        if spec.input_type == "structured" and input_value is None:
            raise GenericError(f"Batch subrequest {name!r} needs an input")
        result = self.execute(spec, params, user=user, input_value=input_value)
        assert isinstance(result, StructuredResult)
        return result.value


def is_null_transaction(value: Any) -> bool:
    return value is None or _str(value) == NULL_TRANSACTION_ID
