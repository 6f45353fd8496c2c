"""Land the challenge dataset zip into `<lake>/landing/`: validate first, then extract atomically.

Nothing is written until every check passes; the landing folder appears in one rename, carries a
`_manifest.json` (each file's path, SHA-256 and size, plus the zip's own SHA-256) and is never
modified afterwards. Landing the same zip again changes nothing.

The zip's entry count and declared total size are checked against `LandingLimits` before anything
is written, and the bytes actually written are counted against the same total while extracting
(a central directory that understates the sizes cannot get past it). A zip that cannot be
decompressed (flipped bytes, a bad CRC, a truncated file) is one "not a readable zip" refusal, and
a refused extraction leaves nothing behind: no staging folder, no lake folder it created.
"""

from __future__ import annotations

import fnmatch
import lzma
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

import attrs

from adapters.landing.manifest import read_manifest, sha256_of, swap_into_place, write_manifest
from finops_core.contracts import EVENTS_DIRECTORY, MASTER_SOURCES, USAGE_EVENTS
from finops_core.errors import DatasetMissing, LandingRefused

MEMBER_ROOT = "datalake/landing/"
# The challenge dataset holds 128 entries unpacking to about 13 MB: wide margins both ways.
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024**2
DEFAULT_MAX_MEMBERS = 2000
MAX_RATIO = 200.0
# Below this size a member's own ratio is not judged (tiny or empty files compress "infinitely").
RATIO_FLOOR_BYTES = 1024**2
_COPY_CHUNK = 1 << 20
# What reading or decompressing a member can raise when the zip is damaged (flipped bytes, a bad
# CRC, a truncated file, an unsupported or encrypted member). Writing errors are not among them:
# a full disk stays a storage error.
_UNREADABLE: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of at least 1, not {value!r}")


@attrs.frozen
class Limit:
    """One bound on what a zip may hold, with the setting and environment variable that set it."""

    value: int = attrs.field(validator=_at_least_one)
    setting: str
    env: str

    def described(self) -> str:
        return f"limit {self.value}, the setting {self.setting} or {self.env}"


@attrs.frozen
class LandingLimits:
    """How many entries a dataset zip may hold and how many bytes it may unpack to."""

    total_bytes: Limit = Limit(
        DEFAULT_MAX_TOTAL_BYTES, "landing_max_total_bytes", "FINOPS_LANDING_MAX_TOTAL_BYTES"
    )
    members: Limit = Limit(DEFAULT_MAX_MEMBERS, "landing_max_members", "FINOPS_LANDING_MAX_MEMBERS")


DEFAULT_LIMITS = LandingLimits()


@attrs.frozen
class LandingResult:
    landing: Path
    files: int
    bytes: int
    seconds: float
    already_landed: bool
    zip_sha256: str

    def summary(self) -> str:
        if self.already_landed:
            return (
                f"already landed: {self.files} files, {self.bytes} bytes in {self.landing} "
                "(nothing changed)"
            )
        return (
            f"landed {self.files} files, {self.bytes} bytes into {self.landing} "
            f"in {self.seconds:.2f} s"
        )


@attrs.frozen
class _Member:
    info: zipfile.ZipInfo
    relative: str  # path under landing/


def require_zip(zip_path: Path) -> None:
    """DatasetMissing, saying what to do, when there is no zip at `zip_path`."""
    if not zip_path.is_file():
        raise DatasetMissing(
            f"dataset zip {zip_path} not found: download cloud_provider_challenge_dataset_v1.zip "
            "into data/ or pass --zip PATH"
        )


def land_zip(
    zip_path: Path,
    lake: Path,
    replace: bool = False,
    *,
    limits: LandingLimits = DEFAULT_LIMITS,
) -> LandingResult:
    """Validate `zip_path`, then extract its `datalake/landing/` members into `<lake>/landing/`."""
    started = time.perf_counter()
    require_zip(zip_path)
    zip_sha = sha256_of(zip_path)
    landing = lake / "landing"
    with _opened(zip_path) as archive:
        members = _validated_members(zip_path, archive, limits)
        existing = read_manifest(landing)
        if existing is not None and existing.get("zip_sha256") == zip_sha:
            return LandingResult(
                landing=landing,
                files=int(existing.get("file_count", 0)),
                bytes=int(existing.get("total_bytes", 0)),
                seconds=time.perf_counter() - started,
                already_landed=True,
                zip_sha256=zip_sha,
            )
        if landing.exists() and not replace:
            raise LandingRefused(
                f"{landing} already holds a different landing: pass --replace to swap it for "
                f"{zip_path.name}, or choose another --lake"
            )
        manifest = _extract_atomically(
            _Extraction(archive, zip_path, zip_sha, limits.total_bytes), members, lake, landing
        )
    return LandingResult(
        landing=landing,
        files=manifest["file_count"],
        bytes=manifest["total_bytes"],
        seconds=time.perf_counter() - started,
        already_landed=False,
        zip_sha256=zip_sha,
    )


def not_readable(zip_path: Path, error: BaseException, member: str | None = None) -> LandingRefused:
    """The one refusal for a zip that cannot be read or decompressed, whatever the cause."""
    reason = " ".join(str(error).split()) or type(error).__name__
    where = f"member {member}: " if member else ""
    return LandingRefused(
        f"{zip_path} is not a readable zip ({where}{reason}): download the dataset again and retry"
    )


def _opened(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except _UNREADABLE as error:
        raise not_readable(zip_path, error) from error


def _validated_members(
    zip_path: Path, archive: zipfile.ZipFile, limits: LandingLimits
) -> list[_Member]:
    """Every check that can refuse the zip, before anything is written."""
    infos = archive.infolist()
    if len(infos) > limits.members.value:
        raise LandingRefused(
            f"{zip_path} holds {len(infos)} entries ({limits.members.described()}): "
            "this is not the challenge dataset, check the file or raise the limit"
        )
    for info in infos:
        _refuse_unsafe_entry(zip_path, info)
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if total > limits.total_bytes.value:
        raise LandingRefused(
            f"{zip_path} would unpack to {total} bytes ({limits.total_bytes.described()}): "
            "this is not the challenge dataset, check the file or raise the limit"
        )
    if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * max(compressed, 1):
        raise LandingRefused(
            f"{zip_path} expands {total / max(compressed, 1):.0f} times (limit {MAX_RATIO:.0f}), "
            "which looks like a zip bomb: check the file"
        )
    for info in infos:
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise LandingRefused(
                f"{zip_path} member {info.filename} expands more than {MAX_RATIO:.0f} times, "
                "which looks like a zip bomb: check the file"
            )
    members = [
        _Member(info, info.filename[len(MEMBER_ROOT) :])
        for info in infos
        if info.filename.startswith(MEMBER_ROOT)
        and not info.is_dir()
        and info.filename != MEMBER_ROOT
    ]
    present = {member.relative for member in members}
    missing = [c.file_pattern for c in MASTER_SOURCES if c.file_pattern not in present]
    if not any(fnmatch.fnmatch(name, USAGE_EVENTS.file_pattern) for name in present):
        missing.append(f"{EVENTS_DIRECTORY}/*.jsonl")
    if missing:
        raise LandingRefused(
            f"{zip_path} lacks {', '.join(MEMBER_ROOT + name for name in missing)}: "
            "use the challenge dataset zip, unmodified"
        )
    return members


def _refuse_unsafe_entry(zip_path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if name.startswith(("/", "\\")) or pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        problem = "an absolute path"
    elif ".." in pure.parts:
        problem = "a '..' path"
    elif stat.S_ISLNK(mode):
        problem = "a symbolic link"
    else:
        return
    raise LandingRefused(
        f"{zip_path} holds {problem} ({name!r}) and was not extracted: use the original dataset zip"
    )


@attrs.frozen
class _Extraction:
    """The open archive being extracted, and the byte budget the written files must keep to."""

    archive: zipfile.ZipFile
    zip_path: Path
    zip_sha: str
    budget: Limit


def _extract_atomically(
    extraction: _Extraction, members: list[_Member], lake: Path, landing: Path
) -> dict:
    created = _missing_folders(lake)
    lake.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".landing-staging-", dir=lake))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; landing is meant to be read by others
        written = 0
        for member in members:
            target = staging / member.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            written = _copy_member(extraction, member, target, written)
        manifest = write_manifest(
            staging,
            {
                "source": "zip",
                "zip_name": extraction.zip_path.name,
                "zip_sha256": extraction.zip_sha,
            },
        )
        swap_into_place(staging, landing, lake)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(created)
        raise
    return manifest


def _copy_member(extraction: _Extraction, member: _Member, target: Path, written: int) -> int:
    """Decompress one member into `target`; the bytes written so far, this member's included.

    The count is of bytes actually decompressed, not of what the headers declare: going past the
    budget refuses the zip before the chunk that would exceed it is written.
    """
    with _member_stream(extraction, member) as source, target.open("wb") as sink:
        while chunk := _read_chunk(extraction, member, source):
            written += len(chunk)
            if written > extraction.budget.value:
                raise LandingRefused(
                    f"{extraction.zip_path} unpacks to more than {extraction.budget.value} bytes, "
                    f"more than its headers declare ({extraction.budget.described()}): "
                    "this is not the challenge dataset, check the file"
                )
            sink.write(chunk)
    return written


def _member_stream(extraction: _Extraction, member: _Member) -> IO[bytes]:
    try:
        return extraction.archive.open(member.info)
    except _UNREADABLE as error:
        raise not_readable(extraction.zip_path, error, member.info.filename) from error


def _read_chunk(extraction: _Extraction, member: _Member, source: IO[bytes]) -> bytes:
    try:
        return source.read(_COPY_CHUNK)
    except _UNREADABLE as error:
        raise not_readable(extraction.zip_path, error, member.info.filename) from error


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Undo the creation of `folders` (deepest first), keeping any that holds something."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
