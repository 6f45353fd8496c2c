"""The lake's layout: one folder, the same paths whichever engine writes it."""

from __future__ import annotations

from pathlib import Path

import attrs

from finops_core.contracts import EVENTS_DIRECTORY

BRONZE_EVENTS = "usage_events"
SILVER_EVENTS = "usage_events"
QUARANTINE_EVENTS = "usage_events"
GOLD_DAILY = "org_daily_usage_by_service"
# Bronze events carry every contract field as text plus these provenance columns.
BRONZE_EVENT_EXTRA = ("raw", "source_file", "ingest_ts", "run_id")
BRONZE_PARTITION = "event_date"
SILVER_PARTITION = "usage_date"


@attrs.frozen
class LakeLayout:
    root: Path = attrs.field(converter=Path)

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def landing_events(self) -> Path:
        return self.landing / EVENTS_DIRECTORY

    def bronze(self, table: str) -> Path:
        return self.root / "bronze" / table

    def silver(self, table: str) -> Path:
        return self.root / "silver" / table

    def gold(self, table: str) -> Path:
        return self.root / "gold" / table

    def quarantine(self, table: str) -> Path:
        return self.root / "quarantine" / table

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def runs(self) -> Path:
        return self.root / "_runs"

    @property
    def serving_sqlite(self) -> Path:
        return self.root / "serving" / "finops.sqlite"
