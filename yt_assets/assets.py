"""Asset factories: S3 listings stored as YT tables, and the YT map that processes the listed objects.

Usage::

    listing = build_s3_listing_asset("events_listing", bucket="my-bucket", prefix="events/")
    processed = build_s3_processing_asset("events_processed", listing=listing)
    defs = dg.Definitions(assets=[listing, processed], resources=build_resources())
"""

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import dagster as dg
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource
from pydantic.fields import FieldInfo

from yt_assets.configs import (
    MapOperationConfig,
    S3ExportConfig,
    S3ListingConfig,
    S3ProcessingConfig,
)
from yt_assets.io_manager import SCHEMA_METADATA_KEY, WrittenTable, dagster_table_schema
from yt_assets.resources import YTResource
from yt_assets.s3.errors import S3ListingError
from yt_assets.s3.exports import (
    clear_success_marker,
    delete_stale_objects,
    write_success_marker,
)
from yt_assets.s3.listing import (
    LISTING_RETRY,
    ListingProgress,
    RetryingPageFetcher,
    iter_s3_objects,
    make_page_fetcher,
)
from yt_assets.s3.pages import S3Object
from yt_assets.s3.retries import RetryPolicy
from yt_assets.s3.settings import S3_ENV_VARS
from yt_assets.s3.uploads import S3Destination
from yt_assets.yt.errors import yt_error_line
from yt_assets.yt.operations import MapSettings, start_map
from yt_assets.yt.paths import escape_node_name
from yt_assets.yt.progress import (
    JobFailure,
    OperationSummary,
    aborted_if_left,
    failed_job_stderrs,
    operation_summary,
    wait_or_abort,
    wait_with_progress,
)
from yt_assets.yt.schemas import (
    EXPORT_COLUMNS,
    LISTING_COLUMNS,
    LISTING_RANGE_COLUMNS,
    PROCESSED_COLUMNS,
    WRITTEN_COLUMN,
    ColumnSpec,
    listing_row,
    yt_schema,
)
from yt_assets.yt.tables import YTTable, listing_yson_blocks
from yt_assets.yt_jobs.s3_export import Compression, TableExportMapper
from yt_assets.yt_jobs.s3_listing import (
    STAT_KEYS_FILTERED_OUT,
    STAT_KEYS_LISTED,
    STAT_PAGES,
    S3RangeLister,
    listing_error_in,
    range_rows,
    split_key_space,
)
from yt_assets.yt_jobs.s3_processing import (
    STAT_BYTES,
    Role,
    S3Credentials,
    S3ObjectMapper,
    process_object,
)

T = TypeVar("T")

ASSET_KINDS = {"s3", "ytsaurus"}

ROWS = dg.DagsterType(
    name="YTRows",
    description="Row dicts streamed into a YT table by YTTableIOManager, or a table already "
    "written (WrittenTable), moved into place by it.",
    type_check_fn=lambda _context, value: isinstance(value, (Iterable, WrittenTable)),
    typing_type=Iterator[dict[str, Any]],
)


def config_with_defaults(
    config_class: type[dg.Config], name: str, **defaults: Any
) -> type[dg.Config]:
    """A subclass of ``config_class`` whose fields default to ``defaults`` (shown in the launchpad)."""
    fields = config_class.model_fields
    unknown = sorted(set(defaults) - set(fields))
    if unknown:
        raise TypeError(f"{config_class.__name__} has no field(s) {', '.join(unknown)}")
    namespace: dict[str, Any] = {
        "__annotations__": {key: fields[key].annotation for key in defaults},
        "__module__": config_class.__module__,
        "__doc__": config_class.__doc__,
    }
    for key, value in defaults.items():
        # The parent's field with another default: its constraints (ge=1...) still apply.
        namespace[key] = FieldInfo.merge_field_infos(fields[key], default=value)
    return type(name, (config_class,), namespace)


def build_s3_listing_asset(
    name: str = "s3_listing",
    *,
    bucket: str | None = None,
    prefix: str = "",
    extension: str | None = None,
    max_files: int | None = None,
    key_prefix: Sequence[str] | None = None,
    group_name: str = "s3",
    partitions_def: dg.PartitionsDefinition | None = None,
    prefix_for_partition: Callable[[str, str], str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dg.AssetsDefinition:
    """An asset listing S3 objects into a YT table (``bucket, path, size, etag, last_modified``).

    The arguments are the defaults of its run config (:class:`S3ListingConfig`). With partitions,
    ``prefix_for_partition(config_prefix, partition_key)`` gives the prefix each partition lists
    (default: the partition key itself). ``metadata`` is added to the asset's (e.g. ``yt_path``).
    With ``listing_mode: yt_operation`` in the run config, a YT map operation lists the prefix
    (:func:`_list_in_operation`); the table is the same.

    Example::

        listing = build_s3_listing_asset("logs_listing", bucket="logs", prefix="2026/", extension=".json")
    """
    defaults: dict[str, Any] = {"prefix": prefix, "extension": extension, "max_files": max_files}
    if bucket is not None:
        defaults["bucket"] = bucket
    config_class = config_with_defaults(S3ListingConfig, f"{_camel(name)}Config", **defaults)
    partition_prefix = prefix_for_partition or (lambda _configured, key: key)

    @dg.asset(
        name=name,
        key_prefix=list(key_prefix) if key_prefix else None,
        group_name=group_name,
        kinds=ASSET_KINDS,
        partitions_def=partitions_def,
        metadata={SCHEMA_METADATA_KEY: dagster_table_schema(LISTING_COLUMNS), **(metadata or {})},
        dagster_type=ROWS,
        description="S3 objects under a prefix, one row each, stored as a YT static table.",
    )
    def _listing(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
        s3: S3Resource,
        yt_cluster: YTResource,
    ) -> dg.Output[Any]:
        return _list_into_rows(
            context, cast(S3ListingConfig, config), s3, yt_cluster, partition_prefix
        )

    return _listing


def _list_into_rows(
    context: dg.AssetExecutionContext,
    config: S3ListingConfig,
    s3: S3Resource,
    yt_cluster: YTResource,
    partition_prefix: Callable[[str, str], str],
) -> dg.Output[Any]:
    """The listing asset's body: the rows of the listed objects, streamed to the IO manager
    (or, with ``listing_mode: yt_operation``, the table a YT operation wrote).

    The first page is fetched here, so an S3 error (missing bucket, denied access, unreachable
    endpoint) fails this step with its own one-line cause, and a listing whose keys the extension
    filter rejected entirely fails before the stored table is touched.
    """
    listed_prefix = (
        partition_prefix(config.prefix, context.partition_key)
        if context.has_partition_key
        else config.prefix
    )
    context.log.info(
        f"Listing s3://{config.bucket}/{listed_prefix} (extension={config.extension!r}, "
        f"max_files={config.max_files!r}, listing_mode={config.listing_mode!r})"
    )
    if config.listing_mode == "yt_operation" and config.max_files != 0:
        return dg.Output(_list_in_operation(context, config, s3, yt_cluster, listed_prefix))
    rows = ListingRows()
    objects = iter_s3_objects(
        s3.get_client(),
        config.bucket,
        listed_prefix,
        extension=config.extension,
        max_files=config.max_files,
        logger=context.log,
        on_progress=rows.record,  # a report every 100 pages or 10 s, and one at the end
    )
    try:
        first = next(objects, None)
    except S3ListingError as error:
        raise listing_failure(error) from None
    if first is None and rows.progress is not None and not config.allow_no_match:
        no_match = no_match_problem(config, listed_prefix, rows.progress)
        if no_match:
            raise dg.Failure(description=no_match, allow_retries=False)
    head: list[S3Object] = [first] if first is not None else []
    rows.bucket = config.bucket
    rows.objects = itertools.chain(head, objects)
    # Wrapped in Output: a bare generator would be taken for a stream of Dagster events.
    return dg.Output(rows)


class ListingRows:
    """The rows of a listing, streamed once, as row dicts or as YSON blocks (the IO
    manager writes the latter: :class:`~yt_assets.yt.tables.YsonRows`, listed and formatted in a
    thread of their own while the table is written); after that, :meth:`output_metadata` holds
    the listing's final counts (keys listed and matched, pages, seconds, keys/s)."""

    def __init__(self) -> None:
        self.bucket = ""
        self.objects: Iterator[S3Object] = iter(())
        self.progress: ListingProgress | None = None

    def record(self, progress: ListingProgress) -> None:
        self.progress = progress

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return _failing_at_cause(listing_row(self.bucket, obj) for obj in self.objects)

    def yson_blocks(self) -> Iterator[bytes]:
        return _failing_at_cause(listing_yson_blocks(self.bucket, self.objects))

    def output_metadata(self) -> dict[str, Any]:
        progress = self.progress
        if progress is None or not progress.finished:
            return {}
        return {
            "keys_listed": dg.MetadataValue.int(progress.keys_listed),
            "keys_matched": dg.MetadataValue.int(progress.keys_matched),
            "listing_pages": dg.MetadataValue.int(progress.pages),
            "listing_seconds": dg.MetadataValue.float(round(progress.elapsed_seconds, 3)),
            "keys_per_second": dg.MetadataValue.float(round(progress.keys_per_second, 1)),
        }


def _failing_at_cause(items: Iterator[T]) -> Iterator[T]:
    """The items; a listing error on a later page fails the step with its one-line cause."""
    try:
        yield from items
    except S3ListingError as error:
        raise listing_failure(error) from None


def listing_failure(error: S3ListingError) -> dg.Failure:
    """A one-line ``dg.Failure`` for a listing error: bucket, prefix, S3 code and HTTP status."""
    return dg.Failure(
        description=str(error),
        metadata={"bucket": error.bucket, "prefix": error.prefix, "s3_error": error.code},
    )


def no_match_problem(config: S3ListingConfig, prefix: str, progress: ListingProgress) -> str | None:
    """Why an empty result is not a success: keys were listed, the extension filter took none.

    ``None`` when the prefix really holds no objects (only folder markers, or nothing).
    """
    if progress.keys_filtered_out == 0:
        return None
    examples = ", ".join(progress.filtered_out_examples)
    suffixes = sorted({_suffix(key) for key in progress.filtered_out_examples} - {""})
    hint = f"write {' or '.join(repr(suffix) for suffix in suffixes)}, or " if suffixes else ""
    return (
        f"extension {config.extension!r} matched none of {progress.keys_filtered_out} keys under "
        f"s3://{config.bucket}/{prefix}{f' (e.g. {examples})' if examples else ''}; {hint}"
        "set allow_no_match: true to "
        "accept an empty table. The stored table is unchanged."
    )


def _list_in_operation(
    context: dg.AssetExecutionContext,
    config: S3ListingConfig,
    s3: S3Resource,
    yt_cluster: YTResource,
    prefix: str,
) -> WrittenTable:
    """The listing as one YT map operation: the key space cut into ranges
    (:func:`~yt_assets.yt_jobs.s3_listing.split_key_space`: one delimited request, and one-key
    ``StartAfter`` probes for a prefix without sub-prefixes), one input row
    per range, ``listing_jobs`` jobs listing them (:class:`~yt_assets.yt_jobs.s3_listing.S3RangeLister`,
    only the download keys in the secure vault), the output sorted by ``(bucket, path)`` into a
    table of the listing schema and, with ``max_files``, cut after its first ``max_files`` rows
    (the first keys in key order, as the in-process listing keeps). The IO manager moves it into
    place atomically."""
    fetch_page = RetryingPageFetcher(make_page_fetcher(s3.get_client(), "fast"), LISTING_RETRY)
    try:
        level, ranges = split_key_space(fetch_page, config.bucket, prefix, config.listing_jobs)
    except S3ListingError as error:
        raise listing_failure(error) from None
    base = _scratch_table(yt_cluster, context)
    ranges_path, listed_path = f"{base}.ranges", f"{base}.listed"
    with yt_cluster.get_client() as client:
        client.create(
            "table",
            ranges_path,
            recursive=True,
            force=True,
            attributes={"schema": yt_schema(LISTING_RANGE_COLUMNS).to_yson_type()},
        )
        client.write_table(ranges_path, range_rows(config.bucket, level, ranges))
    context.log.info(
        f"Listing s3://{config.bucket}/{level} in {len(ranges)} key ranges with a YT operation"
    )
    mapper = S3RangeLister(
        endpoint_url=s3.endpoint_url,
        region_name=s3.region_name,
        extension=config.extension,
        max_files=config.max_files,
    )
    map_config = MapOperationConfig(job_count=min(config.listing_jobs, len(ranges)))
    unsorted = tuple(dataclasses.replace(column, sort_order=None) for column in LISTING_COLUMNS)
    try:
        listed, summary = _run_map(
            context,
            map_config,
            yt_cluster,
            mapper,
            ranges_path,
            yt_schema(unsorted),
            _vault_keys(s3, "download"),
            bytes_read_statistic=None,
            failure_cause=_listing_job_error,
            destination=listed_path,
        )
        with yt_cluster.get_client() as client:
            no_match = _operation_no_match(config, prefix, summary)
            if no_match:
                raise dg.Failure(description=no_match, allow_retries=False)
            client.create(
                "table",
                base,
                force=True,
                attributes={"schema": yt_schema(LISTING_COLUMNS).to_yson_type()},
            )
            wait_or_abort(client.run_sort(listed, base, sort_by=["bucket", "path"], sync=False))
            client.remove(listed, force=True)
            if config.max_files is not None:
                rest = yt.TablePath(base, start_index=config.max_files)
                wait_or_abort(client.run_erase(rest, sync=False))
    except BaseException:
        with yt_cluster.get_client() as client:  # a failed listing leaves no scratch table
            client.remove(listed_path, force=True)
            client.remove(base, force=True)
        raise
    finally:
        with yt_cluster.get_client() as client:
            client.remove(ranges_path, force=True)
    return WrittenTable(path=base)


def _listing_job_error(failures: list[JobFailure]) -> str | None:
    """The S3 error a failed listing job named, if one did."""
    return next((cause for f in failures if (cause := listing_error_in(f.stderr_excerpt))), None)


def _operation_no_match(
    config: S3ListingConfig, prefix: str, summary: OperationSummary
) -> str | None:
    """:func:`no_match_problem` of a listing operation, from its jobs' statistics."""
    if summary.rows_out or config.allow_no_match:
        return None
    statistics = summary.user_statistics
    progress = ListingProgress(
        bucket=config.bucket,
        prefix=prefix,
        pages=statistics.get(STAT_PAGES, 0),
        keys_listed=statistics.get(STAT_KEYS_LISTED, 0),
        keys_matched=0,
        elapsed_seconds=summary.duration_seconds,
        finished=True,
        keys_filtered_out=statistics.get(STAT_KEYS_FILTERED_OUT, 0),
    )
    return no_match_problem(config, prefix, progress)


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1] if "." in name.strip(".") else ""


def build_s3_processing_asset(
    name: str = "s3_objects_processed",
    *,
    listing: dg.AssetsDefinition,
    processor: Callable[..., dict[str, Any]] = process_object,
    output_columns: Sequence[ColumnSpec] = PROCESSED_COLUMNS,
    group_name: str = "s3",
    partitions_def: dg.PartitionsDefinition | None = None,
    metadata: Mapping[str, Any] | None = None,
    writes_to: S3Destination | None = None,
    **config_defaults: Any,
) -> dg.AssetsDefinition:
    """An asset running a YT map over a listing table: every job downloads its objects and applies
    ``processor(body_stream, key=key) -> dict``; each result row is ``bucket``, ``path``,
    ``error`` and the processor's fields, projected on ``output_columns`` (which must hold
    ``bucket`` and ``path``, and ``error`` unless ``on_error="fail"``).

    The S3 download keys reach the jobs only through the operation's ``secure_vault``.

    With ``writes_to`` (a bucket and key prefix), the processor also writes objects: it is
    called as ``processor(body_stream, key=key, sink=sink)`` and writes with
    ``sink.put(name, bytes_or_stream, content_type=...)`` (or ``with sink.open(name) as w``) at
    ``prefix + name``; the table gets a ``written`` column (``[{key, size, etag}]`` per input
    object). Only then does the asset need the ``s3_upload`` resource, and only then do its jobs
    get the upload keys (in the ``secure_vault``, besides the download keys).

    Example::

        listing = build_s3_listing_asset("logs_listing", bucket="logs")

        def count_bytes(body, *, key):
            return {"bytes": sum(len(chunk) for chunk in iter(lambda: body.read(1 << 20), b""))}

        sizes = build_s3_processing_asset(
            "sizes", listing=listing, processor=count_bytes,
            output_columns=[ColumnSpec("bucket", "string", required=True),
                            ColumnSpec("path", "string", required=True),
                            ColumnSpec("bytes", "uint64"), ColumnSpec("error", "string")],
        )
    """
    config_class = config_with_defaults(
        S3ProcessingConfig, f"{_camel(name)}Config", **config_defaults
    )
    if writes_to is not None and WRITTEN_COLUMN.name not in {c.name for c in output_columns}:
        output_columns = (*output_columns, WRITTEN_COLUMN)
    output_schema = yt_schema(output_columns)
    output_names = tuple(column.name for column in output_columns)
    missing = [name for name in ("bucket", "path") if name not in output_names]
    if missing:
        raise ValueError(f"output_columns of {name!r} must include {', '.join(missing)}")

    asset = dg.asset(
        name=name,
        ins={"listing_table": dg.AssetIn(key=listing.key)},
        group_name=group_name,
        kinds=ASSET_KINDS,
        partitions_def=partitions_def,
        metadata={
            SCHEMA_METADATA_KEY: dagster_table_schema(output_columns),
            **({"writes_to": writes_to.url()} if writes_to else {}),
            **(metadata or {}),
        },
        description="Every listed S3 object downloaded and processed by a YT map operation"
        + (f", writing objects under {writes_to.url()}." if writes_to else "."),
    )

    def process(
        context: dg.AssetExecutionContext,
        config: Any,
        listing_table: YTTable,
        s3: S3Resource,
        yt_cluster: YTResource,
        s3_upload: S3Resource | None,
    ) -> WrittenTable:
        return _run_processing_map(
            context,
            cast(S3ProcessingConfig, config),
            listing_table,
            s3,
            yt_cluster,
            processor=processor,
            output_names=output_names,
            output_schema=output_schema,
            writes_to=writes_to,
            s3_upload=s3_upload,
        )

    if writes_to is None:  # a read-only asset never asks for the upload keys

        @asset
        def _processed(
            context: dg.AssetExecutionContext,
            config: config_class,  # type: ignore[valid-type]
            listing_table: YTTable,
            s3: S3Resource,
            yt_cluster: YTResource,
        ) -> WrittenTable:
            return process(context, config, listing_table, s3, yt_cluster, None)

        return _processed

    @asset
    def _writing(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
        listing_table: YTTable,
        s3: S3Resource,
        yt_cluster: YTResource,
        s3_upload: S3Resource,
    ) -> WrittenTable:
        return process(context, config, listing_table, s3, yt_cluster, s3_upload)

    return _writing


def _run_processing_map(
    context: dg.AssetExecutionContext,
    config: S3ProcessingConfig,
    listing_table: YTTable,
    s3: S3Resource,
    yt_cluster: YTResource,
    *,
    processor: Callable[..., dict[str, Any]],
    output_names: tuple[str, ...],
    output_schema: Any,
    writes_to: S3Destination | None,
    s3_upload: S3Resource | None,
) -> WrittenTable:
    """The processing asset's body: a YT map over the listing, waited for (aborted if the run is
    terminated), its output handed to the IO manager to move into place."""
    secure_vault = _vault_keys(s3, "download")
    if writes_to is not None and s3_upload is not None:  # only a writing asset's jobs get them
        secure_vault |= _vault_keys(s3_upload, "upload")
    mapper = S3ObjectMapper(
        endpoint_url=s3.endpoint_url,
        region_name=s3.region_name,
        on_error=config.on_error,
        downloads_in_flight=config.downloads_in_flight,
        processor=processor,
        output_columns=output_names,
        retry=RetryPolicy(
            max_attempts=config.download_attempts, max_seconds=config.download_retry_seconds
        ),
        read_timeout=config.download_timeout_seconds,
        destination=writes_to,
    )
    destination, _summary = _run_map(
        context, config, yt_cluster, mapper, listing_table.path, output_schema, secure_vault
    )
    return WrittenTable(path=destination)


def _map_settings(context: dg.AssetExecutionContext, config: MapOperationConfig) -> MapSettings:
    return MapSettings(
        job_count=config.job_count,
        max_failed_job_count=config.max_failed_job_count,
        memory_limit_mb=config.memory_limit_mb,
        docker_image=config.docker_image,
        pool=config.pool,
        title=f"yt-assets {context.asset_key.to_user_string()} (run {context.run.run_id[:8]})",
    )


def _run_map(
    context: dg.AssetExecutionContext,
    config: MapOperationConfig,
    yt_cluster: YTResource,
    mapper: Any,
    source: str,
    output_schema: Any,
    secure_vault: dict[str, str],
    bytes_read_statistic: str | None = STAT_BYTES,
    failure_cause: Callable[[list[JobFailure]], str | None] | None = None,
    destination: str | None = None,
) -> tuple[str, OperationSummary]:
    """A YT map of ``mapper`` from ``source`` into a scratch table (``destination``, by default
    the step's), waited for (aborted if the run is terminated), with its summary as metadata;
    returns the table's path and the summary. The summary line names the bytes read from S3
    (``bytes_read_statistic``) unless it is None. When the operation fails, ``failure_cause``
    may name the cause from the failed jobs (else the YT error does)."""
    settings = _map_settings(context, config)
    destination = destination or _scratch_table(yt_cluster, context)
    hidden = list(secure_vault.values())  # a job printing its keys: never into the run
    with yt_cluster.get_client() as client:
        try:
            operation = start_map(
                client,
                mapper,
                source,
                destination,
                output_schema,
                settings,
                secure_vault=secure_vault,
                log=context.log.info,
            )
        except yt.YtError as error:
            raise dg.Failure(
                description=f"Starting the YT map over {source} failed: {yt_error_line(error)}"
            ) from error
        started = time.monotonic()
        try:
            # From here to the end of the wait, a terminated run aborts the operation.
            with aborted_if_left(operation):
                url = yt_cluster.operation_url(operation.id)
                context.log.info(f"YT operation {operation.id} started: {url or '(no web UI)'}")
                context.add_output_metadata(
                    {"yt_operation_id": operation.id}
                    | ({"yt_operation_url": dg.MetadataValue.url(url)} if url else {})
                )
                summary = wait_with_progress(
                    client,
                    operation,
                    report=context.log.info,
                    interval_seconds=config.progress_interval_seconds,
                )
        except yt.YtOperationFailedError as error:  # it has ended: aborted_if_left let it by
            failures = failed_job_stderrs(client, operation.id, hidden=hidden)
            _log_failures(context, failures)
            ended = operation_summary(client, operation.id, time.monotonic() - started)
            context.log.error(ended.describe(bytes_read_statistic))
            cause = (failure_cause(failures) if failure_cause else None) or (
                yt_error_line(error.inner_errors[0]) if error.inner_errors else str(error)
            )
            raise dg.Failure(
                # The first line is the headline; the job stderr follows (and is in metadata).
                description=f"YT operation {operation.id} failed: {cause}\n"
                f"Job stderr (excerpt):\n{_failures_text(failures)}",
                metadata={
                    "yt_operation_id": operation.id,
                    **_summary_metadata(ended, failures),
                },
            ) from None
        except yt.YtError as error:  # polling failed: the operation was aborted on the way out
            raise dg.Failure(
                description=f"Waiting for YT operation {operation.id} failed: "
                f"{yt_error_line(error)}"
            ) from error
        context.log.info(summary.describe(bytes_read_statistic))
        failures = (
            failed_job_stderrs(client, operation.id, hidden=hidden) if summary.jobs.failed else []
        )
        _log_failures(context, failures)
        context.add_output_metadata(_summary_metadata(summary, failures))
    return destination, summary


def _log_failures(context: dg.AssetExecutionContext, failures: list[JobFailure]) -> None:
    for failure in failures:
        context.log.warning(f"YT job failure: {failure.describe()}")


def _failures_text(failures: list[JobFailure]) -> str:
    return "\n\n".join(failure.describe() for failure in failures)


def _summary_metadata(summary: OperationSummary, failures: list[JobFailure]) -> dict[str, Any]:
    """Numeric metadata of a finished operation (they plot over materialisations in the UI):
    job counts, rows, duration and every user statistic summed over completed jobs
    (``…_ms`` ones in seconds), plus the stderr excerpt of each distinct job failure."""
    metadata: dict[str, Any] = {
        "yt_operation_state": summary.state,
        "yt_operation_seconds": dg.MetadataValue.float(round(summary.duration_seconds, 3)),
        "yt_jobs_completed": dg.MetadataValue.int(summary.jobs.completed),
        "yt_jobs_failed": dg.MetadataValue.int(summary.jobs.failed),
        "yt_jobs_aborted": dg.MetadataValue.int(summary.jobs.aborted),
    }
    for key, value in (("yt_rows_in", summary.rows_in), ("yt_rows_out", summary.rows_out)):
        if value is not None:
            metadata[key] = dg.MetadataValue.int(value)
    for name, value in sorted(summary.user_statistics.items()):
        if name.endswith("_ms"):
            metadata[f"{name[:-3]}_seconds"] = dg.MetadataValue.float(value / 1000)
        else:
            metadata[name] = dg.MetadataValue.int(value)
    if failures:
        metadata["failed_job_stderr"] = dg.MetadataValue.md(
            "\n\n".join(f"```\n{failure.describe()}\n```" for failure in failures)
        )
    return metadata


def _vault_keys(s3: S3Resource, role: Role) -> dict[str, str]:
    """The ``secure_vault`` entries of the keys of ``role``; fails naming a missing variable."""
    access_variable, secret_variable = S3_ENV_VARS[role]
    missing = [
        variable
        for variable, value in (
            (access_variable, s3.aws_access_key_id),
            (secret_variable, s3.aws_secret_access_key),
        )
        if not value
    ]
    if missing:
        raise dg.Failure(description=f"S3 {role} keys are not set: {', '.join(missing)}")
    assert s3.aws_access_key_id and s3.aws_secret_access_key
    # The job reads them back with S3Credentials.from_secure_vault: one place names the keys.
    return S3Credentials(s3.aws_access_key_id, s3.aws_secret_access_key).secure_vault(role)


def _scratch_table(yt_cluster: YTResource, context: dg.AssetExecutionContext) -> str:
    parts = [*context.asset_key.path]
    if context.has_partition_key:
        parts.append(context.partition_key)
    name = ".".join(escape_node_name(part) for part in parts)
    return f"{yt_cluster.scratch_root}/{context.run.run_id}/{name}"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def build_s3_export_asset(
    name: str,
    *,
    table: dg.AssetsDefinition | dg.AssetKey,
    bucket: str | None = None,
    prefix: str | None = None,
    rows_per_object: int | None = None,
    compression: Compression = "none",
    group_name: str = "s3",
    partitions_def: dg.PartitionsDefinition | None = None,
    metadata: Mapping[str, Any] | None = None,
    **config_defaults: Any,
) -> dg.AssetsDefinition:
    """An asset exporting the YT table of ``table`` to S3 as JSON Lines, with a YT map: each job
    writes ``prefix + part-<job>-<n>.jsonl`` (``.jsonl.gz`` with ``compression="gzip"``), a new
    object every ``rows_per_object`` rows (unset: one per job). A partitioned table exports each
    partition under ``prefix + <partition key>/``.

    ``_SUCCESS`` is removed first and written last (holding the manifest as JSON); objects of an
    earlier export that the new one did not write are deleted, so a rerun leaves exactly one
    export. The asset's own table is the manifest (:data:`~yt_assets.yt.schemas.EXPORT_COLUMNS`:
    ``key``, ``rows``, ``size``, ``etag``); its metadata adds ``s3_prefix``, ``rows_exported``,
    ``objects_exported`` and ``manifest``. Needs ``s3_upload``; only the upload keys reach the jobs.

    Example::

        listing = build_s3_listing_asset("logs_listing", bucket="my-bucket")
        processed = build_s3_processing_asset("logs_processed", listing=listing)
        export = build_s3_export_asset(
            "processed_export", table=processed, bucket="my-bucket", prefix="exports/processed/"
        )
    """
    defaults: dict[str, Any] = {"rows_per_object": rows_per_object, "compression": compression}
    defaults |= {key: value for key, value in (("bucket", bucket), ("prefix", prefix)) if value}
    config_class = config_with_defaults(
        S3ExportConfig, f"{_camel(name)}Config", **defaults, **config_defaults
    )

    @dg.asset(
        name=name,
        ins={
            "source_table": dg.AssetIn(key=table if isinstance(table, dg.AssetKey) else table.key)
        },
        group_name=group_name,
        kinds=ASSET_KINDS,
        partitions_def=partitions_def,
        metadata={SCHEMA_METADATA_KEY: dagster_table_schema(EXPORT_COLUMNS), **(metadata or {})},
        description="A YT table exported to S3 as JSON Lines by a YT map operation; the table "
        "is its manifest (one row per object written).",
    )
    def _export(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
        source_table: YTTable,
        s3_upload: S3Resource,
        yt_cluster: YTResource,
    ) -> WrittenTable:
        return _run_export(
            context, cast(S3ExportConfig, config), source_table, s3_upload, yt_cluster
        )

    return _export


def _run_export(
    context: dg.AssetExecutionContext,
    config: S3ExportConfig,
    source_table: YTTable,
    s3_upload: S3Resource,
    yt_cluster: YTResource,
) -> WrittenTable:
    """The export asset's body: clear ``_SUCCESS``, map the table into objects, delete the
    earlier export's leftovers, write ``_SUCCESS``; the manifest table goes to the IO manager."""
    destination = S3Destination(config.bucket, config.prefix)
    if context.has_partition_key:
        destination = destination.under(context.partition_key.strip("/") + "/")
    client = s3_upload.get_client()
    clear_success_marker(client, destination)
    mapper = TableExportMapper(
        destination,
        endpoint_url=s3_upload.endpoint_url,
        region_name=s3_upload.region_name,
        rows_per_object=config.rows_per_object,
        compression=config.compression,
    )
    context.log.info(f"Exporting {source_table.path} to {destination.url()}")
    manifest_path, _summary = _run_map(
        context,
        config,
        yt_cluster,
        mapper,
        source_table.path,
        yt_schema(EXPORT_COLUMNS),
        _vault_keys(s3_upload, "upload"),
        bytes_read_statistic=None,  # an export reads from YT only
    )
    with yt_cluster.get_client() as yt_client:
        objects = sorted(
            ({**row} for row in yt_client.read_table(manifest_path)), key=lambda row: row["key"]
        )
    rows = sum(int(row["rows"]) for row in objects)
    removed = delete_stale_objects(client, destination, keep={row["key"] for row in objects})
    manifest = {
        "rows": rows,
        "objects": [{"key": row["key"], "rows": row["rows"]} for row in objects],
    }
    write_success_marker(client, destination, manifest)
    context.log.info(
        f"Exported {rows} rows in {len(objects)} objects to {destination.url()}"
        + (f"; removed {removed} object(s) of an earlier export" if removed else "")
    )
    context.add_output_metadata(
        {
            "s3_prefix": destination.url(),
            "rows_exported": dg.MetadataValue.int(rows),
            "objects_exported": dg.MetadataValue.int(len(objects)),
            "stale_objects_removed": dg.MetadataValue.int(removed),
            "manifest": dg.MetadataValue.json(manifest),
        }
    )
    return WrittenTable(path=manifest_path)
