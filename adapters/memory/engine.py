"""The pure-Python engine: the whole batch pipeline over the core's pure functions.

It is the reference semantics the Spark engine must match, and the fast path for tests. Storage
is any `Lake`: the on-disk parquet lake by default, an in-memory lake in unit tests.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import attrs

from adapters.lake.parquet import ParquetLake
from finops_core import aggregate, pipeline
from finops_core.aggregate import GoldRow
from finops_core.contracts import MASTER_SOURCES, USAGE_EVENTS, check_header
from finops_core.events import (
    EVENT_FIELDS,
    SILVER_EVENT_FIELDS,
    BronzeEvent,
    LandingLine,
    SilverEvent,
    decode_line,
    event_date,
    split_lines,
)
from finops_core.lake import BRONZE_EVENTS, GOLD_DAILY, QUARANTINE_EVENTS, SILVER_EVENTS, LakeLayout
from finops_core.masters import silver_master_row, typed_row
from finops_core.ports import Lake, RunContext, StageResult


class MemoryEngine:
    name = "memory"

    def __init__(self, storage: Callable[[LakeLayout], Lake] = ParquetLake) -> None:
        self._storage = storage

    # ---- bronze ------------------------------------------------------------------------------

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        store = self._storage(lake)
        parsed: dict[str, list[list[str]]] = {}
        for contract in MASTER_SOURCES:  # check every header before writing anything
            text = store.read_landing(contract.file_pattern).decode("utf-8", errors="replace")
            records = list(csv.reader(io.StringIO(text, newline="")))
            header = records[0] if records else []
            check_header(contract, contract.file_pattern, header)
            parsed[contract.name] = records[1:]
        counts: dict[str, float] = {}
        for contract in MASTER_SOURCES:
            rows = []
            for fields in parsed[contract.name]:
                row = typed_row(contract, [field if field != "" else None for field in fields])
                row.update(ingest_ts=run.started_at, source_file=contract.file_pattern)
                rows.append(row)
            counts[f"{contract.name}_rows"] = store.write_table("bronze", contract.name, rows)
            counts[f"{contract.name}_short_rows"] = sum(
                1 for fields in parsed[contract.name] if len(fields) < len(contract.columns)
            )
        return StageResult("bronze_masters", counts, time.perf_counter() - started)

    def has_bronze_events(self, lake: LakeLayout) -> bool:
        return self._storage(lake).has_table("bronze", BRONZE_EVENTS)

    def bronze_events(self, lake: LakeLayout, run: RunContext) -> StageResult:
        """Backfill bronze events from every landing JSONL file (replaces the table)."""
        started = time.perf_counter()
        store = self._storage(lake)
        files = store.landing_files(USAGE_EVENTS.file_pattern)
        lines = list(_landing_lines(store, files))
        output = pipeline.bronze_from_lines(lines)
        rows = [_bronze_row(event, run) for event in output.events]
        store.write_table("bronze", BRONZE_EVENTS, rows)
        new = _append_quarantine(store, output.malformed, run)
        counts = {
            "files": len(files),
            "landing_lines": len(lines),
            "bronze_rows": len(rows),
            "malformed": len(output.malformed),
            "quarantine_appended": new,
        }
        return StageResult("bronze_events", counts, time.perf_counter() - started)

    # ---- silver ------------------------------------------------------------------------------

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        store = self._storage(lake)
        refs = pipeline.reference_data(
            store.read_table("bronze", "customers_orgs"), store.read_table("bronze", "resources")
        )
        bronze = [
            BronzeEvent(str(row["source_file"]), str(row["raw"]), {n: row[n] for n in EVENT_FIELDS})  # type: ignore[misc]
            for row in store.read_table("bronze", BRONZE_EVENTS)
        ]
        output = pipeline.silver_from_bronze(bronze, refs)
        store.write_table("silver", SILVER_EVENTS, [_silver_row(event) for event in output.events])
        new = _append_quarantine(store, output.quarantine, run)
        for contract in MASTER_SOURCES:
            rows = [
                silver_master_row(contract.name, row)
                for row in store.read_table("bronze", contract.name)
            ]
            store.write_table("silver", contract.name, rows)
        counts: dict[str, float] = {
            "bronze_rows": len(bronze),
            "silver_rows": len(output.events),
            "quarantined": len(output.quarantine),
            "duplicates": output.duplicates,
            "quarantine_appended": new,
            "silver_cost_usd": math.fsum(e.cost_usd_increment for e in output.events),
        }
        counts.update({f"reason.{k}": v for k, v in sorted(output.reason_counts.items())})
        counts.update({f"flag.{k}": v for k, v in sorted(output.flag_counts.items())})
        return StageResult("silver", counts, time.perf_counter() - started)

    # ---- gold --------------------------------------------------------------------------------

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        store = self._storage(lake)
        events = [_silver_event(row) for row in store.read_table("silver", SILVER_EVENTS)]
        rows = aggregate.aggregate(events)
        store.write_table(
            "gold", GOLD_DAILY, [row.as_dict() for row in rows], mode="overwrite_partitions"
        )
        counts = {
            "silver_rows": len(events),
            "gold_rows": len(rows),
            "gold_cost_usd": math.fsum(row.daily_cost_usd for row in rows),
            "gold_keys_unique": int(len({row.key for row in rows}) == len(rows)),
        }
        return StageResult("gold", counts, time.perf_counter() - started)

    def read_gold(self, lake: LakeLayout) -> Iterator[GoldRow]:
        rows = self._storage(lake).read_table("gold", GOLD_DAILY)
        for row in sorted(rows, key=lambda r: (r["usage_date"], r["org_id"], r["service"])):  # type: ignore[arg-type]
            yield GoldRow(**row)  # type: ignore[arg-type]


def _landing_lines(store: Lake, files: list[str]) -> Iterator[LandingLine]:
    for relative in files:
        name = PurePosixPath(relative).name
        for raw in split_lines(store.read_landing(relative)):
            text, valid = decode_line(raw)
            yield LandingLine(name, text, valid)


def _bronze_row(event: BronzeEvent, run: RunContext) -> dict[str, object]:
    row: dict[str, object] = dict(event.fields)
    row.update(
        raw=event.raw,
        source_file=event.source_file,
        ingest_ts=run.started_at,
        run_id=run.run_id,
        event_date=event_date(event.fields.get("timestamp")),
    )
    return row


def _append_quarantine(
    store: Lake, entries: tuple[pipeline.QuarantineEntry, ...], run: RunContext
) -> int:
    existing = (
        str(row["quarantine_key"]) for row in store.read_table("quarantine", QUARANTINE_EVENTS)
    )
    fresh = pipeline.new_quarantine_entries(existing, entries)
    rows = [
        attrs.asdict(entry)
        | {"reasons": list(entry.reasons), "run_id": run.run_id, "ingest_ts": run.started_at}
        for entry in fresh
    ]
    return store.write_table("quarantine", QUARANTINE_EVENTS, rows, mode="append") if rows else 0


def _silver_row(event: SilverEvent) -> dict[str, object]:
    row = {name: getattr(event, name) for name in SILVER_EVENT_FIELDS}
    row["quality_flags"] = list(event.quality_flags)
    return row


def _silver_event(row: dict[str, object]) -> SilverEvent:
    values = {name: row[name] for name in SILVER_EVENT_FIELDS}
    values["quality_flags"] = tuple(values["quality_flags"] or ())  # type: ignore[arg-type]
    return SilverEvent(**values)  # type: ignore[arg-type]
