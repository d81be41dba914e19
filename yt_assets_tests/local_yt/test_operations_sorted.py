"""The operations chained after a listing, through the unmodified client: ``sort``, ``merge``,
``erase``, ``reduce``, ``join_reduce`` and ``map_reduce`` (YT's key order across types, sorted
outputs, groups that never straddle two jobs, foreign tables, YT's error on unsorted input).
The same tests run against a real cluster with ``YT_PROXY`` set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yt.wrapper as yt

from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.shipping import shipping
from yt_assets_tests.fidelity_job_functions import count_by_key

from .conftest import LOCAL_ONLY_REASON, YtEnv

NO_RETRY = {"max_failed_job_count": 1}

# A reducer command: one {"k", "n"} row per run of equal "k" in its input (JSON lines); a group
# cut across two jobs shows up as two rows for one key.
COUNT_RUNS = """python3 -c '
import sys, json
last, n = None, 0
for line in sys.stdin:
    row = json.loads(line)
    if "$attributes" in row:
        continue
    if n and row["k"] != last:
        print(json.dumps({"k": last, "n": n}))
        n = 0
    last, n = row["k"], n + 1
if n:
    print(json.dumps({"k": last, "n": n}))
'"""

# A reducer command: each input row with "t", the input table it came from (table switches).
TAG_TABLE = """python3 -c '
import sys, json
table = 0
for line in sys.stdin:
    row = json.loads(line)
    if "$attributes" in row:
        table = row["$attributes"].get("table_index", table)
        continue
    row["t"] = table
    print(json.dumps(row))
'"""

# A mapper command: one {"w": word} row per word of the "text" column.
SPLIT_WORDS = """python3 -c '
import sys, json
for line in sys.stdin:
    for word in json.loads(line)["text"].split():
        print(json.dumps({"w": word, "n": 1}))
'"""

# A combiner/reducer command: sums "n" per run of equal "w".
SUM_WORDS = """python3 -c '
import sys, json
last, total = None, 0
for line in sys.stdin:
    row = json.loads(line)
    if "$attributes" in row:
        continue
    if last is not None and row["w"] != last:
        print(json.dumps({"w": last, "n": total}))
        total = 0
    last, total = row["w"], total + row["n"]
if last is not None:
    print(json.dumps({"w": last, "n": total}))
'"""


def _sorted_table(env: YtEnv, name: str, rows: list[dict[str, Any]], key: str = "k") -> str:
    path = env.path(name)
    env.client.write_table(yt.TablePath(path, sorted_by=[key]), rows)
    return path


def _key_columns(env: YtEnv, path: str) -> list[tuple[str, str | None]]:
    schema = env.client.get(path + "/@schema")
    return [(column["name"], column.get("sort_order")) for column in schema]


# ------------------------------------------------------------------------------------ sort


def test_sort_orders_values_of_mixed_types_as_yt_compares_them(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    values: list[Any] = ["b", 2.5, None, True, -3, "a", 10, False, 0.5]
    yt_env.client.write_table(source, [{"k": v, "i": i} for i, v in enumerate(values)])
    yt_env.client.run_sort(source, destination, sort_by=["k"])
    assert [row["k"] for row in yt_env.client.read_table(destination)] == [
        None, -3, 10, 0.5, 2.5, False, True, "a", "b",
    ]  # fmt: skip
    assert yt_env.client.get(destination + "/@sorted_by") == ["k"]
    assert yt_env.client.is_sorted(destination)
    assert ("k", "ascending") in _key_columns(yt_env, destination)


def test_sort_is_stable_and_reads_every_input_with_its_ranges(yt_env: YtEnv) -> None:
    first, second, destination = yt_env.path("a"), yt_env.path("b"), yt_env.path("out")
    yt_env.client.write_table(
        first, [{"k": k, "src": "a", "i": i} for i, k in enumerate([2, 1, 2, 1])]
    )
    yt_env.client.write_table(
        second, [{"k": k, "src": "b", "i": i} for i, k in enumerate([1, 2, 9])]
    )
    ranged = yt.TablePath(second, start_index=0, end_index=2)
    yt_env.client.run_sort([first, ranged], destination, sort_by="k")
    assert [(r["k"], r["src"], r["i"]) for r in yt_env.client.read_table(destination)] == [
        (1, "a", 1), (1, "a", 3), (1, "b", 0), (2, "a", 0), (2, "a", 2), (2, "b", 1),
    ]  # fmt: skip


def test_sort_in_place_keeps_a_strict_schema_with_the_key_first(yt_env: YtEnv) -> None:
    path = yt_env.path("t")
    schema = [{"name": "v", "type": "string"}, {"name": "k", "type": "int64"}]
    yt_env.client.create("table", path, attributes={"schema": schema})
    yt_env.client.write_table(path, [{"v": "x", "k": 3}, {"v": "y", "k": 1}])
    yt_env.client.run_sort(path, sort_by=["k"])
    assert list(yt_env.client.read_table(path)) == [{"k": 1, "v": "y"}, {"k": 3, "v": "x"}]
    assert _key_columns(yt_env, path) == [("k", "ascending"), ("v", None)]
    assert bool(yt_env.client.get(path + "/@schema").attributes["strict"])


def test_sort_needs_sort_by(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"k": 1}])
    with pytest.raises(yt.YtError):
        yt_env.client.run_sort(source, yt_env.path("out"))


# ----------------------------------------------------------------------------------- merge


def test_ordered_merge_concatenates_in_input_order(yt_env: YtEnv) -> None:
    first, second, destination = yt_env.path("a"), yt_env.path("b"), yt_env.path("out")
    yt_env.client.write_table(first, [{"x": 3}, {"x": 1}])
    yt_env.client.write_table(second, [{"x": 2}])
    yt_env.client.run_merge([first, second], destination, mode="ordered")
    assert list(yt_env.client.read_table(destination)) == [{"x": 3}, {"x": 1}, {"x": 2}]
    assert not yt_env.client.is_sorted(destination)


def test_sorted_merge_keeps_the_output_sorted(yt_env: YtEnv) -> None:
    first = _sorted_table(yt_env, "a", [{"k": 1, "s": "a"}, {"k": 3, "s": "a"}])
    second = _sorted_table(yt_env, "b", [{"k": 1, "s": "b"}, {"k": 2, "s": "b"}])
    destination = yt_env.path("out")
    yt_env.client.run_merge([first, second], destination, mode="sorted")
    assert [(r["k"], r["s"]) for r in yt_env.client.read_table(destination)] == [
        (1, "a"), (1, "b"), (2, "b"), (3, "a"),
    ]  # fmt: skip
    assert yt_env.client.get(destination + "/@sorted_by") == ["k"]


def test_sorted_merge_of_an_unsorted_table_fails_with_yts_error(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"k": 2}, {"k": 1}])
    with pytest.raises(yt.YtError, match="is not sorted"):
        yt_env.client.run_merge(source, yt_env.path("out"), mode="sorted", spec=NO_RETRY)


def test_a_merge_combining_chunks_writes_one_chunk_per_job(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": i} for i in range(10)])
    for index in range(3):
        yt_env.client.write_table(yt.TablePath(source, append=True), [{"x": 10 + index}])
    assert yt_env.client.get(source + "/@chunk_count") == 4
    combined = yt_env.path("combined")
    yt_env.client.run_merge(source, combined, spec={"combine_chunks": True})
    assert yt_env.client.get(combined + "/@chunk_count") == 1
    split = yt_env.path("split")
    spec = {"combine_chunks": True}  # one chunk per job
    yt_env.client.run_merge(source, split, job_count=3, mode="ordered", spec=spec)
    assert [row["x"] for row in yt_env.client.read_table(split)] == list(range(13))
    assert yt_env.client.get(split + "/@chunk_count") == 3


def test_merge_gives_the_output_the_inputs_strict_schema(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    schema = [{"name": "x", "type": "int64"}]
    yt_env.client.create("table", source, attributes={"schema": schema})
    yt_env.client.write_table(source, [{"x": 1}])
    yt_env.client.run_merge(source, destination)
    assert [c["name"] for c in yt_env.client.get(destination + "/@schema")] == ["x"]
    assert yt_env.client.get(destination + "/@schema_mode") == "strong"


def test_transform_rewrites_the_table_with_its_rows(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    yt_env.client.write_table(source, [{"x": 1}, {"x": 2}])
    assert yt_env.client.transform(source, destination, compression_codec="zstd_3")
    assert list(yt_env.client.read_table(destination)) == [{"x": 1}, {"x": 2}]
    assert yt_env.client.get(destination + "/@compression_codec") == "zstd_3"


# ----------------------------------------------------------------------------------- erase


def test_erase_removes_a_row_range_and_keeps_the_table_sorted(yt_env: YtEnv) -> None:
    path = _sorted_table(yt_env, "t", [{"k": k} for k in range(6)])
    yt_env.client.run_erase(yt.TablePath(path, start_index=1, end_index=3))
    assert [row["k"] for row in yt_env.client.read_table(path)] == [0, 3, 4, 5]
    assert yt_env.client.get(path + "/@sorted_by") == ["k"]
    yt_env.client.run_erase(path)
    assert yt_env.client.get(path + "/@row_count") == 0
    assert yt_env.client.exists(path)


# ---------------------------------------------------------------------------------- reduce


def test_reduce_over_two_sorted_tables_never_splits_a_group(yt_env: YtEnv) -> None:
    first = _sorted_table(yt_env, "a", [{"k": k} for k in [1, 1, 2, 3, 3, 3, 5]])
    second = _sorted_table(yt_env, "b", [{"k": k} for k in [1, 3, 4, 5, 5]])
    destination = yt_env.path("out")
    yt_env.client.run_reduce(
        COUNT_RUNS, [first, second], destination, reduce_by=["k"], format="json",
        job_count=4, spec=NO_RETRY,
    )  # fmt: skip
    rows = sorted(yt_env.client.read_table(destination), key=lambda row: row["k"])
    assert rows == [
        {"k": 1, "n": 3},
        {"k": 2, "n": 1},
        {"k": 3, "n": 4},
        {"k": 4, "n": 1},
        {"k": 5, "n": 3},
    ]


def test_reduce_gives_rows_in_key_order_with_their_table_index(yt_env: YtEnv) -> None:
    first = _sorted_table(yt_env, "a", [{"k": 1, "v": "a1"}, {"k": 2, "v": "a2"}])
    second = _sorted_table(yt_env, "b", [{"k": 1, "v": "b1"}, {"k": 3, "v": "b3"}])
    destination = yt.TablePath(yt_env.path("out"), sorted_by=["k"])
    yt_env.client.run_reduce(
        TAG_TABLE, [first, second], destination, reduce_by="k", format="json", spec=NO_RETRY
    )
    assert [(r["v"], r["t"]) for r in yt_env.client.read_table(destination)] == [
        ("a1", 0), ("b1", 1), ("a2", 0), ("b3", 1),
    ]  # fmt: skip
    assert yt_env.client.get(yt_env.path("out") + "/@sorted_by") == ["k"]


def test_reduce_over_an_unsorted_table_fails_with_yts_error(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"k": 2}, {"k": 1}])
    with pytest.raises(yt.YtError, match="is not sorted"):
        yt_env.client.run_reduce(
            "cat", source, yt_env.path("out"), reduce_by=["k"], format="json", spec=NO_RETRY
        )


def test_reduce_by_must_prefix_sort_by(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": 1}])
    with pytest.raises(yt.YtError):
        yt_env.client.run_reduce(
            "cat", source, yt_env.path("out"), reduce_by=["x"], sort_by=["k"], format="json"
        )


@pytest.mark.slow  # ships yt.wrapper's job runner to a bare interpreter (about 10 s here)
def test_a_python_reducer_gets_each_group_once(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": k} for k in ["a", "a", "b", "c", "c", "c"]])
    destination = yt_env.path("out")
    with shipping(yt_env.client, count_by_key):  # jobs run a bare python3: ship what they need
        yt_env.client.run_reduce(
            count_by_key, source, destination, reduce_by=["k"], format=JOB_FORMAT, spec=NO_RETRY
        )
    assert list(yt_env.client.read_table(destination)) == [
        {"k": "a", "n": 2}, {"k": "b", "n": 1}, {"k": "c", "n": 3},
    ]  # fmt: skip


def test_join_reduce_brings_matching_foreign_rows_first(yt_env: YtEnv) -> None:
    primary = _sorted_table(
        yt_env, "primary", [{"k": 1, "v": "p1"}, {"k": 2, "v": "p2"}, {"k": 2, "v": "p2b"}]
    )
    foreign = _sorted_table(yt_env, "foreign", [{"k": 0, "v": "f0"}, {"k": 2, "v": "f2"}])
    destination = yt_env.path("out")
    yt_env.client.run_join_reduce(
        TAG_TABLE, [primary, yt.TablePath(foreign, foreign=True)], destination,
        join_by=["k"], format="json", spec=NO_RETRY,
    )  # fmt: skip
    assert [(r["v"], r["t"]) for r in yt_env.client.read_table(destination)] == [
        ("p1", 0), ("f2", 1), ("p2", 0), ("p2b", 0),
    ]  # fmt: skip


def test_reduce_with_a_foreign_table_needs_join_by(yt_env: YtEnv) -> None:
    primary = _sorted_table(yt_env, "primary", [{"k": 1}])
    foreign = _sorted_table(yt_env, "foreign", [{"k": 1}])
    with pytest.raises(yt.YtError):
        yt_env.client.run_reduce(
            "cat", [primary, yt.TablePath(foreign, foreign=True)], yt_env.path("out"),
            reduce_by=["k"], format="json", spec=NO_RETRY,
        )  # fmt: skip


# ------------------------------------------------------------------------------ map_reduce


def test_map_reduce_counts_words_with_a_combiner(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    yt_env.client.write_table(source, [{"text": "b a c"}, {"text": "a b a"}, {"text": "c"}])
    operation = yt_env.client.run_map_reduce(
        SPLIT_WORDS, SUM_WORDS, source, destination, reduce_by=["w"], reduce_combiner=SUM_WORDS,
        format="json", spec=NO_RETRY,
    )  # fmt: skip
    assert sorted((r["w"], r["n"]) for r in yt_env.client.read_table(destination)) == [
        ("a", 3), ("b", 2), ("c", 2),
    ]  # fmt: skip
    attributes = yt_env.client.get_operation(operation.id, attributes=["unrecognized_spec"])
    assert attributes["unrecognized_spec"] == {}


def test_map_reduce_reducer_sees_groups_sorted_by_sort_by(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    rows = [{"k": "x", "s": 3}, {"k": "y", "s": 1}, {"k": "x", "s": 1}, {"k": "x", "s": 2}]
    yt_env.client.write_table(source, rows)
    yt_env.client.run_map_reduce(
        None, TAG_TABLE, source, destination, reduce_by=["k"], sort_by=["k", "s"],
        format="json", spec=NO_RETRY,
    )  # fmt: skip
    assert [(r["k"], r["s"]) for r in yt_env.client.read_table(destination)] == [
        ("x", 1), ("x", 2), ("x", 3), ("y", 1),
    ]  # fmt: skip


def test_sorted_operations_leave_nothing_unrecognized(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": 1}])
    operations = [
        yt_env.client.run_sort(source, yt_env.path("sorted"), sort_by=["k"]),
        yt_env.client.run_merge(source, yt_env.path("merged"), mode="sorted"),
        yt_env.client.run_reduce(
            "cat", source, yt_env.path("reduced"), reduce_by="k", format="json"
        ),
        yt_env.client.run_erase(yt_env.path("merged")),
    ]
    for operation in operations:
        attributes = yt_env.client.get_operation(
            operation.id, attributes=["unrecognized_spec", "state"]
        )
        assert attributes == {"unrecognized_spec": {}, "state": "completed"}


# ----------------------------------------------------------------- job_count and auto_merge


def test_each_job_writes_its_own_chunk_unless_auto_merge_merges_them(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"x": i} for i in range(6)])
    per_job, merged = yt_env.path("per_job"), yt_env.path("merged")
    yt_env.client.run_map("cat", source, per_job, format="json", job_count=3, spec=NO_RETRY)
    assert yt_env.client.get(per_job + "/@chunk_count") == 3
    assert [row["x"] for row in yt_env.client.read_table(per_job)] == list(range(6))
    spec = {**NO_RETRY, "auto_merge": {"mode": "relaxed"}}
    yt_env.client.run_map("cat", source, merged, format="json", job_count=3, spec=spec)
    assert yt_env.client.get(merged + "/@chunk_count") == 1
    assert [row["x"] for row in yt_env.client.read_table(merged)] == list(range(6))


def test_manual_auto_merge_merges_chunks_in_groups(yt_env: YtEnv) -> None:
    source, grouped, opted_out = yt_env.path("in"), yt_env.path("grouped"), yt_env.path("out")
    yt_env.client.write_table(source, [{"x": i} for i in range(5)])
    manual = {"mode": "manual", "chunk_count_per_merge_job": 2, "max_intermediate_chunk_count": 4}
    spec = {**NO_RETRY, "auto_merge": manual}
    outputs = [grouped, yt.TablePath(opted_out, attributes={"auto_merge": False})]
    command = "tee /dev/fd/4"  # every row to both tables
    yt_env.client.run_map(command, source, outputs, format="json", job_count=5, spec=spec)
    assert yt_env.client.get(grouped + "/@chunk_count") == 3  # (5 - 1) // min(2, 4) + 1
    assert yt_env.client.get(opted_out + "/@chunk_count") == 5  # one chunk per job
    assert [row["x"] for row in yt_env.client.read_table(grouped)] == list(range(5))


def test_the_clients_auto_merge_output_merges_small_chunks(yt_env: YtEnv) -> None:
    source, destination = yt_env.path("in"), yt_env.path("out")
    yt_env.client.write_table(source, [{"x": i} for i in range(4)])
    client = yt_env.new_client({"auto_merge_output": {"action": "merge", "min_chunk_count": 2}})
    client.run_map("cat", source, destination, format="json", job_count=4, spec=NO_RETRY)
    assert client.get(destination + "/@chunk_count") == 1
    assert [row["x"] for row in client.read_table(destination)] == list(range(4))


def test_sorted_output_of_several_reduce_jobs_stays_sorted(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": k} for k in range(8)])
    destination = yt.TablePath(yt_env.path("out"), sorted_by=["k"])
    yt_env.client.run_reduce(
        "cat", source, destination, reduce_by="k", format="json", job_count=4, spec=NO_RETRY
    )
    assert yt_env.client.get(yt_env.path("out") + "/@chunk_count") == 4
    assert yt_env.client.get(yt_env.path("out") + "/@sorted_by") == ["k"]
    assert [row["k"] for row in yt_env.client.read_table(destination)] == list(range(8))


def test_map_reduce_mapper_writes_its_extra_outputs_to_the_first_tables(yt_env: YtEnv) -> None:
    source = yt_env.path("in")
    yt_env.client.write_table(source, [{"k": "b"}, {"k": "a"}, {"k": "b"}])
    mapped, reduced = yt_env.path("mapped"), yt_env.path("reduced")
    mapper = """tee /dev/fd/4"""  # every row to the shuffle (fd 1) and to the first table (fd 4)
    yt_env.client.run_map_reduce(
        mapper, COUNT_RUNS, source, [mapped, reduced], reduce_by=["k"], format="json",
        spec={**NO_RETRY, "mapper_output_table_count": 1},
    )  # fmt: skip
    assert list(yt_env.client.read_table(mapped)) == [{"k": "b"}, {"k": "a"}, {"k": "b"}]
    assert list(yt_env.client.read_table(reduced)) == [{"k": "a", "n": 1}, {"k": "b", "n": 2}]


# ------------------------------------------------------- spec fields shared with map


def test_a_reducer_gets_the_environment_and_the_secure_vault(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": 1}])
    destination = yt_env.path("out")
    command = """echo "{\\"env\\": \\"$COLOUR\\", \\"vault\\": \\"$YT_SECURE_VAULT_WORD\\"}" """
    spec = {
        **NO_RETRY,
        "reducer": {"environment": {"COLOUR": "red"}},
        "secure_vault": {"WORD": "w"},
    }
    yt_env.client.run_reduce(command, source, destination, reduce_by="k", format="json", spec=spec)
    assert list(yt_env.client.read_table(destination)) == [{"env": "red", "vault": "w"}]


def test_a_failing_reducer_fails_the_operation_with_its_stderr(yt_env: YtEnv) -> None:
    source = _sorted_table(yt_env, "in", [{"k": 1}])
    command = "echo reducer-broke >&2; exit 3"
    with pytest.raises(yt.YtOperationFailedError) as failure:
        yt_env.client.run_reduce(
            command, source, yt_env.path("out"), reduce_by="k", format="json", spec=NO_RETRY
        )
    assert "reducer-broke" in str(failure.value.attributes.get("stderrs"))


def test_the_yt_cli_sorts_and_reduces(yt_env: YtEnv) -> None:
    if not yt_env.is_local:
        pytest.skip(LOCAL_ONLY_REASON)  # the CLI gets the local proxy URL
    source, ordered, counted = yt_env.path("in"), yt_env.path("sorted"), yt_env.path("counted")
    yt_env.client.write_table(source, [{"k": "b"}, {"k": "a"}, {"k": "b"}])
    yt_cli = [str(Path(sys.executable).parent / "yt"), "--proxy", yt_env.proxy_url]
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "YT_USE_TOKEN": "0"}
    for arguments in (
        ["sort", "--src", source, "--dst", ordered, "--sort-by", "k"],
        ["reduce", COUNT_RUNS, "--src", ordered, "--dst", counted, "--reduce-by", "k",
         "--format", "json"],
    ):  # fmt: skip
        result = subprocess.run(
            yt_cli + arguments, capture_output=True, text=True, timeout=120, env=environment
        )
        assert result.returncode == 0, result.stderr
    assert list(yt_env.client.read_table(counted)) == [{"k": "a", "n": 1}, {"k": "b", "n": 2}]


def test_shuffle_table_keeps_every_row_in_another_order(yt_env: YtEnv) -> None:
    """``shuffle_table``: yt.wrapper's own map_reduce over skiff (a random key per row, reduced by
    it), unchanged."""
    table = yt_env.path("to_shuffle")
    rows = [{"n": n, "s": f"row {n}"} for n in range(500)]
    yt_env.client.write_table(table, rows)
    yt_env.client.shuffle_table(table, spec=NO_RETRY)
    shuffled = list(yt_env.client.read_table(table))
    assert sorted(shuffled, key=lambda row: row["n"]) == rows
    assert shuffled != rows  # 500! orders: the same one back means no shuffle
