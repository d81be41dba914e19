"""User job statistics (fd 5) aggregated into an operation's progress, as a cluster does.

Runs against the local YT, or a real cluster when ``YT_PROXY`` is set (see ``conftest.py``).
"""

from __future__ import annotations

import yt.wrapper as yt
import yt.yson as yson

from yt_assets.local_yt.job_statistics import aggregate_v2, parse_user_statistics
from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.progress import custom_statistic_sums, statistic_sum
from yt_assets.yt.shipping import shipping
from yt_assets.yt_jobs.user_statistics import dumps_statistics
from yt_assets_tests.job_processors import add_ten
from yt_assets_tests.local_yt.conftest import YtEnv


def test_statistics_written_to_fd_5_are_aggregated_per_job_state(yt_env: YtEnv) -> None:
    client = yt_env.client
    source, destination = yt_env.path("in"), yt_env.path("out")
    client.write_table(source, [{"n": n} for n in range(6)])
    # Each job writes its row count twice (summed in the job) and one constant.
    command = (
        "cat > rows.json; cat rows.json; rows=$(wc -l < rows.json); "
        'printf \'{"demo"={"rows"=%d;"jobs"=1;};};\' $rows >&5; '
        'printf \'{"demo"={"rows"=%d;};};\' $rows >&5'
    )
    operation = client.run_map(command, source, destination, format="json", spec={"job_count": 3})

    statistics = operation.get_job_statistics()  # yt.wrapper reads progress/job_statistics
    by_state = statistics["custom"]["demo"]["rows"]["$"]["completed"]
    [summary] = by_state.values()
    assert summary["sum"] == 12 and summary["count"] == 3
    assert summary["min"] == summary["max"] == 4
    assert custom_statistic_sums(statistics) == {"demo/rows": 12, "demo/jobs": 3}
    assert statistic_sum(statistics, "data/input/row_count") == 6
    assert statistic_sum(statistics, "data/output/0/row_count") == 6
    assert statistic_sum(statistics, "time/exec") is not None

    v2 = client.get_operation(operation.id, attributes=["progress"])["progress"][
        "job_statistics_v2"
    ]
    [entry] = v2["custom"]["demo"]["jobs"]
    assert entry["summary"]["sum"] == 3 and entry["summary"]["count"] == 3
    assert entry["tags"]["job_state"] == "completed"


def test_job_side_writer_matches_what_yt_wrapper_writes() -> None:
    ours = dumps_statistics({"s3/objects": 2, "s3/bytes": 10, "plain": 1})
    assert list(yson.loads(ours, yson_type="list_fragment")) == [
        {"s3": {"objects": 2, "bytes": 10}, "plain": 1}
    ]
    theirs = yson.dumps(
        [{"s3": {"objects": 2, "bytes": 10}, "plain": 1}], yson_type="list_fragment"
    )
    assert parse_user_statistics(ours) == parse_user_statistics(theirs)


def test_malformed_statistics_keep_what_parsed() -> None:
    values, error = parse_user_statistics(b'{"a"=1;};{"b"=')
    assert error is not None and "Malformed" in error
    assert values in ({}, {"custom/a": 1})
    assert aggregate_v2([("completed", "map", {"custom/a": 1, "custom/a/b": 2})])["custom"]["a"]


def test_yt_wrapper_job_preparation_statistic_is_kept(yt_env: YtEnv) -> None:
    """yt.wrapper's own Python jobs write ``python_job_preparation_time`` to fd 5."""
    client = yt_env.client
    source, destination = yt_env.path("in"), yt_env.path("out")
    client.write_table(source, [{"x": 1}])
    with shipping(client, add_ten):  # jobs run a bare python3: ship what the job needs
        operation = client.run_map(add_ten, source, destination, format=JOB_FORMAT)
    statistics = operation.get_job_statistics()
    assert "python_job_preparation_time" in statistics.get("custom", {})
    assert isinstance(operation, yt.Operation)
