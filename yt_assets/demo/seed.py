"""The demo bucket's content: a few hundred small objects, a pure function of the day (no I/O).

Layout (``today`` is the day the demo runs; every day is a UTC date)::

    events/{day}/part-0000.jsonl ...   # the last DAILY_DAYS days up to today: JSON Lines,
    events/{day}/summary.csv           #   one CSV and one corrupt JSON object per day
    events/{day}/broken.json
    incoming/batch-001/ ...            # INCOMING_BATCHES prefixes of JSON Lines and CSV; the first
    incoming/batch-001/_SUCCESS        #   READY_BATCHES end with a _SUCCESS marker (ready for the
                                       #   sensor), the others are still "being written"
    reference/countries-00.csv ...     # CSV files and JSON arrays outside any partition

Every partition keeps its share of corrupt objects under 5% so the processing checks pass.

Usage::

    objects = demo_objects(date(2026, 11, 28))
    ready = ready_prefixes(objects, root="incoming/", marker="_SUCCESS")  # ['incoming/batch-001/', ...]
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

DEMO_BUCKET = "yt-assets-demo"
SENSOR_ROOT = "incoming/"
READY_MARKER = "_SUCCESS"
DAILY_PREFIX_TEMPLATE = "events/{date}/"

DAILY_DAYS = 5
"""Dated prefixes seeded: today and the DAILY_DAYS - 1 days before (the schedule asks for yesterday)."""
EVENT_FILES_PER_DAY = 28
INCOMING_BATCHES = 5
READY_BATCHES = 3
FILES_PER_BATCH = 24
REFERENCE_CSV_FILES = 10
REFERENCE_JSON_FILES = 2

_EVENT_TYPES = ("page_view", "click", "search", "purchase", "sign_in", "sign_out")
_COUNTRIES = ("DE", "FR", "NL", "PL", "SE", "US", "BR", "JP", "IN", "ZA")


def seeded_days(today: date, days: int = DAILY_DAYS) -> list[date]:
    """The days that get an ``events/{day}/`` prefix, oldest first (``today`` included)."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def daily_prefix(day: date, template: str = DAILY_PREFIX_TEMPLATE) -> str:
    """``events/2026-11-27/`` for 2026-11-27."""
    return template.replace("{date}", day.isoformat())


def batch_prefix(number: int, root: str = SENSOR_ROOT) -> str:
    """``incoming/batch-001/`` for 1."""
    return f"{root}batch-{number:03d}/"


def _json_lines(rows: Iterable[Mapping[str, object]]) -> bytes:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()


def _csv(header: list[str], rows: Iterable[Iterable[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _events(rng: random.Random, day: date, count: int) -> list[dict[str, object]]:
    return [
        {
            "day": day.isoformat(),
            "second": rng.randrange(86_400),
            "user_id": rng.randrange(1, 5_000),
            "event": rng.choice(_EVENT_TYPES),
            "country": rng.choice(_COUNTRIES),
            "value": round(rng.uniform(0, 100), 2),
        }
        for _ in range(count)
    ]


def _corrupt_json(rng: random.Random) -> bytes:
    """A JSON object cut off mid-way: no document in it parses."""
    text = json.dumps({"user_id": rng.randrange(1, 5_000), "event": "purchase", "items": [1, 2]})
    return text[: len(text) // 2].encode()


def _daily_objects(rng: random.Random, day: date) -> dict[str, bytes]:
    prefix = daily_prefix(day)
    objects = {
        f"{prefix}part-{index:04d}.jsonl": _json_lines(_events(rng, day, rng.randint(5, 40)))
        for index in range(EVENT_FILES_PER_DAY)
    }
    events = _events(rng, day, 200)
    totals: dict[str, int] = {}
    for event in events:
        totals[str(event["event"])] = totals.get(str(event["event"]), 0) + 1
    objects[f"{prefix}summary.csv"] = _csv(["event", "count"], sorted(totals.items()))
    objects[f"{prefix}broken.json"] = _corrupt_json(rng)
    return objects


def _batch_objects(rng: random.Random, number: int, today: date) -> dict[str, bytes]:
    prefix = batch_prefix(number)
    objects: dict[str, bytes] = {}
    for index in range(FILES_PER_BATCH):
        if index % 4 == 3:
            rows = [
                (rng.randrange(1, 5_000), rng.choice(_COUNTRIES), rng.randint(1, 9))
                for _ in range(rng.randint(3, 30))
            ]
            objects[f"{prefix}orders-{index:03d}.csv"] = _csv(["user_id", "country", "items"], rows)
        else:
            events = _events(rng, today, rng.randint(3, 30))
            objects[f"{prefix}events-{index:03d}.jsonl"] = _json_lines(events)
    if number == 2:
        objects[f"{prefix}late.json"] = _corrupt_json(rng)
    if number <= READY_BATCHES:
        objects[f"{prefix}{READY_MARKER}"] = b""
    return objects


def _reference_objects(rng: random.Random) -> dict[str, bytes]:
    objects: dict[str, bytes] = {}
    for index in range(REFERENCE_CSV_FILES):
        rows = [(code, f"Country {code}", rng.randint(1, 300)) for code in _COUNTRIES]
        objects[f"reference/countries-{index:02d}.csv"] = _csv(
            ["code", "name", "population_m"], rows
        )
    for index in range(REFERENCE_JSON_FILES):
        document = [{"event": name, "weight": rng.randint(1, 5)} for name in _EVENT_TYPES]
        objects[f"reference/event-weights-{index:02d}.json"] = json.dumps(document).encode()
    return objects


def demo_objects(today: date, *, seed: int = 20261128) -> dict[str, bytes]:
    """Every demo object by key; the same ``today`` and ``seed`` always give the same bytes."""
    objects: dict[str, bytes] = {}
    for day in seeded_days(today):
        objects.update(_daily_objects(random.Random(f"{seed}/{day.isoformat()}"), day))
    for number in range(1, INCOMING_BATCHES + 1):
        objects.update(_batch_objects(random.Random(f"{seed}/batch/{number}"), number, today))
    objects.update(_reference_objects(random.Random(f"{seed}/reference")))
    return dict(sorted(objects.items()))


def ready_prefixes(
    keys: Iterable[str], *, root: str = SENSOR_ROOT, marker: str = READY_MARKER
) -> list[str]:
    """The child prefixes of ``root`` holding ``marker`` (what the sensor would accept), sorted."""
    suffix = "/" + marker
    return sorted(
        key[: -len(marker)]
        for key in keys
        if key.startswith(root)
        and key.endswith(suffix)
        and "/" not in key[len(root) : -len(suffix)]
    )


def missing_objects(objects: Mapping[str, bytes], existing_keys: Iterable[str]) -> dict[str, bytes]:
    """The objects not yet in the bucket: seeding again only adds what a new day brings."""
    existing = set(existing_keys)
    return {key: body for key, body in objects.items() if key not in existing}
