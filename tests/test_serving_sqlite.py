"""The embedded SQLite serving store: its derived schema, then `finops load` and
`finops query ... --json` end to end."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.lake.delta import DeltaLake
from adapters.sqlite.serving import SCHEMA_VERSION, SqliteServingStore
from entrypoints.cli import main
from entrypoints.commands.query import QUESTIONS
from entrypoints.output import json_value
from finops_core import queries
from finops_core.errors import InvalidRow, ServingUnavailable
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.serving import (
    DAILY_USAGE_BY_ORG,
    GENAI_TOKENS_BY_ORG,
    REVENUE_BY_ORG,
    SERVING_TABLES,
    TICKETS_BY_ORG,
    served_rows,
)
from finops_core.tables import WriteMode
from tests.test_serving_contract import (
    FIRST_DAY,
    GOLD,
    LATEST,
    MART_ROWS,
    ORGS,
    SERVED,
    TICKETS_LATEST,
)

DAILY = DAILY_USAGE_BY_ORG
SERVED_ROWS = sum(len(rows) for rows in SERVED.values())  # what a load of `gold_lake` loads
# `finops load` reads gold through an engine: the pure-Python one keeps these tests free of a JVM.
MEMORY = ("--engine", "memory")
# The hand-written DDL of schema version 1 (before the DDL was derived from the declarations).
VERSION_1_DDL = (
    """CREATE TABLE daily_usage_by_org (
        org_id TEXT NOT NULL, usage_date TEXT NOT NULL, service TEXT NOT NULL,
        daily_cost_usd REAL NOT NULL, requests REAL NOT NULL, cpu_hours REAL NOT NULL,
        storage_gb_hours REAL NOT NULL, genai_tokens INTEGER, carbon_kg REAL,
        event_count INTEGER NOT NULL, cost_per_request_usd REAL,
        quality_flags TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (org_id, usage_date, service)
    ) WITHOUT ROWID""",
    "CREATE INDEX daily_usage_by_org_by_date ON daily_usage_by_org (usage_date)",
    "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    "INSERT INTO schema_version (component, version) VALUES ('serving', 1)",
)


@pytest.fixture
def gold_lake(tmp_path: Path) -> LakeLayout:
    """A lake whose gold holds every served mart (the contract suite's rows)."""
    lake = LakeLayout(tmp_path / "lake")
    for table, rows in MART_ROWS.items():
        assert DeltaLake(lake).write_table(table.source, rows, WriteMode.OVERWRITE) == len(rows)
    return lake


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def gold_json(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Gold rows as --json prints them: ISO dates, plain maps, floats to FLOAT_DIGITS digits."""
    return [
        {
            **{name: json_value(value) for name, value in row.items()},
            "usage_date": row["usage_date"].isoformat(),  # type: ignore[attr-defined]
            "quality_flags": dict(row["quality_flags"]),  # type: ignore[call-overload]
        }
        for row in rows
    ]


def _columns(connection: sqlite3.Connection, table: str) -> dict[str, tuple[str, bool, int]]:
    """name -> (declared type, NOT NULL, position in the primary key)."""
    return {
        name: (kind, bool(notnull), pk)
        for _, name, kind, notnull, _, pk in connection.execute(f"PRAGMA table_info({table})")
    }


def test_the_store_is_a_wal_mode_file_inside_the_lake(gold_lake: LakeLayout) -> None:
    with SqliteServingStore(gold_lake.serving_sqlite) as store:
        assert store.journal_mode == "wal"
        store.upsert(DAILY, GOLD[:10])
    assert gold_lake.serving_sqlite.is_file()
    assert gold_lake.serving_sqlite.resolve().is_relative_to(gold_lake.root.resolve())
    with sqlite3.connect(gold_lake.serving_sqlite) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT COUNT(*) FROM daily_usage_by_org").fetchone()[0] == 10
        assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == 4
    assert SCHEMA_VERSION == 4


def test_the_schema_is_derived_from_the_declared_columns_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "finops.sqlite"
    SqliteServingStore(path).close()
    with sqlite3.connect(path) as connection:
        columns = _columns(connection, DAILY.name)
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (DAILY.name,),
        ).fetchall()
        table_sql = connection.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (DAILY.name,)
        ).fetchone()[0]
    assert list(columns) == list(DAILY_USAGE.table.column_names)
    assert columns["org_id"] == ("TEXT", True, 1)
    assert columns["usage_date"] == ("TEXT", True, 2)
    assert columns["service"] == ("TEXT", True, 3)
    assert columns["daily_cost_usd"] == ("REAL", True, 0)
    assert columns["requests"] == ("REAL", True, 0)
    assert columns["genai_tokens"] == ("INTEGER", False, 0)
    assert columns["carbon_kg"] == ("REAL", False, 0)
    assert columns["event_count"] == ("INTEGER", True, 0)
    assert columns["cost_per_request_usd"] == ("REAL", False, 0)
    assert columns["quality_flags"] == ("TEXT", True, 0)
    assert table_sql.rstrip().endswith("WITHOUT ROWID")
    # The usage_dates index (Q2's latest date without a scan); `orgs` is the key's own order.
    assert indexes == [
        (
            "daily_usage_by_org_usage_dates",
            "CREATE INDEX daily_usage_by_org_usage_dates ON daily_usage_by_org (usage_date DESC)",
        )
    ]


def test_the_new_marts_tables_are_keyed_as_declared_with_the_ticket_dates_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "finops.sqlite"
    SqliteServingStore(path).close()
    with sqlite3.connect(path) as connection:
        revenue = _columns(connection, REVENUE_BY_ORG.name)
        tickets = _columns(connection, TICKETS_BY_ORG.name)
        genai = _columns(connection, GENAI_TOKENS_BY_ORG.name)
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "ORDER BY name"
        ).fetchall()
    connection.close()
    for table, columns in (
        (REVENUE_BY_ORG, revenue),
        (TICKETS_BY_ORG, tickets),
        (GENAI_TOKENS_BY_ORG, genai),
    ):
        assert list(columns) == list(table.columns)
        keyed = {name: position for name, (_, _, position) in columns.items() if position}
        assert keyed == {name: n for n, name in enumerate(table.primary_key, start=1)}
    assert revenue["month"] == ("TEXT", True, 2)  # a DATE: ISO text
    assert revenue["credit_note"] == ("INTEGER", False, 0)  # a BOOLEAN: 0/1
    assert revenue["net_revenue_usd"] == ("REAL", False, 0)
    assert revenue["invoice_count"] == ("INTEGER", True, 0)
    assert tickets["severity"] == ("TEXT", True, 3)
    assert genai["total_tokens"] == ("INTEGER", True, 0)
    # The org indexes are the primary key's own order: only the ticket dates get a SQL index.
    assert indexes == [
        (
            "daily_usage_by_org_usage_dates",
            "CREATE INDEX daily_usage_by_org_usage_dates ON daily_usage_by_org (usage_date DESC)",
        ),
        (
            "tickets_by_org_ticket_dates",
            "CREATE INDEX tickets_by_org_ticket_dates ON tickets_by_org (ticket_date DESC)",
        ),
    ]


def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "finops.sqlite"
    with sqlite3.connect(path) as connection:
        for statement in VERSION_1_DDL:
            connection.execute(statement)
    connection.close()
    with SqliteServingStore(path) as store:
        store.upsert(DAILY, GOLD)
    with SqliteServingStore(path) as store:
        assert store.count(DAILY) == len(GOLD)
        assert queries.latest_usage_date(store) == LATEST
    with sqlite3.connect(path) as connection:
        names = [
            n
            for (n,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        ]
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
    connection.close()
    assert sorted(names) == ["daily_usage_by_org_usage_dates", "tickets_by_org_ticket_dates"]
    assert version == SCHEMA_VERSION


def test_a_query_of_a_new_mart_on_a_file_of_an_older_version_says_to_run_finops_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = LakeLayout(tmp_path / "lake")
    with SqliteServingStore(lake.serving_sqlite, tables=(DAILY,)) as store:  # version 2's table
        store.upsert(DAILY, GOLD)
    code, out, err = run(["query", "revenue", "--lake", str(lake.root)], capsys)
    assert code == 5 and out == ""
    assert "run `finops load` first" in err


def test_reopening_the_store_keeps_its_rows_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "serving" / "finops.sqlite"
    with SqliteServingStore(path) as store:
        store.upsert(DAILY, GOLD)
    with SqliteServingStore(path, create_schema=False) as store:
        assert store.count(DAILY) == len(GOLD)
        flagged = next(row for row in GOLD if row["quality_flags"])
        day = flagged["usage_date"]
        assert isinstance(day, dt.date)
        assert flagged in queries.org_day(store, str(flagged["org_id"]), day)


def test_opening_a_missing_store_without_creating_it_says_to_run_finops_load(
    tmp_path: Path,
) -> None:
    path = tmp_path / "serving" / "finops.sqlite"
    with pytest.raises(ServingUnavailable) as missing:
        SqliteServingStore(path, create_schema=False)
    assert str(missing.value) == (
        f"There is no SQLite serving store at {path}; run `finops load` first."
    )
    assert not (tmp_path / "serving").exists()


def test_a_file_without_the_serving_tables_says_to_run_finops_load(tmp_path: Path) -> None:
    path = tmp_path / "finops.sqlite"
    sqlite3.connect(path).close()
    with (
        SqliteServingStore(path, create_schema=False) as store,
        pytest.raises(ServingUnavailable, match="run `finops load` first"),
    ):
        store.count(DAILY)


def test_finops_load_reports_rows_and_rate_and_is_idempotent(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, out, err = run(["load", "--lake", str(gold_lake.root), *MEMORY], capsys)
        assert code == 0, err
        assert out.startswith(f"loaded {SERVED_ROWS} gold rows into sqlite in ")
        assert out.rstrip().endswith("rows/s)")
    with SqliteServingStore(gold_lake.serving_sqlite) as store:
        for table, rows in SERVED.items():  # every served mart, each row once
            assert store.count(table) == len(rows)
            reference = queries.RowsReader(rows, table)
            for partition in {tuple(row[name] for name in table.partition_key) for row in rows}:
                assert store.read_slice(table, partition) == reference.read_slice(table, partition)


def test_finops_query_json_answers_equal_the_reference_on_the_delta_rows(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(["load", "--lake", str(gold_lake.root), "--serving", "sqlite", *MEMORY], capsys)[0] == 0
    )
    gold = DeltaLake(gold_lake).read_table(DAILY_USAGE.table)
    assert len(gold) == len(GOLD)
    reference = queries.RowsReader(gold)
    lake = ["--lake", str(gold_lake.root)]
    org = ORGS[1]
    first = min(day for row in gold if isinstance(day := row["usage_date"], dt.date))

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
    expected_q1 = gold_json(queries.daily_usage(reference, org, first, LATEST))
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
    assert json.loads(out) == gold_json(
        queries.daily_usage(reference, org, first, LATEST, "compute")
    )

    code, out, _ = run(["query", "q2", "--org", org, "--json", *lake], capsys)
    expected_q2 = [
        {"service": c.service, "total_cost_usd": json_value(c.total_cost_usd)}
        for c in queries.top_services(reference, org)
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
        {"service": c.service, "total_cost_usd": json_value(c.total_cost_usd)}
        for c in queries.top_services(reference, org, days=3, as_of=as_of, limit=2)
    ]

    code, out, _ = run(
        ["query", "day", "--org", org, "--date", LATEST.isoformat(), "--json", *lake], capsys
    )
    expected_day = gold_json(queries.org_day(reference, org, LATEST))
    assert json.loads(out) == expected_day and len(expected_day) >= 2


def iso(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows as --json prints them: dates as ISO text, floats to FLOAT_DIGITS digits."""
    return [{k: json_value(v) for k, v in row.items()} for row in rows]


def test_finops_query_answers_q3_q4_q5_and_anomalies_by_name_keyed_by_the_marts_columns(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["load", "--lake", str(gold_lake.root), *MEMORY], capsys)[0] == 0
    delta = DeltaLake(gold_lake)
    reference = queries.RowsReader(
        tables={t: list(served_rows(t, delta.read_table(t.source))) for t in SERVED}
    )
    lake = ["--lake", str(gold_lake.root)]
    org = ORGS[0]
    as_of = TICKETS_LATEST - dt.timedelta(days=3)
    first, last = LATEST - dt.timedelta(days=9), LATEST - dt.timedelta(days=2)
    cases = [
        (("tickets", "q3"), ["--org", org], queries.tickets(reference, org)),
        (
            ("tickets", "q3"),
            ["--org", org, "--as-of", as_of.isoformat(), "--days", "7"],
            queries.tickets(reference, org, as_of, 7),
        ),
        (("revenue", "q4"), ["--org", org], queries.revenue(reference, org)),
        (("revenue", "q4"), [], queries.revenue(reference)),
        (("genai", "q5"), ["--org", org], queries.genai(reference, org)),
        (
            ("genai", "q5"),
            ["--org", org, "--from", first.isoformat(), "--to", last.isoformat()],
            queries.genai(reference, org, first, last),
        ),
        (("anomalies",), [], queries.anomalies(reference)),
        (
            ("anomalies",),
            ["--org", org, "--from", first.isoformat(), "--to", last.isoformat()],
            queries.anomalies(reference, first, last, org),
        ),
        (("anomalies",), ["--limit", "3"], queries.anomalies(reference, limit=3)),
    ]
    for names, arguments, expected in cases:
        assert expected
        for name in names:
            code, out, err = run(["query", name, *arguments, "--json", *lake], capsys)
            assert code == 0, err
            assert json.loads(out) == iso(expected)
    code, out, _ = run(["query", "revenue", "--json", *lake], capsys)
    assert {tuple(row) for row in json.loads(out)} == {queries.REVENUE_COLUMNS}
    code, out, _ = run(["query", "q3", "--org", org, *lake], capsys)
    assert out.splitlines()[0].split() == list(queries.TICKETS_COLUMNS)
    code, out, _ = run(["query", "anomalies", "--limit", "1", *lake], capsys)
    top = queries.anomalies(reference, limit=1)[0]
    assert out.splitlines()[0].split() == list(queries.ANOMALY_COLUMNS)
    assert out.splitlines()[2].split()[-1] == ",".join(top["flagged_methods"])  # type: ignore[arg-type]


@pytest.mark.parametrize("org", ["org_doesnotexist", ""])
def test_asking_of_an_org_the_store_does_not_hold_says_so_and_what_it_holds(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str], org: str
) -> None:
    lake = ["--lake", str(gold_lake.root)]
    assert run(["load", *lake, *MEMORY], capsys)[0] == 0
    held = sorted({str(row["org_id"]) for rows in SERVED.values() for row in rows})
    assert len(held) == 5  # ORGS and the org with revenue only
    for argv in (["q2"], ["tickets"], ["revenue"], ["anomalies"]):
        code, out, err = run(["query", *argv, "--org", org, *lake], capsys)
        assert code == 2 and out == ""
        assert f"The org {org!r} is not in the serving store (it holds 5 orgs, usage from " in err
        assert f"{FIRST_DAY} to {LATEST}: {', '.join(held[:3])}, ...)" in err
    (revenue_only,) = set(held) - {str(row["org_id"]) for row in GOLD}
    code, out, _ = run(["query", "revenue", "--org", revenue_only, "--json", *lake], capsys)
    assert code == 0 and json.loads(out)  # an org with revenue and no usage is known
    code, out, _ = run(["query", "q2", "--org", revenue_only, *lake], capsys)
    assert code == 0 and out.strip() == "(no rows)"  # known, without usage


def test_q3_with_the_old_date_option_names_the_day_question(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["query", "q3", "--org", ORGS[0], "--date", "2025-07-01", "--lake", str(gold_lake.root)],
        capsys,
    )
    assert code == 2 and out == ""
    assert "q3 is now `tickets`" in err
    assert f"`finops query day --org {ORGS[0]} --date 2025-07-01`" in err


def test_finops_query_prints_an_aligned_table_by_default(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["load", "--lake", str(gold_lake.root), *MEMORY], capsys)
    code, out, _ = run(
        ["query", "q2", "--org", ORGS[0], "--limit", "3", "--lake", str(gold_lake.root)], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["service", "total_cost_usd"]
    assert len(lines) == 2 + 3
    # numbers are right-aligned: every line ends at the same column
    assert len({len(line) for line in lines}) == 1
    expected = queries.top_services(queries.RowsReader(GOLD), ORGS[0], limit=3)
    assert [line.split()[0] for line in lines[2:]] == [c.service for c in expected]


@pytest.mark.parametrize(
    "argv",
    [
        ["day", "--org", ORGS[0], "--date", "2025-07-01"],
        ["tickets", "--org", ORGS[0]],
        ["revenue"],
        ["genai", "--org", ORGS[0]],
        ["anomalies"],
    ],
    ids=lambda argv: argv[0],
)
def test_querying_before_loading_says_to_run_finops_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(["query", *argv, "--lake", str(tmp_path)], capsys)
    assert code == 5 and out == ""
    assert "run `finops load` first" in err
    assert not (tmp_path / "serving").exists()  # a query never creates the store


def test_loading_a_lake_without_gold_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["load", "--lake", str(tmp_path), *MEMORY], capsys)
    assert code == 3
    assert "has no gold rows" in err


def test_loading_a_lake_whose_gold_lacks_some_marts_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lake batched by an older version holds the daily mart only."""
    lake = LakeLayout(tmp_path / "lake")
    DeltaLake(lake).write_table(DAILY.source, GOLD, WriteMode.OVERWRITE)
    code, out, err = run(["load", "--lake", str(lake.root), *MEMORY], capsys)
    assert code == 3 and out == ""
    missing = [t.source.name for t in SERVING_TABLES if t is not DAILY]
    assert len(missing) == 4
    assert f"has no gold table {', '.join(missing)} (a batch of an older version" in err
    assert "run `finops batch` again" in err
    assert not lake.serving_sqlite.exists()  # nothing loaded, no store created


def test_every_serving_command_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    names = [name for q in QUESTIONS for name in (q.name, q.alias) if name]
    assert names == [
        "daily-usage",
        "q1",
        "top-services",
        "q2",
        "tickets",
        "q3",
        "revenue",
        "q4",
        "genai",
        "q5",
        "anomalies",
        "day",
    ]
    for argv in (["load"], ["query"], *(["query", name] for name in names)):
        with pytest.raises(SystemExit) as done:
            main([*argv, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert "example:\n  finops " + argv[0] in out


def test_each_questions_help_teaches_its_arguments_and_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def help_of(*argv: str) -> str:
        with pytest.raises(SystemExit):
            main(["query", *argv, "--help"])
        return " ".join(capsys.readouterr().out.split())

    listing = help_of()
    for question in QUESTIONS:
        assert question.summary in listing
    tickets = help_of("q3")
    assert "finops query tickets" in tickets and help_of("tickets") == tickets
    assert "--days DAYS window length (default 30)" in tickets
    assert "latest ticket date loaded, of any org" in tickets
    assert "--date" not in tickets  # the old option is caught, never taught
    assert "--org ORG organisation id (default: every org)" in help_of("revenue")
    assert "(default: the first day loaded)" in help_of("genai")
    assert "--date DATE the usage date" in help_of("day")


def test_a_reader_sees_the_previous_rows_until_a_load_commits_then_only_the_new_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "finops.sqlite"
    kept = [row for row in GOLD if row["usage_date"] != LATEST]
    seen_midway: list[tuple[int, object]] = []
    with SqliteServingStore(path) as store:
        store.upsert(DAILY, GOLD)
        reader = SqliteServingStore(path, create_schema=False)

        def rows_with_a_read_midway() -> Iterator[dict[str, object]]:
            for position, row in enumerate(kept):
                if position == len(kept) // 2:  # half the new rows are written, not committed
                    seen_midway.append((reader.count(DAILY), queries.latest_usage_date(reader)))
                yield row

        assert store.replace(DAILY, rows_with_a_read_midway()) == len(kept)
        assert seen_midway == [(len(GOLD), LATEST)]  # the previous state, whole
        assert reader.count(DAILY) == len(kept)
        assert queries.latest_usage_date(reader) == LATEST - dt.timedelta(days=1)
        reader.close()


def test_a_load_that_fails_midway_leaves_the_previous_rows(tmp_path: Path) -> None:
    path = tmp_path / "finops.sqlite"

    def rows_then_a_failure() -> Iterator[dict[str, object]]:
        yield from GOLD[: len(GOLD) // 2]
        raise OSError("the lake went away")

    with SqliteServingStore(path) as store:
        store.upsert(DAILY, GOLD)
        with pytest.raises(OSError, match="went away"):
            store.replace(DAILY, rows_then_a_failure())
        assert store.count(DAILY) == len(GOLD)
        for org in ORGS:
            assert store.read_slice(DAILY, (org,)) == queries.RowsReader(GOLD).read_slice(
                DAILY, (org,)
            )


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("daily_cost_usd", float("nan"), "nan"), ("requests", float("inf"), "inf")],
)
def test_finops_load_refuses_a_non_finite_number_naming_the_row_and_keeps_the_served_rows(
    gold_lake: LakeLayout,
    capsys: pytest.CaptureFixture[str],
    column: str,
    value: float,
    shown: str,
) -> None:
    lake = ["--lake", str(gold_lake.root)]
    assert run(["load", *lake, *MEMORY], capsys)[0] == 0
    bad = dict(GOLD[7], **{column: value})
    broken = [*GOLD[:7], bad, *GOLD[8:]]
    DeltaLake(gold_lake).write_table(DAILY_USAGE.table, broken, WriteMode.OVERWRITE)
    code, out, err = run(["load", *lake, *MEMORY], capsys)
    assert code == 9 and out == ""
    key = ", ".join(f"{name}={bad[name]}" for name in DAILY.primary_key)
    assert f"holds {shown} in {column} at ({key}), which daily_usage_by_org cannot serve" in err
    assert "Traceback" not in err and "IntegrityError" not in err
    with SqliteServingStore(gold_lake.serving_sqlite, create_schema=False) as store:
        assert store.count(DAILY) == len(GOLD)  # the previous load's rows, whole
        assert store.read_slice(DAILY, (str(bad["org_id"]),)) == queries.RowsReader(
            GOLD
        ).read_slice(DAILY, (str(bad["org_id"]),))


def test_a_null_in_a_required_column_is_refused_before_any_store_sees_the_row() -> None:
    rows = [dict(GOLD[0]), dict(GOLD[1], event_count=None)]
    checked = served_rows(DAILY, rows)
    assert next(checked) == GOLD[0]
    with pytest.raises(InvalidRow, match="holds a null in event_count at"):
        next(checked)
    nullable = dict(GOLD[2], carbon_kg=None)  # a nullable column may be null
    assert list(served_rows(DAILY, [nullable])) == [nullable]


def test_finops_load_drops_the_rows_a_new_gold_no_longer_has(
    gold_lake: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = ["--lake", str(gold_lake.root)]
    assert run(["load", *lake, *MEMORY], capsys)[0] == 0
    kept = [row for row in GOLD if row["usage_date"] != LATEST]
    DeltaLake(gold_lake).write_table(DAILY_USAGE.table, kept, WriteMode.OVERWRITE)
    tickets = [row for row in SERVED[TICKETS_BY_ORG] if row["ticket_date"] != TICKETS_LATEST]
    DeltaLake(gold_lake).write_table(TICKETS_BY_ORG.source, tickets, WriteMode.OVERWRITE)
    loaded = SERVED_ROWS - (len(GOLD) - len(kept)) - (len(SERVED[TICKETS_BY_ORG]) - len(tickets))
    code, out, _ = run(["load", *lake, *MEMORY], capsys)
    assert code == 0 and f"loaded {loaded} gold rows into sqlite" in out
    with SqliteServingStore(gold_lake.serving_sqlite, create_schema=False) as store:
        assert store.count(DAILY) == len(kept)
        assert LATEST not in store.index_values(DAILY, "usage_date")
        assert store.count(TICKETS_BY_ORG) == len(tickets)
        assert queries.latest_ticket_date(store) == max(
            day for row in tickets if isinstance(day := row["ticket_date"], dt.date)
        )
        assert queries.latest_ticket_date(store) != TICKETS_LATEST
        assert sum(store.count(table) for table in SERVING_TABLES) == loaded
    record = json.loads(sorted(gold_lake.runs.glob("*-load.json"))[-1].read_text())
    assert record["finished"] is True
    assert record["stages"][0]["counts"] == {"rows_upserted": loaded, "serving_rows": loaded}
