"""`SqliteServingStore`: the embedded default serving store, one SQLite file inside the lake.

Dates are ISO text (their text order is their date order), quality flags are JSON text, floats are
REAL (8-byte IEEE, so every value round-trips exactly). Q2 groups in SQL with an `fsum` aggregate
registered on the connection: `math.fsum`, the same exact sum `finops_core.queries` uses, so totals
and the order of ties are identical to the reference (SQLite's own SUM rounds at every step).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

from finops_core import queries
from finops_core.aggregate import GOLD_COLUMNS, GoldRow
from finops_core.errors import ServingUnavailable
from finops_core.ports import ServiceCost

TABLE = "daily_usage_by_org"
SCHEMA_VERSION = 1
_CHUNK = 10_000

_DDL = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        org_id TEXT NOT NULL,
        usage_date TEXT NOT NULL,
        service TEXT NOT NULL,
        daily_cost_usd REAL NOT NULL,
        requests REAL NOT NULL,
        cpu_hours REAL NOT NULL,
        storage_gb_hours REAL NOT NULL,
        genai_tokens INTEGER,
        carbon_kg REAL,
        event_count INTEGER NOT NULL,
        cost_per_request_usd REAL,
        quality_flags TEXT NOT NULL DEFAULT '{{}}',
        PRIMARY KEY (org_id, usage_date, service)
    ) WITHOUT ROWID
    """,
    # The global latest date (Q2's default as_of) without a scan of the whole table.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_by_date ON {TABLE} (usage_date)",
    "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    f"INSERT OR REPLACE INTO schema_version (component, version) VALUES ('serving', {SCHEMA_VERSION})",
)

_COLUMNS = ", ".join(GOLD_COLUMNS)
_UPSERT = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({', '.join('?' for _ in GOLD_COLUMNS)}) "
    "ON CONFLICT (org_id, usage_date, service) DO UPDATE SET "
    + ", ".join(
        f"{name} = excluded.{name}"
        for name in GOLD_COLUMNS
        if name not in ("org_id", "usage_date", "service")
    )
)


class _FSum:
    """SQL aggregate `fsum(x)`: an exactly rounded float sum (math.fsum)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float:
        return math.fsum(self.values)


def _params(row: GoldRow) -> tuple[object, ...]:
    return (
        row.org_id,
        row.usage_date.isoformat(),
        row.service,
        row.daily_cost_usd,
        row.requests,
        row.cpu_hours,
        row.storage_gb_hours,
        row.genai_tokens,
        row.carbon_kg,
        row.event_count,
        row.cost_per_request_usd,
        json.dumps(dict(sorted(row.quality_flags.items()))),
    )


def _row(record: tuple[Any, ...]) -> GoldRow:
    (
        org_id,
        usage_date,
        service,
        cost,
        requests,
        cpu,
        storage,
        tokens,
        carbon,
        events,
        cpr,
        flags,
    ) = record
    return GoldRow(
        org_id=str(org_id),
        usage_date=dt.date.fromisoformat(str(usage_date)),
        service=str(service),
        daily_cost_usd=float(cost),
        requests=float(requests),
        cpu_hours=float(cpu),
        storage_gb_hours=float(storage),
        genai_tokens=None if tokens is None else int(tokens),
        carbon_kg=None if carbon is None else float(carbon),
        event_count=int(events),
        cost_per_request_usd=None if cpr is None else float(cpr),
        quality_flags=dict(sorted(json.loads(str(flags)).items())),
    )


def _chunks(rows: Iterable[GoldRow], size: int) -> Iterator[list[GoldRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SqliteServingStore:
    """The ServingStore over one SQLite file (WAL mode); the schema is created if missing."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path)
            self._connection.create_aggregate("fsum", 1, _FSum)  # type: ignore[arg-type]
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = NORMAL")
            with self._connection:
                for statement in _DDL:
                    self._connection.execute(statement)
        except (OSError, sqlite3.Error) as error:
            raise ServingUnavailable(
                f"Cannot open the SQLite serving store at {self.path} ({error}); check that the "
                "lake folder is writable."
            ) from error

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> SqliteServingStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def journal_mode(self) -> str:
        return str(self._connection.execute("PRAGMA journal_mode").fetchone()[0])

    # -- ServingStore ------------------------------------------------------------------------

    def upsert(self, rows: Iterable[GoldRow]) -> int:
        count = 0
        for chunk in _chunks(rows, _CHUNK):
            with self._connection:  # one transaction per chunk
                self._connection.executemany(_UPSERT, [_params(row) for row in chunk])
            count += len(chunk)
        return count

    def daily_usage(
        self, org_id: str, start: dt.date, end: dt.date, service: str | None = None
    ) -> list[GoldRow]:
        sql = f"SELECT {_COLUMNS} FROM {TABLE} WHERE org_id = ? AND usage_date BETWEEN ? AND ?"
        params: list[object] = [org_id, start.isoformat(), end.isoformat()]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        sql += " ORDER BY usage_date, service"
        return [_row(record) for record in self._connection.execute(sql, params)]

    def top_services(
        self,
        org_id: str,
        days: int = queries.DEFAULT_DAYS,
        as_of: dt.date | None = None,
        limit: int = queries.DEFAULT_LIMIT,
    ) -> list[ServiceCost]:
        if as_of is None:
            as_of = self.latest_usage_date()
            if as_of is None:
                return []
        start, end = queries.window(as_of, days)
        cursor = self._connection.execute(
            f"SELECT service, fsum(daily_cost_usd) AS total FROM {TABLE} "
            "WHERE org_id = ? AND usage_date BETWEEN ? AND ? "
            "GROUP BY service ORDER BY total DESC, service ASC LIMIT ?",
            (org_id, start.isoformat(), end.isoformat(), limit),
        )
        return [ServiceCost(str(service), float(total)) for service, total in cursor]

    def org_day(self, org_id: str, usage_date: dt.date) -> list[GoldRow]:
        return self.daily_usage(org_id, usage_date, usage_date)

    def latest_usage_date(self, org_id: str | None = None) -> dt.date | None:
        if org_id is None:
            cursor = self._connection.execute(f"SELECT MAX(usage_date) FROM {TABLE}")
        else:
            cursor = self._connection.execute(
                f"SELECT MAX(usage_date) FROM {TABLE} WHERE org_id = ?", (org_id,)
            )
        latest = cursor.fetchone()[0]
        return None if latest is None else dt.date.fromisoformat(latest)

    def row_count(self) -> int:
        return int(self._connection.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])
