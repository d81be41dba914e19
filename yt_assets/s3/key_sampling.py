"""Cuts for a key space without sub-prefixes, found with ``StartAfter`` probes.

A prefix whose keys hold no delimiter (``logs/2026-12-01T00-00-01.json``, ...) gives the fan-out
no ``CommonPrefixes`` to cut at. Its key space is cut at keys found by probes instead: a probe is
a one-key listing (``MaxKeys=1``) with ``StartAfter`` set to a point; the server answers with the
first key after the point, or with none. :func:`sampled_cuts` sends three rounds of probes, each
round's in parallel, after the last key listed so far:

1. *bracket*: points 16, 256, 4096, ... times the span of the keys listed so far past the last
   one; the last point with a key after it and the first without one bracket the end of the key
   space;
2. *refine*: the bracket cut into 16 points: the end is then known to within a 16th of it;
3. *spread*: ``pieces - 1`` points evenly between the last key listed and the end; the keys they
   find are the cuts.

Positions (:class:`KeyDigits`): a key's characters after the prefix read as the digits of one
number of a fixed width, in a base made of the characters the keys listed so far use (sorted by
code point, which is S3's UTF-8 byte order; the delimiter and control characters left out), one
more digit standing for "the key ends here". Keys of digits and a few letters then spread over
the positions about as evenly as over their numbers. Points are made of those characters only,
so they are valid ``StartAfter`` values; a key with a character the listed keys lack is placed
approximately. That costs balance, never exactness.

Why it is exact whatever the points: a :class:`Cut` is a point and the key the server answered
for it. The range before a cut lists up to that key (excluded), the range after it lists with
``StartAfter=point``, whose first key is that very key: consecutive ranges meet at keys the server
itself returned. Even a server whose ``StartAfter`` skips more than the S3 spec says (SeaweedFS
skips a directory named exactly like the point) loses nothing: the range before lists those keys
on its way to the cut's key. A server that ignores ``StartAfter`` answers a key at or before the
point: then there are no cuts and the listing stays sequential.

Example (a probe over a sorted list; in the listing it is a ``MaxKeys=1`` request):

>>> import bisect
>>> keys = [f"logs/{n:05d}.json" for n in range(20_000)]
>>> def probe(points):
...     found = [bisect.bisect_right(keys, point) for point in points]
...     return [keys[index] if index < len(keys) else None for index in found]
>>> cuts = sampled_cuts(probe, "logs/", keys[:5_000], pieces=8)
>>> all(keys[bisect.bisect_right(keys, cut.point)] == cut.key for cut in cuts)
True
>>> len(cuts) >= 4 and [cut.key for cut in cuts] == sorted(cut.key for cut in cuts)
True
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "BRACKET_FACTOR",
    "Cut",
    "KeyDigits",
    "Probe",
    "sampled_cuts",
]

BRACKET_FACTOR = 16
"""How much farther each bracket point lies than the one before (and how many parts the
refining round cuts the bracket into)."""

MAX_WIDTH = 32
"""Characters of a key (after the prefix) that positions tell apart."""

Probe = Callable[[Sequence[str]], Sequence[str | None]]
"""For each point, the first key after it (``StartAfter=point``), or None: no key after it."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Where the key space is cut: ``key`` is the first key after ``point``."""

    point: str
    """``StartAfter`` of the range after the cut."""
    key: str
    """The first key of the range after the cut; the range before ends just before it."""


@dataclass(frozen=True)
class KeyDigits:
    """Keys under ``prefix`` as numbers: digit 0 ends a key, digit ``i`` is ``alphabet[i - 1]``.

    >>> digits = KeyDigits.of("a/", ["a/b1", "a/a2"], delimiter="/")
    >>> digits.alphabet, digits.width
    ('12ab', 3)
    >>> digits.position("a/b1") == (4 * 5 + 1) * 5
    True
    >>> digits.point_at(digits.position("a/b1")), digits.point_at(digits.position("a/b1") - 1)
    ('a/b1', 'a/b')
    """

    prefix: str
    alphabet: str
    width: int

    @classmethod
    def of(cls, prefix: str, keys: Sequence[str], delimiter: str) -> KeyDigits:
        """The digits of the characters ``keys`` use after ``prefix`` (none of ``delimiter``)."""
        suffixes = [key[len(prefix) :] for key in keys]
        used = {char for suffix in suffixes for char in suffix}
        alphabet = "".join(sorted(char for char in used if char >= " " and char not in delimiter))
        width = min(MAX_WIDTH, max((len(suffix) for suffix in suffixes), default=0) + 1)
        return cls(prefix, alphabet, width)

    @property
    def base(self) -> int:
        return len(self.alphabet) + 1

    @property
    def top(self) -> int:
        """The largest position."""
        return self.base**self.width - 1

    def position(self, key: str) -> int:
        """Where ``key`` lies; a character not in the alphabet as the last one below it, followed
        by the largest digits."""
        value = 0
        suffix = key[len(self.prefix) : len(self.prefix) + self.width]
        for index in range(self.width):
            if index >= len(suffix):
                return value * self.base ** (self.width - index)
            char = suffix[index]
            digit = bisect_left(self.alphabet, char)
            if digit < len(self.alphabet) and self.alphabet[digit] == char:
                value = value * self.base + digit + 1
                continue
            value = value * self.base + digit  # between alphabet[digit - 1] and alphabet[digit]
            rest = self.width - index - 1
            return (value + 1) * self.base**rest - 1
        return value

    def point_at(self, position: int) -> str:
        """The key ``position`` stands for (its digits up to the first 0)."""
        chars: list[str] = []
        for index in range(self.width - 1, -1, -1):
            digit = position // self.base**index % self.base
            if digit == 0:
                break
            chars.append(self.alphabet[digit - 1])
        return self.prefix + "".join(chars)


def _answers(
    probe: Probe, digits: KeyDigits, last_key: str, positions: Sequence[int]
) -> list[tuple[int, str, str | None]]:
    """``(position, point, first key after the point)`` for the positions whose point lies past
    ``last_key``, in order, one per distinct point; a key at or before its point (a server
    ignoring ``StartAfter``) counts as none."""
    planned: dict[str, int] = {}
    for position in positions:
        point = digits.point_at(position)
        if point >= last_key:
            planned.setdefault(point, position)
    points = sorted(planned)
    keys = probe(points) if points else []
    return [
        (planned[point], point, key if key is not None and key > point else None)
        for point, key in zip(points, keys, strict=True)
    ]


def _narrowed(
    answers: Sequence[tuple[int, str, str | None]], digits: KeyDigits, low: int, high: int
) -> tuple[int, int]:
    """The end of the key space lies in ``[low, high]``: at or past every key found, at or
    before the first point with no key after it."""
    for position, _, key in answers:
        if key is None:
            return low, min(high, position)
        low = max(low, digits.position(key))
    return low, high


def _evenly(low: int, high: int, parts: int) -> list[int]:
    return [low + (high - low) * index // parts for index in range(1, parts)]


def sampled_cuts(
    probe: Probe,
    prefix: str,
    listed: Sequence[str],
    pieces: int,
    delimiter: str = "/",
    *,
    listed_count: int | None = None,
    min_range_keys: int = 0,
    only_large: bool = False,
) -> list[Cut]:
    """Up to ``pieces - 1`` cuts of the keys after ``listed[-1]`` under ``prefix``, in key order,
    each at a key the probe found (module docstring). ``listed``: keys listed so far, in order
    (the first and the last give the scale, all of them the characters), of ``listed_count``
    keys in all (default: ``len(listed)``). Fewer pieces when the rest, estimated from that
    density up to the probes' bound on the end, holds less than ``min_range_keys`` keys a piece: a
    range's last page runs into the next range, so small ranges cost more requests than they
    save (none when the rest is too small for two). With ``only_large``, none either unless the
    rest is more than :data:`BRACKET_FACTOR` times the listed span (the first bracket point finds
    a key): a smaller rest costs only the bracket round."""
    if not listed or pieces < 2:
        return []
    digits = KeyDigits.of(prefix, listed, delimiter)
    last_key = listed[-1]
    start = digits.position(last_key)
    span = max(start - digits.position(listed[0]), 1)
    bracket = []
    step = span * BRACKET_FACTOR
    while start + step < digits.top:
        bracket.append(start + step)
        step *= BRACKET_FACTOR
    bracket.append(digits.top)
    answers = _answers(probe, digits, last_key, bracket)
    if only_large and (not answers or answers[0][2] is None):
        return []
    low, high = _narrowed(answers, digits, start, digits.top)
    refine = _evenly(low, high, BRACKET_FACTOR)
    _, high = _narrowed(_answers(probe, digits, last_key, refine), digits, low, high)
    if min_range_keys > 0:
        count = len(listed) if listed_count is None else listed_count
        rest = count * (high - start) // span  # at most this many keys after last_key
        pieces = min(pieces, rest // min_range_keys)
        if pieces < 2:
            return []
    cuts: list[Cut] = []
    for _, point, key in _answers(probe, digits, last_key, _evenly(start, high, pieces)):
        if key is None or key <= last_key or (cuts and key < cuts[-1].key):
            continue
        if cuts and key == cuts[-1].key:
            cuts[-1] = Cut(point, key)  # the later point: the same range
            continue
        cuts.append(Cut(point, key))
    return cuts
