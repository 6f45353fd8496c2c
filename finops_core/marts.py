"""Gold marts as data: a grain over a source table and the measures computed per group.

A mart is declared once here. `finops_core.aggregate` interprets the measures as a commutative
monoid in pure Python (the reference); the Spark adapter compiles the same values to Columns;
the mart's `table` (columns, types, key, partition) is derived from its grain and measures, and
every store derives its schema from that table.

Measures:
- `Sum`: the exact sum of a source column over the group's rows (optionally only the rows where
  another column equals a value). Empty (no non-null value) gives 0, or null with `empty_is_null`.
- `Count`: the number of rows of the group.
- `FlagCounts`: for a list column, how many rows carry each of `keys` (only keys counted > 0).
- `Ratio`: a derived column, numerator / denominator * scale of two finished measures; null
  when the denominator is 0 or null.
"""

from __future__ import annotations

from typing import Union

import attrs

from finops_core import catalogue
from finops_core.contracts import Column, LogicalType
from finops_core.tables import SILVER_EVENTS, Layer, Table


@attrs.frozen
class Equals:
    """A row filter: `field` equals `value`."""

    field: str
    value: str


@attrs.frozen
class GroupColumn:
    """A grain column: the source column's value, or `default` where it is null."""

    name: str
    source: str
    default: str | None = None


@attrs.frozen
class Sum:
    name: str
    source: str
    type: LogicalType = LogicalType.FLOAT  # FLOAT (exact float sum) or INTEGER
    where: Equals | None = None
    empty_is_null: bool = False


@attrs.frozen
class Count:
    name: str


@attrs.frozen
class FlagCounts:
    name: str
    source: str
    keys: tuple[str, ...]


@attrs.frozen
class Ratio:
    name: str
    numerator: str
    denominator: str
    scale: float = 1.0


Measure = Union[Sum, Count, FlagCounts, Ratio]  # noqa: UP007 (a runtime alias)
Accumulating = Union[Sum, Count, FlagCounts]  # noqa: UP007


def _measure_column(measure: Measure) -> Column:
    if isinstance(measure, Sum):
        return Column(measure.name, measure.type, nullable=measure.empty_is_null)
    if isinstance(measure, Count):
        return Column(measure.name, LogicalType.INTEGER, nullable=False)
    if isinstance(measure, FlagCounts):
        return Column(measure.name, LogicalType.COUNT_MAP, nullable=False)
    return Column(measure.name, LogicalType.FLOAT)


@attrs.frozen
class Mart:
    name: str
    source: Table
    grain: tuple[GroupColumn, ...]
    measures: tuple[Measure, ...]
    partition_by: str | None = None
    description: str = ""
    table: Table = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        grain = tuple(
            Column(g.name, self.source.column(g.source).type, nullable=False) for g in self.grain
        )
        table = Table(
            name=self.name,
            layer=Layer.GOLD,
            columns=(*grain, *(_measure_column(m) for m in self.measures)),
            primary_key=tuple(g.name for g in self.grain),
            partition_by=self.partition_by,
            description=self.description,
        )
        object.__setattr__(self, "table", table)
        finished = {g.name for g in self.grain}
        for measure in self.measures:
            if isinstance(measure, Ratio):
                missing = {measure.numerator, measure.denominator} - finished
                if missing:
                    raise ValueError(f"{self.name}.{measure.name} needs {sorted(missing)} first")
            finished.add(measure.name)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.table.primary_key

    @property
    def accumulating(self) -> tuple[Accumulating, ...]:
        return tuple(m for m in self.measures if not isinstance(m, Ratio))

    @property
    def derived(self) -> tuple[Ratio, ...]:
        return tuple(m for m in self.measures if isinstance(m, Ratio))


UNKNOWN_SERVICE = "unknown"  # a silver event whose resource is unknown may have no service

DAILY_USAGE = Mart(
    name="org_daily_usage_by_service",
    source=SILVER_EVENTS,
    grain=(
        GroupColumn("org_id", "org_id"),
        GroupColumn("usage_date", "usage_date"),
        GroupColumn("service", "service", default=UNKNOWN_SERVICE),
    ),
    measures=(
        Sum("daily_cost_usd", "cost_usd_increment"),
        Sum("requests", "value", where=Equals("metric", "requests")),
        Sum("cpu_hours", "value", where=Equals("metric", "cpu_hours")),
        Sum("storage_gb_hours", "value", where=Equals("metric", "storage_gb_hours")),
        # Schema-v1 days have no tokens or carbon: null, never 0.
        Sum("genai_tokens", "genai_tokens", type=LogicalType.INTEGER, empty_is_null=True),
        Sum("carbon_kg", "carbon_kg", empty_is_null=True),
        Count("event_count"),
        Ratio("cost_per_request_usd", "daily_cost_usd", "requests"),
        FlagCounts("quality_flags", "quality_flags", keys=catalogue.FLAG_IDS),
    ),
    partition_by="usage_date",
    description="cost, usage, carbon and flags per organisation, day and service",
)

MARTS: tuple[Mart, ...] = (DAILY_USAGE,)


def mart(name: str) -> Mart:
    for candidate in MARTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown mart {name!r}; known: {', '.join(m.name for m in MARTS)}")
