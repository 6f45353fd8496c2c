"""The embedded SQLite serving store end to end: `finops load`, then `finops query ... --json`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from adapters.lake.gold import read_gold_rows, write_gold_partitions
from adapters.sqlite.serving import SqliteServingStore
from entrypoints.cli import main
from finops_core import queries
from finops_core.lake import LakeLayout
from tests.test_serving_contract import GOLD, LATEST, ORGS


@pytest.fixture
def gold_lake(tmp_path: Path) -> LakeLayout:
    lake = LakeLayout(tmp_path / "lake")
    assert write_gold_partitions(lake, GOLD) == len(GOLD)
    return lake


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def gold_json(rows: list) -> list[dict]:
    return [
        {
            **row.as_dict(),
            "usage_date": row.usage_date.isoformat(),
            "quality_flags": dict(row.quality_flags),
        }
        for row in rows
    ]


def test_the_store_is_a_wal_mode_file_inside_the_lake(gold_lake: LakeLayout) -> None:
    with SqliteServingStore(gold_lake.serving_sqlite) as store:
        assert store.journal_mode == "wal"
        store.upsert(GOLD[:10])
    assert gold_lake.serving_sqlite.is_file()
    assert gold_lake.serving_sqlite.resolve().is_relative_to(gold_lake.root.resolve())
    with sqlite3.connect(gold_lake.serving_sqlite) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT COUNT(*) FROM daily_usage_by_org").fetchone()[0] == 10
        assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == 1


def test_reopening_the_store_keeps_its_rows_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "serving" / "finops.sqlite"
    with SqliteServingStore(path) as store:
        store.upsert(GOLD)
    with SqliteServingStore(path) as store:
        assert store.row_count() == len(GOLD)
        flagged = next(row for row in GOLD if row.quality_flags)
        assert flagged in store.org_day(flagged.org_id, flagged.usage_date)


def test_finops_load_reports_rows_and_rate_and_is_idempotent(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, out, err = run(["load", "--lake", str(gold_lake.root)], capsys)
        assert code == 0, err
        assert out.startswith(f"loaded {len(GOLD)} gold rows into sqlite in ")
        assert out.rstrip().endswith("rows/s)")
    with SqliteServingStore(gold_lake.serving_sqlite) as store:
        assert store.row_count() == len(GOLD)


def test_finops_query_json_answers_equal_the_reference_on_the_parquet_rows(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["load", "--lake", str(gold_lake.root), "--serving", "sqlite"], capsys)[0] == 0
    gold = list(read_gold_rows(gold_lake))
    assert len(gold) == len(GOLD)
    lake = ["--lake", str(gold_lake.root)]
    org = ORGS[1]
    first = min(row.usage_date for row in gold)

    code, out, _ = run(
        [
            "query",
            "q1",
            "--org",
            org,
            "--from",
            first.isoformat(),
            "--to",
            LATEST.isoformat(),
            "--json",
            *lake,
        ],
        capsys,
    )
    assert code == 0
    expected_q1 = gold_json(queries.daily_usage(gold, org, first, LATEST))
    assert json.loads(out) == expected_q1 and len(expected_q1) > 50

    code, out, _ = run(
        [
            "query",
            "q1",
            "--org",
            org,
            "--service",
            "compute",
            "--from",
            first.isoformat(),
            "--to",
            LATEST.isoformat(),
            "--json",
            *lake,
        ],
        capsys,
    )
    assert json.loads(out) == gold_json(queries.daily_usage(gold, org, first, LATEST, "compute"))

    code, out, _ = run(["query", "q2", "--org", org, "--json", *lake], capsys)
    expected_q2 = [
        {"service": c.service, "total_cost_usd": c.total_cost_usd}
        for c in queries.top_services(gold, org)
    ]
    assert json.loads(out) == expected_q2 and len(expected_q2) == 5

    as_of = LATEST - dt.timedelta(days=6)
    code, out, _ = run(
        [
            "query",
            "q2",
            "--org",
            org,
            "--days",
            "3",
            "--as-of",
            as_of.isoformat(),
            "--limit",
            "2",
            "--json",
            *lake,
        ],
        capsys,
    )
    assert json.loads(out) == [
        {"service": c.service, "total_cost_usd": c.total_cost_usd}
        for c in queries.top_services(gold, org, days=3, as_of=as_of, limit=2)
    ]

    code, out, _ = run(
        ["query", "q3", "--org", org, "--date", LATEST.isoformat(), "--json", *lake], capsys
    )
    expected_q3 = gold_json(queries.org_day(gold, org, LATEST))
    assert json.loads(out) == expected_q3 and len(expected_q3) >= 2


def test_finops_query_prints_an_aligned_table_by_default(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["load", "--lake", str(gold_lake.root)], capsys)
    code, out, _ = run(
        ["query", "q2", "--org", ORGS[0], "--limit", "3", "--lake", str(gold_lake.root)], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["service", "total_cost_usd"]
    assert len(lines) == 2 + 3
    # numbers are right-aligned: every line ends at the same column
    assert len({len(line) for line in lines}) == 1
    expected = queries.top_services(GOLD, ORGS[0], limit=3)
    assert [line.split()[0] for line in lines[2:]] == [c.service for c in expected]


def test_querying_before_loading_says_to_run_finops_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["query", "q3", "--org", ORGS[0], "--date", "2025-07-01", "--lake", str(tmp_path)], capsys
    )
    assert code == 5 and out == ""
    assert "run `finops load` first" in err
    assert not (tmp_path / "serving").exists()  # a query never creates the store


def test_loading_a_lake_without_gold_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["load", "--lake", str(tmp_path)], capsys)
    assert code == 3
    assert "has no gold rows" in err


def test_every_serving_command_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["load"], ["query"], ["query", "q1"], ["query", "q2"], ["query", "q3"]):
        with pytest.raises(SystemExit) as done:
            main([*argv, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert "example:\n  finops " + argv[0] in out
