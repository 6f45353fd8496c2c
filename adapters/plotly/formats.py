"""Numbers for people: thousands separators, units, signed changes."""

from __future__ import annotations

import math

# d3-format specifiers for the same forms in chart axes and hover labels.
USD_FORMAT = ",.2f"
COUNT_FORMAT = ",.0f"
RATIO_FORMAT = ",.4f"


def number(value: float, decimals: int = 2) -> str:
    """1234567.891 -> '1,234,567.89'."""
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.{decimals}f}"


def usd(value: float) -> str:
    return f"{number(value)} USD"


def usd_precise(value: float) -> str:
    """A small amount in USD (a cost per request): four decimals."""
    return f"{number(value, 4)} USD"


def count(value: float) -> str:
    return number(value, 0)


def kg(value: float) -> str:
    return f"{number(value, 3)} kg CO2e"


def percent(value: float) -> str:
    return f"{value * 100:,.1f} %"


def change(value: float | None) -> str:
    """A relative change against the previous period: '+12.3 %', '-4.0 %', or why there is none."""
    if value is None:
        return "no previous value"
    return f"{'+' if value >= 0 else '-'}{abs(value) * 100:,.1f} %"


def in_unit(value: float, unit: str) -> str:
    """A headline figure in its unit."""
    if unit == "USD":
        return usd(value)
    if unit == "kg CO2e":
        return kg(value)
    return f"{count(value)} {unit}"
