"""How the CLI shows rows: an aligned table or a JSON array, keyed by column names.

A table is plain aligned text, unless stdout is an interactive terminal: then the same cells are
drawn as a Rich table (`adapters.rich.table`). JSON is the same wherever it goes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

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


def is_terminal(stream: TextIO) -> bool:
    """`stream` is an interactive terminal that can redraw a line: not a pipe or a file (a CI
    log), and not one whose TERM says it is "dumb"."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


def no_color() -> bool:
    """The NO_COLOR convention (no-color.org): set to anything but the empty string."""
    return bool(os.environ.get("NO_COLOR"))


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], terminal: bool | None = None
) -> str:
    """Columns aligned: numbers to the right, text to the left; `(no rows)` when empty. Drawn
    as a Rich table when `terminal` (by default: when stdout is one, `is_terminal`)."""
    if not rows:
        return "(no rows)"
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(header))
    ]
    if terminal if terminal is not None else is_terminal(sys.stdout):
        from adapters.rich.table import terminal_table

        width = shutil.get_terminal_size().columns
        return terminal_table(header, cells, numeric, width=width, no_color=no_color())
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(c) for c in cells)])
