"""The report's charts as Plotly figures, each drawn from the figures of a
`finops_core.report.Report` (nothing here computes a figure: it only lays out the values).

A chart function returns None when its figures are empty: the page (and the notebook) then says
so in words instead of drawing empty axes. `CHARTS` lists them in the page's order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import attrs

from adapters.plotly.formats import COUNT_FORMAT, RATIO_FORMAT, USD_FORMAT
from finops_core.report import Report

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

TEMPLATE = "plotly_white"
HEIGHT = 380


@attrs.frozen
class Chart:
    """One chart of the page: its id (the container's `data-chart`), section, title, the
    sentence shown instead when it has nothing to draw, and the function that draws it."""

    id: str
    section: str
    title: str
    empty: str
    draw: Callable[[Report], Figure | None]


def _figure(title: str, y_title: str, y_format: str = COUNT_FORMAT, height: int = HEIGHT) -> Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(
        title={"text": title},
        template=TEMPLATE,
        height=height,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        legend={"orientation": "h", "y": -0.2},
        separators=".,",
    )
    figure.update_yaxes(title_text=y_title, tickformat=y_format)
    return figure


def _stacked_bars(
    figure: Figure, series: dict[str, tuple[list[object], list[float]]], hover: str
) -> Figure:
    """One bar trace per series name (in name order), stacked; `hover` is the hovertemplate
    after the series name."""
    import plotly.graph_objects as go

    for name in sorted(series):
        x, y = series[name]
        figure.add_trace(
            go.Bar(name=name, x=x, y=y, hovertemplate=f"{name}<br>{hover}<extra></extra>")
        )
    figure.update_layout(barmode="stack")
    return figure


def cost_by_service(report: Report) -> Figure | None:
    """Daily cost stacked by service."""
    if not report.cost_by_service_day:
        return None
    series: dict[str, tuple[list[object], list[float]]] = {}
    for point in report.cost_by_service_day:
        days, costs = series.setdefault(point.service, ([], []))
        days.append(point.usage_date)
        costs.append(point.cost_usd)
    figure = _figure("Cost by service per day", "cost (USD)")
    return _stacked_bars(figure, series, f"%{{x}}<br>%{{y:{USD_FORMAT}}} USD")


def cost_per_request(report: Report) -> Figure | None:
    import plotly.graph_objects as go

    shown = [s for s in report.cost_per_request if s.cost_per_request_usd is not None]
    if not shown:
        return None
    figure = _figure("Cost per request by service", "USD per request", RATIO_FORMAT)
    figure.add_trace(
        go.Bar(
            x=[s.service for s in shown],
            y=[s.cost_per_request_usd for s in shown],
            customdata=[[s.cost_usd, s.requests] for s in shown],
            hovertemplate=(
                f"%{{x}}<br>%{{y:{RATIO_FORMAT}}} USD per request<br>"
                f"%{{customdata[0]:{USD_FORMAT}}} USD over "
                f"%{{customdata[1]:{COUNT_FORMAT}}} requests<extra></extra>"
            ),
            marker_color="#4c78a8",
        )
    )
    return figure


def _org_bars(title: str, orgs: Sequence[str], values: Sequence[float], x_title: str) -> Figure:
    import plotly.graph_objects as go

    figure = _figure(title, "", height=max(HEIGHT, 40 + 28 * len(orgs)))
    figure.add_trace(
        go.Bar(
            x=list(values),
            y=list(orgs),
            orientation="h",
            hovertemplate=f"%{{y}}<br>%{{x:{USD_FORMAT}}} USD<extra></extra>",
            marker_color="#f58518",
        )
    )
    figure.update_yaxes(autorange="reversed", tickformat="")
    figure.update_xaxes(title_text=x_title, tickformat=COUNT_FORMAT)
    return figure


def top_orgs_by_cost(report: Report) -> Figure | None:
    if not report.top_by_cost:
        return None
    orgs = report.top_by_cost
    return _org_bars(
        f"Top {len(orgs)} organisations by cost",
        [o.org_id for o in orgs],
        [o.cost_usd for o in orgs],
        "cost (USD)",
    )


def top_orgs_by_growth(report: Report) -> Figure | None:
    if not report.top_by_growth or report.growth_halves is None:
        return None
    earlier, later = report.growth_halves
    orgs = report.top_by_growth
    return _org_bars(
        f"Top {len(orgs)} organisations by cost growth ({later} against {earlier})",
        [o.org_id for o in orgs],
        [o.growth_usd for o in orgs],
        "cost growth (USD)",
    )


def margin_by_month(report: Report) -> Figure | None:
    """Net revenue against usage cost per month (every org shown), and their margin."""
    import plotly.graph_objects as go

    if not report.month_totals:
        return None
    months = [m.month for m in report.month_totals]
    revenue = [m.net_revenue_usd for m in report.month_totals]
    cost = [m.usage_cost_usd for m in report.month_totals]
    margin = [m.margin_usd for m in report.month_totals]
    labels = [m.strftime("%Y-%m") for m in months]
    figure = _figure("Net revenue against usage cost per month", "USD")
    hover = f"%{{x}}<br>%{{y:{USD_FORMAT}}} USD<extra>%{{fullData.name}}</extra>"
    figure.add_trace(go.Bar(name="net revenue", x=labels, y=revenue, hovertemplate=hover))
    figure.add_trace(go.Bar(name="usage cost", x=labels, y=cost, hovertemplate=hover))
    figure.add_trace(
        go.Scatter(name="margin", x=labels, y=margin, mode="lines+markers", hovertemplate=hover)
    )
    figure.update_layout(barmode="group")
    figure.update_xaxes(type="category")
    return figure


def margin_by_org(report: Report) -> Figure | None:
    """The margin of each organisation and month, as a heatmap (loss red, profit blue)."""
    import plotly.graph_objects as go

    if not report.margins:
        return None
    months = sorted({m.month for m in report.margins})
    orgs = sorted({m.org_id for m in report.margins})
    margin = {(m.org_id, m.month): m.margin_usd for m in report.margins}
    figure = _figure(
        "Margin (net revenue less usage cost) per organisation and month",
        "",
        height=max(HEIGHT, 120 + 14 * len(orgs)),
    )
    figure.add_trace(
        go.Heatmap(
            x=[m.strftime("%Y-%m") for m in months],
            y=orgs,
            z=[[margin.get((org, month)) for month in months] for org in orgs],
            colorscale="RdBu",
            zmid=0,
            colorbar={"title": {"text": "USD"}, "tickformat": COUNT_FORMAT},
            hovertemplate=f"%{{y}} %{{x}}<br>margin %{{z:{USD_FORMAT}}} USD<extra></extra>",
        )
    )
    figure.update_xaxes(type="category")
    figure.update_yaxes(tickformat="", autorange="reversed")
    return figure


def _carbon_heatmap(report: Report, title: str, unit: str, attribute: str) -> Figure | None:
    import plotly.graph_objects as go

    values = {(c.service, c.region): getattr(c, attribute) for c in report.carbon}
    if not any(value is not None for value in values.values()):
        return None
    services = sorted({c.service for c in report.carbon})
    regions = sorted({c.region for c in report.carbon})
    figure = _figure(title, "service")
    figure.add_trace(
        go.Heatmap(
            x=regions,
            y=services,
            z=[[values.get((s, r)) for r in regions] for s in services],
            colorscale="Greens",
            colorbar={"title": {"text": unit}},
            hovertemplate=f"%{{y}} in %{{x}}<br>%{{z:{RATIO_FORMAT}}} {unit}<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="region", type="category")
    figure.update_yaxes(tickformat="", type="category")
    return figure


def carbon_per_usd(report: Report) -> Figure | None:
    return _carbon_heatmap(
        report, "kg CO2e per USD by service and region", "kg CO2e / USD", "kg_per_usd"
    )


def carbon_per_1k_requests(report: Report) -> Figure | None:
    return _carbon_heatmap(
        report,
        "kg CO2e per 1k requests by service and region",
        "kg CO2e / 1k requests",
        "kg_per_1k_requests",
    )


def anomaly_timeline(report: Report) -> Figure | None:
    """Each flagged (org, service, day) on its day, its height the impact over the expected."""
    import plotly.graph_objects as go

    if not report.anomalies:
        return None
    figure = _figure("Cost anomalies: impact over the expected cost, per day", "impact (USD)")
    services = sorted({str(row["service"]) for row in report.anomalies})
    for service in services:
        rows = [row for row in report.anomalies if row["service"] == service]
        figure.add_trace(
            go.Scatter(
                name=service,
                x=[row["usage_date"] for row in rows],
                y=[row["impact_usd"] for row in rows],
                mode="markers",
                marker={"size": 9, "opacity": 0.8},
                customdata=[
                    [
                        row["org_id"],
                        row["daily_cost_usd"],
                        row["expected_cost_usd"],
                        ", ".join(cast(Sequence[str], row["flagged_methods"])),
                    ]
                    for row in rows
                ],
                hovertemplate=(
                    f"{service} of %{{customdata[0]}} on %{{x}}<br>"
                    f"cost %{{customdata[1]:{USD_FORMAT}}} USD, expected "
                    f"%{{customdata[2]:{USD_FORMAT}}} USD<br>"
                    f"impact %{{y:{USD_FORMAT}}} USD<br>methods: %{{customdata[3]}}<extra></extra>"
                ),
            )
        )
    return figure


def support_per_day(report: Report) -> Figure | None:
    """Critical tickets per day (bars) and the SLA breach rate over every ticket (line)."""
    import plotly.graph_objects as go

    if not report.support:
        return None
    days = [row["ticket_date"] for row in report.support]
    figure = _figure("Critical tickets and SLA breach rate per day", "critical tickets", ",d")
    figure.add_trace(
        go.Bar(
            name="critical tickets",
            x=days,
            y=[row["critical_tickets"] for row in report.support],
            hovertemplate="%{x}<br>%{y:,d} critical tickets<extra></extra>",
            marker_color="#e45756",
        )
    )
    figure.add_trace(
        go.Scatter(
            name="SLA breach rate",
            x=days,
            y=[row["sla_breach_rate"] for row in report.support],
            yaxis="y2",
            mode="lines",
            line={"color": "#54a24b"},
            hovertemplate="%{x}<br>SLA breached: %{y:.1%}<extra></extra>",
        )
    )
    most = max(int(cast(int, row["critical_tickets"])) for row in report.support)
    figure.update_yaxes(dtick=max(1, math.ceil(most / 6)), rangemode="tozero")
    figure.update_layout(
        yaxis2={
            "title": {"text": "SLA breach rate"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "rangemode": "tozero",
        }
    )
    return figure


def events_per_layer(report: Report) -> Figure | None:
    import plotly.graph_objects as go

    if not report.layers:
        return None
    figure = _figure(f"Events per layer (run {report.layers_run})", "rows", COUNT_FORMAT)
    figure.add_trace(
        go.Bar(
            x=[layer.layer for layer in report.layers],
            y=[layer.rows for layer in report.layers],
            text=[f"{layer.rows:,.0f}" for layer in report.layers],
            textposition="outside",
            hovertemplate=f"%{{x}}: %{{y:{COUNT_FORMAT}}}<extra></extra>",
            marker_color="#72b7b2",
        )
    )
    figure.update_xaxes(type="category")
    return figure


def quarantine_per_day(report: Report) -> Figure | None:
    if not report.quarantine:
        return None
    series: dict[str, tuple[list[object], list[float]]] = {}
    for entry in report.quarantine:
        days, events = series.setdefault(entry.reason, ([], []))
        days.append(entry.day)
        events.append(entry.events)
    figure = _figure("Quarantined events per day, by reason", "events", COUNT_FORMAT)
    return _stacked_bars(figure, series, "%{x}: %{y:,d} events")


def quality_flags(report: Report) -> Figure | None:
    import plotly.graph_objects as go

    if not report.flags:
        return None
    figure = _figure("Events carrying each quality flag", "events", COUNT_FORMAT)
    figure.add_trace(
        go.Bar(
            x=[flag for flag, _ in report.flags],
            y=[n for _, n in report.flags],
            hovertemplate="%{x}: %{y:,d} events<extra></extra>",
            marker_color="#b279a2",
        )
    )
    figure.update_xaxes(type="category")
    return figure


CHARTS: tuple[Chart, ...] = (
    Chart("cost_by_service", "Cost", "Cost by service", "No cost in the period.", cost_by_service),
    Chart(
        "cost_per_request",
        "Cost",
        "Cost per request",
        "No requests in the period: no cost per request.",
        cost_per_request,
    ),
    Chart(
        "top_orgs_by_cost", "Organisations", "By cost", "No cost in the period.", top_orgs_by_cost
    ),
    Chart(
        "top_orgs_by_growth",
        "Organisations",
        "By cost growth",
        "No organisation's cost grew from the period's first half to its second.",
        top_orgs_by_growth,
    ),
    Chart(
        "margin_by_month",
        "Revenue and margin",
        "Per month",
        "No month ends in the period: no revenue or margin to show.",
        margin_by_month,
    ),
    Chart(
        "margin_by_org",
        "Revenue and margin",
        "Per organisation and month",
        "No month ends in the period: no revenue or margin to show.",
        margin_by_org,
    ),
    Chart(
        "carbon_per_usd",
        "Carbon",
        "Per USD",
        "No carbon figures in the period (schema-v1 events carry none, or silver is missing).",
        carbon_per_usd,
    ),
    Chart(
        "carbon_per_1k_requests",
        "Carbon",
        "Per 1k requests",
        "No carbon figures in the period (schema-v1 events carry none, or silver is missing).",
        carbon_per_1k_requests,
    ),
    Chart(
        "anomaly_timeline",
        "Anomalies",
        "Timeline",
        "The anomaly mart flags no cost in the period.",
        anomaly_timeline,
    ),
    Chart(
        "support_per_day",
        "Support",
        "Critical tickets and SLA breaches",
        "No support tickets in the period.",
        support_per_day,
    ),
    Chart(
        "events_per_layer",
        "Data quality",
        "Events per layer",
        "No run record of a batch: no counts per layer.",
        events_per_layer,
    ),
    Chart(
        "quarantine_per_day",
        "Data quality",
        "Quarantine by reason per day",
        "No event of the period was quarantined.",
        quarantine_per_day,
    ),
    Chart(
        "quality_flags",
        "Data quality",
        "Quality flags",
        "No event of the period carries a quality flag.",
        quality_flags,
    ),
)


def chart(chart_id: str) -> Chart:
    for candidate in CHARTS:
        if candidate.id == chart_id:
            return candidate
    raise KeyError(f"no chart {chart_id!r}; the charts are {', '.join(c.id for c in CHARTS)}")


def figures(report: Report) -> dict[str, Figure]:
    """Every chart that has something to draw, by chart id, in the page's order."""
    drawn = {c.id: c.draw(report) for c in CHARTS}
    return {chart_id: figure for chart_id, figure in drawn.items() if figure is not None}
