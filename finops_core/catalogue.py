"""Every data-quality rule of the product, in one place: id, check, severity, message.

Order matters only for presentation: reasons and flags are always listed in this order.
"""

from __future__ import annotations

from finops_core.rules import (
    DateBeforeReference,
    DiffersFromReference,
    MasterAction,
    MasterRule,
    Missing,
    NotInteger,
    NotNumber,
    NotOneOf,
    NotTimestamp,
    NumberBelow,
    NumberInRange,
    Reference,
    Rule,
    Severity,
    UnknownReference,
)

# Units are implied by metrics one to one; a missing unit is imputed from this table.
UNIT_BY_METRIC: dict[str, str] = {
    "requests": "count",
    "cpu_hours": "hours",
    "storage_gb_hours": "gb_hours",
}
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = ("1", "2")
COST_TOLERANCE = -0.01  # costs in [-0.01, 0) are rounding noise: kept and flagged

ORGS = Reference(name="customers_orgs", key="org_id", fields=("org_name", "industry", "plan_tier"))
RESOURCES = Reference(
    name="resources",
    key="resource_id",
    fields=("org_id", "service", "region", "created_at", "state"),
)
REFERENCES: tuple[Reference, ...] = (ORGS, RESOURCES)

# A line that is not a JSON object (or not UTF-8) never reaches the record checks: the parser
# gives it this reason. It is listed here so the catalogue names every reason that exists.
MALFORMED_RECORD = "malformed_record"
MALFORMED_MESSAGE = "the line is not a UTF-8 JSON object; its raw text is kept"

Q, F = Severity.QUARANTINE, Severity.FLAG

EVENT_RULES: tuple[Rule, ...] = (
    Rule("event_id_missing", Missing("event_id"), Q, "event_id is null or empty"),
    Rule(
        "timestamp_invalid",
        NotTimestamp("timestamp"),
        Q,
        "timestamp is missing or not an RFC 3339 date-time naming a real instant: "
        "YYYY-MM-DDTHH:MM:SS, optional .fraction, then Z or +-HH:MM (T and Z in either case; "
        "no space for T, no leap second; year 1900-2099)",
    ),
    Rule("org_unknown", UnknownReference("org_id", ORGS), Q, "org_id is not in customers_orgs"),
    Rule("cost_missing", Missing("cost_usd_increment"), Q, "cost_usd_increment is null or absent"),
    Rule(
        "cost_not_numeric", NotNumber("cost_usd_increment"), Q, "cost_usd_increment is not a number"
    ),
    Rule(
        "cost_below_min",
        NumberBelow("cost_usd_increment", COST_TOLERANCE),
        Q,
        "cost_usd_increment is below -0.01",
    ),
    Rule("value_not_numeric", NotNumber("value"), Q, "value is present but not a number"),
    Rule(
        "schema_version_unsupported",
        NotOneOf("schema_version", SUPPORTED_SCHEMA_VERSIONS),
        Q,
        "schema_version is not 1 or 2",
    ),
    Rule(
        "metric_unknown",
        NotOneOf("metric", tuple(UNIT_BY_METRIC)),
        Q,
        "metric is not requests, cpu_hours or storage_gb_hours",
    ),
    Rule("carbon_not_numeric", NotNumber("carbon_kg"), Q, "carbon_kg is present but not a number"),
    Rule(
        "tokens_not_integer",
        NotInteger("genai_tokens"),
        Q,
        "genai_tokens is present but not an integer",
    ),
    Rule("unit_imputed", Missing("unit"), F, "unit was missing and is imputed from metric"),
    Rule("value_missing", Missing("value"), F, "value is null: it adds nothing to the usage sums"),
    Rule(
        "cost_negative_within_tolerance",
        NumberInRange("cost_usd_increment", COST_TOLERANCE, 0.0),
        F,
        "cost_usd_increment is negative but within the -0.01 tolerance",
    ),
    Rule(
        "resource_unknown",
        UnknownReference("resource_id", RESOURCES),
        F,
        "resource_id is not in resources",
    ),
    Rule(
        "resource_mismatch",
        DiffersFromReference(
            "resource_id",
            RESOURCES,
            (("org_id", "org_id"), ("service", "service"), ("region", "region")),
        ),
        F,
        "org_id, service or region differ from the resource's",
    ),
    Rule(
        "before_resource_created",
        DateBeforeReference("timestamp", "resource_id", RESOURCES, "created_at"),
        F,
        "the event's UTC date is before the resource's created_at",
    ),
)

QUARANTINE_RULES: tuple[Rule, ...] = tuple(r for r in EVENT_RULES if r.severity is Q)
FLAG_RULES: tuple[Rule, ...] = tuple(r for r in EVENT_RULES if r.severity is F)
QUARANTINE_REASONS: tuple[str, ...] = (MALFORMED_RECORD, *(r.id for r in QUARANTINE_RULES))
FLAG_IDS: tuple[str, ...] = tuple(r.id for r in FLAG_RULES)

MASTER_RULES: tuple[MasterRule, ...] = (
    MasterRule(
        "nps_out_of_range",
        "customers_orgs",
        "nps_score",
        MasterAction.NULL_AND_FLAG,
        "nps_score outside -100..100 is nulled",
        low=-100.0,
        high=100.0,
    ),
    MasterRule(
        "nps_out_of_range",
        "nps_surveys",
        "nps_score",
        MasterAction.NULL_AND_FLAG,
        "nps_score outside -100..100 is nulled",
        low=-100.0,
        high=100.0,
    ),
    MasterRule(
        "csat_out_of_range",
        "support_tickets",
        "csat",
        MasterAction.NULL_AND_FLAG,
        "csat outside 1..5 is nulled",
        low=1.0,
        high=5.0,
    ),
    MasterRule(
        "credits_defaulted",
        "billing_monthly",
        "credits",
        MasterAction.DEFAULT_WHEN_NULL,
        "a null credits means no credit: 0",
        default=0.0,
    ),
)


def master_rules_for(source: str) -> tuple[MasterRule, ...]:
    return tuple(rule for rule in MASTER_RULES if rule.source == source)


def rule(rule_id: str) -> Rule:
    for candidate in EVENT_RULES:
        if candidate.id == rule_id:
            return candidate
    raise KeyError(rule_id)
