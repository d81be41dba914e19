"""``yt-assets demo``: materialise the whole asset graph on the demo stack, then print a summary.

Runs go through the persistent instance in ``.dagster_home`` (``DagsterInstance.get()``), so they
show in the Dagster UI afterwards (``yt-assets dev``). The plan:

1. ``s3_listing`` + ``s3_objects_processed``: the whole demo bucket, unpartitioned, and
   ``s3_objects_processed_export``: that table written back to ``exports/s3_objects_processed/``;
   then ``s3_events_listing`` + ``s3_events_summaries``: every object under ``events/`` processed,
   its result written as ``summaries/<key>.summary.json``;
2. ``s3_prefix_job`` for the first ready ``incoming/`` prefixes (added as dynamic partitions; the
   remaining ready prefix is left for the sensor to find);
3. ``daily_s3_job`` for yesterday (what the schedule would ask for today).

Usage::

    with DemoStack(DemoHome(Path.cwd())) as stack:
        exit_code = run_demo(stack, out=sys.stdout)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from yt_assets.demo.progress import DagsterProgressHandler, ProgressBar
from yt_assets.demo.seed import demo_objects, ready_prefixes
from yt_assets.demo.stack import DemoStack

PREFIX_PARTITIONS_TO_RUN = 2
SAMPLE_ROWS = 3
CELL_WIDTH = 36
DEMO_TAG = "yt_assets/demo"

LISTING_COLUMNS = ("path", "size", "last_modified")
PROCESSED_COLUMNS = ("path", "lines", "records", "parse_errors", "error")
SUMMARIES_COLUMNS = ("path", "records", "written")
EXPORT_COLUMNS = ("key", "rows", "size")


@dataclass(frozen=True)
class PlannedRun:
    """One run of the demo: a job (``None``: the assets' implicit job), its assets, a partition."""

    label: str
    job_name: str | None
    asset_names: tuple[str, ...]
    partition_key: str | None = None


@dataclass(frozen=True)
class TableSummary:
    asset_name: str
    partition_key: str | None
    path: str
    row_count: int
    rows: list[dict[str, Any]]


def demo_plan(today: date, prefixes_ready: Sequence[str]) -> list[PlannedRun]:
    """What ``yt-assets demo`` materialises, in order."""
    yesterday = (today - timedelta(days=1)).isoformat()
    plan = [
        PlannedRun(
            "whole bucket",
            None,
            ("s3_listing", "s3_objects_processed", "s3_objects_processed_export"),
        ),
        PlannedRun("events/ summaries", None, ("s3_events_listing", "s3_events_summaries")),
    ]
    plan += [
        PlannedRun(
            f"prefix {prefix}",
            "s3_prefix_job",
            ("s3_prefix_listing", "s3_prefix_processed"),
            prefix,
        )
        for prefix in prefixes_ready[:PREFIX_PARTITIONS_TO_RUN]
    ]
    plan.append(
        PlannedRun(
            f"day {yesterday}",
            "daily_s3_job",
            ("daily_s3_listing", "daily_s3_processed"),
            yesterday,
        )
    )
    return plan


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.strftime("%Y-%m-%d %H:%M:%S")
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def format_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], indent: str = "    "
) -> str:
    """A small aligned text table of ``rows`` restricted to ``columns``.

    >>> print(format_rows([{"path": "a.json", "size": 3}], ["path", "size"], indent=""))
    path    size
    a.json  3
    """
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(indent + line for line in lines)


def _summary_columns(asset_name: str) -> tuple[str, ...]:
    for suffix, columns in (
        ("_processed", PROCESSED_COLUMNS),
        ("_summaries", SUMMARIES_COLUMNS),
        ("_export", EXPORT_COLUMNS),
    ):
        if asset_name.endswith(suffix):
            return columns
    return LISTING_COLUMNS


def format_summary(tables: Sequence[TableSummary]) -> str:
    """The end-of-demo summary: every table's YT path, row count and first rows."""
    blocks = []
    for table in tables:
        name = table.asset_name + (f" [{table.partition_key}]" if table.partition_key else "")
        columns = _summary_columns(table.asset_name)
        header = f"{name}\n  {table.path}  ({table.row_count} rows)"
        blocks.append(header + ("\n" + format_rows(table.rows, columns) if table.rows else ""))
    return "\n\n".join(blocks)


def read_table_summary(
    client: Any, root: str, asset_name: str, partition_key: str | None
) -> TableSummary:
    import yt.wrapper as yt

    from yt_assets.yt.paths import asset_table_path

    path = asset_table_path(root, [asset_name], partition_key=partition_key)
    row_count = int(client.get(f"{path}/@row_count"))
    rows = list(client.read_table(yt.TablePath(path, end_index=SAMPLE_ROWS)))
    for row in rows:
        if isinstance(row.get("last_modified"), int):  # a YT timestamp: microseconds
            row["last_modified"] = datetime.fromtimestamp(row["last_modified"] / 1e6, tz=UTC)
    return TableSummary(asset_name, partition_key, path, row_count, rows[:SAMPLE_ROWS])


def _check_count(defs: Any, asset_names: Sequence[str]) -> int:
    import dagster as dg

    keys = {dg.AssetKey(name) for name in asset_names}
    return sum(
        1 for check in defs.resolve_asset_graph().asset_check_keys if check.asset_key in keys
    )


def _failure_reason(result: Any) -> str:
    """Each failed step with its error and the chain of its causes (e.g. the S3 or YT error)."""
    reasons = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is None:
            reasons.append(f"step {event.step_key}: failed")
            continue
        reason = f"step {event.step_key}: {error.message.strip()}"
        cause = error.cause or error.context
        while cause is not None:  # e.g. the botocore error, then the socket error
            reason += f"\n  caused by: {cause.message.strip()[:500]}"
            cause = cause.cause or cause.context
        reasons.append(reason)
    return "\n".join(reasons) or "the run failed (see the Dagster UI for its event log)"


def run_demo(stack: DemoStack, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Materialise the demo plan through the instance in ``.dagster_home`` and print a summary
    (to ``out``; progress and errors to ``err``). Returns the exit status (0: every run succeeded)."""
    out = out or sys.stdout
    err = err or sys.stderr
    os.environ.update(stack.environment())  # before the code location is imported
    import yt.logger  # sets its own level on import: quiet it afterwards

    yt.logger.LOGGER.setLevel(logging.WARNING)  # "Operation started" (the bar shows progress)
    import dagster as dg

    from yt_assets.definitions import build_component_definitions
    from yt_assets.partitions import S3_PREFIX_PARTITIONS_NAME, build_daily_partitions
    from yt_assets.settings import load_settings

    settings = load_settings(os.environ)
    daily_partitions = build_daily_partitions(settings.daily_start)

    plan = demo_plan(stack.today, ready_prefixes(demo_objects(stack.today)))
    for run in plan:
        if (
            run.job_name == "daily_s3_job"
            and run.partition_key
            and not daily_partitions.has_partition_key(run.partition_key)
        ):
            print(
                f"error: day {run.partition_key} is not a daily partition (they start at "
                f"{daily_partitions.start:%Y-%m-%d}; set YT_ASSETS_DAILY_START)",
                file=err,
            )
            return 1
    code_location = build_component_definitions(settings=settings)
    total = sum(len(run.asset_names) + _check_count(code_location, run.asset_names) for run in plan)
    bar = ProgressBar(total, err, unit="steps")
    handler = DagsterProgressHandler(bar)

    @dg.logger
    def demo_progress(_init_context: Any) -> logging.Logger:
        logger = logging.getLogger("yt_assets.demo.progress")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        if handler not in logger.handlers:
            logger.addHandler(handler)
        return logger

    defs = dg.Definitions.merge(
        code_location, dg.Definitions(loggers={"demo_progress": demo_progress})
    )
    started = time.monotonic()
    summaries: list[TableSummary] = []
    bar.start_ticker()
    try:
        with dg.DagsterInstance.get() as instance:
            prefixes = [run.partition_key for run in plan if run.job_name == "s3_prefix_job"]
            new = [
                key
                for key in prefixes
                if key and not instance.has_dynamic_partition(S3_PREFIX_PARTITIONS_NAME, key)
            ]
            if new:
                instance.add_dynamic_partitions(S3_PREFIX_PARTITIONS_NAME, new)
            print(
                f"Materialising {len(plan)} runs into the Dagster instance in {stack.home.dagster_home}",
                file=out,
            )
            for run in plan:
                keys = [dg.AssetKey(name) for name in run.asset_names]
                if run.job_name is None:
                    job = defs.resolve_implicit_job_def_def_for_assets(keys)
                    assert job is not None
                else:
                    job = defs.resolve_job_def(run.job_name)
                bar.update(label=run.label)
                result = job.execute_in_process(
                    instance=instance,
                    asset_selection=keys if run.job_name is None else None,
                    partition_key=run.partition_key,
                    raise_on_error=False,
                    tags={DEMO_TAG: "true"},
                    # Only the progress logger: the full event log is in the instance (and the UI).
                    run_config={"loggers": {"demo_progress": {"config": {}}}},
                )
                bar.clear()
                status = "succeeded" if result.success else "FAILED"
                print(f"  run {result.run_id[:8]} ({run.label}): {status}", file=out)
                out.flush()
                if not result.success:
                    print(
                        f"error: the run for {run.label} failed:\n{_failure_reason(result)}",
                        file=err,
                    )
                    return 1
    finally:
        bar.finish()
    root = os.environ.get("YT_ROOT", "//home/yt_assets")
    yt_cluster = (code_location.resources or {})["yt_cluster"]
    with yt_cluster.get_client() as client:
        for run in plan:
            for name in run.asset_names:
                summaries.append(read_table_summary(client, root, name, run.partition_key))
    print(f"\nDone in {time.monotonic() - started:.0f} s. Tables on the local YT:\n", file=out)
    print(format_summary(summaries), file=out)
    return 0
