"""Row expressions as data: the values and filters a mart computes per source row.

A mart declares what it derives from each row (a USD amount, a flag) and which rows it keeps
with these values; `value_of` and `holds` are their reference meaning in pure Python, and the
Spark adapter compiles the same values to Columns. The semantics are SQL's where both agree and
fixed here where they would not:

- a value is null when any value it is computed from is null (`Coalesce` and `If` aside);
- a predicate is never null: a comparison with a null is false (so `Not` of it is true), which
  is what a WHERE clause does with a null and what Python's `==` does with None.
"""

from __future__ import annotations

from typing import Union

import attrs

Scalar = Union[str, int, float, bool, None]  # noqa: UP007 (a runtime alias)


# ---- values -------------------------------------------------------------------------------------


@attrs.frozen
class Col:
    """The row's value of a column."""

    name: str


@attrs.frozen
class Lit:
    """A constant."""

    value: Scalar


@attrs.frozen
class Coalesce:
    """`value`, or `default` where it is null."""

    value: Value
    default: Value


@attrs.frozen
class If:
    """`then` where `when` holds, else `otherwise`."""

    when: Predicate
    then: Value
    otherwise: Value


@attrs.frozen
class Arithmetic:
    """`left` `op` `right` for op in + - * (null if either is null)."""

    op: str
    left: Value
    right: Value

    def __attrs_post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}: use one of {', '.join(_OPERATORS)}")


def plus(left: Value, right: Value) -> Arithmetic:
    return Arithmetic("+", left, right)


def minus(left: Value, right: Value) -> Arithmetic:
    return Arithmetic("-", left, right)


def times(left: Value, right: Value) -> Arithmetic:
    return Arithmetic("*", left, right)


_OPERATORS = ("+", "-", "*")

Value = Union[Col, Lit, Coalesce, If, Arithmetic]  # noqa: UP007


# ---- predicates ---------------------------------------------------------------------------------


@attrs.frozen
class Equals:
    """The column's value equals `value` (false where it is null)."""

    field: str
    value: Scalar


@attrs.frozen
class Below:
    """The column's value is strictly below `value` (false where it is null)."""

    field: str
    value: float


@attrs.frozen
class IsNull:
    field: str


@attrs.frozen
class Not:
    predicate: Predicate


@attrs.frozen
class All:
    """Every one of `predicates` holds (an empty list always holds)."""

    predicates: tuple[Predicate, ...]


Predicate = Union[Equals, Below, IsNull, Not, All]  # noqa: UP007


# ---- the reference meaning ----------------------------------------------------------------------


def value_of(value: Value, row: object) -> Scalar:
    """The value for one row (a mapping of column name to value)."""
    get = row.get  # type: ignore[attr-defined]
    if isinstance(value, Col):
        return get(value.name)  # type: ignore[no-any-return]
    if isinstance(value, Lit):
        return value.value
    if isinstance(value, Coalesce):
        found = value_of(value.value, row)
        return value_of(value.default, row) if found is None else found
    if isinstance(value, If):
        return value_of(value.then if holds(value.when, row) else value.otherwise, row)
    left, right = value_of(value.left, row), value_of(value.right, row)
    if left is None or right is None:
        return None
    a, b = float(left), float(right)
    if value.op == "+":
        return a + b
    if value.op == "-":
        return a - b
    return a * b


def holds(predicate: Predicate, row: object) -> bool:
    """Whether the predicate holds for one row."""
    get = row.get  # type: ignore[attr-defined]
    if isinstance(predicate, Equals):
        found = get(predicate.field)
        return found is not None and bool(found == predicate.value)
    if isinstance(predicate, Below):
        found = get(predicate.field)
        return found is not None and float(found) < predicate.value
    if isinstance(predicate, IsNull):
        return get(predicate.field) is None
    if isinstance(predicate, Not):
        return not holds(predicate.predicate, row)
    return all(holds(p, row) for p in predicate.predicates)


def columns_read(expression: Value | Predicate) -> frozenset[str]:
    """The columns an expression reads."""
    if isinstance(expression, Col):
        return frozenset((expression.name,))
    if isinstance(expression, (Equals, Below, IsNull)):
        return frozenset((expression.field,))
    if isinstance(expression, Lit):
        return frozenset()
    if isinstance(expression, Coalesce):
        return columns_read(expression.value) | columns_read(expression.default)
    if isinstance(expression, If):
        return (
            columns_read(expression.when)
            | columns_read(expression.then)
            | columns_read(expression.otherwise)
        )
    if isinstance(expression, Arithmetic):
        return columns_read(expression.left) | columns_read(expression.right)
    if isinstance(expression, Not):
        return columns_read(expression.predicate)
    return frozenset().union(*(columns_read(p) for p in expression.predicates))
