"""Every gold table, in the order a batch writes them: the marts' (`finops_core.marts`), then
the cost anomalies scored from the daily mart (`finops_core.anomaly`)."""

from __future__ import annotations

from finops_core.anomaly import COST_ANOMALIES
from finops_core.marts import MARTS
from finops_core.tables import Table

GOLD_TABLES: tuple[Table, ...] = (*(mart.table for mart in MARTS), COST_ANOMALIES.table)


def gold_table(name: str) -> Table:
    """The gold table of that name."""
    for table in GOLD_TABLES:
        if table.name == name:
            return table
    known = ", ".join(table.name for table in GOLD_TABLES)
    raise KeyError(f"no gold table is named {name!r}; the gold tables are: {known}")
