"""Profile a landing folder: counts, quirk rates, per-day structure and value distributions.

Pure standard library and streaming: files are read line by line; distributions keep bounded
reservoirs (exact while a group has fewer values than the reservoir holds, as at scale 1). The
per-day structure counts (day, resource) pairs, so its memory grows with resources x days.
The result is a plain JSON-ready dict, so a real and a generated landing can be compared.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finops_core.contracts import (
    BILLING_MONTHLY,
    CUSTOMERS_ORGS,
    EVENTS_DIRECTORY,
    MASTER_SOURCES,
    NPS_SURVEYS,
    RESOURCES,
    SUPPORT_TICKETS,
    USAGE_EVENTS,
    SourceContract,
)

RESERVOIR_SIZE = 100_000
# A cost is a spike when its cost per unit of value exceeds this multiple of its service's median.
SPIKE_MULTIPLE = 5.0


class _Reservoir:
    """A uniform sample of at most `size` floats (all of them while fewer arrive)."""

    def __init__(self, rng: random.Random, size: int = RESERVOIR_SIZE) -> None:
        self.rng = rng
        self.size = size
        self.values: list[float] = []
        self.seen = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, value: float) -> None:
        self.seen += 1
        self.total += value
        self.total_sq += value * value
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < self.size:
                self.values[slot] = value

    def summary(self) -> dict[str, float | int]:
        if not self.seen:
            return {"count": 0}
        mean = self.total / self.seen
        variance = max(0.0, self.total_sq / self.seen - mean * mean)
        ordered = sorted(self.values)
        return {
            "count": self.seen,
            "mean": round(mean, 6),
            "std": round(math.sqrt(variance), 6),
            "min": ordered[0],
            "p50": _quantile(ordered, 0.5),
            "p99": _quantile(ordered, 0.99),
            "max": ordered[-1],
        }


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _number(value: object) -> float | None:
    """A JSON number or numeric string as float; None for null, booleans and garbage."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def profile_landing(landing: Path) -> dict[str, Any]:
    """Everything the profile reports, for one landing folder."""
    masters = {contract.name: _profile_csv(landing, contract) for contract in MASTER_SOURCES}
    events = _profile_events(landing)
    rows = {name: summary["rows"] for name, summary in masters.items()}
    rows[USAGE_EVENTS.name] = events["lines"]
    return {
        "landing": str(landing),
        "rows": rows,
        "masters": masters,
        "quirks": {**_master_quirks(masters), **events.pop("quirks")},
        "events": events,
    }


# -- CSV sources ------------------------------------------------------------------------------


def _profile_csv(landing: Path, contract: SourceContract) -> dict[str, Any]:
    path = landing / contract.file_pattern
    if not path.is_file():
        return {"present": False, "rows": 0}
    nulls: Counter[str] = Counter()
    floats: dict[str, list[float]] = defaultdict(list)
    short_rows = 0
    rows = 0
    tags_with_commas = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            rows += 1
            if len(row) != len(header):
                short_rows += 1
            for name, field in zip(header, row, strict=False):  # short rows are counted above
                if field == "":
                    nulls[name] += 1
                elif name in _RANGE_COLUMNS.get(contract.name, ()):
                    number = _number(field)
                    if number is not None:
                        floats[name].append(number)
                if name == "tags_json" and "," in field:
                    tags_with_commas += 1
    summary: dict[str, Any] = {
        "present": True,
        "rows": rows,
        "header_matches_contract": tuple(header) == contract.column_names,
        "short_rows": short_rows,
        "nulls": {name: nulls[name] for name in header},
    }
    if contract is RESOURCES:
        summary["tags_with_commas"] = tags_with_commas
    summary["numbers"] = {name: values for name, values in floats.items()}
    return summary


# Numeric columns whose values the quirk rates look at (kept per file, small: masters only).
_RANGE_COLUMNS: dict[str, tuple[str, ...]] = {
    CUSTOMERS_ORGS.name: ("nps_score",),
    NPS_SURVEYS.name: ("nps_score",),
    SUPPORT_TICKETS.name: ("csat",),
    BILLING_MONTHLY.name: ("subtotal",),
}


def _master_quirks(masters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def numbers(source: str, column: str) -> list[float]:
        return list(masters.get(source, {}).get("numbers", {}).get(column, ()))

    def nulls(source: str, column: str) -> int:
        return int(masters.get(source, {}).get("nulls", {}).get(column, 0))

    org_nps = numbers(CUSTOMERS_ORGS.name, "nps_score")
    survey_nps = numbers(NPS_SURVEYS.name, "nps_score")
    csat = numbers(SUPPORT_TICKETS.name, "csat")
    subtotals = numbers(BILLING_MONTHLY.name, "subtotal")
    for summary in masters.values():
        summary.pop("numbers", None)
    return {
        "org_nps_null": nulls(CUSTOMERS_ORGS.name, "nps_score"),
        "org_nps_out_of_range": sum(not -100 <= v <= 100 for v in org_nps),
        "survey_nps_null": nulls(NPS_SURVEYS.name, "nps_score"),
        "survey_nps_out_of_range": sum(not -100 <= v <= 100 for v in survey_nps),
        "csat_null": nulls(SUPPORT_TICKETS.name, "csat"),
        "csat_out_of_range": sum(not 1 <= v <= 5 for v in csat),
        "tickets_open": nulls(SUPPORT_TICKETS.name, "resolved_at"),
        "credits_null": nulls(BILLING_MONTHLY.name, "credits"),
        "negative_subtotals": sum(v < 0 for v in subtotals),
        "tags_null": nulls(RESOURCES.name, "tags_json"),
        "tags_with_commas": int(masters.get(RESOURCES.name, {}).get("tags_with_commas", 0)),
        "last_login_null": nulls("users", "last_login"),
    }


# -- usage events -----------------------------------------------------------------------------


def _event_lines(landing: Path) -> Iterable[tuple[Path, bytes]]:
    for path in sorted((landing / EVENTS_DIRECTORY).glob("*.jsonl")):
        with path.open("rb") as handle:
            for raw in handle:
                yield path, raw


def _profile_events(landing: Path) -> dict[str, Any]:
    rng = random.Random(0)
    lines_per_file: Counter[str] = Counter()
    for path in sorted((landing / EVENTS_DIRECTORY).glob("*.jsonl")):
        lines_per_file[path.name] = 0
    per_day: Counter[str] = Counter()
    day_resource: Counter[tuple[str, str]] = Counter()
    key_orders: dict[str, Counter[str]] = defaultdict(Counter)
    value_kinds: Counter[str] = Counter()
    metric_counts: Counter[str] = Counter()
    values: dict[str, _Reservoir] = defaultdict(lambda: _Reservoir(rng))
    metric_costs: dict[str, _Reservoir] = defaultdict(lambda: _Reservoir(rng))
    unit_costs: dict[str, _Reservoir] = defaultdict(lambda: _Reservoir(rng))
    costs = _Reservoir(rng)
    tokens = _Reservoir(rng)
    malformed = unit_null = negative = below_cent = negative_zero = cost_not_numeric = 0
    carbon_integer = carbon_scientific = 0
    lines = 0
    for path, raw in _event_lines(landing):
        lines += 1
        lines_per_file[path.name] += 1
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            malformed += 1
            continue
        if not isinstance(record, dict):
            malformed += 1
            continue
        key_orders[str(record.get("schema_version"))][",".join(record)] += 1
        timestamp = str(record.get("timestamp", ""))
        per_day[timestamp[:10]] += 1
        day_resource[(timestamp[:10], str(record.get("resource_id")))] += 1
        metric = str(record.get("metric"))
        metric_counts[metric] += 1
        raw_value = record.get("value")
        value = _number(raw_value)
        value_kinds[
            "null" if raw_value is None else "string" if isinstance(raw_value, str) else "number"
        ] += 1
        if value is not None:
            values[metric].add(value)
        if record.get("unit") is None:
            unit_null += 1
        cost_raw = record.get("cost_usd_increment")
        cost = _number(cost_raw) if not isinstance(cost_raw, str) else None
        if cost is None:
            cost_not_numeric += 1
        else:
            costs.add(cost)
            metric_costs[metric].add(cost)
            negative += cost < 0
            below_cent += cost < -0.01
            negative_zero += cost == 0 and math.copysign(1.0, cost) < 0
            if value is not None and value > 0:
                unit_costs[str(record.get("service"))].add(cost / value)
        if "carbon_kg" in record:
            carbon_integer += type(record["carbon_kg"]) is int
            carbon_scientific += isinstance(record["carbon_kg"], float) and "e" in repr(
                record["carbon_kg"]
            )
        if "genai_tokens" in record and (number := _number(record["genai_tokens"])) is not None:
            tokens.add(number)
    active = Counter(day for day, _ in day_resource)
    per_resource = Counter(count for count in day_resource.values())
    parsed = lines - malformed
    spikes, spike_base = _spikes(unit_costs)
    return {
        "lines": lines,
        "malformed_lines": malformed,
        "files": len(lines_per_file),
        "lines_per_file": _histogram(lines_per_file.values()),
        "days": len(per_day),
        "first_day": min(per_day, default=None),
        "last_day": max(per_day, default=None),
        "events_per_day": _histogram(per_day.values()),
        "active_resources_per_day": _histogram(active.values()),
        "events_per_active_resource_day": _histogram(per_resource.elements()),
        "schema_versions": {version: sum(c.values()) for version, c in sorted(key_orders.items())},
        "key_orders": {version: dict(c.most_common()) for version, c in sorted(key_orders.items())},
        "metrics": dict(metric_counts.most_common()),
        "value": {metric: reservoir.summary() for metric, reservoir in sorted(values.items())},
        "cost": costs.summary(),
        "cost_by_metric": {m: r.summary() for m, r in sorted(metric_costs.items())},
        "genai_tokens": tokens.summary(),
        "quirks": {
            "value_number_share": _share(value_kinds["number"], parsed),
            "value_string_share": _share(value_kinds["string"], parsed),
            "value_null_share": _share(value_kinds["null"], parsed),
            "value_kinds": dict(value_kinds),
            "unit_null": unit_null,
            "unit_null_share": _share(unit_null, parsed),
            "cost_not_numeric": cost_not_numeric,
            "cost_negative": negative,
            "cost_negative_share": _share(negative, parsed),
            "cost_below_minus_0_01": below_cent,
            "cost_negative_zero": negative_zero,
            "carbon_integer_zero": carbon_integer,
            "carbon_scientific": carbon_scientific,
            "spike_share": _share(spikes, spike_base),
        },
    }


def _spikes(unit_costs: dict[str, _Reservoir]) -> tuple[int, int]:
    """Costs per unit of value above SPIKE_MULTIPLE x their service's median (sampled)."""
    spikes = base = 0
    for reservoir in unit_costs.values():
        ordered = sorted(abs(v) for v in reservoir.values)
        if not ordered:
            continue
        median = _quantile(ordered, 0.5)
        spikes += sum(v > SPIKE_MULTIPLE * median for v in ordered)
        base += len(ordered)
    return spikes, base


def _histogram(counts: Iterable[int]) -> dict[str, Any]:
    """Distribution of per-group counts: min, max, mean and the count of each value (top 10)."""
    seen = Counter(counts)
    total = sum(seen.values())
    if not total:
        return {"groups": 0}
    return {
        "groups": total,
        "min": min(seen),
        "max": max(seen),
        "mean": round(sum(k * v for k, v in seen.items()) / total, 4),
        "top": {str(k): v for k, v in seen.most_common(10)},
    }
