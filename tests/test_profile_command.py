"""`finops profile` over a small landing: its counts, and a warning for a source of no row."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import main
from tests.strategies import master_csvs, write_landing


def _profile(lake: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["profile", "--lake", str(lake)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_master_with_a_header_only_is_named_in_a_warning_and_the_others_are_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = master_csvs()
    touches = next(name for name in landing if name.startswith("marketing_touches"))
    landing[touches] = landing[touches].splitlines(keepends=True)[0]  # the header only
    landing["usage_events_stream/events_part_0000.jsonl"] = b""
    write_landing(landing, tmp_path / "lake" / "landing")
    code, out, err = _profile(tmp_path / "lake", capsys)
    assert code == 0
    assert ["marketing_touches", "0"] in [line.split() for line in out.splitlines()]
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: marketing_touches has no row in the landing (a header only, or no file): "
        "what is built from it will be empty",
        "warning: usage_events has no row in the landing (a header only, or no file): "
        "what is built from it will be empty",
    ]


def test_a_landing_whose_sources_all_have_rows_gives_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = {**master_csvs(), "usage_events_stream/events_part_0000.jsonl": b'{"a": 1}\n'}
    write_landing(landing, tmp_path / "lake" / "landing")
    code, out, err = _profile(tmp_path / "lake", capsys)
    assert code == 0 and "rows:" in out
    assert "warning" not in err
    assert "profiled " in err
