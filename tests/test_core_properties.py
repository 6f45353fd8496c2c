"""Properties of the core's meaning, over Hypothesis-generated landing data with real quirks."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import tempfile
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.lake.delta import DeltaLake
from adapters.memory.engine import MemoryEngine
from adapters.memory.lake import InMemoryLake
from finops_core import aggregate, events, marts, pipeline, tables
from finops_core.events import LandingLine, decode_line, split_lines
from finops_core.gold import GOLD_TABLES
from finops_core.intake import plan_intake
from finops_core.lake import LakeLayout
from finops_core.ports import Lake, RunContext
from tests import strategies

RUN = RunContext("run-1", dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc))
LAYOUT = LakeLayout("memory")


def run_stages(engine: MemoryEngine, lake: Lake, layout: LakeLayout, landing: dict[str, bytes]):
    """A batch run's stages, bronze events as the ledger plans them (skipped when bronze
    mirrors the landing), as `usecases.run_batch` runs them."""
    engine.bronze_masters(layout, RUN)
    plan = plan_intake(strategies.landing_files(landing), lake.read_table(tables.LANDING_FILES))
    if not plan.empty:
        engine.bronze_events(layout, RUN, plan)
    engine.silver(layout, RUN)
    engine.gold(layout, RUN)


def run_memory(landing: dict[str, bytes], lake: InMemoryLake | None = None) -> InMemoryLake:
    lake = lake or InMemoryLake(landing)
    run_stages(MemoryEngine(storage=lambda _layout: lake), lake, LAYOUT, landing)
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
    silver = lake.read_table(tables.SILVER_EVENTS)
    quarantine = lake.read_table(tables.QUARANTINE_EVENTS)
    # Duplicates, counted independently: lines whose event_id was already seen among JSON objects.
    seen: set[str] = set()
    duplicates = blank = 0
    for _, raw in lines:
        if not raw.strip(b" \t\r"):  # a blank line is no record: only counted
            blank += 1
            continue
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(document, dict) and document.get("event_id") not in (None, ""):
            event_id = str(document["event_id"])
            duplicates += event_id in seen
            seen.add(event_id)
    assert len(silver) + len(quarantine) + duplicates + blank == len(lines)
    assert len({row["quarantine_key"] for row in quarantine}) == len(quarantine)
    assert len({row["event_id"] for row in silver}) == len(silver)


NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def rfc3339_instant(value: object) -> dt.datetime | None:
    """An independent oracle for RFC 3339 section 5.6 (years 1900-2099, no leap second):
    fixed-position separators checked by hand, the rest read by strptime."""
    if not isinstance(value, str) or len(value) < 20 or not value.isascii():
        return None
    text = value.upper()
    if not (text[4] == text[7] == "-" and text[10] == "T" and text[13] == text[16] == ":"):
        return None
    head, tail = text[:19], text[19:]
    fraction = ""
    if tail.startswith("."):
        digits = len(tail) - len(tail[1:].lstrip("0123456789")) - 1
        if digits == 0:
            return None
        fraction, tail = tail[1 : 1 + min(digits, 6)].ljust(6, "0"), tail[1 + digits :]
    numeric_offset = len(tail) == 6 and tail[0] in "+-" and tail[3] == ":"
    if tail != "Z" and not (numeric_offset and (tail[1:3] + tail[4:6]).isdigit()):
        return None
    digits = head[:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:19]
    if not digits.isdigit() or not "1900" <= head[:4] <= "2099":
        return None
    try:
        local = dt.datetime.strptime(head + "." + (fraction or "0"), "%Y-%m-%dT%H:%M:%S.%f")
        zone = dt.datetime.strptime(tail.replace("Z", "+00:00"), "%z").tzinfo
    except ValueError:
        return None
    return local.replace(tzinfo=zone).astimezone(dt.timezone.utc)


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
    if rfc3339_instant(document.get("timestamp")) is None:
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
    quarantine = lake.read_table(tables.QUARANTINE_EVENTS)
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
    for row in lake.read_table(tables.SILVER_EVENTS):
        assert row["org_id"] in strategies.ORG_IDS
        assert row["metric"] in ("requests", "cpu_hours", "storage_gb_hours")
        assert row["unit"] is not None


def gold_of(lake: InMemoryLake) -> list[dict]:
    return sorted(
        lake.read_table(marts.DAILY_USAGE.table),
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
        lake.read_table(tables.BRONZE_MASTERS["customers_orgs"]),
        lake.read_table(tables.BRONZE_MASTERS["resources"]),
    )
    lines = [LandingLine(name, *decode_line(raw)) for name, raw in landing_lines(landing)]
    output = pipeline.silver_from_bronze(pipeline.bronze_from_lines(lines).events, refs)
    silver = [events.silver_row(event) for event in output.events]
    mart = marts.DAILY_USAGE
    batches = [silver[i::parts] for i in range(parts)]
    merged = aggregate.merge_partials(
        *(aggregate.partial_aggregate(mart, batch) for batch in batches)
    )
    assert aggregate.mart_rows(mart, merged) == aggregate.aggregate(mart, silver)
    assert aggregate.mart_rows(mart, merged) == sorted(
        (
            aggregate.finish(mart, k, v)
            for k, v in aggregate.partial_aggregate(mart, reversed(silver)).items()
        ),
        key=mart.table.key_of,
    )


@given(strategies.landing_zones())
def test_reprocessing_the_same_input_changes_nothing(landing):
    lake = run_memory(landing)
    first = {
        table: lake.read_table(table)
        for table in [
            tables.SILVER_EVENTS,
            tables.QUARANTINE_EVENTS,
            marts.DAILY_USAGE.table,
            tables.BRONZE_EVENTS,
        ]
    }
    run_memory(landing, lake)
    second = {table: lake.read_table(table) for table in first}
    assert second == first


@given(strategies.landing_zones())
def test_gold_cost_sums_to_silver_cost_and_cost_per_request_is_defined_iff_requests(landing):
    lake = run_memory(landing)
    silver = lake.read_table(tables.SILVER_EVENTS)
    gold = lake.read_table(marts.DAILY_USAGE.table)
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


def canonical(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


@given(strategies.landing_zones(max_files=4), st.data())
def test_a_rerun_after_files_are_removed_changed_or_added_equals_a_run_on_the_new_landing(
    landing, data
):
    events_files = sorted(name for name in landing if name.endswith(".jsonl"))
    changed = dict(landing)
    removed = data.draw(st.sampled_from(events_files))
    del changed[removed]
    if len(events_files) > 1:
        rewritten = data.draw(st.sampled_from([n for n in events_files if n != removed]))
        lines = [*reversed(split_lines(landing[rewritten])), b"{}"]
        changed[rewritten] = b"".join(line + b"\n" for line in lines)
    added = data.draw(strategies.event_files(max_files=1))
    changed[removed.replace(".jsonl", "_new.jsonl")] = next(iter(added.values()))
    lake = run_memory(landing)
    lake.landing = dict(changed)
    run_memory(changed, lake)
    fresh = run_memory(changed)
    for table in (*tables.LAKE_TABLES, *GOLD_TABLES):
        if table is tables.QUARANTINE_EVENTS:  # append-only: it keeps the removed file's lines
            assert {r["quarantine_key"] for r in fresh.read_table(table)} <= {
                r["quarantine_key"] for r in lake.read_table(table)
            }
            continue
        assert canonical(lake.read_table(table)) == canonical(fresh.read_table(table)), table.id


@settings(max_examples=10)
@given(strategies.landing_zones())
def test_the_engine_builds_the_same_tables_over_the_delta_lake_as_in_memory(landing):
    in_memory = run_memory(landing)
    with tempfile.TemporaryDirectory() as folder:
        layout = LakeLayout(Path(folder))
        strategies.write_landing(landing, layout.landing)
        on_disk = DeltaLake(layout)
        run_stages(MemoryEngine(DeltaLake), on_disk, layout, landing)
        for table in (*tables.LAKE_TABLES, *GOLD_TABLES):
            assert on_disk.has_table(table) == in_memory.has_table(table), table.id
            assert canonical(on_disk.read_table(table)) == canonical(in_memory.read_table(table)), (
                table.id
            )


@given(strategies.landing_zones())
def test_a_silver_event_and_its_silver_row_carry_the_same_values(landing):
    lake = run_memory(landing)
    for row in lake.read_table(tables.SILVER_EVENTS):
        event = events.silver_event(row)
        assert events.silver_row(event) == row
        assert tuple(events.silver_row(event)) == tables.SILVER_EVENTS.column_names


def test_silver_event_fields_are_the_silver_tables_columns():
    fields = tuple(field.name for field in attrs.fields(events.SilverEvent))
    assert fields == tables.SILVER_EVENTS.column_names == events.SILVER_EVENT_FIELDS


def test_quarantine_entry_fields_are_the_first_quarantine_columns_then_provenance():
    fields = tuple(field.name for field in attrs.fields(events.QuarantineEntry))
    assert fields == events.QUARANTINE_FIELDS
    assert tables.QUARANTINE_EVENTS.column_names[:5] == fields
    assert tables.QUARANTINE_EVENTS.column_names[5:] == ("run_id", "ingest_ts")
