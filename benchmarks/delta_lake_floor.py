"""The floor of a transactional lake (issue 12): the plain-Spark reference job, writing the
lake's tables as Delta tables instead of one parquet folder.

    .venv/bin/python benchmarks/delta_lake_floor.py LANDING_DIR OUT_DIR

What `finops batch` commits on a fresh lake, with no logic of ours: each of the seven CSV
masters read (header, all strings) and written twice as a Delta table (its bronze and its silver
table); the events read with the reference's explicit schema and written to bronze; a ledger of
the landing file names; silver events (duplicate `event_id`s dropped, cost >= -0.01 kept), the
quarantine (the rest) and the reference's gold (partitioned by `usage_date`), each one Delta
commit: 19 tables, as a `finops batch` lake has. No quality rules, no run records, no lake lock,
no quarantine reasons, no cache: every write reads its sources again, as a naive script would.

It tells what part of `finops batch`'s time is the price of Delta commits and the lake's table
count, which no optimisation of our own code removes. The Spark settings are the reference's
(`local[*]`, 4 shuffle partitions, UTC) plus the Delta extension, catalog and jars. Prints the
gold row count and total cost in the reference's words, and the seconds of each phase.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from plain_spark_reference import (
    MIN_COST_USD,
    SHUFFLE_PARTITIONS,
    event_schema,
    gold_of,
    gold_totals,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MASTERS = (
    "customers_orgs",
    "users",
    "resources",
    "billing_monthly",
    "support_tickets",
    "marketing_touches",
    "nps_surveys",
)


def _write(frame: DataFrame, folder: Path, partition: str | None = None) -> None:
    writer = frame.write.format("delta").mode("overwrite")
    if partition is not None:
        writer = writer.partitionBy(partition)
    writer.save(str(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("landing", type=Path, metavar="LANDING_DIR")
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from adapters.spark.session import DELTA_CATALOG, DELTA_EXTENSION, delta_jars

    jars = ",".join(str(jar) for jar in delta_jars())

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("delta-lake-floor")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .getOrCreate()
    )
    phases = {"session": time.perf_counter() - started}
    out = args.out
    try:
        started = time.perf_counter()
        for name in MASTERS:
            master = spark.read.option("header", "true").csv(str(args.landing / f"{name}.csv"))
            _write(master, out / "bronze" / name)
            _write(master.dropDuplicates([master.columns[0]]), out / "silver" / name)
        phases["masters (14 tables)"] = time.perf_counter() - started

        started = time.perf_counter()
        files = sorted((args.landing / "usage_events_stream").glob("*.jsonl"))
        events = (
            spark.read.schema(event_schema())
            .json([str(path) for path in files])
            .withColumn("source_file", F.input_file_name())
        )
        _write(events, out / "bronze" / "usage_events")
        ledger = spark.createDataFrame([(path.name,) for path in files], "file_name string")
        _write(ledger, out / "bronze" / "landing_files")
        phases["bronze events + ledger"] = time.perf_counter() - started

        started = time.perf_counter()
        unique = events.dropDuplicates(["event_id"])
        kept = F.col("cost_usd_increment") >= MIN_COST_USD
        silver = unique.where(kept)
        _write(silver, out / "silver" / "usage_events")
        _write(unique.where(~kept), out / "quarantine" / "usage_events")
        phases["silver + quarantine"] = time.perf_counter() - started

        started = time.perf_counter()
        _write(gold_of(silver), out / "gold" / "org_daily_usage_by_service", "usage_date")
        phases["gold"] = time.perf_counter() - started
        totals = gold_totals(
            spark.read.format("delta").load(str(out / "gold" / "org_daily_usage_by_service"))
        )
    finally:
        spark.stop()
    assert totals is not None
    shown = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items())
    print(
        f"Delta lake floor: gold rows {totals['rows']}, total cost {totals['cost']:.2f} USD "
        f"({shown})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
