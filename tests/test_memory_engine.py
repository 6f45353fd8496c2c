"""The memory engine end to end on the real dataset, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.lake.parquet import ParquetLake
from entrypoints.cli import main
from finops_core.lake import GOLD_DAILY, QUARANTINE_EVENTS, SILVER_EVENTS, LakeLayout


@pytest.mark.slow
def test_memory_batch_on_the_real_dataset_accounts_for_every_landing_event(real_lake: Path, capsys):
    assert main(["batch", "--engine", "memory", "--lake", str(real_lake)]) == 0
    lake = ParquetLake(LakeLayout(real_lake))
    landing_lines = sum(
        len(path.read_bytes().splitlines())
        for path in (real_lake / "landing" / "usage_events_stream").glob("*.jsonl")
    )
    silver = lake.read_table("silver", SILVER_EVENTS)
    quarantine = lake.read_table("quarantine", QUARANTINE_EVENTS)
    gold = lake.read_table("gold", GOLD_DAILY)
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
    assert lake.read_table("quarantine", QUARANTINE_EVENTS) == quarantine
    assert lake.read_table("gold", GOLD_DAILY) == gold


def test_batch_without_a_landing_zone_says_what_to_run_first(tmp_path: Path, capsys):
    assert main(["batch", "--engine", "memory", "--lake", str(tmp_path / "nowhere")]) == 3
    assert "run `finops landing`" in capsys.readouterr().err


def test_finops_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("batch", "landing"):
        assert command in out
