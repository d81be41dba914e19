"""The suite's guards against what a test leaves behind (``leftovers``): read transactions that
would outlive their test, and a Dagster defs-state storage whose instance is gone."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import dagster as dg
import pytest
import yt.wrapper as yt
import yt.wrapper.transaction as yt_transaction

from yt_assets.local_yt import LocalYT
from yt_assets_tests.leftovers import (
    abort_dropped_read_transactions,
    clear_stale_dagster_state_storage,
)


def _aborter_asleep(client: yt.YtClient) -> None:
    """yt.wrapper's aborter thread asleep, or gone, with nothing queued: a read dropped now waits
    in its queue. (The thread takes the newest transaction first and sleeps 10 s only once the
    queue is empty, so earlier leftovers are cleared first; a thread that an earlier failed abort
    ended stays gone, and its queue is then only ours.)"""
    abort_dropped_read_transactions()
    starter = yt.Transaction(client=client)
    yt_transaction.add_transaction_to_abort(starter)
    aborter = yt_transaction._transaction_aborter
    deadline = time.monotonic() + 15
    while not starter._finished and aborter.is_alive():  # aborted by the thread, which then sleeps
        assert time.monotonic() < deadline, "yt.wrapper's aborter thread took nothing"
        time.sleep(0.05)
    abort_dropped_read_transactions()


def test_a_dropped_read_stream_has_its_transaction_aborted_at_once(tmp_path: Path) -> None:
    with LocalYT(root=tmp_path / "yt") as local_yt:
        client = local_yt.client()
        table = "//tmp/read_me"
        # Large enough (4 MB) that the first row comes back before the response is read through.
        client.write_table(table, ({"n": n, "pad": "x" * 1_000} for n in range(4_000)))
        _aborter_asleep(client)

        assert next(iter(client.read_table(table)))["n"] == 0  # the stream dropped after a row
        gc.collect()
        [lock] = client.get(f"{table}/@locks")  # the read's snapshot lock, still held
        assert abort_dropped_read_transactions() == [lock["transaction_id"]]

        with pytest.raises(yt.YtResponseError) as raised:
            client.ping_transaction(lock["transaction_id"])
        assert raised.value.is_no_such_transaction()
        assert client.get(f"{table}/@locks") == []
        assert abort_dropped_read_transactions() == []


@dg.asset
def _one() -> int:
    return 1


def test_a_stale_dagster_state_storage_is_cleared() -> None:
    # Two instance contexts that end out of order leave the first one's storage current.
    first_context, second_context = dg.instance_for_test(), dg.instance_for_test()
    first = first_context.__enter__()
    second_context.__enter__()
    first_context.__exit__(None, None, None)
    second_context.__exit__(None, None, None)
    del first, first_context
    gc.collect()
    with pytest.raises(dg.DagsterInvariantViolationError, match="undefined DagsterInstance"):
        dg.materialize([_one])

    assert clear_stale_dagster_state_storage()
    assert dg.materialize([_one]).success
    assert not clear_stale_dagster_state_storage()  # nothing stale now
