"""One exception class per YT error code the local YT emits.

Each class carries its YT ``code``; the HTTP layer renders any :class:`YtLocalError` as a YT error
(``X-YT-Error`` header / trailer, ``X-YT-Response-Code``) so that ``yt.wrapper`` raises the same
``YtResponseError`` it would against a real cluster (``is_resolve_error()``, ``contains_code()``...).

Usage::

    raise ResolveError(f"Node {path} has no child with key {key!r}", path=path)
"""

from __future__ import annotations

from typing import Any


class YtLocalError(Exception):
    """Base class: a YT error with a numeric code, a message, attributes and inner errors."""

    code: int = 1  # NYT::EErrorCode::Generic

    def __init__(
        self,
        message: str,
        *,
        inner_errors: list[YtLocalError] | None = None,
        **attributes: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = attributes
        self.inner_errors = inner_errors or []

    def to_dict(self) -> dict[str, Any]:
        """The error as YT serialises it: ``{code, message, attributes, inner_errors}``."""
        return {
            "code": self.code,
            "message": self.message,
            "attributes": {k: v for k, v in self.attributes.items() if v is not None},
            "inner_errors": [e.to_dict() for e in self.inner_errors],
        }


class GenericError(YtLocalError):
    code = 1


class ResolveError(YtLocalError):
    """NYT::NYTree::EErrorCode::ResolveError: the path does not exist."""

    code = 500


class TooManyLinkHops(ResolveError):
    """A path passes more links than a cluster follows (a cycle of links)."""


class AlreadyExistsError(YtLocalError):
    code = 501


class ConcurrentTransactionLockConflict(YtLocalError):
    code = 402


class NoSuchTransaction(YtLocalError):
    code = 11000


class NoSuchOperation(YtLocalError):
    code = 1915


class NoSuchCommand(YtLocalError):
    """The command is not known to (or not emulated by) the local YT."""

    code = 1  # real proxies answer an unknown command with a generic error naming it


# ---- State layer (cluster.py and friends). Codes are YT's own, from the ytsaurus sources:
# NYT::NCypressClient::EErrorCode (400-405), NYT::NYTree::EErrorCode (500-...),
# NYT::NTableClient::EErrorCode (301-327), NYT::NTransactionClient::EErrorCode (11000).


class SameTransactionLockConflict(YtLocalError):
    """A transaction asks for a lock its own snapshot lock forbids (e.g. writing a snapshot-locked node)."""

    code = 400


class InvalidYPath(YtLocalError):
    """The path (or rich path) does not parse. Real YT answers with a generic error."""

    code = 1


class TableSortOrderViolation(YtLocalError):
    """NYT::NTableClient::EErrorCode::SortOrderViolation: rows (or appended chunks) out of key order."""

    code = 301


class UniqueKeyViolation(YtLocalError):
    """Duplicate key in a table whose schema has ``unique_keys=%true``."""

    code = 306


class SchemaViolation(YtLocalError):
    """NYT::NTableClient::EErrorCode::SchemaViolation: a row does not match the table's schema."""

    code = 307


class IncompatibleKeyColumns(YtLocalError):
    """``sorted_by`` names a column a strict schema does not have."""

    code = 311


class InvalidSchema(YtLocalError):
    """A schema given in ``@schema`` / ``<schema=...>`` is malformed (generic error in real YT)."""

    code = 1


class InvalidNodeType(YtLocalError):
    """A command applied to a node of the wrong type (list of a table, read_table of a file...)."""

    code = 1


class NoSuchJob(YtLocalError):
    """NYT::NScheduler::EErrorCode::NoSuchJob (``YtResponseError.is_no_such_job()``)."""

    code = 203
