"""Master CSVs as other exporters write them (RFC 4180): a UTF-8 BOM, CRLF line ends, blank
lines, quoted fields with commas, doubled quotes and line breaks, read into the same records and
the same bronze rows as the plain file (the Spark reader is held to it by the differential)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.lake.delta import DeltaLake
from entrypoints.cli import main
from finops_core.contracts import MASTER_SOURCES
from finops_core.lake import LakeLayout
from finops_core.masters import csv_records
from finops_core.tables import BRONZE_MASTERS
from tests.strategies import QUIRKY_CSV, QUOTED_NAME, fixed_master_rows, master_files, write_landing


@pytest.mark.parametrize(
    ("content", "records"),
    [
        (b"a,b\n1,2\n", [["a", "b"], ["1", "2"]]),
        (b"\xef\xbb\xbfa,b\n1,2\n", [["a", "b"], ["1", "2"]]),  # BOM: not part of the header
        (b"a,b\r\n1,2\r\n", [["a", "b"], ["1", "2"]]),
        (b"a,b\n1,2\n\n", [["a", "b"], ["1", "2"]]),  # a blank last line is no record
        (b"a,b\n\n1,2\n\r\n3,4", [["a", "b"], ["1", "2"], ["3", "4"]]),
        (b'a,b\n"x, ""y""\nz",2\n', [["a", "b"], ['x, "y"\nz', "2"]]),
        (b"a,b\n1,\n", [["a", "b"], ["1", ""]]),
        (b"", []),
        (b"\xef\xbb\xbf", []),
    ],
)
def test_csv_records_read_rfc_4180_forms(content: bytes, records: list[list[str]]) -> None:
    assert csv_records(content) == records


def _bronze_masters(lake: Path, quirky: bool, capsys: pytest.CaptureFixture[str]) -> Any:
    landing = {
        **master_files(fixed_master_rows(), quirky=quirky),
        "usage_events_stream/events_part_0000.jsonl": b"",
    }
    write_landing(landing, lake / "landing")
    assert main(["batch", "--engine", "memory", "--lake", str(lake)]) == 0, capsys.readouterr()
    delta = DeltaLake(LakeLayout(lake))
    return {
        contract.name: [
            {k: v for k, v in row.items() if k != "ingest_ts"}
            for row in delta.read_table(BRONZE_MASTERS[contract.name])
        ]
        for contract in MASTER_SOURCES
    }


def test_quirky_master_files_give_the_bronze_rows_of_plain_ones_but_the_quoted_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = _bronze_masters(tmp_path / "plain", False, capsys)
    quirky = _bronze_masters(tmp_path / "quirky", True, capsys)
    files = master_files(fixed_master_rows(), quirky=True)
    assert any(content.startswith(b"\xef\xbb\xbf") for content in files.values())
    assert any(b"\r\n" in content for content in files.values())
    assert set(QUIRKY_CSV) < {contract.name for contract in MASTER_SOURCES}
    for name, rows in plain.items():
        assert len(quirky[name]) == len(rows) > 0, name
        if name != "customers_orgs":
            assert quirky[name] == rows, name
    renamed = [row for row in quirky["customers_orgs"] if row not in plain["customers_orgs"]]
    assert [row["org_name"] for row in renamed] == [QUOTED_NAME]
