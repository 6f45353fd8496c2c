"""Land the challenge dataset zip into `<lake>/landing/`: validate first, then extract atomically.

Nothing is written until every check passes; the landing folder appears in one rename, carries a
`_manifest.json` (each file's path, SHA-256 and size, plus the zip's own SHA-256) and is never
modified afterwards. Landing the same zip again changes nothing.
"""

from __future__ import annotations

import fnmatch
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import attrs

from adapters.landing.manifest import read_manifest, sha256_of, swap_into_place, write_manifest
from finops_core.contracts import EVENTS_DIRECTORY, MASTER_SOURCES, USAGE_EVENTS
from finops_core.errors import DatasetMissing, LandingRefused

MEMBER_ROOT = "datalake/landing/"
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 200.0
# Below this size a member's own ratio is not judged (tiny or empty files compress "infinitely").
RATIO_FLOOR_BYTES = 1024**2
_COPY_CHUNK = 1 << 20


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


def land_zip(zip_path: Path, lake: Path, replace: bool = False) -> LandingResult:
    """Validate `zip_path`, then extract its `datalake/landing/` members into `<lake>/landing/`."""
    started = time.perf_counter()
    require_zip(zip_path)
    zip_sha = sha256_of(zip_path)
    landing = lake / "landing"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _validated_members(zip_path, archive)
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
            manifest = _extract_atomically(archive, members, zip_path, zip_sha, lake, landing)
    except zipfile.BadZipFile as error:
        raise LandingRefused(
            f"{zip_path} is not a readable zip ({error}): download the dataset again and retry"
        ) from error
    return LandingResult(
        landing=landing,
        files=manifest["file_count"],
        bytes=manifest["total_bytes"],
        seconds=time.perf_counter() - started,
        already_landed=False,
        zip_sha256=zip_sha,
    )


def _validated_members(zip_path: Path, archive: zipfile.ZipFile) -> list[_Member]:
    """Every check that can refuse the zip, before anything is written."""
    infos = archive.infolist()
    for info in infos:
        _refuse_unsafe_entry(zip_path, info)
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise LandingRefused(
            f"{zip_path} would unpack to {total} bytes (limit {MAX_TOTAL_BYTES}): "
            "this is not the challenge dataset, check the file"
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


def _extract_atomically(
    archive: zipfile.ZipFile,
    members: list[_Member],
    zip_path: Path,
    zip_sha: str,
    lake: Path,
    landing: Path,
) -> dict:
    lake.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".landing-staging-", dir=lake))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; landing is meant to be read by others
        for member in members:
            target = staging / member.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member.info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, _COPY_CHUNK)
        manifest = write_manifest(
            staging, {"source": "zip", "zip_name": zip_path.name, "zip_sha256": zip_sha}
        )
        swap_into_place(staging, landing, lake)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest
