"""The crash matrix: `finops batch` (both engines), `finops stream` and `finops load` SIGKILLed at
distinct moments of their writes and commits, seen from outside.

After each kill a reader (the `deltalake` package, SQLite) sees a complete previous state: every
table either has no committed version yet or holds exactly the rows of an uninterrupted run; the
audit names the killed run as unfinished. Each next run is the plain rerun of the killed one, and
the matrix is chained: the rerun after kill N must get past every earlier kill point to reach
kill N+1, and the last rerun completes with the reference figures. A second series kills
`--backfill` runs over a complete lake: there the reader must see the complete lake all along.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from finops_core.events import split_lines
from tests.crash_support import (
    KillPoint,
    Outcome,
    column_sum,
    column_values,
    finops,
    lake_tables,
    run_until,
    table_rows,
)

pytestmark = pytest.mark.slow

GOLD = "gold/org_daily_usage_by_service"
BRONZE = "bronze/usage_events"
LEDGER = "bronze/landing_files"
SILVER = "silver/usage_events"
QUARANTINE = "quarantine/usage_events"

# The reference figures for the real dataset (also what an uninterrupted run gives).
REFERENCE_GOLD_ROWS = 11_050
REFERENCE_GOLD_COST = 148_351.58
REFERENCE_QUARANTINED = 211

BATCH_POINTS = (
    KillPoint("bronze/customers_orgs", "writing"),
    KillPoint("bronze/customers_orgs", "committed"),
    KillPoint(BRONZE, "writing"),
    KillPoint(BRONZE, "committed"),
    KillPoint(LEDGER, "committed"),
    KillPoint(SILVER, "writing"),
    KillPoint(SILVER, "committed"),
    KillPoint(QUARANTINE, "committed"),
    KillPoint(GOLD, "writing"),
    KillPoint(GOLD, "committed"),
)
BACKFILL_POINTS = (
    KillPoint(BRONZE, "writing"),
    KillPoint(SILVER, "writing"),
    KillPoint(GOLD, "writing"),
)
# A Spark run costs 10-60 s here (a JVM each time): eight of the points, one backfill kill.
SPARK_BATCH_POINTS = tuple(
    p
    for p in BATCH_POINTS
    if p.name not in (f"{SILVER} committed", "bronze/customers_orgs committed")
)
SPARK_BACKFILL_POINTS = (KillPoint(SILVER, "writing"),)


@pytest.fixture(scope="module")
def reference_lake(real_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real dataset after one uninterrupted `finops batch --engine memory` (read-only: tests
    that write copy it)."""
    lake = tmp_path_factory.mktemp("reference") / "lake"
    shutil.copytree(real_landing, lake / "landing")
    done = finops("batch", "--engine", "memory", "--lake", str(lake))
    assert done.returncode == 0, done.stdout + done.stderr
    return lake


@pytest.fixture(scope="module")
def reference(reference_lake: Path) -> dict[str, int | None]:
    """Rows of every table after one uninterrupted memory-engine batch of the real dataset."""
    lake = reference_lake
    rows = {table: table_rows(lake, table) for table in lake_tables(lake)}
    assert rows[GOLD] == REFERENCE_GOLD_ROWS
    assert round(column_sum(lake, GOLD, "daily_cost_usd"), 2) == REFERENCE_GOLD_COST
    assert rows[QUARANTINE] == REFERENCE_QUARANTINED
    return rows


def _newest_record(lake: Path) -> dict[str, object]:
    records = [json.loads(path.read_text()) for path in (lake / "_runs").glob("*.json")]
    return max(records, key=lambda record: str(record["run_id"]))


def _assert_complete_or_absent(lake: Path, reference: dict[str, int | None], when: str) -> None:
    """Every table holds no committed version or exactly the reference rows."""
    for table, expected in reference.items():
        seen = table_rows(lake, table)
        assert seen in (None, expected), f"after {when}: {table} has {seen} rows, not {expected}"
    if table_rows(lake, GOLD) is not None:
        assert round(column_sum(lake, GOLD, "daily_cost_usd"), 2) == REFERENCE_GOLD_COST, when
    if table_rows(lake, QUARANTINE) is not None:
        keys = column_values(lake, QUARANTINE, "quarantine_key")
        assert len(keys) == len(set(keys)), f"after {when}: a quarantine row is repeated"


def _assert_killed_run_flagged(lake: Path, outcome: Outcome) -> None:
    record = _newest_record(lake)
    assert record["finished"] is False, f"{outcome.point.name}: the killed run's record"
    audit = finops("audit", "--lake", str(lake), "--engine", "memory")
    assert audit.returncode != 0, f"{outcome.point.name}: audit passed after a kill"
    assert str(record["run_id"]) in audit.stdout + audit.stderr


def _kill_chain(
    argv: list[str], lake: Path, points: tuple[KillPoint, ...], reference: dict[str, int | None]
) -> list[Outcome]:
    outcomes = []
    for point in points:
        outcome = run_until(argv, lake, point)
        assert outcome.killed, f"{point.name} never happened:\n{outcome.output}"
        outcomes.append(outcome)
        _assert_complete_or_absent(lake, reference, f"kill at {point.name}")
        _assert_killed_run_flagged(lake, outcome)
    return outcomes


def _assert_reference_lake(lake: Path, reference: dict[str, int | None]) -> None:
    assert {table: table_rows(lake, table) for table in reference} == reference
    assert round(column_sum(lake, GOLD, "daily_cost_usd"), 2) == REFERENCE_GOLD_COST
    audit = finops("audit", "--lake", str(lake), "--engine", "memory")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def _batch_matrix(
    engine: str,
    lake: Path,
    reference: dict[str, int | None],
    points: tuple[KillPoint, ...] = BATCH_POINTS,
    backfill_points: tuple[KillPoint, ...] = BACKFILL_POINTS,
) -> None:
    argv = ["batch", "--engine", engine, "--lake", str(lake)]
    outcomes = _kill_chain(argv, lake, points, reference)
    rerun = finops(*argv)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_reference_lake(lake, reference)
    # Over a complete lake, a killed forced backfill leaves the complete lake visible.
    for point in backfill_points:
        outcome = run_until([*argv, "--backfill"], lake, point)
        assert outcome.killed, f"{point.name} never happened:\n{outcome.output}"
        outcomes.append(outcome)
        assert {table: table_rows(lake, table) for table in reference} == reference, point.name
        _assert_killed_run_flagged(lake, outcome)
    rerun = finops(*argv)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_reference_lake(lake, reference)
    print("\n".join(f"{o.point.name}: killed after {o.seconds:.2f} s" for o in outcomes))


def test_a_memory_batch_killed_at_any_write_or_commit_leaves_a_complete_lake_and_reruns_to_the_reference(  # noqa: E501
    real_lake: Path, reference: dict[str, int | None]
) -> None:
    _batch_matrix("memory", real_lake, reference)


@pytest.mark.spark
def test_a_spark_batch_killed_at_any_write_or_commit_leaves_a_complete_lake_and_reruns_to_the_reference(  # noqa: E501
    real_lake: Path, reference: dict[str, int | None]
) -> None:
    _batch_matrix("spark", real_lake, reference, SPARK_BATCH_POINTS, SPARK_BACKFILL_POINTS)


# ---- stream -------------------------------------------------------------------------------------

STREAM_CHECKPOINT = "checkpoints/bronze_usage_events"
STREAM_POINTS = (
    KillPoint(BRONZE, "writing"),
    KillPoint(BRONZE, "committed"),
    KillPoint(LEDGER, "committed"),
    KillPoint(STREAM_CHECKPOINT, "file:commits/*"),
    KillPoint(STREAM_CHECKPOINT, "file:offsets/*"),
    KillPoint(BRONZE, "writing"),
    KillPoint(BRONZE, "committed"),
    KillPoint(LEDGER, "committed"),
)


def _lines_per_file(landing: Path) -> dict[str, int]:
    return {
        path.name: len(split_lines(path.read_bytes()))
        for path in sorted((landing / "usage_events_stream").glob("*.jsonl"))
    }


def _assert_whole_files(lake: Path, expected: dict[str, int], when: str) -> None:
    """Bronze holds every line of a file or none of it (the real files hold no bad line)."""
    if table_rows(lake, BRONZE) is None:
        return
    seen: dict[str, int] = {}
    for name in column_values(lake, BRONZE, "source_file"):
        seen[str(name)] = seen.get(str(name), 0) + 1
    torn = {name: rows for name, rows in seen.items() if rows != expected[name]}
    assert not torn, f"after {when}: files half in bronze: {torn}"


@pytest.mark.spark
def test_a_stream_killed_at_any_write_or_commit_resumes_exactly_once(
    real_lake: Path, reference: dict[str, int | None]
) -> None:
    argv = ["stream", "--once", "--max-files", "20", "--lake", str(real_lake)]
    expected = _lines_per_file(real_lake / "landing")
    for point in STREAM_POINTS:
        outcome = run_until(argv, real_lake, point)
        assert outcome.killed, f"{point.name} never happened:\n{outcome.output}"
        _assert_whole_files(real_lake, expected, f"kill at {point.name}")
        _assert_killed_run_flagged(real_lake, outcome)
    rerun = finops(*argv)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert table_rows(real_lake, BRONZE) == sum(expected.values())
    _assert_whole_files(real_lake, expected, "the rerun")
    assert table_rows(real_lake, LEDGER) == len(expected)
    batch = finops("batch", "--engine", "memory", "--lake", str(real_lake))
    assert batch.returncode == 0, batch.stdout + batch.stderr
    assert "bronze_events: skipped" in batch.stdout + batch.stderr
    _assert_reference_lake(real_lake, {**reference, BRONZE: sum(expected.values())})


# ---- load ---------------------------------------------------------------------------------------


class StoreWatcher:
    """Counts the served rows (and the write-ahead log's size) every few milliseconds while a
    load runs, as a reader would. An absent store or table counts as 0 rows."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.wal = database.with_name(database.name + "-wal")
        self.seen: set[int] = set()
        self.largest_wal = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StoreWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.seen.add(self.count())
            if self.wal.exists():
                self.largest_wal = max(self.largest_wal, self.wal.stat().st_size)
            time.sleep(0.002)

    def count(self) -> int:
        if not self.database.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
                return int(db.execute("SELECT count(*) FROM daily_usage_by_org").fetchone()[0])
        except sqlite3.OperationalError as error:  # the store has no table yet
            if "no such table" in str(error):
                return 0
            raise


@pytest.fixture
def built_lake(reference_lake: Path, tmp_path: Path) -> Path:
    """A copy of the reference lake: the real dataset after an uninterrupted memory batch."""
    lake = tmp_path / "built"
    shutil.copytree(reference_lake, lake)
    return lake


def _forget_store(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def test_a_load_killed_at_any_moment_of_its_write_leaves_a_complete_store_and_readers_never_see_half(  # noqa: E501
    built_lake: Path,
) -> None:
    database = built_lake / "serving" / "finops.sqlite"
    argv = ["load", "--engine", "memory", "--serving", "sqlite", "--lake", str(built_lake)]
    # One uninterrupted load: from its unfinished record to its final one is the window the kill
    # moments are spread over (SQLite keeps most pages in memory until the commit).
    record = "_runs/*load*.json"
    before = set(built_lake.glob(record))
    done = finops(*argv)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = set(built_lake.glob(record)) - before
    window = float(json.loads(path.read_text())["stages"][0]["seconds"])
    full = StoreWatcher(database).count()
    assert full == REFERENCE_GOLD_ROWS
    _forget_store(database)
    fractions = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0)
    points = [KillPoint(record, f"since:{window * f:.4f}") for f in fractions]
    flagged = 0
    for index, point in enumerate(points):
        if index == len(points) // 2:  # the second half kills loads over a complete store
            rerun = finops(*argv)
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        previous = StoreWatcher(database).count()
        with StoreWatcher(database) as watcher:
            outcome = run_until(argv, built_lake, point)
        after = StoreWatcher(database).count()
        # The previous complete state, or the new one if the kill came after the commit.
        assert after in (previous, full), f"kill at {point.name}: {after} rows served"
        assert watcher.seen <= {previous, full}, f"during the load at {point.name}: {watcher.seen}"
        if not outcome.killed:
            continue
        if _newest_record(built_lake)["finished"] is True:
            # The kill came after the run recorded its end (the process was on its way out): that
            # is a finished load, so the store must hold all of it.
            assert after == full, f"kill at {point.name} after the finish: {after} rows served"
            continue
        flagged += 1
        _assert_killed_run_flagged(built_lake, outcome)
    assert flagged >= 6, f"only {flagged} of {len(points)} loads were killed before they ended"
    rerun = finops(*argv)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert StoreWatcher(database).count() == full
