"""Run records as JSON files under <lake>/_runs/, one file per run.

A run writes its record twice: unfinished when it starts, final at its end. Each write replaces
the file atomically (a temporary file renamed over it), so a reader sees one or the other.

Records are `finops_core.runs.RunRecord` values, written with `to_json()` and read back with
`from_json()` (which also reads the untyped records older versions wrote).
"""

from __future__ import annotations

import json
from pathlib import Path

from finops_core.errors import DatasetMissing
from finops_core.runs import RunRecord

SUFFIX = ".json"


class JsonRunLog:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, record: RunRecord) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{record.run_id}{SUFFIX}"
        staging = path.with_suffix(SUFFIX + ".tmp")
        staging.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True, default=str))
        staging.rename(path)
        return record.run_id

    def run_ids(self) -> list[str]:
        """Every run kept, oldest first (run ids start with their start time)."""
        if not self.directory.is_dir():
            return []
        return sorted(path.name[: -len(SUFFIX)] for path in self.directory.glob(f"*{SUFFIX}"))

    def read(self, run_id: str | None = None) -> RunRecord | None:
        """One run's record (the latest by default); None when there is no such run."""
        ids = self.run_ids()
        if run_id is None:
            if not ids:
                return None
            run_id = ids[-1]
        elif run_id not in ids:  # also keeps a path-like id from leaving the folder
            return None
        path = self.directory / f"{run_id}{SUFFIX}"
        try:
            return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as error:
            raise DatasetMissing(f"The run record {path} cannot be read ({error}).") from None
