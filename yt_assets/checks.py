"""Asset checks on a processing asset: every listed object processed, and few processing errors.

Usage::

    checks = build_processing_checks(processed, listing, max_error_share=0.05)
"""

import warnings
from collections.abc import Sequence

import dagster as dg

from yt_assets.resources import YTResource
from yt_assets.yt.tables import YTTable, count_non_empty


def error_share(errors: int, rows: int) -> float:
    """The share of rows with an error; an empty table has none."""
    return errors / rows if rows else 0.0


def build_processing_checks(
    processed: dg.AssetsDefinition,
    listing: dg.AssetsDefinition,
    *,
    max_error_share: float = 0.05,
    error_column: str = "error",
    yt_resource_key: str = "yt_cluster",
) -> Sequence[dg.AssetChecksDefinition]:
    """Two checks on ``processed``: ``rows_match_listing`` (blocking) and ``error_share_below_threshold``.

    Partitioned assets get partitioned checks that compare the same partition of both tables.
    """
    if not 0.0 <= max_error_share <= 1.0:
        raise ValueError(f"max_error_share={max_error_share} must lie between 0 and 1")
    with warnings.catch_warnings():
        # Partitioned asset checks are a Dagster "preview" feature (1.13); they are what makes a
        # check compare the same partition of both tables.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build_checks(processed, listing, max_error_share, error_column, yt_resource_key)


def _build_checks(
    processed: dg.AssetsDefinition,
    listing: dg.AssetsDefinition,
    max_error_share: float,
    error_column: str,
    yt_resource_key: str,
) -> Sequence[dg.AssetChecksDefinition]:
    partitions_def = processed.partitions_def
    prefix = processed.key.path[-1]

    @dg.asset_check(
        asset=processed,
        name=f"{prefix}_rows_match_listing",
        additional_ins={"listing_table": dg.AssetIn(key=listing.key)},
        blocking=True,
        partitions_def=partitions_def,
        description="The processed table has exactly one row per listed object.",
    )
    def rows_match_listing(processed_table: YTTable, listing_table: YTTable) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=processed_table.row_count == listing_table.row_count,
            metadata={
                "processed_rows": processed_table.row_count,
                "listed_rows": listing_table.row_count,
                "missing_rows": listing_table.row_count - processed_table.row_count,
            },
        )

    @dg.asset_check(
        asset=processed,
        name=f"{prefix}_error_share_below_threshold",
        required_resource_keys={yt_resource_key},
        partitions_def=partitions_def,
        description=f"At most {max_error_share:.0%} of the processed objects have a non-empty "
        f"'{error_column}'.",
    )
    def error_share_below_threshold(
        context: dg.AssetCheckExecutionContext, processed_table: YTTable
    ) -> dg.AssetCheckResult:
        yt_cluster: YTResource = getattr(context.resources, yt_resource_key)
        with yt_cluster.get_client() as client:
            errors = count_non_empty(client, processed_table.path, error_column)
        share = error_share(errors, processed_table.row_count)
        return dg.AssetCheckResult(
            passed=share <= max_error_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_with_error": errors,
                "rows": processed_table.row_count,
                "error_share": share,
                "max_error_share": max_error_share,
            },
        )

    return [rows_match_listing, error_share_below_threshold]
