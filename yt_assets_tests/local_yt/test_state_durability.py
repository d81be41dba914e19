"""Durability of the local YT state: restarts, several processes on one root, SIGKILL mid-write,
and writes that stream (memory does not grow with the row count)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from yt_assets.local_yt.cluster import Cluster

SPAWN = multiprocessing.get_context("spawn")


def values(cluster: Cluster, path: str) -> list[int]:
    return [row["v"] for row in cluster.read_table(path)[1]]


def test_restart_keeps_tree_tables_files_and_transactions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cluster = Cluster(root)
    cluster.create(
        "table", "//home/t", recursive=True, attributes={"schema": [{"name": "v", "type": "int64"}]}
    )
    cluster.write_table("//home/t", [{"v": 1}, {"v": 2}])
    cluster.create("file", "//home/f")
    cluster.write_file("//home/f", [b"data"])
    cluster.set("//home/t/@note", "kept")
    tx = cluster.start_transaction(timeout=600000)
    cluster.write_table("<append=%true>//home/t", [{"v": 3}], transaction_id=tx)
    cluster.close()

    reopened = Cluster(root)
    try:
        assert values(reopened, "//home/t") == [1, 2]
        assert reopened.get("//home/t/@note") == "kept"
        assert reopened.get("//home/t/@schema")[0]["name"] == "v"
        assert b"".join(reopened.read_file("//home/f")) == b"data"
        reopened.commit_transaction(tx)
        assert values(reopened, "//home/t") == [1, 2, 3]
    finally:
        reopened.close()


def _append_many(root: str, own_table: str, offset: int, count: int) -> None:
    cluster = Cluster(root)
    try:
        for index in range(count):
            rows = [{"v": offset + index * 10 + n} for n in range(10)]
            cluster.write_table("<append=%true>//tmp/shared", rows)
            cluster.write_table(f"<append=%true>{own_table}", rows)
            tx = cluster.start_transaction(timeout=60000)
            cluster.write_table("<append=%true>//tmp/shared_tx", rows, transaction_id=tx)
            cluster.commit_transaction(tx)
    finally:
        cluster.close()


def test_two_processes_append_to_one_table_and_write_their_own(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    cluster = Cluster(root)
    for name in ("shared", "shared_tx", "own0", "own1"):
        cluster.create("table", f"//tmp/{name}")
    processes = [
        SPAWN.Process(target=_append_many, args=(root, f"//tmp/own{n}", n * 100000, 20))
        for n in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    expected = {n * 100000 + i for n in range(2) for i in range(200)}
    assert sorted(values(cluster, "//tmp/shared")) == sorted(expected)
    assert sorted(values(cluster, "//tmp/shared_tx")) == sorted(expected)
    for n in range(2):
        assert values(cluster, f"//tmp/own{n}") == [n * 100000 + i for i in range(200)]
    assert cluster.get("//tmp/shared/@row_count") == 400
    cluster.close()


def _write_slowly_until_killed(root: str, started_marker: str) -> None:
    cluster = Cluster(root)

    def rows() -> Iterator[dict]:
        for index in range(1000):
            yield {"v": 1000 + index}
        Path(started_marker).write_text("started")
        while True:
            time.sleep(1)
            yield {"v": -1}

    cluster.write_table("//tmp/t", rows())


def test_sigkill_mid_write_leaves_previous_content_and_the_orphan_is_collected(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    cluster = Cluster(root)
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"v": 1}, {"v": 2}])
    cluster.close()
    chunks_before = set(os.listdir(root / "chunks"))

    marker = tmp_path / "started"
    writer = SPAWN.Process(target=_write_slowly_until_killed, args=(str(root), str(marker)))
    writer.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert writer.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)
    assert writer.exitcode == -signal.SIGKILL
    assert set(os.listdir(root / "chunks")) - chunks_before  # the half-written chunk is there

    reopened = Cluster(root, orphan_min_age_seconds=0)
    try:
        assert values(reopened, "//tmp/t") == [1, 2]
        assert set(os.listdir(root / "chunks")) == chunks_before  # the orphan was collected
        reopened.write_table("<append=%true>//tmp/t", [{"v": 3}])  # no stale lock
        assert values(reopened, "//tmp/t") == [1, 2, 3]
    finally:
        reopened.close()


def test_unreferenced_chunks_are_collected_after_the_grace_period(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "root", unreferenced_grace_seconds=0)
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"v": 1}])
    cluster.write_table("//tmp/t", [{"v": 2}])  # the first chunk is now unreferenced
    assert len(os.listdir(tmp_path / "root" / "chunks")) == 2
    cluster.collect_garbage()  # marks it
    cluster.collect_garbage()  # deletes it
    assert len(os.listdir(tmp_path / "root" / "chunks")) == 1
    assert values(cluster, "//tmp/t") == [2]
    cluster.close()


def test_garbage_is_collected_in_the_background_after_mutations(tmp_path: Path) -> None:
    chunks = tmp_path / "root" / "chunks"
    with Cluster(
        tmp_path / "root", unreferenced_grace_seconds=0, garbage_collection_interval_seconds=0
    ) as cluster:
        cluster.create("table", "//tmp/t")
        for value in range(5):
            cluster.write_table("//tmp/t", [{"v": value}])
        deadline = time.monotonic() + 30
        while len(os.listdir(chunks)) > 1 and time.monotonic() < deadline:
            cluster.set("//tmp/@tick", time.monotonic())  # mutations trigger collections
            time.sleep(0.05)
        assert len(os.listdir(chunks)) == 1
        assert values(cluster, "//tmp/t") == [4]


def _peak_memory_of_write_and_read(cluster: Cluster, path: str, count: int) -> int:
    def rows() -> Iterator[dict]:
        for index in range(count):
            yield {"id": index, "payload": "x" * 40, "score": index * 0.5}

    tracemalloc.start()
    try:
        written = cluster.write_table(path, rows())
        read = sum(1 for _ in cluster.read_table(path)[1])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == read == count
    return peak


def _peak_memory_in_fresh_process(root: str, small: int, large: int) -> tuple[int, int]:
    cluster = Cluster(Path(root))
    schema = [
        {"name": "id", "type": "int64"},
        {"name": "payload", "type": "string"},
        {"name": "score", "type": "double"},
    ]
    cluster.create("table", "//tmp/small", attributes={"schema": schema})
    cluster.create("table", "//tmp/large", attributes={"schema": schema})
    small_peak = _peak_memory_of_write_and_read(cluster, "//tmp/small", small)
    large_peak = _peak_memory_of_write_and_read(cluster, "//tmp/large", large)
    cluster.close()
    return small_peak, large_peak


@pytest.mark.parametrize("small, large", [(20_000, 80_000)])
def test_writes_and_reads_stream(tmp_path: Path, small: int, large: int) -> None:
    # Measured in a fresh process: tracemalloc counts every thread's allocations, and threads
    # left by other tests of the session (servers, pools) would blur the peak.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        small_peak, large_peak = pool.apply(
            _peak_memory_in_fresh_process, (str(tmp_path / "root"), small, large)
        )
    # Four times the rows must not need anywhere near four times the memory.
    assert large_peak < 1.5 * small_peak + 256 * 1024, (small_peak, large_peak)
