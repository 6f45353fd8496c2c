"""SparkEngine: the batch layer on Spark, giving the memory engine's tables and counts.

Each stage reads and writes the parquet lake (`finops_core.lake.LakeLayout`), with the layout and
schemas of `adapters.lake` so either engine can read what the other wrote. The meaning comes from
the core: contracts (schemas), the catalogue (rules compiled by `rules_compiler`), the reference
policy of `pipeline.reference_data` and the gold monoid of `aggregate`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.lake.gold import read_gold_rows
from adapters.spark import batch
from adapters.spark.session import SessionSettings, SparkSessions, prepare
from finops_core.aggregate import GoldRow
from finops_core.contracts import MASTER_SOURCES, USAGE_EVENTS, SourceContract, check_header
from finops_core.errors import DatasetMissing
from finops_core.lake import BRONZE_EVENTS, LakeLayout
from finops_core.ports import RunContext, StageResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkEngine:
    name = "spark"

    def __init__(
        self,
        master: str | None = None,
        verbose: bool = False,
        spark: SparkSession | None = None,
        shuffle_partitions: int = 4,
    ) -> None:
        self._borrowed = spark
        self._sessions = SparkSessions(
            SessionSettings(master=master, verbose=verbose, shuffle_partitions=shuffle_partitions)
        )

    # ---- session -----------------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        if self._borrowed is not None:
            prepare(self._borrowed)
            return self._borrowed
        return self._sessions.get()

    def close(self) -> None:
        """Stop the session if this engine started it (a borrowed one keeps running)."""
        self._sessions.close()

    # ---- bronze ------------------------------------------------------------------------------

    def bronze_masters(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        short_rows = {
            contract.name: _check_master_file(lake, contract) for contract in MASTER_SOURCES
        }
        counts: dict[str, float] = {}
        spark = self.spark
        for contract in MASTER_SOURCES:
            counts[f"{contract.name}_rows"] = batch.write_bronze_master(spark, lake, contract, run)
            counts[f"{contract.name}_short_rows"] = short_rows[contract.name]
        return StageResult("bronze_masters", counts, time.perf_counter() - started)

    def has_bronze_events(self, lake: LakeLayout) -> bool:
        path = lake.bronze(BRONZE_EVENTS)
        return path.exists() and any(path.rglob("*.parquet"))

    def bronze_events(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        files = sorted(str(p) for p in lake.landing.glob(USAGE_EVENTS.file_pattern) if p.is_file())
        counts = batch.backfill_bronze_events(self.spark, lake, [Path(f) for f in files], run)
        return StageResult("bronze_events", counts, time.perf_counter() - started)

    # ---- silver and gold -----------------------------------------------------------------------

    def silver(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        counts = batch.silver_events(self.spark, lake, run)
        spark = self.spark
        for contract in MASTER_SOURCES:
            batch.write_silver_master(spark, lake, contract)
        return StageResult("silver", counts, time.perf_counter() - started)

    def gold(self, lake: LakeLayout, run: RunContext) -> StageResult:
        started = time.perf_counter()
        counts = batch.gold_daily(self.spark, lake)
        return StageResult("gold", counts, time.perf_counter() - started)

    def read_gold(self, lake: LakeLayout) -> Iterator[GoldRow]:
        return read_gold_rows(lake)


def _check_master_file(lake: LakeLayout, contract: SourceContract) -> int:
    """Check the header against the contract (before anything is written); count short rows.

    The header and row shapes are read on the driver with Python's csv module (the files are
    small), exactly as the memory engine reads them; Spark reads the data itself.
    """
    path = lake.landing / contract.file_pattern
    if not path.is_file():
        raise DatasetMissing(
            f"{contract.file_pattern} is missing from {lake.landing}: land the dataset again"
        )
    text = path.read_bytes().decode("utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(text, newline="")))
    check_header(contract, contract.file_pattern, records[0] if records else [])
    return sum(1 for fields in records[1:] if len(fields) < len(contract.columns))
