"""Runtime parameters of an operation (``@runtime_parameters``) and ``update_operation_parameters``.

A running operation's ``pool``, ``weight``, ``owners``, ``acl``, ``annotations`` and
``scheduling_options_per_pool_tree`` can be changed; ``get_operation`` then shows them. A key
outside that set is refused with an error naming it (the local YT has no scheduler to apply
``max_job_count``-like limits to).

Usage::

    client.update_operation_parameters(operation_id, {"annotations": {"owner": "me"}})
    client.get_operation(operation_id)["runtime_parameters"]["annotations"]   # {"owner": "me"}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .exceptions import GenericError
from .values import plain_key, to_plain

UPDATABLE_PARAMETERS = frozenset(
    {"pool", "weight", "owners", "acl", "annotations", "scheduling_options_per_pool_tree"}
)
DEFAULT_TREE = "default"


def runtime_parameters(record: Mapping[str, Any]) -> dict[str, Any]:
    """``@runtime_parameters`` of an operation record (defaults, then the updates it received)."""
    user = record["authenticated_user"]
    result: dict[str, Any] = {
        "owners": [],
        "acl": [],
        "scheduling_options_per_pool_tree": {DEFAULT_TREE: {"pool": user}},
    }
    result.update(copy.deepcopy(record.get("runtime_parameters", {})))
    return result


def merged_updates(current: Mapping[str, Any], parameters: Any) -> dict[str, Any]:
    """The stored updates after applying ``parameters`` (a map); a YT error for unknown keys."""
    if not isinstance(parameters, Mapping):
        raise GenericError("Operation parameters must be a map")
    updates = {plain_key(key): to_plain(value) for key, value in parameters.items()}
    unknown = sorted(set(updates) - UPDATABLE_PARAMETERS)
    if unknown:
        raise GenericError(
            f"Operation parameters {unknown} cannot be updated in the local YT", parameters=unknown
        )
    result = dict(copy.deepcopy(dict(current)))
    pool = updates.pop("pool", None)
    weight = updates.pop("weight", None)
    result.update(updates)
    if pool is not None or weight is not None:
        trees = result.setdefault("scheduling_options_per_pool_tree", {})
        options = trees.setdefault(DEFAULT_TREE, {})
        if pool is not None:
            options["pool"] = str(pool)
        if weight is not None:
            options["weight"] = weight
    return result
