"""`finops landing`: the dataset zip lands validated, atomically, once."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from adapters.landing.zip_intake import DEFAULT_LIMITS, LandingLimits, Limit, land_zip
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


def test_a_zip_declaring_more_than_the_total_limit_is_refused(sandbox: Path) -> None:
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


# -- a damaged zip, and the total size and entry count limits (issue 15) ---------------------------
# Through the CLI a refused landing leaves the lake as it found it, but for the run record that
# says it was refused (every run is recorded); through `land_zip` no lake folder appears at all.

EVENTS_MEMBER = PREFIX + "usage_events_stream/events_part_0000.jsonl"
TOTAL_NAMED = "the setting landing_max_total_bytes or FINOPS_LANDING_MAX_TOTAL_BYTES"
MEMBERS_NAMED = "the setting landing_max_members or FINOPS_LANDING_MAX_MEMBERS"
TOTAL_SETTING = ("landing_max_total_bytes", "FINOPS_LANDING_MAX_TOTAL_BYTES")


def _events_lines(count: int) -> bytes:
    return b"".join(
        b'{"event_id": "evt_%06d", "cost_usd_increment": %d.25}\n' % (i, i % 13)
        for i in range(count)
    )


def _zip_with_big_events(path: Path) -> Path:
    """The minimal members, the events member large enough to be damaged in its middle, and a
    stored (uncompressed) master last."""
    members = _minimal_members()
    members[EVENTS_MEMBER] = _events_lines(5000)
    last = PREFIX + MASTER_SOURCES[-1].file_pattern
    stored = members.pop(last)
    _write_zip(path, members)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr(last, stored)
    return path


def _data_offset(data: bytes, name: str) -> tuple[int, zipfile.ZipInfo]:
    """Where the member's (compressed) data starts in the zip's bytes, and its entry."""
    import io
    import struct

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    name_length, extra_length = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    return info.header_offset + 30 + name_length + extra_length, info


def _invalid_deflate_block(data: bytearray) -> None:
    start, _ = _data_offset(bytes(data), EVENTS_MEMBER)
    data[start] |= 0b110  # block type 3: reserved, so zlib fails


def _flipped_bytes_mid_member(data: bytearray) -> None:
    start, info = _data_offset(bytes(data), EVENTS_MEMBER)
    middle = start + info.compress_size // 2
    data[middle : middle + 8] = bytes(byte ^ 0xFF for byte in data[middle : middle + 8])


def _cut_in_half(data: bytearray) -> None:
    del data[len(data) // 2 :]


def _last_member_overstated(data: bytearray) -> None:
    """The central directory says the last (stored) member is longer than the file: reading it
    runs off the end of the zip."""
    central = data.rindex(b"PK\x01\x02")
    for offset in (20, 24):  # compressed and uncompressed size
        size = int.from_bytes(data[central + offset : central + offset + 4], "little")
        data[central + offset : central + offset + 4] = (size + 5000).to_bytes(4, "little")


DAMAGES = {
    "an invalid deflate block (zlib.error)": (_invalid_deflate_block, "Error -3"),
    "flipped bytes mid-member (bad CRC)": (_flipped_bytes_mid_member, "Bad CRC-32"),
    "a zip cut in half": (_cut_in_half, "File is not a zip file"),
    "a member running past the end (EOFError)": (_last_member_overstated, "EOFError"),
}


def _damaged(path: Path, damage: str) -> Path:
    data = bytearray(_zip_with_big_events(path).read_bytes())
    DAMAGES[damage][0](data)
    path.write_bytes(bytes(data))
    return path


def _finops_landing(
    capsys: pytest.CaptureFixture[str], archive: Path, lake: Path, *flags: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["landing", "--zip", str(archive), "--lake", str(lake), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("finops: ")
    return line.removeprefix("finops: ")


def _only_the_refusal_record(lake: Path, message: str) -> None:
    """The lake holds nothing but the run record of the refused landing."""
    (record,) = [path for path in lake.rglob("*") if path.is_file()]
    assert record.parent == lake / "_runs" and record.name.endswith("-landing.json")
    assert sorted(path.name for path in lake.iterdir()) == ["_runs"]
    stored = json.loads(record.read_text())
    assert stored["finished"] is True
    assert [stage["note"] for stage in stored["stages"]] == [f"refused: {message}"]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_zip_is_one_not_readable_refusal_and_leaves_no_lake_folder(
    sandbox: Path, damage: str
) -> None:
    archive = _damaged(sandbox.parent / "damaged.zip", damage)

    with pytest.raises(LandingRefused) as refused:
        land_zip(archive, sandbox / "lake")

    message = str(refused.value)
    assert message.startswith(f"{archive} is not a readable zip (")
    assert message.endswith("): download the dataset again and retry")
    assert DAMAGES[damage][1] in message and "\n" not in message
    assert list(sandbox.iterdir()) == []  # no lake folder, no staging folder


def test_a_damaged_zip_under_a_lake_that_does_not_exist_yet_leaves_none_of_its_folders(
    sandbox: Path,
) -> None:
    archive = _damaged(sandbox.parent / "damaged.zip", "an invalid deflate block (zlib.error)")

    with pytest.raises(LandingRefused, match="not a readable zip"):
        land_zip(archive, sandbox / "a" / "b" / "lake")

    assert list(sandbox.iterdir()) == []


def _refused(capsys: pytest.CaptureFixture[str], archive: Path, lake: Path) -> str:
    """`finops landing` of `archive` refused in one line with exit 4, nothing on stdout, the lake
    holding only the refusal's run record; the refusal's message."""
    code, out, err = _finops_landing(capsys, archive, lake)
    message = _one_line(err)
    assert code == 4 and out == ""
    _only_the_refusal_record(lake, message)
    return message


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_cli_refuses_a_damaged_zip_in_one_line_with_exit_4_and_writes_only_the_run_record(
    cli: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    archive = _damaged(cli / "damaged.zip", damage)
    lake = cli / "lake"

    message = _refused(capsys, archive, lake)

    assert message.startswith(f"{archive} is not a readable zip (")
    assert DAMAGES[damage][1] in message


def test_a_damaged_zip_given_with_replace_leaves_the_landing_there_untouched(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = cli / "lake"
    good = _write_zip(cli / "good.zip", _minimal_members())
    assert _finops_landing(capsys, good, lake)[0] == 0
    landing_before = _snapshot(lake / "landing")
    archive = _damaged(cli / "damaged.zip", "flipped bytes mid-member (bad CRC)")

    code, _, err = _finops_landing(capsys, archive, lake, "--replace")

    assert code == 4 and "is not a readable zip (member " in _one_line(err)
    assert _snapshot(lake / "landing") == landing_before
    assert sorted(path.name for path in lake.iterdir()) == ["_runs", "landing"]  # no staging


@pytest.fixture(scope="module")
def spread_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's bomb: 400 members of 1 MiB each (a little noise, then zeros), so no member
    is judged on its own ratio and the whole zip expands less than 200 times."""
    import random

    noise = random.Random(15)
    path = tmp_path_factory.mktemp("bomb") / "spread-bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _minimal_members().items():
            archive.writestr(name, data)
        for index in range(400):
            head = noise.randbytes(6000)
            archive.writestr(
                f"{PREFIX}usage_events_stream/events_part_{index + 1:04d}.jsonl",
                head + bytes(1024**2 - len(head)),
            )
    return path


@pytest.mark.parametrize(
    ("limit", "named"),
    [(None, "268435456"), ("67108864", "67108864")],
    ids=["the default limit", "a limit set through the environment"],
)
def test_a_bomb_spread_over_many_members_is_refused_by_the_total_limit_before_any_write(
    cli: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spread_bomb: Path,
    limit: str | None,
    named: str,
) -> None:
    with zipfile.ZipFile(spread_bomb) as archive:
        declared = sum(info.file_size for info in archive.infolist())
        compressed = sum(info.compress_size for info in archive.infolist())
    assert declared > 400 * 1024**2 and declared < 200 * compressed  # the ratio check passes it
    if limit is not None:
        monkeypatch.setenv("FINOPS_LANDING_MAX_TOTAL_BYTES", limit)
    lake = cli / "lake"

    message = _refused(capsys, spread_bomb, lake)

    assert message == (
        f"{spread_bomb} would unpack to {declared} bytes (limit {named}, {TOTAL_NAMED}): "
        "this is not the challenge dataset, check the file or raise the limit"
    )


@pytest.mark.parametrize(
    ("limit", "entries"),
    [(None, 2001), ("20", 30)],
    ids=["the default limit", "a limit set through the environment"],
)
def test_a_zip_with_too_many_entries_is_refused_naming_the_limit_and_its_setting(
    cli: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    limit: str | None,
    entries: int,
) -> None:
    members = _minimal_members()
    for index in range(entries - len(members)):
        members[f"{PREFIX}usage_events_stream/events_part_{index + 1:04d}.jsonl"] = b"\n"
    archive = _write_zip(cli / "many.zip", members)
    if limit is not None:
        monkeypatch.setenv("FINOPS_LANDING_MAX_MEMBERS", limit)
    lake = cli / "lake"

    message = _refused(capsys, archive, lake)

    assert message == (
        f"{archive} holds {entries} entries (limit {limit or 2000}, {MEMBERS_NAMED}): "
        "this is not the challenge dataset, check the file or raise the limit"
    )


def test_a_zip_at_the_entry_limit_lands(
    cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _minimal_members()
    monkeypatch.setenv("FINOPS_LANDING_MAX_MEMBERS", str(len(members)))
    archive = _write_zip(cli / "exact.zip", members)

    code, out, _ = _finops_landing(capsys, archive, cli / "lake")

    assert code == 0 and out.startswith(f"landed {len(members)} files")


def test_a_central_directory_understating_a_size_is_refused_as_not_readable(
    cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headers claim the events member is 100 bytes: what it really holds is never written
    past that, and the mismatch refuses the zip."""
    archive = _zip_with_big_events(cli / "lying.zip")
    data = bytearray(archive.read_bytes())
    name = EVENTS_MEMBER.encode()
    entry = data.index(name, data.index(name) + 1) - 46  # its central-directory entry
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    monkeypatch.setenv("FINOPS_LANDING_MAX_TOTAL_BYTES", "4096")
    lake = cli / "lake"

    message = _refused(capsys, archive, lake)

    assert f"is not a readable zip (member {EVENTS_MEMBER}: Bad CRC-32" in message


class _LongerThanDeclared:
    """A member stream yielding more bytes than the headers declare (as a zip reader without
    Python's own checks would)."""

    def __init__(self, size: int) -> None:
        import io

        self._data = io.BytesIO(bytes(size))

    def __enter__(self) -> _LongerThanDeclared:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_the_bytes_actually_written_are_held_to_the_total_limit(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _write_zip(sandbox.parent / "small.zip", _minimal_members())
    with zipfile.ZipFile(archive) as opened:
        declared = sum(info.file_size for info in opened.infolist())
    limits = LandingLimits(total_bytes=Limit(4 * 1024**2, *TOTAL_SETTING))
    assert declared < 4 * 1024**2  # the central directory passes the check
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info: _LongerThanDeclared(3 << 20))

    with pytest.raises(LandingRefused) as refused:
        land_zip(archive, sandbox / "lake", limits=limits)

    assert str(refused.value) == (
        f"{archive} unpacks to more than {4 * 1024**2} bytes, more than its headers declare "
        f"(limit {4 * 1024**2}, {TOTAL_NAMED}): this is not the challenge dataset, check the file"
    )
    assert not (sandbox / "lake").exists()


def test_a_full_disk_while_extracting_stays_a_storage_error_not_a_damaged_zip(
    cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    archive = _write_zip(cli / "good.zip", _minimal_members())
    real_open = Path.open

    def open_or_fill(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if mode == "wb" and ".landing-staging-" in str(self):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", open_or_fill)

    code, _, err = _finops_landing(capsys, archive, cli / "lake")

    assert code == 8 and "is full" in _one_line(err)
    assert not (cli / "lake" / "landing").exists()
    assert not list((cli / "lake").glob(".landing-staging-*"))


def test_the_real_dataset_is_far_inside_the_default_limits(real_zip: Path) -> None:
    with zipfile.ZipFile(real_zip) as archive:
        infos = archive.infolist()
    assert len(infos) == 128
    assert len(infos) * 10 < DEFAULT_LIMITS.members.value
    assert sum(info.file_size for info in infos) * 10 < DEFAULT_LIMITS.total_bytes.value
