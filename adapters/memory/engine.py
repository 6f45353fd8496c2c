"""The pure-Python engine: the whole batch pipeline over the core's pure functions.

It is the reference semantics the Spark engine must match, and the fast path for tests. Storage
is whatever `Lake` the constructor is given (the container passes the Delta lake; unit tests
may pass an in-memory lake); every table it touches is a declaration of `finops_core.tables` or
`finops_core.marts`, and every write is one commit of the lake.
"""

from __future__ import annotations

import collections
import functools
import gc
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import ParamSpec, TypeVar

import attrs

from finops_core import aggregate, anomaly, marts, pipeline, tables
from finops_core.contracts import MASTER_SOURCES, check_header
from finops_core.events import (
    EVENT_FIELDS,
    BronzeEvent,
    LandingLine,
    QuarantineEntry,
    decode_line,
    event_date,
    is_blank,
    silver_row,
    split_lines,
)
from finops_core.intake import IntakePlan
from finops_core.lake import LakeLayout
from finops_core.masters import csv_records, silver_master_row, typed_row
from finops_core.ports import Lake, PartitionSink, RunContext, StageResult
from finops_core.tables import Replace, Table, WriteMode

P = ParamSpec("P")
R = TypeVar("R")


def _collector_paused(stage: Callable[P, R]) -> Callable[P, R]:
    """The stage with Python's cyclic garbage collector paused. A stage builds hundreds of
    thousands of rows (dicts, tuples, attrs values) that hold no reference cycles, and every
    burst of allocations would start a collection walking all the live rows again (measured on
    the real dataset: about a tenth of the batch). Reference counting still frees every row; the
    collector runs again (if it was on) when the stage ends."""

    @functools.wraps(stage)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return stage(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return run


class MemoryEngine:
    name = "memory"
    distributed = False  # `export` runs the sink in this process

    def __init__(self, storage: Callable[[LakeLayout], Lake]) -> None:
        self._storage = storage

    # ---- bronze ------------------------------------------------------------------------------

    @_collector_paused
    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        store = self._storage(lake)
        parsed: dict[str, list[list[str]]] = {}
        for contract in MASTER_SOURCES:  # check every header before writing anything
            records = csv_records(store.read_landing(contract.file_pattern))
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
            table = tables.BRONZE_MASTERS[contract.name]
            counts[f"{contract.name}_rows"] = store.write_table(table, rows)
            counts[f"{contract.name}_short_rows"] = sum(
                1 for fields in parsed[contract.name] if len(fields) < len(contract.columns)
            )
        return StageResult("bronze_masters", counts, time.perf_counter() - started)

    @_collector_paused
    def bronze_events(self, lake: LakeLayout, run: RunContext, plan: IntakePlan) -> StageResult:
        """The bronze rows of `plan.drop` replaced by the rows of `plan.ingest` (the whole table
        when `plan.full`) in one commit; malformed lines quarantined, blank lines only counted;
        then the ledger."""
        started = time.perf_counter()
        store = self._storage(lake)
        lines: list[LandingLine] = []
        files: list[tuple[str, str, bytes, int, int]] = []  # name, path, content, lines, blank
        for file in plan.ingest:
            content = store.read_landing(file.path)
            raws = split_lines(content)
            records = [raw for raw in raws if not is_blank(raw)]
            lines.extend(LandingLine(file.name, *decode_line(raw)) for raw in records)
            files.append((file.name, file.path, content, len(raws), len(raws) - len(records)))
        output = pipeline.bronze_from_lines(lines)
        rows = [_bronze_row(event, run) for event in output.events]
        replaced = None if plan.full else Replace("source_file", plan.drop)
        store.write_table(tables.BRONZE_EVENTS, rows, where=replaced)
        new = _add_to_quarantine(store, output.malformed, run)
        bronze = collections.Counter(event.source_file for event in output.events)
        malformed = collections.Counter(entry.source_file for entry in output.malformed)
        ledger = [
            {
                "source_file": name,
                "path": path,
                # What was read, as read: the ledger never vouches for bytes it did not parse.
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "lines": count,
                "blank": blank,
                "malformed": malformed[name],
                "duplicates": 0,  # a batch keeps every copy in bronze; silver drops them
                "bronze_rows": bronze[name],
                "run_id": run.run_id,
                "ingest_ts": run.started_at,
            }
            for name, path, content, count, blank in files
        ]
        store.write_table(tables.LANDING_FILES, ledger, where=replaced)
        counts = {
            "files": len(files),
            "landing_lines": sum(count for _, _, _, count, _ in files),
            "bronze_rows": len(rows),
            "malformed": len(output.malformed),
            "blank_lines": sum(blank for *_, blank in files),
            "quarantine_appended": new,
        }
        return StageResult("bronze_events", counts, time.perf_counter() - started)

    # ---- silver ------------------------------------------------------------------------------

    @_collector_paused
    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        store = self._storage(lake)
        refs = pipeline.reference_data(
            store.read_table(tables.BRONZE_MASTERS["customers_orgs"]),
            store.read_table(tables.BRONZE_MASTERS["resources"]),
        )
        # Only the columns silver reads: the record's fields and its provenance.
        read = store.read_table(tables.BRONZE_EVENTS, ("source_file", "raw", *EVENT_FIELDS))
        bronze = [
            BronzeEvent(str(row.pop("source_file")), str(row.pop("raw")), row)  # type: ignore[arg-type]
            for row in read
        ]
        output = pipeline.silver_from_bronze(bronze, refs)
        store.write_table(tables.SILVER_EVENTS, [silver_row(event) for event in output.events])
        new = _add_to_quarantine(store, output.quarantine, run)
        self._silver_masters(store)
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

    @_collector_paused
    def silver_masters(self, lake: LakeLayout) -> None:
        """Every silver master table, rebuilt from its bronze table (one commit each)."""
        self._silver_masters(self._storage(lake))

    @staticmethod
    def _silver_masters(store: Lake) -> None:
        for contract in MASTER_SOURCES:
            rows = [
                silver_master_row(contract.name, row)
                for row in store.read_table(tables.BRONZE_MASTERS[contract.name])
            ]
            store.write_table(tables.SILVER_MASTERS[contract.name], rows)

    # ---- gold --------------------------------------------------------------------------------

    @_collector_paused
    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult:
        """Every declared mart, rebuilt from its source table: the whole table replaced, so a
        day no longer in the source leaves the mart."""
        started = time.perf_counter()
        store = self._storage(lake)
        sources: dict[Table, list[dict[str, object]]] = {}
        counts: dict[str, float] = {}
        for mart in marts.MARTS:
            if mart.source not in sources:
                sources[mart.source] = store.read_table(mart.source, _read_by(mart.source))
            if mart is marts.DAILY_USAGE:
                rows = aggregate.aggregate(mart, sources[mart.source])
                store.write_table(mart.table, rows)
                counts.update(_daily_counts(len(sources[mart.source]), rows))
                scored = anomaly.anomaly_rows(anomaly.COST_ANOMALIES, rows)
                store.write_table(anomaly.COST_ANOMALIES.table, scored)
                counts.update(anomaly.anomaly_counts(anomaly.COST_ANOMALIES, scored))
            else:
                kept, rows = aggregate.aggregate_kept(mart, sources[mart.source])
                store.write_table(mart.table, rows)
                counts.update(aggregate.mart_counts(mart, kept, rows))
        return StageResult("gold", counts, time.perf_counter() - started)

    # ---- reading -----------------------------------------------------------------------------

    def read_rows(self, lake: LakeLayout, table: Table) -> Iterator[dict[str, object]]:
        """The table's rows in no particular order (callers that need an order sort)."""
        yield from self._storage(lake).read_table(table)

    def export(self, lake: LakeLayout, table: Table, sink: PartitionSink) -> int:
        """`sink` called once per partition of the table; the sum of what it returns."""
        return sum(sink(rows) for rows in _partitions(self._storage(lake), table))


def _read_by(source: Table) -> tuple[str, ...]:
    """The columns of `source` the marts aggregating it read, in table order."""
    read = {
        name
        for mart in marts.MARTS
        if mart.source == source
        for name in aggregate.source_columns(mart)
    }
    return tuple(name for name in source.column_names if name in read)


def _daily_counts(source_rows: int, rows: list[dict[str, object]]) -> dict[str, float]:
    """The daily mart's counts, by the names reconciliations and earlier run records use."""
    keys = {marts.DAILY_USAGE.table.key_of(row) for row in rows}
    return {
        "silver_rows": source_rows,
        "gold_rows": len(rows),
        "gold_cost_usd": math.fsum(row["daily_cost_usd"] for row in rows),  # type: ignore[misc]
        "gold_keys_unique": int(len(keys) == len(rows)),
    }


def _partitions(store: Lake, table: Table) -> Iterator[list[dict[str, object]]]:
    """The table's rows one lake partition at a time (one group for an unpartitioned table)."""
    rows = store.read_table(table)
    if table.partition_by is None:
        groups = [rows] if rows else []
    else:
        by_value: dict[object, list[dict[str, object]]] = {}
        for row in rows:
            by_value.setdefault(row[table.partition_by], []).append(row)
        groups = list(by_value.values())
    yield from groups


def _bronze_row(event: BronzeEvent, run: RunContext) -> dict[str, object]:
    return {
        **event.fields,
        "raw": event.raw,
        "source_file": event.source_file,
        "ingest_ts": run.started_at,
        "run_id": run.run_id,
        "event_date": event_date(event.fields.get("timestamp")),
    }


def _add_to_quarantine(store: Lake, entries: Iterable[QuarantineEntry], run: RunContext) -> int:
    """The entries whose quarantine_key the quarantine lacks, added (MERGE_NEW): a rerun adds
    none of the rows it added before."""
    rows = [
        attrs.asdict(entry)
        | {"reasons": list(entry.reasons), "run_id": run.run_id, "ingest_ts": run.started_at}
        for entry in entries
    ]
    return store.write_table(tables.QUARANTINE_EVENTS, rows, WriteMode.MERGE_NEW) if rows else 0
