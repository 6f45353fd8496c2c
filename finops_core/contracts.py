"""Landing contracts: what every source file looks like when it arrives.

Engines derive their schemas from these values; nothing else restates column lists.
"""

from __future__ import annotations

import enum

import attrs

from finops_core.errors import FinopsError


class LogicalType(enum.Enum):
    """Logical column types; each engine maps them to its own physical types."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    JSON = "json"
    # A field whose JSON type varies in the feed (number, numeric string, null): read as text.
    NUMERIC_TEXT = "numeric_text"
    # Lake and serving tables also hold these (never a landing column).
    STRING_LIST = "string_list"  # a list of texts, e.g. quality flags or quarantine reasons
    COUNT_MAP = "count_map"  # text -> count, e.g. how many events of a group carry each flag
    # Texts without repeats or order, held as a list in ascending order (a set where the store
    # has one), e.g. the methods that flag an anomaly.
    STRING_SET = "string_set"


class FileFormat(enum.Enum):
    CSV = "csv"
    JSONL = "jsonl"


@attrs.frozen
class Column:
    name: str
    type: LogicalType
    # Personally identifiable: kept in bronze, never propagated past silver.
    pii: bool = False
    # False where every writer must give a value (stores declare the column NOT NULL).
    nullable: bool = True


@attrs.frozen
class SourceContract:
    """One landing source: where its files are, their columns in order and natural key."""

    name: str
    file_pattern: str  # glob relative to <lake>/landing/
    format: FileFormat
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


S, INT, F, B, D, T, J, N = (
    LogicalType.STRING,
    LogicalType.INTEGER,
    LogicalType.FLOAT,
    LogicalType.BOOLEAN,
    LogicalType.DATE,
    LogicalType.TIMESTAMP,
    LogicalType.JSON,
    LogicalType.NUMERIC_TEXT,
)


def _columns(*pairs: tuple[str, LogicalType]) -> tuple[Column, ...]:
    return tuple(Column(name, logical_type) for name, logical_type in pairs)


CUSTOMERS_ORGS = SourceContract(
    name="customers_orgs",
    file_pattern="customers_orgs.csv",
    format=FileFormat.CSV,
    columns=_columns(
        ("org_id", S),
        ("org_name", S),
        ("industry", S),
        ("hq_region", S),
        ("plan_tier", S),
        ("is_enterprise", B),
        ("signup_date", D),
        ("sales_rep", S),
        ("lifecycle_stage", S),
        ("marketing_source", S),
        ("nps_score", F),
    ),
    natural_key=("org_id",),
)

USERS = SourceContract(
    name="users",
    file_pattern="users.csv",
    format=FileFormat.CSV,
    columns=(
        Column("user_id", S),
        Column("org_id", S),
        Column("email", S, pii=True),
        Column("role", S),
        Column("active", B),
        Column("created_at", D),
        Column("last_login", D),
    ),
    natural_key=("user_id",),
)

RESOURCES = SourceContract(
    name="resources",
    file_pattern="resources.csv",
    format=FileFormat.CSV,
    columns=_columns(
        ("resource_id", S),
        ("org_id", S),
        ("service", S),
        ("region", S),
        ("created_at", D),
        ("state", S),
        ("tags_json", J),
    ),
    natural_key=("resource_id",),
)

SUPPORT_TICKETS = SourceContract(
    name="support_tickets",
    file_pattern="support_tickets.csv",
    format=FileFormat.CSV,
    columns=_columns(
        ("ticket_id", S),
        ("org_id", S),
        ("category", S),
        ("severity", S),
        ("created_at", D),
        ("resolved_at", D),
        ("csat", F),
        ("sla_breached", B),
    ),
    natural_key=("ticket_id",),
)

MARKETING_TOUCHES = SourceContract(
    name="marketing_touches",
    file_pattern="marketing_touches.csv",
    format=FileFormat.CSV,
    columns=_columns(
        ("touch_id", S),
        ("org_id", S),
        ("campaign", S),
        ("channel", S),
        ("timestamp", D),
        ("clicked", B),
        ("converted", B),
    ),
    natural_key=("touch_id",),
)

NPS_SURVEYS = SourceContract(
    name="nps_surveys",
    file_pattern="nps_surveys.csv",
    format=FileFormat.CSV,
    columns=_columns(("org_id", S), ("survey_date", D), ("nps_score", F), ("comment", S)),
    natural_key=("org_id", "survey_date"),
)

BILLING_MONTHLY = SourceContract(
    name="billing_monthly",
    file_pattern="billing_monthly.csv",
    format=FileFormat.CSV,
    columns=_columns(
        ("invoice_id", S),
        ("org_id", S),
        ("month", D),
        ("subtotal", F),
        ("credits", F),
        ("taxes", F),
        ("currency", S),
        ("exchange_rate_to_usd", F),
    ),
    natural_key=("invoice_id",),
)

# Every usage-event field is read as text: the feed mixes JSON numbers, numeric strings, nulls
# and garbage, and the quality rules decide what each becomes. Absent keys read as null.
USAGE_EVENTS = SourceContract(
    name="usage_events",
    file_pattern="usage_events_stream/*.jsonl",
    format=FileFormat.JSONL,
    columns=_columns(
        ("event_id", S),
        ("timestamp", T),
        ("org_id", S),
        ("resource_id", S),
        ("service", S),
        ("region", S),
        ("metric", S),
        ("value", N),
        ("unit", S),
        ("cost_usd_increment", N),
        ("schema_version", N),
        ("carbon_kg", N),
        ("genai_tokens", N),
    ),
    natural_key=("event_id",),
)

MASTER_SOURCES: tuple[SourceContract, ...] = (
    CUSTOMERS_ORGS,
    USERS,
    RESOURCES,
    SUPPORT_TICKETS,
    MARKETING_TOUCHES,
    NPS_SURVEYS,
    BILLING_MONTHLY,
)
ALL_SOURCES: tuple[SourceContract, ...] = (*MASTER_SOURCES, USAGE_EVENTS)
EVENTS_DIRECTORY = "usage_events_stream"

# Key order the real feed writes per schema version (absent keys are absent, not null).
EVENT_KEYS_V1: tuple[str, ...] = USAGE_EVENTS.column_names[:11]
EVENT_KEYS_V2: tuple[str, ...] = (*EVENT_KEYS_V1, "carbon_kg")
EVENT_KEYS_V2_GENAI: tuple[str, ...] = (*EVENT_KEYS_V2, "genai_tokens")


def source(name: str) -> SourceContract:
    for contract in ALL_SOURCES:
        if contract.name == name:
            return contract
    raise KeyError(f"unknown source {name!r}; known: {', '.join(c.name for c in ALL_SOURCES)}")


class HeaderMismatch(FinopsError):
    """A landing file's header differs from its contract."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


def check_header(contract: SourceContract, file: str, header: list[str] | tuple[str, ...]) -> None:
    """Raise HeaderMismatch naming the file and the first offending column."""
    expected = contract.column_names
    got = tuple(header)
    if got == expected:
        return
    missing = [name for name in expected if name not in got]
    extra = [name for name in got if name not in expected]
    if missing:
        raise HeaderMismatch(
            file, f"column {missing[0]!r} is missing (expected {', '.join(expected)})"
        )
    if extra:
        raise HeaderMismatch(file, f"column {extra[0]!r} is not in the {contract.name} contract")
    for position, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            raise HeaderMismatch(
                file, f"column {have!r} at position {position + 1} should be {want!r}"
            )
    raise HeaderMismatch(file, "header repeats a column")
