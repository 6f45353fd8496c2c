"""Hypothesis strategies for raw landing data with every quirk of the real feed.

Factories with keyword options; each returns a strategy. The landing zones they build are
dicts of relative path -> bytes, the content of a `<lake>/landing/` folder.

Every strategy is built once and drawn from many times (the factories are cached): a strategy
built inside a draw is validated at every draw, which made generating a landing cost ~0.1 s, ten
times the memory engine's run over it.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import functools
import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from finops_core.catalogue import UNIT_BY_METRIC
from finops_core.contracts import EVENT_KEYS_V1, MASTER_SOURCES, USAGE_EVENTS, SourceContract
from finops_core.events import UTF8_BOM
from finops_core.intake import LandingFile

ORG_IDS = ("org_aaaa0001", "org_bbbb0002", "org_cccc0003")
UNKNOWN_ORG = "org_zzzz9999"
SERVICES = ("compute", "storage", "genai")
REGIONS = ("us-east", "eu-west")
# resource id -> (org, service, region, created_at)
RESOURCES = {
    "res_aaaa0001": ("org_aaaa0001", "compute", "us-east", "2025-07-01"),
    "res_bbbb0002": ("org_bbbb0002", "storage", "eu-west", "2025-07-05"),
    "res_cccc0003": ("org_cccc0003", "genai", "us-east", "2025-06-20"),
}
DAYS = ("2025-07-03", "2025-07-04", "2025-07-17", "2025-07-18", "2025-07-19")

T = TypeVar("T")

# `st.integers(a, b)` and `st.sampled_from(a_tuple)`, one strategy per distinct argument.
_integers = functools.cache(st.integers)
_sampled_from = functools.cache(st.sampled_from)


@functools.cache
def numbers(min_value: float = -200.0, max_value: float = 400.0) -> st.SearchStrategy[float]:
    return st.floats(
        min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False
    ).map(lambda x: round(x, 4))


@functools.cache
def values() -> st.SearchStrategy[Any]:
    """value as the feed gives it: number, numeric string, null, or garbage."""
    return st.one_of(
        numbers(0, 300),
        numbers(0, 300).map(repr),
        st.none(),
        st.sampled_from(("abc", "", "1.2.3", "NaN", " 5")),
    )


@functools.cache
def costs() -> st.SearchStrategy[Any]:
    return st.one_of(
        numbers(0, 50),
        numbers(0, 50),
        st.sampled_from((-0.0, -0.005, -0.01, -0.0101, -154.46, 317.2)),
        st.none(),
        st.just("abc"),
    )


_ID_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _event_id(number: int) -> str:
    """`evt_` and 12 characters of [a-z0-9]: `number` in base 36."""
    digits = []
    for _ in range(12):
        number, digit = divmod(number, 36)
        digits.append(_ID_DIGITS[digit])
    return "evt_" + "".join(digits)


@functools.cache
def _event_ids() -> st.SearchStrategy[str]:
    """An id of the real shape (evt_[a-z0-9]{12}) from one draw, not one draw a character."""
    return st.integers(0, 36**12 - 1).map(_event_id)


# RFC 3339 time-offsets a feed may write (up to the grammar's +-23:59), the canonical "Z" most
# often; fractions of any length (beyond six digits both engines truncate); "t" as well as "T".
RFC3339_OFFSETS = (
    *("Z",) * 6,
    *("z", "+00:00", "-00:00", "+02:00", "-02:00", "+05:30", "-09:30"),
    *("+14:00", "-12:00", "+23:59", "-23:59"),
)
RFC3339_FRACTIONS = (*("",) * 6, ".5", ".123", ".000001", ".123456", ".1234567", ".999999999")
RFC3339_SEPARATORS = ("T", "T", "T", "t")
# Text RFC 3339 section 5.6 refuses (or that names no instant): always `timestamp_invalid`.
INVALID_TIMESTAMPS = (
    "2025-02-30T00:00:00Z",  # no 30 February
    "2025-02-29T00:00:00Z",  # 2025 is a common year
    "2025-04-31T00:00:00Z",
    "2025-13-01T00:00:00Z",
    "2025-07-03 10:00:00Z",  # a space for "T": not the ABNF
    "2025-07-03T10:00:00",  # no offset
    "2025-07-03T10:00:00+24:00",
    "2025-07-03T10:00:00+02:60",
    "2025-07-03T10:00:00+0200",
    "2025-07-03T24:00:00Z",
    "2025-07-03T10:60:00Z",
    "2016-12-31T23:59:60Z",  # a leap second: refused
    "2025-07-03T10:00:00.Z",
    "2025-07-03T10:00Z",
    "2025-7-3T10:00:00Z",
    "2025-07-03T10:00:00Z ",
    "yesterday",
    None,
)


def rfc3339_text(day: str, second: int, fraction: str, offset: str, separator: str) -> str:
    """The UTC instant `second` seconds into `day` (plus `fraction`), written in the local time
    of `offset`: its UTC date is always `day`, whatever date the text starts with."""
    utc = dt.datetime.fromisoformat(day) + dt.timedelta(seconds=second)
    east = 0 if offset in ("Z", "z") else int(offset[1:3]) * 60 + int(offset[4:6])
    local = utc + dt.timedelta(minutes=-east if offset.startswith("-") else east)
    return f"{local:%Y-%m-%d}{separator}{local:%H:%M:%S}{fraction}{offset}"


@functools.cache
def _timestamps(day: str, quirky: bool) -> st.SearchStrategy[str | None]:
    """An instant of `day` in any RFC 3339 spelling; `quirky`: or text that is not one."""
    instants = st.builds(
        functools.partial(rfc3339_text, day),
        _integers(0, 24 * 3600 - 1),
        _sampled_from(RFC3339_FRACTIONS),
        _sampled_from(RFC3339_OFFSETS),
        _sampled_from(RFC3339_SEPARATORS),
    )
    if not quirky:
        return instants
    return st.one_of(instants, _sampled_from(INVALID_TIMESTAMPS))


@functools.cache
def _unit_or_none(unit: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.just(unit), st.none())


@functools.cache
def _carbons() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0), numbers(0, 1), st.just(8.9e-05))


@functools.cache
def _tokens() -> st.SearchStrategy[int | str]:
    return st.one_of(st.integers(0, 2700), st.just("many"))


@st.composite
def raw_events(draw: st.DrawFn, event_ids: st.SearchStrategy[str] | None = None) -> dict[str, Any]:
    """One decoded event with the real feed's key order and optional quirks."""
    day = draw(_sampled_from(DAYS))
    v2 = day >= "2025-07-18"
    resource = draw(_sampled_from((*RESOURCES, "res_unknown1")))
    org, service, region, _ = RESOURCES.get(
        resource, (draw(_sampled_from(ORG_IDS)), "compute", "us-east", "")
    )
    if draw(_integers(0, 9)) == 0:
        org = draw(_sampled_from((UNKNOWN_ORG, *ORG_IDS)))  # unknown or mismatched org
    metric = draw(_sampled_from((*UNIT_BY_METRIC, *UNIT_BY_METRIC, "bogus")))
    event: dict[str, Any] = {
        "event_id": draw(event_ids if event_ids is not None else _event_ids()),
        "timestamp": draw(_timestamps(day, quirky=draw(_integers(0, 15)) == 0)),
        "org_id": org,
        "resource_id": resource,
        "service": service,
        "region": region,
        "metric": metric,
        "value": draw(values()),
        "unit": draw(_unit_or_none(UNIT_BY_METRIC.get(metric, "count"))),
        "cost_usd_increment": draw(costs()),
        "schema_version": 2 if v2 else 1,
    }
    if draw(_integers(0, 20)) == 0:
        event["schema_version"] = draw(_sampled_from((3, None, "2")))
    if draw(_integers(0, 20)) == 0:
        event["event_id"] = draw(_sampled_from((None, "")))
    if v2:
        event["carbon_kg"] = draw(_carbons())
        if service == "genai":
            event["genai_tokens"] = draw(_tokens())
    if draw(_integers(0, 25)) == 0:
        del event["cost_usd_increment"]
    return {
        key: event[key] for key in (*EVENT_KEYS_V1, "carbon_kg", "genai_tokens") if key in event
    }


@functools.cache
def malformed_lines() -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        (
            b"not json at all",
            b'{"event_id": "evt_trunc0000001", "timestamp": "2025-07-',
            b"[1, 2, 3]",
            b'"just a string"',
            b"42",
            b'{"event_id": "evt_badutf800001", "org_id": "org_\xff\xfe"}',
            # A BOM inside a file stays in its line (first in a file without a BOM of its own,
            # it starts the file: dropped, and the line is an event with few fields).
            UTF8_BOM + b'{"event_id": "evt_midbom00001"}',
            b"\x0c",  # a form feed is no JSON whitespace: not blank, malformed
        )
    )


# Lines that are no record (events.is_blank): empty, spaces, tabs, carriage returns.
BLANK_LINES = (b"", b" ", b"\t", b"  \t ", b"\r", b" \r\t")
# How exporters end lines: LF most often, CRLF too.
LINE_ENDINGS = (b"\n", b"\n", b"\r\n")


@functools.cache
def blank_lines() -> st.SearchStrategy[bytes]:
    return _sampled_from(BLANK_LINES)


def jsonl_file(lines: Sequence[bytes], *, bom: bool, ending: bytes) -> bytes:
    """A JSONL file of `lines`, each ended by `ending`, after a UTF-8 BOM when `bom`."""
    return (UTF8_BOM if bom else b"") + b"".join(line + ending for line in lines)


@functools.cache
def _id_pools() -> st.SearchStrategy[list[str]]:
    return st.lists(_event_ids(), min_size=1, max_size=4, unique=True)


@st.composite
def event_files(draw: st.DrawFn, max_files: int = 3, max_lines: int = 25) -> dict[str, bytes]:
    """JSONL files as exporters write them: events (with ids sometimes reused across files),
    malformed and blank or whitespace-only lines (now and then a file of nothing else), LF or
    CRLF line ends, sometimes a UTF-8 BOM first (a file of no line then is just the BOM)."""
    id_pool = draw(_id_pools())
    events = raw_events(event_ids=st.one_of(_event_ids(), st.sampled_from(id_pool)))
    files: dict[str, bytes] = {}
    for index in range(draw(_integers(1, max_files))):
        only_blank = draw(_integers(0, 15)) == 0
        lines: list[bytes] = []
        for _ in range(draw(_integers(0, max_lines))):
            kind = draw(_integers(0, 12))
            if only_blank or kind == 1:
                lines.append(draw(blank_lines()))
            elif kind == 0:
                lines.append(draw(malformed_lines()))
            else:
                lines.append(json.dumps(draw(events)).encode())
        if len(lines) > 0 and draw(st.booleans()):
            lines.append(lines[draw(_integers(0, len(lines) - 1))])  # an exact repeat
        bom = draw(_integers(0, 4)) == 0
        ending = draw(_sampled_from(LINE_ENDINGS))
        files[f"usage_events_stream/events_part_{index:04d}.jsonl"] = jsonl_file(
            lines, bom=bom, ending=ending
        )
    return files


# ---- masters ------------------------------------------------------------------------------------

# source name -> rows, each the CSV fields in the order of `contract.column_names`
MasterRows = dict[str, list[list[str]]]
MASTER_CONTRACTS: dict[str, SourceContract] = {c.name: c for c in MASTER_SOURCES}


def fixed_master_rows() -> MasterRows:
    """Small master rows consistent with ORG_IDS and RESOURCES (plus quirks of their own): one
    invoice and one ticket an organisation."""
    rows: MasterRows = {contract.name: [] for contract in MASTER_SOURCES}
    for index, org in enumerate(ORG_IDS):
        rows["customers_orgs"].append(
            [
                org,
                f"Org {index}",
                "Retail",
                "us-east",
                "pro",
                "True",
                "2025-05-01",
                "rep_a",
                "active",
                "ads",
                ["", "101.0", "-3.0"][index],
            ]
        )
        rows["nps_surveys"].append([org, "2025-08-01", ["7.0", "", "-150.0"][index], "ok"])
        rows["billing_monthly"].append(
            [
                f"inv_0000000{index}",
                org,
                "2025-07-01",
                "100.0",
                ["", "5.0", ""][index],
                "21.0",
                "USD",
                "0.97",
            ]
        )
        rows["users"].append(
            [
                f"user_0000000{index}",
                org,
                f"user_0000000{index}@example.com",
                "admin",
                "True",
                "2025-06-01",
                "",
            ]
        )
        rows["support_tickets"].append(
            [
                f"tkt_0000000{index}",
                org,
                "billing",
                "low",
                "2025-07-02",
                "",
                ["4.0", "7.0", ""][index],
                "False",
            ]
        )
        rows["marketing_touches"].append(
            [f"mkt_0000000{index}", org, "webinar", "email", "2025-07-03", "False", "True"]
        )
    for resource, (org, service, region, created) in RESOURCES.items():
        rows["resources"].append(
            [resource, org, service, region, created, "running", '["env:prod", "team:a,b"]']
        )
    return rows


# The forms other exporters write a master CSV in, as `master_files(..., quirky=True)` applies
# them (RFC 4180 allows each): a file starting with a UTF-8 BOM, CRLF line ends, blank lines
# (no record), and a quoted field holding a comma, a doubled quote and a line break.
QUIRKY_CSV = {
    "customers_orgs": "bom",
    "users": "crlf",
    "resources": "blank lines",
    "support_tickets": "bom crlf",
}
QUOTED_NAME = 'Org 0, "the first"\nof three'  # the first org's org_name in quirky files


def master_files(rows: MasterRows, quirky: bool = False) -> dict[str, bytes]:
    """The seven master CSVs holding `rows`, written as the feed writes them: the contract's
    header, `\\n` line ends, minimal RFC 4180 quoting; with `quirky`, in the forms of
    `QUIRKY_CSV` and the first org named `QUOTED_NAME`."""
    files = {}
    for contract in MASTER_SOURCES:
        records = rows[contract.name]
        if quirky and contract.name == "customers_orgs" and records:
            index = contract.column_names.index("org_name")
            first = list(records[0])
            first[index] = QUOTED_NAME
            records = [first, *records[1:]]
        form = QUIRKY_CSV.get(contract.name, "") if quirky else ""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n" if "crlf" in form else "\n")
        writer.writerow(contract.column_names)
        for number, record in enumerate(records):
            writer.writerow(record)
            if "blank lines" in form and number % 2 == 0:
                buffer.write("\n")
        content = buffer.getvalue().encode()
        files[contract.file_pattern] = (b"\xef\xbb\xbf" if "bom" in form else b"") + content
    return files


def landing_event(**values: Any) -> dict[str, Any]:
    """One valid event of ORG_IDS[0]'s compute resource (a 1.25 USD request), `values` replaced."""
    event: dict[str, Any] = {
        "event_id": "evt_f00000000000",
        "timestamp": "2025-07-03T10:00:00Z",
        "org_id": ORG_IDS[0],
        "resource_id": "res_aaaa0001",
        "service": "compute",
        "region": "us-east",
        "metric": "requests",
        "value": 120.0,
        "unit": "requests",
        "cost_usd_increment": 1.25,
        "schema_version": 1,
    }
    event.update(values)
    return event


def master_csvs() -> dict[str, bytes]:
    """Small master files consistent with ORG_IDS and RESOURCES (plus quirks of their own)."""
    return master_files(fixed_master_rows())


def in_column_order(contract: SourceContract, fields: dict[str, str]) -> list[str]:
    """A CSV row of `contract`: `fields` (every column, no other) in the contract's order."""
    if sorted(fields) != sorted(contract.column_names):
        raise ValueError(
            f"{contract.name} has columns {contract.column_names}, not {sorted(fields)}"
        )
    return [fields[name] for name in contract.column_names]


BILLING_MONTHS = tuple(f"2025-{month:02d}-01" for month in range(1, 13))
BAD_DATES = ("", "2025-13-01", "2025-02-30", "July")  # each is a null date in bronze
TICKET_DAYS = ("2025-06-30", "2025-07-01", "2025-07-02", "2025-07-17")
# Currency -> the range of the feed's rates to USD: its USD invoices carry rates that are not 1.
# BRL: a currency the feed does not use (converted by its rate like any other but USD).
FX_RANGES = {
    "USD": (0.85, 1.12),
    "EUR": (0.998, 1.198),
    "ARS": (0.00133, 0.00162),
    "BRL": (0.17, 0.19),
}
CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "ARS", "ARS", "BRL", "")
SEVERITIES = ("low", "medium", "high", "critical", "critical", "")
TICKET_CATEGORIES = ("billing", "performance", "security")
CSATS = ("1.0", "2.0", "3.0", "4.0", "5.0", "4", "0.0", "6.0", "7.0", "", "", "abc")
SLA_FLAGS = ("True", "False", "False", "true", "false", "", "yes")


@functools.cache
def _amounts(min_value: float, max_value: float) -> st.SearchStrategy[str]:
    """An amount with cents as the CSV spells it (`repr` of the float)."""
    return st.floats(min_value, max_value).map(lambda x: repr(round(x, 2)))


@functools.cache
def _subtotals() -> st.SearchStrategy[str]:
    """Mostly invoices, some credit notes (a negative subtotal), a zero, a word, nothing."""
    return st.one_of(
        _amounts(0.0, 5000.0),
        _amounts(0.0, 5000.0),
        _amounts(-800.0, -0.01),
        st.sampled_from(("0.0", "abc", "")),
    )


@functools.cache
def _optional_amounts(min_value: float, max_value: float) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), _amounts(min_value, max_value))


@functools.cache
def _exchange_rates(currency: str) -> st.SearchStrategy[str]:
    """A rate to USD of `currency` (no currency: any rate), or 1, or none, or a word."""
    low, high = FX_RANGES.get(currency, (0.5, 2.0))
    rates = st.floats(low, high).map(lambda x: repr(round(x, 5)))
    return st.one_of(rates, rates, st.sampled_from(("1.0", "1", "", "abc")))


@functools.cache
def _org_months() -> st.SearchStrategy[list[tuple[str, str]]]:
    """Every (org, month) pair in some order: an invoice takes one, as the feed has one invoice
    per organisation and month (the revenue mart's grain: the audit's `revenue rows = invoices`
    holds it to that)."""
    return st.permutations([(org, month) for org in ORG_IDS for month in BILLING_MONTHS])


def _rare(draw: st.DrawFn, one_in: int) -> bool:
    """True one draw in `one_in`; false in the simplest example (its rows are ordinary ones)."""
    return draw(_integers(1, one_in)) == one_in


def _invoice(draw: st.DrawFn, number: int, org: str, month: str) -> list[str]:
    currency = draw(_sampled_from(CURRENCIES))
    return in_column_order(
        MASTER_CONTRACTS["billing_monthly"],
        {
            "invoice_id": f"inv_{number:08d}",
            "org_id": "" if _rare(draw, 20) else org,
            "month": draw(_sampled_from(BAD_DATES)) if _rare(draw, 15) else month,
            "subtotal": draw(_subtotals()),
            "credits": draw(_optional_amounts(0.0, 300.0)),
            "taxes": draw(_optional_amounts(-150.0, 1000.0)),
            "currency": currency,
            "exchange_rate_to_usd": draw(_exchange_rates(currency)),
        },
    )


def _ticket(draw: st.DrawFn, number: int, earlier: list[list[str]]) -> list[str]:
    """A ticket; one in three is of the organisation, day and severity of an earlier one."""
    contract = MASTER_CONTRACTS["support_tickets"]
    if earlier and _rare(draw, 3):
        copied = earlier[draw(_integers(0, len(earlier) - 1))]
        same = dict(zip(contract.column_names, copied, strict=True))
        org, day, severity = same["org_id"], same["created_at"], same["severity"]
    else:
        org = "" if _rare(draw, 25) else draw(_sampled_from(ORG_IDS))
        day = (
            draw(_sampled_from(BAD_DATES)) if _rare(draw, 15) else draw(_sampled_from(TICKET_DAYS))
        )
        severity = draw(_sampled_from(SEVERITIES))
    return in_column_order(
        contract,
        {
            "ticket_id": f"tkt_{number:08d}",
            "org_id": org,
            "category": draw(_sampled_from(TICKET_CATEGORIES)),
            "severity": severity,
            "created_at": day,
            "resolved_at": draw(_sampled_from(("", "", "2025-07-03", "2025-07-20"))),
            "csat": draw(_sampled_from(CSATS)),
            "sla_breached": draw(_sampled_from(SLA_FLAGS)),
        },
    )


@st.composite
def drawn_master_rows(draw: st.DrawFn, max_invoices: int = 12, max_tickets: int = 15) -> MasterRows:
    """The fixed masters with drawn invoices and tickets of ORG_IDS (ids unique in the set):
    currencies USD (rates not 1 too), EUR, ARS, one the feed lacks or none; credit notes, no
    credits, no taxes, rates that are none or a word; tickets of every severity (or none),
    open or resolved, CSAT in and out of 1..5 or none, SLA breached or not, several of an
    organisation, day and severity; now and then no organisation or an impossible date."""
    rows = fixed_master_rows()
    invoices = draw(_integers(0, max_invoices))
    rows["billing_monthly"] = [
        _invoice(draw, number, org, month)
        for number, (org, month) in enumerate(draw(_org_months())[:invoices])
    ]
    tickets: list[list[str]] = []
    for number in range(draw(_integers(0, max_tickets))):
        tickets.append(_ticket(draw, number, tickets))
    rows["support_tickets"] = tickets
    return rows


@functools.cache
def drawn_master_csvs(
    max_invoices: int = 12, max_tickets: int = 15
) -> st.SearchStrategy[dict[str, bytes]]:
    """The seven master CSVs of `drawn_master_rows`."""
    return drawn_master_rows(max_invoices=max_invoices, max_tickets=max_tickets).map(master_files)


def _in_year(date: str, year: int) -> str:
    return f"{year}{date[4:]}" if date.startswith("2025-") else date


def merged_master_rows(examples: Sequence[MasterRows]) -> MasterRows:
    """One master set: the fixed masters with every example's invoices and tickets, example n's
    ids suffixed `_<n>` (unique across examples) and its invoices' months moved to year 2025 + n
    (still one invoice per organisation and month)."""
    rows = fixed_master_rows()
    billing, tickets = MASTER_CONTRACTS["billing_monthly"], MASTER_CONTRACTS["support_tickets"]
    month = billing.column_names.index("month")
    merged: dict[str, list[list[str]]] = {billing.name: [], tickets.name: []}
    for number, example in enumerate(examples):
        for contract in (billing, tickets):
            key = contract.column_names.index(contract.natural_key[0])
            for row in example[contract.name]:
                copy = list(row)
                copy[key] = f"{row[key]}_{number:03d}"
                if contract is billing:
                    copy[month] = _in_year(row[month], 2025 + number)
                merged[contract.name].append(copy)
    rows.update(merged)
    return rows


@st.composite
def landing_zones(
    draw: st.DrawFn, max_files: int = 3, max_lines: int = 25, drawn_masters: bool = False
) -> dict[str, bytes]:
    """A whole landing folder: the seven master CSVs (`drawn_masters`: with drawn invoices and
    tickets) and a few quirky JSONL files."""
    masters = draw(drawn_master_csvs()) if drawn_masters else master_csvs()
    return {**masters, **draw(event_files(max_files=max_files, max_lines=max_lines))}


def write_landing(landing: dict[str, bytes], root: Any) -> None:
    """Materialise a landing zone under `root` (a pathlib.Path to <lake>/landing)."""
    for relative, content in landing.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def landing_files(landing: dict[str, bytes]) -> list[LandingFile]:
    """The landing zone's events files as the batch is told of them (name, size, SHA-256)."""
    return [
        LandingFile(
            path=relative,
            name=relative.rsplit("/", 1)[-1],
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        for relative, content in sorted(landing.items())
        if fnmatch.fnmatch(relative, USAGE_EVENTS.file_pattern)
    ]


def drawn(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` examples of `strategy` as Hypothesis's generation phase draws them, the simplest
    first: for a test that runs many examples through one Spark job, which costs the same for one
    small example as for hundreds. Nothing is shrunk: a failure names the example as drawn."""
    examples: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        phases=(Phase.generate,),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(strategy)
    def draw(example: T) -> None:
        examples.append(example)

    draw()
    return examples
