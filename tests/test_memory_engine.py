"""The memory engine end to end on the real dataset, through the CLI; the lakes it writes to.

The Delta lake's schemas come from the table declarations; every declared table round-trips
through it and through the in-memory lake alike, and every write mode means the same in both.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from adapters.lake.delta import DeltaLake, delta_tables, vacuum
from adapters.lake.schemas import arrow_schema
from adapters.memory.engine import MemoryEngine
from adapters.memory.lake import InMemoryLake
from entrypoints.cli import main
from finops_core import marts, tables
from finops_core.contracts import LogicalType
from finops_core.events import split_lines
from finops_core.gold import GOLD_TABLES
from finops_core.intake import plan_intake
from finops_core.lake import LakeLayout
from finops_core.ports import Lake, RunContext
from finops_core.tables import Replace, Table, WriteMode
from tests import strategies


@pytest.mark.slow
def test_memory_batch_on_the_real_dataset_accounts_for_every_landing_event(real_lake: Path, capsys):
    assert main(["batch", "--engine", "memory", "--lake", str(real_lake)]) == 0
    lake = DeltaLake(LakeLayout(real_lake))
    landing_lines = sum(
        len(path.read_bytes().splitlines())
        for path in (real_lake / "landing" / "usage_events_stream").glob("*.jsonl")
    )
    silver = lake.read_table(tables.SILVER_EVENTS)
    quarantine = lake.read_table(tables.QUARANTINE_EVENTS)
    gold = lake.read_table(marts.DAILY_USAGE.table)
    assert landing_lines == 43_200
    assert len(silver) + len(quarantine) == landing_lines  # the real feed repeats no event_id
    assert {tuple(row["reasons"]) for row in quarantine} == {("cost_below_min",)}
    assert len(quarantine) == 211
    assert sum(row["event_count"] for row in gold) == len(silver)
    assert len({(r["org_id"], r["usage_date"], r["service"]) for r in gold}) == len(gold)
    record = json.loads(sorted((real_lake / "_runs").glob("*.json"))[-1].read_text())
    assert all(check["passed"] for check in record["reconciliations"])
    # The events' path (4), the other marts against their sources (9), revenue rows = invoices,
    # one scored anomaly row per gold row.
    assert len(record["reconciliations"]) == 15
    marts_before = {table.id: canonical(lake.read_table(table)) for table in GOLD_TABLES}

    ledger = lake.read_table(tables.LANDING_FILES)
    assert sum(row["lines"] for row in ledger) == landing_lines
    assert sum(row["blank"] for row in ledger) == 0  # the real feed has no blank line
    assert all(
        row["lines"] == row["bronze_rows"] + row["duplicates"] + row["malformed"] + row["blank"]
        for row in ledger
    )
    bronze_version = DeltaTable(str(LakeLayout(real_lake).table(tables.BRONZE_EVENTS))).version()

    # A second run changes nothing: bronze mirrors the landing, so it is not even rewritten.
    assert main(["batch", "--engine", "memory", "--lake", str(real_lake)]) == 0
    assert canonical(lake.read_table(tables.QUARANTINE_EVENTS)) == canonical(quarantine)
    assert canonical(lake.read_table(marts.DAILY_USAGE.table)) == canonical(gold)
    assert {table.id: canonical(lake.read_table(table)) for table in GOLD_TABLES} == marts_before
    assert lake.read_table(tables.LANDING_FILES) == ledger
    assert DeltaTable(str(LakeLayout(real_lake).table(tables.BRONZE_EVENTS))).version() == (
        bronze_version
    )


def test_batch_without_a_landing_zone_says_what_to_run_first(tmp_path: Path, capsys):
    assert main(["batch", "--engine", "memory", "--lake", str(tmp_path / "nowhere")]) == 3
    assert "run `finops landing`" in capsys.readouterr().err


def test_finops_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("batch", "landing"):
        assert command in out


# ---- the lakes: schemas derived from the declarations, every table round-trips --------------

UTC = dt.timezone.utc
DECLARED: tuple[Table, ...] = (*tables.LAKE_TABLES, *GOLD_TABLES)
KEYED: tuple[Table, ...] = tuple(table for table in DECLARED if table.primary_key)
# Two values of each logical type (the second the awkward one).
SAMPLES: dict[LogicalType, tuple[object, object]] = {
    LogicalType.STRING: ("org_a", 'é, "quoted"\nand a new line'),
    LogicalType.JSON: ('{"tags": ["env:prod"]}', "[]"),
    LogicalType.NUMERIC_TEXT: ("1.50", "-0.0"),
    LogicalType.INTEGER: (2**40, -1),
    LogicalType.FLOAT: (0.1, -154.46),
    LogicalType.BOOLEAN: (True, False),
    LogicalType.DATE: (dt.date(2025, 7, 3), dt.date(2024, 2, 29)),
    LogicalType.TIMESTAMP: (
        dt.datetime(2025, 7, 3, 10, 0, 0, 123456, tzinfo=UTC),
        dt.datetime(2025, 7, 18, tzinfo=UTC),
    ),
    LogicalType.STRING_LIST: (["unit_imputed", "value_missing"], []),
    LogicalType.COUNT_MAP: ({"unit_imputed": 2, "value_missing": 1}, {}),
    LogicalType.STRING_SET: (["mad_score", "z_score"], []),
}
PARTITIONS: dict[LogicalType, tuple[object, object]] = {
    LogicalType.DATE: (dt.date(2025, 7, 3), dt.date(2025, 7, 18)),
    LogicalType.STRING: ("2025-07-03", "a/b=c:50%"),  # text a folder name must escape
}


def sample_row(table: Table, variant: int, partition: object = None) -> dict[str, object]:
    row = {column.name: SAMPLES[column.type][variant] for column in table.columns}
    if table.partition_by is not None:
        row[table.partition_by] = partition
    return row


def sample_rows(table: Table) -> list[dict[str, object]]:
    """Values of every type in two partitions, and a row of nulls (the null partition)."""
    partitions = (
        PARTITIONS[table.column(table.partition_by).type] if table.partition_by else (None, None)
    )
    return [
        sample_row(table, 0, partitions[0]),
        sample_row(table, 1, partitions[1]),
        {name: None for name in table.column_names},
    ]


def keyed(table: Table, row: dict[str, object], *key: object) -> dict[str, object]:
    return row | dict(zip(table.primary_key, key, strict=True))


def canonical(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


LakeFactory = Callable[[Path], Lake]
LAKES: dict[str, LakeFactory] = {
    "delta": lambda root: DeltaLake(LakeLayout(root)),
    "memory": lambda root: InMemoryLake(layout=LakeLayout(root)),
}


@pytest.fixture(params=sorted(LAKES))
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    return LAKES[request.param](tmp_path / "lake")


def delta_table(layout: LakeLayout, table: Table) -> DeltaTable:
    return DeltaTable(str(layout.table(table)))


@pytest.mark.parametrize("table", DECLARED, ids=lambda t: t.id)
def test_the_arrow_schema_of_a_table_is_its_columns_in_order_all_nullable(table: Table):
    schema = arrow_schema(table)
    assert tuple(schema.names) == table.column_names
    assert all(field.nullable for field in schema)
    timestamps = [f for f in schema if pa.types.is_timestamp(f.type)]
    assert all(f.type == pa.timestamp("us", tz="UTC") for f in timestamps)


@pytest.mark.parametrize("table", DECLARED, ids=lambda t: t.id)
def test_every_declared_table_round_trips_through_the_lake(lake: Lake, table: Table):
    rows = sample_rows(table)
    assert not lake.has_table(table)
    assert lake.read_table(table) == []
    assert lake.write_table(table, rows) == len(rows)
    assert lake.has_table(table)
    read = lake.read_table(table)
    assert all(tuple(row) == table.column_names for row in read)
    assert canonical(read) == canonical(rows)


@pytest.mark.parametrize("table", DECLARED, ids=lambda t: t.id)
def test_the_delta_lake_writes_the_declared_table_at_protocol_reader_1_writer_2(
    tmp_path: Path, table: Table
):
    layout = LakeLayout(tmp_path)
    DeltaLake(layout).write_table(table, sample_rows(table))
    written = delta_table(layout, table)
    protocol = written.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    assert written.metadata().partition_columns == (
        [table.partition_by] if table.partition_by else []
    )
    assert tuple(field.name for field in written.schema().fields) == table.column_names
    # Read back by the Delta reader alone: maps, lists, timestamps and the null partition.
    read = written.to_pyarrow_table()
    assert read.schema.field(table.column_names[0]).type == arrow_schema(table).field(0).type
    assert read.num_rows == 3
    if table.partition_by is not None:
        assert None in read.column(table.partition_by).to_pylist()


def test_a_partition_value_that_a_folder_name_cannot_hold_reads_back_equal(tmp_path: Path):
    table = tables.BRONZE_EVENTS
    layout = LakeLayout(tmp_path)
    DeltaLake(layout).write_table(table, [sample_row(table, 0, "a/b=c:50%"), sample_row(table, 1)])
    folders = sorted(p.name for p in layout.table(table).iterdir() if p.name != "_delta_log")
    assert folders == ["event_date=__HIVE_DEFAULT_PARTITION__", "event_date=a%2Fb%3Dc%3A50%25"]
    read = DeltaLake(layout).read_table(table)
    assert sorted(row["event_date"] or "" for row in read) == ["", "a/b=c:50%"]


def test_an_empty_partition_text_is_the_null_partition_in_both_lakes(lake: Lake):
    table = tables.BRONZE_EVENTS
    lake.write_table(table, [sample_row(table, 0, "")])
    assert [row["event_date"] for row in lake.read_table(table)] == [None]


def test_every_write_of_the_delta_lake_is_one_commit(tmp_path: Path):
    layout = LakeLayout(tmp_path)
    lake, table = DeltaLake(layout), tables.QUARANTINE_EVENTS
    first, second = (
        keyed(table, sample_row(table, 0), "k1"),
        keyed(table, sample_row(table, 1), "k2"),
    )
    lake.write_table(table, [first])
    versions = [delta_table(layout, table).version()]
    for mode, key in ((WriteMode.APPEND, "k2"), (WriteMode.MERGE_NEW, "k3")):
        lake.write_table(table, [second | {"quarantine_key": key}], mode)
        versions.append(delta_table(layout, table).version())
    lake.write_table(table, [second], WriteMode.OVERWRITE)
    versions.append(delta_table(layout, table).version())
    lake.write_table(table, [], where=Replace("source_file", {second["source_file"]}))  # delete
    versions.append(delta_table(layout, table).version())
    assert lake.read_table(table) == []
    assert versions == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "table", [tables.SILVER_EVENTS, marts.DAILY_USAGE.table], ids=lambda t: t.id
)
def test_write_modes_on_a_partitioned_table(lake: Lake, table: Table):
    day_1, day_2 = PARTITIONS[LogicalType.DATE]
    first, second = sample_row(table, 0, day_1), sample_row(table, 0, day_2)
    replacement = sample_row(table, 1, day_2)
    lake.write_table(table, [first, second])
    assert lake.write_table(table, [replacement], WriteMode.OVERWRITE_PARTITIONS) == 1
    assert canonical(lake.read_table(table)) == canonical([first, replacement])
    assert lake.write_table(table, [], WriteMode.OVERWRITE_PARTITIONS) == 0  # replaces nothing
    assert canonical(lake.read_table(table)) == canonical([first, replacement])
    assert lake.write_table(table, [first], WriteMode.APPEND) == 1
    assert canonical(lake.read_table(table)) == canonical([first, first, replacement])
    lake.write_table(table, [replacement], WriteMode.OVERWRITE)
    assert lake.read_table(table) == [replacement]
    lake.write_table(table, [], WriteMode.OVERWRITE)
    assert lake.read_table(table) == [] and lake.has_table(table)  # an empty table exists


def test_write_modes_on_an_unpartitioned_table(lake: Lake):
    table = tables.QUARANTINE_EVENTS
    first, second = sample_row(table, 0), sample_row(table, 1)
    assert lake.write_table(table, [first], WriteMode.APPEND) == 1
    assert lake.write_table(table, [second], WriteMode.APPEND) == 1
    assert canonical(lake.read_table(table)) == canonical([first, second])
    lake.write_table(table, [second], WriteMode.OVERWRITE_PARTITIONS)
    assert lake.read_table(table) == [second]
    lake.write_table(table, [], WriteMode.OVERWRITE)
    assert lake.read_table(table) == [] and lake.has_table(table)  # an empty table exists


def with_key(table: Table, row: dict[str, object], index: int) -> dict[str, object]:
    """`row` with the `index`-th key of the table (texts and dates alike)."""
    values = {LogicalType.STRING: f"key_{index}", LogicalType.DATE: dt.date(2025, 7, 1 + index)}
    return row | {name: values[table.column(name).type] for name in table.primary_key}


@pytest.mark.parametrize("table", KEYED, ids=lambda t: t.id)
def test_merge_new_adds_only_the_rows_whose_key_the_table_lacks(lake: Lake, table: Table):
    day = PARTITIONS[LogicalType.DATE][0]
    old = with_key(table, sample_row(table, 0, day), 0)
    again = with_key(table, sample_row(table, 1, day), 0)  # the same key, other values
    fresh = with_key(table, sample_row(table, 1, day), 1)
    fresh_copy = with_key(table, sample_row(table, 0, day), 1)  # the first of a key wins
    lake.write_table(table, [old])
    assert lake.write_table(table, [again, fresh, fresh_copy], WriteMode.MERGE_NEW) == 1
    assert canonical(lake.read_table(table)) == canonical([old, fresh])
    assert lake.write_table(table, [again, fresh], WriteMode.MERGE_NEW) == 0
    assert canonical(lake.read_table(table)) == canonical([old, fresh])


def test_merge_new_into_an_absent_table_creates_it_with_one_row_per_key_and_none_adds_nothing(
    lake: Lake,
):
    table = tables.QUARANTINE_EVENTS
    rows = [keyed(table, sample_row(table, v), key) for v, key in ((0, "k1"), (1, "k1"), (1, "k2"))]
    assert lake.write_table(table, rows, WriteMode.MERGE_NEW) == 2
    assert canonical(lake.read_table(table)) == canonical([rows[0], rows[2]])
    users, absent = tables.SILVER_MASTERS["users"], tables.LANDING_FILES
    assert lake.write_table(users, [], WriteMode.APPEND) == 0  # nothing to add: no commit
    assert lake.write_table(absent, [], WriteMode.MERGE_NEW) == 0
    assert not lake.has_table(users) and not lake.has_table(absent)
    with pytest.raises(ValueError, match="no primary key"):
        lake.write_table(tables.SILVER_MASTERS["users"], rows, WriteMode.MERGE_NEW)


def test_a_replacement_replaces_only_the_rows_whose_column_is_among_its_values(lake: Lake):
    table = tables.BRONZE_EVENTS

    def line(source_file: str, day: str | None, variant: int = 0) -> dict[str, object]:
        return sample_row(table, variant, day) | {"source_file": source_file}

    a1, a2, b1, c1 = (
        line("a", "2025-07-03"),
        line("a", None),
        line("b", "2025-07-03"),
        line("c", "d"),
    )
    lake.write_table(table, [a1, a2, b1, c1])
    b2 = line("b", "2025-07-04", 1)
    assert lake.write_table(table, [b2], where=Replace("source_file", {"b", "c"})) == 1
    assert canonical(lake.read_table(table)) == canonical([a1, a2, b2])
    assert lake.write_table(table, [], where=Replace("source_file", {"a"})) == 0  # rows removed
    assert lake.read_table(table) == [b2]
    assert lake.write_table(table, [], where=Replace("source_file", set())) == 0
    assert lake.read_table(table) == [b2]
    with pytest.raises(ValueError, match="outside the rows it replaces"):
        lake.write_table(table, [a1], where=Replace("source_file", {"b"}))
    with pytest.raises(ValueError, match="must be an OVERWRITE"):
        lake.write_table(table, [b2], WriteMode.APPEND, where=Replace("source_file", {"b"}))
    assert lake.read_table(table) == [b2]


def test_a_replacement_in_the_delta_lake_quotes_its_values(tmp_path: Path):
    lake, table = DeltaLake(LakeLayout(tmp_path)), tables.LANDING_FILES
    odd = 'it\'s "odd" ) OR 1=1 --'
    rows = [sample_row(table, 0) | {"source_file": name} for name in (odd, "plain")]
    lake.write_table(table, rows)
    lake.write_table(table, [], where=Replace("source_file", {odd}))
    assert [row["source_file"] for row in lake.read_table(table)] == ["plain"]


# ---- vacuum ------------------------------------------------------------------------------------


def test_vacuum_removes_the_files_old_versions_need_and_the_tables_still_read(tmp_path: Path):
    layout = LakeLayout(tmp_path)
    lake = DeltaLake(layout)
    table, mart = tables.SILVER_EVENTS, marts.DAILY_USAGE.table
    for variant in (0, 1, 0):
        lake.write_table(table, [sample_row(table, variant, dt.date(2025, 7, 3))])
    lake.write_table(mart, sample_rows(mart))
    orphan = layout.table(mart) / "part-00000-left-by-a-killed-writer.parquet"
    orphan.write_bytes(b"not referenced by any commit")
    assert list(delta_tables(layout)) == [mart.id, table.id]

    assert vacuum(layout, retention_hours=168) == {mart.id: 0, table.id: 0}  # all too young
    assert vacuum(layout, retention_hours=0, dry_run=True) == {mart.id: 1, table.id: 2}
    assert orphan.exists()
    assert vacuum(layout, retention_hours=0) == {mart.id: 1, table.id: 2}
    assert not orphan.exists()
    assert len(list(layout.table(table).rglob("*.parquet"))) == 1
    assert lake.read_table(table) == [sample_row(table, 0, dt.date(2025, 7, 3))]
    assert canonical(lake.read_table(mart)) == canonical(sample_rows(mart))
    assert vacuum(layout, retention_hours=0) == {mart.id: 0, table.id: 0}


def test_vacuum_of_a_lake_without_tables_removes_nothing(tmp_path: Path):
    assert vacuum(LakeLayout(tmp_path / "absent"), retention_hours=0) == {}
    with pytest.raises(ValueError, match="negative"):
        vacuum(LakeLayout(tmp_path), retention_hours=-1)


# ---- the engine: bronze events as the intake plan says, the ledger --------------------------

RUN = RunContext("run-1", dt.datetime(2025, 9, 1, tzinfo=UTC))
EVENT = {
    "event_id": "evt_1",
    "timestamp": "2025-07-03T10:00:00Z",
    "org_id": "org_aaaa0001",
    "resource_id": "res_aaaa0001",
    "service": "compute",
    "region": "us-east",
    "metric": "requests",
    "value": 3,
    "unit": "requests",
    "cost_usd_increment": 0.5,
    "schema_version": 1,
}


def jsonl(*lines: object) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


def events_file(name: str) -> str:
    return f"usage_events_stream/{name}"


def run_bronze(lake: Lake, landing: dict[str, bytes], run: RunContext = RUN):
    """Bronze events as a batch plans them; the landing given is the lake's landing."""
    if isinstance(lake, InMemoryLake):
        lake.landing = dict(landing)
    else:
        for path in lake.layout.landing.rglob("*.jsonl"):
            path.unlink()
        strategies.write_landing(landing, lake.layout.landing)
    plan = plan_intake(strategies.landing_files(landing), lake.read_table(tables.LANDING_FILES))
    return plan, engine_over(lake).bronze_events(lake.layout, run, plan)


def test_bronze_events_writes_one_ledger_row_per_file_with_what_its_lines_became(lake: Lake):
    landing = {
        events_file("a.jsonl"): jsonl(EVENT, b"not json", EVENT | {"event_id": "evt_2"}),
        events_file("b.jsonl"): jsonl(EVENT, b""),  # a copy of a's first line, a blank line
    }
    _, result = run_bronze(lake, landing)
    assert result.counts == {
        "files": 2,
        "landing_lines": 5,
        "bronze_rows": 3,
        "malformed": 1,
        "blank_lines": 1,
        "quarantine_appended": 1,
    }
    ledger = {row["source_file"]: row for row in lake.read_table(tables.LANDING_FILES)}
    want = {f.name: f for f in strategies.landing_files(landing)}
    assert sorted(ledger) == ["a.jsonl", "b.jsonl"]
    for name, row in ledger.items():
        assert (row["path"], row["size"], row["sha256"]) == (
            want[name].path,
            want[name].size,
            want[name].sha256,
        )
        assert row["lines"] == len(split_lines(landing[events_file(name)]))
        assert (
            row["lines"] == row["bronze_rows"] + row["duplicates"] + row["malformed"] + row["blank"]
        )
        assert (row["run_id"], row["ingest_ts"]) == (RUN.run_id, RUN.started_at)
    got = [
        (ledger[n]["bronze_rows"], ledger[n]["malformed"], ledger[n]["blank"])
        for n in sorted(ledger)
    ]
    assert got == [(2, 1, 0), (1, 0, 1)]
    bronze = lake.read_table(tables.BRONZE_EVENTS)
    assert sorted(row["source_file"] for row in bronze) == ["a.jsonl", "a.jsonl", "b.jsonl"]


def test_a_rerun_replaces_a_changed_files_rows_and_drops_a_removed_files(lake: Lake):
    a, b, c = (events_file(n) for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    run_bronze(lake, {a: jsonl(EVENT), b: jsonl(EVENT | {"event_id": "evt_b"}, b"{")})
    later = RunContext("run-2", dt.datetime(2025, 9, 2, tzinfo=UTC))
    changed = {a: jsonl(EVENT | {"event_id": "evt_a2"}, EVENT), c: jsonl(EVENT | {"event_id": "c"})}
    plan, result = run_bronze(lake, changed, later)
    assert (plan.new, plan.changed, plan.removed) == (("c.jsonl",), ("a.jsonl",), ("b.jsonl",))
    assert result.counts["bronze_rows"] == 3 and result.counts["files"] == 2
    bronze = lake.read_table(tables.BRONZE_EVENTS)
    assert sorted((row["source_file"], row["event_id"]) for row in bronze) == [
        ("a.jsonl", "evt_1"),
        ("a.jsonl", "evt_a2"),
        ("c.jsonl", "c"),
    ]
    assert {row["run_id"] for row in bronze} == {"run-2"}
    ledger = lake.read_table(tables.LANDING_FILES)
    assert sorted((row["source_file"], row["run_id"]) for row in ledger) == [
        ("a.jsonl", "run-2"),
        ("c.jsonl", "run-2"),
    ]
    # b's malformed line stays in the append-only quarantine.
    assert [row["source_file"] for row in lake.read_table(tables.QUARANTINE_EVENTS)] == ["b.jsonl"]


def test_a_rerun_on_an_unchanged_landing_plans_nothing_and_a_forced_one_rebuilds(lake: Lake):
    landing = {events_file("a.jsonl"): jsonl(EVENT, b"[]")}
    run_bronze(lake, landing)
    bronze = lake.read_table(tables.BRONZE_EVENTS)
    ledger = lake.read_table(tables.LANDING_FILES)
    again = plan_intake(strategies.landing_files(landing), ledger)
    assert again.empty
    full = plan_intake(strategies.landing_files(landing), ledger, full=True)
    result = engine_over(lake).bronze_events(lake.layout, RUN, full)
    assert result.counts["quarantine_appended"] == 0  # the malformed line is quarantined once
    assert lake.read_table(tables.BRONZE_EVENTS) == bronze
    assert lake.read_table(tables.LANDING_FILES) == ledger


# ---- the engine reads any declared table back ----------------------------------------------


def engine_over(lake: Lake) -> MemoryEngine:
    return MemoryEngine(lambda _layout: lake)


def test_read_rows_gives_every_row_of_a_table(lake: Lake):
    table = marts.DAILY_USAGE.table
    day_1, day_2 = PARTITIONS[LogicalType.DATE]
    keys = [
        ("org_b", day_1, "storage"),
        ("org_a", day_2, "compute"),
        ("org_b", day_1, "compute"),
        ("org_a", day_1, "genai"),
    ]
    rows = [keyed(table, sample_row(table, 0), *key) for key in keys]
    lake.write_table(table, rows)
    read = list(engine_over(lake).read_rows(lake.layout, table))
    assert sorted(table.key_of(row) for row in read) == sorted(keys)
    assert canonical(read) == canonical(rows)
    assert list(engine_over(lake).read_rows(lake.layout, tables.LANDING_FILES)) == []  # absent


@pytest.mark.parametrize(
    "table", [marts.DAILY_USAGE.table, tables.QUARANTINE_EVENTS], ids=lambda t: t.id
)
def test_export_calls_the_sink_once_per_partition_and_sums_what_it_returns(
    lake: Lake, table: Table
):
    rows = sample_rows(table)
    lake.write_table(table, rows)
    calls: list[list[dict[str, object]]] = []

    def sink(partition):
        calls.append(list(partition))
        return 10 * len(calls[-1])

    assert engine_over(lake).export(lake.layout, table, sink) == 10 * len(rows)
    assert canonical([row for call in calls for row in call]) == canonical(rows)
    if table.partition_by is None:
        assert len(calls) == 1
    else:
        values = [{row[table.partition_by] for row in call} for call in calls]
        assert all(len(value) == 1 for value in values)
        assert len(calls) == len({row[table.partition_by] for row in rows}) == 3
    assert engine_over(lake).export(lake.layout, tables.BRONZE_EVENTS, sink) == 0  # no partition


def test_the_engine_takes_its_storage_and_reads_what_it_wrote(tmp_path: Path):
    layout = LakeLayout(tmp_path)
    table = marts.DAILY_USAGE.table
    rows = sample_rows(table)[:2]
    DeltaLake(layout).write_table(table, rows)
    assert canonical(list(MemoryEngine(DeltaLake).read_rows(layout, table))) == canonical(rows)
