"""Bronze fields compared on values: the two engines agree on the number a field holds, not on
how its token was spelled (Spark's JSON reader renders 8.9e-05 as 8.9E-5; bronze keeps the raw
line, so nothing of the original is lost)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from finops_core.contracts import USAGE_EVENTS, LogicalType
from finops_core.pipeline import ReferenceData, reference_data
from finops_core.rules import NUMBER_PATTERN

# Contract fields read as numbers; every other field is text and compared as text.
NUMBER_FIELDS = frozenset(
    c.name for c in USAGE_EVENTS.columns if c.type is LogicalType.NUMERIC_TEXT
)


def number_or_text(text: str | None) -> tuple[str, object]:
    """("number", its value) for a number's text, ("text", the text) for anything else."""
    if text is not None and re.fullmatch(NUMBER_PATTERN, text):
        return ("number", float(text))
    return ("text", text)


def bronze_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A bronze row with its number fields as values (see `number_or_text`)."""
    return {
        name: number_or_text(value) if name in NUMBER_FIELDS else value
        for name, value in row.items()
    }


def one_org_references(created_at: str) -> ReferenceData:
    """The reference data of one org (org_a) and its compute resource res_a created that day."""
    return reference_data(
        [{"org_id": "org_a", "org_name": "A", "industry": "Retail", "plan_tier": "pro"}],
        [
            {
                "resource_id": "res_a",
                "org_id": "org_a",
                "service": "compute",
                "region": "us-east",
                "created_at": created_at,
                "state": "running",
            }
        ],
    )
