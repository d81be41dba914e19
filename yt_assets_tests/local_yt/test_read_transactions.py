"""The suite's guard against read transactions that outlive their test (``read_transactions``).

Runs against a real cluster too (``YT_PROXY``): it only reads a table and checks that the
transaction yt.wrapper opened for a read dropped half-way is gone."""

from __future__ import annotations

import gc

import yt.wrapper as yt

from yt_assets_tests.read_transactions import abort_dropped_read_transactions

from .conftest import YtEnv


def test_a_dropped_read_stream_has_its_transaction_aborted_at_once(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("read_me")
    # Large enough (4 MB) that the first row comes back before the response is read to its end.
    client.write_table(table, ({"n": n, "pad": "x" * 1_000} for n in range(4_000)))
    abort_dropped_read_transactions()  # nothing of an earlier test left over

    assert next(iter(client.read_table(table)))["n"] == 0  # the stream dropped after one row
    gc.collect()
    assert client.get(f"{table}/@lock_count") == 1  # the read's snapshot lock, still held
    [transaction_id] = abort_dropped_read_transactions()

    try:
        client.ping_transaction(transaction_id)
    except yt.YtResponseError as error:
        assert error.is_no_such_transaction()
    else:
        raise AssertionError(f"transaction {transaction_id} is still alive")
    assert client.get(f"{table}/@lock_count") == 0
    assert abort_dropped_read_transactions() == []
