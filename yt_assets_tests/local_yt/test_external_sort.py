"""The external sort behind ``sort`` and ``map_reduce``: memory bounded by its run size (rows held
at once never exceed it, whatever the input), stable, several merge passes past its fan-in, and
no spilled file left behind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from yt_assets.local_yt import LocalYT
from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.external_sort import ExternalSorter
from yt_assets.local_yt.operations import OperationEngine

from .conftest import LOCAL_ONLY_REASON, REAL_PROXY, peak_rss_kib, write_yson_text_rows


def test_sort_holds_at_most_one_run_in_memory(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows = [{"k": rng.randrange(100), "i": i} for i in range(1000)]
    sorter = ExternalSorter(tmp_path / "sort", run_rows=64)
    result = list(sorter.sort(iter(rows), key=lambda row: row["k"]))
    assert result == sorted(rows, key=lambda row: row["k"])  # stable: equal keys keep input order
    assert sorter.peak_rows_in_memory == 64
    assert sorter.run_count == 16  # ceil(1000 / 64) runs spilled
    assert list((tmp_path / "sort").iterdir()) == []


def test_runs_past_the_fan_in_are_merged_in_passes(tmp_path: Path) -> None:
    rows = [{"k": (i * 37) % 101, "i": i} for i in range(500)]
    sorter = ExternalSorter(tmp_path, run_rows=10, fan_in=4)
    result = list(sorter.sort(rows, key=lambda row: (row["k"], row["i"])))
    assert result == sorted(rows, key=lambda row: (row["k"], row["i"]))
    assert sorter.run_count == 50
    assert list(tmp_path.iterdir()) == []


def test_an_empty_input_sorts_to_nothing(tmp_path: Path) -> None:
    sorter = ExternalSorter(tmp_path, run_rows=10)
    assert list(sorter.sort([], key=lambda row: row["k"])) == []
    assert sorter.run_count == 0


def test_a_sort_operation_spills_runs_of_the_engines_budget(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "root")
    engine = OperationEngine(tmp_path / "root", cluster, max_parallel_jobs=1)
    try:
        engine.sort_run_rows = 4  # the 50 rows go through runs of 4 spilled to disk
        cluster.create("table", "//in", recursive=True)
        rows = [{"k": (i * 7) % 10, "i": i} for i in range(50)]
        cluster.write_table("//in", rows)
        spec = {"input_table_paths": ["//in"], "output_table_path": "//out", "sort_by": ["k"]}
        cluster.create("table", "//out")
        operation_id = engine.start_operation("sort", spec)
        assert engine.wait(operation_id, timeout=60) == "completed"
        assert list(cluster.read_rows("//out")) == sorted(rows, key=lambda row: row["k"])
    finally:
        engine.close()
        cluster.close()


@pytest.mark.slow
def test_a_million_row_sort_keeps_the_server_memory_flat(tmp_path: Path) -> None:
    """A ``sort`` of 1,000,000 rows through the client: the server's peak memory grows by about
    one sort run (100,000 rows), not by the table (some 350 MB of rows held at once)."""
    if REAL_PROXY:
        pytest.skip(LOCAL_ONLY_REASON)
    count = 1_000_000
    with LocalYT(root=tmp_path / "yt") as local_yt:
        assert local_yt.pid is not None
        client = local_yt.client()
        write_yson_text_rows(
            client,
            "//tmp/unsorted",
            (b'{"k"=%d;"s"="%040d"};' % ((n * 7_919) % count, n) for n in range(count)),
        )
        before = peak_rss_kib(local_yt.pid)
        client.run_sort("//tmp/unsorted", "//tmp/sorted", sort_by=["k"])
        growth_mib = (peak_rss_kib(local_yt.pid) - before) / 1024

        assert client.get("//tmp/sorted/@sorted_by") == ["k"]
        keys = (row["k"] for row in client.read_table("//tmp/sorted"))
        assert all(key == expected for key, expected in zip(keys, range(count), strict=True))
    assert growth_mib < 160, f"server peak memory grew by {growth_mib:.0f} MiB"
