"""Helpers for a Jupyter notebook: run the pipeline's stages and look at the results.

Everything goes through the same container as the CLI, and rows are dicts keyed by the
declared column names (`finops_core.marts`, `finops_core.serving`). With the Spark engine the
container borrows the notebook's active SparkSession when there is one and never stops it.
Results come back as pandas DataFrames and matplotlib Figures (built without pyplot's global
state); the report's charts come back as the very Plotly figures `finops report` puts on its
page (`report_charts`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrypoints.config import load_settings
from entrypoints.containers import Container, build_container, running
from entrypoints.output import json_rows
from finops_core import queries
from finops_core.errors import DatasetMissing
from finops_core.gold import GOLD_TABLES
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE
from finops_core.runs import RunRecord
from finops_core.serving import DAILY_USAGE_BY_ORG
from finops_core.tables import QUARANTINE_EVENTS, Table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from plotly.graph_objects import Figure as PlotlyFigure

    from finops_core.report import Report

DATASET_ZIP = Path("data") / "cloud_provider_challenge_dataset_v1.zip"


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder holding pyproject.toml, from `start` up.

    `start` defaults to the working directory.
    """
    here = (start or Path.cwd()).absolute()
    return next(
        (folder for folder in (here, *here.parents) if (folder / "pyproject.toml").is_file()), None
    )


def notebook_lake() -> Path:
    """The lake: $FINOPS_LAKE (or the TOML/cred.env layers) when set, else <project>/datalake."""
    if "FINOPS_LAKE" in os.environ:
        return load_settings().lake.absolute()
    root = project_root() or Path.cwd()
    return root / "datalake"


def container(
    lake: Path, engine: str = "memory", serving: str = "sqlite", **settings: Any
) -> Container:
    """The composition root for a notebook; call `.shutdown_resources()` when done (a borrowed
    SparkSession is left running)."""
    return build_container(lake=lake, engine=engine, serving=serving, **settings)


# -- stages ------------------------------------------------------------------------------------


def prepare_landing(
    lake: Path, zip_path: Path | None = None, scale: float = 0.1, seed: int = 1
) -> str:
    """Keep an existing landing; else land the dataset zip when present; else generate one."""
    from adapters.landing.generator import generate
    from adapters.landing.zip_intake import land_zip

    layout = LakeLayout(lake)
    if layout.landing.exists():
        return f"kept the landing already in {layout.landing}"
    candidate = zip_path or ((project_root() or Path.cwd()) / DATASET_ZIP)
    if candidate.is_file():
        return land_zip(candidate, lake).summary()
    return generate(lake, seed=seed, scale=scale).summary()


def stream_once(lake: Path) -> int:
    """The speed layer over the files now in landing (needs Spark), as `finops stream --once`."""
    from entrypoints.cli import main

    return main(["stream", "--once", "--lake", str(lake)])


def run_batch(lake: Path, engine: str = "memory") -> RunRecord:
    """Bronze, silver and gold; returns the run record `finops audit` reads."""
    from entrypoints import app

    with running(container(lake, engine=engine)) as built, app.lake_held(built):
        return app.batch(built)


def load_serving(lake: Path, serving: str = "sqlite", engine: str = "memory") -> int:
    """Upsert gold into the serving store; returns the rows it holds afterwards."""
    from entrypoints import app

    with running(container(lake, engine=engine, serving=serving)) as built, app.lake_held(built):
        record = app.load(built)
    return int(record.counts["serving.serving_rows"])


# -- results as DataFrames ---------------------------------------------------------------------


def _rows(lake: Path, table: Table) -> list[dict[str, object]]:
    """A lake table's rows as dicts keyed by its column names, read by the memory engine."""
    with running(container(lake, engine="memory")) as built:
        return list(built.engine().read_rows(built.layout(), table))


def gold_frame(lake: Path) -> pd.DataFrame:
    """Gold org_daily_usage_by_service, one row per (usage_date, org, service)."""
    import pandas as pd

    if not LakeLayout(lake).table(DAILY_USAGE.table).exists():
        raise DatasetMissing(f"The lake {lake} has no gold rows; run the batch first.")
    rows = _rows(lake, DAILY_USAGE.table)
    if not rows:
        raise DatasetMissing(f"The lake {lake} has no gold rows; run the batch first.")
    frame = pd.DataFrame.from_records(json_rows(rows, DAILY_USAGE.table.column_names))
    frame["usage_date"] = pd.to_datetime(frame["usage_date"])
    return frame


def mart_frames(lake: Path) -> dict[str, pd.DataFrame]:
    """Every gold table (`finops_core.gold.GOLD_TABLES`) as a DataFrame sorted by its key, by
    table name; a table the lake does not have yet is an empty frame with its columns."""
    import pandas as pd

    frames: dict[str, pd.DataFrame] = {}
    for table in GOLD_TABLES:
        rows = _rows(lake, table) if LakeLayout(lake).table(table).exists() else []
        frame = pd.DataFrame.from_records(
            json_rows(sorted(rows, key=table.key_of), table.column_names),  # type: ignore[arg-type]
            columns=list(table.column_names),
        )
        frames[table.name] = frame
    return frames


def quarantine_summary(lake: Path) -> pd.DataFrame:
    """Quarantined events per reason (an event failing several rules counts under each)."""
    import pandas as pd

    if not LakeLayout(lake).table(QUARANTINE_EVENTS).exists():
        return pd.DataFrame({"reason": [], "events": []})
    reasons = pd.Series(
        [
            reason
            for row in _rows(lake, QUARANTINE_EVENTS)
            for reason in row["reasons"] or []  # type: ignore[attr-defined]
        ],
        dtype=object,
    )
    counts = reasons.value_counts().rename_axis("reason").reset_index(name="events")
    return counts.sort_values(["events", "reason"], ascending=[False, True], ignore_index=True)


def top_org(gold: pd.DataFrame) -> str:
    """The organisation with the highest total cost (a good example for Q1/Q2)."""
    return str(gold.groupby("org_id")["daily_cost_usd"].sum().idxmax())


def q1_frame(
    lake: Path,
    org_id: str,
    start: dt.date,
    end: dt.date,
    service: str | None = None,
    serving: str = "sqlite",
) -> pd.DataFrame:
    """Q1 from the serving store: the org's daily usage from start to end inclusive."""
    import pandas as pd

    with running(container(lake, serving=serving, read_only=True)) as built:
        rows = queries.daily_usage(built.serving(), org_id, start, end, service)
    columns = DAILY_USAGE_BY_ORG.columns
    return pd.DataFrame.from_records(json_rows(rows, columns), columns=list(columns))


def q2_frame(
    lake: Path,
    org_id: str,
    days: int = 14,
    as_of: dt.date | None = None,
    limit: int = 5,
    serving: str = "sqlite",
) -> pd.DataFrame:
    """Q2 from the serving store: the org's most expensive services over the last `days`."""
    import pandas as pd

    from entrypoints.app import COST_COLUMNS, cost_rows

    with running(container(lake, serving=serving, read_only=True)) as built:
        ranked = queries.top_services(built.serving(), org_id, days, as_of, limit)
    return pd.DataFrame.from_records(cost_rows(ranked), columns=list(COST_COLUMNS))


def audit_frame(lake: Path, run_id: str | None = None) -> tuple[pd.DataFrame, bool]:
    """The run's reconciliations (check, left, right, passed) and whether all passed."""
    import pandas as pd

    from entrypoints.commands.audit import audit_run

    with running(container(lake, read_only=True)) as built:
        audit = audit_run(built, run_id)
    frame = pd.DataFrame(
        [
            {
                "check": c.name,
                "left": c.left,
                "right": c.right,
                "passed": c.passed,
                "detail": c.detail,
            }
            for c in audit.checks
        ]
    )
    return frame, audit.passed


# -- plots -------------------------------------------------------------------------------------


def _figure(title: str, ylabel: str) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots()
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def plot_daily_cost_by_service(gold: pd.DataFrame, services: Sequence[str] | None = None) -> Figure:
    """Total daily cost (USD) of each service over all organisations, one line per service."""
    table = gold.pivot_table(
        index="usage_date", columns="service", values="daily_cost_usd", aggfunc="sum"
    ).fillna(0.0)
    if services is not None:
        table = table[list(services)]
    figure, axes = _figure("Daily cost by service", "cost (USD)")
    for service in table.columns:
        axes.plot(table.index, table[service], label=str(service), linewidth=1.5)
    axes.legend(loc="upper left", fontsize="small", ncols=2)
    figure.autofmt_xdate()
    return figure


def plot_carbon_by_day(gold: pd.DataFrame) -> Figure:
    """Total carbon (kg CO2e) per day over all organisations and services."""
    daily = gold.groupby("usage_date")["carbon_kg"].sum()
    figure, axes = _figure("Carbon by day", "carbon (kg CO2e)")
    axes.bar(daily.index, daily.to_numpy(), width=0.8, color="seagreen")
    figure.autofmt_xdate()
    return figure


# -- the report's charts -----------------------------------------------------------------------


def report(
    lake: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org: str | None = None,
) -> Report:
    """The figures of `finops report` over the lake (`finops_core.report`): the whole gold range
    unless start/end say otherwise, of one org or of every org."""
    from entrypoints.commands.report import report_of

    with running(container(lake, read_only=True)) as built:
        return report_of(built, start, end, org)


def report_charts(figures: Report) -> dict[str, PlotlyFigure]:
    """The report page's Plotly charts, by chart id (those with something to draw); a
    notebook shows each inline."""
    from entrypoints.commands.report import figures_of

    return figures_of(figures)


def write_report(
    lake: Path,
    out: Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org: str | None = None,
) -> Path:
    """Write the report page, as `finops report` does (default <lake>/report/finops-report.html);
    its path."""
    from entrypoints.commands import report as command

    with running(container(lake, read_only=True)) as built:
        return command.write_report(built, out, start, end, org).path
