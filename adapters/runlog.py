"""Run records as JSON files under <lake>/_runs/ (one file per run, never rewritten)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class JsonRunLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, record: Mapping[str, object]) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        run_id = str(record["run_id"])
        path = self.directory / f"{run_id}.json"
        staging = path.with_suffix(".json.tmp")
        staging.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        staging.rename(path)
        return run_id

    def read(self, run_id: str | None = None) -> Mapping[str, object] | None:
        if not self.directory.exists():
            return None
        if run_id is None:
            files = sorted(self.directory.glob("*.json"))
            if not files:
                return None
            path = files[-1]
        else:
            path = self.directory / f"{run_id}.json"
            if not path.exists():
                return None
        loaded: Mapping[str, object] = json.loads(path.read_text())
        return loaded
