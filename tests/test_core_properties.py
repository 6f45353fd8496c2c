"""Properties of the core's meaning, over Hypothesis-generated landing data with real quirks."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re

from hypothesis import given
from hypothesis import strategies as st

from adapters.memory.engine import MemoryEngine
from adapters.memory.lake import InMemoryLake
from finops_core import aggregate, pipeline
from finops_core.events import LandingLine, decode_line, split_lines
from finops_core.lake import BRONZE_EVENTS, GOLD_DAILY, QUARANTINE_EVENTS, SILVER_EVENTS, LakeLayout
from finops_core.ports import RunContext
from tests import strategies

RUN = RunContext("run-1", dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc))
LAYOUT = LakeLayout("memory")


def run_memory(landing: dict[str, bytes], lake: InMemoryLake | None = None) -> InMemoryLake:
    lake = lake or InMemoryLake(landing)
    engine = MemoryEngine(storage=lambda _layout: lake)
    engine.bronze_masters(LAYOUT, RUN)
    engine.bronze_events(LAYOUT, RUN)
    engine.silver(LAYOUT, RUN)
    engine.gold(LAYOUT, RUN)
    return lake


def landing_lines(landing: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return [
        (name.rsplit("/", 1)[-1], line)
        for name, content in sorted(landing.items())
        if name.endswith(".jsonl")
        for line in split_lines(content)
    ]


@given(strategies.landing_zones())
def test_every_landing_line_ends_in_exactly_one_of_silver_quarantine_or_duplicates(landing):
    lake = run_memory(landing)
    lines = landing_lines(landing)
    silver = lake.read_table("silver", SILVER_EVENTS)
    quarantine = lake.read_table("quarantine", QUARANTINE_EVENTS)
    # Duplicates, counted independently: lines whose event_id was already seen among JSON objects.
    seen: set[str] = set()
    duplicates = 0
    for _, raw in lines:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(document, dict) and document.get("event_id") not in (None, ""):
            event_id = str(document["event_id"])
            duplicates += event_id in seen
            seen.add(event_id)
    assert len(silver) + len(quarantine) + duplicates == len(lines)
    assert len({row["quarantine_key"] for row in quarantine}) == len(quarantine)
    assert len({row["event_id"] for row in silver}) == len(silver)


NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def expected_reasons(document: dict, org_ids: set[str]) -> set[str]:
    """An independent oracle for the quarantine rules, written from the issue's wording."""

    def text(value):
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)

    reasons = set()
    if document.get("event_id") in (None, ""):
        reasons.add("event_id_missing")
    try:
        dt.datetime.strptime(str(document.get("timestamp")), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        reasons.add("timestamp_invalid")
    if document.get("org_id") not in org_ids:
        reasons.add("org_unknown")
    cost = text(document.get("cost_usd_increment"))
    if cost in (None, ""):
        reasons.add("cost_missing")
    if cost is not None and not NUMBER.fullmatch(cost):
        reasons.add("cost_not_numeric")
    if cost is not None and NUMBER.fullmatch(cost) and float(cost) < -0.01:
        reasons.add("cost_below_min")
    value = text(document.get("value"))
    if value is not None and not NUMBER.fullmatch(value):
        reasons.add("value_not_numeric")
    if text(document.get("schema_version")) not in ("1", "2"):
        reasons.add("schema_version_unsupported")
    if document.get("metric") not in ("requests", "cpu_hours", "storage_gb_hours"):
        reasons.add("metric_unknown")
    carbon = text(document.get("carbon_kg"))
    if carbon is not None and not NUMBER.fullmatch(carbon):
        reasons.add("carbon_not_numeric")
    tokens = text(document.get("genai_tokens"))
    if tokens is not None and not re.fullmatch(r"[+-]?[0-9]{1,18}", tokens):
        reasons.add("tokens_not_integer")
    return reasons


@given(strategies.landing_zones())
def test_a_quarantined_rows_reasons_are_exactly_the_quarantine_rules_it_breaks(landing):
    lake = run_memory(landing)
    quarantine = lake.read_table("quarantine", QUARANTINE_EVENTS)
    for row in quarantine:
        raw = row["raw_record"]
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "\ufffd" in raw:
            assert row["reasons"] == ["malformed_record"]
            continue
        assert set(row["reasons"]) == expected_reasons(document, set(strategies.ORG_IDS)), raw
    for row in lake.read_table("silver", SILVER_EVENTS):
        assert row["org_id"] in strategies.ORG_IDS
        assert row["metric"] in ("requests", "cpu_hours", "storage_gb_hours")
        assert row["unit"] is not None


def gold_of(lake: InMemoryLake) -> list[dict]:
    return sorted(
        lake.read_table("gold", GOLD_DAILY),
        key=lambda r: (r["org_id"], r["usage_date"], r["service"]),
    )


@given(strategies.landing_zones(), st.randoms(use_true_random=False))
def test_gold_does_not_depend_on_the_order_of_input_lines(landing, rnd: random.Random):
    shuffled = {}
    for name, content in landing.items():
        if name.endswith(".jsonl"):
            lines = split_lines(content)
            rnd.shuffle(lines)
            content = b"".join(line + b"\n" for line in lines)
        shuffled[name] = content
    assert gold_of(run_memory(shuffled)) == gold_of(run_memory(landing))


@given(strategies.landing_zones(), st.integers(1, 5))
def test_merging_partial_aggregates_equals_aggregating_the_union(landing, parts):
    lake = run_memory(landing)
    refs = pipeline.reference_data(
        lake.read_table("bronze", "customers_orgs"), lake.read_table("bronze", "resources")
    )
    lines = [LandingLine(name, *decode_line(raw)) for name, raw in landing_lines(landing)]
    silver = pipeline.silver_from_bronze(pipeline.bronze_from_lines(lines).events, refs).events
    batches = [silver[i::parts] for i in range(parts)]
    merged = aggregate.merge_partials(*(aggregate.partial_aggregate(batch) for batch in batches))
    assert aggregate.gold_rows(merged) == aggregate.aggregate(silver)
    assert aggregate.gold_rows(merged) == sorted(
        (aggregate.finish(k, v) for k, v in aggregate.partial_aggregate(reversed(silver)).items()),
        key=lambda row: row.key,
    )


@given(strategies.landing_zones())
def test_reprocessing_the_same_input_changes_nothing(landing):
    lake = run_memory(landing)
    first = {
        key: lake.read_table(*key)
        for key in [
            ("silver", SILVER_EVENTS),
            ("quarantine", QUARANTINE_EVENTS),
            ("gold", GOLD_DAILY),
            ("bronze", BRONZE_EVENTS),
        ]
    }
    run_memory(landing, lake)
    second = {key: lake.read_table(*key) for key in first}
    assert second == first


@given(strategies.landing_zones())
def test_gold_cost_sums_to_silver_cost_and_cost_per_request_is_defined_iff_requests(landing):
    lake = run_memory(landing)
    silver = lake.read_table("silver", SILVER_EVENTS)
    gold = lake.read_table("gold", GOLD_DAILY)
    assert math.isclose(
        math.fsum(r["daily_cost_usd"] for r in gold),
        math.fsum(r["cost_usd_increment"] for r in silver),
        abs_tol=1e-6,
    )
    assert sum(r["event_count"] for r in gold) == len(silver)
    for row in gold:
        assert (row["cost_per_request_usd"] is not None) == (
            row["requests"] > 0 or row["requests"] < 0
        )
        if row["cost_per_request_usd"] is not None:
            assert math.isclose(
                row["cost_per_request_usd"], row["daily_cost_usd"] / row["requests"]
            )
