"""JSON Lines as exporters write them: a UTF-8 BOM first, CRLF line ends, blank or
whitespace-only lines. Every event reaches silver, nothing is quarantined, and every line is
accounted for: landing lines = bronze rows + malformed + blank lines, per file and per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.lake.delta import DeltaLake
from entrypoints.cli import main
from finops_core import runs, tables
from finops_core.events import UTF8_BOM, is_blank, split_lines
from finops_core.lake import LakeLayout
from tests.strategies import BLANK_LINES, jsonl_file, landing_event, master_csvs, write_landing


def event(number: int) -> bytes:
    return json.dumps(landing_event(event_id=f"evt_f{number:011d}")).encode()


def _events_file(name: str) -> str:
    return f"usage_events_stream/{name}"


# name -> (content, lines, blank lines, events)
FILES: dict[str, tuple[bytes, int, int, int]] = {
    "bom.jsonl": (jsonl_file([event(1), event(2), event(3)], bom=True, ending=b"\n"), 3, 0, 3),
    "crlf.jsonl": (jsonl_file([event(4), event(5), event(6)], bom=False, ending=b"\r\n"), 3, 0, 3),
    "blanks.jsonl": (
        jsonl_file(
            [event(7), b"", b"  ", event(8), b"\t", b" \r", event(9)], bom=False, ending=b"\n"
        ),
        7,
        4,
        3,
    ),
    "only_blanks.jsonl": (b"\n  \n\t\r\n", 3, 3, 0),
    "only_a_bom.jsonl": (UTF8_BOM, 0, 0, 0),
    "bom_crlf_blank.jsonl": (jsonl_file([event(10), b""], bom=True, ending=b"\r\n"), 2, 1, 1),
}
EVENT_LINES = [event(number) for number in range(1, 11)]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake built by `finops batch --engine memory` over the files above."""
    root = tmp_path_factory.mktemp("line_forms") / "lake"
    landing = {**master_csvs(), **{_events_file(n): f[0] for n, f in FILES.items()}}
    write_landing(landing, root / "landing")
    assert main(["batch", "--engine", "memory", "--lake", str(root)]) == 0
    return root


def _table(lake: Path, table: tables.Table) -> list[dict[str, Any]]:
    return DeltaLake(LakeLayout(lake)).read_table(table)


def _record(lake: Path) -> runs.RunRecord:
    (path,) = sorted(LakeLayout(lake).runs.glob("*-batch.json"))
    return runs.RunRecord.from_json(json.loads(path.read_text()))


def test_the_files_split_into_the_lines_each_is_declared_to_have() -> None:
    for name, (content, lines, blank, events) in FILES.items():
        split = split_lines(content)
        got = (len(split), sum(map(is_blank, split)), len(split) - blank)
        assert got == (lines, blank, events), name


def test_every_event_of_a_bom_crlf_or_blank_lined_file_reaches_silver_and_none_is_quarantined(
    lake: Path,
) -> None:
    silver = _table(lake, tables.SILVER_EVENTS)
    assert sorted(row["event_id"] for row in silver) == [f"evt_f{n:011d}" for n in range(1, 11)]
    assert _table(lake, tables.QUARANTINE_EVENTS) == []
    # Bronze keeps each line as the exporter meant it: no BOM, no "\r".
    assert sorted(row["raw"] for row in _table(lake, tables.BRONZE_EVENTS)) == sorted(
        line.decode() for line in EVENT_LINES
    )


def test_the_run_counts_blank_lines_apart_and_every_reconciliation_passes(lake: Path) -> None:
    record = _record(lake)
    counts = record.counts
    assert {
        name: counts[f"bronze_events.{name}"]
        for name in ("files", "landing_lines", "bronze_rows", "malformed", "blank_lines")
    } == {"files": 6, "landing_lines": 18, "bronze_rows": 10, "malformed": 0, "blank_lines": 8}
    assert (counts["silver.silver_rows"], counts["silver.quarantined"]) == (10, 0)
    assert counts["silver.duplicates"] == 0
    checks = {check.name: check for check in record.reconciliations}
    landing = checks["landing lines = bronze rows + malformed + blank lines"]
    assert (landing.left, landing.right, landing.passed) == (18, 18, True)
    assert all(check.passed for check in record.reconciliations)


def test_the_ledger_counts_each_files_blank_lines(lake: Path) -> None:
    ledger = {row["source_file"]: row for row in _table(lake, tables.LANDING_FILES)}
    got = {
        name: (row["lines"], row["blank"], row["bronze_rows"], row["malformed"], row["duplicates"])
        for name, row in ledger.items()
    }
    assert got == {
        name: (lines, blank, events, 0, 0) for name, (_, lines, blank, events) in FILES.items()
    }


def test_the_audit_reconciles_every_landing_file_with_its_blank_lines(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "landing_lines=18" in out and "blank_lines=8" in out and "malformed=0" in out
    assert f"all {len(FILES)} landing events files reconcile" in out
    assert "FAIL" not in out


def test_a_bom_inside_a_file_and_a_form_feed_line_stay_malformed_records() -> None:
    content = event(1) + b"\n" + UTF8_BOM + event(2) + b"\n\x0c\n"
    lines = split_lines(UTF8_BOM + content)
    assert lines == [event(1), UTF8_BOM + event(2), b"\x0c"]
    assert not any(map(is_blank, lines))


def test_every_blank_line_the_strategies_draw_is_blank_in_either_line_ending() -> None:
    for line in BLANK_LINES:
        for ending in (b"\n", b"\r\n"):
            (split,) = split_lines(line + ending)
            assert is_blank(split), (line, ending)


def test_a_record_from_before_blank_lines_were_counted_still_reconciles_its_landing() -> None:
    counts = {
        "bronze_events.landing_lines": 8.0,
        "bronze_events.bronze_rows": 7.0,
        "bronze_events.malformed": 1.0,
    }
    (check,) = [c for c in runs.reconcile(counts) if c.name.startswith("landing lines")]
    assert (check.left, check.right, check.passed) == (8, 8, True)
    streamed = {"stream.landing_lines": 5.0, "stream.bronze_rows": 3.0, "stream.malformed": 0.0}
    streamed |= {"stream.duplicates": 1.0, "stream.blank_lines": 1.0}
    (stream,) = [c for c in runs.reconcile(streamed) if c.name.startswith("streamed lines")]
    assert (stream.left, stream.right, stream.passed) == (5, 5, True)
