"""The memory engine end to end on the real dataset, through the CLI; the lakes it writes to.

The parquet lake's schemas come from the table declarations; every declared table round-trips
through it and through the in-memory lake alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from adapters.lake.parquet import NULL_PARTITION, ParquetLake, has_parquet
from adapters.lake.schemas import arrow_schema
from adapters.memory.engine import MemoryEngine
from adapters.memory.lake import InMemoryLake
from entrypoints.cli import main
from finops_core import marts, tables
from finops_core.contracts import LogicalType
from finops_core.lake import LakeLayout
from finops_core.ports import Lake
from finops_core.tables import Table, WriteMode


@pytest.mark.slow
def test_memory_batch_on_the_real_dataset_accounts_for_every_landing_event(real_lake: Path, capsys):
    assert main(["batch", "--engine", "memory", "--lake", str(real_lake)]) == 0
    lake = ParquetLake(LakeLayout(real_lake))
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
    assert len(record["reconciliations"]) == 4

    # A second run changes nothing.
    assert main(["batch", "--engine", "memory", "--lake", str(real_lake)]) == 0
    assert lake.read_table(tables.QUARANTINE_EVENTS) == quarantine
    assert lake.read_table(marts.DAILY_USAGE.table) == gold


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
DECLARED: tuple[Table, ...] = (*tables.LAKE_TABLES, *(mart.table for mart in marts.MARTS))
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


def canonical(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


LakeFactory = Callable[[Path], Lake]
LAKES: dict[str, LakeFactory] = {
    "parquet": lambda root: ParquetLake(LakeLayout(root)),
    "memory": lambda root: InMemoryLake(layout=LakeLayout(root)),
}


@pytest.fixture(params=sorted(LAKES))
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    return LAKES[request.param](tmp_path / "lake")


@pytest.mark.parametrize("table", DECLARED, ids=lambda t: t.id)
def test_the_arrow_schema_of_a_table_is_its_data_columns_in_order(table: Table):
    schema = arrow_schema(table)
    assert tuple(schema.names) == tuple(c.name for c in table.data_columns)
    assert table.partition_by is None or table.partition_by not in schema.names
    assert len(schema.names) == len(table.columns) - (table.partition_by is not None)
    assert all(field.nullable for field in schema)


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
def test_the_parquet_lake_writes_the_declared_schema_in_hive_folders(tmp_path: Path, table: Table):
    layout = LakeLayout(tmp_path)
    ParquetLake(layout).write_table(table, sample_rows(table))
    root = layout.table(table)
    files = sorted(root.rglob("*.parquet"))
    assert all(pq.read_schema(file).remove_metadata().equals(arrow_schema(table)) for file in files)
    if table.partition_by is None:
        assert [file.relative_to(root).as_posix() for file in files] == ["part-00000.parquet"]
    else:
        folders = sorted(file.parent.name for file in files)
        assert len(folders) == len(set(folders)) == 3  # one file per partition
        assert f"{table.partition_by}={NULL_PARTITION}" in folders
        assert all(folder.startswith(f"{table.partition_by}=") for folder in folders)


def test_a_partition_value_that_a_folder_name_cannot_hold_is_escaped(tmp_path: Path):
    table = tables.BRONZE_EVENTS
    layout = LakeLayout(tmp_path)
    ParquetLake(layout).write_table(table, [sample_row(table, 0, "a/b=c:50%")])
    assert [p.name for p in layout.table(table).iterdir()] == ["event_date=a%2Fb%3Dc%3A50%25"]
    assert ParquetLake(layout).read_table(table)[0]["event_date"] == "a/b=c:50%"


@pytest.mark.parametrize("table", [tables.SILVER_EVENTS, marts.DAILY_USAGE.table], ids=str)
def test_write_modes_on_a_partitioned_table(lake: Lake, table: Table):
    day_1, day_2 = PARTITIONS[LogicalType.DATE]
    first, second = sample_row(table, 0, day_1), sample_row(table, 0, day_2)
    replacement = sample_row(table, 1, day_2)
    lake.write_table(table, [first, second])
    assert lake.write_table(table, [replacement], WriteMode.OVERWRITE_PARTITIONS) == 1
    assert canonical(lake.read_table(table)) == canonical([first, replacement])
    assert lake.write_table(table, [first], WriteMode.APPEND) == 1
    assert canonical(lake.read_table(table)) == canonical([first, first, replacement])
    lake.write_table(table, [replacement], WriteMode.OVERWRITE)
    assert lake.read_table(table) == [replacement]
    lake.write_table(table, [], WriteMode.OVERWRITE)
    assert lake.read_table(table) == [] and not lake.has_table(table)


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


def test_has_parquet_counts_only_data_files(tmp_path: Path):
    table = tmp_path / "table"
    assert not has_parquet(table)
    for hidden in (".usage_date=2025-07-03.staging", "_temporary/0"):
        (table / hidden).mkdir(parents=True)
        pq.write_table(
            arrow_schema(tables.QUARANTINE_EVENTS).empty_table(), table / hidden / "p.parquet"
        )
    assert not has_parquet(table)
    (table / "usage_date=2025-07-03").mkdir()
    pq.write_table(
        arrow_schema(tables.QUARANTINE_EVENTS).empty_table(),
        table / "usage_date=2025-07-03" / "p.parquet",
    )
    assert has_parquet(table)


# ---- the engine reads any declared table back ----------------------------------------------


def engine_over(lake: Lake) -> MemoryEngine:
    return MemoryEngine(lambda _layout: lake)


def test_read_rows_gives_a_marts_rows_sorted_by_its_key(lake: Lake):
    table = marts.DAILY_USAGE.table
    day_1, day_2 = PARTITIONS[LogicalType.DATE]
    keys = [
        ("org_b", day_1, "storage"),
        ("org_a", day_2, "compute"),
        ("org_b", day_1, "compute"),
        ("org_a", day_1, "genai"),
    ]
    rows = [sample_row(table, 0) | dict(zip(table.primary_key, key, strict=True)) for key in keys]
    lake.write_table(table, rows)
    read = list(engine_over(lake).read_rows(lake.layout, table))
    assert [table.key_of(row) for row in read] == sorted(keys)
    assert canonical(read) == canonical(rows)


def test_read_rows_gives_any_other_table_in_stored_order(lake: Lake):
    table = tables.QUARANTINE_EVENTS
    rows = [sample_row(table, 0) | {"quarantine_key": key} for key in ("k3", "k1", "k2")]
    lake.write_table(table, rows)
    assert list(engine_over(lake).read_rows(lake.layout, table)) == lake.read_table(table) == rows


@pytest.mark.parametrize("table", [marts.DAILY_USAGE.table, tables.QUARANTINE_EVENTS], ids=str)
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
    ParquetLake(layout).write_table(table, rows)
    assert canonical(list(MemoryEngine(ParquetLake).read_rows(layout, table))) == canonical(rows)
