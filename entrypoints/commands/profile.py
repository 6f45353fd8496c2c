"""`finops profile`: describe a landing folder.

Counts, quirks, per-day structure and distributions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from adapters.landing.profile import profile_landing
from entrypoints.commands.common import add_command, add_lake_option
from entrypoints.containers import Container
from finops_core.errors import DatasetMissing


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "profile",
        summary="profile <lake>/landing/: counts, quirk rates, per-day structure, distributions",
        description=(
            "Read a landing folder once (streaming, standard library only) and report row counts\n"
            "per source, null and quirk rates, events and active resources per day, key orders\n"
            "per schema version, value and cost distributions and lines per file. Use it to\n"
            "compare a generated landing with the real one."
        ),
        example="finops profile --lake datalake --json > profile.json",
    )
    add_lake_option(parser)
    parser.add_argument("--json", action="store_true", help="print the whole profile as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, container: Container) -> int:
    started = time.perf_counter()
    landing = container.layout().landing
    if not landing.is_dir():
        raise DatasetMissing(
            f"{landing} does not exist: run `finops landing` or `finops generate` first"
        )
    profile = profile_landing(landing)
    if args.json:
        print(json.dumps(profile, indent=2))
    else:
        print(render(profile))
    rows = profile["rows"]
    for warning in empty_source_warnings(rows):
        print(warning, file=sys.stderr)
    print(
        f"profiled {sum(rows.values())} rows in {len(rows)} sources "
        f"in {time.perf_counter() - started:.2f} s",
        file=sys.stderr,
    )
    return 0


def empty_source_warnings(rows: dict[str, int]) -> list[str]:
    """One warning per source of no row, which a count of 0 in a table hides: a master with a
    header only empties what is built from it (an empty customers_orgs quarantines every event
    as org_unknown)."""
    return [
        f"warning: {name} has no row in the landing (a header only, or no file): what is built "
        "from it will be empty"
        for name, count in rows.items()
        if count == 0
    ]


def render(profile: dict[str, Any]) -> str:
    """A short human-readable report of the main figures."""
    events = profile["events"]
    lines = [f"landing {profile['landing']}", "rows:"]
    lines += [f"  {name:<20} {count:>10}" for name, count in profile["rows"].items()]
    lines.append(
        f"events: {events['files']} files, lines per file {events['lines_per_file'].get('min')}"
        f"..{events['lines_per_file'].get('max')}, {events['days']} days "
        f"{events['first_day']}..{events['last_day']}, malformed {events['malformed_lines']}"
    )
    for label in ("events_per_day", "active_resources_per_day", "events_per_active_resource_day"):
        histogram = events[label]
        lines.append(
            f"  {label:<32} min {histogram.get('min')} max {histogram.get('max')} "
            f"mean {histogram.get('mean')}"
        )
    lines.append("key orders per schema version:")
    for version, orders in events["key_orders"].items():
        for order, count in orders.items():
            lines.append(f"  v{version} {count:>8}  {order}")
    lines.append("value per metric:")
    for metric, summary in events["value"].items():
        lines.append(f"  {metric:<18} {_stats(summary)}")
    lines.append(f"cost: {_stats(events['cost'])}")
    lines.append("quirks:")
    lines += [f"  {name:<28} {value}" for name, value in profile["quirks"].items()]
    return "\n".join(lines)


def _stats(summary: dict[str, Any]) -> str:
    if not summary.get("count"):
        return "no values"
    return " ".join(f"{key} {summary[key]}" for key in ("count", "mean", "std", "p50", "p99"))
