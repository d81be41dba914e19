"""Cuts of a key space without sub-prefixes, found with ``StartAfter`` probes.

The cutting logic on sorted lists of keys (a probe answers as S3 does: the first key after the
point), then the listing that uses it against real servers: moto's and SeaweedFS, whose
``StartAfter`` skips a directory named exactly like the point.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest

from yt_assets.demo.local_s3 import LocalS3
from yt_assets.s3 import fast_listing
from yt_assets.s3.fast_listing import (
    FastPageFetcher,
    iter_range_pages,
    probe_first_keys,
    probes_pay_off,
    sampled_key_ranges,
)
from yt_assets.s3.key_sampling import Cut, KeyDigits, sampled_cuts
from yt_assets.s3.listing import iter_s3_objects
from yt_assets_tests.conftest import S3TestServer, bucket_of_keys
from yt_assets_tests.test_s3_listing_fast import as_tuples, paginator_objects, record_list_calls


class SortedKeys:
    """A bucket's keys in S3's order; :meth:`probe` answers as a ``MaxKeys=1`` listing does."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = sorted(keys, key=str.encode)
        self.points: list[list[str]] = []

    def first_after(self, point: str) -> str | None:
        index = bisect.bisect_right(self.keys, point)  # code point order is UTF-8 byte order
        return self.keys[index] if index < len(self.keys) else None

    def probe(self, points: Sequence[str]) -> list[str | None]:
        self.points.append(list(points))
        return [self.first_after(point) for point in points]

    def range_sizes(self, listed: int, cuts: Sequence[Cut]) -> list[int]:
        bounds = [listed, *(self.keys.index(cut.key) for cut in cuts), len(self.keys)]
        return [high - low for low, high in pairwise(bounds)]


LAYOUTS = {
    "decimal": [f"logs/part-{n:07d}.json" for n in range(200_000)],
    "hex": [f"logs/{random.Random(n).getrandbits(64):016x}.bin" for n in range(100_000)],
    "timestamps": [
        f"logs/2026-12-{day:02d}T{hour:02d}:{minute:02d}:00Z.json"
        for day in range(1, 31)
        for hour in range(24)
        for minute in range(0, 60, 2)
    ],
    "unpadded": [f"logs/{n}" for n in range(100_000)],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_cuts_are_real_keys_in_order_and_spread_the_rest(layout: str) -> None:
    bucket = SortedKeys(LAYOUTS[layout])
    listed = 5_000

    cuts = sampled_cuts(bucket.probe, "logs/", bucket.keys[:listed], pieces=16)

    assert [cut.key for cut in cuts] == sorted({cut.key for cut in cuts})
    for cut in cuts:
        assert bucket.first_after(cut.point) == cut.key  # the server's own answer
        assert cut.key > bucket.keys[listed - 1]
    sizes = bucket.range_sizes(listed, cuts)
    rest = len(bucket.keys) - listed
    assert len(sizes) >= 6
    assert max(sizes) <= 0.3 * rest  # no range holds most of the listing
    assert len(bucket.points) == 3  # three rounds of probes
    assert sum(len(points) for points in bucket.points) <= 80


def test_points_are_printable_and_hold_no_delimiter() -> None:
    keys = [f"raw/ключ-{n:04d}\t/x" for n in range(3_000)]
    bucket = SortedKeys(keys)

    sampled_cuts(bucket.probe, "raw/", bucket.keys[:1_000], pieces=8)

    points = [point for round_points in bucket.points for point in round_points]
    assert points
    for point in points:
        suffix = point.removeprefix("raw/")
        assert point.startswith("raw/") and "/" not in suffix and "\t" not in suffix


def test_a_short_rest_gives_few_cuts_and_an_empty_rest_none() -> None:
    bucket = SortedKeys([f"k/{n:05d}" for n in range(5_003)])
    cuts = sampled_cuts(bucket.probe, "k/", bucket.keys[:5_000], pieces=16)
    assert len(cuts) <= 3 and all(cut.key in bucket.keys[5_000:] for cut in cuts)

    assert sampled_cuts(bucket.probe, "k/", bucket.keys, pieces=16) == []


def test_a_rest_too_small_for_ranges_of_min_range_keys_is_not_cut() -> None:
    bucket = SortedKeys([f"k/{n:05d}" for n in range(20_000)])
    listed = bucket.keys[:5_000]  # 15,000 keys after them

    few = sampled_cuts(bucket.probe, "k/", listed, pieces=16, min_range_keys=8_000)
    none = sampled_cuts(bucket.probe, "k/", listed, pieces=16, min_range_keys=16_000)

    # the rest is estimated up to the probes' bound on its end: within 2x of its 15,000 keys
    assert 1 <= len(few) <= 2
    assert none == []  # not even 2 ranges of 16,000
    assert sampled_cuts(bucket.probe, "k/", listed, pieces=16) != []  # without the minimum


def test_only_large_cuts_nothing_of_a_rest_under_16_times_the_listed_span() -> None:
    small = SortedKeys([f"k/{n:05d}" for n in range(60_000)])  # 55,000 after 5,000: 11x
    large = SortedKeys([f"k/{n:06d}" for n in range(200_000)])  # 195,000 after 5,000: 39x

    assert sampled_cuts(small.probe, "k/", small.keys[:5_000], 16, only_large=True) == []
    assert len(small.points) == 1  # the bracket round only
    assert sampled_cuts(small.probe, "k/", small.keys[:5_000], 16)  # cut without it
    assert sampled_cuts(large.probe, "k/", large.keys[:5_000], 16, only_large=True)


def test_a_server_ignoring_start_after_gets_no_cuts() -> None:
    keys = [f"k/{n:05d}" for n in range(20_000)]

    def ignoring_probe(points: Sequence[str]) -> list[str | None]:
        return [keys[0] for _ in points]  # the first key of the prefix, whatever the point

    assert sampled_cuts(ignoring_probe, "k/", keys[:5_000], pieces=16) == []


def test_key_digits_order_keys_as_s3_does() -> None:
    keys = sorted({"k/a", "k/a0", "k/a9", "k/b", "k/é", "k/z~", "k/"}, key=str.encode)
    digits = KeyDigits.of("k/", keys, delimiter="/")
    positions = [digits.position(key) for key in keys]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # a character the sample lacks lands between its neighbours
    assert digits.position("k/a5") > digits.position("k/a0")
    assert digits.position("k/a5") < digits.position("k/a9")
    assert all(
        digits.point_at(position) <= key for position, key in zip(positions, keys, strict=True)
    )


def test_probes_are_sent_only_where_they_cost_well_under_a_page() -> None:
    def slow_probe(points: Sequence[str]) -> list[str | None]:
        time.sleep(0.2)
        return [None for _ in points]

    assert probes_pay_off(lambda points: [None for _ in points], "k/1", page_seconds=0.1)
    assert not probes_pay_off(slow_probe, "k/1", page_seconds=0.1)  # moto: a probe is a page


# Against real servers: sampled cuts even where tiny test pages make probes cost like pages


@pytest.fixture
def sample_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_listing, "PROBE_COST_SHARE", float("inf"))
    monkeypatch.setattr(fast_listing, "SAMPLE_ONLY_LARGE_RESTS", False)
    monkeypatch.setattr(fast_listing, "MIN_SAMPLED_RANGE_PAGES", 1)


FLAT_KEYS = [
    *(f"flat/{n:05d}.json" for n in range(600)),
    "flat/00100 space.json",
    "flat/00200+plus",
    "flat/00300%25",
    "flat/00400-é.json",
    "flat/zz-last",
]


@pytest.fixture(scope="module")
def flat_bucket(s3_server: S3TestServer) -> str:
    return bucket_of_keys(s3_server, "flat", FLAT_KEYS)


@pytest.mark.parametrize(("fan_out", "page_size"), [(4, 7), (3, 20), (8, 5)])
@pytest.mark.usefixtures("sample_always")
def test_a_flat_prefix_fans_out_and_lists_what_the_paginator_lists(
    s3_server: S3TestServer, flat_bucket: str, fan_out: int, page_size: int
) -> None:
    client = s3_server.client()
    expected = paginator_objects(client, flat_bucket, "flat/")
    calls = record_list_calls(client)

    listed = as_tuples(
        iter_s3_objects(client, flat_bucket, "flat/", fan_out=fan_out, page_size=page_size)
    )

    assert listed == expected
    probes = [call for call in calls if call["MaxKeys"] == 1]
    assert probes and all(call["Prefix"] == "flat/" and "StartAfter" in call for call in probes)
    range_threads = {call["thread"] for call in calls if call["MaxKeys"] != 1}
    assert len({name for name in range_threads if name.startswith("s3-list")}) >= 2
    assert threading.current_thread().name in range_threads  # the sequential start


def _list_ranges(fetch: Any, bucket: str, prefix: str, cuts: Sequence[Cut]) -> list[str]:
    return [
        row[0]
        for key_range in sampled_key_ranges(cuts, None)
        for page in iter_range_pages(fetch, bucket, prefix, key_range, 2)
        for row in page
    ]


def test_a_point_named_like_a_directory_loses_nothing_on_seaweedfs(weed: LocalS3) -> None:
    client = weed.client("admin")
    client.create_bucket(Bucket="sampled")
    keys = ["lvl/a", "lvl/b/x", "lvl/b/y", "lvl/b/z", "lvl/b0", "lvl/c", "lvl/d"]
    for key in keys:
        client.put_object(Bucket="sampled", Key=key, Body=b"x")
    fetch = FastPageFetcher(client)
    probe = probe_first_keys(fetch, "sampled", "lvl/", workers=2)

    (answer,) = probe(["lvl/b"])
    # S3 says "lvl/b/x"; SeaweedFS skips the directory named "b". Either way the cut holds.
    assert answer in {"lvl/b/x", "lvl/b0"}
    listed = _list_ranges(fetch, "sampled", "lvl/", [Cut("lvl/b", answer)])
    assert listed == keys


@pytest.mark.usefixtures("sample_always")
def test_a_flat_prefix_on_seaweedfs_lists_what_the_paginator_lists(weed: LocalS3) -> None:
    client = weed.client("admin")
    client.create_bucket(Bucket="flat")
    for key in FLAT_KEYS[::3]:
        client.put_object(Bucket="flat", Key=key, Body=key.encode()[:5])
    expected = paginator_objects(client, "flat", "flat/")

    listed = as_tuples(iter_s3_objects(client, "flat", "flat/", fan_out=4, page_size=5))

    assert listed == expected
