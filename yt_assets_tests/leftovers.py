"""What a test leaves behind that would break a later test, cleared after each test body
(``conftest.py``): read transactions it dropped, and a stale Dagster defs-state storage.

Read transactions.
``yt.wrapper`` opens a transaction (pinged, with a snapshot lock) for each retried ``read_table`` or
``read_file``. A read stream that is not closed explicitly (``list(client.read_table(path))`` is
the usual way to read) hands its transaction, when garbage-collected, to a background aborter
thread that wakes every 10 s. By then the test's local YT may be stopped: the abort fails, and the
exception ends that thread with a 100-line ``PytestUnhandledThreadExceptionWarning`` in some later
test, and with no aborter left for the rest of the worker's session.

``abort_dropped_read_transactions`` (run after each test's body, while its fixtures' servers are
still up) aborts them at once, so no read transaction or its pinger
outlives the test that made it. It reads ``yt.wrapper.transaction``'s private aborter queue: the
client has no public way to flush it; with another client version it does nothing.

Dagster's defs-state storage. Entering a ``DagsterInstance`` (``with``, as ``dg.materialize`` does
for its ephemeral instance) sets a context variable to the instance's defs-state storage, and
leaving it restores the previous value. When two such contexts end out of order (one held by a
generator that is closed only when collected), the variable is left on the storage of an instance
that is gone, and the next ``dg.materialize`` in that thread fails with "Attempted to resolve
undefined DagsterInstance weakref" (seen once in CI, in ``test_partitions.py``; two ``dg.instance_for_test()`` contexts closed out
of order reproduce it).
``clear_stale_dagster_state_storage`` resets it when its instance is gone; a live one is left as
it is.
"""

from __future__ import annotations

import contextlib
import gc

import yt.wrapper.transaction as yt_transaction
from dagster._core.storage.defs_state import base as dagster_defs_state


def abort_dropped_read_transactions() -> list[str]:
    """Abort now the transactions waiting in yt.wrapper's aborter queue; returns their ids."""
    gc.collect()  # streams in reference cycles hand their transactions over now
    aborter = getattr(yt_transaction, "_transaction_aborter", None)
    lock = getattr(aborter, "_lock", None)
    queue = getattr(aborter, "_transactions_to_abort", None)
    if lock is None or not isinstance(queue, list):
        return []
    with lock:
        pending = list(queue)
        queue.clear()
    for transaction in pending:
        # A transaction of a server the test already stopped dies with it.
        with contextlib.suppress(Exception):
            transaction.abort()
    return [str(transaction.transaction_id) for transaction in pending]


def clear_stale_dagster_state_storage() -> bool:
    """Reset Dagster's current defs-state storage if its instance is gone; returns whether it was
    stale."""
    variable = getattr(dagster_defs_state, "_current_storage", None)
    storage = variable.get() if variable is not None else None
    reference = getattr(storage, "_instance_weakref", None)
    if reference is None or reference() is not None:
        return False
    variable.set(None)
    return True
