"""Small lakes for tests that need a whole pipeline's output but not its details.

This module is a helper, not a test file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.config import env_names


def memory_lake(work: Path, scale: str) -> Path:
    """`work`/lake: a `finops generate --scale SCALE` landing, batched by the memory engine and
    loaded into SQLite, run from `work` with no finops setting taken from the shell."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        for name in env_names():
            patch.delenv(name, raising=False)
        lake = str(work / "lake")
        assert main(["generate", "--lake", lake, "--scale", scale]) == 0
        assert main(["batch", "--lake", lake, "--engine", "memory"]) == 0
        assert main(["load", "--lake", lake, "--engine", "memory", "--serving", "sqlite"]) == 0
    return work / "lake"
