"""`finops query q1|q2|q3`: the business questions, answered by the serving store."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from entrypoints.commands.common import add_command, add_lake_option, lake_path
from entrypoints.commands.load import add_serving_option
from entrypoints.serving_factory import ClosableServingStore, open_serving_store
from finops_core import queries
from finops_core.aggregate import GOLD_COLUMNS, GoldRow
from finops_core.errors import ConfigurationError
from finops_core.lake import LakeLayout
from finops_core.ports import ServiceCost


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-07-31") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", required=True, metavar="ORG", help="organisation id")
    add_lake_option(parser)
    add_serving_option(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "query",
        "answer a business question from the serving store",
        "Answer one of the business questions from the serving store filled by `finops load`:\n"
        "  q1  daily usage of an org over a date range (optionally one service)\n"
        "  q2  an org's most expensive services over the last N days\n"
        "  q3  every service of an org on one day",
        "finops query q2 --org org_xaji0y6d --days 14 --json",
    )
    questions = parser.add_subparsers(dest="question", metavar="QUESTION", required=True)

    q1 = add_command(
        questions,
        "q1",
        "daily usage of an org over a date range",
        "Q1: the org's gold rows from --from to --to inclusive, by date then service.",
        "finops query q1 --org org_xaji0y6d --from 2025-07-01 --to 2025-07-31 --service compute",
    )
    _common(q1)
    q1.add_argument("--service", default=None, help="only this service")
    q1.add_argument(
        "--from",
        dest="start",
        type=_date,
        required=True,
        metavar="DATE",
        help="first day, inclusive (YYYY-MM-DD)",
    )
    q1.add_argument(
        "--to", dest="end", type=_date, required=True, metavar="DATE", help="last day, inclusive"
    )
    q1.set_defaults(handler=run_q1)

    q2 = add_command(
        questions,
        "q2",
        "an org's most expensive services over the last N days",
        "Q2: services ranked by total cost over as_of-days+1 .. as_of (inclusive), most expensive "
        "first, ties by service name; as_of defaults to the latest usage date loaded.",
        "finops query q2 --org org_xaji0y6d --days 14 --as-of 2025-07-31 --limit 5",
    )
    _common(q2)
    q2.add_argument(
        "--days", type=int, default=queries.DEFAULT_DAYS, help="window length (default 14)"
    )
    q2.add_argument(
        "--as-of",
        dest="as_of",
        type=_date,
        default=None,
        metavar="DATE",
        help="last day of the window (default: the latest usage date loaded)",
    )
    q2.add_argument(
        "--limit",
        type=int,
        default=queries.DEFAULT_LIMIT,
        metavar="N",
        help="how many services (default 5)",
    )
    q2.set_defaults(handler=run_q2)

    q3 = add_command(
        questions,
        "q3",
        "every service of an org on one day",
        "Q3: the org's gold rows of one usage date, by service.",
        "finops query q3 --org org_xaji0y6d --date 2025-07-31",
    )
    _common(q3)
    q3.add_argument(
        "--date", type=_date, required=True, metavar="DATE", help="the usage date (YYYY-MM-DD)"
    )
    q3.set_defaults(handler=run_q3)


def _open(args: argparse.Namespace) -> ClosableServingStore:
    return open_serving_store(args.serving, LakeLayout(lake_path(args)), create_schema=False)


def run_q1(args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise ConfigurationError(f"--from {args.start} is after --to {args.end}.")
    store = _open(args)
    try:
        rows = store.daily_usage(args.org, args.start, args.end, args.service)
    finally:
        store.close()
    _print_gold(rows, args.json)
    return 0


def run_q2(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise ConfigurationError(f"--days must be at least 1, not {args.days}.")
    if args.limit < 1:
        raise ConfigurationError(f"--limit must be at least 1, not {args.limit}.")
    store = _open(args)
    try:
        ranked = store.top_services(args.org, args.days, args.as_of, args.limit)
    finally:
        store.close()
    _print_costs(ranked, args.json)
    return 0


def run_q3(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        rows = store.org_day(args.org, args.date)
    finally:
        store.close()
    _print_gold(rows, args.json)
    return 0


# -- output ---------------------------------------------------------------------------------


def gold_record(row: GoldRow) -> dict[str, Any]:
    """A gold row as JSON-able values keyed by the gold column names."""
    record = row.as_dict()
    record["usage_date"] = row.usage_date.isoformat()
    record["quality_flags"] = dict(row.quality_flags)
    return record


def _print_gold(rows: Sequence[GoldRow], as_json: bool) -> None:
    records = [gold_record(row) for row in rows]
    if as_json:
        print(json.dumps(records))
    else:
        print(format_table(list(GOLD_COLUMNS), [[r[c] for c in GOLD_COLUMNS] for r in records]))


def _print_costs(ranked: Sequence[ServiceCost], as_json: bool) -> None:
    records = [{"service": c.service, "total_cost_usd": c.total_cost_usd} for c in ranked]
    if as_json:
        print(json.dumps(records))
    else:
        print(
            format_table(
                ["service", "total_cost_usd"],
                [[r["service"], r["total_cost_usd"]] for r in records],
            )
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if value == value else "nan"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
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
