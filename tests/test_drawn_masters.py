"""The revenue and tickets marts over landings whose invoices and tickets Hypothesis draws
(`strategies.drawn_master_rows`), through the memory engine: the run's declared reconciliations
of those marts pass, and the marts count what the landing's CSV text holds, read here
independently of the product (the issue's wording: an invoice or ticket of no organisation or
of no valid date has no row; one revenue row an invoice; a negative subtotal is a credit note;
a ticket of no severity counts as `unknown`; CSAT counts only inside 1..5)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from adapters.console import SilentProgress
from adapters.memory.engine import MemoryEngine
from adapters.memory.lake import InMemoryLake
from finops_core import usecases
from finops_core.contracts import SourceContract
from finops_core.lake import LakeLayout
from finops_core.marts import REVENUE, TICKETS, UNKNOWN_SEVERITY, counted_count, rows_count
from finops_core.ports import RunContext
from finops_core.runs import RECONCILIATIONS, Reconciliation
from finops_core.tables import SILVER_MASTERS
from tests import strategies
from tests.strategies import MASTER_CONTRACTS, MasterRows

RUN = RunContext("drawn-masters", dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc))
LAYOUT = LakeLayout("memory")
BILLING, TICKET_CONTRACT = MASTER_CONTRACTS["billing_monthly"], MASTER_CONTRACTS["support_tickets"]
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MART_CHECKS = tuple(
    check.name
    for check in RECONCILIATIONS
    if check.name.startswith((f"{REVENUE.name}:", f"{TICKETS.name}:"))
    or check.name == "revenue rows = invoices"
)


def mart_reconciliations(counts: Mapping[str, float]) -> list[Reconciliation]:
    """The run's reconciliations of the revenue and tickets marts with their sources: every one
    declared for them, each present in the run's counts."""
    checks = [check for check in usecases.reconcile(counts) if check.name in MART_CHECKS]
    assert sorted(check.name for check in checks) == sorted(MART_CHECKS)
    return checks


def run_memory(landing: dict[str, bytes]) -> tuple[InMemoryLake, dict[str, float]]:
    """A batch run of the memory engine over `landing` in memory: the lake and its counts."""
    lake = InMemoryLake(landing)
    engine = MemoryEngine(storage=lambda _layout: lake)
    stages = usecases.run_batch(
        engine, LAYOUT, RUN, SilentProgress(), strategies.landing_files(landing)
    )
    return lake, usecases.merged_counts(stages)


def csv_rows(landing: dict[str, bytes], contract: SourceContract) -> list[dict[str, str]]:
    """The master's rows as the CSV text gives them (no typing)."""
    text = landing[contract.file_pattern].decode()
    return list(csv.DictReader(io.StringIO(text, newline="")))


def date_of(text: str) -> dt.date | None:
    if ISO_DATE.fullmatch(text) is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def number_of(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# ---- the strategy itself --------------------------------------------------------------------


def test_drawn_master_sets_merge_into_unique_ids_and_one_invoice_an_org_and_month() -> None:
    examples = strategies.drawn(strategies.drawn_master_rows(), 50)
    merged = strategies.merged_master_rows(examples)
    for contract in (BILLING, TICKET_CONTRACT):
        rows = merged[contract.name]
        assert len(rows) == sum(len(example[contract.name]) for example in examples) > 50
        assert all(len(row) == len(contract.columns) for row in rows)
        key = contract.column_names.index(contract.natural_key[0])
        assert len({row[key] for row in rows}) == len(rows), contract.name
    invoices = [dict(zip(BILLING.column_names, row, strict=True)) for row in merged[BILLING.name]]
    months = [
        (row["org_id"], date_of(row["month"]))
        for row in invoices
        if row["org_id"] and date_of(row["month"])
    ]
    assert len(set(months)) == len(months) > 50
    assert {row["org_id"] for row in invoices} - {""} == set(strategies.ORG_IDS)
    for contract in MASTER_CONTRACTS.values():  # the other masters as master_csvs() has them
        if contract not in (BILLING, TICKET_CONTRACT):
            assert merged[contract.name] == strategies.fixed_master_rows()[contract.name]


def test_drawn_invoices_and_tickets_carry_every_quirk_the_marts_must_handle() -> None:
    merged = strategies.merged_master_rows(strategies.drawn(strategies.drawn_master_rows(), 50))
    invoices = [dict(zip(BILLING.column_names, row, strict=True)) for row in merged[BILLING.name]]
    subtotals = [number_of(row["subtotal"]) for row in invoices]
    assert sum(1 for value in subtotals if value is not None and value < 0) > 5  # credit notes
    assert {"USD", "EUR", "ARS", "BRL", ""} <= {row["currency"] for row in invoices}
    usd_rates = [
        number_of(row["exchange_rate_to_usd"]) for row in invoices if row["currency"] == "USD"
    ]
    assert 1.0 in usd_rates and sum(1 for r in usd_rates if r is not None and r != 1.0) > 5
    assert sum(1 for row in invoices if row["credits"] == "") > 5
    assert sum(1 for row in invoices if row["taxes"] == "") > 5
    tickets = [
        dict(zip(TICKET_CONTRACT.column_names, row, strict=True))
        for row in merged[TICKET_CONTRACT.name]
    ]
    assert sum(1 for row in tickets if row["severity"] == "critical") > 5
    assert sum(1 for row in tickets if row["resolved_at"] == "") > 5
    csats = [number_of(row["csat"]) for row in tickets]
    assert any(value is not None and 1 <= value <= 5 for value in csats)
    assert any(value is not None and not 1 <= value <= 5 for value in csats)
    assert any(row["csat"] == "" for row in tickets)
    assert {"True", "False", ""} <= {row["sla_breached"] for row in tickets}
    cells = Counter((row["org_id"], row["created_at"], row["severity"]) for row in tickets)
    assert max(cells.values()) > 2


# ---- the marts over drawn masters -----------------------------------------------------------


@given(
    st.lists(strategies.drawn_master_rows(), min_size=1, max_size=4),
    strategies.event_files(max_files=2, max_lines=10),
)
def test_the_revenue_and_tickets_marts_of_merged_drawn_masters_reconcile_with_their_sources(
    masters: Sequence[MasterRows], events: dict[str, bytes]
) -> None:
    landing = {**strategies.master_files(strategies.merged_master_rows(masters)), **events}
    lake, counts = run_memory(landing)
    failed = [check for check in mart_reconciliations(counts) if not check.passed]
    assert failed == []
    for name in ("billing_monthly", "support_tickets"):  # silver keeps every master row
        drawn_rows = sum(len(example[name]) for example in masters)
        assert len(lake.read_table(SILVER_MASTERS[name])) == drawn_rows, name


@given(strategies.landing_zones(max_files=1, max_lines=5, drawn_masters=True))
def test_revenue_has_one_row_an_invoice_and_tickets_count_each_ticket_of_the_csv_once(
    landing: dict[str, bytes],
) -> None:
    lake, counts = run_memory(landing)

    invoices: dict[tuple[object, ...], dict[str, str]] = {
        (row["org_id"], date_of(row["month"])): row
        for row in csv_rows(landing, BILLING)
        if row["org_id"] and date_of(row["month"])
    }
    revenue = {REVENUE.table.key_of(row): row for row in lake.read_table(REVENUE.table)}
    assert set(revenue) == set(invoices)
    assert counts[f"gold.{rows_count(REVENUE)}"] == len(invoices)
    for key, row in revenue.items():
        invoice = invoices[key]
        subtotal = number_of(invoice["subtotal"])
        assert row["invoice_id"] == invoice["invoice_id"] and row["invoice_count"] == 1
        assert row["currency"] == (invoice["currency"] or None)
        assert row["credit_note"] is (subtotal is not None and subtotal < 0), invoice

    kept = [
        row
        for row in csv_rows(landing, TICKET_CONTRACT)
        if row["org_id"] and date_of(row["created_at"])
    ]

    def cells(rows: list[dict[str, str]]) -> Counter[tuple[object, ...]]:
        return Counter(
            (row["org_id"], date_of(row["created_at"]), row["severity"] or UNKNOWN_SEVERITY)
            for row in rows
        )

    tickets = {TICKETS.table.key_of(row): row for row in lake.read_table(TICKETS.table)}
    csat_given = [
        row for row in kept if (csat := number_of(row["csat"])) is not None and 1 <= csat <= 5
    ]
    expected = {
        "tickets": cells(kept),
        "open_tickets": cells([row for row in kept if row["resolved_at"] == ""]),
        "sla_breached": cells([row for row in kept if row["sla_breached"] in ("True", "true")]),
        "csat_responses": cells(csat_given),
    }
    assert set(tickets) == set(expected["tickets"])
    for measure, per_cell in expected.items():
        got = {key: row[measure] for key, row in tickets.items() if row[measure]}
        assert got == dict(per_cell), measure
    assert counts[f"gold.{counted_count(TICKETS)}"] == len(kept)
