"""Master data (the seven CSVs): text to typed values, and the master-data rules."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence

from finops_core.catalogue import master_rules_for
from finops_core.contracts import LogicalType, SourceContract
from finops_core.rules import (
    apply_master_rule,
    parse_date,
    parse_integer,
    parse_number,
    parse_timestamp,
)

BOOLEAN_TRUE: tuple[str, ...] = ("True", "true")
BOOLEAN_FALSE: tuple[str, ...] = ("False", "false")

Typed = object  # str | int | float | bool | date | datetime | None


def typed_value(text: str | None, logical_type: LogicalType) -> Typed:
    """A CSV field's typed value: empty is null, and text that does not fit its type is null."""
    if text is None or text == "":
        return None
    if logical_type in (LogicalType.STRING, LogicalType.JSON, LogicalType.NUMERIC_TEXT):
        return text
    if logical_type is LogicalType.FLOAT:
        return parse_number(text)
    if logical_type is LogicalType.INTEGER:
        return parse_integer(text)
    if logical_type is LogicalType.BOOLEAN:
        return True if text in BOOLEAN_TRUE else False if text in BOOLEAN_FALSE else None
    if logical_type is LogicalType.DATE:
        return parse_date(text)
    if logical_type is LogicalType.TIMESTAMP:
        return parse_timestamp(text)
    raise ValueError(f"unknown logical type {logical_type}")


def typed_row(contract: SourceContract, fields: Sequence[str | None]) -> dict[str, Typed]:
    """Bronze row from CSV fields.

    A short row's missing trailing fields are null, extras dropped.
    """
    padded = list(fields[: len(contract.columns)]) + [None] * (len(contract.columns) - len(fields))
    return {
        column.name: typed_value(text, column.type)
        for column, text in zip(contract.columns, padded, strict=False)
    }


def parse_tags(text: object) -> list[str] | None:
    """resources.tags_json: a JSON list of strings, else null."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


# Columns each silver master drops (PII stays in bronze only) and the columns cleaning adds.
SILVER_DROPS: Mapping[str, tuple[str, ...]] = {"users": ("email",), "resources": ("tags_json",)}
SILVER_EXTRAS: Mapping[str, tuple[tuple[str, LogicalType], ...]] = {
    "resources": (("tags", LogicalType.STRING_LIST),),
}


def silver_master_row(source: str, row: Mapping[str, Typed]) -> dict[str, Typed]:
    """A bronze master row made silver: master rules applied, PII dropped, tags parsed."""
    result = {
        name: value for name, value in row.items() if name not in SILVER_DROPS.get(source, ())
    }
    flags: list[str] = []
    for rule in master_rules_for(source):
        value = result.get(rule.field)
        cleaned, flagged = apply_master_rule(rule, value if isinstance(value, float) else None)
        result[rule.field] = cleaned
        if flagged:
            flags.append(rule.id)
    if source == "resources":
        result["tags"] = parse_tags(row.get("tags_json"))
    result["quality_flags"] = flags
    return result


def iso(value: Typed) -> Typed:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def csv_records(content: bytes) -> list[list[str]]:
    """A master CSV's records as RFC 4180 reads them: UTF-8 with or without a byte-order mark
    (undecodable bytes replaced), LF or CRLF line ends, quoted fields that hold commas, doubled
    quotes or line breaks; a wholly blank line is no record (Spark's CSV reader skips it too).
    The header is the first record."""
    text = content.decode("utf-8-sig", errors="replace")
    return [record for record in csv.reader(io.StringIO(text, newline="")) if record]
