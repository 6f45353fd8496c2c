"""Arrow schemas of the lake's tables, derived from the core's contracts and value types."""

from __future__ import annotations

import pyarrow as pa

from finops_core.contracts import USAGE_EVENTS, LogicalType, SourceContract
from finops_core.events import QUARANTINE_FIELDS

ARROW_TYPES: dict[LogicalType, pa.DataType] = {
    LogicalType.STRING: pa.string(),
    LogicalType.INTEGER: pa.int64(),
    LogicalType.FLOAT: pa.float64(),
    LogicalType.BOOLEAN: pa.bool_(),
    LogicalType.DATE: pa.date32(),
    LogicalType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    LogicalType.JSON: pa.string(),
    LogicalType.NUMERIC_TEXT: pa.string(),
}
PROVENANCE = [("ingest_ts", pa.timestamp("us", tz="UTC")), ("source_file", pa.string())]


def bronze_master_schema(contract: SourceContract) -> pa.Schema:
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in contract.columns] + PROVENANCE)


# Bronze events keep every field as the text the feed gave (the rules read text), plus the line.
BRONZE_EVENTS_SCHEMA = pa.schema(
    [(name, pa.string()) for name in USAGE_EVENTS.column_names]
    + [
        ("raw", pa.string()),
        ("source_file", pa.string()),
        ("ingest_ts", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)

SILVER_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_ts", pa.timestamp("us", tz="UTC")),
        ("org_id", pa.string()),
        ("resource_id", pa.string()),
        ("service", pa.string()),
        ("region", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("cost_usd_increment", pa.float64()),
        ("schema_version", pa.int64()),
        ("carbon_kg", pa.float64()),
        ("genai_tokens", pa.int64()),
        ("org_name", pa.string()),
        ("industry", pa.string()),
        ("plan_tier", pa.string()),
        ("resource_state", pa.string()),
        ("resource_created_at", pa.date32()),
        ("quality_flags", pa.list_(pa.string())),
        ("source_file", pa.string()),
    ]
)  # + partition usage_date

QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantine_key", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("raw_record", pa.string()),
        ("source_file", pa.string()),
        ("event_id", pa.string()),
        ("run_id", pa.string()),
        ("ingest_ts", pa.timestamp("us", tz="UTC")),
    ]
)
assert tuple(QUARANTINE_SCHEMA.names[:5]) == QUARANTINE_FIELDS


def silver_master_schema(contract: SourceContract) -> pa.Schema:
    """Bronze columns less PII and raw JSON, plus parsed tags (resources) and quality flags."""
    from finops_core.masters import SILVER_DROPS

    drops = SILVER_DROPS.get(contract.name, ())
    fields = [(c.name, ARROW_TYPES[c.type]) for c in contract.columns if c.name not in drops]
    if contract.name == "resources":
        fields.append(("tags", pa.list_(pa.string())))
    fields.append(("quality_flags", pa.list_(pa.string())))
    return pa.schema(fields + PROVENANCE)
