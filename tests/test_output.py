"""How the CLI writes values as JSON: floats without the noise of binary arithmetic."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from entrypoints.output import json_value, render_rows


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (465.46000000000004, 465.46),  # (394.97 - 12.45 + 82.94) * 1.0 on the real data
        (47.36789999999999, 47.3679),
        (0.1 + 0.2, 0.3),
        (0.08621709401709403, 0.086217094017094),
        (148_351.58, 148_351.58),
        (1e-20, 1e-20),
        (604.0, 604.0),
        (-0.0, -0.0),
    ],
)
def test_a_float_is_written_to_fifteen_significant_digits_and_stays_a_float(
    value: float, shown: float
) -> None:
    written = json_value(value)
    assert written == shown and isinstance(written, float)


def test_integers_booleans_texts_dates_and_non_finite_floats_are_left_as_they_are() -> None:
    assert json_value(663_330_873_523) == 663_330_873_523
    assert json_value(True) is True and json_value("1.50") == "1.50"
    assert json_value(dt.date(2025, 7, 1)) == "2025-07-01"
    assert math.isnan(json_value(float("nan"))) and json_value(float("inf")) == float("inf")
    assert json_value({"a": 0.30000000000000004, "b": [1.0000000000000002]}) == {
        "a": 0.3,
        "b": [1.0],
    }


def test_json_rows_carry_the_rounded_floats() -> None:
    rows = [{"org_id": "org_a", "net_revenue_usd": 465.46000000000004, "invoice_count": 1}]
    assert json.loads(render_rows(rows, ("org_id", "net_revenue_usd", "invoice_count"), True)) == [
        {"org_id": "org_a", "net_revenue_usd": 465.46, "invoice_count": 1}
    ]
