"""`finops_core.expressions` compiled to Spark Columns, with the core's null semantics: a value
is null when a value it is computed from is null; a predicate is never null (a comparison with a
null is false), so `Not` of a comparison with a null is true, as `expressions.holds` says."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from finops_core.expressions import (
    All,
    Below,
    Coalesce,
    Col,
    Equals,
    If,
    IsNull,
    Lit,
    Not,
    Predicate,
    Value,
)


def column_of(value: Value) -> Column:
    if isinstance(value, Col):
        return F.col(value.name)
    if isinstance(value, Lit):
        return F.lit(value.value)
    if isinstance(value, Coalesce):
        return F.coalesce(column_of(value.value), column_of(value.default))
    if isinstance(value, If):
        return F.when(condition_of(value.when), column_of(value.then)).otherwise(
            column_of(value.otherwise)
        )
    left = column_of(value.left).cast("double")
    right = column_of(value.right).cast("double")
    if value.op == "+":
        return left + right
    if value.op == "-":
        return left - right
    return left * right


def condition_of(predicate: Predicate) -> Column:
    """A boolean Column that is never null."""
    if isinstance(predicate, Equals):
        return F.coalesce(F.col(predicate.field) == F.lit(predicate.value), F.lit(False))
    if isinstance(predicate, Below):
        return F.coalesce(
            F.col(predicate.field).cast("double") < F.lit(predicate.value), F.lit(False)
        )
    if isinstance(predicate, IsNull):
        return F.col(predicate.field).isNull()
    if isinstance(predicate, Not):
        return ~condition_of(predicate.predicate)
    if isinstance(predicate, All):
        condition = F.lit(True)
        for part in predicate.predicates:
            condition = condition & condition_of(part)
        return condition
    raise TypeError(f"not a predicate: {predicate!r}")
