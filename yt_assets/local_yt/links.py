"""Symbolic links (``link`` nodes): their creation checks and the attributes a cluster computes.

A link stores ``target_path``; :meth:`~.cypress.CypressView.follow` resolves it (through chains of
links) wherever a path passes the link, unless the key is followed by ``&`` (``//tmp/l&`` is the
link node itself). A link may point to a node that does not exist (``@broken`` is then true and
reading through it is a resolve error); a link that would reach itself is refused. Every verb
resolves through the link (``remove //tmp/l`` removes the target; ``//tmp/l&`` removes the link),
except that ``create``/``link``/``copy``/``move`` onto an existing link with ``force`` replace the
link itself, and ``create`` with ``ignore_existing`` compares the target's type.

Usage::

    client.link("//tmp/table", "//tmp/latest")
    client.get("//tmp/latest/@type")                 # "table"
    client.get("//tmp/latest&/@target_path")         # "//tmp/table"
    client.remove("//tmp/latest&")                   # removes the link only
"""

from __future__ import annotations

from typing import Any

from .cypress import CypressView, Node
from .exceptions import GenericError, InvalidYPath, ResolveError, TooManyLinkHops
from .ypath import parse_rich_path, split_ypath

# Computed link attributes (read-only).
LINK_ATTRIBUTES = ("broken", "target_id")


def check_target_path(value: Any) -> str:
    """The ``target_path`` of a new link as text; a YT error when missing or malformed."""
    if value is None:
        raise GenericError(
            'Attribute "target_path" is required for a link', attribute="target_path"
        )
    target = parse_rich_path(value).path
    if not target:
        raise InvalidYPath("Link target path is empty")
    split_ypath(target)  # raises InvalidYPath
    return target


def refuse_cyclic_link(view: CypressView, link: Node) -> None:
    """Refuse a link whose target resolves back through itself (as a cluster does)."""
    try:
        view.follow(link)
    except TooManyLinkHops:
        raise GenericError(
            f"Failed to create link {view.path_of(link)}: link is cyclic",
            path=view.path_of(link),
            target_path=link.attrs.get("target_path"),
        ) from None
    except ResolveError:
        return  # a dangling link is allowed


def link_attributes(view: CypressView, link: Node) -> dict[str, Any]:
    """``broken`` and (when the target exists) ``target_id`` of a link node."""
    try:
        target = view.follow(link)
    except ResolveError:
        return {"broken": True}
    return {"broken": False, "target_id": target.id}
