"""What is left between our default listing and obstore's best (issue 13 item 1), side by side.

Not a section of its own in BENCHMARKS.md: a measurement behind section 1's reading. It times,
on the 100,000-key partitioned layout of benchmark 1 (same SeaweedFS data), our default listing
with each of the two costs the issue's other items ask for taken away in turn, by patching the
module for the run only:

- the sequential start (item 0: the first pages are the paginator's own requests), shortened
  from :data:`~yt_assets.s3.fast_listing.SEQUENTIAL_PAGES` pages to 1 or 2;
- plain direct requests: since 2026-12-06 they are sent without ``encoding-type=url`` (a page
  holding U+FFFD, which Go servers write for control characters, is asked for again encoded);
  the variant "every request encoded" puts back the query sent before.

    benchmarks/.venv/bin/python benchmarks/listing_gap.py --rounds 9

Prints wall, client CPU and SeaweedFS CPU medians per variant, and each variant's speed against
obstore paired round by round (both timed in the same round, a few seconds apart: on a shared
machine whose speed drifts by 10-40% over minutes, the pairs cancel the drift that separate
medians keep); nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Callable, Iterator
from typing import Any

from bench_common import CACHE_DIR, SeaweedS3, Timings, ensure_keys, seaweed_s3, time_in_rotation
from listing_speed import PARTITIONED, obstore_list

import yt_assets.s3.fast_listing as fast_listing
from yt_assets.s3.direct_requests import DirectLister
from yt_assets.s3.listing import iter_s3_objects
from yt_assets.s3.pages import ListingPage

_SHIPPED_DIRECT_PAGE = fast_listing._direct_page
OBSTORE = "obstore, fan-out 8 over CommonPrefixes"


def _direct_page_encoded(lister: DirectLister, request: dict[str, Any]) -> ListingPage | None:
    query = {"list-type": "2", "encoding-type": "url"}
    for name, value in request.items():
        if name in fast_listing._QUERY_NAMES:
            query[fast_listing._QUERY_NAMES[name]] = str(value)
    body = lister.get(query)
    return None if body is None else fast_listing.parse_list_objects_v2(body)


def variant(client: Any, sequential_pages: int, encoded: bool) -> Callable[[], int]:
    defaults = fast_listing.iter_fanned_out_pages.__kwdefaults__

    def run() -> int:
        fast_listing._direct_page = _direct_page_encoded if encoded else _SHIPPED_DIRECT_PAGE
        defaults["sequential_pages"] = sequential_pages
        try:
            objects = iter_s3_objects(client, PARTITIONED.bucket, PARTITIONED.prefix)
            return sum(1 for _ in objects)
        finally:
            fast_listing._direct_page = _SHIPPED_DIRECT_PAGE
            defaults["sequential_pages"] = fast_listing.SEQUENTIAL_PAGES

    return run


@contextlib.contextmanager
def partitioned_listing() -> Iterator[tuple[SeaweedS3, Any, int]]:
    """SeaweedFS with benchmark 1's 100,000-key partitioned layout (cached between runs): the
    server, a client and the key count."""
    keys = PARTITIONED.keys(100_000)
    with seaweed_s3(CACHE_DIR / "weed-listing") as server:
        ensure_keys(server, PARTITIONED.bucket, PARTITIONED.prefix, keys)
        yield server, server.client(max_pool_connections=16), len(keys)


def print_paired(timings: Timings, reference: str) -> None:
    """A table of every method's wall and CPU medians and its speed against ``reference``: of
    the medians, and paired round by round (median, quartiles, rounds won)."""
    reference_walls = timings.wall[reference]
    print(
        "| variant | wall s | vs obstore (medians) | vs obstore, paired by round: median "
        "(quartiles) | rounds faster than obstore | client CPU s | server CPU s |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, walls in timings.wall.items():
        paired = [theirs / ours for theirs, ours in zip(reference_walls, walls, strict=True)]
        low, _, high = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
        print(
            f"| {name} | {statistics.median(walls):.3f} | "
            f"{statistics.median(reference_walls) / statistics.median(walls):.2f}x | "
            f"{statistics.median(paired):.3f}x ({low:.3f}-{high:.3f}) | "
            f"{sum(ratio > 1 for ratio in paired)} of {len(paired)} | "
            f"{statistics.median(timings.client_cpu[name]):.2f} | "
            f"{statistics.median(timings.server_cpu[name]):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with partitioned_listing() as (server, client, key_count):
        shipped = fast_listing.SEQUENTIAL_PAGES
        methods = {
            f"ours as shipped ({shipped} sequential pages, plain requests)": variant(
                client, shipped, False
            ),
            "ours, 2 sequential pages": variant(client, 2, False),
            "ours, 1 sequential page": variant(client, 1, False),
            f"ours, {shipped} sequential pages, every request encoded (before)": variant(
                client, shipped, True
            ),
            OBSTORE: obstore_list(server, PARTITIONED, 8),
        }
        timings = time_in_rotation(methods, args.rounds, key_count, server_pid=server.pid)
    print_paired(timings, OBSTORE)


if __name__ == "__main__":
    main()
