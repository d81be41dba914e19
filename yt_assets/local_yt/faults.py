"""Fault injection for the local YT HTTP proxy: make chosen commands fail for real.

A *rule* names a command (or ``"*"``), a mode and how many / which fraction of the matching
requests it hits:

- ``"503"``: answer ``503 Service Unavailable`` with a YT error before running the command
  (``yt.wrapper`` retries these).
- ``"drop"``: close the connection without an answer before running the command.
- ``"drop_after"``: run the command, then close the connection without an answer (a streamed
  response is cut after its first chunk). Tests idempotent retries (``mutation_id``) and read
  retries (row index) on the client side.

``count`` limits a rule to the next N matching requests; ``probability`` (0..1) hits a random
fraction of them (``seed`` makes it reproducible); ``skip`` lets the first N matches through.
A rule without ``count`` and ``probability`` hits every match.

Configure at start (``serve --faults JSON``, env ``YT_LOCAL_FAULTS``, ``LocalYT(faults=[...])``)
or at run time through the loopback-only control endpoint::

    POST   /_local/faults   body: JSON list of rules (replaces the current rules)
    GET    /_local/faults   current rules with their ``hits`` counters
    DELETE /_local/faults   remove all rules

Usage::

    faults = FaultInjector([{"command": "write_table", "mode": "503", "count": 2}])
    faults.decide("write_table")  # -> "503" twice, then None
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_MODES = ("503", "drop", "drop_after")
FAULTS_ENV_VAR = "YT_LOCAL_FAULTS"


class FaultConfigError(ValueError):
    """A fault rule is malformed."""


@dataclass
class FaultRule:
    """One fault: which command, what happens, how often."""

    command: str
    mode: str = "503"
    count: int | None = None
    probability: float | None = None
    skip: int = 0
    seed: int | None = None
    hits: int = 0
    seen: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise FaultConfigError(
                f"Unknown fault mode {self.mode!r} (expected one of {', '.join(FAULT_MODES)})"
            )
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise FaultConfigError(f"Fault probability must be within [0, 1]: {self.probability}")
        if self.count is not None and self.count < 0:
            raise FaultConfigError(f"Fault count must not be negative: {self.count}")
        if self.seed is not None:
            self._random = random.Random(self.seed)

    def matches(self, command: str) -> bool:
        return self.command in ("*", command)

    def fires(self) -> bool:
        """Whether this matching request is hit (updates the counters)."""
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.count is not None and self.hits >= self.count:
            return False
        if self.probability is not None and self._random.random() >= self.probability:
            return False
        self.hits += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_random", None)
        return data


def parse_rules(data: Any) -> list[FaultRule]:
    """Rules from JSON text or already-decoded JSON (a rule or a list of rules)."""
    if isinstance(data, (str, bytes)):
        data = json.loads(data) if data.strip() else []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise FaultConfigError("Faults must be a JSON list of rules")
    rules = []
    allowed = {"command", "mode", "count", "probability", "skip", "seed"}
    for item in data:
        if not isinstance(item, dict) or "command" not in item:
            raise FaultConfigError(f"A fault rule must be an object with 'command': {item!r}")
        unknown = set(item) - allowed
        if unknown:
            raise FaultConfigError(f"Unknown fault rule field(s): {', '.join(sorted(unknown))}")
        rules.append(FaultRule(**{key: item[key] for key in item}))
    return rules


class FaultInjector:
    """Thread-safe set of fault rules consulted once per command request."""

    def __init__(self, rules: Any = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = parse_rules(rules) if rules else []

    def replace(self, rules: Any) -> None:
        parsed = parse_rules(rules)
        with self._lock:
            self._rules = parsed

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def decide(self, command: str) -> str | None:
        """The fault mode to apply to this request of ``command``, or ``None``."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(command) and rule.fires():
                    return rule.mode
        return None
