"""The FinOps report's figures, defined once over the gold marts' rows and the run records.

Every figure `finops report` (and the notebook) shows is computed here, by pure functions over
rows keyed by the marts' column names (`finops_core.marts`, `finops_core.anomaly`), reusing the
questions' own definitions where one exists (`queries.revenue`, `queries.anomalies`,
`queries.ticket_day`). The renderer only draws and formats these values.

A report covers a `Period` (whole days, inclusive); each headline figure comes with its value over
the previous period of equal length. Revenue is invoiced per month: a month belongs to the period
its last day lies in, so two periods that do not overlap never share a month, and a month's
margin is its net revenue less the usage cost of that whole month.

Carbon by region: the daily mart has no region, so `CARBON_BY_REGION` declares the grain the
report needs over silver events, aggregated by the core's reference monoid (`aggregate`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import cast

import attrs

from finops_core import aggregate, queries, runs
from finops_core.events import event_date, parse_event_line
from finops_core.expressions import Equals
from finops_core.marts import UNKNOWN_SERVICE, GroupColumn, Mart, Sum
from finops_core.runs import Reconciliation, RunRecord
from finops_core.serving import ANOMALIES_BY_DAY, REVENUE_BY_ORG, rows_where
from finops_core.tables import SILVER_EVENTS, Row

ALL_ORGS = "every organisation"
TOP_ORGS = 10  # organisations shown by cost and by cost growth
UNKNOWN_REGION = "unknown"

CARBON_BY_REGION = Mart(
    name="carbon_by_org_date_service_region",
    source=SILVER_EVENTS,
    grain=(
        GroupColumn("org_id", "org_id"),
        GroupColumn("usage_date", "usage_date"),
        GroupColumn("service", "service", default=UNKNOWN_SERVICE),
        GroupColumn("region", "region", default=UNKNOWN_REGION),
    ),
    measures=(
        Sum("cost_usd", "cost_usd_increment"),
        Sum("requests", "value", where=Equals("metric", "requests")),
        Sum("carbon_kg", "carbon_kg", empty_is_null=True),
    ),
    description="cost, requests and carbon per organisation, day, service and region (report)",
)


# ---- the period ---------------------------------------------------------------------------------


@attrs.frozen
class Period:
    """Whole days from `start` to `end`, both included."""

    start: dt.date
    end: dt.date

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period ends on or after its start, not {self.start}..{self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def halves(self) -> tuple[Period, Period] | None:
        """Its first and last `days // 2` days (the middle day of an odd length is in neither);
        None for a one-day period."""
        half = self.days // 2
        if half == 0:
            return None
        return (
            Period(self.start, self.start + dt.timedelta(days=half - 1)),
            Period(self.end - dt.timedelta(days=half - 1), self.end),
        )

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


def month_end(month: dt.date) -> dt.date:
    """The last day of the month `month` lies in."""
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def gold_range(daily: Iterable[Row]) -> Period | None:
    """The first to the last usage date of the daily mart's rows (None without rows)."""
    days = [cast(dt.date, row["usage_date"]) for row in daily]
    return Period(min(days), max(days)) if days else None


# ---- what the report reads -----------------------------------------------------------------------


def _rows(values: Iterable[Row]) -> tuple[Row, ...]:
    return tuple(values)


def _records(values: Iterable[RunRecord]) -> tuple[RunRecord, ...]:
    return tuple(values)


@attrs.frozen
class ReportInputs:
    """The lake as the report reads it: each gold mart's rows, the carbon-by-region rows, the
    quarantine's rows and the run records (oldest first). `has_landing`/`has_gold` tell an empty
    lake from one only landed."""

    lake: str
    has_landing: bool
    has_gold: bool
    daily: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    revenue: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    tickets: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    genai: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    anomalies: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    carbon: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    quarantine: tuple[Row, ...] = attrs.field(default=(), converter=_rows)
    records: tuple[RunRecord, ...] = attrs.field(default=(), converter=_records)


# ---- the figures --------------------------------------------------------------------------------


@attrs.frozen
class Headline:
    """One headline figure over the period and over the previous period of equal length."""

    key: str
    label: str
    unit: str
    value: float
    previous: float

    @property
    def change(self) -> float | None:
        """(value - previous) / |previous|; None when the previous value is 0."""
        if self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous)


@attrs.frozen
class ServiceDayCost:
    usage_date: dt.date
    service: str
    cost_usd: float


@attrs.frozen
class ServiceCostPerRequest:
    service: str
    cost_usd: float
    requests: float
    cost_per_request_usd: float | None


@attrs.frozen
class OrgCost:
    """An organisation's cost over the period, and over the period's two halves."""

    org_id: str
    cost_usd: float
    earlier_usd: float
    later_usd: float

    @property
    def growth_usd(self) -> float:
        return self.later_usd - self.earlier_usd


@attrs.frozen
class MonthMargin:
    org_id: str
    month: dt.date
    net_revenue_usd: float
    usage_cost_usd: float

    @property
    def margin_usd(self) -> float:
        return self.net_revenue_usd - self.usage_cost_usd


@attrs.frozen
class CarbonRatio:
    service: str
    region: str
    carbon_kg: float
    cost_usd: float
    requests: float

    @property
    def kg_per_usd(self) -> float | None:
        return aggregate.ratio(self.carbon_kg, self.cost_usd)

    @property
    def kg_per_1k_requests(self) -> float | None:
        return aggregate.ratio(self.carbon_kg, self.requests, 1000.0)


@attrs.frozen
class QuarantineDay:
    day: dt.date
    reason: str
    events: int


@attrs.frozen
class LayerCount:
    layer: str
    rows: float


@attrs.frozen
class Report:
    """Everything the report page shows. `notice` says why there is nothing to chart (an empty
    lake, a lake only landed, a period or org without gold rows); then the sections are empty."""

    lake: str
    period: Period | None
    gold: Period | None
    org: str | None
    notice: str | None = None
    headlines: tuple[Headline, ...] = ()
    cost_by_service_day: tuple[ServiceDayCost, ...] = ()
    cost_per_request: tuple[ServiceCostPerRequest, ...] = ()
    top_by_cost: tuple[OrgCost, ...] = ()
    top_by_growth: tuple[OrgCost, ...] = ()
    growth_halves: tuple[Period, Period] | None = None
    margins: tuple[MonthMargin, ...] = ()
    month_totals: tuple[MonthMargin, ...] = ()
    carbon: tuple[CarbonRatio, ...] = ()
    anomalies: tuple[Mapping[str, object], ...] = ()
    support: tuple[Mapping[str, object], ...] = ()
    layers: tuple[LayerCount, ...] = ()
    layers_run: str | None = None
    quarantine: tuple[QuarantineDay, ...] = ()
    quarantine_undated: int = 0
    flags: tuple[tuple[str, int], ...] = ()
    reconciliations: tuple[Reconciliation, ...] = ()
    reconciled_run: str | None = None

    @property
    def headline(self) -> Mapping[str, Headline]:
        return {figure.key: figure for figure in self.headlines}


def _in(rows: Iterable[Row], period: Period, column: str = "usage_date") -> list[Row]:
    return [row for row in rows if period.holds(cast(dt.date, row[column]))]


def _of_org(rows: Iterable[Row], org: str | None) -> list[Row]:
    return list(rows) if org is None else [row for row in rows if row["org_id"] == org]


def _fsum(rows: Iterable[Row], column: str) -> float:
    """The exact sum of a column's non-null values."""
    return math.fsum(float(cast(float, row[column])) for row in rows if row[column] is not None)


def _months_in(rows: Iterable[Row], period: Period) -> list[Row]:
    """The monthly rows whose month ends in the period."""
    return [row for row in rows if period.holds(month_end(cast(dt.date, row["month"])))]


def _usage_of_months(daily: Iterable[Row], period: Period) -> list[Row]:
    """The daily rows of the whole months that end in the period."""
    return [
        row for row in daily if period.holds(month_end(month_of(cast(dt.date, row["usage_date"]))))
    ]


def net_revenue(revenue: Iterable[Row], period: Period) -> float:
    return _fsum(_months_in(revenue, period), "net_revenue_usd")


def gross_margin(revenue: Iterable[Row], daily: Iterable[Row], period: Period) -> float:
    """Net revenue less usage cost, over the months that end in the period."""
    return net_revenue(revenue, period) - _fsum(_usage_of_months(daily, period), "daily_cost_usd")


def _cost_per_1k(daily: Sequence[Row]) -> float:
    return aggregate.ratio(_fsum(daily, "daily_cost_usd"), _fsum(daily, "requests"), 1000.0) or 0.0


HEADLINES: tuple[tuple[str, str, str], ...] = (
    ("total_cost", "Total cost", "USD"),
    ("requests", "Requests", "requests"),
    ("cost_per_1k_requests", "Cost per 1k requests", "USD"),
    ("carbon_kg", "Carbon", "kg CO2e"),
    ("genai_tokens", "GenAI tokens", "tokens"),
    ("net_revenue", "Net revenue", "USD"),
    ("gross_margin", "Gross margin", "USD"),
)


def _headline_values(inputs: ReportInputs, org: str | None, period: Period) -> dict[str, float]:
    daily = _in(_of_org(inputs.daily, org), period)
    revenue = _of_org(inputs.revenue, org)
    return {
        "total_cost": _fsum(daily, "daily_cost_usd"),
        "requests": _fsum(daily, "requests"),
        "cost_per_1k_requests": _cost_per_1k(daily),
        "carbon_kg": _fsum(daily, "carbon_kg"),
        "genai_tokens": _fsum(_in(_of_org(inputs.genai, org), period), "total_tokens"),
        "net_revenue": net_revenue(revenue, period),
        "gross_margin": gross_margin(revenue, _of_org(inputs.daily, org), period),
    }


def headlines(inputs: ReportInputs, period: Period, org: str | None = None) -> tuple[Headline, ...]:
    """Each headline figure over the period and over the previous period of equal length."""
    now = _headline_values(inputs, org, period)
    before = _headline_values(inputs, org, period.previous())
    return tuple(
        Headline(key, label, unit, now[key], before[key]) for key, label, unit in HEADLINES
    )


def _sums_by(rows: Iterable[Row], key: Callable[[Row], object], column: str) -> dict[object, float]:
    values: dict[object, list[float]] = {}
    for row in rows:
        if row[column] is not None:
            values.setdefault(key(row), []).append(float(cast(float, row[column])))
    return {group: math.fsum(found) for group, found in values.items()}


def cost_by_service_day(daily: Iterable[Row], period: Period) -> tuple[ServiceDayCost, ...]:
    """Every service's cost on every day of the period that has gold rows (0 where the service
    has none that day), by day then service."""
    kept = _in(daily, period)
    sums = _sums_by(kept, lambda row: (row["usage_date"], row["service"]), "daily_cost_usd")
    days = sorted({cast(dt.date, row["usage_date"]) for row in kept})
    services = sorted({str(row["service"]) for row in kept})
    return tuple(
        ServiceDayCost(day, service, sums.get((day, service), 0.0))
        for day in days
        for service in services
    )


def cost_per_request(daily: Iterable[Row], period: Period) -> tuple[ServiceCostPerRequest, ...]:
    """Each service's cost, requests and cost per request over the period, by service."""
    kept = _in(daily, period)
    costs = _sums_by(kept, lambda row: row["service"], "daily_cost_usd")
    requests = _sums_by(kept, lambda row: row["service"], "requests")
    return tuple(
        ServiceCostPerRequest(
            str(service),
            costs[service],
            requests.get(service, 0.0),
            aggregate.ratio(costs[service], requests.get(service, 0.0)),
        )
        for service in sorted(costs, key=str)
    )


def org_costs(
    daily: Iterable[Row], period: Period
) -> tuple[tuple[OrgCost, ...], tuple[Period, Period] | None]:
    """Every organisation's cost over the period and its two halves, and the halves."""
    kept = _in(daily, period)
    halves = period.halves()
    total = _sums_by(kept, lambda row: row["org_id"], "daily_cost_usd")
    earlier = (
        _sums_by(_in(kept, halves[0]), lambda r: r["org_id"], "daily_cost_usd") if halves else {}
    )
    later = (
        _sums_by(_in(kept, halves[1]), lambda r: r["org_id"], "daily_cost_usd") if halves else {}
    )
    found = tuple(
        OrgCost(str(org), total[org], earlier.get(org, 0.0), later.get(org, 0.0))
        for org in sorted(total, key=str)
    )
    return found, halves


def top_by_cost(orgs: Iterable[OrgCost], limit: int = TOP_ORGS) -> tuple[OrgCost, ...]:
    """Costliest first, ties by org id."""
    return tuple(sorted(orgs, key=lambda org: (-org.cost_usd, org.org_id))[:limit])


def top_by_growth(orgs: Iterable[OrgCost], limit: int = TOP_ORGS) -> tuple[OrgCost, ...]:
    """Largest growth (later half less earlier half) first, ties by org id; only growth > 0."""
    growing = [org for org in orgs if org.growth_usd > 0]
    return tuple(sorted(growing, key=lambda org: (-org.growth_usd, org.org_id))[:limit])


def margins(
    revenue: Iterable[Row], daily: Iterable[Row], period: Period
) -> tuple[MonthMargin, ...]:
    """Per organisation and month ending in the period: net revenue (Q4's rows) and the usage
    cost of that whole month, by org then month."""
    invoiced = queries.revenue(
        queries.RowsReader(tables={REVENUE_BY_ORG: _months_in(revenue, period)})
    )
    income = _sums_by(invoiced, lambda row: (row["org_id"], row["month"]), "net_revenue_usd")
    usage = _sums_by(
        _usage_of_months(daily, period),
        lambda row: (row["org_id"], month_of(cast(dt.date, row["usage_date"]))),
        "daily_cost_usd",
    )
    keys = sorted(set(income) | set(usage), key=lambda key: (str(key[0]), key[1]))  # type: ignore[index]
    return tuple(
        MonthMargin(str(org), month, income.get((org, month), 0.0), usage.get((org, month), 0.0))
        for org, month in cast(list[tuple[str, dt.date]], keys)
    )


def month_totals(found: Iterable[MonthMargin]) -> tuple[MonthMargin, ...]:
    """The margins of every organisation added up per month (org_id `ALL_ORGS`), by month."""
    by_month: dict[dt.date, list[MonthMargin]] = {}
    for margin in found:
        by_month.setdefault(margin.month, []).append(margin)
    return tuple(
        MonthMargin(
            ALL_ORGS,
            month,
            math.fsum(m.net_revenue_usd for m in of_month),
            math.fsum(m.usage_cost_usd for m in of_month),
        )
        for month, of_month in sorted(by_month.items())
    )


def carbon(rows: Iterable[Row], period: Period) -> tuple[CarbonRatio, ...]:
    """Carbon, cost and requests per service and region over the period (carbon of schema-v1
    days is unknown: only the rows that carry carbon count), by service then region."""
    kept = [row for row in _in(rows, period) if row["carbon_kg"] is not None]
    key: Callable[[Row], object] = lambda row: (row["service"], row["region"])  # noqa: E731
    kg, cost, requests = (_sums_by(kept, key, c) for c in ("carbon_kg", "cost_usd", "requests"))
    return tuple(
        CarbonRatio(
            str(service),
            str(region),
            kg[(service, region)],
            cost.get((service, region), 0.0),
            requests.get((service, region), 0.0),
        )
        for service, region in sorted(cast(list[tuple[str, str]], list(kg)))
    )


def anomalies(
    rows: Iterable[Row], period: Period, org: str | None = None
) -> tuple[Mapping[str, object], ...]:
    """The anomaly mart's flagged rows of the period, as the `anomalies` question answers them
    (largest impact first, with the methods that agreed)."""
    reader = queries.RowsReader(tables={ANOMALIES_BY_DAY: rows_where(ANOMALIES_BY_DAY, rows)})
    return tuple(queries.anomalies(reader, period.start, period.end, org))


def support(rows: Iterable[Row], period: Period) -> tuple[Mapping[str, object], ...]:
    """Per ticket day of the period: critical tickets, tickets, SLA breaches and their rate, as
    Q3 totals one day (`queries.ticket_day`), over every organisation given."""
    by_day: dict[dt.date, list[Row]] = {}
    for row in _in(rows, period, "ticket_date"):
        by_day.setdefault(cast(dt.date, row["ticket_date"]), []).append(row)
    return tuple(queries.ticket_day(day, found) for day, found in sorted(by_day.items()))


def quarantine_by_day(rows: Iterable[Row], period: Period) -> tuple[tuple[QuarantineDay, ...], int]:
    """Quarantined lines per event day (the UTC date of the raw record's valid timestamp) and
    reason, over the period; and how many lines have no valid timestamp (no day)."""
    counts: dict[tuple[dt.date, str], int] = {}
    undated = 0
    for row in rows:
        fields = parse_event_line(str(row["raw_record"]))
        day = event_date(fields.get("timestamp")) if fields else None
        if day is None:
            undated += 1
            continue
        date = dt.date.fromisoformat(day)
        if not period.holds(date):
            continue
        for reason in cast(Sequence[str], row["reasons"]):
            counts[(date, reason)] = counts.get((date, reason), 0) + 1
    found = tuple(QuarantineDay(day, reason, n) for (day, reason), n in sorted(counts.items()))
    return found, undated


def flag_counts(daily: Iterable[Row], period: Period) -> tuple[tuple[str, int], ...]:
    """Events carrying each quality flag over the period, most first, ties by flag id."""
    counts: dict[str, int] = {}
    for row in _in(daily, period):
        for flag, n in cast(Mapping[str, int], row["quality_flags"] or {}).items():
            counts[flag] = counts.get(flag, 0) + int(n)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# What each layer held in the latest finished run that built silver, from its record's counts.
LAYER_COUNTS: tuple[tuple[str, tuple[runs.CountRef, ...]], ...] = (
    ("landing lines", (runs.LANDING_LINES, runs.STREAMED_LINES)),
    ("bronze rows", (runs.SILVER_BRONZE_ROWS,)),
    ("silver rows", (runs.CountRef("silver", "silver_rows"),)),
    ("quarantined", (runs.CountRef("silver", "quarantined"),)),
    ("duplicates", (runs.CountRef("silver", "duplicates"),)),
    ("gold rows", (runs.GOLD_ROWS,)),
)


def layer_counts(records: Sequence[RunRecord]) -> tuple[tuple[LayerCount, ...], str | None]:
    """Events per layer in the latest finished run that built silver, and that run's id."""
    built = [
        r for r in records if r.finished and runs.CountRef("silver", "silver_rows").key in r.counts
    ]
    if not built:
        return (), None
    record = built[-1]
    found = []
    for layer, refs in LAYER_COUNTS:
        value = next((record.counts[ref.key] for ref in refs if ref.key in record.counts), None)
        if value is not None:
            found.append(LayerCount(layer, float(value)))
    return tuple(found), record.run_id


# ---- the report ---------------------------------------------------------------------------------


def notice(inputs: ReportInputs, period: Period | None, org: str | None) -> str | None:
    """Why the report has nothing to chart, or None when it has gold rows to show."""
    if not inputs.has_gold and not inputs.has_landing:
        return (
            f"The lake {inputs.lake} is empty: it has no landing and no gold. Run "
            "`finops landing` (or `finops generate`), then `finops batch`."
        )
    if not inputs.has_gold or not inputs.daily:
        return (
            f"The lake {inputs.lake} has a landing but no gold rows yet: run `finops batch` "
            "to build them."
        )
    whole = gold_range(inputs.daily)
    if org is not None and not any(row["org_id"] == org for row in inputs.daily):
        return f"The gold holds no rows of the organisation {org} (its usage dates: {whole})."
    assert period is not None
    if not any(period.holds(cast(dt.date, r["usage_date"])) for r in _of_org(inputs.daily, org)):
        who = f" of {org}" if org else ""
        return f"The gold holds no rows{who} from {period}: its usage dates are {whole}."
    return None


def build_report(
    inputs: ReportInputs,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org: str | None = None,
) -> Report:
    """The report over start..end (each bound defaults to the gold's first or last usage date),
    of one organisation or of all. The data-quality figures are of the whole lake."""
    whole = gold_range(inputs.daily)
    first = start or (whole.start if whole else None)
    last = end or (whole.end if whole else None)
    if first is not None and (last is None or (end is None and last < first)):
        last = first  # --from after the gold's last day: that one day, without data
    if last is not None and (first is None or (start is None and first > last)):
        first = last
    period = Period(first, last) if first is not None and last is not None else None
    layers, layers_run = layer_counts(inputs.records)
    latest = inputs.records[-1] if inputs.records else None
    base = Report(
        lake=inputs.lake,
        period=period,
        gold=whole,
        org=org,
        notice=notice(inputs, period, org),
        layers=layers,
        layers_run=layers_run,
        reconciliations=latest.reconciliations if latest else (),
        reconciled_run=latest.run_id if latest else None,
    )
    if base.notice is not None or period is None:
        return base
    daily = _of_org(inputs.daily, org)
    orgs, halves = org_costs(daily, period)
    monthly = margins(_of_org(inputs.revenue, org), daily, period)
    quarantined, undated = quarantine_by_day(inputs.quarantine, period)
    return attrs.evolve(
        base,
        headlines=headlines(inputs, period, org),
        cost_by_service_day=cost_by_service_day(daily, period),
        cost_per_request=cost_per_request(daily, period),
        top_by_cost=top_by_cost(orgs),
        top_by_growth=top_by_growth(orgs),
        growth_halves=halves,
        margins=monthly,
        month_totals=month_totals(monthly),
        carbon=carbon(_of_org(inputs.carbon, org), period),
        anomalies=anomalies(inputs.anomalies, period, org),
        support=support(_of_org(inputs.tickets, org), period),
        quarantine=quarantined,
        quarantine_undated=undated,
        flags=flag_counts(daily, period),
    )
