"""Event timestamps: every RFC 3339 section 5.6 date-time is read as its UTC instant, and the
UTC date decides the partition; anything else is `timestamp_invalid`. Both engines."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finops_core.events import EVENT_FIELDS, event_date, field_text, normalise, validate_record
from finops_core.rules import fraction_micros, offset_seconds, parse_timestamp
from tests.strategies import (
    INVALID_TIMESTAMPS,
    RFC3339_FRACTIONS,
    RFC3339_OFFSETS,
    _timestamps,
    rfc3339_text,
)
from tests.test_rules import GOOD
from tests.values import one_org_references

UTC = dt.timezone.utc

ACCEPTED = [
    ("2025-07-01T10:00:00Z", dt.datetime(2025, 7, 1, 10, tzinfo=UTC)),
    ("2025-07-01T10:00:00+00:00", dt.datetime(2025, 7, 1, 10, tzinfo=UTC)),
    ("2025-07-01T10:00:00-00:00", dt.datetime(2025, 7, 1, 10, tzinfo=UTC)),
    ("2025-07-01T10:00:00.123Z", dt.datetime(2025, 7, 1, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2025-07-01T23:30:00-02:00", dt.datetime(2025, 7, 2, 1, 30, tzinfo=UTC)),
    ("2025-07-02T00:30:00+02:00", dt.datetime(2025, 7, 1, 22, 30, tzinfo=UTC)),
    ("2025-07-01t10:00:00z", dt.datetime(2025, 7, 1, 10, tzinfo=UTC)),
    ("2025-07-01T10:00:00.5+05:30", dt.datetime(2025, 7, 1, 4, 30, 0, 500000, tzinfo=UTC)),
    ("2025-07-01T10:00:00.000001Z", dt.datetime(2025, 7, 1, 10, 0, 0, 1, tzinfo=UTC)),
    # Beyond the microsecond the digits are truncated, never rounded into the next day.
    ("2025-07-01T23:59:59.9999999Z", dt.datetime(2025, 7, 1, 23, 59, 59, 999999, tzinfo=UTC)),
    (
        "2025-07-01T10:00:00." + "9" * 40 + "Z",
        dt.datetime(2025, 7, 1, 10, 0, 0, 999999, tzinfo=UTC),
    ),
    ("2025-07-01T00:00:00+23:59", dt.datetime(2025, 6, 30, 0, 1, tzinfo=UTC)),
    ("2025-07-01T23:59:00-23:59", dt.datetime(2025, 7, 2, 23, 58, tzinfo=UTC)),
    ("2024-02-29T12:00:00Z", dt.datetime(2024, 2, 29, 12, tzinfo=UTC)),  # a leap year
    ("2000-02-29T12:00:00Z", dt.datetime(2000, 2, 29, 12, tzinfo=UTC)),  # divisible by 400
    ("2025-12-31T23:00:00-01:00", dt.datetime(2026, 1, 1, tzinfo=UTC)),  # into the next year
]

REJECTED = [
    *(text for text in INVALID_TIMESTAMPS if text is not None),
    "1900-02-29T00:00:00Z",  # 1900 is not a leap year
    "2025-06-31T00:00:00Z",
    "2025-00-10T00:00:00Z",
    "2025-07-00T00:00:00Z",
    "2025-07-01T10:00:00+23:60",
    "2025-07-01T10:00:00-24:00",
    "2025-07-01T10:00:00+02",
    "2025-07-01T10:00:00+2:00",
    "2025-07-01T10:00:00 Z",
    "2025-07-01T10:00:00,5Z",  # ISO 8601's comma is not RFC 3339
    "2025-07-01T10:00:00.5.5Z",
    "2025-07-01T10:00:60Z",
    "2025-07-01T1:00:00Z",
    "2025-07-01T10:00:00ZZ",
    "2025-07-01",
    "2025-07-01T10:00:00UTC",
    "1899-12-31T23:00:00Z",  # outside the rule's 1900-2099 years
    "2100-01-01T00:00:00Z",
    "+2025-07-01T10:00:00Z",
    "２０２５-07-01T10:00:00Z",  # fullwidth digits are not ASCII DIGIT
    "",
    "\x00",
]


@pytest.mark.parametrize(("text", "instant"), ACCEPTED)
def test_every_rfc3339_spelling_is_read_as_its_utc_instant(text: str, instant: dt.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == instant
    assert parsed is not None and parsed.utcoffset() == dt.timedelta(0)
    assert event_date(text) == instant.date().isoformat()


@pytest.mark.parametrize("text", REJECTED)
def test_text_rfc3339_refuses_is_no_timestamp(text: str) -> None:
    assert parse_timestamp(text) is None
    assert event_date(text) is None


def test_fraction_and_offset_helpers_give_microseconds_and_seconds_east_of_utc() -> None:
    assert [fraction_micros(d) for d in (None, "5", "123", "000001", "1234567")] == [
        0,
        500000,
        123000,
        1,
        123456,
    ]
    assert [offset_seconds(o) for o in ("Z", "z", "+00:00", "-02:00", "+05:30", "-23:59")] == [
        0,
        0,
        0,
        -7200,
        19800,
        -(23 * 3600 + 59 * 60),
    ]


_UTC_INSTANTS = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2099, 12, 30, 23, 59, 59, 999999)
)
_OFFSET_MINUTES = st.integers(-(23 * 60 + 59), 23 * 60 + 59)


def _spelled(instant: dt.datetime, east_minutes: int, extra_digits: str, upper: bool) -> str:
    local = instant + dt.timedelta(minutes=east_minutes)
    sign = "-" if east_minutes < 0 else "+"
    hours, minutes = divmod(abs(east_minutes), 60)
    offset = f"{sign}{hours:02d}:{minutes:02d}" if east_minutes else "Z"
    text = f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}{extra_digits}{offset}"
    return text if upper else text.lower()


@given(
    _UTC_INSTANTS,
    _OFFSET_MINUTES,
    st.text("0123456789", max_size=5),
    st.booleans(),
)
def test_any_utc_instant_written_in_any_offset_reads_back_as_itself_and_its_utc_date(
    instant: dt.datetime, east_minutes: int, extra_digits: str, upper: bool
) -> None:
    text = _spelled(instant, east_minutes, extra_digits, upper)
    assert parse_timestamp(text) == instant.replace(tzinfo=UTC)
    assert event_date(text) == instant.date().isoformat()


@given(st.text(max_size=40))
def test_arbitrary_text_is_refused_or_names_an_instant_within_a_day_of_its_date(
    text: str,
) -> None:
    parsed = parse_timestamp(text)
    if parsed is not None:
        written = dt.date.fromisoformat(text[:10])
        assert abs((parsed.date() - written).days) <= 1


@given(st.sampled_from(("2025-07-03", "2025-07-18")).flatmap(lambda d: _timestamps(d, False)))
def test_the_drawn_landing_timestamps_all_fall_on_their_utc_day(text: str | None) -> None:
    parsed = parse_timestamp(text)
    assert parsed is not None and parsed.date().isoformat() in ("2025-07-03", "2025-07-18")


REFS = one_org_references("2025-07-02")
# A clean event of REFS's org and resource, without its timestamp (each test writes its own).
EVENT: dict[str, Any] = {name: value for name, value in GOOD.items() if name != "timestamp"}


def test_an_offset_timestamp_is_clean_and_its_silver_event_carries_the_utc_instant_and_date() -> (
    None
):
    record = {**EVENT, "timestamp": "2025-07-01T23:30:00.25-02:00"}
    verdict = validate_record(record, REFS)
    # UTC 2025-07-02 01:30: not before the resource's creation on 2025-07-02, so no flag.
    assert verdict.quarantine_reasons == () and verdict.flags == ()
    fields = {name: field_text(record.get(name)) for name in EVENT_FIELDS}
    event = normalise(fields, REFS, verdict.flags, "events_part_0001.jsonl")
    assert event.event_ts == dt.datetime(2025, 7, 2, 1, 30, 0, 250000, tzinfo=UTC)
    assert event.usage_date == dt.date(2025, 7, 2)


def test_the_utc_date_decides_whether_an_event_predates_its_resource() -> None:
    # Local 2025-07-02 00:30 at +02:00 is UTC 2025-07-01 22:30, the day before the creation.
    verdict = validate_record({**EVENT, "timestamp": "2025-07-02T00:30:00+02:00"}, REFS)
    assert verdict.quarantine_reasons == () and verdict.flags == ("before_resource_created",)


@pytest.mark.parametrize("text", ["2025-07-01 10:00:00Z", "2025-02-30T00:00:00Z", "soon", None])
def test_a_refused_timestamp_quarantines_the_event_as_timestamp_invalid(text: str | None) -> None:
    verdict = validate_record({**EVENT, "timestamp": text}, REFS)
    assert verdict.quarantine_reasons == ("timestamp_invalid",)


@pytest.mark.spark
def test_the_spark_expression_reads_every_text_as_the_core_does(spark: Any) -> None:
    from pyspark.sql import functions as F

    from adapters.spark import rules_compiler as rc

    # What the differential landings draw, every offset and fraction at the ends of a day.
    drawn = [
        rfc3339_text(day, second, fraction, offset, separator)
        for day in ("2025-07-03", "2025-07-19")
        for second in (0, 86399)
        for fraction in set(RFC3339_FRACTIONS)
        for offset in set(RFC3339_OFFSETS)
        for separator in ("T", "t")
    ]
    texts = [text for text, _ in ACCEPTED] + REJECTED + sorted(drawn) + [None]
    texts += [
        _spelled(dt.datetime(2025, 7, 1, 23, 59, 59, 999999), east, digits, upper)
        for east in (-(23 * 60 + 59), -120, -1, 0, 1, 330, 23 * 60 + 59)
        for digits in ("", "9", "123")
        for upper in (True, False)
    ]
    rows = (
        spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i int, ts string")
        .select(
            "i",
            F.unix_micros(rc.parse_timestamp("ts")).alias("micros"),
            F.date_format(rc.parse_timestamp("ts"), rc.ISO_DATE_FORMAT).alias("day"),
        )
        .orderBy("i")
        .collect()
    )
    spark_read = [(row.micros, row.day) for row in rows]
    core_read = [(_epoch_micros(parse_timestamp(t)), event_date(t)) for t in texts]
    assert spark_read == core_read


def _epoch_micros(instant: dt.datetime | None) -> int | None:
    if instant is None:
        return None
    return (instant - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
