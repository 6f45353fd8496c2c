"""The report as one self-contained HTML page: plotly.js inlined once in the head, each chart's
data inlined beside its container, no request to the network when the page is viewed.

Page text is HTML-escaped. Each headline figure carries its exact value for machines
(`data-figure="total_cost" data-value="148351.5759"`) beside the text for people
(`148,351.58 USD`); each chart sits in a `div[data-chart=<id>]`, or, with nothing to draw, a
`p[data-empty=<id>]` sentence says why.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

from adapters.plotly import formats
from adapters.plotly.figures import CHARTS, Chart
from finops_core.report import Headline, Period, Report

ANOMALIES_LISTED = 25  # rows of the anomaly table (the timeline shows every one)
CHART_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1rem 2rem 3rem; color: #222; }
header p { color: #555; margin: 0.2rem 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; margin-top: 2.2rem; }
.notice { background: #fff4e5; border: 1px solid #f0b35b; padding: 1rem 1.2rem;
          border-radius: 6px; font-size: 1.1rem; }
.headlines { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr));
             gap: 0.8rem; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 0.7rem 1rem; }
.figure h3 { font-size: 0.9rem; color: #555; margin: 0 0 0.3rem; font-weight: 600; }
.figure .value { font-size: 1.4rem; font-weight: 600; margin: 0; }
.figure .change { margin: 0.2rem 0 0; color: #555; font-size: 0.85rem; }
.chart { margin: 0.5rem 0 1rem; }
.empty { color: #666; font-style: italic; }
.note { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 0.3rem 0.7rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { color: #1a7f37; font-weight: 600; } .FAIL { color: #cf222e; font-weight: 600; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _change(figure: Headline, previous: Period | None) -> str:
    if figure.change is None:
        return f"no previous value to compare with ({previous}: 0)"
    was = formats.in_unit(figure.previous, figure.unit)
    return f"{formats.change(figure.change)} against {was} in {previous}"


def _headlines(report: Report) -> str:
    previous = report.period.previous() if report.period else None
    cards = []
    for figure in report.headlines:
        cards.append(
            f'<div class="figure" data-figure="{_e(figure.key)}" data-value="{figure.value!r}" '
            f'data-previous="{figure.previous!r}" data-unit="{_e(figure.unit)}">'
            f"<h3>{_e(figure.label)}</h3>"
            f'<p class="value">{_e(formats.in_unit(figure.value, figure.unit))}</p>'
            f'<p class="change">{_e(_change(figure, previous))}</p></div>'
        )
    note = (
        "Revenue is invoiced per month: net revenue and gross margin count the months whose "
        "last day lies in the period (the usage cost of those whole months)."
    )
    return (
        f'<section id="headlines"><h2>Headline figures</h2><div class="headlines">'
        f'{"".join(cards)}</div><p class="note">{_e(note)}</p></section>'
    )


def _chart(chart: Chart, report: Report, drawn: list[bool]) -> str:
    figure = chart.draw(report)
    if figure is None:
        return f'<p class="empty" data-empty="{_e(chart.id)}">{_e(chart.empty)}</p>'
    body = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{chart.id}",
        config=CHART_CONFIG,
        default_height=f"{figure.layout.height or 380}px",
    )
    drawn[0] = True
    return f'<div class="chart" data-chart="{_e(chart.id)}">{body}</div>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[tuple[str, bool]]], name: str) -> str:
    """An HTML table; each cell is (text, is_number)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="number">{_e(text)}</td>' if number else f"<td>{_e(text)}</td>"
            for text, number in row
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<table data-table="{_e(name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _anomaly_table(report: Report) -> str:
    if not report.anomalies:
        return ""
    shown = report.anomalies[:ANOMALIES_LISTED]
    rows = [
        [
            (str(row["usage_date"]), False),
            (str(row["org_id"]), False),
            (str(row["service"]), False),
            (formats.usd(cast(float, row["daily_cost_usd"])), True),
            (formats.usd(cast(float, row["expected_cost_usd"])), True),
            (formats.usd(cast(float, row["impact_usd"])), True),
            (", ".join(cast(Sequence[str], row["flagged_methods"])), False),
        ]
        for row in shown
    ]
    more = len(report.anomalies) - len(shown)
    tail = f'<p class="note">and {more:,} more on the timeline above.</p>' if more > 0 else ""
    return (
        f'<p class="note">{len(report.anomalies):,} flagged (org, service, day) rows, largest '
        "impact first:</p>"
        + _table(
            ("day", "organisation", "service", "cost", "expected", "impact", "methods that agreed"),
            rows,
            "anomalies",
        )
        + tail
    )


def _reconciliations(report: Report) -> str:
    if not report.reconciliations:
        return (
            '<p class="empty" data-empty="reconciliations">No run record with reconciliations.</p>'
        )
    rows = [
        [
            (check.name, False),
            (formats.number(float(check.left)) if check.left is not None else "n/a", True),
            (formats.number(float(check.right)) if check.right is not None else "n/a", True),
            ("PASS" if check.passed else "FAIL", False),
        ]
        for check in report.reconciliations
    ]
    table = _table(("reconciliation", "left", "right", "result"), rows, "reconciliations")
    table = table.replace("<td>PASS</td>", '<td class="PASS">PASS</td>').replace(
        "<td>FAIL</td>", '<td class="FAIL">FAIL</td>'
    )
    return f"<h3>Reconciliations of the latest run ({_e(report.reconciled_run)})</h3>{table}"


def _quality_notes(report: Report) -> str:
    notes = []
    if report.quarantine_undated:
        notes.append(
            f"{report.quarantine_undated:,} quarantined lines have no valid timestamp, so no "
            "day: they are counted in the events per layer, not by day."
        )
    if report.org:
        notes.append("Events per layer, quarantine and reconciliations are of the whole lake.")
    return "".join(f'<p class="note">{_e(n)}</p>' for n in notes)


def page_html(report: Report, generated: dt.datetime | None = None) -> str:
    """The whole page for `report`."""
    import plotly.offline

    drawn = [False]
    sections: list[str] = []
    if report.notice is None:
        sections.append(_headlines(report))
    by_section: dict[str, list[str]] = {}
    for chart in CHARTS:
        if report.notice is not None and chart.section != "Data quality":
            continue
        by_section.setdefault(chart.section, []).append(
            f"<h3>{_e(chart.title)}</h3>{_chart(chart, report, drawn)}"
        )
        if chart.id == "anomaly_timeline":
            by_section[chart.section].append(_anomaly_table(report))
    by_section.setdefault("Data quality", []).append(_quality_notes(report))
    by_section["Data quality"].append(_reconciliations(report))
    for section, parts in by_section.items():
        anchor = section.lower().replace(" ", "-")
        sections.append(
            f'<section id="{_e(anchor)}"><h2>{_e(section)}</h2>{"".join(parts)}</section>'
        )
    scope = f"organisation {report.org}" if report.org else "every organisation"
    period = f"period {report.period}" if report.period else "no period (no gold)"
    facts = [f"lake {report.lake}", period, scope]
    if report.gold is not None:
        facts.append(f"the gold holds {report.gold}")
    if generated is not None:
        facts.append(f"generated {generated.strftime('%Y-%m-%d %H:%M UTC')}")
    notice = (
        f'<section class="notice" data-notice="true"><p>{_e(report.notice)}</p></section>'
        if report.notice
        else ""
    )
    script = (
        ""
        if not drawn[0]
        else f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>FinOps report: {_e(period)}</title><style>{STYLE}</style>{script}</head>"
        f"<body><header><h1>Cloud Provider Analytics: FinOps report</h1>"
        f"<p>{_e(' · '.join(facts))}</p></header>{notice}{''.join(sections)}</body></html>\n"
    )


def write_page(report: Report, path: Path, generated: dt.datetime | None = None) -> int:
    """Write the page to `path` (its folder created; replaced atomically); bytes written."""
    text = page_html(report, generated)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    data = text.encode("utf-8")
    staging.write_bytes(data)
    staging.replace(path)
    return len(data)
