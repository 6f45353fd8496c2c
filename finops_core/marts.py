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
- `CountIf`: the number of rows of the group where a predicate holds.
- `Mean`: the mean of a column's non-null values (null when there is none).
- `Min` / `Max`: the least / greatest non-null value of a column (null when there is none); a
  boolean's `Max` says whether any row is true.
- `Ratio`: a derived column, numerator / denominator * scale of two finished measures; null
  when the denominator is 0 or null.

Before grouping, a mart may keep only the source rows where a predicate holds (`where`) and
derive columns of each row (`derive`, `finops_core.expressions`); the grain and the measures
read derived columns as they read source columns.
"""

from __future__ import annotations

from typing import Union

import attrs

from finops_core import catalogue
from finops_core.contracts import Column, LogicalType
from finops_core.expressions import (
    All,
    Below,
    Coalesce,
    Col,
    Equals,
    If,
    IsNull,
    Lit,
    Not,
    Predicate,
    Value,
    columns_read,
    minus,
    plus,
    times,
)
from finops_core.tables import SILVER_EVENTS, SILVER_MASTERS, Layer, Table

__all__ = ["Equals"]  # also the filter of a Sum, as it always was


@attrs.frozen
class Derive:
    """A column computed from each source row before grouping."""

    name: str
    type: LogicalType
    value: Value


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
    where: Predicate | None = None
    empty_is_null: bool = False


@attrs.frozen
class Count:
    name: str


@attrs.frozen
class CountIf:
    name: str
    predicate: Predicate


@attrs.frozen
class Mean:
    name: str
    source: str


@attrs.frozen
class Min:
    name: str
    source: str


@attrs.frozen
class Max:
    name: str
    source: str


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


Measure = Union[Sum, Count, CountIf, Mean, Min, Max, FlagCounts, Ratio]  # noqa: UP007
Accumulating = Union[Sum, Count, CountIf, Mean, Min, Max, FlagCounts]  # noqa: UP007


def _measure_column(measure: Measure, inputs: dict[str, Column]) -> Column:
    if isinstance(measure, Sum):
        return Column(measure.name, measure.type, nullable=measure.empty_is_null)
    if isinstance(measure, (Count, CountIf)):
        return Column(measure.name, LogicalType.INTEGER, nullable=False)
    if isinstance(measure, FlagCounts):
        return Column(measure.name, LogicalType.COUNT_MAP, nullable=False)
    if isinstance(measure, (Min, Max)):
        return Column(measure.name, inputs[measure.source].type)
    return Column(measure.name, LogicalType.FLOAT)  # Mean, Ratio


def measure_reads(measure: Measure) -> frozenset[str]:
    """The source (or derived) columns a measure reads."""
    if isinstance(measure, Sum):
        read = {measure.source}
        return frozenset(read | (columns_read(measure.where) if measure.where else set()))
    if isinstance(measure, CountIf):
        return columns_read(measure.predicate)
    if isinstance(measure, (Mean, Min, Max, FlagCounts)):
        return frozenset((measure.source,))
    return frozenset()  # Count, Ratio


@attrs.frozen
class Mart:
    name: str
    source: Table
    grain: tuple[GroupColumn, ...]
    measures: tuple[Measure, ...]
    partition_by: str | None = None
    description: str = ""
    where: Predicate | None = None
    derive: tuple[Derive, ...] = ()
    table: Table = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        inputs = {c.name: c for c in self.source.columns}
        for derived in self.derive:
            unknown = sorted(columns_read(derived.value) - set(inputs))
            if unknown:
                raise ValueError(f"{self.name}.{derived.name} reads unknown {unknown}")
            inputs[derived.name] = Column(derived.name, derived.type)
        unknown = sorted(self._reads_after_derive() - set(inputs))
        if unknown:
            raise ValueError(f"{self.name} reads {unknown}: not columns of {self.source.id}")
        grain = tuple(Column(g.name, inputs[g.source].type, nullable=False) for g in self.grain)
        table = Table(
            name=self.name,
            layer=Layer.GOLD,
            columns=(*grain, *(_measure_column(m, inputs) for m in self.measures)),
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

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The columns of the source table the mart reads (its filter, derivations, grain and
        measures), in table order."""
        read = self._reads_after_derive().union(*(columns_read(d.value) for d in self.derive))
        read -= {d.name for d in self.derive}
        return tuple(name for name in self.source.column_names if name in read)

    def _reads_after_derive(self) -> frozenset[str]:
        """The columns the filter, the grain and the measures read (source or derived)."""
        read = set(columns_read(self.where) if self.where else ())
        read |= {g.source for g in self.grain}
        for measure in self.measures:
            read |= measure_reads(measure)
        return frozenset(read)


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

# ---- revenue ------------------------------------------------------------------------------------

USD = "USD"
_FX = Col("fx_applied")
_CREDITS = Coalesce(Col("credits"), Lit(0.0))  # silver already defaults a null credits to 0

REVENUE = Mart(
    name="revenue_by_org_month",
    source=SILVER_MASTERS["billing_monthly"],
    where=All((Not(IsNull("org_id")), Not(IsNull("month")))),  # an invoice of no org or month
    derive=(
        # The feed's USD invoices carry rates that are not 1: a USD amount is already in USD.
        Derive(
            "fx_applied",
            LogicalType.FLOAT,
            If(Equals("currency", USD), Lit(1.0), Col("exchange_rate_to_usd")),
        ),
        Derive("subtotal_usd", LogicalType.FLOAT, times(Col("subtotal"), _FX)),
        Derive("credits_usd", LogicalType.FLOAT, times(_CREDITS, _FX)),
        Derive("taxes_usd", LogicalType.FLOAT, times(Col("taxes"), _FX)),
        Derive(
            "net_revenue_usd",
            LogicalType.FLOAT,
            times(plus(minus(Col("subtotal"), _CREDITS), Col("taxes")), _FX),
        ),
        Derive(
            "usd_rate_forced",
            LogicalType.BOOLEAN,
            If(
                All((Equals("currency", USD), Not(Equals("exchange_rate_to_usd", 1.0)))),
                Lit(True),
                Lit(False),
            ),
        ),
        Derive(
            "credit_note", LogicalType.BOOLEAN, If(Below("subtotal", 0.0), Lit(True), Lit(False))
        ),
    ),
    grain=(GroupColumn("org_id", "org_id"), GroupColumn("month", "month")),
    measures=(
        # One invoice per org and month in the feed: its own values, kept as given.
        Min("invoice_id", "invoice_id"),
        Min("currency", "currency"),
        Min("exchange_rate_to_usd", "exchange_rate_to_usd"),
        Min("fx_applied", "fx_applied"),
        Sum("subtotal_usd", "subtotal_usd", empty_is_null=True),
        Sum("credits_usd", "credits_usd", empty_is_null=True),
        Sum("taxes_usd", "taxes_usd", empty_is_null=True),
        Sum("net_revenue_usd", "net_revenue_usd", empty_is_null=True),
        Max("usd_rate_forced", "usd_rate_forced"),
        Max("credit_note", "credit_note"),  # a negative subtotal: kept, not dropped
        Count("invoice_count"),
    ),
    description="invoiced revenue in USD per organisation and month (USD rates forced to 1)",
)

# ---- support ------------------------------------------------------------------------------------

UNKNOWN_SEVERITY = "unknown"

TICKETS = Mart(
    name="tickets_by_org_date",
    source=SILVER_MASTERS["support_tickets"],
    # A ticket of no org or creation day has no row to count on (the audit reconciles the rest).
    where=All((Not(IsNull("org_id")), Not(IsNull("created_at")))),
    grain=(
        GroupColumn("org_id", "org_id"),
        GroupColumn("ticket_date", "created_at"),
        GroupColumn("severity", "severity", default=UNKNOWN_SEVERITY),
    ),
    measures=(
        Count("tickets"),
        CountIf("open_tickets", IsNull("resolved_at")),
        CountIf("sla_breached", Equals("sla_breached", True)),
        Ratio("sla_breach_rate", "sla_breached", "tickets"),
        Mean("avg_csat", "csat"),  # csat outside 1..5 is already null in silver
        CountIf("csat_responses", Not(IsNull("csat"))),
    ),
    description="support tickets per organisation, creation day and severity, with SLA and CSAT",
)

# ---- GenAI --------------------------------------------------------------------------------------

GENAI_SERVICE = "genai"

GENAI_TOKENS = Mart(
    name="genai_tokens_by_org_date",
    source=SILVER_EVENTS,
    where=All((Equals("service", GENAI_SERVICE), Not(IsNull("genai_tokens")))),
    grain=(GroupColumn("org_id", "org_id"), GroupColumn("usage_date", "usage_date")),
    measures=(
        Sum("total_tokens", "genai_tokens", type=LogicalType.INTEGER),
        Sum("genai_cost_usd", "cost_usd_increment"),
        Count("event_count"),
        Ratio("cost_per_1k_tokens_usd", "genai_cost_usd", "total_tokens", scale=1000.0),
    ),
    partition_by="usage_date",
    description="GenAI tokens and their cost per organisation and day",
)

MARTS: tuple[Mart, ...] = (DAILY_USAGE, REVENUE, TICKETS, GENAI_TOKENS)

# ---- what the gold stage counts of a mart (the daily mart keeps its own names: runs.GOLD_ROWS) --


def rows_count(mart: Mart) -> str:
    """The mart's rows (shown in the stage's progress line)."""
    return f"{mart.name}_rows"


def kept_count(mart: Mart) -> str:
    """The source rows the mart keeps (`where`), counted on the source."""
    return f"{mart.name}.source_rows"


def counted_count(mart: Mart) -> str:
    """The sum over the mart's rows of its `Count` measure."""
    return f"{mart.name}.counted"


def sum_count(mart: Mart, measure: Sum) -> str:
    """The sum over the mart's rows of a `Sum` measure."""
    return f"{mart.name}.sum.{measure.name}"


def source_sum_count(mart: Mart, measure: Sum) -> str:
    """The sum of the measure's column over the kept source rows."""
    return f"{mart.name}.source_sum.{measure.name}"


def counted_measure(mart: Mart) -> Count | None:
    return next((m for m in mart.measures if isinstance(m, Count)), None)


def reconciled_sums(mart: Mart) -> tuple[Sum, ...]:
    """The mart's unfiltered sums: each must equal its column's sum over the kept source rows."""
    return tuple(m for m in mart.measures if isinstance(m, Sum) and m.where is None)


def reconciled_marts() -> tuple[Mart, ...]:
    """The marts the audit reconciles with their source by the counts above."""
    return tuple(m for m in MARTS if m is not DAILY_USAGE)


def mart(name: str) -> Mart:
    for candidate in MARTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown mart {name!r}; known: {', '.join(m.name for m in MARTS)}")
