"""The gold mart `org_daily_usage_by_service` as a commutative monoid.

A `DailyUsage` is the partial aggregate of any set of silver events of one (org, day, service);
`merge` is associative and commutative, and `empty()` is its identity, so partial views (per file,
per micro-batch, per partition) combine without double counting. Float sums are exact until
`finish` rounds them once, which makes the result independent of order and batching.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping

import attrs

from finops_core.events import SilverEvent

GOLD_COLUMNS: tuple[str, ...] = (
    "org_id",
    "usage_date",
    "service",
    "daily_cost_usd",
    "requests",
    "cpu_hours",
    "storage_gb_hours",
    "genai_tokens",
    "carbon_kg",
    "event_count",
    "cost_per_request_usd",
    "quality_flags",
)
GOLD_KEY: tuple[str, ...] = ("org_id", "usage_date", "service")
# metric -> gold column that sums its `value`
USAGE_COLUMN_BY_METRIC: dict[str, str] = {
    "requests": "requests",
    "cpu_hours": "cpu_hours",
    "storage_gb_hours": "storage_gb_hours",
}


@attrs.frozen
class ExactSum:
    """An exact float sum (Shewchuk partials): merging in any order gives the same total."""

    partials: tuple[float, ...] = ()

    @classmethod
    def of(cls, value: float) -> ExactSum:
        return cls((value,))

    def merge(self, other: ExactSum) -> ExactSum:
        return ExactSum(_grow(list(self.partials), other.partials))

    @property
    def total(self) -> float:
        return math.fsum(self.partials)


def _grow(partials: list[float], values: Iterable[float]) -> tuple[float, ...]:
    for x in values:
        kept = []
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                kept.append(lo)
            x = hi
        kept.append(x)
        partials = kept
    return tuple(partials)


def _merge_optional_sum(a: ExactSum | None, b: ExactSum | None) -> ExactSum | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def _merge_optional_int(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


@attrs.frozen
class DailyUsage:
    """Partial aggregate of one gold group; nulls (carbon, tokens) stay null until a value comes."""

    cost: ExactSum = ExactSum()
    usage: Mapping[str, ExactSum] = attrs.field(factory=dict)
    genai_tokens: int | None = None
    carbon_kg: ExactSum | None = None
    event_count: int = 0
    quality_flags: Mapping[str, int] = attrs.field(factory=dict)

    @classmethod
    def empty(cls) -> DailyUsage:
        return cls()

    @classmethod
    def of(cls, event: SilverEvent) -> DailyUsage:
        column = USAGE_COLUMN_BY_METRIC.get(event.metric)
        usage = {column: ExactSum.of(event.value)} if column and event.value is not None else {}
        return cls(
            cost=ExactSum.of(event.cost_usd_increment),
            usage=usage,
            genai_tokens=event.genai_tokens,
            carbon_kg=None if event.carbon_kg is None else ExactSum.of(event.carbon_kg),
            event_count=1,
            quality_flags={flag: 1 for flag in event.quality_flags},
        )

    def merge(self, other: DailyUsage) -> DailyUsage:
        usage = dict(self.usage)
        for column, amount in other.usage.items():
            usage[column] = usage[column].merge(amount) if column in usage else amount
        flags = dict(self.quality_flags)
        for flag, count in other.quality_flags.items():
            flags[flag] = flags.get(flag, 0) + count
        return DailyUsage(
            cost=self.cost.merge(other.cost),
            usage=usage,
            genai_tokens=_merge_optional_int(self.genai_tokens, other.genai_tokens),
            carbon_kg=_merge_optional_sum(self.carbon_kg, other.carbon_kg),
            event_count=self.event_count + other.event_count,
            quality_flags=flags,
        )


@attrs.frozen
class GoldRow:
    org_id: str
    usage_date: dt.date
    service: str
    daily_cost_usd: float
    requests: float
    cpu_hours: float
    storage_gb_hours: float
    genai_tokens: int | None
    carbon_kg: float | None
    event_count: int
    cost_per_request_usd: float | None
    quality_flags: Mapping[str, int] = attrs.field(factory=dict, hash=False)

    @property
    def key(self) -> tuple[str, dt.date, str]:
        return (self.org_id, self.usage_date, self.service)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in GOLD_COLUMNS}


def cost_per_request(daily_cost_usd: float, requests: float) -> float | None:
    """Derived metric: null when there were no requests."""
    return daily_cost_usd / requests if requests != 0 else None


def finish(key: tuple[str, dt.date, str], usage: DailyUsage) -> GoldRow:
    org_id, usage_date, service = key
    cost = usage.cost.total
    sums = {
        column: usage.usage[column].total if column in usage.usage else 0.0
        for column in USAGE_COLUMN_BY_METRIC.values()
    }
    return GoldRow(
        org_id=org_id,
        usage_date=usage_date,
        service=service,
        daily_cost_usd=cost,
        requests=sums["requests"],
        cpu_hours=sums["cpu_hours"],
        storage_gb_hours=sums["storage_gb_hours"],
        genai_tokens=usage.genai_tokens,
        carbon_kg=None if usage.carbon_kg is None else usage.carbon_kg.total,
        event_count=usage.event_count,
        cost_per_request_usd=cost_per_request(cost, sums["requests"]),
        quality_flags=dict(sorted(usage.quality_flags.items())),
    )


GroupKey = tuple[str, dt.date, str]


def gold_key(event: SilverEvent) -> GroupKey:
    # service can be null in a silver event whose resource is unknown; group it as "unknown".
    return (event.org_id, event.usage_date, event.service or UNKNOWN_SERVICE)


UNKNOWN_SERVICE = "unknown"


def partial_aggregate(events: Iterable[SilverEvent]) -> dict[GroupKey, DailyUsage]:
    groups: dict[GroupKey, DailyUsage] = {}
    for event in events:
        key = gold_key(event)
        one = DailyUsage.of(event)
        groups[key] = groups[key].merge(one) if key in groups else one
    return groups


def merge_partials(*partials: Mapping[GroupKey, DailyUsage]) -> dict[GroupKey, DailyUsage]:
    merged: dict[GroupKey, DailyUsage] = {}
    for partial in partials:
        for key, usage in partial.items():
            merged[key] = merged[key].merge(usage) if key in merged else usage
    return merged


def gold_rows(groups: Mapping[GroupKey, DailyUsage]) -> list[GoldRow]:
    return [finish(key, groups[key]) for key in sorted(groups)]


def aggregate(events: Iterable[SilverEvent]) -> list[GoldRow]:
    """Gold rows of a set of silver events, sorted by key."""
    return gold_rows(partial_aggregate(events))
