"""Transactions and locks of the local YT state layer, called directly (no HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from yt_assets.local_yt.cluster import Cluster
from yt_assets.local_yt.exceptions import (
    ConcurrentTransactionLockConflict,
    NoSuchTransaction,
    ResolveError,
    SameTransactionLockConflict,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    instance = Cluster(tmp_path / "root")
    yield instance
    instance.close()


def values(cluster: Cluster, path: str, transaction_id: str | None = None) -> list[int]:
    return [row["v"] for row in cluster.read_table(path, transaction_id=transaction_id)[1]]


def test_changes_are_invisible_until_commit(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"v": 1}])
    tx = cluster.start_transaction(timeout=60000)
    cluster.write_table("<append=%true>//tmp/t", [{"v": 2}], transaction_id=tx)
    cluster.create("map_node", "//tmp/dir", transaction_id=tx)
    cluster.set("//tmp/t/@flag", True, transaction_id=tx)
    assert values(cluster, "//tmp/t") == [1]
    assert values(cluster, "//tmp/t", tx) == [1, 2]
    assert not cluster.exists("//tmp/dir")
    assert cluster.exists("//tmp/dir", transaction_id=tx)
    assert not cluster.exists("//tmp/t/@flag")
    cluster.commit_transaction(tx)
    assert values(cluster, "//tmp/t") == [1, 2]
    assert cluster.exists("//tmp/dir")
    assert cluster.get("//tmp/t/@flag") is True
    with pytest.raises(NoSuchTransaction) as error:
        cluster.commit_transaction(tx)
    assert error.value.code == 11000


def test_abort_rolls_back_everything(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"v": 1}])
    tx = cluster.start_transaction()
    cluster.write_table("//tmp/t", [{"v": 9}], transaction_id=tx)
    cluster.create("table", "//tmp/new", transaction_id=tx)
    cluster.remove("//tmp/t", transaction_id=tx)
    assert not cluster.exists("//tmp/t", transaction_id=tx)
    assert cluster.exists("//tmp/t")
    cluster.abort_transaction(tx)
    assert values(cluster, "//tmp/t") == [1]
    assert not cluster.exists("//tmp/new")
    assert cluster.get("//tmp/t/@lock_count") == 0


def test_nested_transactions_merge_into_parent(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    outer = cluster.start_transaction()
    inner = cluster.start_transaction(parent_id=outer)
    cluster.write_table("//tmp/t", [{"v": 1}], transaction_id=inner)
    assert values(cluster, "//tmp/t", outer) == []
    cluster.commit_transaction(inner)
    assert values(cluster, "//tmp/t", outer) == [1]
    assert values(cluster, "//tmp/t") == []
    second = cluster.start_transaction(parent_id=outer)
    cluster.write_table("<append=%true>//tmp/t", [{"v": 2}], transaction_id=second)
    cluster.commit_transaction(second)
    aborted = cluster.start_transaction(parent_id=outer)
    cluster.write_table("<append=%true>//tmp/t", [{"v": 3}], transaction_id=aborted)
    cluster.abort_transaction(aborted)
    cluster.commit_transaction(outer)
    assert values(cluster, "//tmp/t") == [1, 2]


def test_aborting_a_parent_aborts_its_children(cluster: Cluster) -> None:
    outer = cluster.start_transaction()
    inner = cluster.start_transaction(parent_id=outer)
    cluster.abort_transaction(outer)
    with pytest.raises(NoSuchTransaction):
        cluster.ping_transaction(inner)


def test_atomic_replace_with_move_force(cluster: Cluster) -> None:
    cluster.create("table", "//home/dst", recursive=True)
    cluster.write_table("//home/dst", [{"v": 1}])
    old_id = cluster.get("//home/dst/@id")
    tx = cluster.start_transaction()
    cluster.create("table", "//home/tmp_dst", transaction_id=tx)
    cluster.write_table("//home/tmp_dst", [{"v": 2}, {"v": 3}], transaction_id=tx)
    cluster.move("//home/tmp_dst", "//home/dst", force=True, transaction_id=tx)
    assert values(cluster, "//home/dst") == [1]
    assert values(cluster, "//home/dst", tx) == [2, 3]
    assert not cluster.exists("//home/tmp_dst")
    cluster.commit_transaction(tx)
    assert values(cluster, "//home/dst") == [2, 3]
    assert cluster.get("//home/dst/@id") != old_id
    assert cluster.list("//home") == ["dst"]


def test_sibling_transactions_appending_to_one_table_all_land(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    outer = cluster.start_transaction()
    siblings = [cluster.start_transaction(parent_id=outer) for _ in range(4)]
    for index, tx in enumerate(siblings):
        cluster.write_table("<append=%true>//tmp/t", [{"v": index}], transaction_id=tx)
    for tx in reversed(siblings):
        cluster.commit_transaction(tx)
    cluster.commit_transaction(outer)
    assert sorted(values(cluster, "//tmp/t")) == [0, 1, 2, 3]

    top_level = [cluster.start_transaction() for _ in range(3)]
    for index, tx in enumerate(top_level):
        cluster.write_table("<append=%true>//tmp/t", [{"v": 10 + index}], transaction_id=tx)
    for tx in top_level:
        cluster.commit_transaction(tx)
    assert sorted(values(cluster, "//tmp/t")) == [0, 1, 2, 3, 10, 11, 12]


def test_parallel_writer_pattern_temp_tables_and_concatenate(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/out")
    main = cluster.start_transaction()
    temps = []
    for index in range(3):
        chunk_tx = cluster.start_transaction(parent_id=main)
        temp = f"//tmp/out.part{index}"
        cluster.create("table", temp, transaction_id=chunk_tx)
        cluster.write_table(temp, [{"v": index}], transaction_id=chunk_tx)
        cluster.commit_transaction(chunk_tx)
        temps.append(temp)
    cluster.concatenate(temps, "//tmp/out", transaction_id=main)
    for temp in temps:
        cluster.remove(temp, transaction_id=main)
    assert values(cluster, "//tmp/out") == []
    cluster.commit_transaction(main)
    assert values(cluster, "//tmp/out") == [0, 1, 2]
    assert cluster.list("//tmp") == ["out"]


def test_snapshot_lock_keeps_the_old_version(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    cluster.write_table("//tmp/t", [{"v": 1}])
    reader = cluster.start_transaction()
    lock = cluster.lock("//tmp/t", mode="snapshot", transaction_id=reader)
    assert set(lock) == {"lock_id", "node_id", "revision"}
    cluster.write_table("//tmp/t", [{"v": 2}])
    writer = cluster.start_transaction()
    cluster.write_table("<append=%true>//tmp/t", [{"v": 3}], transaction_id=writer)
    cluster.commit_transaction(writer)
    cluster.remove("//tmp/t")
    assert values(cluster, f"#{lock['node_id']}", reader) == [1]
    with pytest.raises(SameTransactionLockConflict):
        cluster.write_table(f"#{lock['node_id']}", [{"v": 4}], transaction_id=reader)
    cluster.commit_transaction(reader)
    with pytest.raises(ResolveError):
        cluster.get(f"#{lock['node_id']}")


def test_lock_conflicts_raise_at_once_naming_node_and_holder(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    holder = cluster.start_transaction()
    cluster.write_table("//tmp/t", [{"v": 1}], transaction_id=holder)  # exclusive
    other = cluster.start_transaction()
    with pytest.raises(ConcurrentTransactionLockConflict) as error:
        cluster.write_table("<append=%true>//tmp/t", [{"v": 2}], transaction_id=other)
    assert error.value.code == 402
    assert "//tmp/t" in error.value.message and holder in error.value.message
    with pytest.raises(ConcurrentTransactionLockConflict):
        cluster.write_table("//tmp/t", [{"v": 3}])  # no transaction: checked too
    with pytest.raises(ConcurrentTransactionLockConflict):
        cluster.remove("//tmp/t")
    snapshot_reader = cluster.start_transaction()
    cluster.lock("//tmp/t", mode="snapshot", transaction_id=snapshot_reader)  # never conflicts
    with pytest.raises(SameTransactionLockConflict):
        cluster.lock("//tmp/t", mode="shared", transaction_id=snapshot_reader)
    # Nested transactions of the holder may take the lock.
    nested = cluster.start_transaction(parent_id=holder)
    cluster.write_table("<append=%true>//tmp/t", [{"v": 4}], transaction_id=nested)
    cluster.commit_transaction(nested)
    cluster.commit_transaction(holder)
    cluster.write_table("<append=%true>//tmp/t", [{"v": 5}], transaction_id=other)
    cluster.commit_transaction(other)
    assert values(cluster, "//tmp/t") == [1, 4, 5]


def test_shared_locks_with_child_and_attribute_keys(cluster: Cluster) -> None:
    first, second = cluster.start_transaction(), cluster.start_transaction()
    cluster.create("table", "//tmp/a", transaction_id=first)
    cluster.create("table", "//tmp/b", transaction_id=second)  # other child key: fine
    with pytest.raises(ConcurrentTransactionLockConflict):
        cluster.create("table", "//tmp/a", transaction_id=second)
    cluster.lock("//tmp", mode="shared", attribute_key="x", transaction_id=first)
    with pytest.raises(ConcurrentTransactionLockConflict):
        cluster.set("//tmp/@x", 1, transaction_id=second)
    cluster.set("//tmp/@y", 1, transaction_id=second)
    with pytest.raises(ConcurrentTransactionLockConflict):
        cluster.lock("//tmp", mode="exclusive", transaction_id=second)
    cluster.commit_transaction(first)
    cluster.commit_transaction(second)
    assert cluster.list("//tmp") == ["a", "b"]


def test_expired_transaction_is_aborted(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")
    tx = cluster.start_transaction(timeout=200)
    cluster.write_table("//tmp/t", [{"v": 1}], transaction_id=tx)
    cluster.ping_transaction(tx)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            cluster.ping_transaction(tx)
        except NoSuchTransaction:
            break
        time.sleep(0.3)  # longer than the timeout: the ping comes too late
    else:
        pytest.fail("the transaction never expired")
    cluster.write_table("//tmp/t", [{"v": 2}])  # its exclusive lock is gone
    assert values(cluster, "//tmp/t") == [2]


def test_threads_appending_without_transactions_all_land(cluster: Cluster) -> None:
    cluster.create("table", "//tmp/t")

    def append(offset: int) -> None:
        for index in range(10):
            cluster.write_table("<append=%true>//tmp/t", [{"v": offset + index}])

    threads = [threading.Thread(target=append, args=(100 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(values(cluster, "//tmp/t")) == sorted(
        100 * n + i for n in range(4) for i in range(10)
    )
