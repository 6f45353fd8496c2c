"""Gold `org_daily_usage_by_service` as parquet, partitioned by usage_date (pyarrow)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from finops_core.aggregate import GOLD_COLUMNS, GoldRow
from finops_core.lake import GOLD_DAILY, SILVER_PARTITION, LakeLayout

GOLD_SCHEMA = pa.schema(
    [
        ("org_id", pa.string()),
        ("service", pa.string()),
        ("daily_cost_usd", pa.float64()),
        ("requests", pa.float64()),
        ("cpu_hours", pa.float64()),
        ("storage_gb_hours", pa.float64()),
        ("genai_tokens", pa.int64()),
        ("carbon_kg", pa.float64()),
        ("event_count", pa.int64()),
        ("cost_per_request_usd", pa.float64()),
        ("quality_flags", pa.map_(pa.string(), pa.int64())),
    ]
)


def gold_path(lake: LakeLayout) -> Path:
    return lake.gold(GOLD_DAILY)


def write_gold_partitions(lake: LakeLayout, rows: Iterable[GoldRow]) -> int:
    """Replace each usage_date partition present in `rows` (dynamic partition overwrite)."""
    by_date: dict[dt.date, list[GoldRow]] = {}
    for row in rows:
        by_date.setdefault(row.usage_date, []).append(row)
    root = gold_path(lake)
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    for usage_date, day_rows in sorted(by_date.items()):
        table = pa.Table.from_pylist(
            [
                {
                    name: (
                        list(row.quality_flags.items())
                        if name == "quality_flags"
                        else getattr(row, name)
                    )
                    for name in GOLD_SCHEMA.names
                }
                for row in sorted(day_rows, key=lambda r: r.key)
            ],
            schema=GOLD_SCHEMA,
        )
        _replace_partition(root / f"{SILVER_PARTITION}={usage_date.isoformat()}", table)
        written += table.num_rows
    return written


def _replace_partition(directory: Path, table: pa.Table) -> None:
    staging = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(table, staging / "part-00000.parquet")
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)


def read_gold_rows(lake: LakeLayout) -> Iterator[GoldRow]:
    """Every gold row in the lake, whichever engine wrote it, sorted by key within a partition."""
    root = gold_path(lake)
    if not root.exists():
        return
    for partition in sorted(p for p in root.iterdir() if p.name.startswith(f"{SILVER_PARTITION}=")):
        usage_date = dt.date.fromisoformat(partition.name.split("=", 1)[1])
        dataset = ds.dataset(str(partition), format="parquet", exclude_invalid_files=True)
        table = dataset.to_table(columns=[n for n in GOLD_SCHEMA.names])
        for record in sorted(table.to_pylist(), key=lambda r: (r["org_id"], r["service"])):
            values = {name: record[name] for name in GOLD_COLUMNS if name != SILVER_PARTITION}
            flags = values.pop("quality_flags") or []
            yield GoldRow(
                usage_date=usage_date,
                quality_flags=dict(sorted(flags.items() if isinstance(flags, dict) else flags)),
                **values,  # type: ignore[arg-type]
            )
