"""`finops report` on the real dataset, opened in a real headless Chromium: the page loads with
no console error and no request to the network, every chart container holds rendered marks,
and the headline figures read back from the DOM equal the gold sums of the same period,
computed here straight from the lake's gold tables with pyarrow."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.plotly.figures import CHARTS
from adapters.plotly.report_page import ANOMALIES_LISTED
from entrypoints.cli import main
from finops_core.anomaly import COST_ANOMALIES
from finops_core.marts import DAILY_USAGE, GENAI_TOKENS, REVENUE
from tests.browser import Chromium, chromium_fixture  # noqa: F401 (the `chromium` fixture)

pytestmark = pytest.mark.slow

MOST_BYTES = 8_000_000  # "a few MB at most": plotly.js is about 4.8 MB of it
# Rendered marks in a Plotly chart: a trace's drawn paths (bars, points, lines) or a heatmap's
# image.
MARKS = """(chart) => [...chart.querySelectorAll(
    '.main-svg g.trace path, .main-svg g.hm image, .main-svg g.trace image')]
  .filter((mark) => (mark.getAttribute('d') || mark.getAttribute('href') || '').length > 2)
  .length"""
HEADLINES = """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(
    (card) => [card.dataset.figure, {value: Number(card.dataset.value),
      previous: Number(card.dataset.previous), unit: card.dataset.unit,
      text: card.querySelector('.value').textContent}]))"""


@pytest.fixture(scope="module")
def lake(real_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real dataset landed and batched by the memory engine, once for the module."""
    import shutil

    root = tmp_path_factory.mktemp("report") / "lake"
    shutil.copytree(real_landing, root / "landing")
    assert main(["batch", "--engine", "memory", "--lake", str(root)]) == 0
    return root


def _gold(lake: Path, name: str) -> Any:
    from deltalake import DeltaTable

    return DeltaTable(str(lake / "gold" / name)).to_pyarrow_table()


def _sum(table: Any, column: str, mask: Any) -> float:
    import pyarrow.compute as pc

    total = pc.sum(table.filter(mask)[column]).as_py()
    return float(total or 0.0)


def _between(table: Any, column: str, start: dt.date, end: dt.date) -> Any:
    import pyarrow.compute as pc

    return pc.and_(pc.greater_equal(table[column], start), pc.less_equal(table[column], end))


def _month_ends(table: Any, column: str) -> list[dt.date]:
    return [
        day.replace(day=calendar.monthrange(day.year, day.month)[1])
        for day in table[column].to_pylist()
    ]


def _expected(lake: Path, start: dt.date, end: dt.date, org: str | None) -> dict[str, float]:
    """The headline figures of start..end from the gold tables (revenue: the months whose
    last day is in the period, and the usage cost of those whole months)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    daily = _gold(lake, DAILY_USAGE.name)
    revenue = _gold(lake, REVENUE.name)
    genai = _gold(lake, GENAI_TOKENS.name)
    if org is not None:
        daily, revenue, genai = (
            t.filter(pc.equal(t["org_id"], org)) for t in (daily, revenue, genai)
        )
    in_days = _between(daily, "usage_date", start, end)
    cost = _sum(daily, "daily_cost_usd", in_days)
    requests = _sum(daily, "requests", in_days)
    month_days = daily.append_column(
        "month_end", pa.array(_month_ends(daily, "usage_date"), pa.date32())
    )
    months = revenue.append_column(
        "month_end", pa.array(_month_ends(revenue, "month"), pa.date32())
    )
    net = _sum(months, "net_revenue_usd", _between(months, "month_end", start, end))
    usage_of_months = _sum(
        month_days, "daily_cost_usd", _between(month_days, "month_end", start, end)
    )
    return {
        "total_cost": cost,
        "requests": requests,
        "cost_per_1k_requests": cost / requests * 1000 if requests else 0.0,
        "carbon_kg": _sum(daily, "carbon_kg", in_days),
        "genai_tokens": _sum(genai, "total_tokens", _between(genai, "usage_date", start, end)),
        "net_revenue": net,
        "gross_margin": net - usage_of_months,
    }


def _report(lake: Path, out: Path, *args: str) -> Path:
    assert main(["report", "--lake", str(lake), "--out", str(out), *args]) == 0
    assert out.is_file() and 1_000_000 < out.stat().st_size < MOST_BYTES
    return out


def _people(value: float, unit: str) -> str:
    if unit == "USD":
        return f"{value:,.2f} USD"
    if unit == "kg CO2e":
        return f"{value:,.3f} kg CO2e"
    return f"{value:,.0f} {unit}"


def _check_headlines(
    shown: dict[str, Any], now: dict[str, float], before: dict[str, float]
) -> None:
    assert set(shown) == set(now)
    for key, figure in shown.items():
        assert figure["value"] == pytest.approx(now[key], rel=1e-9, abs=1e-6), key
        assert figure["previous"] == pytest.approx(before[key], rel=1e-9, abs=1e-6), key
        assert figure["text"] == _people(now[key], figure["unit"]), key


def test_the_report_opens_in_chromium_with_every_chart_drawn_and_the_gold_sums_as_headlines(
    lake: Path, tmp_path: Path, chromium: Chromium, capsys: pytest.CaptureFixture[str]
) -> None:
    page_file = _report(lake, tmp_path / "finops-report.html")
    assert capsys.readouterr().out.strip() == str(page_file)
    days = _gold(lake, DAILY_USAGE.name)["usage_date"].to_pylist()
    start, end = min(days), max(days)
    length = (end - start).days + 1
    before = (start - dt.timedelta(days=length), start - dt.timedelta(days=1))
    with chromium.open(page_file) as visit:
        page = visit.page
        charts = page.query_selector_all("[data-chart]")
        drawn = {chart.get_attribute("data-chart"): chart.evaluate(MARKS) for chart in charts}
        shown = page.evaluate(HEADLINES)
        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot of the report: {screenshot}")
        assert visit.errors == []
        assert visit.requests == []
    # The real data has something for every chart, so every one is drawn, each with marks.
    assert list(drawn) == [chart.id for chart in CHARTS]
    assert all(marks > 0 for marks in drawn.values()), drawn
    _check_headlines(shown, _expected(lake, start, end, None), _expected(lake, *before, None))
    assert screenshot.stat().st_size > 50_000


def test_one_organisations_month_shows_its_own_gold_sums_against_the_month_before(
    lake: Path, tmp_path: Path, chromium: Chromium
) -> None:
    import pyarrow.compute as pc

    daily = _gold(lake, DAILY_USAGE.name)
    costs = daily.group_by("org_id").aggregate([("daily_cost_usd", "sum")]).to_pylist()
    org = max(costs, key=lambda row: row["daily_cost_usd_sum"])["org_id"]
    start, end = dt.date(2025, 8, 1), dt.date(2025, 8, 31)
    page_file = _report(
        lake, tmp_path / "august.html", "--from", str(start), "--to", str(end), "--org", org
    )
    with chromium.open(page_file) as visit:
        shown = visit.page.evaluate(HEADLINES)
        text = visit.page.inner_text("header")
        rows = visit.page.query_selector_all("table[data-table=anomalies] tbody tr")
        anomalies = [row.inner_text() for row in rows]
        assert visit.errors == []
    assert f"organisation {org}" in text and "2025-08-01 .. 2025-08-31" in text
    previous = (dt.date(2025, 7, 1), dt.date(2025, 7, 31))
    _check_headlines(shown, _expected(lake, start, end, org), _expected(lake, *previous, org))
    # The anomaly table lists the org's flagged rows of August (at most the table's length).
    scored = _gold(lake, COST_ANOMALIES.table.name)
    flagged = scored.filter(
        pc.and_(
            pc.and_(pc.equal(scored["org_id"], org), scored["is_anomaly"]),
            _between(scored, "usage_date", start, end),
        )
    )
    assert len(anomalies) == min(flagged.num_rows, ANOMALIES_LISTED)
    assert all(org in row for row in anomalies)


def test_the_demo_writes_the_report_into_the_lake_and_prints_its_path(
    real_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    assert main(["demo", "--engine", "memory", "--lake", str(lake), "--zip", str(real_zip)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    page = (lake / "report" / "finops-report.html").absolute()
    assert last == f"report: {page}"
    text = page.read_text(encoding="utf-8")
    assert re.findall(r'data-chart="([a-z_0-9]+)"', text) == [chart.id for chart in CHARTS]
    assert '<td class="FAIL">' not in text and '<td class="PASS">' in text
