"""The `_manifest.json` every landing folder carries, whoever wrote it (zip intake or generator)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from finops_core.contracts import MASTER_SOURCES, USAGE_EVENTS
from finops_core.intake import LandingFile

MANIFEST_NAME = "_manifest.json"
# Files the landing writers add beside the data; never listed in the manifest itself.
BOOKKEEPING_FILES = frozenset({MANIFEST_NAME, "_generated.json", "_injected.json"})
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_and_lines(path: Path) -> tuple[str, int]:
    """(SHA-256, line count) from one read: lines split on "\\n" as `events.split_lines` does
    (a last line without "\\n" counts, an empty file has none)."""
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return digest.hexdigest(), lines + (last != b"\n")


def data_files(landing: Path) -> list[Path]:
    """Every data file under a landing folder, sorted by relative path (bookkeeping excluded)."""
    return sorted(
        path
        for path in landing.rglob("*")
        if path.is_file() and path.relative_to(landing).as_posix() not in BOOKKEEPING_FILES
    )


def unread_files(landing: Path) -> list[str]:
    """The landing's data files no source contract reads (a `.jsonl.gz`, a `notes.txt`), by
    relative path: a batch leaves them alone, and says so rather than skip them silently."""
    read = [contract.file_pattern for contract in (*MASTER_SOURCES, USAGE_EVENTS)]
    relative = [path.relative_to(landing).as_posix() for path in data_files(landing)]
    return [name for name in relative if not any(fnmatchcase(name, p) for p in read)]


def file_entries(landing: Path, files: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """One {path, sha256, size} per data file, paths relative to the landing folder."""
    chosen = data_files(landing) if files is None else sorted(files)
    return [
        {
            "path": path.relative_to(landing).as_posix(),
            "sha256": sha256_of(path),
            "size": path.stat().st_size,
        }
        for path in chosen
    ]


def write_manifest(landing: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Hash every data file and write `_manifest.json`; returns what was written."""
    files = file_entries(landing)
    manifest = {
        **source,
        "file_count": len(files),
        "total_bytes": sum(entry["size"] for entry in files),
        "files": files,
    }
    (landing / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(landing: Path) -> dict[str, Any] | None:
    path = landing / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def swap_into_place(staging: Path, landing: Path, lake: Path) -> None:
    """Make `staging` the landing folder with renames only; a landing already there is retired."""
    if landing.exists():
        retired = Path(tempfile.mkdtemp(prefix=".landing-retired-", dir=lake))
        os.replace(landing, retired / "landing")
        os.replace(staging, landing)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, landing)


def landing_events(landing: Path) -> list[LandingFile]:
    """Every usage-events file of a landing folder (`contracts.USAGE_EVENTS.file_pattern`), by
    relative path, with its size, line count and the SHA-256 of its bytes as they are now (never
    the manifest's word for it), sorted by path."""
    if not landing.is_dir():
        return []
    files = []
    for path in sorted(landing.glob(USAGE_EVENTS.file_pattern)):
        if not path.is_file():
            continue
        sha256, lines = sha256_and_lines(path)
        files.append(
            LandingFile(
                path=path.relative_to(landing).as_posix(),
                name=path.name,
                size=path.stat().st_size,
                sha256=sha256,
                lines=lines,
            )
        )
    return files
