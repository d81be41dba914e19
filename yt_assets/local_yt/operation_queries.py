"""``list_operations`` and ``list_jobs``: filters, counters and sorting over operation records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .operation_state import _as_int, parse_iso
from .values import as_bool, to_plain


def _brief_spec(operation_type: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    brief: dict[str, Any] = {}
    for name in ("title", "input_table_paths", "output_table_paths", "output_table_path"):
        if name in spec:
            brief[name] = spec[name]
    if operation_type == "map":
        brief["mapper"] = {"command": spec["mapper"].get("command")}
        brief["input_table_paths"] = spec.get("input_table_paths", [])[:1]
        brief["input_table_count"] = len(spec.get("input_table_paths", []))
        brief["output_table_count"] = len(spec.get("output_table_paths", []))
    return brief


def _task_names(operation_type: str, spec: Mapping[str, Any]) -> list[str]:
    if operation_type == "vanilla":
        return list(spec.get("tasks", {}))
    if operation_type == "map_reduce":
        stages = (("mapper", "partition_map"), ("reduce_combiner", "reduce_combiner"))
        return [name for key, name in stages if spec.get(key)] + ["partition_reduce"]
    return _TASK_NAMES.get(operation_type, [])


_TASK_NAMES = {"map": ["map"], "reduce": ["sorted_reduce"], "join_reduce": ["joined_reduce"]}


def select_operations(views: list[dict[str, Any]], filters: Mapping[str, Any]) -> dict[str, Any]:
    """``list_operations``: filter, order newest first, page by ``cursor_time``/``limit``."""
    f = {name: to_plain(value) for name, value in filters.items() if value is not None}
    text = str(f.get("filter", "")).lower()

    def matches(view: dict[str, Any], ignore: str = "") -> bool:
        if ignore != "user" and "user" in f and view["authenticated_user"] != f["user"]:
            return False
        if ignore != "state" and "state" in f and view["state"] != f["state"]:
            return False
        if ignore != "type" and "type" in f and view["type"] != f["type"]:
            return False
        if "pool" in f and view["pool"] != f["pool"]:
            return False
        if as_bool(f.get("with_failed_jobs")) and not view["brief_progress"]["jobs"]["failed"]:
            return False
        if text and text not in _filter_factors(view):
            return False
        started = parse_iso(view["start_time"])
        if "from_time" in f and started < parse_iso(f["from_time"]):
            return False
        return not ("to_time" in f and started > parse_iso(f["to_time"]))

    selected = [view for view in views if matches(view)]
    direction = f.get("cursor_direction", "past")
    if "cursor_time" in f:
        cursor = parse_iso(f["cursor_time"])
        if direction == "future":
            selected = [v for v in selected if parse_iso(v["start_time"]) > cursor]
        else:
            selected = [v for v in selected if parse_iso(v["start_time"]) < cursor]
    selected.sort(key=lambda v: v["start_time"], reverse=direction != "future")
    limit = _as_int(f.get("limit", 100), "limit")
    page = selected[:limit]
    if direction == "future":
        page.reverse()
    attributes = f.get("attributes")
    if attributes:
        wanted = set(map(str, attributes))  # iterate_operations needs start_time among them
        page = [{k: v for k, v in view.items() if k in wanted} for view in page]
    result: dict[str, Any] = {"operations": page, "incomplete": len(selected) > limit}
    if as_bool(f.get("include_counters"), default=True):
        result.update(_operation_counters(views, matches))
    return result


def _filter_factors(view: Mapping[str, Any]) -> str:
    brief = view.get("brief_spec", {})
    factors = [view["id"], view["authenticated_user"], view["type"], view["state"], view["pool"]]
    factors += [str(brief.get("title", ""))]
    factors += [str(p) for p in brief.get("input_table_paths", [])]
    factors += [str(p) for p in brief.get("output_table_paths", [])]
    return " ".join(factors).lower()


def _operation_counters(
    views: list[dict[str, Any]], matches: Callable[..., bool]
) -> dict[str, Any]:
    def count(key: str, ignore: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for view in views:
            if matches(view, ignore):
                counts[view[key]] = counts.get(view[key], 0) + 1
        return counts

    return {
        "state_counts": count("state", "state"),
        "type_counts": count("type", "type"),
        "user_counts": count("authenticated_user", "user"),
        "pool_counts": count("pool", "pool"),
        "pool_tree_counts": {"default": sum(1 for v in views if matches(v))},
        "failed_jobs_count": sum(1 for v in views if v["brief_progress"]["jobs"]["failed"]),
    }


_JOB_SORT_FIELDS = {
    "none": "job_index",
    "id": "id",
    "type": "type",
    "state": "state",
    "start_time": "start_time",
    "finish_time": "finish_time",
    "address": "address",
}


def select_jobs(jobs: list[dict[str, Any]], filters: Mapping[str, Any]) -> dict[str, Any]:
    """``list_jobs``: filter by state/type/stderr/task, sort, page by ``offset``/``limit``."""
    f = {name: to_plain(value) for name, value in filters.items() if value is not None}
    selected = jobs
    if "job_state" in f:
        selected = [job for job in selected if job["state"] == f["job_state"]]
    if "job_type" in f:
        selected = [job for job in selected if job["type"] == f["job_type"]]
    if "task_name" in f:
        selected = [job for job in selected if job["task_name"] == f["task_name"]]
    if "address" in f:
        selected = [job for job in selected if job["address"] == f["address"]]
    if "with_stderr" in f:
        wanted = as_bool(f["with_stderr"])
        selected = [job for job in selected if bool(job.get("stderr_size")) == wanted]
    sort_key = _JOB_SORT_FIELDS.get(str(f.get("sort_field", "none")), "job_index")
    selected = sorted(
        selected,
        key=lambda job: str(job.get(sort_key, "")) if sort_key != "job_index" else job[sort_key],
        reverse=f.get("sort_order") == "descending",
    )
    offset = _as_int(f.get("offset", 0), "offset")
    limit = _as_int(f.get("limit", 1000), "limit")
    state_counts: dict[str, int] = {}
    type_counts: dict[str, int] = {}
    for job in jobs:
        state_counts[job["state"]] = state_counts.get(job["state"], 0) + 1
        type_counts[job["type"]] = type_counts.get(job["type"], 0) + 1
    return {
        "jobs": selected[offset : offset + limit],
        "cypress_job_count": len(jobs),
        "scheduler_job_count": len(jobs),
        "controller_agent_job_count": len(jobs),
        "archive_job_count": 0,
        "state_counts": state_counts,
        "type_counts": type_counts,
        "errors": [],
    }
