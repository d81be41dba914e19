"""The fast path of S3 listing: our own ``ListObjectsV2`` parsing, and a parallel fan-out.

Why: the boto3 paginator spends about 60 µs of CPU per key in botocore (its response parser:
dicts, ``dateutil``, shape walking; plus ``_handle_200_error``, which parses every 200 body into
an XML tree a second time). At 1,000 keys per page that, not the network, bounds it to 15,000 to
20,000 keys/s. Our reader costs about 4 µs per key.

How requests are sent (:class:`FastPageFetcher`): a client's first page of a bucket is requested
with the client's own ``list_objects_v2``, so botocore serializes the request, resolves the
endpoint and addressing style and signs it; the request it sent makes a
:class:`~yt_assets.s3.direct_requests.DirectLister`, which sends the bucket's later pages
itself, for every later fetcher of that client too (the same URL and query, but without
``encoding-type=url`` unless a page needs it, see :func:`_direct_page`; signed with botocore's
signer and the client's credentials, over kept-alive ``http.client`` connections: about 3 ms of
CPU less per page). Anything but a 200
listing, or a network error, and every request of a client the direct lister can't stand in for
(see :mod:`yt_assets.s3.direct_requests`), goes through ``list_objects_v2``: botocore retries
throttling, 5xx and connection errors with its configured retry mode and raises the usual
errors. Through the client, only the parsing is ours, hooked into botocore's public event
system: a ``before-parse`` handler parses a 200 listing body itself, keeps the result in the
parsed response under a private key and hands botocore's parser an empty ``ListBucketResult``.
Error responses are left to botocore (a ``ClientError`` carries the usual S3 error code, retries
apply), and so is any body our reader can't read (then botocore's parsed result is used). The
handler acts only for calls made by a :class:`FastPageFetcher` (a thread-local flag): other
users of the same client are untouched (see :func:`_install_parser` for the one botocore handler
it stands in for, on that client only).

Reading (:func:`parse_list_objects_v2`): the usual S3 body (plain elements, character entities)
is read with regular expressions, column by column (keys, times, ETags and sizes of a page each
decoded in one piece when they hold nothing unusual); anything unusual (CDATA, comments, namespace prefixes, a cut
body) goes to ``xml.etree``. Keys are URL-decoded exactly as botocore does.

Fan-out (:func:`iter_fanned_out_pages`): the listing starts sequential, with the paginator's
very requests, so a small listing costs nothing extra; once it shows it is large (a few pages
came back truncated), one delimited request (``Delimiter="/"``) finds the
prefix's sub-prefixes and the rest of the key space is cut at some of them into ranges
``[low, high)`` listed in parallel by a bounded pool: the first range goes on from the
sequential listing's continuation token, the others are sequential listings with
``StartAfter``; each range buffers at most a few pages ahead and pages are yielded range after
range, so the output is in global key order and memory is bounded by
``(workers + 1) x lookahead`` pages (a finished range frees its worker while an earlier one is
still being listed: :func:`_iter_ranges_in_parallel`). A prefix without sub-prefixes beyond what was listed is cut at keys found by one-key
``StartAfter`` probes instead (:mod:`yt_assets.s3.key_sampling`: three rounds of at most a few
dozen requests), when probes are cheap and the rest is large (:data:`PROBE_COST_SHARE`,
:data:`MIN_SAMPLED_RANGE_PAGES`); a prefix holding a single sub-prefix and nothing else is walked down first
(``"" -> "data/" -> ...``).
When the sequential start shows sub-prefixes of half a page or more (:data:`SUB_PREFIX_PAGES`),
each later sub-prefix is listed on its own, with ``Prefix`` set to it, as obstore and s5cmd do,
the rest of the one the sequential start stopped in with ``StartAfter`` its last key, and the
level's own objects between sub-prefixes come from the delimited listing: no request lists keys
another one lists (the sequential listing is not followed further: its next page would run into
the next sub-prefix). Otherwise (many small sub-prefixes) a range spans several, and its
last page may run into the next range (those keys are dropped): at most one extra page per range.
"""

from __future__ import annotations

import itertools
import queue
import re
import threading
import time
import weakref
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from yt_assets.s3.background import Raised, put_unless_stopped
from yt_assets.s3.direct_requests import DirectLister, direct_lister_from, only_library_handlers
from yt_assets.s3.errors import listing_error
from yt_assets.s3.key_sampling import Cut, Probe, sampled_cuts
from yt_assets.s3.pages import (
    LIST_PAGE_SIZE,
    ListingPage,
    PageFetcher,
    S3Row,
    iter_listing_pages,
    list_objects_v2_request,
    page_from_boto3_response,
)

__all__ = [
    "DELIMITER",
    "LOOKAHEAD_PAGES",
    "MIN_SAMPLED_RANGE_PAGES",
    "PROBE_COST_SHARE",
    "SEQUENTIAL_PAGES",
    "FastPageFetcher",
    "KeyRange",
    "iter_fanned_out_pages",
    "iter_range_pages",
    "key_ranges",
    "parse_list_objects_v2",
    "parse_list_objects_v2_tree",
    "probe_first_keys",
    "probes_pay_off",
    "sampled_key_ranges",
    "sampled_ranges",
    "sub_prefix_level",
    "sub_prefix_of",
]

DELIMITER = "/"
"""The delimiter used to discover sub-prefixes."""

LOOKAHEAD_PAGES = 8
"""Pages a range may list ahead of the consumer: at most ``(workers + 1) x`` this many pages
waiting (9 x 8 pages of 1,000 keys: about 18 MB); 1,000,000 keys on SeaweedFS listed in 20 s
with 8, in 27 s with 2 (the ranges after the one being consumed stall sooner). Handing the pool
2 ranges per worker with half this lookahead each was slower still: 13.5 s against 11.5 s."""

SEQUENTIAL_PAGES = 5
"""Truncated pages listed sequentially before fanning out: listings of up to this many pages
cost exactly the paginator's requests (5,000 keys at 1,000 a page; the same pages, those sent
directly without ``encoding-type=url`` unless they need it)."""

SUB_PREFIX_PAGES = 0.5
"""Pages per sub-prefix (estimated from the sequential start) from which each sub-prefix is
listed on its own, with its own ``Prefix`` (below it, key ranges spanning several sub-prefixes
are, so a level of many tiny sub-prefixes does not cost a request each)."""

PROBE_COST_SHARE = 0.5
"""Sampled cuts are sought only where one probe (a one-key listing) takes at most this share of
a page's time. SeaweedFS answers a probe in about a tenth of a page's time, S3 in well under
half; moto's server sorts the whole bucket for every request, so a probe costs it a page, and
the few dozen probes would make a listing slower than the paginator's (measured: 20,000 flat
keys 8.0 s against 4.9 s): there the listing goes on sequentially after one probe."""

MIN_SAMPLED_RANGE_PAGES = 8
"""Pages a sampled range should hold at least (estimated), so that its last page, which runs
into the next range, costs at most an eighth more requests. And the in-process listing samples
only a rest of more than 16 times what its sequential start listed (80,000 keys after 5 pages):
on moto's server, where every request costs about the same, 20,000 flat keys cut into 14 ranges
took 7.5 s and into 3 ranges 5.9 s, against 4.6 s for the paginator and 3.4 s sequentially."""

SAMPLE_ONLY_LARGE_RESTS = True
"""Whether the in-process listing samples cuts only for a rest of more than 16 times what its
sequential start listed (see :data:`MIN_SAMPLED_RANGE_PAGES`; tests turn it off to sample tiny
listings)."""

MAX_DESCENT = 16
"""How many single-sub-prefix levels the fan-out walks down before giving up on finding more."""

_BEFORE_PARSE_EVENT = "before-parse.s3.ListObjectsV2"
_BEFORE_PARSE_ALL_S3 = "before-parse.s3.*"
_HANDLER_ID = "yt_assets.s3.fast_listing.parse_list_objects_v2"
_BEFORE_SEND_EVENT = "before-send.s3.ListObjectsV2"
_SEND_HANDLER_ID = "yt_assets.s3.fast_listing.remember_sent_request"
_PAGE_FIELD = "YtAssetsListingPage"
_EMPTY_RESULT = b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'

_calls_in_progress = threading.local()


def _parse_timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        from botocore.utils import parse_timestamp

        moment = parse_timestamp(text)
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_list_objects_v2(body: bytes) -> ListingPage:
    """Parse a ``ListObjectsV2`` XML response (a ``ListBucketResult``) into a page.

    Keys and sub-prefixes are URL-decoded (``unquote_plus``, as botocore does) when the response
    says ``<EncodingType>url</EncodingType>``; ETags lose their quotes; times are UTC. Raises
    ``ValueError`` (or ``xml.etree.ElementTree.ParseError``) when the body is not such a result.

    The usual S3 body (plain elements, character entities) is read with regular expressions,
    about 4x faster than building a tree; anything else (CDATA, namespace prefixes, comments,
    a body that doesn't end with ``</ListBucketResult>``) goes to ``xml.etree``.

    Example::

        body = (
            b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<IsTruncated>false</IsTruncated><Contents><Key>raw/a.json</Key>"
            b"<LastModified>2026-11-28T00:00:00.000Z</LastModified><ETag>&quot;9b2c&quot;</ETag>"
            b"<Size>12</Size></Contents></ListBucketResult>"
        )
        page = parse_list_objects_v2(body)
        assert page.objects == [("raw/a.json", 12, "9b2c", datetime(2026, 11, 28, tzinfo=UTC))]
    """
    page = _parse_plain_listing(body)
    return page if page is not None else parse_list_objects_v2_tree(body)


_PLAIN_BODY = re.compile(r"\A\s*(?:<\?xml[^>]*\?>)?\s*<ListBucketResult(?:\s[^>]*)?>")
_CONTENTS_FIELD = re.compile(r"<(Key|LastModified|ETag|Size)>([^<]*)</\1>")
_COMMON_PREFIX = re.compile(r"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>\s*</CommonPrefixes>")
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _replace_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name[0] == "#":
        return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))
    return _NAMED_ENTITIES[name]


def _xml_text(raw: str) -> str:
    if "&" not in raw:
        return raw
    quoted = raw.replace("&quot;", '"').replace("&#34;", '"')  # every ETag has these
    if "&" not in quoted:
        return quoted
    text = _ENTITY.sub(_replace_entity, raw)
    if "&" in _ENTITY.sub("", raw):
        raise ValueError("an unknown XML entity")
    return text


def _url_decoded(text: str) -> str:
    """``unquote_plus(text)``, with a shortcut for the usual case: only ``%2F`` escapes."""
    if "+" not in text:
        escapes = text.count("%")
        if escapes == 0:
            return text
        if escapes == text.count("%2F"):
            return text.replace("%2F", "/")
    return unquote_plus(text)


_CHILD_ELEMENT = re.compile(r"<(\w+)>(.*?)</\1>", re.DOTALL)
_FIELD_NAMES = ("Key", "LastModified", "ETag", "Size")
_ContentsPattern = tuple[re.Pattern[str], tuple[int, ...]]
_ContentsLayout = tuple[tuple[tuple[str, bool], ...], str, bool]
"""A ``<Contents>`` block's children (name, whether it holds elements), its ETag's quote, and
whether nothing stands between its elements (no whitespace: the usual server's body)."""
_contents_patterns: dict[_ContentsLayout, _ContentsPattern | None] = {}

FieldColumns = tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[str]]
"""Every Key (XML entities decoded), LastModified, ETag (unquoted; ``""`` if absent) and Size
text of a page."""
_CONTENTS_BLOCK = re.compile(r"<Contents>(.*?)</Contents>", re.DOTALL)
_ETAG_QUOTES = ("&#34;", "&quot;", '"')


def _etag_quote(block: str) -> str:
    """How the ETag of a ``<Contents>`` block is quoted (``""``: not at all, or no ETag)."""
    start = block.find("<ETag>")
    if start == -1:
        return ""
    start += len("<ETag>")
    return next((quote for quote in _ETAG_QUOTES if block.startswith(quote, start)), "")


def _contents_pattern(layout: _ContentsLayout) -> _ContentsPattern | None:
    """A pattern matching a whole ``<Contents>`` of this layout, capturing the fields, and where
    each field's group is; None when a field is missing or repeated.

    The Key and ETag groups hold no ``&`` (nor the ETag group a quote): they capture the final
    text (an ETag without its quotes), and a block with an entity there doesn't match, so its
    page is read block by block (entities decoded)."""
    children, quote, compact = layout
    names = [name for name, _ in children]
    if len(set(names)) != len(names) or not {"Key", "LastModified", "Size"} <= set(names):
        return None
    parts = []
    for name, nested in children:
        if name == "Key":
            parts.append("<Key>([^<&]*)</Key>")
        elif name == "ETag":
            parts.append(f'<ETag>{re.escape(quote)}([^<&"]*){re.escape(quote)}</ETag>')
        elif name in _FIELD_NAMES:
            parts.append(f"<{name}>([^<]*)</{name}>")
        else:  # Owner holds elements; StorageClass only text (matched faster)
            parts.append(f"<{name}>{'.*?' if nested else '[^<]*'}</{name}>")
    between = "" if compact else r"\s*"  # a block with whitespace then doesn't match: see caller
    pattern = re.compile(
        "<Contents>" + between + between.join(parts) + between + "</Contents>", re.DOTALL
    )
    groups = [name for name in names if name in _FIELD_NAMES]
    return pattern, tuple(groups.index(name) if name in groups else -1 for name in _FIELD_NAMES)


def _without_contents(text: str, count: int) -> str | None:
    """``text`` without its ``count`` ``<Contents>`` elements (None: they don't pair up). The
    usual body has them side by side: the text before the first and after the last."""
    if count == 0:
        return text
    first = text.index("<Contents>")
    end = text.rindex("</Contents>") + len("</Contents>")
    if text.count("</Contents><Contents>", first, end) == count - 1:
        return text[:first] + text[end:]
    blocks = len(_CONTENTS_BLOCK.findall(text))
    return _CONTENTS_BLOCK.sub("", text) if blocks == count else None


def _contents_columns(text: str, count: int) -> FieldColumns:
    """The fields of the ``count`` ``<Contents>``, column by column: one regex pass over the
    body when every block has the first block's layout and nothing to decode (the usual case),
    else block by block. Raises KeyError on a block without Key, LastModified or Size."""
    if count == 0:
        return (), (), (), ()
    first = text.index("<Contents>") + len("<Contents>")
    first_block = text[first : text.index("</Contents>", first)]
    elements = list(_CHILD_ELEMENT.finditer(first_block))
    children = tuple((match.group(1), "<" in match.group(2)) for match in elements)
    compact = sum(len(match.group(0)) for match in elements) == len(first_block)
    layout = (children, _etag_quote(first_block), compact)
    if layout not in _contents_patterns:
        if len(_contents_patterns) > 32:
            _contents_patterns.clear()
        _contents_patterns[layout] = _contents_pattern(layout)
    compiled = _contents_patterns[layout]
    if compiled is not None:
        pattern, (key, modified, etag, size) = compiled
        rows = pattern.findall(text)
        if len(rows) == count:

            def column(index: int) -> list[str]:
                return list(map(itemgetter(index), rows))  # 7x cheaper than zip(*rows, strict=True)

            no_etags: Sequence[str] = [""] * count
            return (
                column(key),
                column(modified),
                column(etag) if etag >= 0 else no_etags,
                column(size),
            )
    fields_of_blocks = []
    for block in _CONTENTS_BLOCK.findall(text):
        fields = dict(_CONTENTS_FIELD.findall(block))
        fields_of_blocks.append(
            (fields["Key"], fields["LastModified"], fields.get("ETag", ""), fields["Size"])
        )
    keys, times, etags, sizes = zip(*fields_of_blocks, strict=True)
    return _xml_texts(keys), times, _unquoted_etags(etags), sizes


def _xml_texts(texts: Sequence[str]) -> Sequence[str]:
    """The texts with their XML entities decoded; the usual ones (none) as they are."""
    if any("&" in text for text in texts):
        return [_xml_text(text) for text in texts]
    return texts


def _decoded_keys(keys: Sequence[str], url_encoded: bool) -> Sequence[str]:
    """The keys, URL-decoded when ``url_encoded``; the usual page (only ``%2F`` escapes) in
    one piece."""
    if not url_encoded:
        return keys
    joined = "\n".join(keys)
    if "%" not in joined and "+" not in joined:
        return keys
    separators_only = joined.count("\n") == len(keys) - 1  # no key holds the separator
    if separators_only and "+" not in joined and joined.count("%") == joined.count("%2F"):
        return joined.replace("%2F", "/").split("\n")
    return [_url_decoded(key) for key in keys]


def _unquoted_etags(texts: Sequence[str]) -> Sequence[str]:
    """The ETags without their quotes; the usual ones (each ``&quot;<text>&quot;`` or
    ``&#34;<text>&#34;``, no other entity, quote or line break) in one piece."""
    count = len(texts)
    joined = "\n".join(texts)
    for quote in ("&#34;", "&quot;"):
        plain = (
            joined.count("\n") == count - 1
            and joined.count(quote) == 2 * count
            and joined.count("&") == 2 * count
            and '"' not in joined
            and joined.startswith(quote)
            and joined.endswith(quote)
            and joined.count(f"{quote}\n{quote}") == count - 1
        )
        if plain:
            return joined.replace(quote, "").split("\n")
    return [_xml_text(text).strip('"') for text in texts]


def _top_level_text(text: str, name: str) -> str | None:
    match = re.search(f"<{name}>([^<]*)</{name}>", text)
    return _xml_text(match.group(1)) if match is not None else None


def _parse_plain_listing(body: bytes) -> ListingPage | None:
    """The page, or None when the body is not the plain markup this reader handles."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    declaration = _PLAIN_BODY.match(text)
    if (
        declaration is None
        or not text[-64:].rstrip().endswith("</ListBucketResult>")
        or ("!" in text and "<!" in text)  # CDATA, comments ("!": one memchr, the usual body)
        or (text.find("?", declaration.end()) != -1 and text.find("<?", declaration.end()) != -1)
    ):
        return None
    count = text.count("</Contents>")  # an opening tag of any other shape fails the patterns
    without_contents = _without_contents(text, count)
    # Namespace prefixes: looked for outside the <Contents> blocks only (a tenth of a page's
    # reading, in the whole body). A prefix declared inside a block applies in it alone, and a
    # block's pattern takes no element but its own plain ones (Owner's children aside: unread).
    if without_contents is None or "xmlns:" in without_contents:
        return None
    url_encoded = (_top_level_text(without_contents, "EncodingType") or "").lower() == "url"
    try:
        key_texts, modified_texts, etag_texts, size_texts = _contents_columns(text, count)
        times = {modified: _parse_timestamp(modified) for modified in set(modified_texts)}
        objects = list(
            zip(
                _decoded_keys(key_texts, url_encoded),
                map(int, size_texts),
                etag_texts,
                map(times.__getitem__, modified_texts),
                strict=True,
            )
        )
        prefix_texts = _COMMON_PREFIX.findall(without_contents)
        if len(prefix_texts) != without_contents.count("<CommonPrefixes"):
            return None
        common_prefixes = tuple(
            _url_decoded(_xml_text(raw)) if url_encoded else _xml_text(raw) for raw in prefix_texts
        )
        truncated = (_top_level_text(without_contents, "IsTruncated") or "").strip().lower()
        token = _top_level_text(without_contents, "NextContinuationToken") or None
    except (KeyError, ValueError):
        return None
    return ListingPage(
        objects=objects,
        is_truncated=truncated == "true",
        next_continuation_token=token,
        common_prefixes=common_prefixes,
    )


def parse_list_objects_v2_tree(body: bytes) -> ListingPage:
    """:func:`parse_list_objects_v2` with ``xml.etree`` (any well-formed XML)."""
    root = ElementTree.fromstring(body)
    tag = root.tag
    namespace = tag[: tag.index("}") + 1] if tag.startswith("{") else ""
    if tag != namespace + "ListBucketResult":
        raise ValueError(f"not a ListBucketResult: {tag}")
    url_encoded = (root.findtext(namespace + "EncodingType") or "").lower() == "url"
    key_tag, size_tag = namespace + "Key", namespace + "Size"
    etag_tag, modified_tag = namespace + "ETag", namespace + "LastModified"
    times: dict[str, datetime] = {}  # many keys of a page share a timestamp
    objects: list[S3Row] = []
    for contents in root.iterfind(namespace + "Contents"):
        key = size = etag = modified = None
        for child in contents:
            child_tag = child.tag
            if child_tag == key_tag:
                key = child.text or ""
            elif child_tag == size_tag:
                size = child.text
            elif child_tag == etag_tag:
                etag = child.text
            elif child_tag == modified_tag:
                modified = child.text
        if key is None or size is None or modified is None:
            raise ValueError("a Contents element lacks Key, Size or LastModified")
        last_modified = times.get(modified)
        if last_modified is None:
            last_modified = times[modified] = _parse_timestamp(modified)
        objects.append(
            (
                unquote_plus(key) if url_encoded else key,
                int(size),
                (etag or "").strip('"'),
                last_modified,
            )
        )
    prefix_tag = namespace + "Prefix"
    common_prefixes = tuple(
        unquote_plus(text) if url_encoded else text
        for element in root.iterfind(namespace + "CommonPrefixes")
        if (text := element.findtext(prefix_tag)) is not None
    )
    truncated = (root.findtext(namespace + "IsTruncated") or "").strip().lower() == "true"
    token = root.findtext(namespace + "NextContinuationToken") or None
    return ListingPage(
        objects=objects,
        is_truncated=truncated,
        next_continuation_token=token,
        common_prefixes=common_prefixes,
    )


def _parse_listing_in_place(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any]
) -> bool:
    """Parse a 200 listing of ours and leave botocore an empty one; False if not ours or not
    parsable (botocore then handles the response as usual)."""
    if not getattr(_calls_in_progress, "active", False):
        return False
    if response_dict.get("status_code") != 200:
        return False  # errors go to botocore's parser: ClientError with the S3 code, retries
    body = response_dict.get("body")
    if not isinstance(body, bytes):
        return False
    try:
        page = parse_list_objects_v2(body)
    except (ElementTree.ParseError, ValueError):
        return False  # botocore parses it (and fails the way it always does)
    response_dict["body"] = _EMPTY_RESULT
    customized_response_dict[_PAGE_FIELD] = page
    return True


def _remember_sent_request(request: Any, **_: Any) -> None:
    """``before-send``: keep the request a :class:`FastPageFetcher` call is sending (signed)."""
    if getattr(_calls_in_progress, "active", False):
        _calls_in_progress.sent = request


def _botocore_200_error_handler() -> Callable[..., Any] | None:
    """botocore's ``_handle_200_error`` (``before-parse.s3.*``), if this botocore has it."""
    from botocore import handlers

    handler = getattr(handlers, "_handle_200_error", None)
    return handler if callable(handler) else None


def _install_parser(events: Any) -> None:
    """Hook our parser into a client's events (idempotent).

    botocore's ``_handle_200_error`` parses every 200 S3 response into a full XML tree only to
    look for S3's "200 with an <Error> inside" (as long as our whole parsing). Where it exists it
    is replaced, for this client only, by one handler that parses our listings first (a body we
    parse is a complete ``ListBucketResult``, so not such an error) and hands every other
    response to ``_handle_200_error`` unchanged.
    """
    events.register(_BEFORE_SEND_EVENT, _remember_sent_request, unique_id=_SEND_HANDLER_ID)
    handle_200_error = _botocore_200_error_handler()
    if handle_200_error is None:

        def parse_only(
            response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
        ) -> None:
            _parse_listing_in_place(response_dict, customized_response_dict)

        events.register(_BEFORE_PARSE_EVENT, parse_only, unique_id=_HANDLER_ID)
        return

    def parse_or_check_200_error(
        operation_model: Any,
        response_dict: dict[str, Any],
        customized_response_dict: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        if getattr(operation_model, "name", None) == "ListObjectsV2" and _parse_listing_in_place(
            response_dict, customized_response_dict
        ):
            return
        handle_200_error(
            operation_model=operation_model,
            response_dict=response_dict,
            customized_response_dict=customized_response_dict,
            **kwargs,
        )

    events.unregister(_BEFORE_PARSE_ALL_S3, handle_200_error)
    events.register_first(_BEFORE_PARSE_ALL_S3, parse_or_check_200_error, unique_id=_HANDLER_ID)


class FastPageFetcher:
    """Fetches listing pages with the client's ``list_objects_v2``, parsing the XML itself.

    Same requests, signing, endpoint, credentials and retries as the client's own calls (module
    docstring); 6-8x less CPU per key than botocore's parser.

    Example::

        fetch = FastPageFetcher(client)  # a boto3 S3 client
        page = fetch(bucket="my-bucket", prefix="raw/", continuation_token=None, max_keys=1000)
    """

    def __init__(self, client: Any, *, direct: bool = True) -> None:
        self._client = client
        self._direct = direct
        self._listers = _direct_listers_of(client) if direct else {}
        _install_parser(client.meta.events)

    @staticmethod
    def supports(client: Any) -> bool:
        """Whether ``client`` is a botocore S3 client (events and ``list_objects_v2``)."""
        meta = getattr(client, "meta", None)
        return (
            hasattr(client, "list_objects_v2")
            and hasattr(getattr(meta, "events", None), "register")
            and getattr(getattr(meta, "service_model", None), "service_name", None) == "s3"
        )

    def __call__(
        self,
        *,
        bucket: str,
        prefix: str,
        continuation_token: str | None,
        max_keys: int,
        delimiter: str | None = None,
        start_after: str | None = None,
    ) -> ListingPage:
        request = list_objects_v2_request(
            bucket=bucket,
            prefix=prefix,
            continuation_token=continuation_token,
            max_keys=max_keys,
            delimiter=delimiter,
            start_after=start_after,
        )
        lister = self._listers.get(bucket)
        if lister is not None:
            page = _direct_page(lister, request)
            if page is not None:
                return page
        return self._client_page(request, capture=self._direct and bucket not in self._listers)

    def sends_directly(self, bucket: str) -> bool:
        """Whether this fetcher sends ``bucket``'s requests itself (after its first one)."""
        return self._listers.get(bucket) is not None

    def _client_page(self, request: dict[str, Any], *, capture: bool) -> ListingPage:
        """The page, requested through the client; with ``capture``, the request it sent makes
        the bucket's :class:`DirectLister` (or records that there is none)."""
        bucket = request["Bucket"]
        _calls_in_progress.active = True
        _calls_in_progress.sent = None
        try:
            response = self._client.list_objects_v2(**request)
        except (ClientError, BotoCoreError) as error:
            raise listing_error(error, bucket, request["Prefix"]) from error
        finally:
            _calls_in_progress.active = False
        if capture:
            sent, _calls_in_progress.sent = _calls_in_progress.sent, None
            with _listers_lock:
                if bucket not in self._listers:
                    connections = self._client.meta.config.max_pool_connections
                    self._listers[bucket] = direct_lister_from(self._client, sent, connections)
        page = response.get(_PAGE_FIELD)
        if isinstance(page, ListingPage):
            return page
        return page_from_boto3_response(response)


_listers_by_client: weakref.WeakKeyDictionary[Any, dict[str, DirectLister | None]] = (
    weakref.WeakKeyDictionary()
)
_listers_lock = threading.Lock()


def _direct_listers_of(client: Any) -> dict[str, DirectLister | None]:
    """The direct listers (by bucket) of a client, shared by its fetchers, so that a listing
    after the first sends its first request directly too (botocore's path costs about 3 ms of
    CPU more); a fetcher's own empty dict when the client now has hooks of someone else's (they
    see every call) or can't be referred to weakly."""
    if not only_library_handlers(client.meta.events):
        return {}
    with _listers_lock:
        try:
            return _listers_by_client.setdefault(client, {})
        except TypeError:
            return {}


_QUERY_NAMES = {
    "Prefix": "prefix",
    "MaxKeys": "max-keys",
    "ContinuationToken": "continuation-token",
    "Delimiter": "delimiter",
    "StartAfter": "start-after",
}


_REPLACEMENT_CHARACTER = "\ufffd".encode()
_REPLACEMENT_LEAD_BYTE = _REPLACEMENT_CHARACTER[:1]
_ECHOED_START_AFTER = re.compile(rb"<StartAfter>[^<]*</StartAfter>")


def _may_have_lost_characters(body: bytes) -> bool:
    """Whether a plain listing holds U+FFFD (the request's own ``StartAfter``, echoed, aside)."""
    # One byte is found at memchr speed: about a hundredth of the cost of looking for the three.
    if _REPLACEMENT_LEAD_BYTE not in body or _REPLACEMENT_CHARACTER not in body:
        return False
    return _REPLACEMENT_CHARACTER in _ECHOED_START_AFTER.sub(b"", body, count=1)


def _direct_page(lister: DirectLister, request: dict[str, Any]) -> ListingPage | None:
    """The page through ``lister``, or None when it got no 200 listing (the caller asks the
    client: its retries, errors and parser apply).

    Asked for without ``encoding-type=url`` first: URL-encoded keys cost SeaweedFS about 6% more
    CPU per listing (BENCHMARKS.md, section 1), and a plain body is exact wherever it holds no
    U+FFFD: servers writing XML with Go's ``encoding/xml`` (SeaweedFS, MinIO) put U+FFFD for each
    character XML can't carry (``\\x01``, ``\\ufffe``), AWS writes ``&#x1;`` references and moto
    the raw characters, both read exactly by the plain reader. A page holding U+FFFD, or one the
    plain reader can't read (``xml.etree`` would turn a raw carriage return into a line feed), is
    asked for again with ``encoding-type=url``."""
    query = {"list-type": "2"}
    for name, value in request.items():
        if name in _QUERY_NAMES:
            query[_QUERY_NAMES[name]] = str(value)
    body = lister.get(query)
    if body is None:
        return None
    if not _may_have_lost_characters(body):
        try:
            page = _parse_plain_listing(body)
        except ValueError:
            page = None
        if page is not None:
            return page
    body = lister.get({**query, "encoding-type": "url"})
    if body is None:
        return None
    try:
        return parse_list_objects_v2(body)
    except (ElementTree.ParseError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The keys ``k`` with ``low <= k < high`` under a prefix (``None``: unbounded).

    Bounds are sub-prefixes (ending in the delimiter), or for the first range after a
    sequential start, the last key listed; between sampled cuts, ``low`` is a cut's point and
    ``high`` the next cut's key (:func:`sampled_key_ranges`: there ``low`` itself, if it is a key,
    belongs to the range before). A range is listed with
    ``StartAfter=low``: that skips only the folder marker named ``low`` (folder markers are
    never yielded anyway). ``StartAfter=low[:-1]`` would be the exact bound by the S3 spec,
    but SeaweedFS, which lists directory entries, then skips the whole ``low`` directory.
    """

    low: str | None
    high: str | None


def _pick_boundaries(
    common_prefixes: tuple[str, ...], count: int, *, skip_first: bool
) -> list[str]:
    """About ``count`` sub-prefixes spread evenly (in order)."""
    candidates = common_prefixes[1:] if skip_first else common_prefixes
    if len(candidates) <= count:
        return list(candidates)
    return [candidates[index * len(candidates) // count] for index in range(count)]


def key_ranges(level_pages: Iterator[ListingPage], workers: int) -> Iterator[KeyRange]:
    """Cut the key space at sub-prefixes of a delimited listing's pages; ranges in key order.

    The first page gives up to ``2 x workers`` cuts (its first sub-prefix is not one: the range
    before it would hold only the keys listed before any sub-prefix); each later page gives two,
    so a level with millions of sub-prefixes still makes ranges of bounded size, lazily.
    """
    low: str | None = None
    first = True
    for page in level_pages:
        count = 2 * workers if first else 2
        for boundary in _pick_boundaries(page.common_prefixes, count, skip_first=first):
            if low is None or boundary > low:
                yield KeyRange(low, boundary)
                low = boundary
        first = False
    yield KeyRange(low, None)


def _bounded_pages(pages: Iterator[list[S3Row]], high: str | None) -> Iterator[list[S3Row]]:
    """The pages' objects below ``high`` (``None``: all); stops at the first page reaching it."""
    for objects in pages:
        if high is not None and objects and objects[-1][0] >= high:
            yield [obj for obj in objects if obj[0] < high]
            return
        yield objects


def iter_range_pages(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    key_range: KeyRange,
    page_size: int,
) -> Iterator[list[S3Row]]:
    """The objects of ``key_range`` under ``prefix``, page by page (listed with
    ``StartAfter=low``, stopping at the first page that reaches ``high``)."""
    low = key_range.low
    pages = iter_listing_pages(
        fetch_page, bucket, prefix, max_keys=lambda: page_size, start_after=low
    )

    def after_low() -> Iterator[list[S3Row]]:
        for page in pages:
            objects = page.objects
            if low is not None and objects and objects[0][0] <= low:
                objects = [obj for obj in objects if obj[0] > low]  # a server ignoring StartAfter
            yield objects

    return _bounded_pages(after_low(), key_range.high)


_Unit = TypeVar("_Unit")


@dataclass(eq=False)
class _Lane:
    """One range's pages on their way to the consumer."""

    pages: queue.Queue[Any]
    listing: bool = True
    """Whether its producer may still add pages (then it may hold up to the lookahead)."""


def _iter_ranges_in_parallel(
    list_range: Callable[[_Unit], Iterator[list[S3Row]]],
    ranges: Iterator[_Unit],
    workers: int,
    lookahead_pages: int,
) -> Iterator[list[S3Row]]:
    """Pages of the ranges, range after range; up to ``workers`` ranges listed at once.

    A range that is done frees its worker for the next one even while an earlier range is still
    being listed (its pages wait their turn), as long as the pages that can wait stay within
    ``(workers + 1) x lookahead_pages``: each range still listing counts for its whole
    lookahead, each finished one for the pages it holds. Without this, one slow request at the
    head of the window left the other workers idle: with sub-prefixes of one page each, the
    window of ``workers`` ranges emptied down to the slow one before a new range started.
    """
    stop = threading.Event()
    done = object()
    lock = threading.Lock()
    window: deque[_Lane | Raised] = deque()
    budget = (workers + 1) * lookahead_pages
    more_ranges = True
    listing = 0  # lanes whose producer has not finished

    def produce(key_range: _Unit, lane: _Lane) -> None:
        nonlocal listing
        try:
            for objects in list_range(key_range):
                if not put_unless_stopped(lane.pages, objects, stop):
                    return
            put_unless_stopped(lane.pages, done, stop)
        except BaseException as error:  # handed to the consumer, in order
            put_unless_stopped(lane.pages, Raised(error), stop)
        finally:
            with lock:
                lane.listing = False
                listing -= 1
            fill_window()

    def held_pages() -> int:
        return sum(
            (lookahead_pages if lane.listing else lane.pages.qsize())
            for lane in window
            if isinstance(lane, _Lane)
        )

    def fill_window() -> None:
        nonlocal more_ranges, listing
        with lock:
            while (
                more_ranges
                and not stop.is_set()
                and listing < workers
                and held_pages() + lookahead_pages <= budget
            ):
                try:
                    key_range = next(ranges)
                except StopIteration:
                    more_ranges = False
                    return
                except Exception as error:  # raised after the ranges before it were yielded
                    window.append(Raised(error))
                    more_ranges = False
                    return
                lane = _Lane(queue.Queue(maxsize=lookahead_pages))
                try:
                    executor.submit(produce, key_range, lane)
                except RuntimeError:  # shut down: the consumer stopped
                    return
                listing += 1
                window.append(lane)

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-list")
    try:
        fill_window()
        while True:
            with lock:
                head = window[0] if window else None
            if head is None:
                return
            if isinstance(head, Raised):
                raise head.error
            item = head.pages.get()
            if isinstance(item, Raised):
                raise item.error
            if item is done:
                with lock:
                    window.popleft()
            fill_window()
            if item is not done:
                yield item
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)


def iter_fanned_out_pages(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    *,
    workers: int,
    page_size: int = LIST_PAGE_SIZE,
    lookahead_pages: int = LOOKAHEAD_PAGES,
    delimiter: str = DELIMITER,
    sequential_pages: int = SEQUENTIAL_PAGES,
) -> Iterator[list[S3Row]]:
    """All objects under ``prefix``, as lists in global key order; in parallel once it is large.

    The listing starts sequential, exactly as the boto3 paginator does (the same pages), and fans
    out only when it shows it is large: ``sequential_pages`` pages came back truncated (a count,
    not a time: a slow page may be a busy server, which parallel requests would only slow
    down further). A small listing costs no extra request.
    The rest is then listed in key ranges in parallel (module docstring); the same objects in
    the same order as a sequential listing. Closing the generator stops the pool; errors of a
    range are raised when its turn comes.

    Example::

        for objects in iter_fanned_out_pages(FastPageFetcher(client), "my-bucket", "raw/", workers=8):
            print(len(objects), objects[0][0] if objects else None)  # rows: (key, size, etag, ...)
    """
    pages = iter_listing_pages(fetch_page, bucket, prefix, max_keys=lambda: page_size)
    first_key: str | None = None
    last_objects: list[S3Row] = []  # of the last page that had any
    listed = 0
    page_seconds = float("inf")  # the quickest page of the sequential start
    for count in itertools.count(1):
        started = time.monotonic()
        page = next(pages, None)
        page_seconds = min(page_seconds, time.monotonic() - started)
        if page is None:
            return
        yield page.objects
        if not page.is_truncated:
            return
        listed += len(page.objects)
        if page.objects:
            first_key = first_key or page.objects[0][0]
            last_objects = page.objects
        if workers >= 2 and last_objects and count >= sequential_pages:
            break
    assert first_key is not None
    sample = [first_key, *(obj[0] for obj in last_objects)]
    yield from _iter_rest_fanned_out(
        fetch_page,
        bucket,
        prefix,
        pages,
        sample,
        listed,
        page_seconds,
        workers=workers,
        page_size=page_size,
        lookahead_pages=lookahead_pages,
        delimiter=delimiter,
    )


def sub_prefix_level(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    page_size: int = LIST_PAGE_SIZE,
    delimiter: str = DELIMITER,
) -> tuple[str, ListingPage]:
    """The first level under ``prefix`` with more than one sub-prefix (or any object), and the
    first page of its delimited listing: a prefix holding a single sub-prefix and nothing else
    is walked down (``"" -> "data/" -> ...``, at most :data:`MAX_DESCENT` levels). Its keys are
    exactly the keys under ``prefix``."""
    level_prefix = prefix
    first = fetch_page(
        bucket=bucket,
        prefix=level_prefix,
        continuation_token=None,
        max_keys=page_size,
        delimiter=delimiter,
    )
    for _ in range(MAX_DESCENT):
        only_one_sub_prefix = (
            not first.is_truncated and not first.objects and len(first.common_prefixes) == 1
        )
        if not only_one_sub_prefix:
            break
        level_prefix = first.common_prefixes[0]
        first = fetch_page(
            bucket=bucket,
            prefix=level_prefix,
            continuation_token=None,
            max_keys=page_size,
            delimiter=delimiter,
        )
    return level_prefix, first


def _iter_rest_fanned_out(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    rest: Iterator[ListingPage],
    sample: list[str],
    listed: int,
    page_seconds: float,
    *,
    workers: int,
    page_size: int,
    lookahead_pages: int,
    delimiter: str,
) -> Iterator[list[S3Row]]:
    """The keys after the last one listed (``sample[-1]``; ``sample``: the first key and the
    last page's): ``rest`` (the sequential listing, going on from its continuation token) up to
    the first cut, and the ranges between the later cuts in parallel. Without sub-prefixes to
    cut at, the cuts are sampled (:mod:`yt_assets.s3.key_sampling`)."""
    last_key = sample[-1]

    def sampled() -> Iterator[list[S3Row]]:  # no sub-prefix to cut at past last_key
        pieces = sampled_ranges(
            fetch_page,
            bucket,
            prefix,
            sample,
            after=last_key,
            page_seconds=page_seconds,
            workers=workers,
            listed_count=listed,
            min_range_keys=MIN_SAMPLED_RANGE_PAGES * page_size,
            only_large=SAMPLE_ONLY_LARGE_RESTS,
            delimiter=delimiter,
        )
        if not pieces:
            return (page.objects for page in rest)
        head, *later = pieces
        return _iter_rest_and_ranges(
            fetch_page, bucket, prefix, rest, head, iter(later), workers, page_size, lookahead_pages
        )

    level_prefix, first = sub_prefix_level(fetch_page, bucket, prefix, page_size, delimiter)
    if not first.common_prefixes or first.common_prefixes[-1] <= last_key:
        yield from sampled()  # (in this page)
        return
    level_pages = iter_listing_pages(
        fetch_page,
        bucket,
        level_prefix,
        max_keys=lambda: page_size,
        delimiter=delimiter,
        first_page=first,
    )
    seen = sum(1 for sub_prefix in first.common_prefixes if sub_prefix <= last_key)
    if listed >= SUB_PREFIX_PAGES * page_size * max(seen, 1):
        # Sub-prefixes of half a page or more: each listed with its own Prefix, as a sequential
        # listing of it would (no range's last page running into the next range's keys).
        yield from _iter_units_in_parallel(
            fetch_page,
            bucket,
            _sub_prefix_units(level_pages, level_prefix, last_key, delimiter),
            workers,
            lookahead_pages,
            page_size,
        )
        return
    ranges = _ranges_after(key_ranges(level_pages, workers), last_key)
    head = next(ranges)
    if head.high is None:
        yield from sampled()
        return
    yield from _iter_rest_and_ranges(
        fetch_page, bucket, level_prefix, rest, head, ranges, workers, page_size, lookahead_pages
    )


def _iter_rest_and_ranges(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    rest: Iterator[ListingPage],
    head: KeyRange,
    ranges: Iterator[KeyRange],
    workers: int,
    page_size: int,
    lookahead_pages: int,
) -> Iterator[list[S3Row]]:
    """``head`` listed by ``rest`` (the sequential listing), the later ``ranges`` on their own;
    in parallel, in order."""

    def list_range(key_range: KeyRange) -> Iterator[list[S3Row]]:
        if key_range is head:
            return _bounded_pages((page.objects for page in rest), key_range.high)
        return iter_range_pages(fetch_page, bucket, prefix, key_range, page_size)

    return _iter_ranges_in_parallel(
        list_range, itertools.chain([head], ranges), workers, lookahead_pages
    )


def probe_first_keys(fetch_page: PageFetcher, bucket: str, prefix: str, workers: int) -> Probe:
    """A :data:`~yt_assets.s3.key_sampling.Probe` sending one-key listings (``MaxKeys=1``,
    ``StartAfter=point``), ``workers`` at a time."""

    def first_key_after(point: str) -> str | None:
        page = fetch_page(
            bucket=bucket, prefix=prefix, continuation_token=None, max_keys=1, start_after=point
        )
        return page.objects[0][0] if page.objects else None

    def probe(points: Sequence[str]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-probe") as pool:
            return list(pool.map(first_key_after, points))

    return probe


def sampled_key_ranges(cuts: Sequence[Cut], low: str | None) -> list[KeyRange]:
    """The ranges between sampled ``cuts``, the first from ``low``: each ends at a cut's key and
    the next is listed after the cut's point (:mod:`yt_assets.s3.key_sampling`)."""
    lows = [low, *(cut.point for cut in cuts)]
    highs = [*(cut.key for cut in cuts), None]
    return [KeyRange(start, end) for start, end in zip(lows, highs, strict=True)]


def probes_pay_off(probe: Probe, after: str, page_seconds: float) -> bool:
    """Whether one probe after ``after`` takes at most :data:`PROBE_COST_SHARE` of
    ``page_seconds`` (a page's time): otherwise sampled cuts would cost more than they save."""
    started = time.monotonic()
    probe([after])
    return time.monotonic() - started <= PROBE_COST_SHARE * page_seconds


def sampled_ranges(
    fetch_page: PageFetcher,
    bucket: str,
    prefix: str,
    listed: Sequence[str],
    *,
    after: str | None,
    page_seconds: float,
    workers: int,
    pieces: int | None = None,
    listed_count: int | None = None,
    min_range_keys: int = 0,
    only_large: bool = False,
    delimiter: str = DELIMITER,
) -> list[KeyRange]:
    """The key space past ``listed[-1]`` (keys listed so far, in order) cut at sampled keys
    into ranges, the first from ``after``; ``[]`` when one probe costs more than
    :data:`PROBE_COST_SHARE` of ``page_seconds`` or the probes find no cut. ``pieces``: at most
    this many ranges (default ``2 x workers``); the other options are
    :func:`~yt_assets.s3.key_sampling.sampled_cuts`'."""
    probe = probe_first_keys(fetch_page, bucket, prefix, workers)
    if not probes_pay_off(probe, listed[-1], page_seconds):
        return []
    cuts = sampled_cuts(
        probe,
        prefix,
        listed,
        pieces or 2 * workers,
        delimiter,
        listed_count=listed_count,
        min_range_keys=min_range_keys,
        only_large=only_large,
    )
    return sampled_key_ranges(cuts, after) if cuts else []


@dataclass(frozen=True, slots=True)
class SubPrefix:
    """A sub-prefix of the level, listed with ``Prefix=prefix`` (and ``StartAfter=after``)."""

    prefix: str
    after: str | None = None


_ListingUnit = SubPrefix | list[S3Row]
"""What one worker lists: a sub-prefix, or objects the level's delimited listing already holds."""


def sub_prefix_of(key: str, level_prefix: str, delimiter: str = DELIMITER) -> str | None:
    """The sub-prefix of ``level_prefix`` that ``key`` lies under (None: a level object).

    Example::

        assert sub_prefix_of("data/004/part-1.json", "data/") == "data/004/"
        assert sub_prefix_of("data/readme", "data/") is None
    """
    cut = key.find(delimiter, len(level_prefix))
    return None if cut == -1 else key[: cut + len(delimiter)]


def _sub_prefix_units(
    level_pages: Iterator[ListingPage], level_prefix: str, last_key: str, delimiter: str
) -> Iterator[_ListingUnit]:
    """After ``last_key``, in key order: the rest of the sub-prefix it lies under (listed after
    it, with that sub-prefix as ``Prefix``: no page runs into the next sub-prefix), then each
    later sub-prefix and the level's own objects between them."""
    current = sub_prefix_of(last_key, level_prefix, delimiter)
    if current is not None:
        yield SubPrefix(current, after=last_key)
    for page in level_pages:
        objects = [obj for obj in page.objects if obj[0] > last_key]
        taken = 0
        for sub_prefix in page.common_prefixes:
            if sub_prefix <= last_key:  # listed, or ``current``
                continue
            before = taken
            while taken < len(objects) and objects[taken][0] < sub_prefix:
                taken += 1
            if taken > before:
                yield objects[before:taken]
            yield SubPrefix(sub_prefix)
        if taken < len(objects):
            yield objects[taken:]


def _iter_units_in_parallel(
    fetch_page: PageFetcher,
    bucket: str,
    units: Iterator[_ListingUnit],
    workers: int,
    lookahead_pages: int,
    page_size: int,
) -> Iterator[list[S3Row]]:
    def list_unit(unit: _ListingUnit) -> Iterator[list[S3Row]]:
        if isinstance(unit, SubPrefix):
            key_range = KeyRange(unit.after, None)
            return iter_range_pages(fetch_page, bucket, unit.prefix, key_range, page_size)
        return iter([unit])

    return _iter_ranges_in_parallel(list_unit, units, workers, lookahead_pages)


def _ranges_after(ranges: Iterator[KeyRange], last_key: str) -> Iterator[KeyRange]:
    """The ranges holding keys after ``last_key``; the first one starts right after it."""
    for key_range in ranges:
        if key_range.high is not None and key_range.high <= last_key:
            continue
        yield KeyRange(last_key, key_range.high)
        yield from ranges
        return
