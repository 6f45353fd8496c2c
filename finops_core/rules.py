"""The rule algebra: declarative checks and their pure-Python interpreter.

A rule is data (id, check, severity, message). This module is one interpreter of the checks; the
Spark adapter compiles the same values into Column expressions. Checks read a *record*: a mapping
of field name -> text (or None), exactly as the landing feed gave it, plus the reference data
(orgs, resources) the record is joined to.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Optional, Union

import attrs

# Text grammars shared by every engine. Each engine anchors them in its own regex dialect
# (Python: re.fullmatch; Java: ^(?:...)\z). Only ASCII classes, so both dialects agree.
NUMBER_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
INTEGER_PATTERN = r"[+-]?[0-9]{1,18}"
# RFC 3339 section 5.6 date-time: full-date "T" partial-time time-offset. The ABNF's "T" and "Z"
# are case-insensitive (RFC 3339 5.6 note, RFC 5234 2.3); the space its note lets applications
# use instead of "T" is not the ABNF, so it is refused. Field ranges are in the grammar (month
# 01-12, day 01-31, hour 00-23, minute 00-59, second 00-59, offset +-00:00..+-23:59); the
# calendar (day 31 of a 30-day month, 29 February of a common year) is checked by each engine's
# date arithmetic. A leap second (:60) is refused: neither Python nor Spark timestamps can hold
# one. Years are 1900-2099, the plausibility bound of DATE_PATTERN. Capture groups, in order:
# TIMESTAMP_LOCAL_GROUP (date "T" time, seconds included), TIMESTAMP_FRACTION_GROUP (the digits
# of the fraction, any number of them, or absent), TIMESTAMP_OFFSET_GROUP ("Z", "z" or +-HH:MM).
TIMESTAMP_PATTERN = (
    r"((?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])"
    r"(?:\.([0-9]+))?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
TIMESTAMP_LOCAL_GROUP, TIMESTAMP_FRACTION_GROUP, TIMESTAMP_OFFSET_GROUP = 1, 2, 3
# strptime spelling of the local group once its "T"/"t" (character 11) is read as "T".
TIMESTAMP_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Fractional seconds are kept to the microsecond (both engines' precision); digits beyond the
# sixth are truncated, never rounded (rounding could carry into the next second, day or year).
TIMESTAMP_FRACTION_DIGITS = 6
DATE_PATTERN = r"(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}"

_NUMBER = re.compile(NUMBER_PATTERN)
_INTEGER = re.compile(INTEGER_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_DATE = re.compile(DATE_PATTERN)

Text = Optional[str]  # noqa: UP045
Record = Mapping[str, Text]


class Severity(enum.Enum):
    QUARANTINE = "quarantine"  # the row leaves silver for the quarantine table
    FLAG = "flag"  # the row stays in silver and carries the flag


# ---- text parsing shared by the rules and by normalisation ----------------------------------


def is_missing(text: Text) -> bool:
    return text is None or text == ""


def parse_number(text: Text) -> float | None:
    """A float when the text is a number in NUMBER_PATTERN that a double can hold, else None
    (`1e400` is a JSON number but no finite double: RFC 8259 lets a parser refuse its range)."""
    if text is None or _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_integer(text: Text) -> int | None:
    if text is None or _INTEGER.fullmatch(text) is None:
        return None
    return int(text)


def parse_timestamp(text: Text) -> dt.datetime | None:
    """The UTC instant (an aware datetime in UTC, microsecond precision) an RFC 3339 date-time
    in TIMESTAMP_PATTERN names, else None (also for impossible calendar dates)."""
    return None if text is None else _timestamp_from_text(text)


@functools.lru_cache(maxsize=1 << 16)
def _timestamp_from_text(text: str) -> dt.datetime | None:
    # Cached: one record's timestamp is read by several rules, by silver and by bronze's
    # partition. The pattern fixes the local part's positions; the constructor rejects
    # impossible dates.
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    local = match.group(TIMESTAMP_LOCAL_GROUP)
    try:
        wall = dt.datetime(
            int(local[0:4]),
            int(local[5:7]),
            int(local[8:10]),
            int(local[11:13]),
            int(local[14:16]),
            int(local[17:19]),
            fraction_micros(match.group(TIMESTAMP_FRACTION_GROUP)),
        )
    except ValueError:
        return None
    utc = wall - dt.timedelta(seconds=offset_seconds(match.group(TIMESTAMP_OFFSET_GROUP)))
    return utc.replace(tzinfo=dt.timezone.utc)


def fraction_micros(digits: str | None) -> int:
    """Microseconds of a fraction's digits ("5" -> 500000), truncated after the sixth digit."""
    if digits is None:
        return 0
    return int(digits[:TIMESTAMP_FRACTION_DIGITS].ljust(TIMESTAMP_FRACTION_DIGITS, "0"))


def offset_seconds(offset: str) -> int:
    """Seconds east of UTC of an RFC 3339 time-offset: "Z"/"z" -> 0, "-02:30" -> -9000."""
    if offset in ("Z", "z"):
        return 0
    sign = -1 if offset[0] == "-" else 1
    return sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)


def parse_date(text: Text) -> dt.date | None:
    return None if text is None else _date_from_text(text)


@functools.lru_cache(maxsize=1 << 12)
def _date_from_text(text: str) -> dt.date | None:
    # Cached: the dates a record is checked against are a master's, the same few again and again.
    if _DATE.fullmatch(text) is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


# ---- references: master data a record is checked against --------------------------------------


@attrs.frozen
class Reference:
    """Master rows looked up by a record's key field (a left join in a table engine)."""

    name: str  # also the master source name
    key: str  # key column in the master source
    fields: tuple[str, ...]  # master columns the rules or silver need

    def column(self, field: str) -> str:
        """The name a joined engine gives a reference field: `<reference>__<field>`."""
        return f"{self.name}__{field}"

    @property
    def found_column(self) -> str:
        return f"{self.name}__found"


# Reference data for the pure interpreter: reference name -> key -> field -> text.
ReferenceData = Mapping[str, Mapping[str, Mapping[str, Text]]]


# ---- the checks --------------------------------------------------------------------------------
# Each check is true when the record VIOLATES it.


@attrs.frozen
class Missing:
    """The field is null/absent or the empty string."""

    field: str


@attrs.frozen
class NotNumber:
    """The field is present (not null) but its text is not a number."""

    field: str


@attrs.frozen
class NotInteger:
    """The field is present (not null) but its text is not an integer."""

    field: str


@attrs.frozen
class NotTimestamp:
    """The field is null, or not an RFC 3339 date-time (TIMESTAMP_PATTERN) naming an instant."""

    field: str


@attrs.frozen
class NotOneOf:
    """The field is null or not one of the allowed texts."""

    field: str
    allowed: tuple[str, ...]


@attrs.frozen
class NumberBelow:
    """The field is a number strictly below `bound`."""

    field: str
    bound: float


@attrs.frozen
class NumberInRange:
    """The field is a number with low <= number < high."""

    field: str
    low: float
    high: float


@attrs.frozen
class UnknownReference:
    """The field is null or names no row of the reference."""

    field: str
    reference: Reference


@attrs.frozen
class DiffersFromReference:
    """The referenced row exists and one of (record field, reference field) pairs differs."""

    key_field: str
    reference: Reference
    pairs: tuple[tuple[str, str], ...]


@attrs.frozen
class DateBeforeReference:
    """The referenced row exists, both dates are valid, and the record's UTC date is earlier."""

    timestamp_field: str
    key_field: str
    reference: Reference
    reference_date_field: str


Check = Union[  # noqa: UP007 (a runtime alias; `|` of classes needs 3.10 at import)
    Missing,
    NotNumber,
    NotInteger,
    NotTimestamp,
    NotOneOf,
    NumberBelow,
    NumberInRange,
    UnknownReference,
    DiffersFromReference,
    DateBeforeReference,
]


@attrs.frozen
class Rule:
    id: str
    check: Check
    severity: Severity
    message: str


# A check bound to the reference data: true when the record violates it.
Predicate = Callable[[Record], bool]


def compile_check(check: Check, refs: ReferenceData) -> Predicate:
    """The pure interpreter: `check` as a function of one record, true when the record breaks
    it. The check's kind and its reference table are resolved here, once, not per record."""
    if isinstance(check, Missing):
        return functools.partial(_missing, check.field)
    if isinstance(check, NotNumber):
        return functools.partial(_not_parsed, parse_number, check.field)
    if isinstance(check, NotInteger):
        return functools.partial(_not_parsed, parse_integer, check.field)
    if isinstance(check, NotTimestamp):
        return functools.partial(_not_timestamp, check.field)
    if isinstance(check, NotOneOf):
        return functools.partial(_not_one_of, check.field, frozenset(check.allowed))
    if isinstance(check, NumberBelow):
        return functools.partial(_number_below, check.field, check.bound)
    if isinstance(check, NumberInRange):
        return functools.partial(_number_in_range, check.field, check.low, check.high)
    if isinstance(check, UnknownReference):
        return functools.partial(_unknown, check.field, refs.get(check.reference.name, {}))
    if isinstance(check, DiffersFromReference):
        table = refs.get(check.reference.name, {})
        return functools.partial(_differs, check.key_field, table, check.pairs)
    if isinstance(check, DateBeforeReference):
        table = refs.get(check.reference.name, {})
        return functools.partial(
            _before, check.timestamp_field, check.key_field, table, check.reference_date_field
        )
    raise TypeError(f"unknown check {check!r}")


def _missing(field: str, record: Record) -> bool:
    return is_missing(record.get(field))


def _not_parsed(parse: Callable[[Text], object], field: str, record: Record) -> bool:
    text = record.get(field)
    return text is not None and parse(text) is None


def _not_timestamp(field: str, record: Record) -> bool:
    return parse_timestamp(record.get(field)) is None


def _not_one_of(field: str, allowed: frozenset[str], record: Record) -> bool:
    return record.get(field) not in allowed


def _number_below(field: str, bound: float, record: Record) -> bool:
    number = parse_number(record.get(field))
    return number is not None and number < bound


def _number_in_range(field: str, low: float, high: float, record: Record) -> bool:
    number = parse_number(record.get(field))
    return number is not None and low <= number < high


def _row_of(table: Mapping[str, Mapping[str, Text]], key: Text) -> Mapping[str, Text] | None:
    return None if key is None else table.get(key)


def _unknown(field: str, table: Mapping[str, Mapping[str, Text]], record: Record) -> bool:
    return _row_of(table, record.get(field)) is None


def _differs(
    key_field: str,
    table: Mapping[str, Mapping[str, Text]],
    pairs: tuple[tuple[str, str], ...],
    record: Record,
) -> bool:
    row = _row_of(table, record.get(key_field))
    if row is None:
        return False
    for mine, theirs in pairs:  # noqa: SIM110 (any() of a generator: a frame per record)
        if record.get(mine) != row.get(theirs):
            return True
    return False


def _before(
    timestamp_field: str,
    key_field: str,
    table: Mapping[str, Mapping[str, Text]],
    date_field: str,
    record: Record,
) -> bool:
    row = _row_of(table, record.get(key_field))
    if row is None:
        return False
    instant = parse_timestamp(record.get(timestamp_field))
    created = parse_date(row.get(date_field))
    return instant is not None and created is not None and instant.date() < created


def violates(check: Check, record: Record, refs: ReferenceData) -> bool:
    """Does `record` break `check`?"""
    return compile_check(check, refs)(record)


def compile_rules(
    rules: tuple[Rule, ...], refs: ReferenceData
) -> Callable[[Record], tuple[Rule, ...]]:
    """Every rule a record breaks, in catalogue order, as a function of the record (each check
    compiled once: for many records against the same reference data)."""
    compiled = [(rule, compile_check(rule.check, refs)) for rule in rules]

    def broken(record: Record) -> tuple[Rule, ...]:
        return tuple([rule for rule, violated in compiled if violated(record)])

    return broken


def violations(rules: tuple[Rule, ...], record: Record, refs: ReferenceData) -> tuple[Rule, ...]:
    """Every rule the record breaks, in catalogue order."""
    return compile_rules(rules, refs)(record)


# ---- master-data rules -------------------------------------------------------------------------


class MasterAction(enum.Enum):
    NULL_AND_FLAG = "null_and_flag"  # the value is nulled and the row flagged with the rule id
    DEFAULT_WHEN_NULL = "default_when_null"  # a null becomes `default`


@attrs.frozen
class MasterRule:
    id: str
    source: str
    field: str
    action: MasterAction
    message: str
    low: float | None = None  # NULL_AND_FLAG: valid range low..high inclusive
    high: float | None = None
    default: float | None = None  # DEFAULT_WHEN_NULL


def apply_master_rule(rule: MasterRule, value: float | None) -> tuple[float | None, bool]:
    """(cleaned value, flagged?) for one master field value."""
    if rule.action is MasterAction.DEFAULT_WHEN_NULL:
        return (rule.default if value is None else value), False
    assert rule.low is not None and rule.high is not None
    if value is not None and not (rule.low <= value <= rule.high):
        return None, True
    return value, False
