"""The lake's layout: one folder, the same paths whichever engine writes it."""

from __future__ import annotations

from pathlib import Path

import attrs

from finops_core.contracts import EVENTS_DIRECTORY
from finops_core.tables import Table


@attrs.frozen
class LakeLayout:
    root: Path = attrs.field(converter=Path)

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def landing_events(self) -> Path:
        return self.landing / EVENTS_DIRECTORY

    def table(self, table: Table) -> Path:
        """A declared table's folder: <root>/<layer>/<name>."""
        return self.root / table.layer.value / table.name

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def runs(self) -> Path:
        return self.root / "_runs"

    @property
    def serving_sqlite(self) -> Path:
        return self.root / "serving" / "finops.sqlite"
