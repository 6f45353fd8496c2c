"""Every lake table, declared once: name, layer, columns with logical types, key and partition.

Each technology derives what it needs from these values through a small type map of its own
(Arrow/parquet and Spark schemas, SQLite and CQL DDL, row codecs); no adapter restates a column
list. Marts (gold) are declared in `finops_core.marts` and carry a `Table` built from their grain
and measures; `finops_core.serving` declares how each mart is keyed in a serving store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from finops_core.contracts import (
    INT,
    MASTER_SOURCES,
    USAGE_EVENTS,
    Column,
    D,
    F,
    LogicalType,
    S,
    SourceContract,
    T,
)
from finops_core.masters import SILVER_DROPS, SILVER_EXTRAS

# A table row: column name -> value (str, int, float, bool, date, datetime, list, dict or None).
Row = Mapping[str, object]


class Layer(enum.Enum):
    BRONZE = "bronze"
    SILVER = "silver"
    QUARANTINE = "quarantine"
    GOLD = "gold"


class WriteMode(enum.Enum):
    """How one write commits (each is one atomic table version: a reader sees all or nothing)."""

    OVERWRITE = "overwrite"  # the table becomes exactly these rows
    OVERWRITE_PARTITIONS = "overwrite_partitions"  # partitions present in the rows are replaced
    APPEND = "append"  # the rows are added
    MERGE_NEW = "merge_new"  # rows whose primary key the table lacks are added, others ignored


@attrs.frozen
class Replace:
    """A write that replaces the rows whose `column` is one of `values` (rows given must all
    have such a value): one commit, as Delta's replaceWhere / predicate overwrite does."""

    column: str
    values: frozenset[str] = attrs.field(converter=lambda values: frozenset(map(str, values)))


@attrs.frozen
class Table:
    """One lake table. `columns` is the logical order; `partition_by` names one of them."""

    name: str
    layer: Layer
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partition_by: str | None = None
    description: str = ""

    def __attrs_post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id} repeats a column")
        unknown = [n for n in (*self.primary_key, self.partition_by) if n and n not in names]
        if unknown:
            raise ValueError(f"{self.id}: {unknown[0]!r} is not one of its columns")

    @property
    def id(self) -> str:
        """`layer/name`, also the table's folder below the lake root."""
        return f"{self.layer.value}/{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        """The columns stored in the data files (a partition column lives in the folder name)."""
        return tuple(column for column in self.columns if column.name != self.partition_by)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.id} has no column {name!r}")

    def key_of(self, row: Row) -> tuple[object, ...]:
        return tuple(row[name] for name in self.primary_key)


TEXT_LIST, COUNTS = LogicalType.STRING_LIST, LogicalType.COUNT_MAP


def count_map(value: object) -> dict[str, int]:
    """A COUNT_MAP value in its one Python form: text keys in sorted order, integer counts."""
    return {str(key): int(count) for key, count in sorted(dict(value).items())}  # type: ignore[call-overload]


def text_list(value: object) -> list[str]:
    """A STRING_LIST value in its one Python form: a list of texts."""
    return [str(item) for item in value]  # type: ignore[attr-defined]


def text_set(value: object) -> list[str]:
    """A STRING_SET value in its one Python form: its distinct texts in ascending order."""
    return sorted({str(item) for item in value})  # type: ignore[attr-defined]


def columns(*pairs: tuple[str, LogicalType]) -> tuple[Column, ...]:
    return tuple(Column(name, logical_type) for name, logical_type in pairs)


def required(*pairs: tuple[str, LogicalType]) -> tuple[Column, ...]:
    return tuple(Column(name, logical_type, nullable=False) for name, logical_type in pairs)


# Provenance every bronze and silver master row carries.
MASTER_PROVENANCE = columns(("ingest_ts", T), ("source_file", S))

# ---- usage events -------------------------------------------------------------------------------

BRONZE_EVENTS = Table(
    name="usage_events",
    layer=Layer.BRONZE,
    # Every contract field as the text the feed gave (the rules read text), plus the raw line.
    columns=(
        *(Column(c.name, S) for c in USAGE_EVENTS.columns),
        *columns(("raw", S), ("source_file", S), ("ingest_ts", T), ("run_id", S)),
        Column("event_date", S),  # the UTC date of a valid timestamp, else null
    ),
    partition_by="event_date",
    description="every landing line that is a JSON object, its fields as text, with provenance",
)

SILVER_EVENTS = Table(
    name="usage_events",
    layer=Layer.SILVER,
    columns=(
        *required(("event_id", S), ("event_ts", T), ("usage_date", D), ("org_id", S)),
        *columns(("resource_id", S), ("service", S), ("region", S)),
        *required(("metric", S)),
        *columns(("value", F)),
        *required(("unit", S), ("cost_usd_increment", F), ("schema_version", INT)),
        *columns(
            ("carbon_kg", F),
            ("genai_tokens", INT),
            ("org_name", S),
            ("industry", S),
            ("plan_tier", S),
            ("resource_state", S),
            ("resource_created_at", D),
        ),
        *required(("quality_flags", TEXT_LIST), ("source_file", S)),
    ),
    primary_key=("event_id",),
    partition_by="usage_date",
    description="valid events, deduplicated by event_id, joined to orgs and resources",
)

QUARANTINE_EVENTS = Table(
    name="usage_events",
    layer=Layer.QUARANTINE,
    columns=(
        *required(("quarantine_key", S), ("reasons", TEXT_LIST), ("raw_record", S)),
        *required(("source_file", S)),
        *columns(("event_id", S), ("run_id", S), ("ingest_ts", T)),
    ),
    primary_key=("quarantine_key",),
    description="append-only: every rejected line with every reason, its raw text and provenance",
)

LANDING_FILES = Table(
    name="landing_files",
    layer=Layer.BRONZE,
    columns=(
        *required(("source_file", S), ("path", S), ("size", INT), ("sha256", S)),
        # What the file's lines became: lines = bronze_rows + duplicates + malformed + blank.
        *required(("lines", INT), ("blank", INT), ("malformed", INT), ("duplicates", INT)),
        *required(("bronze_rows", INT), ("run_id", S), ("ingest_ts", T)),
    ),
    primary_key=("source_file",),
    description="the ledger: each landing events file bronze absorbed, by name, size and SHA-256",
)

# ---- masters ------------------------------------------------------------------------------------


def bronze_master(contract: SourceContract) -> Table:
    """A CSV master typed by its contract, with provenance."""
    return Table(
        name=contract.name,
        layer=Layer.BRONZE,
        columns=(*contract.columns, *MASTER_PROVENANCE),
        description=f"{contract.file_pattern} typed by its contract",
    )


def silver_master(contract: SourceContract) -> Table:
    """Bronze columns less PII and raw JSON, plus what cleaning adds (tags, quality flags)."""
    drops = SILVER_DROPS.get(contract.name, ())
    extras = tuple(
        Column(name, logical_type) for name, logical_type in SILVER_EXTRAS.get(contract.name, ())
    )
    return Table(
        name=contract.name,
        layer=Layer.SILVER,
        columns=(
            *(c for c in contract.columns if c.name not in drops),
            *extras,
            Column("quality_flags", TEXT_LIST),
            *MASTER_PROVENANCE,
        ),
        description=f"{contract.name} cleaned by the master rules",
    )


BRONZE_MASTERS: Mapping[str, Table] = {c.name: bronze_master(c) for c in MASTER_SOURCES}
SILVER_MASTERS: Mapping[str, Table] = {c.name: silver_master(c) for c in MASTER_SOURCES}

LAKE_TABLES: tuple[Table, ...] = (
    *BRONZE_MASTERS.values(),
    BRONZE_EVENTS,
    LANDING_FILES,
    *SILVER_MASTERS.values(),
    SILVER_EVENTS,
    QUARANTINE_EVENTS,
)
