"""Read transactions that a test dropped are aborted before the test ends.

``yt.wrapper`` opens a transaction (pinged, with a snapshot lock) for each retried ``read_table`` or
``read_file``. A read stream that is not closed explicitly (``list(client.read_table(path))`` is
the usual way to read) hands its transaction, when garbage-collected, to a background aborter
thread that wakes every 10 s. By then the test's local YT may be stopped: the abort fails, and the
exception ends that thread with a 100-line ``PytestUnhandledThreadExceptionWarning`` in some later
test, and with no aborter left for the rest of the worker's session.

``abort_dropped_read_transactions`` (run by ``conftest.py`` after each test's body, while its
fixtures' servers are still up) aborts them at once, so no read transaction or its pinger
outlives the test that made it. It reads ``yt.wrapper.transaction``'s private aborter queue: the
client has no public way to flush it; with another client version it does nothing.
"""

from __future__ import annotations

import contextlib
import gc

import yt.wrapper.transaction as yt_transaction


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
