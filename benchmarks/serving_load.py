"""Serving benchmark: loading gold into a local Cassandra node, and Q1/Q2 latency.

Loads a synthetic gold set (random rows of the daily mart) with the prepared, concurrent loader of
CassandraServingStore and, in the same run, a smaller set with a naive loop of unprepared
synchronous `session.execute` inserts; then times Q1 and Q2 (`finops_core.queries` over each
store's slices, p50/p99) against Cassandra and against SQLite holding the same rows.

    .venv/bin/python benchmarks/serving_load.py [--rows 200000] [--naive-rows 3000]

The node is started with scripts/cassandra-node (and stopped again if this run started it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.cassandra.schema import apply_schema  # noqa: E402
from adapters.cassandra.serving import CassandraServingStore  # noqa: E402
from adapters.cassandra.session import close_session, connect  # noqa: E402
from adapters.cassandra.settings import CassandraSettings  # noqa: E402
from adapters.sqlite.serving import SqliteServingStore  # noqa: E402
from finops_core import queries  # noqa: E402
from finops_core.serving import DAILY_USAGE_BY_ORG  # noqa: E402

NODE_SCRIPT = REPO / "scripts" / "cassandra-node"
SERVICES = ("compute", "storage", "network", "genai", "database")
FIRST_DAY = dt.date(2025, 1, 1)
KEYSPACE = "bench_serving"
DAILY = DAILY_USAGE_BY_ORG


def synthetic_gold(
    rows: int, days: int, seed: int, org_prefix: str = "org"
) -> list[dict[str, object]]:
    """`rows` distinct gold keys: orgs x days x services, random metric values."""
    rng = random.Random(seed)
    orgs = max(1, rows // (days * len(SERVICES)) + 1)
    out: list[dict[str, object]] = []
    for org in range(orgs):
        for day in range(days):
            for service in SERVICES:
                if len(out) == rows:
                    return out
                requests = 0.0 if rng.random() < 0.1 else float(rng.randint(1, 10_000))
                cost = rng.uniform(0, 500)
                row: dict[str, object] = {
                    "org_id": f"{org_prefix}_{org:06d}",
                    "usage_date": FIRST_DAY + dt.timedelta(days=day),
                    "service": service,
                    "daily_cost_usd": cost,
                    "requests": requests,
                    "cpu_hours": rng.uniform(0, 100),
                    "storage_gb_hours": rng.uniform(0, 1e5),
                    "genai_tokens": rng.randint(0, 10**9) if service == "genai" else None,
                    "carbon_kg": None if rng.random() < 0.2 else rng.uniform(0, 5),
                    "event_count": rng.randint(1, 500),
                    "cost_per_request_usd": cost / requests if requests else None,
                    "quality_flags": {"unit_imputed": 1} if rng.random() < 0.05 else {},
                }
                out.append({name: row[name] for name in DAILY.columns})
    return out


def start_node(directory: Path) -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, str(NODE_SCRIPT), "start", "--dir", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"cassandra-node start failed:\n{result.stderr}")
    host, _, port = result.stdout.strip().splitlines()[-1].rpartition(":")
    return host, int(port)


def percentiles_ms(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def time_queries(store: str, name: str, count: int, query: Callable[[int], object]) -> None:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        query(i)
        samples.append(time.perf_counter() - started)
    p50, p99 = percentiles_ms(samples)
    print(
        f"store={store} {name}_p50_ms={p50:.3f} {name}_p99_ms={p99:.3f} queries={count}", flush=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--naive-rows", type=int, default=3_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--batch-rows", type=int, default=20, help="rows per single-partition batch"
    )
    parser.add_argument("--dir", type=Path, default=REPO / ".cassandra-node" / "bench")
    args = parser.parse_args()

    running = (
        subprocess.run(
            [sys.executable, str(NODE_SCRIPT), "status", "--dir", str(args.dir)],
            capture_output=True,
            text=True,
            check=False,
        ).returncode
        == 0
    )
    host, port = start_node(args.dir)
    print(f"node={host}:{port} started_here={not running}", flush=True)
    print(f"load_average_1m_start={os.getloadavg()[0]:.1f} cpus={os.cpu_count()}", flush=True)
    rows = synthetic_gold(args.rows, args.days, seed=1)
    naive_rows = synthetic_gold(args.naive_rows, args.days, seed=2, org_prefix="naive")
    settings = CassandraSettings(contact_points=((host, port),), keyspace=KEYSPACE)
    session = connect(settings)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
        apply_schema(session, KEYSPACE)
        store = CassandraServingStore(
            session,
            KEYSPACE,
            settings=settings,
            concurrency=args.concurrency,
            batch_rows=args.batch_rows,
        )

        started = time.perf_counter()
        loaded = store.upsert(DAILY, rows)
        fast_s = time.perf_counter() - started
        fast_rate = loaded / fast_s
        print(
            f"loader=prepared_concurrent batch_rows={args.batch_rows} rows={loaded} "
            f"seconds={fast_s:.2f} rows_per_s={fast_rate:.0f}",
            flush=True,
        )

        insert = (
            f"INSERT INTO {KEYSPACE}.{DAILY.name} ({', '.join(DAILY.columns)}) "
            f"VALUES ({', '.join('%s' for _ in DAILY.columns)})"
        )
        started = time.perf_counter()
        for row in naive_rows:
            session.execute(insert, [row[c] for c in DAILY.columns])
        naive_s = time.perf_counter() - started
        naive_rate = len(naive_rows) / naive_s
        print(
            f"loader=naive_unprepared_sync rows={len(naive_rows)} "
            f"seconds={naive_s:.2f} rows_per_s={naive_rate:.0f}",
            flush=True,
        )
        print(f"ratio_vs_naive={fast_rate / naive_rate:.1f}", flush=True)

        rng = random.Random(3)
        orgs = sorted({str(row["org_id"]) for row in rows})
        picks = [(rng.choice(orgs), rng.randrange(args.days - 14)) for _ in range(args.queries)]

        def q1(store_: queries.SliceReader) -> Callable[[int], object]:
            def run(i: int) -> object:
                org, offset = picks[i]
                start = FIRST_DAY + dt.timedelta(days=offset)
                return queries.daily_usage(store_, str(org), start, start + dt.timedelta(days=13))

            return run

        def q2(store_: queries.SliceReader) -> Callable[[int], object]:
            return lambda i: queries.top_services(store_, str(picks[i][0]), days=14)

        q1(store)(0), q2(store)(0)  # prepare the statements outside the timings
        time_queries("cassandra", "q1", args.queries, q1(store))
        time_queries("cassandra", "q2", args.queries, q2(store))

        with tempfile.TemporaryDirectory() as tmp:
            sqlite = SqliteServingStore(Path(tmp) / "finops.sqlite")
            started = time.perf_counter()
            sqlite.upsert(DAILY, rows)
            sqlite_s = time.perf_counter() - started
            print(
                f"loader=sqlite rows={len(rows)} seconds={sqlite_s:.2f} "
                f"rows_per_s={len(rows) / sqlite_s:.0f}",
                flush=True,
            )
            q1(sqlite)(0)
            time_queries("sqlite", "q1", args.queries, q1(sqlite))
            time_queries("sqlite", "q2", args.queries, q2(sqlite))
            sqlite.close()
        print(f"load_average_1m_end={os.getloadavg()[0]:.1f} cpus={os.cpu_count()}", flush=True)
    finally:
        close_session(session)
        if not running:
            subprocess.run(
                [sys.executable, str(NODE_SCRIPT), "stop", "--dir", str(args.dir)], check=False
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
