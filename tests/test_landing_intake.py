"""`finops landing`: the dataset zip lands validated, atomically, once."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from adapters.landing.zip_intake import land_zip
from entrypoints.cli import main
from finops_core.contracts import MASTER_SOURCES
from finops_core.errors import DatasetMissing, LandingRefused

SHA256SUMS = Path(__file__).resolve().parents[2] / "shared/datasets/SHA256SUMS"
PREFIX = "datalake/landing/"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its size and modification time (nanoseconds)."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


def _minimal_members() -> dict[str, bytes]:
    members = {
        PREFIX + contract.file_pattern: (",".join(contract.column_names) + "\n").encode()
        for contract in MASTER_SOURCES
    }
    members[PREFIX + "usage_events_stream/events_part_0000.jsonl"] = b'{"event_id": "evt_1"}\n'
    return members


def _write_zip(
    path: Path, members: dict[str, bytes], extra: list[zipfile.ZipInfo] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for info in extra or []:
            archive.writestr(info, b"target")
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A parent folder whose only content at the start is the lake's future location."""
    parent = tmp_path / "parent"
    parent.mkdir()
    return parent


def test_landed_files_have_the_hashes_listed_in_sha256sums(real_zip: Path, tmp_path: Path) -> None:
    result = land_zip(real_zip, tmp_path / "lake")

    expected = {}
    for line in SHA256SUMS.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if name.startswith(PREFIX):
            expected[name[len(PREFIX) :]] = digest
    manifest = json.loads((result.landing / "_manifest.json").read_text())
    landed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    assert landed == expected
    assert len(landed) == 127
    assert manifest["total_bytes"] == sum(
        (result.landing / name).stat().st_size for name in expected
    )
    assert not (result.landing / "README.txt").exists()
    assert len(list((result.landing / "usage_events_stream").glob("*.jsonl"))) == 120
    # Nothing but the landing folder is left in the lake (no staging folder).
    assert [p.name for p in (tmp_path / "lake").iterdir()] == ["landing"]


def test_landing_the_same_zip_twice_changes_nothing(
    real_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    assert main(["landing", "--zip", str(real_zip), "--lake", str(lake)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("landed 127 files, 13235421 bytes")
    before = _snapshot(tmp_path)

    assert main(["landing", "--zip", str(real_zip), "--lake", str(lake)]) == 0

    assert "already landed" in capsys.readouterr().out
    # Nothing but the run log changed: the second landing is recorded, as every run is.
    after = _snapshot(tmp_path)
    runs = {path for path in {*before, *after} if path.startswith("lake/_runs")}
    assert {k: v for k, v in after.items() if k not in runs} == {
        k: v for k, v in before.items() if k not in runs
    }
    assert len([path for path in after if path.endswith("-landing.json")]) == 2


@pytest.mark.parametrize(
    "bad_name",
    ["datalake/landing/../../evil.txt", "/etc/evil.txt", "datalake/landing/../evil.csv"],
)
def test_a_zip_with_an_escaping_path_is_refused_and_writes_nothing(
    sandbox: Path, bad_name: str
) -> None:
    archive = _write_zip(sandbox.parent / "bad.zip", {**_minimal_members(), bad_name: b"evil"})
    before = _snapshot(sandbox.parent)

    with pytest.raises(LandingRefused, match="path"):
        land_zip(archive, sandbox / "lake")

    assert _snapshot(sandbox.parent) == before
    assert not (sandbox / "lake").exists()


def test_a_zip_with_a_symlink_entry_is_refused_and_writes_nothing(sandbox: Path) -> None:
    link = zipfile.ZipInfo(PREFIX + "users_link.csv")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _write_zip(sandbox.parent / "link.zip", _minimal_members(), extra=[link])
    before = _snapshot(sandbox.parent)

    with pytest.raises(LandingRefused, match="symbolic link"):
        land_zip(archive, sandbox / "lake")

    assert _snapshot(sandbox.parent) == before


def test_a_zip_bomb_is_refused_before_anything_is_written(sandbox: Path) -> None:
    members = _minimal_members()
    members[PREFIX + "usage_events_stream/events_part_0001.jsonl"] = bytes(30 * 1024**2)
    archive = _write_zip(sandbox.parent / "bomb.zip", members)
    assert archive.stat().st_size < 100_000
    before = _snapshot(sandbox.parent)

    with pytest.raises(LandingRefused, match="zip bomb"):
        land_zip(archive, sandbox / "lake")

    assert _snapshot(sandbox.parent) == before


def test_a_zip_declaring_more_than_two_gibibytes_is_refused(sandbox: Path) -> None:
    archive = _write_zip(sandbox.parent / "huge.zip", _minimal_members())
    # Rewrite one central-directory entry to declare 3 GiB uncompressed (the data stays tiny).
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (3 * 1024**3).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    before = _snapshot(sandbox.parent)

    with pytest.raises(LandingRefused, match="unpack to|zip bomb"):
        land_zip(archive, sandbox / "lake")

    assert _snapshot(sandbox.parent) == before


def test_a_zip_missing_an_expected_member_is_refused(sandbox: Path) -> None:
    members = _minimal_members()
    del members[PREFIX + "users.csv"]
    archive = _write_zip(sandbox.parent / "partial.zip", members)

    with pytest.raises(LandingRefused, match="users.csv"):
        land_zip(archive, sandbox / "lake")

    assert not (sandbox / "lake").exists()


def test_a_missing_zip_is_one_sentence_saying_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(DatasetMissing) as raised:
        land_zip(missing, tmp_path / "lake")
    message = str(raised.value)
    assert "not found" in message and "--zip PATH" in message
    assert message.count(". ") == 0 and "\n" not in message

    assert main(["landing", "--zip", str(missing), "--lake", str(tmp_path / "lake")]) == 3
    assert capsys.readouterr().err.strip() == f"finops: {message}"
    assert not (tmp_path / "lake").exists()


def test_a_corrupt_zip_is_refused_with_advice(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(LandingRefused, match="download the dataset again"):
        land_zip(corrupt, tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


def test_a_different_zip_is_refused_without_replace_and_accepted_with_it(
    real_zip: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    land_zip(real_zip, lake)
    other = _write_zip(tmp_path / "other.zip", _minimal_members())
    before = _snapshot(lake)

    with pytest.raises(LandingRefused, match="--replace"):
        land_zip(other, lake)
    assert _snapshot(lake) == before

    result = land_zip(other, lake, replace=True)

    assert not result.already_landed
    manifest = json.loads((lake / "landing" / "_manifest.json").read_text())
    assert manifest["file_count"] == 8
    assert sorted(p.name for p in lake.iterdir()) == ["landing"]
    assert not (lake / "landing" / "usage_events_stream" / "events_part_0119.jsonl").exists()
