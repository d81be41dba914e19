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


class NoSuchJob(YtLocalError):
    """NYT::NScheduler::EErrorCode::NoSuchJob (``YtResponseError.is_no_such_job()``)."""

    code = 203
