"""The batch layer's DataFrame -> DataFrame functions (no I/O): references, judging, silver,
silver masters and gold. Each mirrors one pure function of the core and says which.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from adapters.spark import rules_compiler as rc
from adapters.spark import schemas
from adapters.spark.events import RAW, SOURCE_FILE, quarantine_key
from adapters.spark.expressions import column_of, condition_of
from finops_core import catalogue
from finops_core.contracts import LogicalType, SourceContract, source
from finops_core.events import EVENT_FIELDS
from finops_core.marts import Count, CountIf, FlagCounts, Mart, Max, Mean, Min, Ratio, Sum
from finops_core.masters import SILVER_DROPS
from finops_core.rules import (
    DateBeforeReference,
    DiffersFromReference,
    MasterAction,
    Reference,
    UnknownReference,
)
from finops_core.tables import SILVER_EVENTS, SILVER_MASTERS

# ---- references (pipeline.reference_data) -------------------------------------------------------


def reference_keys() -> dict[str, tuple[Reference, str]]:
    """reference name -> (reference, the event field that looks it up), read from the catalogue."""
    keys: dict[str, tuple[Reference, str]] = {}
    for rule in catalogue.EVENT_RULES:
        check = rule.check
        if isinstance(check, UnknownReference):
            found = (check.reference, check.field)
        elif isinstance(check, (DiffersFromReference, DateBeforeReference)):
            found = (check.reference, check.key_field)
        else:
            continue
        previous = keys.setdefault(check.reference.name, found)
        if previous[1] != found[1]:
            raise ValueError(f"reference {check.reference.name} is looked up by two fields")
    for reference in catalogue.REFERENCES:
        if reference.name not in keys:
            raise ValueError(f"no rule says which event field looks up {reference.name}")
    return keys


def _key_column(reference: Reference) -> str:
    return f"{reference.name}__key"


def reference_frame(master: DataFrame, reference: Reference) -> DataFrame:
    """One row per key: the master fields as the rules' text; a repeated key keeps its smallest
    row, field by field with nulls first (pipeline.reference_data)."""
    contract = source(reference.name)
    texts = [
        schemas.reference_text(F.col(field), contract.column(field).type).alias(
            reference.column(field)
        )
        for field in reference.fields
    ]
    key = schemas.reference_text(F.col(reference.key), contract.column(reference.key).type)
    rows = master.select(key.alias(_key_column(reference)), *texts).where(
        F.col(_key_column(reference)).isNotNull()
    )
    order = Window.partitionBy(_key_column(reference)).orderBy(
        *(F.col(reference.column(field)).asc_nulls_first() for field in reference.fields)
    )
    return (
        rows.withColumn("_pick", F.row_number().over(order))
        .where(F.col("_pick") == 1)
        .drop("_pick")
        .withColumn(reference.found_column, F.lit(True))
    )


def join_references(bronze: DataFrame, masters: dict[str, DataFrame]) -> DataFrame:
    """Bronze events with every reference's columns (left joins on the catalogue's key fields)."""
    joined = bronze
    for name, (reference, field) in reference_keys().items():
        table = reference_frame(masters[name], reference)
        joined = joined.join(
            F.broadcast(table), joined[field] == table[_key_column(reference)], "left"
        ).drop(_key_column(reference))
    return joined


# ---- judging and deduplication (pipeline.silver_from_bronze) ------------------------------------


def repeated_event_ids(bronze: DataFrame) -> DataFrame:
    """(event_id) of the ids carried by more than one bronze row: the only ones to deduplicate."""
    return (
        bronze.where(~rc.is_missing("event_id"))
        .groupBy("event_id")
        .agg(F.count(F.lit(1)).alias("_rows"))
        .where(F.col("_rows") > 1)
        .select("event_id")
    )


def judge(joined: DataFrame, repeated_ids: DataFrame) -> DataFrame:
    """Adds `_duplicate`, `occurrence`, `reasons` and `flags`.

    Among rows sharing an event_id the smallest (source_file, raw, occurrence) survives; rows
    without an event_id are all candidates. Only rows whose id repeats (`repeated_ids`, small)
    or is missing need ranking, so only they are shuffled: one window over them gives both the
    survivor rank and each row's occurrence (row_number - rank counts the identical
    (source_file, raw) rows before it). Every other row is its id's only row: occurrence 0.
    """
    has_id = ~rc.is_missing("event_id")
    repeated = F.broadcast(repeated_ids)
    single = (
        joined.where(has_id)
        .join(repeated, "event_id", "left_anti")
        .withColumns({"_duplicate": F.lit(False), "occurrence": F.lit(0)})
    )
    to_rank = (
        joined.where(has_id)
        .join(repeated, "event_id", "left_semi")
        .unionByName(joined.where(~has_id))
    )
    window = Window.partitionBy("event_id").orderBy(SOURCE_FILE, RAW)
    ranked = to_rank.withColumns(
        {"_row": F.row_number().over(window), "_rank": F.rank().over(window)}
    ).select(
        *joined.columns,
        (has_id & (F.col("_row") > 1)).alias("_duplicate"),
        (F.col("_row") - F.col("_rank")).alias("occurrence"),
    )
    return single.unionByName(ranked).withColumns(
        {
            "reasons": rc.rule_ids(catalogue.QUARANTINE_RULES),
            "flags": rc.rule_ids(catalogue.FLAG_RULES),
        }
    )


def quarantine_rows(judged: DataFrame) -> DataFrame:
    """Candidates that break a quarantine rule, as quarantine entries (events.QuarantineEntry)."""
    return judged.where(~F.col("_duplicate") & (F.size("reasons") > 0)).select(
        quarantine_key(F.col(SOURCE_FILE), F.col("occurrence"), F.col(RAW)).alias("quarantine_key"),
        "reasons",
        F.col(RAW).alias("raw_record"),
        SOURCE_FILE,
        "event_id",
    )


def silver_rows(judged: DataFrame) -> DataFrame:
    """Candidates that pass every quarantine rule, normalised (events.normalise)."""
    orgs, resources = catalogue.ORGS, catalogue.RESOURCES
    unit_by_metric = F.create_map(
        *(F.lit(x) for pair in catalogue.UNIT_BY_METRIC.items() for x in pair)
    )
    event_ts = rc.parse_timestamp("timestamp")
    columns: dict[str, Column] = {
        "event_id": F.col("event_id"),
        "event_ts": event_ts,
        "org_id": F.col("org_id"),
        "resource_id": F.col("resource_id"),
        "service": F.col("service"),
        "region": F.col("region"),
        "metric": F.col("metric"),
        "value": rc.parse_number("value"),
        "unit": F.when(rc.is_missing("unit"), unit_by_metric[F.col("metric")]).otherwise(
            F.col("unit")
        ),
        "cost_usd_increment": rc.parse_number("cost_usd_increment"),
        "schema_version": rc.parse_integer("schema_version"),
        "carbon_kg": rc.parse_number("carbon_kg"),
        "genai_tokens": rc.parse_integer("genai_tokens"),
        "org_name": F.col(orgs.column("org_name")),
        "industry": F.col(orgs.column("industry")),
        "plan_tier": F.col(orgs.column("plan_tier")),
        "resource_state": F.col(resources.column("state")),
        "resource_created_at": rc.parse_date(F.col(resources.column("created_at"))),
        "quality_flags": F.col("flags"),
        "source_file": F.col(SOURCE_FILE),
    }
    schema = schemas.spark_schema(SILVER_EVENTS)
    return judged.where(~F.col("_duplicate") & (F.size("reasons") == 0)).select(
        *(columns[field.name].cast(field.dataType).alias(field.name) for field in schema.fields),
        F.to_date(event_ts).alias(schemas.partition_column(SILVER_EVENTS)),
    )


BRONZE_TEXT_COLUMNS: tuple[str, ...] = (*EVENT_FIELDS, RAW, SOURCE_FILE)


# ---- silver masters (masters.silver_master_row) -------------------------------------------------

_STRING_ESCAPED = r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"'
_JSON_WS = r"[ \t\n\r]*+"
# A JSON array of strings: the only tags_json that masters.parse_tags accepts.
STRING_ARRAY = (
    rf"^{_JSON_WS}\[{_JSON_WS}"
    rf"(?:{_STRING_ESCAPED}(?:{_JSON_WS},{_JSON_WS}{_STRING_ESCAPED})*+)?+"
    rf"{_JSON_WS}\]{_JSON_WS}\z"
)


def parse_tags(text: Column) -> Column:
    """masters.parse_tags: the list when the text is a JSON array of strings, else null."""
    return F.when(text.rlike(STRING_ARRAY), F.from_json(text, T.ArrayType(T.StringType())))


def silver_master(bronze: DataFrame, contract: SourceContract) -> DataFrame:
    frame = bronze
    flags: list[Column] = []
    for rule in catalogue.master_rules_for(contract.name):
        value = F.col(rule.field)
        if rule.action is MasterAction.DEFAULT_WHEN_NULL:
            frame = frame.withColumn(rule.field, F.coalesce(value, F.lit(rule.default)))
            continue
        flag = f"_flag_{len(flags)}"
        bad = value.isNotNull() & ~((F.lit(rule.low) <= value) & (value <= F.lit(rule.high)))
        frame = frame.withColumn(flag, F.coalesce(bad, F.lit(False)))
        frame = frame.withColumn(rule.field, F.when(F.col(flag), F.lit(None)).otherwise(value))
        flags.append(F.when(F.col(flag), F.lit(rule.id)))
    if contract.name == "resources":
        frame = frame.withColumn("tags", parse_tags(F.col("tags_json")))
    quality_flags = (
        F.filter(F.array(*flags), lambda flag: flag.isNotNull())
        if flags
        else F.array().cast("array<string>")
    )
    frame = frame.withColumn("quality_flags", quality_flags)
    drops = SILVER_DROPS.get(contract.name, ())
    schema = schemas.spark_schema(SILVER_MASTERS[contract.name])
    assert not any(field.name in drops for field in schema.fields)
    return frame.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields))


# ---- marts (aggregate.aggregate) ---------------------------------------------------------------


def _zero(measure: Sum) -> Column:
    return F.lit(0) if measure.type is LogicalType.INTEGER else F.lit(0.0)


def _sum(measure: Sum) -> Column:
    """The sum of the source column over the group's rows that pass `where` (no value: null)."""
    value = F.col(measure.source).cast(schemas.spark_type(measure.type))
    if measure.where is not None:
        value = F.when(condition_of(measure.where), value)
    return F.sum(value)


def _flag_column(measure: FlagCounts, index: int) -> str:
    return f"_{measure.name}__{index}"


def _accumulated(mart: Mart) -> list[Column]:
    """One aggregate per measure, one count per FlagCounts key (internal names)."""
    columns: list[Column] = []
    for measure in mart.accumulating:
        if isinstance(measure, Sum):
            columns.append(_sum(measure).alias(measure.name))
        elif isinstance(measure, Count):
            columns.append(F.count(F.lit(1)).alias(measure.name))
        elif isinstance(measure, CountIf):
            columns.append(F.count_if(condition_of(measure.predicate)).alias(measure.name))
        elif isinstance(measure, Mean):
            columns.append(F.avg(F.col(measure.source).cast("double")).alias(measure.name))
        elif isinstance(measure, Min):
            columns.append(F.min(measure.source).alias(measure.name))
        elif isinstance(measure, Max):
            columns.append(F.max(measure.source).alias(measure.name))
        else:
            columns.extend(
                F.count_if(F.array_contains(measure.source, key)).alias(
                    _flag_column(measure, index)
                )
                for index, key in enumerate(measure.keys)
            )
    return columns


def _can_be_empty(mart: Mart, measure: Sum) -> bool:
    """Whether a group's sum can have no value: a filter, or a source column that may be null.
    (A required column, unfiltered, has a value in every row of a non-empty group.)"""
    if measure.where is not None or measure.source in {d.name for d in mart.derive}:
        return True
    return mart.source.column(measure.source).nullable


def _finished(mart: Mart, measure: Sum | Count | CountIf | Mean | Min | Max | FlagCounts) -> Column:
    """aggregate.finish of one accumulated measure, over the grouped frame."""
    if isinstance(measure, Sum):
        if measure.empty_is_null or not _can_be_empty(mart, measure):
            return F.col(measure.name)
        return F.coalesce(F.col(measure.name), _zero(measure))
    if not isinstance(measure, FlagCounts):
        return F.col(measure.name)
    entries = F.array(
        *(
            F.struct(F.lit(key).alias("key"), F.col(_flag_column(measure, index)).alias("value"))
            for index, key in enumerate(measure.keys)
        )
    )
    return F.map_from_entries(F.filter(entries, lambda entry: entry["value"] > 0))


def _ratio(measure: Ratio) -> Column:
    """aggregate.ratio: null when the denominator is 0 or null."""
    numerator, denominator = F.col(measure.numerator), F.col(measure.denominator)
    quotient = numerator.cast("double") / denominator.cast("double")
    if measure.scale != 1.0:
        quotient = quotient * F.lit(measure.scale)
    return F.when(denominator != 0, quotient)


def kept_rows(mart: Mart, source: DataFrame) -> DataFrame:
    """The source rows the mart keeps (`where`), with its derived columns."""
    if mart.where is not None:
        source = source.where(condition_of(mart.where))
    for derived in mart.derive:  # in declaration order: one may read an earlier one
        value = column_of(derived.value).cast(schemas.spark_type(derived.type))
        source = source.withColumn(derived.name, value)
    return source


def mart_rows(mart: Mart, source: DataFrame) -> DataFrame:
    """The mart compiled: `grouped_rows` of `kept_rows`."""
    return grouped_rows(mart, kept_rows(mart, source))


def grouped_rows(mart: Mart, source: DataFrame) -> DataFrame:
    """The kept rows grouped by the grain (a default where a grain value is null), every
    measure as `aggregate` finishes it, the table's data columns in order cast to their declared
    types, then the partition column (if any)."""
    grain = [
        (
            F.coalesce(F.col(g.source), F.lit(g.default))
            if g.default is not None
            else F.col(g.source)
        ).alias(g.name)
        for g in mart.grain
    ]
    grouped = source.groupBy(*grain).agg(*_accumulated(mart))
    finished = grouped.select(
        *(F.col(g.name) for g in mart.grain),
        *(_finished(mart, measure).alias(measure.name) for measure in mart.accumulating),
    )
    for ratio in mart.derived:  # in declaration order: a ratio may use an earlier one
        finished = finished.withColumn(ratio.name, _ratio(ratio))
    table = mart.table
    data = [F.col(f.name).cast(f.dataType).alias(f.name) for f in schemas.spark_schema(table)]
    if table.partition_by is not None:
        partition = schemas.spark_field(table.column(table.partition_by))
        data.append(F.col(partition.name).cast(partition.dataType).alias(partition.name))
    return finished.select(*data)
