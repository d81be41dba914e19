"""``YTTableIOManager``: assets stored as YT static tables, one table per asset (or per partition).

The Dagster half only: paths come from :mod:`yt_assets.yt.paths`, the atomic publication and
table descriptions from :mod:`yt_assets.yt.tables`.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import yt.wrapper as yt
from pydantic import Field

from yt_assets.resources import YTResource
from yt_assets.yt.errors import yt_error_line
from yt_assets.yt.paths import DEFAULT_ROOT, asset_table_path
from yt_assets.yt.schemas import ColumnSpec, column_specs, yt_schema
from yt_assets.yt.tables import (
    Row,
    TableConflictError,
    YTTable,
    YTTableRows,
    describe_table,
    publish_rows,
    publish_table,
    read_rows,
    table_preview,
)

SCHEMA_METADATA_KEY = "dagster/column_schema"
TABLE_NAME_METADATA_KEY = "dagster/table_name"
PATH_METADATA_KEY = "yt_path"
SORT_ORDER_TAG = "yt/sort_order"
CLUSTER_METADATA_KEY = "yt_cluster"


class WrittenTable(YTTable):
    """An asset's output already written to a YT table (e.g. by an operation), to be moved into place."""


def dagster_table_schema(columns: Sequence[ColumnSpec]) -> dg.TableSchema:
    """The Dagster ``TableSchema`` shown in the UI for declared YT columns (types are YT type names)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=column.type,
                description=column.description or None,
                constraints=dg.TableColumnConstraints(nullable=not column.required),
                tags={SORT_ORDER_TAG: column.sort_order} if column.sort_order else None,
            )
            for column in columns
        ]
    )


def columns_from_dagster_schema(schema: dg.TableSchema) -> list[ColumnSpec]:
    """Inverse of :func:`dagster_table_schema`."""
    return [
        ColumnSpec(
            name=column.name,
            type=column.type,
            required=not column.constraints.nullable,
            description=column.description or "",
            sort_order=(column.tags or {}).get(SORT_ORDER_TAG),
        )
        for column in schema.columns
    ]


def preview_metadata(table: YTTable) -> dict[str, Any]:
    """``preview``: the first rows as a Dagster table (shown as one in the UI) with the useful
    columns and short values; ``preview_same_on_every_row``: the columns left out of it because
    every previewed row has the same value (e.g. ``bucket``)."""
    specs = column_specs(table.schema) if table.schema is not None else []
    types = {spec.name: spec.type for spec in specs}
    preview = table_preview(table.preview, [spec.name for spec in specs] or None, types=types)
    metadata: dict[str, Any] = {
        "preview": dg.MetadataValue.table(
            records=[dg.TableRecord(data=row) for row in preview.rows],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn(name=name, type=types.get(name, "any"))
                    for name in preview.columns
                ]
            ),
        )
    }
    if preview.constants:
        metadata["preview_same_on_every_row"] = dg.MetadataValue.text(
            ", ".join(f"{name} = {value}" for name, value in preview.constants.items())
        )
    return metadata


class YTTableIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs as YT static tables and loads them for downstream assets.

    Outputs: an iterable of row dicts (streamed into YT) with the schema declared in the asset's
    dagster/column_schema metadata (an output_metadata() method of the iterable, if any, adds
    metadata once it is consumed), or a WrittenTable (moved into place). Publication is atomic.
    Inputs: a YTTable reference by default (a dict of them by partition key for several
    partitions); the rows, read lazily, when the input is annotated YTTableRows.
    (Plain text: Dagster shows this docstring in the launchpad.)

    Example (proxy_url: a YT proxy; YTResource() alone starts the embedded local YT)::

        import dagster as dg
        from yt_assets.io_manager import YTTableIOManager, dagster_table_schema
        from yt_assets.resources import YTResource
        from yt_assets.yt.schemas import ColumnSpec

        @dg.asset(metadata={"dagster/column_schema": dagster_table_schema([ColumnSpec("word", "string")])})
        def words() -> list[dict[str, str]]:
            return [{"word": w} for w in ["a", "b"]]

        yt_cluster = YTResource(proxy=proxy_url)
        io_manager = YTTableIOManager(yt_cluster=yt_cluster, root="//tmp/io_manager_example")
        result = dg.materialize([words], resources={"io_manager": io_manager})
        materialization = result.asset_materializations_for_node("words")[0]
        assert materialization.metadata["dagster/row_count"].value == 2
    """

    yt_cluster: dg.ResourceDependency[YTResource]
    root: str = Field(
        default=DEFAULT_ROOT, description="Cypress directory holding the asset tables."
    )

    def table_path(
        self,
        asset_key: dg.AssetKey,
        metadata: Mapping[str, Any] | None,
        partition_key: str | None = None,
    ) -> str:
        override = (metadata or {}).get(PATH_METADATA_KEY)
        return asset_table_path(
            self.root, asset_key.path, partition_key=partition_key, override=override
        )

    def with_table_name(self, spec: dg.AssetSpec) -> dg.AssetSpec:
        """``spec`` with ``dagster/table_name`` (its YT path) in its definition metadata when it is
        unpartitioned, so that its Overview page shows the table before the first run.

        A partitioned asset has one table per partition: its materialisations name them.
        """
        if spec.partitions_def is not None:
            return spec
        return spec.merge_attributes(
            metadata={TABLE_NAME_METADATA_KEY: self.table_path(spec.key, spec.metadata)}
        )

    def with_table_names(self, assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
        """The assets, each unpartitioned one with ``dagster/table_name`` (:meth:`with_table_name`)."""
        return [asset.map_asset_specs(self.with_table_name) for asset in assets]

    # -- outputs -------------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        partition_key = context.asset_partition_key if context.has_asset_partitions else None
        path = self.table_path(context.asset_key, context.definition_metadata, partition_key)
        owner = context.asset_key.to_user_string()
        if not isinstance(obj, WrittenTable) and (
            not isinstance(obj, Iterable) or isinstance(obj, (str, bytes, Mapping))
        ):
            raise dg.DagsterInvariantViolationError(
                f"YTTableIOManager stores an iterable of row dicts or a WrittenTable; asset "
                f"{owner} returned {type(obj).__name__}"
            )
        try:
            with self.yt_cluster.get_client() as client:
                if isinstance(obj, WrittenTable):
                    table = publish_table(client, obj.path, path, owner=owner)
                else:
                    schema = self._declared_schema(context)
                    table = publish_rows(client, path, obj, schema, owner=owner)
        except TableConflictError as error:
            if isinstance(obj, WrittenTable):  # the operation's output is of no use now
                with self.yt_cluster.get_client() as client:
                    client.remove(obj.path, force=True)
            raise dg.Failure(description=str(error), allow_retries=False) from None
        except yt.YtError as error:
            raise dg.Failure(
                description=f"Publishing {path} failed: {yt_error_line(error)}"
            ) from error
        warning = self.yt_cluster.local_warning()
        if warning:
            context.log.warning(warning)
        metadata = self._materialization_metadata(table, partition_key)
        # An iterable of rows may know more once consumed (e.g. a listing's key count).
        extra = getattr(obj, "output_metadata", None)
        if callable(extra):
            metadata.update(extra())
        context.add_output_metadata(metadata)

    def _declared_schema(self, context: dg.OutputContext) -> Any:
        declared = context.definition_metadata.get(SCHEMA_METADATA_KEY)
        if isinstance(declared, dg.TableSchemaMetadataValue):
            declared = declared.schema
        if not isinstance(declared, dg.TableSchema):
            raise dg.DagsterInvariantViolationError(
                f"Asset {context.asset_key.to_user_string()} must declare its YT schema in metadata "
                f"'{SCHEMA_METADATA_KEY}' (see yt_assets.io_manager.dagster_table_schema)"
            )
        return yt_schema(columns_from_dagster_schema(declared))

    def _materialization_metadata(
        self, table: YTTable, partition_key: str | None
    ) -> dict[str, Any]:
        row_count_key = "dagster/partition_row_count" if partition_key else "dagster/row_count"
        metadata: dict[str, Any] = {
            TABLE_NAME_METADATA_KEY: table.path,
            CLUSTER_METADATA_KEY: self.yt_cluster.cluster_name(),
            row_count_key: dg.MetadataValue.int(table.row_count),
            "data_size_bytes": dg.MetadataValue.int(table.data_size),
            **preview_metadata(table),
        }
        if partition_key:
            metadata["dagster/row_count"] = dg.MetadataValue.int(table.row_count)
        if table.schema is not None:
            metadata[SCHEMA_METADATA_KEY] = dg.MetadataValue.table_schema(
                dagster_table_schema(column_specs(table.schema))
            )
        url = self.yt_cluster.web_url(table.path)
        if url:
            metadata["dagster/uri"] = dg.MetadataValue.url(url)
            # The asset page's metadata section hides dagster/* keys: the same link, visible.
            metadata["yt_table_url"] = dg.MetadataValue.url(url)
        return metadata

    # -- inputs --------------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> Any:
        upstream_metadata = (
            context.upstream_output.definition_metadata if context.upstream_output else {}
        )
        paths = self._input_paths(context, upstream_metadata)
        if context.dagster_type.typing_type is YTTableRows:
            return YTTableRows(paths, self._iter_rows)
        with self.yt_cluster.get_client() as client:
            self._check_exist(client, paths, context)
            tables = [describe_table(client, path, preview_rows=0) for path in paths]
        if context.has_asset_partitions and len(tables) != 1:
            return {
                key: table for key, table in zip(context.asset_partition_keys, tables, strict=True)
            }
        return tables[0]

    def _input_paths(self, context: dg.InputContext, metadata: Mapping[str, Any]) -> list[str]:
        if not context.has_asset_partitions:
            return [self.table_path(context.asset_key, metadata)]
        return [
            self.table_path(context.asset_key, metadata, key)
            for key in context.asset_partition_keys
        ]

    def _check_exist(self, client: Any, paths: Sequence[str], context: dg.InputContext) -> None:
        missing = [path for path in paths if not client.exists(path)]
        if missing:
            raise dg.Failure(
                f"Input {context.name!r}: no YT table at "
                + ", ".join(missing)
                + f" (materialise {context.asset_key.to_user_string()} or its partition first)"
            )

    def _iter_rows(self, paths: Sequence[str]) -> Iterator[Row]:
        with self.yt_cluster.get_client() as client:
            for path in paths:
                yield from read_rows(client, path)
