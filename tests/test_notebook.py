"""The notebook runs headless, top to bottom, on a synthetic landing in a temporary lake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finops_core.gold import GOLD_TABLES
from finops_core.serving import ANOMALIES_BY_DAY, SERVING_TABLES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "cloud_provider_analytics.ipynb"

pytestmark = pytest.mark.slow


def _ensure_kernel() -> None:
    """A python3 kernelspec (installed into this venv when missing); jupyter_client runs the
    native kernel with this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
            check=True,
            capture_output=True,
        )


def _text(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _ensure_kernel()
    workdir = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env_before = dict(os.environ)
    os.environ["FINOPS_LAKE"] = str(workdir / "lake")
    # The kernel must import the project even from a folder outside it.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
    )
    try:
        client = nbclient.NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=600,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return workdir, notebook


def test_the_notebook_builds_gold_in_the_lake_it_was_given(executed: Any) -> None:
    workdir, notebook = executed
    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert f"lake: {workdir / 'lake'}" in text
    assert "generated" in text  # no dataset zip in the working folder: a synthetic landing
    (line,) = [line for line in text.splitlines() if line.startswith("gold rows: ")]
    assert int(line.removeprefix("gold rows: ")) > 0
    assert (workdir / "lake" / "gold" / "org_daily_usage_by_service").is_dir()
    assert (workdir / "lake" / "serving" / "finops.sqlite").is_file()
    # Every gold table is shown, each with rows (the synthetic landing has invoices, tickets,
    # GenAI events and one scored row per gold row).
    shown = {
        line.split()[1].rstrip(":"): int(line.split()[2])
        for line in text.splitlines()
        if line.startswith("mart ")
    }
    assert set(shown) == {table.name for table in GOLD_TABLES}
    assert all(rows > 0 for rows in shown.values()), shown
    assert shown["cost_anomaly_mart"] == int(line.removeprefix("gold rows: "))


def test_the_notebook_answers_the_questions_and_the_audit_passes(executed: Any) -> None:
    _, notebook = executed
    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    (serving,) = [line for line in text.splitlines() if line.startswith("serving rows: ")]
    shown = {
        line.split()[1].rstrip(":"): int(line.split()[2])
        for line in text.splitlines()
        if line.startswith("mart ")
    }
    (flagged,) = [line for line in text.splitlines() if line.startswith("anomalies: ")]
    anomalies = int(flagged.split()[1])
    assert f"of {shown[ANOMALIES_BY_DAY.source.name]} scored rows" in flagged
    # Every served mart's rows, each once; of the anomaly mart, its anomalies only.
    served = {t.name: shown[t.source.name] for t in SERVING_TABLES if t.where is None}
    assert set(served) | {ANOMALIES_BY_DAY.name} == {t.name for t in SERVING_TABLES}
    assert int(serving.split(": ")[1]) == sum(served.values()) + anomalies
    assert "audit passed: True" in text
    assert "total_cost_usd" in text  # the Q2 table
    assert "silver_rows" in text  # the stages of the typed run record
    assert "cost_per_request_usd" in text  # Q1's rows keyed by the mart's column names


def test_the_notebook_draws_its_plots_as_png(executed: Any) -> None:
    _, notebook = executed
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code" and "plot_" in cell.source
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 2
