"""The report's figures (`finops_core.report`) on hand-made mart rows, each expected value worked
out by hand; and `finops report` on lakes that have nothing to chart, which still get a page
saying so (no traceback, no empty axes). No browser here: the page's text is read as HTML."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from adapters.plotly.figures import CHARTS
from adapters.plotly.report_page import page_html
from entrypoints.cli import main
from finops_core import aggregate
from finops_core.report import (
    CARBON_BY_REGION,
    Period,
    ReportInputs,
    build_report,
    carbon,
    layer_counts,
    org_costs,
    quarantine_by_day,
    support,
    top_by_growth,
)
from finops_core.runs import RunRecord, StageResult

JUL, AUG = dt.date(2025, 7, 1), dt.date(2025, 8, 1)


def _day(month: dt.date, day: int) -> dt.date:
    return month.replace(day=day)


def _daily(org: str, day: dt.date, service: str, cost: float, requests: float, **more: object):
    row: dict[str, object] = {
        "org_id": org,
        "usage_date": day,
        "service": service,
        "daily_cost_usd": cost,
        "requests": requests,
        "carbon_kg": 1.0,
        "genai_tokens": None,
        "quality_flags": {},
    }
    row.update(more)
    return row


def _revenue(org: str, month: dt.date, net: float) -> dict[str, object]:
    return {
        "org_id": org,
        "month": month,
        "currency": "USD",
        "fx_applied": 1.0,
        "subtotal_usd": net,
        "credits_usd": 0.0,
        "taxes_usd": 0.0,
        "net_revenue_usd": net,
    }


def _inputs(**tables: object) -> ReportInputs:
    return ReportInputs(lake="lake", has_landing=True, has_gold=True, **tables)  # type: ignore[arg-type]


# ---- the period and the headline figures ---------------------------------------------------------


def test_a_period_s_previous_period_has_its_length_and_ends_the_day_before_it_starts() -> None:
    august = Period(AUG, _day(AUG, 31))
    assert august.days == 31
    assert august.previous() == Period(dt.date(2025, 7, 1), dt.date(2025, 7, 31))
    assert august.halves() == (Period(AUG, _day(AUG, 15)), Period(_day(AUG, 17), _day(AUG, 31)))
    assert Period(AUG, AUG).halves() is None
    with pytest.raises(ValueError, match="ends on or after its start"):
        Period(_day(AUG, 2), AUG)


def test_the_headline_figures_are_the_period_s_sums_each_against_the_previous_period() -> None:
    inputs = _inputs(
        daily=[
            _daily("org_a", _day(AUG, 3), "compute", 10.0, 400.0, carbon_kg=2.5),
            _daily("org_b", _day(AUG, 20), "storage", 30.0, 100.0, carbon_kg=None),
            _daily("org_a", _day(JUL, 10), "compute", 8.0, 200.0, carbon_kg=0.5),
            _daily("org_a", dt.date(2025, 9, 1), "compute", 99.0, 1.0),  # after the period
        ],
        revenue=[_revenue("org_a", AUG, 100.0), _revenue("org_b", AUG, 5.0)]
        + [_revenue("org_a", JUL, 20.0)],
        genai=[{"org_id": "org_a", "usage_date": _day(AUG, 3), "total_tokens": 1500}],
    )
    report = build_report(inputs, AUG, _day(AUG, 31))
    figures = {key: (h.value, h.previous) for key, h in report.headline.items()}
    assert figures == {
        "total_cost": (40.0, 8.0),
        "requests": (500.0, 200.0),
        "cost_per_1k_requests": (80.0, 40.0),  # 40 / 500 * 1000 ; 8 / 200 * 1000
        "carbon_kg": (2.5, 0.5),  # a null carbon (schema v1) is unknown, not 0
        "genai_tokens": (1500.0, 0.0),
        "net_revenue": (105.0, 20.0),
        "gross_margin": (65.0, 12.0),  # 105 - 40 ; 20 - 8
    }
    assert report.headline["total_cost"].change == pytest.approx(4.0)  # (40 - 8) / 8
    assert report.headline["genai_tokens"].change is None  # nothing to compare with
    only_b = build_report(inputs, AUG, _day(AUG, 31), org="org_b").headline
    assert (only_b["total_cost"].value, only_b["gross_margin"].value) == (30.0, -25.0)


def test_a_month_counts_in_the_period_its_last_day_lies_in_with_the_cost_of_the_whole_month() -> (
    None
):
    inputs = _inputs(
        daily=[
            _daily("org_a", _day(JUL, 2), "compute", 3.0, 1.0),
            _daily("org_a", _day(JUL, 20), "compute", 4.0, 1.0),
            _daily("org_a", _day(AUG, 5), "compute", 50.0, 1.0),
        ],
        revenue=[_revenue("org_a", JUL, 10.0), _revenue("org_a", AUG, 70.0)],
    )
    report = build_report(inputs, _day(JUL, 15), _day(AUG, 14))  # July ends in it, August not
    assert report.headline["net_revenue"].value == 10.0
    assert report.headline["gross_margin"].value == 3.0  # 10 - (3 + 4): all of July's cost
    assert report.headline["total_cost"].value == 54.0  # 4 + 50: the period's own days
    ((margin),) = report.margins
    assert (margin.org_id, margin.month, margin.margin_usd) == ("org_a", JUL, 3.0)


def test_the_organisations_grow_from_the_period_s_first_half_to_its_second() -> None:
    daily = [
        _daily("org_up", _day(AUG, 1), "compute", 1.0, 1.0),
        _daily("org_up", _day(AUG, 4), "compute", 6.0, 1.0),
        _daily("org_down", _day(AUG, 1), "compute", 9.0, 1.0),
        _daily("org_down", _day(AUG, 4), "compute", 2.0, 1.0),
        _daily("org_new", _day(AUG, 3), "compute", 100.0, 1.0),  # the middle day: no half
        _daily("org_new", _day(AUG, 5), "compute", 3.0, 1.0),
    ]
    orgs, halves = org_costs(daily, Period(AUG, _day(AUG, 5)))
    assert halves == (Period(AUG, _day(AUG, 2)), Period(_day(AUG, 4), _day(AUG, 5)))
    assert [(o.org_id, o.growth_usd) for o in top_by_growth(orgs)] == [
        ("org_up", 5.0),
        ("org_new", 3.0),
    ]
    assert {o.org_id: o.cost_usd for o in orgs} == {
        "org_up": 7.0,
        "org_down": 11.0,
        "org_new": 103.0,
    }


def test_carbon_per_usd_and_per_1k_requests_by_service_and_region_from_silver_events() -> None:
    def event(service: str, region: str | None, metric: str, value: float, cost: float, kg):
        return {
            "org_id": "org_a",
            "usage_date": AUG,
            "service": service,
            "region": region,
            "metric": metric,
            "value": value,
            "cost_usd_increment": cost,
            "carbon_kg": kg,
        }

    rows = aggregate.aggregate(
        CARBON_BY_REGION,
        [
            event("compute", "eu-west", "requests", 2000.0, 4.0, 1.0),
            event("compute", "eu-west", "cpu_hours", 5.0, 6.0, 3.0),
            event("compute", None, "requests", 500.0, 1.0, 0.25),
            event("storage", "eu-west", "requests", 10.0, 1.0, None),  # schema v1: no carbon
        ],
    )
    found = {
        (c.service, c.region): (c.kg_per_usd, c.kg_per_1k_requests)
        for c in carbon(rows, Period(AUG, AUG))
    }
    assert found == {
        ("compute", "eu-west"): (0.4, 2.0),  # 4 kg / 10 USD ; 4 kg / 2k requests
        ("compute", "unknown"): (0.25, 0.5),
    }


def test_quarantined_lines_count_per_event_day_and_reason_and_lines_without_a_day_apart() -> None:
    def line(timestamp: str, *reasons: str) -> dict[str, object]:
        return {"reasons": list(reasons), "raw_record": f'{{"timestamp": "{timestamp}"}}'}

    rows = [
        line("2025-08-01T23:30:00-02:00", "cost_below_min", "org_unknown"),  # UTC Aug 2
        line("2025-08-02T10:00:00Z", "cost_below_min"),
        line("2025-08-01 10:00:00", "timestamp_invalid"),
        {"reasons": ["malformed_record"], "raw_record": "{not json"},
        line("2025-09-01T00:00:00Z", "cost_below_min"),  # outside the period
    ]
    found, undated = quarantine_by_day(rows, Period(AUG, _day(AUG, 31)))
    assert [(q.day, q.reason, q.events) for q in found] == [
        (_day(AUG, 2), "cost_below_min", 2),
        (_day(AUG, 2), "org_unknown", 1),
    ]
    assert undated == 2


def test_support_per_day_totals_every_severity_and_counts_the_critical_tickets_apart() -> None:
    def tickets(day: int, severity: str, count: int, breached: int) -> dict[str, object]:
        return {
            "org_id": "org_a",
            "ticket_date": _day(AUG, day),
            "severity": severity,
            "tickets": count,
            "sla_breached": breached,
        }

    rows = [tickets(1, "critical", 2, 1), tickets(1, "low", 2, 0), tickets(3, "low", 1, 1)]
    found = support(rows, Period(AUG, _day(AUG, 2)))
    assert [dict(day) for day in found] == [
        {
            "ticket_date": AUG,
            "critical_tickets": 2,
            "tickets": 4,
            "sla_breached": 1,
            "sla_breach_rate": 0.25,
        }
    ]


def test_events_per_layer_come_from_the_latest_finished_run_that_built_silver() -> None:
    def record(run_id: str, finished: bool, silver_rows: int) -> RunRecord:
        stages = (
            StageResult("bronze_events", {"landing_lines": 10}),
            StageResult(
                "silver", {"bronze_rows": 10, "silver_rows": silver_rows, "quarantined": 1}
            ),
            StageResult("gold", {"gold_rows": 3}),
        )
        started = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)
        return RunRecord(run_id, "batch", "memory", started, stages, (), finished=finished)

    layers, run = layer_counts(
        [record("r1", True, 9), record("r2", True, 8), record("r3", False, 7)]
    )
    assert run == "r2"
    assert [(layer.layer, layer.rows) for layer in layers] == [
        ("landing lines", 10),
        ("bronze rows", 10),
        ("silver rows", 8),
        ("quarantined", 1),
        ("gold rows", 3),
    ]


def test_the_page_escapes_every_text_it_shows() -> None:
    hostile = "<script>alert('org')</script>"
    inputs = _inputs(daily=[_daily(hostile, AUG, "<b>svc</b>", 5.0, 10.0)])
    page = page_html(build_report(inputs, org=hostile))
    assert hostile not in page and "<b>svc</b>" not in page
    assert "organisation &lt;script&gt;alert(&#x27;org&#x27;)&lt;/script&gt;" in page  # header
    assert "\\u003cscript\\u003e" in page  # in the charts' JSON, escaped by Plotly
    assert 'data-figure="total_cost" data-value="5.0"' in page


# ---- finops report on lakes with nothing to chart ------------------------------------------------


def _report(lake: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    out = lake.parent / "page.html"
    assert main(["report", "--lake", str(lake), "--out", str(out), *args]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out)
    return out.read_text(encoding="utf-8"), printed.err, printed.out


def _drawn(page: str) -> list[str]:
    return re.findall(r'data-chart="([a-z_0-9]+)"', page)


def test_an_empty_lake_gives_a_page_that_says_it_is_empty(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, err, _ = _report(cli / "lake", capsys=capsys)
    assert "is empty: it has no landing and no gold" in page
    assert "is empty: it has no landing and no gold" in err
    assert _drawn(page) == [] and "data-figure" not in page
    assert "Plotly.newPlot" not in page and len(page) < 50_000  # no chart, so no plotly.js


def test_a_lake_with_only_a_landing_gives_a_page_that_says_to_run_the_batch(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = cli / "lake"
    assert main(["generate", "--scale", "0.01", "--lake", str(lake)]) == 0
    capsys.readouterr()
    page, err, _ = _report(lake, capsys=capsys)
    assert "has a landing but no gold rows yet: run `finops batch`" in page
    assert "has a landing but no gold rows yet" in err
    assert _drawn(page) == [] and "data-figure" not in page


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated landing batched by the memory engine, once for the module."""
    lake = tmp_path_factory.mktemp("small") / "lake"
    assert main(["generate", "--scale", "0.02", "--seed", "5", "--lake", str(lake)]) == 0
    assert main(["batch", "--engine", "memory", "--lake", str(lake)]) == 0
    return lake


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--from", "2030-01-01", "--to", "2030-01-31"),
            "holds no rows from 2030-01-01 .. 2030-01-31",
        ),
        (("--from", "2030-01-01"), "holds no rows from 2030-01-01 .. 2030-01-01"),
        (("--org", "org_nobody"), "holds no rows of the organisation org_nobody"),
    ],
)
def test_a_period_or_an_org_without_gold_rows_gives_a_page_that_says_so(
    small_lake: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    says: str,
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(small_lake, lake)
    capsys.readouterr()
    page, err, _ = _report(lake, *args, capsys=capsys)
    assert says in page and says in err
    assert "data-figure" not in page
    # Only the lake-wide data-quality charts are drawn, each from the run record's counts.
    quality = [chart.id for chart in CHARTS if chart.section == "Data quality"]
    assert set(_drawn(page)) <= set(quality) and "events_per_layer" in _drawn(page)
    assert '<td class="PASS">' in page and '<td class="FAIL">' not in page  # the batch's checks


def test_the_notebook_shows_the_very_charts_the_page_draws(
    small_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from entrypoints import notebook

    report = notebook.report(small_lake)
    charts = notebook.report_charts(report)
    page = page_html(report)
    assert list(charts) == _drawn(page) and len(charts) >= len(CHARTS) - 2
    cost = charts["cost_by_service"]
    assert {trace.name for trace in cost.data} == {p.service for p in report.cost_by_service_day}
    assert sum(sum(trace.y) for trace in cost.data) == pytest.approx(
        report.headline["total_cost"].value
    )
    written = notebook.write_report(small_lake, tmp_path / "nb.html")
    assert written == tmp_path / "nb.html" and _drawn(written.read_text()) == list(charts)


def test_the_report_refuses_a_period_that_ends_before_it_starts(
    small_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", "--lake", str(small_lake), "--from", "2025-08-02", "--to", "2025-08-01"])
    assert code == 2
    assert "--from 2025-08-02 is after --to 2025-08-01" in capsys.readouterr().err


def test_the_report_help_says_what_the_page_shows_and_its_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "whole gold range unless --from/--to" in text
    assert "<lake>/report/finops-report.html" in text
    for section in ("headline figures", "carbon", "anomaly", "SLA breach rate", "reconciliations"):
        assert section in text
