"""What the demo lands when a lake already holds a landing: the real zip replaces a synthetic
landing an earlier demo generated, and a landing of another dataset stops the demo with the
command that replaces it (the demo's landing step only: no engine runs)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from adapters.landing.generator import generate
from adapters.landing.manifest import read_manifest
from adapters.landing.zip_intake import land_zip
from entrypoints.app import _land
from entrypoints.containers import build_container
from finops_core.errors import LandingRefused


def test_the_real_zip_replaces_a_synthetic_landing_an_earlier_demo_generated(
    real_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    generate(lake, seed=1, scale=0.05)
    assert (read_manifest(lake / "landing") or {})["source"] == "generator"
    summary = _land(build_container(lake=lake, engine="memory"), real_zip)
    assert f"{real_zip} replaces the synthetic landing" in capsys.readouterr().err
    manifest = read_manifest(lake / "landing") or {}
    assert manifest.get("source") != "generator"
    with zipfile.ZipFile(real_zip) as archive:
        landed = [i for i in archive.infolist() if i.filename.startswith("datalake/landing/")]
        files = [i for i in landed if not i.is_dir()]
    assert manifest["file_count"] == len(files) == 127
    assert str(len(files)) in summary
    again = _land(build_container(lake=lake, engine="memory"), real_zip)  # now the same: kept
    assert "already" in again and read_manifest(lake / "landing") == manifest


def test_a_landing_of_another_dataset_stops_the_demo_with_the_command_that_replaces_it(
    real_zip: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    land_zip(real_zip, lake)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(real_zip) as source, zipfile.ZipFile(other, "w") as copy:
        for info in source.infolist():
            data = b"" if info.is_dir() else source.read(info)
            if info.filename.endswith("events_part_0000.jsonl"):
                data = data.splitlines(keepends=True)[0]  # one day changed: another dataset
            copy.writestr(info, data)
    before = read_manifest(lake / "landing")
    with pytest.raises(LandingRefused) as refused:
        _land(build_container(lake=lake, engine="memory"), other)
    message = str(refused.value)
    assert f"{lake / 'landing'} holds another dataset than {other}" in message
    assert f"`finops landing --zip {other} --replace --lake {lake}`" in message
    assert read_manifest(lake / "landing") == before  # nothing replaced
