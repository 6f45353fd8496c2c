"""Shared fixtures: Hypothesis profiles, the real dataset, a landing zone unzipped once, the
dirty generated landing generated once."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.spark_fixtures"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ZIP_NAME = "cloud_provider_challenge_dataset_v1.zip"
# Where the real dataset is looked for, in order: CI's shared folder, then the README's `data/`.
REAL_ZIP_PLACES = (
    PROJECT_ROOT.parent / "shared" / "datasets" / ZIP_NAME,
    PROJECT_ROOT / "data" / ZIP_NAME,
)
REAL_ZIP = next((path for path in REAL_ZIP_PLACES if path.exists()), REAL_ZIP_PLACES[0])
LANDING_PREFIX = "datalake/landing/"


@pytest.fixture(scope="session")
def real_zip() -> Path:
    if not REAL_ZIP.exists():
        places = " or ".join(str(path) for path in REAL_ZIP_PLACES)
        pytest.skip(f"the real dataset is absent: put {ZIP_NAME} at {places}")
    return REAL_ZIP


@pytest.fixture(scope="session")
def real_landing(real_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real zip's datalake/landing/ unzipped once per session (read-only by convention)."""
    target = tmp_path_factory.mktemp("real") / "landing"
    with zipfile.ZipFile(real_zip) as archive:
        for member in archive.infolist():
            if member.filename.startswith(LANDING_PREFIX) and not member.is_dir():
                destination = target / member.filename[len(LANDING_PREFIX) :]
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.read(member))
    return target


@pytest.fixture
def real_lake(real_landing: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh lake folder whose landing/ is a copy of the real dataset."""
    lake = tmp_path / "lake"
    shutil.copytree(real_landing, lake / "landing")
    yield lake


# The dirty generated landing the differential and the stream accounting tests share.
DIRTY_SEED, DIRTY_SCALE, DIRTY_RATE = 3, 0.05, 0.02


@pytest.fixture(scope="session")
def dirty_landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """`finops generate --seed 3 --scale 0.05 --dirty 0.02`'s landing (generated once per session,
    read-only by convention) and the defects it injected (its `_injected.json`)."""
    from adapters.landing.generator import generate

    lake = tmp_path_factory.mktemp("dirty")
    generate(lake, seed=DIRTY_SEED, scale=DIRTY_SCALE, dirty_rate=DIRTY_RATE)
    injected = json.loads((lake / "landing" / "_injected.json").read_text())
    return lake / "landing", injected


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ./cred.env and no finops setting's variable from the shell
    (every variable a setting is read from: `entrypoints.config.env_names`)."""
    from entrypoints.config import env_names

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    return work
