"""The reference interpretation of a mart's measures: a commutative monoid over source rows.

A `Partial` is the aggregate of any set of source rows of one group; `merge` is associative and
commutative and `Partial.empty(mart)` is its identity, so partial views (per file, per
micro-batch, per partition) combine without double counting. Float sums are exact (Shewchuk
partials) until `finish` rounds them once, which makes every result independent of order and
batching. Spark compiles the same `finops_core.marts` declarations to Columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from finops_core.contracts import LogicalType
from finops_core.marts import Count, FlagCounts, Mart, Ratio, Sum
from finops_core.tables import Row

GroupKey = tuple[Any, ...]


@attrs.frozen
class ExactSum:
    """An exact float sum (Shewchuk partials): merging in any order gives the same total."""

    partials: tuple[float, ...] = ()

    @classmethod
    def of(cls, *values: float) -> ExactSum:
        return cls(_grow([], values))

    def merge(self, other: ExactSum) -> ExactSum:
        return ExactSum(_grow(list(self.partials), other.partials))

    @property
    def total(self) -> float:
        return math.fsum(self.partials)


def _grow(partials: list[float], values: Iterable[float]) -> tuple[float, ...]:
    for x in values:
        kept = []
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                kept.append(lo)
            x = hi
        kept.append(x)
        partials = kept
    return tuple(partials)


# One accumulator per accumulating measure, in declaration order:
# Sum -> ExactSum | int | None (None: no value yet), Count -> int, FlagCounts -> {key: count}.
Accumulator = Any


@attrs.frozen
class Partial:
    values: tuple[Accumulator, ...]

    @classmethod
    def empty(cls, mart: Mart) -> Partial:
        return cls(tuple(_empty(m) for m in mart.accumulating))

    def merge(self, other: Partial) -> Partial:
        return Partial(tuple(_merge(a, b) for a, b in zip(self.values, other.values, strict=True)))


def _empty(measure: Sum | Count | FlagCounts) -> Accumulator:
    if isinstance(measure, Sum):
        return None
    if isinstance(measure, Count):
        return 0
    return {}


def _merge(a: Accumulator, b: Accumulator) -> Accumulator:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, ExactSum):
        return a.merge(b)
    if isinstance(a, dict):
        merged = dict(a)
        for key, count in b.items():
            merged[key] = merged.get(key, 0) + count
        return merged
    return a + b


def group_key(mart: Mart, row: Row) -> GroupKey:
    return tuple(
        row.get(g.source) if row.get(g.source) is not None else g.default for g in mart.grain
    )


def _passes(measure: Sum, row: Row) -> bool:
    return measure.where is None or row.get(measure.where.field) == measure.where.value


def partial_of(mart: Mart, rows: Iterable[Row]) -> Partial:
    """The partial aggregate of rows of one group (their grain is not checked)."""
    materialised = list(rows)
    values: list[Accumulator] = []
    for measure in mart.accumulating:
        if isinstance(measure, Sum):
            found = [
                row[measure.source]
                for row in materialised
                if row.get(measure.source) is not None and _passes(measure, row)
            ]
            if not found:
                values.append(None)
            elif measure.type is LogicalType.INTEGER:
                values.append(sum(int(v) for v in found))  # type: ignore[call-overload]
            else:
                values.append(ExactSum.of(*(float(v) for v in found)))  # type: ignore[arg-type]
        elif isinstance(measure, Count):
            values.append(len(materialised))
        else:
            counts: dict[str, int] = {}
            for row in materialised:
                for flag in row.get(measure.source) or ():  # type: ignore[attr-defined]
                    if flag in measure.keys:
                        counts[flag] = counts.get(flag, 0) + 1
            values.append(counts)
    return Partial(tuple(values))


def partial_aggregate(mart: Mart, rows: Iterable[Row]) -> dict[GroupKey, Partial]:
    """Group source rows by the mart's grain and aggregate each group."""
    groups: dict[GroupKey, list[Row]] = {}
    for row in rows:
        groups.setdefault(group_key(mart, row), []).append(row)
    return {key: partial_of(mart, members) for key, members in groups.items()}


def merge_partials(*partials: Mapping[GroupKey, Partial]) -> dict[GroupKey, Partial]:
    merged: dict[GroupKey, Partial] = {}
    for partial in partials:
        for key, value in partial.items():
            merged[key] = merged[key].merge(value) if key in merged else value
    return merged


def ratio(numerator: object, denominator: object, scale: float = 1.0) -> float | None:
    """Derived metric: null when the denominator is 0 or null."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator) * scale  # type: ignore[arg-type]


def finish(mart: Mart, key: GroupKey, partial: Partial) -> dict[str, object]:
    """The mart row of one group: exact sums rounded once, then the derived columns."""
    row: dict[str, object] = dict(zip(mart.key_columns, key, strict=True))
    values = dict(zip((m.name for m in mart.accumulating), partial.values, strict=True))
    for measure in mart.measures:
        if isinstance(measure, Ratio):
            row[measure.name] = ratio(
                row[measure.numerator], row[measure.denominator], measure.scale
            )
            continue
        value = values[measure.name]
        if isinstance(measure, Sum):
            if value is None:
                empty: object = None if measure.empty_is_null else _zero(measure)
                row[measure.name] = empty
            else:
                row[measure.name] = value.total if isinstance(value, ExactSum) else value
        elif isinstance(measure, FlagCounts):
            row[measure.name] = dict(sorted(value.items()))
        else:
            row[measure.name] = value
    return {name: row[name] for name in mart.table.column_names}


def _zero(measure: Sum) -> object:
    return 0 if measure.type is LogicalType.INTEGER else 0.0


def mart_rows(mart: Mart, groups: Mapping[GroupKey, Partial]) -> list[dict[str, object]]:
    """Finished rows sorted by key."""
    return [finish(mart, key, groups[key]) for key in sorted(groups)]


def aggregate(mart: Mart, rows: Iterable[Row]) -> list[dict[str, object]]:
    """The mart's rows of a set of source rows, sorted by key."""
    return mart_rows(mart, partial_aggregate(mart, rows))
