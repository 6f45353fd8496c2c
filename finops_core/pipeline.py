"""The batch pipeline's meaning as pure functions over rows: bronze, silver + quarantine, gold.

Engines may compute these however they like (in Python, in Spark); they must give these results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import attrs

from finops_core import catalogue
from finops_core.events import (
    BronzeEvent,
    LandingLine,
    QuarantineEntry,
    SilverEvent,
    judge_against,
    malformed_entry,
    normalise,
    quarantine_key,
    survivor_order,
    to_bronze,
    with_occurrences,
)
from finops_core.rules import ReferenceData, is_missing


@attrs.frozen
class BronzeOutput:
    events: tuple[BronzeEvent, ...]
    malformed: tuple[QuarantineEntry, ...]


def bronze_from_lines(lines: Iterable[LandingLine]) -> BronzeOutput:
    """Lines that are JSON objects become bronze events; the others are quarantined as malformed."""
    materialised = list(lines)
    occurrences = with_occurrences((line.source_file, line.raw) for line in materialised)
    events: list[BronzeEvent] = []
    malformed: list[QuarantineEntry] = []
    for line, occurrence in zip(materialised, occurrences, strict=False):
        event = to_bronze(line)
        if event is None:
            malformed.append(malformed_entry(line, occurrence))
        else:
            events.append(event)
    return BronzeOutput(tuple(events), tuple(malformed))


@attrs.frozen
class SilverOutput:
    events: tuple[SilverEvent, ...]
    quarantine: tuple[QuarantineEntry, ...]
    duplicates: int
    reason_counts: Mapping[str, int]
    flag_counts: Mapping[str, int]


def silver_from_bronze(bronze: Iterable[BronzeEvent], refs: ReferenceData) -> SilverOutput:
    """Deduplicate by event_id, judge every record, and split silver from quarantine.

    Among events sharing an event_id the one with the smallest (source_file, raw, occurrence)
    survives and the others are counted as duplicates; records without an event_id are not
    deduplicated (they are quarantined for it). Output is sorted, so input order never matters.
    """
    rows = list(bronze)
    occurrences = with_occurrences((row.source_file, row.raw) for row in rows)
    survivors: dict[str, tuple[tuple[str, str, int], BronzeEvent]] = {}
    anonymous: list[tuple[BronzeEvent, int]] = []
    duplicates = 0
    for row, occurrence in zip(rows, occurrences, strict=False):
        event_id = row.fields.get("event_id")
        if is_missing(event_id):
            anonymous.append((row, occurrence))
            continue
        assert event_id is not None
        order = survivor_order(row, occurrence)
        current = survivors.get(event_id)
        if current is None:
            survivors[event_id] = (order, row)
        else:
            duplicates += 1
            if order < current[0]:
                survivors[event_id] = (order, row)
    candidates = [(row, order[2]) for order, row in survivors.values()] + anonymous

    silver: list[SilverEvent] = []
    quarantine: list[QuarantineEntry] = []
    reason_counts: Counter[str] = Counter()
    flag_counts: Counter[str] = Counter()
    judge = judge_against(refs)
    for row, occurrence in candidates:
        verdict = judge(row.fields)
        if verdict.quarantined:
            reason_counts.update(verdict.quarantine_reasons)
            quarantine.append(
                QuarantineEntry(
                    quarantine_key=quarantine_key(row.source_file, occurrence, row.raw),
                    reasons=verdict.quarantine_reasons,
                    raw_record=row.raw,
                    source_file=row.source_file,
                    event_id=row.fields.get("event_id"),
                )
            )
        else:
            flag_counts.update(verdict.flags)
            silver.append(normalise(row.fields, refs, verdict.flags, row.source_file))
    silver.sort(key=lambda event: (event.usage_date, event.event_id))
    quarantine.sort(key=lambda entry: entry.quarantine_key)
    return SilverOutput(
        tuple(silver), tuple(quarantine), duplicates, dict(reason_counts), dict(flag_counts)
    )


def reference_data(
    orgs: Iterable[Mapping[str, object]], resources: Iterable[Mapping[str, object]]
) -> ReferenceData:
    """Reference lookups from master rows (text values), as the rules read them."""
    tables: dict[str, dict[str, dict[str, str | None]]] = {}
    for reference, rows in ((catalogue.ORGS, orgs), (catalogue.RESOURCES, resources)):
        table: dict[str, dict[str, str | None]] = {}
        for row in rows:
            key = row.get(reference.key)
            if key is None:
                continue
            candidate = {field: _text(row.get(field)) for field in reference.fields}
            current = table.get(str(key))
            if current is None or _null_first(candidate, reference.fields) < _null_first(
                current, reference.fields
            ):
                table[str(key)] = candidate  # a repeated natural key keeps its smallest row
        tables[reference.name] = table
    return tables


def _text(value: object) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    return str(value)


def _null_first(
    row: Mapping[str, str | None], fields: tuple[str, ...]
) -> tuple[tuple[int, str], ...]:
    """Ordering of reference rows: field by field, nulls first (as SQL orders them ascending)."""
    return tuple((0, "") if row[field] is None else (1, row[field] or "") for field in fields)
