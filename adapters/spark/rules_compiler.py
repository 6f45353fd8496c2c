"""The core's rule algebra compiled to Spark Columns.

This is the second interpreter of `finops_core.rules`.

Every check becomes a boolean Column that is true when the record VIOLATES it, never null. The
Column reads a DataFrame whose columns are the event's text fields (as `classify_lines` gives
them) plus, for each `Reference`, the joined reference fields as text named
`Reference.column(field)` and a boolean `Reference.found_column`.

The text grammars are the core's patterns, anchored for Java as `^(?:PATTERN)\\z`: Java's `$`
would also accept a trailing newline, which Python's `re.fullmatch` refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

from finops_core import rules
from finops_core.rules import (
    Check,
    DateBeforeReference,
    DiffersFromReference,
    Missing,
    NotInteger,
    NotNumber,
    NotOneOf,
    NotTimestamp,
    NumberBelow,
    NumberInRange,
    Reference,
    Rule,
    UnknownReference,
)

# strptime directives -> Java DateTimeFormatter letters, to derive Spark's pattern from the core's.
_STRPTIME_TO_JAVA: Mapping[str, str] = {
    "%Y": "yyyy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%M": "mm",
    "%S": "ss",
}
# The text `datetime.date.fromisoformat` reads once DATE_PATTERN has matched.
ISO_DATE_FORMAT = "yyyy-MM-dd"


def java_regex(pattern: str) -> str:
    """A core pattern anchored the way Python's fullmatch anchors it."""
    return f"^(?:{pattern})\\z"


def java_datetime_format(strptime_format: str) -> str:
    """A strptime format (directives and literal text) as a Java DateTimeFormatter pattern."""
    out: list[str] = []
    literal = ""
    index = 0
    while index < len(strptime_format):
        directive = strptime_format[index : index + 2]
        if directive in _STRPTIME_TO_JAVA:
            if literal:
                out.append("'" + literal.replace("'", "''") + "'")
                literal = ""
            out.append(_STRPTIME_TO_JAVA[directive])
            index += 2
        elif strptime_format[index] == "%":
            raise ValueError(f"no Java equivalent for strptime directive {directive!r}")
        else:
            literal += strptime_format[index]
            index += 1
    if literal:
        out.append("'" + literal.replace("'", "''") + "'")
    return "".join(out)


TIMESTAMP_JAVA_FORMAT = java_datetime_format(rules.TIMESTAMP_LOCAL_FORMAT)


# ---- text parsing, as the core's parse_* functions --------------------------------------------


def _col(column: str | Column) -> Column:
    return F.col(column) if isinstance(column, str) else column


def matches(column: str | Column, pattern: str) -> Column:
    """True when the (non-null) text fully matches a core pattern; null stays null."""
    return _col(column).rlike(java_regex(pattern))


def parse_number(column: str | Column) -> Column:
    """rules.parse_number: a finite double when the text is in NUMBER_PATTERN, else null."""
    text = _col(column)
    number = text.try_cast("double")
    return F.when(
        matches(text, rules.NUMBER_PATTERN) & (F.abs(number) < F.lit(float("inf"))), number
    )


def parse_integer(column: str | Column) -> Column:
    text = _col(column)
    return F.when(matches(text, rules.INTEGER_PATTERN), text.try_cast("bigint"))


def parse_timestamp(column: str | Column) -> Column:
    """rules.parse_timestamp: the UTC instant (session time zone UTC) of an RFC 3339 date-time
    in TIMESTAMP_PATTERN, microsecond precision, or null (also for impossible dates)."""
    text = _col(column)
    pattern = java_regex(rules.TIMESTAMP_PATTERN)

    def group(index: int) -> Column:
        return F.regexp_extract(text, pattern, index)

    # The local group is digits, "-", ":" and "T"/"t": upper() only spells its "t" as "T".
    # Parsed in the session time zone (UTC), so its epoch micros are the wall clock's.
    wall = F.try_to_timestamp(
        F.upper(group(rules.TIMESTAMP_LOCAL_GROUP)), F.lit(TIMESTAMP_JAVA_FORMAT)
    )
    return F.when(
        matches(text, rules.TIMESTAMP_PATTERN),
        F.timestamp_micros(
            F.unix_micros(wall)
            + fraction_micros(group(rules.TIMESTAMP_FRACTION_GROUP))
            - offset_seconds(group(rules.TIMESTAMP_OFFSET_GROUP)) * F.lit(1_000_000)
        ),
    )


def fraction_micros(digits: Column) -> Column:
    """rules.fraction_micros of a fraction group's digits ("" when absent: 0)."""
    width = rules.TIMESTAMP_FRACTION_DIGITS
    return F.rpad(F.substring(digits, 1, width), width, "0").try_cast("bigint")


def offset_seconds(offset: Column) -> Column:
    """rules.offset_seconds of a time-offset group's text ("Z", "z" or +-HH:MM)."""
    sign = F.when(F.substring(offset, 1, 1) == "-", F.lit(-1)).otherwise(F.lit(1))
    magnitude = F.substring(offset, 2, 2).try_cast("bigint") * F.lit(3600) + F.substring(
        offset, 5, 2
    ).try_cast("bigint") * F.lit(60)
    return F.when(F.upper(offset) == "Z", F.lit(0).cast("bigint")).otherwise(sign * magnitude)


def parse_date(column: str | Column) -> Column:
    text = _col(column)
    return F.when(matches(text, rules.DATE_PATTERN), F.try_to_date(text, ISO_DATE_FORMAT))


def is_missing(column: str | Column) -> Column:
    text = _col(column)
    return text.isNull() | (text == "")


# ---- checks -------------------------------------------------------------------------------------


def _found(reference: Reference) -> Column:
    return F.coalesce(F.col(reference.found_column), F.lit(False))


def _violated(check: Check) -> Column:
    if isinstance(check, Missing):
        return is_missing(check.field)
    if isinstance(check, NotNumber):
        text = F.col(check.field)
        return text.isNotNull() & ~matches(text, rules.NUMBER_PATTERN)
    if isinstance(check, NotInteger):
        text = F.col(check.field)
        return text.isNotNull() & ~matches(text, rules.INTEGER_PATTERN)
    if isinstance(check, NotTimestamp):
        return parse_timestamp(check.field).isNull()
    if isinstance(check, NotOneOf):
        text = F.col(check.field)
        return text.isNull() | ~text.isin(list(check.allowed))
    if isinstance(check, NumberBelow):
        return parse_number(check.field) < F.lit(check.bound)
    if isinstance(check, NumberInRange):
        number = parse_number(check.field)
        return (F.lit(check.low) <= number) & (number < F.lit(check.high))
    if isinstance(check, UnknownReference):
        return F.col(check.field).isNull() | ~_found(check.reference)
    if isinstance(check, DiffersFromReference):
        differs = F.lit(False)
        for mine, theirs in check.pairs:
            differs = differs | ~F.col(mine).eqNullSafe(F.col(check.reference.column(theirs)))
        return _found(check.reference) & differs
    if isinstance(check, DateBeforeReference):
        instant = parse_timestamp(check.timestamp_field)
        created = parse_date(F.col(check.reference.column(check.reference_date_field)))
        # Session time zone is UTC, so to_date gives the instant's UTC date.
        return _found(check.reference) & (F.to_date(instant) < created)
    raise TypeError(f"no Spark compilation for check {check!r}")


def violated(check: Check) -> Column:
    """True when the record violates `check`; a null comparison counts as no violation."""
    return F.coalesce(_violated(check), F.lit(False))


def rule_ids(rules_in_order: Iterable[Rule]) -> Column:
    """array<string> of the ids of the rules the row breaks, in the given (catalogue) order."""
    candidates = [F.when(violated(rule.check), F.lit(rule.id)) for rule in rules_in_order]
    if not candidates:
        return F.array().cast("array<string>")
    return F.filter(F.array(*candidates), lambda rule_id: rule_id.isNotNull())
