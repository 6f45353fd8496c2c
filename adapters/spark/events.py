"""Landing lines -> bronze usage events (+ malformed lines), as pure DataFrame functions.

`classify_lines` is shared by the batch engine and the speed layer. It reads no files and writes
nothing: give it a DataFrame of landing lines, get back one row per line saying what it is.

A line is read as the core reads it (`events.decode_line`, `events.parse_event_line`), judged on
values and outcomes, not on how a number was spelled (bronze keeps the raw line):

- A line that is not valid UTF-8 is malformed; its raw text is kept with U+FFFD replacements
  (Spark's `make_valid_utf8` replaces the same maximal subparts as Python's errors="replace").
- The common case, one flat JSON object (exactly one "{" first and one "}" last, no "[", no
  backslash, under 1,000 characters), is parsed by Spark's own JSON reader (`from_json`, strict
  options, a corrupt-record column): one parse per line, no regex tokenizer. For such lines Spark
  and the core accept the same lines (the strict options refuse what RFC 8259 refuses, as Python's
  parser does; the single "}" leaves no room for trailing text, which Spark would ignore and
  Python refuses; the length bound keeps numbers under Jackson's 1,000-digit limit).
  Spark re-renders number tokens (`8.9E-5` for `8.9e-05`, `1.5` for `1.50`, `"Infinity"` for
  `1e400`): in number fields that is the same value for `rules.parse_number`/`parse_integer`;
  in a text field the token's own text is taken from the line (rare: a number where text is due).
- Every other valid line (escapes, nesting, arrays, long lines, a BOM inside the file) is rare
  and goes to the core's own parser, `finops_core.events.parse_event_line`, in an Arrow UDF that
  is given only those lines (null for every other row).
- A blank line (`events.is_blank`: empty or only spaces, tabs and "\r") is no record: neither
  bronze nor malformed, only marked `_blank` to be counted. A BOM that starts a file never
  reaches here: Hadoop's line reader, which `spark.read.text` uses, drops it (as
  `events.split_lines` does).
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.spark import rules_compiler as rc
from adapters.spark import schemas
from finops_core import catalogue
from finops_core.contracts import USAGE_EVENTS, LogicalType
from finops_core.events import EVENT_FIELDS, parse_event_line
from finops_core.tables import BRONZE_EVENTS

# Input columns of `classify_lines`.
RAW = "raw"  # the line as `spark.read.text(lineSep="\n")` gives it: no "\n", maybe a final "\r",
#              maybe invalid UTF-8 (Spark does not validate text it reads)
SOURCE_FILE = "source_file"  # the landing file's base name, e.g. events_part_0007.jsonl
# Output column of bronze: the UTC date of a valid timestamp (the table's partition column).
BRONZE_PARTITION = schemas.partition_column(BRONZE_EVENTS)
# Output columns of `classify_lines`: whether the line is malformed, whether it is blank (no
# record at all); a line that is neither is a bronze event.
MALFORMED = "_malformed"
BLANK = "_blank"

# Jackson refuses numbers of more than 1,000 digits (StreamReadConstraints), Python does not:
# longer lines take the core's path.
FAST_MAX_CHARS = 1000
_JSON_WS = " \t\r"  # JSON whitespace a line can hold (it has no "\n")
_CORRUPT = "_corrupt"
# Spark's JSON reader, as strict as RFC 8259 (and Python's json): these options default to lenient.
JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": _CORRUPT,
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "allowNumericLeadingZeros": "false",
    "allowUnquotedFieldNames": "false",
    "allowComments": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}
# How Jackson renders a number token read as a string: Java's Long/BigInteger or Double text,
# a non-finite double quoted.
_RENDERED_NUMBER = r'^(-?[0-9]+(\.[0-9]+(E-?[0-9]+)?)?|"-?Infinity")$'
# Fields the contract reads as text (the others are NUMERIC_TEXT: parsed before any use).
_TEXT_FIELDS = tuple(c.name for c in USAGE_EVENTS.columns if c.type is not LogicalType.NUMERIC_TEXT)

_PY_FIELDS = "_py_fields"


def _parse_with_core(texts: pa.Array) -> pa.Array:
    """The core's parser over the rare lines (null in, null out; null for a non-object)."""
    result_type = pa.list_(pa.string())
    if texts.null_count == len(texts):  # the usual batch: the fast path took every line
        return pa.nulls(len(texts), type=result_type)
    parsed: list[list[str | None] | None] = []
    for text in texts.to_pylist():
        fields = None if text is None else parse_event_line(text)
        parsed.append(None if fields is None else [fields[name] for name in EVENT_FIELDS])
    return pa.array(parsed, type=result_type)


def _core_parser() -> object:
    # Built on first use: creating a UDF needs no session, but keep imports free of side effects.
    return F.arrow_udf(_parse_with_core, "array<string>")  # type: ignore[call-overload]


def _json_schema() -> T.StructType:
    return T.StructType(
        [T.StructField(name, T.StringType()) for name in EVENT_FIELDS]
        + [T.StructField(_CORRUPT, T.StringType())]
    )


def decoded_lines(lines: DataFrame) -> DataFrame:
    """(raw, source_file, _valid): raw as the core keeps it.

    The final "\\r" is dropped and bad bytes become U+FFFD.
    """
    # Validity is judged on the bytes as read (string functions would already replace bad bytes);
    # a final "\r" is ASCII, so dropping it after the replacement gives the same text.
    return lines.select(
        F.regexp_replace(F.make_valid_utf8(F.col(RAW)), r"\r\z", "").alias(RAW),
        F.col(SOURCE_FILE),
        F.is_valid_utf8(F.col(RAW)).alias("_valid"),
    )


def is_blank(raw: Column) -> Column:
    """`events.is_blank`: the line is empty or only spaces, tabs and carriage returns. (A line
    with bytes that are not UTF-8 is never blank: btrim stops at them.)"""
    return F.btrim(raw, F.lit(_JSON_WS)) == F.lit("")


def _is_flat_object(raw: Column) -> Column:
    """The fast path's lines: one "{" first, one "}" last (JSON whitespace around), no "[",
    no backslash, shorter than FAST_MAX_CHARS. String functions only: no regex."""
    trimmed = F.btrim(raw, F.lit(_JSON_WS))
    structural = F.length(trimmed) - F.length(F.translate(trimmed, "{}[\\", ""))
    return (
        (F.length(raw) < FAST_MAX_CHARS)
        & trimmed.startswith("{")
        & trimmed.endswith("}")
        & (structural == 2)
    )


def _token_text(raw: Column, field: str, value: Column) -> Column:
    """The token's own text of a field whose number Spark re-rendered where the core keeps the
    token: a number in a text field (`1.50` must stay "1.50", not "1.5"), or a number out of a
    double's range in a number field (`1e400`, which Spark turns into the string "Infinity").
    On a fast-path line a key's text can only be a key (no string holds a quote), and the last
    occurrence is the value both parsers keep."""
    rerendered = (
        value.rlike(_RENDERED_NUMBER)
        if field in _TEXT_FIELDS
        else value.isin('"Infinity"', '"-Infinity"')
    )
    # The last value of the key: a number token, or just the quote that opens a string.
    token = F.regexp_extract(raw, rf'^.*"{field}"[ \t\r]*:[ \t\r]*(-?[0-9][0-9.eE+\-]*|")', 1)
    return F.when(rerendered & (token != "") & (token != '"'), token).otherwise(value)


def classify_lines(lines: DataFrame) -> DataFrame:
    """One row per landing line: `raw` (as the core keeps it), `source_file`, `_malformed`,
    `_blank` (never both true), and every contract field as text (null unless a bronze event).

    Input columns: `raw` (string: one landing line without its "\\n", as read by
    `spark.read.text(..., lineSep="\\n")`, possibly ending in "\\r" or holding invalid UTF-8) and
    `source_file` (string: the file's base name). Other columns are ignored.
    """
    decoded = decoded_lines(lines)
    fast = F.col("_valid") & _is_flat_object(F.col(RAW))
    parsed = decoded.select(
        RAW,
        SOURCE_FILE,
        F.col("_valid"),
        is_blank(F.col(RAW)).alias(BLANK),
        fast.alias("_fast"),
        F.from_json(F.when(fast, F.col(RAW)), _json_schema(), JSON_OPTIONS).alias("_json"),
    )
    rare = F.col("_valid") & ~F.col("_fast") & ~F.col(BLANK)
    with_rare = parsed.select(
        "*",
        _core_parser()(F.when(rare, F.col(RAW))).alias(_PY_FIELDS),  # type: ignore[operator]
    )
    fast_ok = F.col("_fast") & F.col(f"_json.{_CORRUPT}").isNull()

    def field(index: int, name: str) -> Column:
        fast_value = _token_text(F.col(RAW), name, F.col(f"_json.{name}"))
        return F.when(fast_ok, fast_value).otherwise(F.element_at(_PY_FIELDS, index + 1))

    malformed = ~(fast_ok | (rare & F.col(_PY_FIELDS).isNotNull()) | F.col(BLANK))
    return with_rare.select(
        *(field(index, name).alias(name) for index, name in enumerate(EVENT_FIELDS)),
        RAW,
        SOURCE_FILE,
        malformed.alias(MALFORMED),
        BLANK,
    )


def bronze_of(classified: DataFrame) -> DataFrame:
    """The bronze events of classified lines: every contract field as text, `raw`,
    `source_file` and `event_date` (the timestamp's UTC date as yyyy-MM-dd, null when invalid).
    The caller adds `ingest_ts` and `run_id`."""
    # events.event_date: the UTC date of a valid timestamp (session time zone UTC), which an
    # offset can move off the date the text starts with.
    return (
        classified.where(~F.col(MALFORMED) & ~F.col(BLANK))
        .select(*EVENT_FIELDS, RAW, SOURCE_FILE)
        .withColumn(
            BRONZE_PARTITION,
            F.date_format(rc.parse_timestamp("timestamp"), rc.ISO_DATE_FORMAT),
        )
    )


def malformed_of(classified: DataFrame) -> DataFrame:
    """The malformed lines as quarantine entries: `quarantine_key`, `reasons`
    (["malformed_record"]), `raw_record`, `source_file`, `event_id` (null). Keys number identical
    (source_file, raw) lines with a window, so call this on a static DataFrame (in Structured
    Streaming: in foreachBatch). The caller adds `ingest_ts` and `run_id`."""
    return malformed_entries(classified.where(F.col(MALFORMED)).select(RAW, SOURCE_FILE))


def malformed_entries(lines: DataFrame) -> DataFrame:
    """Quarantine entries of (raw, source_file) rows that are malformed lines."""
    return with_quarantine_keys(lines).select(
        "quarantine_key",
        F.array(F.lit(catalogue.MALFORMED_RECORD)).alias("reasons"),
        F.col(RAW).alias("raw_record"),
        SOURCE_FILE,
        F.lit(None).cast("string").alias("event_id"),
    )


def quarantine_key(source_file: Column, occurrence: Column, raw: Column) -> Column:
    """events.quarantine_key: sha256 hex of f"{source_file}\\n{occurrence}\\n{raw}" (UTF-8)."""
    return F.sha2(F.concat_ws("\n", source_file, occurrence.cast("string"), raw), 256)


def with_quarantine_keys(frame: DataFrame) -> DataFrame:
    """Adds `occurrence` (index among identical (source_file, raw) rows) and `quarantine_key`."""
    identical = Window.partitionBy(SOURCE_FILE, RAW).orderBy(SOURCE_FILE)
    numbered = frame.withColumn("occurrence", F.row_number().over(identical) - 1)
    return numbered.withColumn(
        "quarantine_key", quarantine_key(F.col(SOURCE_FILE), F.col("occurrence"), F.col(RAW))
    )
