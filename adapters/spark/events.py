"""Landing lines -> bronze usage events (+ malformed lines), as pure DataFrame functions.

`parse_event_lines` is shared by the batch engine and the speed layer. It reads no files and
writes nothing: give it a DataFrame of landing lines, get back two DataFrames.

How a line is read, exactly as the core reads it (`events.decode_line`, `events.parse_event_line`):

- A line that is not valid UTF-8 is malformed; its raw text is kept with U+FFFD replacements
  (Spark's `make_valid_utf8` replaces the same maximal subparts as Python's errors="replace").
- The common case, a flat JSON object whose values are scalars and whose strings carry no escape
  sequences, is recognised and tokenised with Java regexes (the full JSON grammar for that subset),
  so every value keeps its token text: numbers verbatim (`8.9e-05`, `95.0`, `-0.0`), true/false as
  "true"/"false", strings as-is. Spark's JSON reader would re-render numbers (`8.9E-5`, `1.5` for
  `1.50`) and accepts lines Python rejects (trailing text after the object), so it is not used.
- Every other line (escapes, nesting, non-objects, broken JSON) is rare and goes to the core's own
  parser, `finops_core.events.parse_event_line`, in an Arrow UDF over just those lines.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from adapters.spark import rules_compiler as rc
from adapters.spark import schemas
from finops_core import catalogue
from finops_core.events import EVENT_FIELDS, parse_event_line
from finops_core.tables import BRONZE_EVENTS

# Input columns of `parse_event_lines`.
RAW = "raw"  # the line as `spark.read.text(lineSep="\n")` gives it: no "\n", maybe a final "\r",
#              maybe invalid UTF-8 (Spark does not validate text it reads)
SOURCE_FILE = "source_file"  # the landing file's base name, e.g. events_part_0007.jsonl
# Output column of bronze: the UTC date of a valid timestamp (the table's partition column).
BRONZE_PARTITION = schemas.partition_column(BRONZE_EVENTS)

# ---- the flat-object grammar (Java regex) -------------------------------------------------------
_WS = r"[ \t\r]*+"  # JSON whitespace; a line holds no "\n"
_STRING = r'"[^"\\\x00-\x1f]*+"'  # a JSON string without escape sequences
_NUMBER = r"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+"
_VALUE = rf"(?:{_STRING}|{_NUMBER}|true|false|null)"
_PAIR = rf"{_STRING}{_WS}:{_WS}{_VALUE}"
FLAT_OBJECT = rf"^{_WS}\{{{_WS}(?:{_PAIR}(?:{_WS},{_WS}{_PAIR})*+)?+{_WS}\}}{_WS}\z"
# One key/value pair of a flat object: group 1 the key, group 2 the value token. Scanning a line
# that matched FLAT_OBJECT from the left finds exactly its pairs, in order.
PAIR_TOKEN = r'"([^"\\\x00-\x1f]*+)"[ \t\r]*+:[ \t\r]*+("[^"\\\x00-\x1f]*+"|[^,}\s]++)'

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


def _text_of(token: Column) -> Column:
    return (
        F.when(token.isNull() | (token == "null"), F.lit(None).cast("string"))
        .when(token.startswith('"'), token.substr(F.lit(2), F.length(token) - 2))
        .otherwise(token)
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


def parse_event_lines(lines: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(bronze, malformed) from landing lines.

    Input columns: `raw` (string: one landing line without its "\\n", as read by
    `spark.read.text(..., lineSep="\\n")`, possibly ending in "\\r" or holding invalid UTF-8) and
    `source_file` (string: the file's base name). Other columns are ignored.

    bronze: every contract field as text (`finops_core.contracts.USAGE_EVENTS`), `raw`,
    `source_file` and `event_date` (the timestamp's UTC date as yyyy-MM-dd, null when invalid).
    malformed: the quarantine columns `quarantine_key`, `reasons` (["malformed_record"]),
    `raw_record`, `source_file`, `event_id` (null). Keys number identical (source_file, raw) lines
    with a window, so call this on a static DataFrame (in Structured Streaming: in foreachBatch).
    The caller adds `ingest_ts` and `run_id` to both.
    """
    decoded = decoded_lines(lines).withColumn(
        "_flat", F.col("_valid") & F.col(RAW).rlike(FLAT_OBJECT)
    )

    # Fast path: flat objects, tokenised in the JVM.
    pairs = decoded.where(F.col("_flat")).select(
        RAW,
        SOURCE_FILE,
        F.reverse(F.regexp_extract_all(F.col(RAW), F.lit(PAIR_TOKEN), 1)).alias("_keys"),
        F.reverse(F.regexp_extract_all(F.col(RAW), F.lit(PAIR_TOKEN), 2)).alias("_values"),
    )
    # One step per intermediate column, so each is computed once per row (Spark keeps projects
    # apart rather than repeat a non-trivial expression, and the generated code stays small).
    positions = pairs.select(
        RAW,
        SOURCE_FILE,
        "_values",
        *(
            F.array_position("_keys", F.lit(name)).cast("int").alias(f"_p{i}")
            for i, name in enumerate(EVENT_FIELDS)
        ),
    )
    tokens = positions.select(
        RAW,
        SOURCE_FILE,
        *(
            F.when(F.col(f"_p{i}") > 0, F.element_at("_values", F.col(f"_p{i}"))).alias(f"_t{i}")
            for i in range(len(EVENT_FIELDS))
        ),
    )
    flat_objects = tokens.select(
        *(_text_of(F.col(f"_t{index}")).alias(name) for index, name in enumerate(EVENT_FIELDS)),
        RAW,
        SOURCE_FILE,
    )

    # Rare path: every other valid line, through the core's parser. A separate branch (the input
    # is read twice) costs less than sending every row through the Python UDF's plumbing.
    rare = decoded.where(F.col("_valid") & ~F.col("_flat")).select(
        RAW,
        SOURCE_FILE,
        _core_parser()(F.col(RAW)).alias(_PY_FIELDS),  # type: ignore[operator]
    )
    rare_objects = rare.where(F.col(_PY_FIELDS).isNotNull()).select(
        *(
            F.element_at(F.col(_PY_FIELDS), index + 1).alias(name)
            for index, name in enumerate(EVENT_FIELDS)
        ),
        RAW,
        SOURCE_FILE,
    )
    # events.event_date: the date of a valid timestamp; TIMESTAMP_PATTERN starts with it verbatim.
    bronze = flat_objects.unionByName(rare_objects).withColumn(
        BRONZE_PARTITION,
        F.when(rc.parse_timestamp("timestamp").isNotNull(), F.substring("timestamp", 1, 10)),
    )

    not_objects = (
        decoded.where(~F.col("_valid"))
        .select(RAW, SOURCE_FILE)
        .unionByName(rare.where(F.col(_PY_FIELDS).isNull()).select(RAW, SOURCE_FILE))
    )
    malformed = with_quarantine_keys(not_objects).select(
        "quarantine_key",
        F.array(F.lit(catalogue.MALFORMED_RECORD)).alias("reasons"),
        F.col(RAW).alias("raw_record"),
        SOURCE_FILE,
        F.lit(None).cast("string").alias("event_id"),
    )
    return bronze, malformed


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
