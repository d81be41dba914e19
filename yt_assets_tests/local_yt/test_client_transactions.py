"""Transactions through the real ``yt.wrapper`` client: isolation, abort, atomic replace."""

from __future__ import annotations

import pytest
import yt.wrapper as yt

from .conftest import YtEnv


def test_uncommitted_writes_are_invisible_to_others(yt_env: YtEnv) -> None:
    writer = yt_env.client
    reader = yt_env.new_client()
    table = yt_env.path("isolated")
    writer.write_table(table, [{"v": "old"}])
    with writer.Transaction():
        writer.write_table(table, [{"v": "new"}])
        assert list(writer.read_table(table)) == [{"v": "new"}]
        assert list(reader.read_table(table)) == [{"v": "old"}]
        writer.create("map_node", yt_env.path("created_inside"))
        assert not reader.exists(yt_env.path("created_inside"))
    assert list(reader.read_table(table)) == [{"v": "new"}]
    assert reader.exists(yt_env.path("created_inside"))


def test_abort_rolls_back(yt_env: YtEnv) -> None:
    client = yt_env.client
    table = yt_env.path("rolled_back")
    client.write_table(table, [{"v": 1}])
    with pytest.raises(RuntimeError), client.Transaction():
        client.write_table(yt.TablePath(table, append=True), [{"v": 2}])
        client.set(yt_env.path("doc"), {"x": 1})
        raise RuntimeError("abort the transaction")
    assert list(client.read_table(table)) == [{"v": 1}]
    assert not client.exists(yt_env.path("doc"))


def test_nested_transactions(yt_env: YtEnv) -> None:
    client = yt_env.client
    node = yt_env.path("nested")
    with client.Transaction():
        client.create("map_node", node)
        with pytest.raises(RuntimeError), client.Transaction():
            client.create("map_node", node + "/inner_aborted")
            raise RuntimeError("abort the inner transaction")
        with client.Transaction():
            client.create("map_node", node + "/inner_committed")
        assert client.list(node) == ["inner_committed"]
    assert client.list(node) == ["inner_committed"]


def test_atomic_replace_through_temporary_table(yt_env: YtEnv) -> None:
    client = yt_env.client
    reader = yt_env.new_client()
    destination = yt_env.path("published")
    client.write_table(destination, [{"version": 1}])
    with client.Transaction():
        temporary = yt_env.path("published.tmp")
        client.create("table", temporary)
        client.write_table(temporary, [{"version": 2}, {"version": 2}])
        client.move(temporary, destination, force=True)
        assert list(reader.read_table(destination)) == [{"version": 1}]
    assert list(reader.read_table(destination)) == [{"version": 2}, {"version": 2}]
    assert not reader.exists(yt_env.path("published.tmp"))


def test_explicit_transaction_commands(yt_env: YtEnv) -> None:
    client = yt_env.client
    transaction_id = client.start_transaction(timeout=60_000)
    client.ping_transaction(transaction_id)
    client.commit_transaction(transaction_id)
    with pytest.raises(yt.YtResponseError) as error:
        client.ping_transaction(transaction_id)
    assert error.value.is_no_such_transaction()


def test_concurrent_writes_to_the_same_table_conflict_or_serialise(yt_env: YtEnv) -> None:
    """Two transactions replacing one table: a lock conflict, never a silent mix."""
    first = yt_env.client
    second = yt_env.new_client()
    table = yt_env.path("contended")
    first.create("table", table)
    with first.Transaction():
        first.write_table(table, [{"who": "first"}])
        with pytest.raises(yt.YtResponseError) as error, second.Transaction():
            second.write_table(table, [{"who": "second"}])
        assert error.value.is_concurrent_transaction_lock_conflict()
    assert list(second.read_table(table)) == [{"who": "first"}]
