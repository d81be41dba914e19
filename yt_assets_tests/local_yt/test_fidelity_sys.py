"""``//sys/transactions`` and ``//sys/operations`` as a client reads them, and transactions
addressed by id (``#<transaction-id>``). Through the unmodified client; runs against a real
cluster too."""

from __future__ import annotations

import pytest
import yt.wrapper as yt

from .conftest import YtEnv


def test_live_transactions_are_listed_and_addressable(yt_env: YtEnv) -> None:
    client = yt_env.client
    transaction = client.start_transaction(attributes={"title": "fidelity", "marker": 7})
    nested = client.start_transaction(parent_transaction=transaction)
    try:
        assert {transaction, nested} <= set(client.list("//sys/transactions"))
        assert client.exists(f"//sys/transactions/{transaction}")
        assert client.get(f"#{transaction}/@title") == "fidelity"
        assert client.get(f"#{transaction}/@marker") == 7
        assert client.get(f"#{transaction}/@type") == "transaction"
        assert client.get(f"#{nested}/@type") == "nested_transaction"
        assert client.get(f"#{nested}/@parent_id") == transaction
        assert nested in client.get(f"//sys/transactions/{transaction}/@nested_transaction_ids")
    finally:
        client.abort_transaction(transaction)
    assert not client.exists(f"//sys/transactions/{transaction}")
    assert not client.exists(f"#{nested}")
    with pytest.raises(yt.YtResponseError) as caught:
        client.get(f"#{transaction}/@title")
    assert caught.value.is_resolve_error()


def test_an_operation_is_under_its_sys_operations_bucket(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("in"), yt_env.path("out")
    client.write_table(source, [{"a": 1}])
    operation = client.run_map("cat", source, destination, format="json")
    buckets = client.list("//sys/operations")
    assert len(buckets) == 256
    bucket = f"{int(operation.id.rsplit('-', 1)[-1], 16) % 256:02x}"
    assert operation.id in client.list(f"//sys/operations/{bucket}")
    assert client.get(f"//sys/operations/{bucket}/{operation.id}/@state") == "completed"
    assert not client.exists(f"//sys/operations/{bucket}/{operation.id}/@no_such_attribute")
