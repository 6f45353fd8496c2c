"""`finops landing --replace` with a landing that no longer holds one day: after the next batch
and load that day is gone from bronze, silver, gold and the SQLite serving store, everything
else is as it was, and the audit reconciles the lake with the new landing file by file.

The real dataset, the memory engine (no JVM), the `finops` CLI in this process.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import zipfile
from pathlib import Path

import pytest

from adapters.lake.delta import DeltaLake
from adapters.sqlite.serving import SqliteServingStore
from entrypoints.cli import main
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.serving import DAILY_USAGE_BY_ORG
from finops_core.tables import BRONZE_EVENTS, LANDING_FILES, SILVER_EVENTS

pytestmark = pytest.mark.slow

EVENTS_PREFIX = "datalake/landing/usage_events_stream/"


def _event_days(real_zip: Path) -> collections.Counter[str]:
    """Landing lines per event day (the timestamp's date), counted from the zip itself."""
    days: collections.Counter[str] = collections.Counter()
    with zipfile.ZipFile(real_zip) as archive:
        for info in archive.infolist():
            if info.filename.startswith(EVENTS_PREFIX) and info.filename.endswith(".jsonl"):
                for line in archive.read(info).splitlines():
                    days[str(json.loads(line)["timestamp"])[:10]] += 1
    return days


def _zip_without_day(real_zip: Path, target: Path, day: str) -> int:
    """A copy of the dataset zip whose events files lost every line of `day`; lines removed."""
    removed = 0
    with (
        zipfile.ZipFile(real_zip) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith(EVENTS_PREFIX) and info.filename.endswith(".jsonl"):
                lines = data.splitlines(keepends=True)
                kept = [line for line in lines if json.loads(line)["timestamp"][:10] != day]
                removed += len(lines) - len(kept)
                data = b"".join(kept)
            copy.writestr(info, data)
    return removed


def _finops(*argv: str) -> None:
    assert main(list(argv)) == 0, argv


def _cost(rows: list[dict[str, object]]) -> float:
    return math.fsum(float(row["daily_cost_usd"]) for row in rows)  # type: ignore[arg-type]


def test_a_day_removed_from_the_landing_leaves_bronze_silver_gold_and_serving(
    real_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    layout = LakeLayout(lake)
    tables = DeltaLake(layout)
    where = ("--lake", str(lake))
    days = _event_days(real_zip)
    day = sorted(days)[len(days) // 2]  # a day in the middle of the data
    removed_day = dt.date.fromisoformat(day)

    _finops("landing", "--zip", str(real_zip), *where)
    _finops("batch", "--engine", "memory", *where)
    _finops("load", "--engine", "memory", "--serving", "sqlite", *where)
    bronze = tables.read_table(BRONZE_EVENTS)
    silver = tables.read_table(SILVER_EVENTS)
    gold = tables.read_table(DAILY_USAGE.table)
    assert len(bronze) == sum(days.values())
    assert sum(1 for row in bronze if row["event_date"] == day) == days[day] > 0
    silver_day = [row for row in silver if row["usage_date"] == removed_day]
    gold_day = [row for row in gold if row["usage_date"] == removed_day]
    assert silver_day and gold_day

    smaller = tmp_path / "without_one_day.zip"
    assert _zip_without_day(real_zip, smaller, day) == days[day]
    _finops("landing", "--zip", str(smaller), "--replace", *where)
    landed = json.loads(sorted(layout.runs.glob("*-landing.json"))[-1].read_text())
    assert landed["finished"] is True and landed["stages"][0]["skipped"] is False
    _finops("batch", "--engine", "memory", *where)
    _finops("load", "--engine", "memory", "--serving", "sqlite", *where)

    bronze_after = tables.read_table(BRONZE_EVENTS)
    silver_after = tables.read_table(SILVER_EVENTS)
    gold_after = tables.read_table(DAILY_USAGE.table)
    assert not [row for row in bronze_after if row["event_date"] == day]
    assert len(bronze_after) == len(bronze) - days[day]
    assert not [row for row in silver_after if row["usage_date"] == removed_day]
    assert len(silver_after) == len(silver) - len(silver_day)
    assert not [row for row in gold_after if row["usage_date"] == removed_day]
    assert len(gold_after) == len(gold) - len(gold_day)
    assert _cost(gold_after) == pytest.approx(_cost(gold) - _cost(gold_day), abs=1e-6)
    others = sorted(DAILY_USAGE.table.key_of(row) for row in gold if row not in gold_day)
    assert sorted(DAILY_USAGE.table.key_of(row) for row in gold_after) == others

    ledger = tables.read_table(LANDING_FILES)
    assert sum(int(row["lines"]) for row in ledger) == sum(days.values()) - days[day]  # type: ignore[call-overload]
    with SqliteServingStore(layout.serving_sqlite, create_schema=False) as store:
        assert store.count(DAILY_USAGE_BY_ORG) == len(gold_after)
        assert removed_day not in store.index_values(DAILY_USAGE_BY_ORG, "usage_date")

    capsys.readouterr()
    assert main(["audit", *where]) == 0
    out = capsys.readouterr().out
    assert f"all {len(ledger)} landing events files reconcile" in out
    assert "every run finished" in out
