"""Job statistics of the local YT: what each job reports, aggregated over an operation's jobs.

A job's statistics are flat ``path -> int`` maps: the system ones the local YT measures
(``time/exec`` in ms, ``data/input/row_count``, ``data/output/<i>/row_count``) and the user ones
the job wrote to fd 5 (a YSON list fragment of maps, as ``yt.wrapper.write_statistics`` writes
it), filed under ``custom/`` as on a cluster. Repeated writes of one name in a job are summed.

The operation's ``progress`` carries them in both layouts a cluster serves:

* ``job_statistics`` (what ``yt.wrapper``'s ``Operation.get_job_statistics`` reads):
  ``<path>/$/<job_state>/<job_type>/{sum,count,min,max}``;
* ``job_statistics_v2``: ``<path>`` -> a list of
  ``{summary: {sum,count,min,max,last}, tags: {job_state, job_type, pool_tree}}``.

Usage::

    stats = job_statistics(b'{"s3"={"objects"=2;};};', exec_ms=10, input_rows=2, output_rows=[2])
    assert stats["custom/s3/objects"] == 2
    tree = aggregate_v1([("completed", "map", stats)])
    assert tree["custom"]["s3"]["objects"]["$"]["completed"]["map"]["sum"] == 2
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yt.yson as yson

POOL_TREE = "default"
JobSample = tuple[str, str, Mapping[str, int]]
"""``(job_state, job_type, statistics)`` of one finished job."""


def parse_user_statistics(data: bytes) -> tuple[dict[str, int], str | None]:
    """The ``custom/...`` statistics in what a job wrote to fd 5, and an error if it was malformed
    (what parsed before the error is kept)."""
    values: dict[str, int] = {}
    if not data.strip():
        return values, None
    try:
        records = list(yson.loads(data, yson_type="list_fragment"))
    except (yson.YsonError, ValueError, TypeError) as error:
        return values, f"Malformed user statistics: {error}"
    for record in records:
        if not isinstance(record, Mapping):
            return values, "Malformed user statistics: an item is not a map"
        for path, value in _flatten(record, "custom"):
            values[path] = values.get(path, 0) + value
    return values, None


def _flatten(node: Mapping[Any, Any], prefix: str) -> Iterable[tuple[str, int]]:
    for key, value in node.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        path = f"{prefix}/{name}"
        if isinstance(value, Mapping):
            yield from _flatten(value, path)
        elif isinstance(value, bool):
            yield path, int(value)
        elif isinstance(value, int | float):
            yield path, int(value)  # YT statistics are int64


def job_statistics(
    user_data: bytes,
    *,
    exec_ms: int,
    input_rows: int,
    output_rows: Sequence[int],
) -> dict[str, int]:
    """All statistics of one job (system and user ones), flat."""
    values, _error = parse_user_statistics(user_data)
    values["time/exec"] = exec_ms
    values["data/input/row_count"] = input_rows
    for index, count in enumerate(output_rows):
        values[f"data/output/{index}/row_count"] = count
    return values


def _summaries(samples: Iterable[JobSample]) -> dict[str, dict[tuple[str, str], dict[str, int]]]:
    by_path: dict[str, dict[tuple[str, str], dict[str, int]]] = {}
    for state, job_type, statistics in samples:
        for path, value in statistics.items():
            summary = by_path.setdefault(path, {}).get((state, job_type))
            if summary is None:
                by_path[path][(state, job_type)] = {
                    "sum": value,
                    "count": 1,
                    "min": value,
                    "max": value,
                    "last": value,
                }
            else:
                summary["sum"] += value
                summary["count"] += 1
                summary["min"] = min(summary["min"], value)
                summary["max"] = max(summary["max"], value)
                summary["last"] = value
    return by_path


def _node(tree: dict[str, Any], path: str) -> dict[str, Any]:
    node = tree
    for part in path.split("/"):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):  # a path that is both a value and a parent: keep the value
            return {}
        node = child
    return node


def aggregate_v1(samples: Iterable[JobSample]) -> dict[str, Any]:
    """``progress/job_statistics``: ``<path>/$/<state>/<job_type>/{sum,count,min,max}``."""
    tree: dict[str, Any] = {}
    for path, summaries in _summaries(samples).items():
        leaf = _node(tree, path).setdefault("$", {})
        for (state, job_type), summary in summaries.items():
            leaf.setdefault(state, {})[job_type] = {
                key: summary[key] for key in ("sum", "count", "min", "max")
            }
    return tree


def aggregate_v2(samples: Iterable[JobSample]) -> dict[str, Any]:
    """``progress/job_statistics_v2``: ``<path>`` -> ``[{summary, tags}]``."""
    tree: dict[str, Any] = {}
    for path, summaries in _summaries(samples).items():
        parts = path.split("/")
        parent = _node(tree, "/".join(parts[:-1])) if len(parts) > 1 else tree
        parent[parts[-1]] = [
            {
                "summary": dict(summary),
                "tags": {"job_state": state, "job_type": job_type, "pool_tree": POOL_TREE},
            }
            for (state, job_type), summary in sorted(summaries.items())
        ]
    return tree


def job_view_statistics(statistics: Mapping[str, int]) -> dict[str, Any]:
    """One job's statistics as ``list_jobs`` shows them: a tree of ``{sum,count,min,max,last}``."""
    tree: dict[str, Any] = {}
    for path, value in statistics.items():
        parts = path.split("/")
        parent = _node(tree, "/".join(parts[:-1])) if len(parts) > 1 else tree
        parent[parts[-1]] = {"sum": value, "count": 1, "min": value, "max": value, "last": value}
    return tree
