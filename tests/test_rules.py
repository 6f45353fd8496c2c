"""The rule catalogue and its pure interpreter, rule by rule on hand-written records."""

from __future__ import annotations

import pytest

from finops_core import catalogue
from finops_core.contracts import BILLING_MONTHLY, RESOURCES, USERS, HeaderMismatch, check_header
from finops_core.events import parse_event_line, validate_record
from finops_core.masters import silver_master_row, typed_row
from tests.values import one_org_references

REFS = one_org_references("2025-07-10")
GOOD = {
    "event_id": "evt_1",
    "timestamp": "2025-07-18T10:00:00Z",
    "org_id": "org_a",
    "resource_id": "res_a",
    "service": "compute",
    "region": "us-east",
    "metric": "requests",
    "value": 120.0,
    "unit": "count",
    "cost_usd_increment": 1.5,
    "schema_version": 2,
    "carbon_kg": 0.024,
}


def test_a_clean_event_breaks_no_rule():
    verdict = validate_record(GOOD, REFS)
    assert verdict.quarantine_reasons == () and verdict.flags == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_id": None}, "event_id_missing"),
        ({"event_id": ""}, "event_id_missing"),
        ({"timestamp": "2025-02-30T00:00:00Z"}, "timestamp_invalid"),
        ({"timestamp": "2025-07-18 10:00:00"}, "timestamp_invalid"),
        ({"org_id": "org_zzz"}, "org_unknown"),
        ({"cost_usd_increment": None}, "cost_missing"),
        ({"cost_usd_increment": "abc"}, "cost_not_numeric"),
        ({"cost_usd_increment": -0.0101}, "cost_below_min"),
        ({"value": "abc"}, "value_not_numeric"),
        ({"schema_version": 3}, "schema_version_unsupported"),
        ({"metric": "gpu_hours"}, "metric_unknown"),
        ({"carbon_kg": "heavy"}, "carbon_not_numeric"),
        ({"genai_tokens": 1.5}, "tokens_not_integer"),
    ],
)
def test_each_quarantine_rule_fires_alone_on_the_field_it_guards(change, reason):
    assert validate_record({**GOOD, **change}, REFS).quarantine_reasons == (reason,)


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"unit": None}, "unit_imputed"),
        ({"value": None}, "value_missing"),
        ({"cost_usd_increment": -0.01}, "cost_negative_within_tolerance"),
        ({"cost_usd_increment": -0.004}, "cost_negative_within_tolerance"),
        ({"resource_id": "res_zzz"}, "resource_unknown"),
        ({"region": "eu-west"}, "resource_mismatch"),
        ({"timestamp": "2025-07-09T23:59:00Z"}, "before_resource_created"),
    ],
)
def test_each_flag_rule_keeps_the_row_and_names_the_flag(change, flag):
    verdict = validate_record({**GOOD, **change}, REFS)
    assert verdict.quarantine_reasons == ()
    assert verdict.flags == (flag,)


def test_negative_zero_cost_and_numeric_string_value_are_clean():
    assert validate_record({**GOOD, "cost_usd_increment": -0.0, "value": "95.0"}, REFS).flags == ()


def test_numbers_keep_their_token_text_when_a_line_is_parsed():
    fields = parse_event_line(
        '{"value": 8.9e-05, "carbon_kg": 0, "cost_usd_increment": -0.0, "unit": true}'
    )
    assert fields is not None
    assert (fields["value"], fields["carbon_kg"], fields["cost_usd_increment"], fields["unit"]) == (
        "8.9e-05",
        "0",
        "-0.0",
        "true",
    )
    assert fields["event_id"] is None


@pytest.mark.parametrize(
    "line",
    [
        "[1]",
        '"x"',
        "42",
        "{",
        "",
        "NaN",
        '{"value": NaN}',
        '{"org_id": "\\ud800"}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_lines_that_are_not_json_objects_do_not_parse(line):
    assert parse_event_line(line) is None


def test_every_rule_id_is_unique_and_every_rule_has_a_message():
    ids = [rule.id for rule in catalogue.EVENT_RULES]
    assert len(ids) == len(set(ids)) == 17
    assert all(rule.message for rule in catalogue.EVENT_RULES)
    assert catalogue.QUARANTINE_REASONS[0] == "malformed_record"


def test_master_rules_null_and_flag_out_of_range_scores_and_default_credits():
    billing = silver_master_row(
        "billing_monthly",
        typed_row(
            BILLING_MONTHLY, ["inv_1", "org_a", "2025-07-01", "10.0", None, "2.1", "USD", "0.97"]
        ),
    )
    assert billing["credits"] == 0.0 and billing["quality_flags"] == []
    org = silver_master_row("customers_orgs", {"org_id": "org_a", "nps_score": 101.0})
    assert org["nps_score"] is None and org["quality_flags"] == ["nps_out_of_range"]
    ticket = silver_master_row("support_tickets", {"ticket_id": "t", "csat": 0.0})
    assert ticket["csat"] is None and ticket["quality_flags"] == ["csat_out_of_range"]
    assert silver_master_row("support_tickets", {"ticket_id": "t", "csat": 5.0})["csat"] == 5.0


def test_users_lose_their_email_and_resources_get_parsed_tags():
    user = silver_master_row(
        "users",
        typed_row(USERS, ["u", "org_a", "u@example.com", "admin", "True", "2025-07-01", None]),
    )
    assert "email" not in user and user["active"] is True
    resource = silver_master_row(
        "resources",
        typed_row(
            RESOURCES,
            [
                "r",
                "org_a",
                "compute",
                "us-east",
                "2025-07-01",
                "running",
                '["env:prod", "team:a,b"]',
            ],
        ),
    )
    assert resource["tags"] == ["env:prod", "team:a,b"]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (
            ["invoice_id", "org_id", "month", "subtotal", "credits", "taxes", "currency"],
            "'exchange_rate_to_usd' is missing",
        ),
        (
            [
                "invoice_id",
                "org_id",
                "month",
                "subtotal",
                "credits",
                "taxes",
                "currency",
                "exchange_rate_to_usd",
                "extra",
            ],
            "'extra' is not in",
        ),
        (
            [
                "invoice_id",
                "org",
                "month",
                "subtotal",
                "credits",
                "taxes",
                "currency",
                "exchange_rate_to_usd",
            ],
            "'org_id' is missing",
        ),
    ],
)
def test_a_header_that_differs_from_the_contract_names_the_file_and_the_column(header, named):
    with pytest.raises(HeaderMismatch) as error:
        check_header(BILLING_MONTHLY, "billing_monthly.csv", header)
    assert "billing_monthly.csv" in str(error.value) and named in str(error.value)
