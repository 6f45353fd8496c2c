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
from typing import Any, NamedTuple

import attrs

from finops_core.contracts import LogicalType
from finops_core.expressions import Predicate, Value, holds, value_of
from finops_core.marts import (
    Count,
    CountIf,
    Equals,
    FlagCounts,
    Mart,
    Max,
    Mean,
    Min,
    Ratio,
    Sum,
    counted_count,
    counted_measure,
    kept_count,
    reconciled_sums,
    rows_count,
    source_sum_count,
    sum_count,
)
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


@attrs.frozen
class MeanOf:
    """The sum and count of a column's non-null values: a mean that merges exactly."""

    total: ExactSum
    count: int

    def merge(self, other: MeanOf) -> MeanOf:
        return MeanOf(self.total.merge(other.total), self.count + other.count)


@attrs.frozen
class Least:
    value: Any

    def merge(self, other: Least) -> Least:
        return self if self.value <= other.value else other


@attrs.frozen
class Greatest:
    value: Any

    def merge(self, other: Greatest) -> Greatest:
        return self if self.value >= other.value else other


# One accumulator per accumulating measure, in declaration order (None: no value yet):
# Sum -> ExactSum | int | None, Count and CountIf -> int, Mean -> MeanOf | None,
# Min -> Least | None, Max -> Greatest | None, FlagCounts -> {key: count}.
Accumulator = Any


@attrs.frozen
class Partial:
    values: tuple[Accumulator, ...]

    @classmethod
    def empty(cls, mart: Mart) -> Partial:
        return cls(tuple(_empty(m) for m in mart.accumulating))

    def merge(self, other: Partial) -> Partial:
        return Partial(tuple(_merge(a, b) for a, b in zip(self.values, other.values, strict=True)))


def _empty(measure: Sum | Count | CountIf | Mean | Min | Max | FlagCounts) -> Accumulator:
    if isinstance(measure, (Count, CountIf)):
        return 0
    if isinstance(measure, FlagCounts):
        return {}
    return None


def _merge(a: Accumulator, b: Accumulator) -> Accumulator:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, (ExactSum, MeanOf, Least, Greatest)):
        return a.merge(b)  # type: ignore[arg-type]
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


def partial_of(mart: Mart, rows: Iterable[Row]) -> Partial:
    """The partial aggregate of source rows of one group (their grain is not checked): the rows
    the mart keeps, with its derived columns."""
    plan = _Plan.of(mart)
    return Partial(_accumulated(plan, list(_prepared(plan, rows)), exact=True))


# How a mart's declarations are read per group, resolved once per mart (not per group) by
# `_Plan.of`: the kind of each step, its source column, its filter.
_SUM, _COUNT, _COUNT_IF, _MEAN, _MIN, _MAX, _FLAGS, _RATIO = (
    "sum", "count", "count_if", "mean", "min", "max", "flags", "ratio"
)  # fmt: skip


class _Accumulate(NamedTuple):
    kind: str  # _SUM, _COUNT, _COUNT_IF, _MEAN, _MIN, _MAX or _FLAGS
    source: str
    where: Predicate | None  # a Sum's filter or a CountIf's predicate
    fast_field: str | None  # a Sum filtered by `Equals`: only rows where this column ...
    fast_value: object  # ... equals this (the common case, without `holds`)
    integer: bool  # an INTEGER Sum (else a float sum)
    keys: frozenset[str]  # the flags a FlagCounts counts


class _Finish(NamedTuple):
    kind: str  # an _Accumulate kind or _RATIO
    name: str
    slot: int  # the accumulator's position (-1: a ratio)
    empty: object  # a Sum over no value
    numerator: str  # a ratio's columns and scale
    denominator: str
    scale: float


@attrs.frozen
class _Plan:
    grain: tuple[tuple[str, str | None], ...]  # (source, default) of each grain column
    where: Predicate | None  # the source rows the mart keeps
    derive: tuple[tuple[str, Value], ...]  # (name, value) of each derived column, in order
    accumulate: tuple[_Accumulate, ...]
    finish: tuple[_Finish, ...]
    key_columns: tuple[str, ...]
    reorder: tuple[str, ...] | None  # the table's columns, if not keys then measures in order

    @classmethod
    def of(cls, mart: Mart) -> _Plan:
        accumulate: list[_Accumulate] = []
        finish: list[_Finish] = []
        for measure in mart.measures:
            if isinstance(measure, Ratio):
                step = _Finish(
                    _RATIO,
                    measure.name,
                    -1,
                    None,
                    measure.numerator,
                    measure.denominator,
                    measure.scale,
                )
                finish.append(step)
                continue
            index = len(accumulate)
            if isinstance(measure, Sum):
                where = measure.where
                integer = measure.type is LogicalType.INTEGER
                fast = where if isinstance(where, Equals) else None
                accumulate.append(
                    _Accumulate(
                        _SUM,
                        measure.source,
                        where if fast is None else None,
                        fast.field if fast else None,
                        fast.value if fast else None,
                        integer,
                        frozenset(),
                    )
                )
                empty = None if measure.empty_is_null else 0 if integer else 0.0
                finish.append(_Finish(_SUM, measure.name, index, empty, "", "", 1.0))
                continue
            adding: _Accumulate
            if isinstance(measure, FlagCounts):
                adding = _Accumulate(
                    _FLAGS, measure.source, None, None, None, False, frozenset(measure.keys)
                )
            elif isinstance(measure, Count):
                adding = _Accumulate(_COUNT, "", None, None, None, False, frozenset())
            elif isinstance(measure, CountIf):
                adding = _Accumulate(
                    _COUNT_IF, "", measure.predicate, None, None, False, frozenset()
                )
            else:
                kind = {Mean: _MEAN, Min: _MIN, Max: _MAX}[type(measure)]
                adding = _Accumulate(kind, measure.source, None, None, None, False, frozenset())
            accumulate.append(adding)
            finish.append(_Finish(adding.kind, measure.name, index, None, "", "", 1.0))
        columns = mart.table.column_names
        built = (*mart.key_columns, *(m.name for m in mart.measures))
        return cls(
            grain=tuple((g.source, g.default) for g in mart.grain),
            where=mart.where,
            derive=tuple((d.name, d.value) for d in mart.derive),
            accumulate=tuple(accumulate),
            finish=tuple(finish),
            key_columns=mart.key_columns,
            reorder=None if columns == built else columns,
        )


def _accumulated(plan: _Plan, rows: list[Row], exact: bool) -> tuple[Accumulator, ...]:
    """Each measure's accumulator over `rows`; a float sum as an `ExactSum` when `exact`, else
    as its total (`math.fsum`: the correctly rounded exact sum, what `ExactSum.total` gives)."""
    values: list[Accumulator] = []
    for kind, source, where, fast_field, fast_value, integer, keys in plan.accumulate:
        if kind == _SUM:
            if fast_field is not None:
                found = [
                    v
                    for row in rows
                    if (v := row.get(source)) is not None and row.get(fast_field) == fast_value
                ]
            elif where is not None:
                found = [
                    v for row in rows if (v := row.get(source)) is not None and holds(where, row)
                ]
            else:
                found = [v for row in rows if (v := row.get(source)) is not None]
            if not found:
                values.append(None)
            elif integer:
                values.append(sum(map(int, found)))  # type: ignore[arg-type]
            elif exact:
                values.append(ExactSum.of(*map(float, found)))  # type: ignore[arg-type]
            else:
                values.append(math.fsum(map(float, found)))  # type: ignore[arg-type]
        elif kind == _COUNT:
            values.append(len(rows))
        elif kind == _COUNT_IF:
            assert where is not None
            values.append(sum(1 for row in rows if holds(where, row)))
        elif kind in (_MEAN, _MIN, _MAX):
            present = [v for row in rows if (v := row.get(source)) is not None]
            if not present:
                values.append(None)
            elif kind == _MEAN:
                values.append(MeanOf(ExactSum.of(*map(float, present)), len(present)))  # type: ignore[arg-type]
            elif kind == _MIN:
                values.append(Least(min(present)))  # type: ignore[type-var]
            else:
                values.append(Greatest(max(present)))  # type: ignore[type-var]
        else:
            counts: dict[str, int] = {}
            for row in rows:
                for flag in row.get(source) or ():  # type: ignore[attr-defined]
                    if flag in keys:
                        counts[flag] = counts.get(flag, 0) + 1
            values.append(counts)
    return tuple(values)


def _prepared(plan: _Plan, rows: Iterable[Row]) -> Iterable[Row]:
    """The source rows the mart keeps, each with the mart's derived columns."""
    if plan.where is not None:
        where = plan.where
        rows = (row for row in rows if holds(where, row))
    if not plan.derive:
        return rows
    return (_with_derived(plan.derive, row) for row in rows)


def _with_derived(derive: tuple[tuple[str, Value], ...], row: Row) -> Row:
    extended = dict(row)
    for name, value in derive:
        extended[name] = value_of(value, extended)
    return extended


def _groups(plan: _Plan, rows: Iterable[Row]) -> dict[GroupKey, list[Row]]:
    """The rows the mart keeps (`_prepared`) grouped by its grain (`group_key`)."""
    return _grouped(plan, _prepared(plan, rows))


def _grouped(plan: _Plan, kept: Iterable[Row]) -> dict[GroupKey, list[Row]]:
    """Kept rows (already `_prepared`) grouped by the mart's grain."""
    grain = plan.grain
    groups: dict[GroupKey, list[Row]] = {}
    for row in kept:
        key = tuple(
            default if (value := row.get(source)) is None else value for source, default in grain
        )
        members = groups.get(key)
        if members is None:
            groups[key] = [row]
        else:
            members.append(row)
    return groups


def partial_aggregate(mart: Mart, rows: Iterable[Row]) -> dict[GroupKey, Partial]:
    """Group source rows by the mart's grain and aggregate each group."""
    plan = _Plan.of(mart)
    return {
        key: Partial(_accumulated(plan, members, exact=True))
        for key, members in _groups(plan, rows).items()
    }


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
    return _finished(_Plan.of(mart), key, partial.values)


def _finished(
    plan: _Plan, key: GroupKey, accumulated: tuple[Accumulator, ...]
) -> dict[str, object]:
    row: dict[str, object] = dict(zip(plan.key_columns, key, strict=True))
    for kind, name, slot, empty, numerator, denominator, scale in plan.finish:
        if kind == _RATIO:
            row[name] = ratio(row[numerator], row[denominator], scale)
            continue
        value = accumulated[slot]
        if kind == _SUM:
            if value is None:
                row[name] = empty
            else:
                row[name] = value.total if isinstance(value, ExactSum) else value
        elif kind in (_MEAN, _MIN, _MAX):
            if value is None:
                row[name] = None
            elif isinstance(value, MeanOf):
                row[name] = value.total.total / value.count
            else:
                row[name] = value.value
        elif kind == _FLAGS:
            row[name] = dict(sorted(value.items()))
        else:
            row[name] = value
    return row if plan.reorder is None else {name: row[name] for name in plan.reorder}


def mart_rows(mart: Mart, groups: Mapping[GroupKey, Partial]) -> list[dict[str, object]]:
    """Finished rows sorted by key."""
    plan = _Plan.of(mart)
    return [_finished(plan, key, groups[key].values) for key in sorted(groups)]


def aggregate(mart: Mart, rows: Iterable[Row]) -> list[dict[str, object]]:
    """The mart's rows of a set of source rows, sorted by key: `mart_rows(mart,
    partial_aggregate(mart, rows))`, with each float sum rounded at once (no partial to merge)."""
    return aggregate_kept(mart, rows)[1]


def aggregate_kept(mart: Mart, rows: Iterable[Row]) -> tuple[list[Row], list[dict[str, object]]]:
    """The source rows the mart keeps (`where`, each with its derived columns) and the mart's
    rows of them (`aggregate`): each row filtered and derived once, for a gold stage that also
    counts the kept rows."""
    plan = _Plan.of(mart)
    kept = list(_prepared(plan, rows))
    groups = _grouped(plan, kept)
    finished = [
        _finished(plan, key, _accumulated(plan, groups[key], exact=False)) for key in sorted(groups)
    ]
    return kept, finished


def mart_counts(mart: Mart, kept: list[Row], rows: list[dict[str, object]]) -> dict[str, float]:
    """What the gold stage counts of a mart (`marts.rows_count` and the names beside it), from
    the kept source rows and the mart's rows."""
    counts: dict[str, float] = {rows_count(mart): len(rows), kept_count(mart): len(kept)}
    counted = counted_measure(mart)
    if counted is not None:
        counts[counted_count(mart)] = sum(int(row[counted.name]) for row in rows)  # type: ignore[call-overload]
    for measure in reconciled_sums(mart):
        counts[sum_count(mart, measure)] = _total(row[measure.name] for row in rows)
        counts[source_sum_count(mart, measure)] = _total(row.get(measure.source) for row in kept)
    return counts


def _total(values: Iterable[object]) -> float:
    return math.fsum(float(v) for v in values if v is not None)  # type: ignore[arg-type]


def source_columns(mart: Mart) -> tuple[str, ...]:
    """The columns of the mart's source table it reads, in table order (`Mart.source_columns`)."""
    return mart.source_columns
