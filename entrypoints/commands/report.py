"""`finops report`: one self-contained HTML page of the lake's FinOps figures.

The figures are computed by `finops_core.report` over the gold marts' rows and the run records,
read through the container's lake (Delta tables read by `deltalake`: no JVM) and run log; the
page is drawn by `adapters.plotly`. `finops demo` writes the same page into the lake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from entrypoints.commands.common import add_command, add_lake_option, iso_date
from entrypoints.containers import Container
from finops_core.anomaly import COST_ANOMALIES
from finops_core.errors import ConfigurationError, StorageFailed
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE, GENAI_TOKENS, REVENUE, TICKETS
from finops_core.report import CARBON_BY_REGION, Report, ReportInputs, build_report
from finops_core.tables import QUARANTINE_EVENTS, Table

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

REPORT_FILE = Path("report") / "finops-report.html"


def default_path(layout: LakeLayout) -> Path:
    """Where the report goes without --out: <lake>/report/finops-report.html."""
    return layout.root / REPORT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "report",
        "write one self-contained HTML page of the FinOps figures (charts, headlines, quality)",
        "Write one HTML file that opens in any browser without the network (plotly.js and the\n"
        "data are inlined; about 5 MB). It shows, for the period:\n"
        "- headline figures: total cost, requests, cost per 1k requests, kg CO2e, GenAI tokens,\n"
        "  net revenue and gross margin (revenue - usage cost), each against the previous\n"
        "  period of equal length;\n"
        "- cost by service per day (stacked) and cost per request by service;\n"
        "- the top organisations by cost and by cost growth (second half of the period against\n"
        "  its first), net revenue against usage cost per month and the margin per org and month\n"
        "  (a month counts in the period its last day lies in);\n"
        "- carbon: kg CO2e per USD and per 1k requests by service and region;\n"
        "- the anomaly mart's flagged days on a timeline, largest impact first, with the methods\n"
        "  that agreed;\n"
        "- support: critical tickets and the SLA breach rate per day;\n"
        "- data quality: events per layer, quarantine by reason per day, quality flags,\n"
        "  duplicates and the latest run's reconciliations (PASS/FAIL).\n"
        "\n"
        "The page goes to --out FILE, by default <lake>/report/finops-report.html; the command\n"
        "prints its path. The period is the whole gold range unless --from/--to say otherwise.\n"
        "With --org every figure is that organisation's (the data-quality counts stay the whole\n"
        "lake's). An empty lake, a lake with only a landing or a period without gold rows still\n"
        "gives a page, saying so (and so does this command, on stderr). Reads the lake only: no\n"
        "lock, no JVM; the carbon by region is aggregated from silver (the daily mart has no\n"
        "region).",
        "finops report --lake datalake --from 2025-08-01 --to 2025-08-31 --out august.html",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the HTML file to write (default: <lake>/{REPORT_FILE.as_posix()})",
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=iso_date,
        default=None,
        metavar="DATE",
        help="first day of the period, inclusive (default: the first usage date in gold)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=iso_date,
        default=None,
        metavar="DATE",
        help="last day of the period, inclusive (default: the last usage date in gold)",
    )
    parser.add_argument(
        "--org", default=None, metavar="ORG", help="one organisation (default: every one)"
    )
    parser.set_defaults(handler=run)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read(container: Container, table: Table, columns: tuple[str, ...] | None = None) -> list:
    lake = container.lake()
    return lake.read_table(table, columns) if lake.has_table(table) else []


def read_inputs(container: Container) -> ReportInputs:
    """The gold marts, the carbon-by-region rows (from silver), the quarantine and the run
    records, read through the container's lake and run log."""
    from finops_core import aggregate

    layout = container.layout()
    log = container.run_log()
    silver = _read(container, CARBON_BY_REGION.source, CARBON_BY_REGION.source_columns)
    return ReportInputs(
        lake=str(layout.root),
        has_landing=layout.landing.exists(),
        has_gold=container.lake().has_table(DAILY_USAGE.table),
        daily=_read(container, DAILY_USAGE.table),
        revenue=_read(container, REVENUE.table),
        tickets=_read(container, TICKETS.table),
        genai=_read(container, GENAI_TOKENS.table),
        anomalies=_read(container, COST_ANOMALIES.table),
        carbon=aggregate.aggregate(CARBON_BY_REGION, silver),
        quarantine=_read(container, QUARANTINE_EVENTS, ("reasons", "raw_record")),
        records=[record for run in log.run_ids() if (record := log.read(run)) is not None],
    )


def report_of(
    container: Container,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org: str | None = None,
) -> Report:
    """The report's figures over the container's lake."""
    if start is not None and end is not None and start > end:
        raise ConfigurationError(f"--from {start} is after --to {end}.")
    return build_report(read_inputs(container), start, end, org)


def figures_of(report: Report) -> dict[str, Figure]:
    """The report's charts as Plotly figures, by chart id (those with something to draw)."""
    from adapters.plotly.figures import figures

    return figures(report)


@attrs.frozen
class Written:
    path: Path
    bytes: int
    report: Report
    seconds: float


def write_report(
    container: Container,
    out: Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    org: str | None = None,
) -> Written:
    """Read the lake, compute the figures, write the page (default `default_path`)."""
    from adapters.plotly.report_page import write_page

    started = time.perf_counter()
    path = (out or default_path(container.layout())).absolute()
    _say(f"report: reading the gold marts and run records of {container.layout().root}")
    report = report_of(container, start, end, org)
    if report.notice is not None:
        _say(f"report: {report.notice}")
    else:
        _say(f"report: drawing the figures of {report.period}")
    try:
        size = write_page(report, path, container.clock().now())
    except OSError as error:
        if out is not None:
            raise
        raise StorageFailed(
            f"Cannot write the report into the lake at {path.parent} "
            f"({error.strerror or error}); write it elsewhere with --out FILE."
        ) from None
    return Written(path, size, report, time.perf_counter() - started)


def run(args: argparse.Namespace, container: Container) -> int:
    written = write_report(container, args.out, args.start, args.end, args.org)
    _say(f"report: wrote {written.bytes:,} bytes in {written.seconds:.1f} s")
    print(written.path)
    return 0
