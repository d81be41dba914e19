"""The narrow interfaces between the parts of the local YT.

The state layer (Cypress tree, tables, files, transactions: ``cypress.py``/``storage.py``) implements
:class:`TableStore`; the operations engine (``operations.py``) depends only on it, so each can be read
and tested alone. Row formats (``formats.py``) implement :class:`RowFormat`.

A row is a ``dict`` from column name to a YSON-compatible Python value. Rich YPaths (``<append=%true;
ranges=[...]>//t``, ``//t[#10:#20]``, ``//t{a,b}``) are passed exactly as they appear in a request or
an operation spec: a ``str`` or a ``yt.yson`` object carrying ``.attributes``; the store parses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

Row = dict[str, Any]
RichPath = Any  # str, or a yt.yson string/object with .attributes


class RowFormat(Protocol):
    """A YT table format (``yson``, ``json``, ``dsv``...) as built by ``formats.parse_format(spec)``."""

    name: str

    def dump_rows(self, rows: Iterable[Row], stream: BinaryIO) -> None:
        """Write rows to a binary stream in this format."""

    def load_rows(self, stream: BinaryIO) -> Iterator[Row]:
        """Read rows from a binary stream in this format, lazily."""


class TableStore(Protocol):
    """What the operations engine needs from the Cypress state."""

    def read_rows(self, path: RichPath, transaction_id: str | None = None) -> Iterator[Row]:
        """Rows of a table (ranges and columns of the rich path applied), from a consistent snapshot."""

    def read_table_ranges(
        self, path: RichPath, *, transaction_id: str | None = None
    ) -> list[tuple[int, Iterator[Row]]]:
        """One ``(start_row_index, rows)`` per range of the rich path (one if it has none)."""

    def row_count(self, path: RichPath, transaction_id: str | None = None) -> int:
        """Rows the rich path selects (ranges applied)."""

    def table_schema(self, path: RichPath, transaction_id: str | None = None) -> tuple[Any, bool]:
        """The table's :class:`~.tables.Schema` and whether it is strong (user-set)."""

    def write_rows(self, path: RichPath, rows: Iterable[Row], transaction_id: str) -> int:
        """Write rows under the transaction (``<append=%true>`` appends; schema enforced). Returns rows written."""

    def file_content_path(self, path: RichPath, transaction_id: str | None = None) -> Path:
        """The on-disk, immutable content of a file node (to copy into a job sandbox)."""

    def start_transaction(self, parent_id: str | None = None, title: str | None = None) -> str:
        """Start a (nested) master transaction; returns its id."""

    def commit_transaction(self, transaction_id: str) -> None: ...

    def abort_transaction(self, transaction_id: str) -> None: ...
