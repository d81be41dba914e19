"""The spec keys YT knows, to report the others as ``unrecognized_spec`` (as a scheduler does).

A cluster accepts an operation whose spec has keys it does not know and lists them, with their
values, in the operation's ``unrecognized_spec`` attribute. Here the check covers the top level
of every supported operation type's spec, its user job specs (``mapper``, ``reducer``,
``reduce_combiner``, each vanilla task) and ``job_io``; the key lists follow the YTsaurus operation-options documentation. Deeper sections
(``auto_merge``, ``sampling``, ``job_io/table_writer``...) are not inspected.

Usage::

    assert unrecognized_spec("map", {"mapper": {"command": "cat", "colour": 1}, "size": 2}) == {
        "mapper": {"colour": 1}, "size": 2}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COMMON_SPEC_KEYS = frozenset(
    {
        "acl", "adjust_dynamic_table_data_slices", "alias", "annotations", "backoff_time",
        "core_table_path", "core_table_writer", "description", "enable_compatible_storage_mode",
        "enable_job_splitting", "enable_trace_logging", "experiment_overrides",
        "fail_on_job_restart", "intermediate_compression_codec", "intermediate_data_account",
        "intermediate_data_medium", "intermediate_data_replication_factor",
        "is_cypress_transaction_replicated", "issue_temporary_token", "job_node_account",
        "max_failed_job_count", "max_job_count", "max_speculative_job_count_per_task",
        "max_stderr_count", "min_share_resources", "owners", "pool", "pool_trees",
        "resource_limits", "sampling", "scheduling_options_per_pool_tree",
        "scheduling_tag_filter", "secure_vault", "started_by", "stderr_table_path",
        "stderr_table_writer", "suspend_operation_if_account_limit_exceeded",
        "temporary_token_environment_variable_name", "tentative_pool_trees", "testing",
        "time_limit", "time_limit_job_fail_timeout", "title", "unavailable_chunk_strategy",
        "unavailable_chunk_tactics", "use_columnar_statistics", "weight", "job_io",
    }
)  # fmt: skip

MAP_SPEC_KEYS = frozenset(
    {
        "auto_merge", "consider_only_primary_size", "data_size_per_job", "data_weight_per_job",
        "enable_input_table_index", "enable_legacy_live_preview", "force_job_size_adjuster",
        "input_query", "input_schema", "input_table_columnar_statistics", "input_table_paths",
        "job_count", "job_splitter", "locality_timeout", "mapper",
        "max_data_slices_per_job", "max_data_weight_per_job", "max_primary_data_weight_per_job",
        "ordered", "output_table_paths", "slice_erasure_chunks_by_parts",
    }
)  # fmt: skip

VANILLA_SPEC_KEYS = frozenset({"tasks"})

_SORTED_INPUT_KEYS = frozenset(
    {
        "auto_merge", "consider_only_primary_size", "data_size_per_job", "data_weight_per_job",
        "enable_input_table_index", "enable_key_guarantee", "input_table_paths", "job_count",
        "job_splitter", "locality_timeout", "max_data_slices_per_job",
        "max_data_weight_per_job", "max_primary_data_weight_per_job", "output_table_paths",
        "pivot_keys", "reducer", "sort_by", "use_new_sorted_pool", "join_by",
    }
)  # fmt: skip

_SORT_SHUFFLE_KEYS = frozenset(
    {
        "data_size_per_sort_job", "data_weight_per_sort_job", "data_size_per_sorted_merge_job",
        "data_weight_per_sorted_merge_job", "data_weight_per_partition_job",
        "data_size_per_partition_job", "enable_intermediate_output_recalculation",
        "intermediate_compression_codec", "map_selectivity_factor", "max_partition_factor",
        "merge_job_io", "merge_locality_timeout", "partition_count", "partition_data_size",
        "partition_job_count", "partition_job_io", "samples_per_partition",
        "shuffle_start_threshold", "simple_merge_locality_timeout",
        "simple_sort_locality_timeout", "sort_assignment_timeout", "sort_job_io",
        "sort_locality_timeout", "sort_start_threshold", "merge_start_threshold",
        "schema_inference_mode", "max_data_weight_per_job", "sort_by",
    }
)  # fmt: skip

SPEC_KEYS = {
    "map": MAP_SPEC_KEYS,
    "vanilla": VANILLA_SPEC_KEYS,
    "sort": _SORT_SHUFFLE_KEYS | {"input_table_paths", "output_table_path"},
    "merge": frozenset(
        {
            "combine_chunks", "data_size_per_job", "data_weight_per_job", "force_transform",
            "input_query", "input_schema", "input_table_paths", "job_count", "locality_timeout",
            "max_data_slices_per_job", "max_data_weight_per_job", "merge_by", "mode",
            "output_table_path", "schema_inference_mode", "enable_job_splitting",
        }
    ),
    "erase": frozenset({"combine_chunks", "schema_inference_mode", "table_path"}),
    "reduce": _SORTED_INPUT_KEYS | {"reduce_by"},
    "join_reduce": _SORTED_INPUT_KEYS,
    "map_reduce": _SORT_SHUFFLE_KEYS
    | {
        "auto_merge", "data_size_per_map_job", "data_weight_per_map_job", "force_reduce_combiners",
        "input_table_paths", "map_job_count", "map_job_io", "mapper",
        "mapper_output_table_count", "ordered", "output_table_paths", "reduce_by",
        "reduce_combiner", "reduce_job_io", "reducer", "enable_table_index_if_has_trivial_mapper",
    },
}  # fmt: skip

_USER_JOB_SECTIONS = ("mapper", "reducer", "reduce_combiner")

USER_JOB_KEYS = frozenset(
    {
        "check_input_fully_consumed", "command", "copy_files", "cpu_limit",
        "cuda_toolkit_version", "custom_statistics_count_limit", "deterministic",
        "disk_request", "disk_space_limit", "disk_inode_limit", "docker_image",
        "enable_core_dump", "enable_gpu_layers", "enable_input_table_index",
        "enable_setuid", "environment", "extra_environment", "fail_job_on_core_dump",
        "file_paths", "format", "gpu_limit", "include_memory_mapped_files", "input_format",
        "interruption_signal", "job_speculation_timeout", "job_time_limit", "layer_paths",
        "make_rootfs_writable", "max_stderr_size", "memory_limit", "memory_reserve_factor",
        "network_project", "output_format", "prepare_time_limit", "redirect_stdout_to_stderr",
        "restart_exit_code", "set_container_cpu_limit", "signal_root_process_only",
        "title", "tmpfs_path", "tmpfs_size", "tmpfs_volumes", "use_porto_memory_tracking",
        "use_yamr_descriptors", "user_job_memory_digest_default_value",
        "user_job_memory_digest_lower_bound",
    }
)  # fmt: skip

VANILLA_TASK_KEYS = USER_JOB_KEYS | frozenset(
    {
        "job_count",
        "output_table_paths",
        "restart_completed_jobs",
        "close_stdout_if_unused",
        "job_io",
    }
)

JOB_IO_KEYS = frozenset(
    {
        "block_cache", "buffer_row_count", "control_attributes", "error_file_writer",
        "pipe_capacity", "pipe_io_pool_size", "table_reader", "table_writer",
        "use_adaptive_buffer_row_count", "use_delivery_fenced_pipe_writer",
    }
)  # fmt: skip


def _section(
    section: Mapping[str, Any], known: frozenset[str], with_job_io: bool
) -> dict[str, Any]:
    """Unknown keys of one spec section (and of its ``job_io``)."""
    unknown = {key: value for key, value in section.items() if key not in known}
    job_io = section.get("job_io")
    if with_job_io and isinstance(job_io, Mapping):
        unknown_io = {key: value for key, value in job_io.items() if key not in JOB_IO_KEYS}
        if unknown_io:
            unknown["job_io"] = unknown_io
    return unknown


def unrecognized_spec(operation_type: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of ``spec`` YT does not know (keys with their values), as a nested map."""
    known = COMMON_SPEC_KEYS | SPEC_KEYS.get(operation_type, frozenset())
    result = _section(spec, known, with_job_io=True)
    for name in _USER_JOB_SECTIONS:
        user_job = spec.get(name)
        if name in known and isinstance(user_job, Mapping):
            unknown_user_job = _section(user_job, USER_JOB_KEYS, with_job_io=False)
            if unknown_user_job:
                result[name] = unknown_user_job
    tasks = spec.get("tasks")
    if operation_type == "vanilla" and isinstance(tasks, Mapping):
        unknown_tasks = {}
        for name, task in tasks.items():
            if isinstance(task, Mapping):
                unknown_task = _section(task, VANILLA_TASK_KEYS, with_job_io=True)
                if unknown_task:
                    unknown_tasks[str(name)] = unknown_task
        if unknown_tasks:
            result["tasks"] = unknown_tasks
    return result


# ---------------------------------------------------------------------------------- retention

DEFAULT_MAX_FINISHED_OPERATIONS = 1000


def finished_to_remove(records: Sequence[Mapping[str, Any]], keep: int) -> list[str]:
    """Ids of the finished operations beyond the ``keep`` most recently finished (what a
    scheduler's operations cleaner removes from Cypress); running ones are never listed."""
    finished = [r for r in records if r.get("state") in ("completed", "failed", "aborted")]
    finished.sort(key=lambda r: (str(r.get("finish_time", "")), str(r["id"])), reverse=True)
    return [str(record["id"]) for record in finished[max(keep, 0) :]]
