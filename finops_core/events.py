"""Usage events: from a landing line to a bronze record, a silver event or a quarantine entry.

Everything here is a pure function of its inputs; the run id and ingest time are passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from finops_core import catalogue
from finops_core.contracts import USAGE_EVENTS
from finops_core.rules import (
    Record,
    ReferenceData,
    Severity,
    Text,
    compile_rules,
    is_missing,
    parse_date,
    parse_integer,
    parse_number,
    parse_timestamp,
)
from finops_core.tables import SILVER_EVENTS

EVENT_FIELDS: tuple[str, ...] = USAGE_EVENTS.column_names


# ---- landing lines ------------------------------------------------------------------------------


def decode_line(raw: bytes) -> tuple[str, bool]:
    """(text, is valid UTF-8). Invalid bytes become U+FFFD so the raw text can still be kept."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


UTF8_BOM = b"\xef\xbb\xbf"
# JSON's insignificant whitespace (RFC 8259) that a line can hold (it has no "\n").
BLANK_BYTES = b" \t\r"


def split_lines(content: bytes) -> list[bytes]:
    """The lines of a JSONL file.

    A UTF-8 byte-order mark that starts the file is dropped (it is no part of the first line; a
    BOM anywhere else stays in its line), then the rest is split on \\n, a trailing \\r dropped,
    the final empty piece ignored. This is how Spark reads text (Hadoop's line reader drops the
    same BOM): a file of nothing but a BOM has no line, a BOM and a "\\n" one blank line.
    """
    content = content.removeprefix(UTF8_BOM)
    if not content:
        return []
    pieces = content.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [piece[:-1] if piece.endswith(b"\r") else piece for piece in pieces]


def is_blank(raw: bytes) -> bool:
    """Whether a landing line is no record: empty, or only spaces, tabs and carriage returns.

    A blank line is counted (per file, as `blank`), never parsed and never quarantined; any other
    character (a form feed, a no-break space) makes the line a record, malformed if not JSON.
    """
    return not raw.strip(BLANK_BYTES)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def field_text(value: Any) -> Text:
    """A JSON value as the text the contracts read: strings as-is, numbers as their token text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_event_line(text: str) -> dict[str, Text] | None:
    """The event's fields as text, or None when the line is not a JSON object."""
    try:
        document = json.loads(text, parse_float=str, parse_int=str, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        return None
    if not isinstance(document, dict):
        return None
    # Numbers arrive as their token text (parse_float/parse_int=str): keep it verbatim.
    fields = {name: field_text(document.get(name)) for name in EVENT_FIELDS}
    if not all(_encodable(value) for value in fields.values()):
        return None  # a lone surrogate escape ("\ud800") is no text any store can keep
    return fields


def _encodable(value: Text) -> bool:
    if value is None:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def quarantine_key(source_file: str, occurrence: int, raw: str) -> str:
    """Stable identity of one landing line: reprocessing it never adds a second entry."""
    payload = f"{source_file}\n{occurrence}\n{raw}".encode()
    return hashlib.sha256(payload).hexdigest()


def event_date(timestamp: Text) -> str | None:
    """Bronze partition value: the UTC date of a valid timestamp, else None."""
    instant = parse_timestamp(timestamp)
    return instant.date().isoformat() if instant else None


@attrs.frozen
class LandingLine:
    """One line of a landing file, with what is needed to identify it forever."""

    source_file: str
    raw: str
    valid_utf8: bool = True


@attrs.frozen
class BronzeEvent:
    """A line that is a JSON object: its fields as text, with provenance."""

    source_file: str
    raw: str
    fields: Mapping[str, Text]


@attrs.frozen
class QuarantineEntry:
    quarantine_key: str
    reasons: tuple[str, ...]
    raw_record: str
    source_file: str
    event_id: str | None


@attrs.frozen
class SilverEvent:
    event_id: str
    event_ts: dt.datetime
    usage_date: dt.date
    org_id: str
    resource_id: str | None
    service: str | None
    region: str | None
    metric: str
    value: float | None
    unit: str
    cost_usd_increment: float
    schema_version: int
    carbon_kg: float | None
    genai_tokens: int | None
    org_name: str | None
    industry: str | None
    plan_tier: str | None
    resource_state: str | None
    resource_created_at: dt.date | None
    quality_flags: tuple[str, ...]
    source_file: str


# The silver table's columns (a test holds SilverEvent's fields equal to them) and the fields of a
# quarantine entry (the first columns of the quarantine table; run_id and ingest_ts follow).
SILVER_EVENT_FIELDS: tuple[str, ...] = SILVER_EVENTS.column_names
_silver_values = operator.attrgetter(*SILVER_EVENT_FIELDS)
QUARANTINE_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(QuarantineEntry))


def silver_row(event: SilverEvent) -> dict[str, object]:
    """A silver event as a row of the silver table (`tables.SILVER_EVENTS`)."""
    # Every field in one C call (attrgetter), not a getattr per field: silver is every event.
    row = dict(zip(SILVER_EVENT_FIELDS, _silver_values(event), strict=True))
    row["quality_flags"] = list(event.quality_flags)
    return row


def silver_event(row: Mapping[str, object]) -> SilverEvent:
    """A row of the silver table as a silver event."""
    values = {name: row[name] for name in SILVER_EVENT_FIELDS}
    values["quality_flags"] = tuple(values["quality_flags"] or ())  # type: ignore[arg-type]
    return SilverEvent(**values)  # type: ignore[arg-type]


def to_bronze(line: LandingLine) -> BronzeEvent | None:
    """A bronze record, or None when the line is malformed (not UTF-8 or not a JSON object)."""
    if not line.valid_utf8:
        return None
    fields = parse_event_line(line.raw)
    if fields is None:
        return None
    return BronzeEvent(line.source_file, line.raw, fields)


def with_occurrences(items: Iterable[tuple[str, str]]) -> list[int]:
    """For each (source_file, raw) in order, how many identical lines came before it."""
    seen: dict[tuple[str, str], int] = {}
    result = []
    for item in items:
        count = seen.get(item, 0)
        result.append(count)
        seen[item] = count + 1
    return result


def malformed_entry(line: LandingLine, occurrence: int) -> QuarantineEntry:
    return QuarantineEntry(
        quarantine_key=quarantine_key(line.source_file, occurrence, line.raw),
        reasons=(catalogue.MALFORMED_RECORD,),
        raw_record=line.raw,
        source_file=line.source_file,
        event_id=None,
    )


def survivor_order(event: BronzeEvent, occurrence: int) -> tuple[str, str, int]:
    """Among events sharing an event_id the smallest of these survives; the rest are duplicates."""
    return (event.source_file, event.raw, occurrence)


def normalise(
    fields: Record, refs: ReferenceData, flags: tuple[str, ...], source_file: str
) -> SilverEvent:
    """A record that passed every quarantine rule, as a typed silver event."""
    instant = parse_timestamp(fields["timestamp"])
    cost = parse_number(fields["cost_usd_increment"])
    schema_version = parse_integer(fields["schema_version"])
    metric = fields["metric"]
    event_id = fields["event_id"]
    org_id = fields["org_id"]
    assert (
        instant
        and cost is not None
        and schema_version is not None
        and metric
        and event_id
        and org_id
    )
    unit = fields["unit"]
    org = refs.get(catalogue.ORGS.name, {}).get(org_id, {})
    resource_id = fields["resource_id"]
    resource = (
        refs.get(catalogue.RESOURCES.name, {}).get(resource_id, {})
        if resource_id is not None
        else {}
    )
    return SilverEvent(
        event_id=event_id,
        event_ts=instant,
        usage_date=instant.date(),
        org_id=org_id,
        resource_id=resource_id,
        service=fields["service"],
        region=fields["region"],
        metric=metric,
        value=parse_number(fields["value"]),
        unit=catalogue.UNIT_BY_METRIC[metric] if is_missing(unit) else unit,  # type: ignore[arg-type]
        cost_usd_increment=cost,
        schema_version=schema_version,
        carbon_kg=parse_number(fields["carbon_kg"]),
        genai_tokens=parse_integer(fields["genai_tokens"]),
        org_name=org.get("org_name"),
        industry=org.get("industry"),
        plan_tier=org.get("plan_tier"),
        resource_state=resource.get("state"),
        resource_created_at=parse_date(resource.get("created_at")),
        quality_flags=flags,
        source_file=source_file,
    )


@attrs.frozen
class Verdict:
    """What the catalogue says of one bronze record."""

    quarantine_reasons: tuple[str, ...]
    flags: tuple[str, ...]

    @property
    def quarantined(self) -> bool:
        return bool(self.quarantine_reasons)


def judge(fields: Record, refs: ReferenceData) -> Verdict:
    """Every quarantine reason and every flag the record earns, in catalogue order."""
    return judge_against(refs)(fields)


def judge_against(refs: ReferenceData) -> Callable[[Record], Verdict]:
    """`judge` bound to the reference data: the catalogue's rules compiled once, for judging
    many records against the same references."""
    broken = compile_rules(catalogue.EVENT_RULES, refs)

    def judged(fields: Record) -> Verdict:
        found = broken(fields)
        reasons = tuple([rule.id for rule in found if rule.severity is Severity.QUARANTINE])
        flags = tuple([rule.id for rule in found if rule.severity is Severity.FLAG])
        return Verdict(reasons, flags)

    return judged


def validate_record(record: Mapping[str, Any], refs: ReferenceData | None = None) -> Verdict:
    """Embedders' entry point: judge one decoded JSON event (values of any JSON type)."""
    fields = {name: field_text(record.get(name)) for name in EVENT_FIELDS}
    return judge(fields, refs or {})
