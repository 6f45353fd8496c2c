"""`finops query q1|q2|q3`: the business questions, answered over the serving store.

Each question is one `Question` value: its arguments, how `finops_core.queries` answers it over
the container's store, and the columns it shows (the mart's column names, which are also the
`--json` keys). One handler runs them all.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable

import attrs

from entrypoints.app import COST_COLUMNS, cost_rows
from entrypoints.commands.common import (
    add_command,
    add_lake_option,
    add_serving_option,
    read_only,
)
from entrypoints.containers import Container
from entrypoints.output import render_rows
from finops_core import queries
from finops_core.errors import ConfigurationError
from finops_core.queries import SliceReader
from finops_core.serving import DAILY_USAGE_BY_ORG

Answer = Callable[[SliceReader, argparse.Namespace], list[dict[str, object]]]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-07-31") from None


def _no_check(args: argparse.Namespace) -> None:
    return None


@attrs.frozen
class Question:
    name: str
    summary: str
    description: str
    example: str
    columns: tuple[str, ...]
    arguments: Callable[[argparse.ArgumentParser], None]
    answer: Answer
    check: Callable[[argparse.Namespace], None] = _no_check


# -- q1: daily usage over a date range ---------------------------------------------------------


def _q1_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", default=None, help="only this service")
    parser.add_argument(
        "--from",
        dest="start",
        type=_date,
        required=True,
        metavar="DATE",
        help="first day, inclusive (YYYY-MM-DD)",
    )
    parser.add_argument(
        "--to", dest="end", type=_date, required=True, metavar="DATE", help="last day, inclusive"
    )


def _q1_check(args: argparse.Namespace) -> None:
    if args.start > args.end:
        raise ConfigurationError(f"--from {args.start} is after --to {args.end}.")


def _q1(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.daily_usage(store, args.org, args.start, args.end, args.service)


# -- q2: the most expensive services over the last N days --------------------------------------


def _q2_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=int, default=queries.DEFAULT_DAYS, help="window length (default 14)"
    )
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=_date,
        default=None,
        metavar="DATE",
        help="last day of the window (default: the latest usage date loaded)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=queries.DEFAULT_LIMIT,
        metavar="N",
        help="how many services (default 5)",
    )


def _q2_check(args: argparse.Namespace) -> None:
    if args.days < 1:
        raise ConfigurationError(f"--days must be at least 1, not {args.days}.")
    if args.limit < 1:
        raise ConfigurationError(f"--limit must be at least 1, not {args.limit}.")


def _q2(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return cost_rows(queries.top_services(store, args.org, args.days, args.as_of, args.limit))


# -- q3: every service of an org on one day ----------------------------------------------------


def _q3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--date", type=_date, required=True, metavar="DATE", help="the usage date (YYYY-MM-DD)"
    )


def _q3(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.org_day(store, args.org, args.date)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "q1",
        "daily usage of an org over a date range",
        "Q1: the org's gold rows from --from to --to inclusive, by date then service.",
        "finops query q1 --org org_xaji0y6d --from 2025-07-01 --to 2025-07-31 --service compute",
        DAILY_USAGE_BY_ORG.columns,
        _q1_arguments,
        _q1,
        _q1_check,
    ),
    Question(
        "q2",
        "an org's most expensive services over the last N days",
        "Q2: services ranked by total cost over as_of-days+1 .. as_of (inclusive), most expensive "
        "first, ties by service name; as_of defaults to the latest usage date loaded.",
        "finops query q2 --org org_xaji0y6d --days 14 --as-of 2025-07-31 --limit 5",
        COST_COLUMNS,
        _q2_arguments,
        _q2,
        _q2_check,
    ),
    Question(
        "q3",
        "every service of an org on one day",
        "Q3: the org's gold rows of one usage date, by service.",
        "finops query q3 --org org_xaji0y6d --date 2025-07-31",
        DAILY_USAGE_BY_ORG.columns,
        _q3_arguments,
        _q3,
    ),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "query",
        "answer a business question from the serving store",
        "Answer one of the business questions from the serving store filled by `finops load`:\n"
        + "\n".join(f"  {q.name}  {q.summary}" for q in QUESTIONS),
        "finops query q2 --org org_xaji0y6d --days 14 --json",
    )
    questions = parser.add_subparsers(dest="question", metavar="QUESTION", required=True)
    for question in QUESTIONS:
        sub = add_command(
            questions, question.name, question.summary, question.description, question.example
        )
        sub.add_argument("--org", required=True, metavar="ORG", help="organisation id")
        add_lake_option(sub)
        add_serving_option(sub)
        sub.add_argument(
            "--json", action="store_true", help="print a JSON array instead of a table"
        )
        question.arguments(sub)
        read_only(sub)
        sub.set_defaults(handler=run, asked=question)


def run(args: argparse.Namespace, container: Container) -> int:
    question: Question = args.asked
    question.check(args)
    rows = question.answer(container.serving(), args)
    print(render_rows(rows, question.columns, args.json))
    return 0
