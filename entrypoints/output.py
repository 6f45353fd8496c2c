"""How the CLI shows rows: an aligned table or a JSON array, keyed by column names."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from finops_core.tables import Row

# The significant digits a double always holds exactly (DBL_DIG): a float is shown with at most
# these, so the noise of binary arithmetic (465.46000000000004, 47.36789999999999) is not.
FLOAT_DIGITS = 15


def json_value(value: Any) -> Any:
    """A row value as JSON: dates as ISO text, maps as objects, finite floats to FLOAT_DIGITS
    significant digits (integers stay integers, and a float stays a float)."""
    if isinstance(value, float):
        return float(f"{value:.{FLOAT_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def json_rows(rows: Sequence[Row], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{name: json_value(row[name]) for name in columns} for row in rows]


def render_rows(rows: Sequence[Row], columns: Sequence[str], as_json: bool = False) -> str:
    """The rows' `columns`, as a table or (with `as_json`) a JSON array of objects."""
    if as_json:
        return json.dumps(json_rows(rows, columns))
    return format_table(list(columns), [[row[name] for name in columns] for row in rows])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if value == value else "nan"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned: numbers to the right, text to the left; `(no rows)` when empty."""
    if not rows:
        return "(no rows)"
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(header))
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(c) for c in cells)])
