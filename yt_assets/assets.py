"""Asset factories: S3 listings stored as YT tables, and the YT map that processes the listed objects.

Usage::

    listing = build_s3_listing_asset("events_listing", bucket="my-bucket", prefix="events/")
    processed = build_s3_processing_asset("events_processed", listing=listing)
    defs = dg.Definitions(assets=[listing, processed], resources=build_resources())
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import dagster as dg
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource
from pydantic import Field

from yt_assets.configs import S3ListingConfig, S3ProcessingConfig
from yt_assets.io_manager import SCHEMA_METADATA_KEY, WrittenTable, dagster_table_schema
from yt_assets.resources import YTResource
from yt_assets.s3.listing import iter_s3_objects
from yt_assets.s3.settings import S3_ENV_VARS
from yt_assets.yt.operations import MapSettings, start_map, stderr_excerpt, wait_or_abort
from yt_assets.yt.paths import escape_node_name
from yt_assets.yt.schemas import (
    LISTING_COLUMNS,
    PROCESSED_COLUMNS,
    ColumnSpec,
    listing_row,
    yt_schema,
)
from yt_assets.yt.tables import YTTable
from yt_assets.yt_jobs.s3_processing import (
    S3Credentials,
    S3ObjectMapper,
    process_object,
)

ASSET_KINDS = {"s3", "ytsaurus"}

ROWS = dg.DagsterType(
    name="YTRows",
    description="Row dicts streamed into a YT table by YTTableIOManager.",
    type_check_fn=lambda _context, value: isinstance(value, Iterable),
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
        namespace[key] = Field(default=value, description=fields[key].description)
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
    ) -> dg.Output[Iterator[dict[str, Any]]]:
        return _list_into_rows(context, cast(S3ListingConfig, config), s3, partition_prefix)

    return _listing


def _list_into_rows(
    context: dg.AssetExecutionContext,
    config: S3ListingConfig,
    s3: S3Resource,
    partition_prefix: Callable[[str, str], str],
) -> dg.Output[Iterator[dict[str, Any]]]:
    """The listing asset's body: the rows of the listed objects, streamed to the IO manager."""
    listed_prefix = (
        partition_prefix(config.prefix, context.partition_key)
        if context.has_partition_key
        else config.prefix
    )
    context.log.info(
        f"Listing s3://{config.bucket}/{listed_prefix} (extension={config.extension!r}, "
        f"max_files={config.max_files!r})"
    )
    objects = iter_s3_objects(
        s3.get_client(),
        config.bucket,
        listed_prefix,
        extension=config.extension,
        max_files=config.max_files,
        logger=context.log,
    )
    # Wrapped in Output: a bare generator would be taken for a stream of Dagster events.
    return dg.Output(listing_row(config.bucket, obj) for obj in objects)


def build_s3_processing_asset(
    name: str = "s3_objects_processed",
    *,
    listing: dg.AssetsDefinition,
    processor: Callable[..., dict[str, Any]] = process_object,
    output_columns: Sequence[ColumnSpec] = PROCESSED_COLUMNS,
    group_name: str = "s3",
    partitions_def: dg.PartitionsDefinition | None = None,
    metadata: Mapping[str, Any] | None = None,
    **config_defaults: Any,
) -> dg.AssetsDefinition:
    """An asset running a YT map over a listing table: every job downloads its objects and applies
    ``processor(body_stream, key=key) -> dict``; each result row is ``bucket``, ``path``,
    ``error`` and the processor's fields, projected on ``output_columns`` (which must hold
    ``bucket`` and ``path``, and ``error`` unless ``on_error="fail"``).

    The S3 download keys reach the jobs only through the operation's ``secure_vault``.

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
    output_schema = yt_schema(output_columns)
    output_names = tuple(column.name for column in output_columns)
    missing = [name for name in ("bucket", "path") if name not in output_names]
    if missing:
        raise ValueError(f"output_columns of {name!r} must include {', '.join(missing)}")

    @dg.asset(
        name=name,
        ins={"listing_table": dg.AssetIn(key=listing.key)},
        group_name=group_name,
        kinds=ASSET_KINDS,
        partitions_def=partitions_def,
        metadata={SCHEMA_METADATA_KEY: dagster_table_schema(output_columns), **(metadata or {})},
        description="Every listed S3 object downloaded and processed by a YT map operation.",
    )
    def _processed(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
        listing_table: YTTable,
        s3: S3Resource,
        yt_cluster: YTResource,
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
        )

    return _processed


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
) -> WrittenTable:
    """The processing asset's body: a YT map over the listing, waited for (aborted if the run is
    terminated), its output handed to the IO manager to move into place."""
    mapper = S3ObjectMapper(
        endpoint_url=s3.endpoint_url,
        region_name=s3.region_name,
        on_error=config.on_error,
        downloads_in_flight=config.downloads_in_flight,
        processor=processor,
        output_columns=output_names,
    )
    settings = MapSettings(
        job_count=config.job_count,
        max_failed_job_count=config.max_failed_job_count,
        memory_limit_mb=config.memory_limit_mb,
        docker_image=config.docker_image,
        pool=config.pool,
        title=f"yt-assets {context.asset_key.to_user_string()} (run {context.run.run_id[:8]})",
    )
    destination = _scratch_table(yt_cluster, context)
    with yt_cluster.get_client() as client:
        operation = start_map(
            client,
            mapper,
            listing_table.path,
            destination,
            output_schema,
            settings,
            secure_vault=_download_keys(s3),
        )
        context.log.info(f"YT operation {operation.id} started: {operation.url}")
        context.add_output_metadata(
            {
                "yt_operation_id": operation.id,
                "yt_operation_url": dg.MetadataValue.url(operation.url),
            }
            if operation.url
            else {"yt_operation_id": operation.id}
        )
        try:
            wait_or_abort(operation)
        except yt.YtOperationFailedError as error:
            excerpt = stderr_excerpt(error)
            raise dg.Failure(
                description=f"YT operation {operation.id} failed: {error.inner_errors[0]['message'] if error.inner_errors else error}\n"
                f"Job stderr (excerpt):\n{excerpt}",
                metadata={
                    "yt_operation_id": operation.id,
                    "stderr_excerpt": dg.MetadataValue.md(f"```\n{excerpt}\n```"),
                },
            ) from None
    return WrittenTable(path=destination)


def _download_keys(s3: S3Resource) -> dict[str, str]:
    access_variable, secret_variable = S3_ENV_VARS["download"]
    missing = [
        variable
        for variable, value in (
            (access_variable, s3.aws_access_key_id),
            (secret_variable, s3.aws_secret_access_key),
        )
        if not value
    ]
    if missing:
        raise dg.Failure(description=f"S3 download keys are not set: {', '.join(missing)}")
    assert s3.aws_access_key_id and s3.aws_secret_access_key
    # The job reads them back with S3Credentials.from_secure_vault: one place names the keys.
    return S3Credentials(s3.aws_access_key_id, s3.aws_secret_access_key).secure_vault()


def _scratch_table(yt_cluster: YTResource, context: dg.AssetExecutionContext) -> str:
    parts = [*context.asset_key.path]
    if context.has_partition_key:
        parts.append(context.partition_key)
    name = ".".join(escape_node_name(part) for part in parts)
    return f"{yt_cluster.scratch_root}/{context.run.run_id}/{name}"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
