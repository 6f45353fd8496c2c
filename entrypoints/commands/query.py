"""`finops query NAME`: the business questions, answered over the serving store.

Each question is one `Question` value: its name and its alias (q1..q5), its arguments, how
`finops_core.queries` answers it over the container's store, and the columns it shows (the
mart's column names, which are also the `--json` keys). One handler runs them all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import attrs

from entrypoints.app import COST_COLUMNS, cost_rows
from entrypoints.commands.common import (
    add_command,
    add_lake_option,
    add_serving_option,
    iso_date,
    read_only,
)
from entrypoints.containers import Container
from entrypoints.output import render_rows
from finops_core import queries
from finops_core.anomaly import COST_ANOMALIES, METHODS, AnomalyPolicy
from finops_core.errors import ConfigurationError
from finops_core.queries import SliceReader
from finops_core.serving import DAILY_USAGE_BY_ORG

Answer = Callable[[SliceReader, argparse.Namespace], list[dict[str, object]]]
EXAMPLE_ORG = "org_xaji0y6d"


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
    alias: str | None = None
    org_required: bool = True  # without --org, the question answers for every org


def _range_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """--from / --to: an inclusive range of days (open ends when not required)."""
    default = "" if required else " (default: the first day loaded)"
    parser.add_argument(
        "--from",
        dest="start",
        type=iso_date,
        required=required,
        default=None,
        metavar="DATE",
        help=f"first day, inclusive (YYYY-MM-DD){default}",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=iso_date,
        required=required,
        default=None,
        metavar="DATE",
        help="last day, inclusive" + ("" if required else " (default: the last day loaded)"),
    )


def _range_check(args: argparse.Namespace) -> None:
    if args.start is not None and args.end is not None and args.start > args.end:
        raise ConfigurationError(f"--from {args.start} is after --to {args.end}.")


def _days_check(args: argparse.Namespace) -> None:
    if args.days < 1:
        raise ConfigurationError(f"--days must be at least 1, not {args.days}.")


# -- q1 daily-usage: an org's daily usage over a date range ------------------------------------


def _q1_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", default=None, help="only this service (default: every one)")
    _range_arguments(parser, required=True)


def _q1(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.daily_usage(store, args.org, args.start, args.end, args.service)


# -- q2 top-services: the most expensive services over the last N days -------------------------


def _window_arguments(parser: argparse.ArgumentParser, days: int, as_of_default: str) -> None:
    """--days and --as-of: a window of `days` days ending at the as-of day."""
    parser.add_argument("--days", type=int, default=days, help=f"window length (default {days})")
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=iso_date,
        default=None,
        metavar="DATE",
        help=f"last day of the window (default: {as_of_default})",
    )


def _q2_arguments(parser: argparse.ArgumentParser) -> None:
    _window_arguments(parser, queries.DEFAULT_DAYS, "the latest usage date loaded")
    parser.add_argument(
        "--limit",
        type=int,
        default=queries.DEFAULT_LIMIT,
        metavar="N",
        help=f"how many services (default {queries.DEFAULT_LIMIT})",
    )


def _q2_check(args: argparse.Namespace) -> None:
    _days_check(args)
    if args.limit < 1:
        raise ConfigurationError(f"--limit must be at least 1, not {args.limit}.")


def _q2(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return cost_rows(queries.top_services(store, args.org, args.days, args.as_of, args.limit))


# -- q3 tickets: an org's support tickets per day over the last N days -------------------------


def _q3_arguments(parser: argparse.ArgumentParser) -> None:
    _window_arguments(parser, queries.TICKET_DAYS, "the latest ticket date loaded, of any org")
    # Before issue 13, q3 was the per-day detail (now `day`): its --date is caught to say so.
    parser.add_argument("--date", type=iso_date, default=None, help=argparse.SUPPRESS)


def _q3_check(args: argparse.Namespace) -> None:
    if args.date is not None:
        raise ConfigurationError(
            "q3 is now `tickets`, which takes --days and --as-of, not --date; the per-day "
            f"detail q3 used to answer is `finops query day --org {args.org} --date {args.date}`."
        )
    _days_check(args)


def _q3(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.tickets(store, args.org, args.as_of, args.days)


# -- q4 revenue: monthly revenue of one org or of every org ------------------------------------


def _q4_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _q4(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.revenue(store, args.org)


# -- q5 genai: an org's GenAI tokens and their cost per day ------------------------------------


def _q5_arguments(parser: argparse.ArgumentParser) -> None:
    _range_arguments(parser, required=False)


def _q5(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.genai(store, args.org, args.start, args.end)


# -- anomalies: the cost anomalies of a date range, largest impact first -------------------------


def _anomalies_description(policy: AnomalyPolicy) -> str:
    return (
        "The (org, service, day) rows of the cost-anomaly mart flagged by at least "
        f"{policy.min_methods} of its\n{len(METHODS)} methods (z-score above "
        f"{policy.z_threshold:g}, MAD score above {policy.mad_threshold:g}, above the "
        f"baseline's {policy.percentile:g}th\npercentile); the baseline is the same org and "
        f"service's days with a cost among the\n{policy.window_days} before (at least "
        f"{policy.min_history_days} of them). From --from to --to inclusive, largest impact\n"
        "(cost - expected cost) first, with each method's score; without --org, every org's."
    )


def _anomalies_arguments(parser: argparse.ArgumentParser) -> None:
    _range_arguments(parser, required=False)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="at most N anomalies, the largest impacts (default: every one)",
    )


def _anomalies_check(args: argparse.Namespace) -> None:
    _range_check(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigurationError(f"--limit must be at least 1, not {args.limit}.")


def _anomalies(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.anomalies(store, args.start, args.end, args.org, args.limit)


# -- day: every service of an org on one day ---------------------------------------------------


def _day_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--date", type=iso_date, required=True, metavar="DATE", help="the usage date (YYYY-MM-DD)"
    )


def _day(store: SliceReader, args: argparse.Namespace) -> list[dict[str, object]]:
    return queries.org_day(store, args.org, args.date)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "daily-usage",
        "daily usage of an org over a date range",
        "Q1: the org's gold rows (cost, usage, carbon, flags per service and day) from --from to\n"
        "--to inclusive, by date then service; with --service, that service's rows only.",
        f"finops query daily-usage --org {EXAMPLE_ORG} --from 2025-07-01 --to 2025-07-31 "
        "--service compute",
        DAILY_USAGE_BY_ORG.columns,
        _q1_arguments,
        _q1,
        _range_check,
        alias="q1",
    ),
    Question(
        "top-services",
        "an org's most expensive services over the last N days",
        "Q2: services ranked by total cost (an exact sum) over as_of-days+1 .. as_of inclusive,\n"
        f"most expensive first, ties by service name; --days defaults to {queries.DEFAULT_DAYS},"
        "\n--as-of to the latest usage date loaded (of any org), --limit to "
        f"{queries.DEFAULT_LIMIT}.",
        f"finops query top-services --org {EXAMPLE_ORG} --days 14 --as-of 2025-07-31 --limit 5",
        COST_COLUMNS,
        _q2_arguments,
        _q2,
        _q2_check,
        alias="q2",
    ),
    Question(
        "tickets",
        "an org's support tickets per day over the last N days",
        "Q3: per day of as_of-days+1 .. as_of inclusive, the org's critical tickets, tickets,\n"
        "SLA breaches and breach rate (breaches / tickets, over every severity of the day);\n"
        "days without tickets are omitted, rows are by day. --days defaults to "
        f"{queries.TICKET_DAYS},\n--as-of to the latest ticket date loaded (of any org).",
        f"finops query tickets --org {EXAMPLE_ORG} --days 30 --as-of 2025-07-31",
        queries.TICKETS_COLUMNS,
        _q3_arguments,
        _q3,
        _q3_check,
        alias="q3",
    ),
    Question(
        "revenue",
        "monthly revenue in USD of an org, or of every org",
        "Q4: the org's invoiced revenue per month in USD (currency, the FX rate applied,\n"
        "subtotal, credits, taxes, net revenue), by month; without --org, every org's, by org\n"
        "then month.",
        f"finops query revenue --org {EXAMPLE_ORG}   # or every org: finops query revenue",
        queries.REVENUE_COLUMNS,
        _q4_arguments,
        _q4,
        alias="q4",
        org_required=False,
    ),
    Question(
        "genai",
        "an org's GenAI tokens and their cost per day",
        "Q5: per day, the org's GenAI tokens, their cost in USD and the cost per 1k tokens\n"
        "(empty when the day has no tokens), from --from to --to inclusive, by day; without\n"
        "them, every day loaded.",
        f"finops query genai --org {EXAMPLE_ORG} --from 2025-07-01 --to 2025-07-31",
        queries.GENAI_COLUMNS,
        _q5_arguments,
        _q5,
        _range_check,
        alias="q5",
    ),
    Question(
        "anomalies",
        "cost anomalies of a date range, largest impact first",
        _anomalies_description(COST_ANOMALIES.policy),
        "finops query anomalies --from 2025-07-01 --to 2025-07-31 --limit 10",
        queries.ANOMALY_COLUMNS,
        _anomalies_arguments,
        _anomalies,
        _anomalies_check,
        org_required=False,
    ),
    Question(
        "day",
        "every service of an org on one day",
        "The org's gold rows of one usage date, by service (q3 before the tickets question).",
        f"finops query day --org {EXAMPLE_ORG} --date 2025-07-31",
        DAILY_USAGE_BY_ORG.columns,
        _day_arguments,
        _day,
    ),
)


def _listed(question: Question) -> str:
    return question.name + (f" ({question.alias})" if question.alias else "")


def _add_question(questions: argparse._SubParsersAction, question: Question) -> None:
    """The question's parser, reachable by its name and its alias; its --help shows an example
    (as `common.add_command` does, which takes no alias)."""
    sub = questions.add_parser(
        question.name,
        aliases=[question.alias] if question.alias else [],
        help=question.summary,
        description=question.description,
        epilog=f"example:\n  {question.example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if question.org_required:
        sub.add_argument("--org", required=True, metavar="ORG", help="organisation id")
    else:
        sub.add_argument(
            "--org", default=None, metavar="ORG", help="organisation id (default: every org)"
        )
    add_lake_option(sub)
    add_serving_option(sub)
    sub.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    question.arguments(sub)
    read_only(sub)
    sub.set_defaults(handler=run, asked=question)


def register(subparsers: argparse._SubParsersAction) -> None:
    width = max(len(_listed(q)) for q in QUESTIONS)
    parser = add_command(
        subparsers,
        "query",
        "answer a business question from the serving store",
        "Answer one of the business questions from the serving store filled by `finops load`\n"
        "(q1..q5 are aliases of the names; `finops query NAME --help` explains one):\n"
        + "\n".join(f"  {_listed(q):<{width}}  {q.summary}" for q in QUESTIONS)
        + "\n\nA table by default; --json prints an array of objects keyed by the mart's column "
        "names.",
        f"finops query top-services --org {EXAMPLE_ORG} --days 14 --json",
    )
    questions = parser.add_subparsers(dest="question", metavar="QUESTION", required=True)
    for question in QUESTIONS:
        _add_question(questions, question)


def _check_org(store: SliceReader, org: str) -> None:
    """An org a loaded store holds no row of is a mistake to say, not an empty answer (an empty
    store, e.g. a memory store in a process of its own, answers nothing)."""
    known = queries.known_orgs(store)
    if not known or org in known:
        return
    dates = queries.usage_dates(store)
    held = f", usage from {dates[0]} to {dates[1]}" if dates else ""
    examples = ", ".join(known[:3]) + (", ..." if len(known) > 3 else "")
    raise ConfigurationError(
        f"The org {org!r} is not in the serving store (it holds {len(known)} orgs{held}: "
        f"{examples}); `finops query revenue` lists every org's months."
    )


def run(args: argparse.Namespace, container: Container) -> int:
    question: Question = args.asked
    question.check(args)
    store = container.serving()
    if args.org is not None:
        _check_org(store, args.org)
    rows = question.answer(store, args)
    print(render_rows(rows, question.columns, args.json))
    return 0
