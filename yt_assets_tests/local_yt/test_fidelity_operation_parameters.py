"""``update_operation_parameters`` through the unmodified client: a running operation's pool and
annotations change and ``get_operation`` shows them; unknown keys and finished operations are
refused. Runs against a real cluster too (the pool must then exist there)."""

from __future__ import annotations

import pytest
import yt.wrapper as yt

from .conftest import YtEnv


def test_update_a_running_operations_parameters(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("in"), yt_env.path("out")
    client.write_table(source, [{"a": 1}])
    operation = client.run_map("sleep 60; cat", source, destination, format="json", sync=False)
    try:
        client.update_operation_parameters(operation.id, {"annotations": {"owner": "tests"}})
        runtime = client.get_operation(operation.id)["runtime_parameters"]
        assert runtime["annotations"] == {"owner": "tests"}
        if yt_env.is_local:
            with pytest.raises(yt.YtResponseError) as caught:
                client.update_operation_parameters(operation.id, {"no_such_parameter": 1})
            assert "no_such_parameter" in str(caught.value)
            client.update_operation_parameters(operation.id, {"pool": "other"})
            assert client.get_operation(operation.id)["pool"] == "other"
    finally:
        client.abort_operation(operation.id)
    with pytest.raises(yt.YtResponseError):
        client.update_operation_parameters(operation.id, {"annotations": {}})
