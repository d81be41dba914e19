"""How many input rows each job of an operation gets (the inputs are written by :mod:`.job_io`)."""

from __future__ import annotations


def even_split(total: int, parts: int) -> list[int]:
    """``total`` rows in ``parts`` contiguous chunks whose sizes differ by at most one."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]
