"""`finops demo` end to end, as a user runs it: a fresh lake (a process of its own, its own JVM),
then the same command again (in this process, on the test run's Spark session: the rerun check
needs no second JVM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.lake.delta import DeltaLake
from adapters.sqlite.serving import SqliteServingStore
from entrypoints.app import DEMO_ANOMALIES
from entrypoints.cli import main
from finops_core import queries
from finops_core.lake import LakeLayout
from finops_core.marts import DAILY_USAGE

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def finops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_demo_lands_streams_batches_serves_and_passes_its_audit_then_reruns_idempotently(
    real_zip: Path, tmp_path: Path, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    first = finops(
        "demo", "--lake", str(lake), "--zip", str(real_zip), cwd=Path(__file__).resolve().parents[1]
    )
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    marks = ("Q1:", "Q2:", "Q3:", "Q4:", "Q5:", "Cost anomalies of ", "audit:")
    q1, q2, q3, q4, q5, anomalies = (
        out.split(marks[n], 1)[1].split(marks[n + 1], 1)[0] for n in range(6)
    )
    assert len([line for line in q1.splitlines() if line.startswith("2025-")]) > 0
    assert len([line for line in q2.splitlines()[3:] if line.strip()]) == 5
    # Tickets per day, the org's three monthly invoices, its GenAI days: each a table of rows.
    assert len([line for line in q3.splitlines() if line.startswith("2025-")]) > 0
    assert len([line for line in q4.splitlines() if " 2025-" in line]) == 3
    assert len([line for line in q5.splitlines() if line.startswith("2025-")]) > 0
    # The org's largest anomalies as the store answers them, with their flagged methods.
    org = anomalies.split(",", 1)[0]
    assert org == q1.split("for ", 1)[1].split(",", 1)[0]
    with SqliteServingStore(LakeLayout(lake).serving_sqlite, create_schema=False) as store:
        largest = queries.anomalies(store, org_id=org, limit=DEMO_ANOMALIES)
    assert largest, "the costliest org of the real data has anomalies"
    shown = [line.split() for line in anomalies.splitlines() if line.startswith("2025-")]
    assert [(row[0], row[2], row[-1]) for row in shown] == [
        (str(r["usage_date"]), r["service"], ",".join(r["flagged_methods"]))  # type: ignore[arg-type]
        for r in largest
    ]
    audit = out.split("audit:", 1)[1]
    record = json.loads(sorted((lake / "_runs").glob("*-demo.json"))[-1].read_text())
    assert {check["name"] for check in record["reconciliations"]} == {
        "streamed lines = bronze rows + malformed + duplicates dropped + blank lines",
        "bronze = silver + quarantine + duplicates",
        "silver cost = gold cost (to the cent)",
        "gold keys unique",
        "serving rows = gold rows",
        "serving rows = rows loaded",
        "cost anomaly rows = gold rows",
        "revenue rows = invoices",
        *(
            f"{mart}: {check}"
            for mart, checks in {
                "revenue_by_org_month": (
                    "source rows kept = rows counted",
                    *(
                        f"{n} = {n} summed over its source rows"
                        for n in ("subtotal_usd", "credits_usd", "taxes_usd", "net_revenue_usd")
                    ),  # noqa: E501
                ),
                "tickets_by_org_date": ("source rows kept = rows counted",),
                "genai_tokens_by_org_date": (
                    "source rows kept = rows counted",
                    "total_tokens = genai_tokens summed over its source rows",
                    "genai_cost_usd = cost_usd_increment summed over its source rows",
                ),
            }.items()
            for check in checks
        ),
    }
    assert all(check["passed"] for check in record["reconciliations"])
    assert audit.count("PASS") == len(record["reconciliations"]) and "FAIL" not in audit
    assert record["kind"] == "demo" and record["engine"] == "spark"
    stages = {stage["stage"]: stage for stage in record["stages"]}
    assert stages["stream"]["counts"]["landing_lines"] == 43_200
    assert stages["silver"]["counts"]["silver_rows"] == 42_989
    assert stages["gold"]["counts"]["gold_rows"] == 11_050
    # Every served mart: daily usage, revenue, tickets, GenAI tokens and the cost anomalies
    # (README's row counts).
    assert stages["serving"]["counts"]["serving_rows"] == 11_050 + 240 + 984 + 848 + 208
    gold = DeltaLake(LakeLayout(lake)).read_table(DAILY_USAGE.table)
    assert len(gold) == 11_050

    capsys.readouterr()
    assert main(["demo", "--lake", str(lake), "--zip", str(real_zip)]) == 0
    second = capsys.readouterr()
    assert "already landed" in second.err
    assert "stream: skipped (no new landing files" in second.err
    assert second.out.split("audit:", 1)[1].count("PASS") == len(record["reconciliations"])
    assert "FAIL" not in second.out.split("audit:", 1)[1]
    assert DeltaLake(LakeLayout(lake)).read_table(DAILY_USAGE.table) == gold
    assert spark.range(2).count() == 2  # the rerun borrowed the test run's session
