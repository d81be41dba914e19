"""A local YT: a loopback server speaking the YT HTTP proxy API v4, for development and tests.

The unmodified ``yt.wrapper.YtClient`` and the ``yt`` CLI work against it. State (Cypress tree,
tables, files, transactions) lives in one root directory and survives restarts and crashes;
operations run as local processes. Jobs run a bare interpreter, as on a YT exec node (nothing of
this server's site-packages); ``docker_image`` names map to local virtualenvs or interpreters
(:class:`JobEnvironment`, ``serve --docker-image NAME=PATH``), see :mod:`.job_python`.

Usage::

    from yt_assets.local_yt import LocalYT

    with LocalYT(root=tmp_path / "yt") as local_yt:          # a server subprocess on a free port
        client = local_yt.client()                            # a configured yt.wrapper.YtClient
        client.write_table("//tmp/t", [{"a": 1}])
        assert list(client.read_table("//tmp/t")) == [{"a": 1}]

    proxy_url = ensure_local_yt(Path(".yt_local"))            # one shared server per root

Command line: ``python -m yt_assets.local_yt serve [--root DIR] [--port N]`` (also
``yt-assets local-yt serve``), then ``yt --proxy <URL> list /``.

Layout (moto-like split): ``cluster.py`` and its modules hold state and semantics with no HTTP;
``operations.py`` and its modules run operations (``jobs.py`` the processes, ``job_io.py`` what
jobs read and write); ``commands.py`` maps API commands onto them;
``server.py`` is the HTTP surface (framing, compression, errors); ``formats.py`` the wire formats
(``skiff.py`` the skiff format; ``typed_values.py`` composite type_v3 values);
``faults.py`` fault injection (``503``/dropped connections on chosen commands, see its docstring);
``launcher.py`` starts and stops servers; ``idle.py`` stops a server started on demand after an idle
period; ``servers.py`` finds the server processes of a state directory (``local-yt status``/``stop``);
``job_statistics.py`` aggregates what jobs report on fd 5; ``web_view.py`` is a read-only HTML view
under ``/ui`` (navigation, operations, jobs, stderr), linked from Dagster metadata. A server started
without a port binds the one its root used last (``<root>/port``) when it is free.

KNOWN GAPS of the HTTP surface (what is not emulated):

- Only API v4; commands not listed by ``GET /api/v4`` (dynamic tables, ``unlock``,
  ``alter_table``, ``patch_operation_spec``, ACL and account commands, query tracker,
  ``read_table_partition``...) are unknown: the client refuses them with
  "Command X is not supported by api/v4"; a raw request gets a YT error naming the command.
- ``partition_tables``: ``ordered``/``unordered`` only (``sorted`` mode and ``enable_cookies`` are
  refused); partitions are cut by average row weight, ``chunk_count`` counts the inputs a partition
  touches. ``get_table_columnar_statistics`` reads the rows and needs a ``{columns}`` selector.
- ``update_operation_parameters``: ``pool``, ``weight``, ``owners``, ``acl``, ``annotations``,
  ``scheduling_options_per_pool_tree`` only (shown in ``@runtime_parameters``; nothing schedules by
  them); other keys are refused.
- ``expiration_timeout`` counts from the last modification (reads do not renew it); expired nodes
  go within ``expiration.CHECK_INTERVAL_SECONDS`` of the next command. ``//sys/transactions``,
  ``//sys/operations`` and ``#<transaction-id>`` are read-only views (``get``/``list``/``exists``);
  ``//sys`` itself does not list them, and ``#<id>`` of a link names the link (not its target).
- ``get`` carries no ``ETag`` and ignores ``If-None-Match`` (``yt.wrapper`` uses neither).
- A parameter outside a command's allowlist is rejected with an error naming it, even when a real
  cluster would accept it (the list covers what ``yt.wrapper`` 0.13 sends).
- Formats: ``yson`` (binary/text/pretty), ``json`` (``encode_utf8``, text/pretty), ``dsv``,
  ``schemaful_dsv``, ``yamr`` (text and ``lenval``; no row indexes, no escaping) and ``skiff``
  (:mod:`.skiff`); ``arrow``, ``protobuf``, ``yamred_dsv`` and ``web_json`` fail with an error
  naming them. JSON carries no types: a uint64 read back
  through JSON is an int64 unless the schema says so.
- Composite (type_v3) values travel only in YT's default representation (:mod:`.typed_values`):
  the YSON/JSON attributes ``complex_type_mode=positional``, ``string_keyed_dict_mode=named``,
  ``decimal_mode=text``, ``time_mode``, ``uuid_mode`` are refused as unsupported. In skiff a
  ``decimal`` column travels only as ``yson32``/``string32`` (not as ``int32``/``int64``/``int128``)
  and an ``optional<optional<T>>`` is not told apart from ``optional<T>``; ``$remaining_row_bytes``
  is not produced; skiff schemas are not checked against the table schema up front (the decoded
  rows are validated instead, so a mismatch with no rows goes unnoticed).
- ``read_table`` control attributes: only ``enable_row_index``/``enable_range_index`` (a control
  row at the start of each range, as the client's read retries need); ``enable_key_switch``,
  ``enable_tablet_index`` and per-row indexes are not produced.
- ``execute_batch`` runs its subrequests one after another (``concurrency`` is ignored).
- Request compression: ``gzip``/``deflate`` (zlib or gzip framing), ``identity``; ``br`` only when
  the ``brotli`` module is importable; ``z-lz4`` is refused. Responses are never compressed.
- No authentication: tokens are ignored; the user is ``X-YT-User-Name`` or ``root``.
- The mutation-id cache (idempotent retries of light mutations) lives in memory: a retry that
  crosses a server restart is applied again.
- ``read_table`` responses carry ``start_row_index`` and ``approximate_row_count`` (exact here);
  ``read_file`` responses carry an empty parameter map (no ``id``/``revision``).
- Proxy discovery: ``/hosts`` is always ``[]`` (the client keeps using the same proxy).
- Operations: ``map``, ``vanilla``, ``sort``, ``merge``, ``erase``, ``reduce``, ``join_reduce``
  and ``map_reduce``; ``remote_copy`` is refused. What each does not emulate is listed in
  :mod:`.operations` (descending sort order, partitioning knobs, ``auto_merge``...).
"""

from __future__ import annotations

from .job_python import JobEnvironment
from .launcher import LocalYT, LocalYtStartError, ensure_local_yt, running_server, stop_local_yt

__all__ = [
    "JobEnvironment",
    "LocalYT",
    "LocalYtStartError",
    "ensure_local_yt",
    "running_server",
    "stop_local_yt",
]
