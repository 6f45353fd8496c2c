"""`finops audit`: show a run record and check that its counts add up."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from entrypoints.commands.common import add_command, add_lake_option, lake_path
from entrypoints.commands.query import format_table
from finops_core import usecases
from finops_core.catalogue import EVENT_RULES, MALFORMED_MESSAGE, MALFORMED_RECORD
from finops_core.errors import DatasetMissing, FinopsError
from finops_core.usecases import Reconciliation

REASON_PREFIX = "silver.reason."
FLAG_PREFIX = "silver.flag."
SERVING_CHECK = "serving rows = gold rows"


class AuditFailed(FinopsError):
    """At least one reconciliation of the run failed (the table above says which)."""

    exit_code = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "audit",
        "show a run record (stages, rules, reconciliations) and check it adds up",
        "Read a run record from <lake>/_runs/ (the latest by default) and print per-stage counts\n"
        "and seconds, quarantine and flag counts per quality rule, and the reconciliations:\n"
        "landing lines = bronze rows + malformed; bronze = silver + quarantine + duplicates;\n"
        "silver cost = gold cost to the cent; gold keys unique; serving rows = gold rows (when a\n"
        "SQLite serving store exists in the lake). Exits 1 when a reconciliation fails.",
        "finops audit --lake datalake --json",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--run", default=None, metavar="ID", help="run id (default: the latest run)"
    )
    parser.add_argument("--json", action="store_true", help="print the audit as JSON")
    parser.set_defaults(handler=run)


# -- the audit, as data ------------------------------------------------------------------------


@attrs.frozen
class Audit:
    record: Mapping[str, Any]
    counts: Mapping[str, float]
    rules: tuple[tuple[str, str, float, float], ...]  # (rule id, message, quarantined, flagged)
    checks: tuple[Reconciliation, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def merged_counts(record: Mapping[str, Any]) -> dict[str, float]:
    """`stage.count` -> value over the record's stages (the names `usecases.reconcile` reads)."""
    return {
        f"{stage['stage']}.{name}": value
        for stage in record.get("stages", [])
        for name, value in dict(stage.get("counts", {})).items()
    }


def rule_counts(counts: Mapping[str, float]) -> tuple[tuple[str, str, float, float], ...]:
    """Every declared rule (and any id the run counted), with its quarantine and flag counts."""
    messages = {
        MALFORMED_RECORD: MALFORMED_MESSAGE,
        **{rule.id: rule.message for rule in EVENT_RULES},
    }
    counted = {
        key.split(".", 2)[2] for key in counts if key.startswith((REASON_PREFIX, FLAG_PREFIX))
    }
    ids = [*messages, *sorted(counted - set(messages))]
    return tuple(
        (
            rule_id,
            messages.get(rule_id, ""),
            counts.get(REASON_PREFIX + rule_id, 0),
            counts.get(FLAG_PREFIX + rule_id, 0),
        )
        for rule_id in ids
    )


def recorded_checks(record: Mapping[str, Any]) -> dict[str, Reconciliation]:
    checks = {}
    for item in record.get("reconciliations", []):
        check = Reconciliation(
            str(item.get("name")),
            item.get("left"),
            item.get("right"),
            bool(item.get("passed")),
            str(item.get("detail", "")),
        )
        checks[check.name] = check
    return checks


def checks_of(
    record: Mapping[str, Any], serving_rows: int | None = None
) -> tuple[Reconciliation, ...]:
    """The reconciliations recomputed from the record's counts; a check also fails when the
    record says it failed (a verdict is never upgraded), and recorded checks the counts cannot
    reproduce are kept as recorded."""
    counts = merged_counts(record)
    live = serving_rows is not None and "serving.serving_rows" not in counts
    if live:
        counts["serving.serving_rows"] = float(serving_rows or 0)
    recorded = recorded_checks(record)
    checks: list[Reconciliation] = []
    for check in usecases.reconcile(counts):
        if check.name == SERVING_CHECK and live:
            check = attrs.evolve(
                check, detail="rows in the SQLite serving store now = gold.gold_rows"
            )
        previous = recorded.pop(check.name, None)
        if previous is not None and not previous.passed:
            check = attrs.evolve(check, passed=False)
        checks.append(check)
    checks.extend(recorded.values())
    return tuple(checks)


def sqlite_serving_rows(lake: Any) -> int | None:
    """Rows in the lake's SQLite serving store, or None when there is none."""
    from finops_core.lake import LakeLayout

    layout = LakeLayout(lake)
    if not layout.serving_sqlite.is_file():
        return None
    from adapters.sqlite.serving import SqliteServingStore

    store = SqliteServingStore(layout.serving_sqlite)
    try:
        return store.row_count()
    finally:
        store.close()


def audit_run(lake: Any, run_id: str | None = None) -> Audit:
    """The audit of one run (the latest by default); DatasetMissing when there is no such run."""
    from entrypoints.containers import build_container

    container = build_container(lake=lake)
    try:
        runs = container.layout().runs
        record = container.run_log().read(run_id)
    finally:
        container.shutdown_resources()
    if record is None:
        if run_id is not None:
            raise DatasetMissing(
                f"There is no run {run_id!r} in {runs}; run `finops audit` to see the latest."
            )
        raise DatasetMissing(f"There is no run record in {runs} yet; run `finops batch` first.")
    counts = merged_counts(record)
    return Audit(record, counts, rule_counts(counts), checks_of(record, sqlite_serving_rows(lake)))


# -- output ------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def render(audit: Audit) -> str:
    record = audit.record
    lines = [
        f"run {record.get('run_id')} ({record.get('kind', '?')}, engine {record.get('engine', '?')}, "
        f"started {record.get('started_at', '?')})",
        "",
        "stages:",
    ]
    stage_rows: list[Sequence[Any]] = []
    for stage in record.get("stages", []):
        counts = dict(stage.get("counts", {}))
        shown = ", ".join(
            f"{k}={_number(v)}"
            for k, v in counts.items()
            if "." not in k and not (k.endswith("_short_rows") and not v)
        )
        status = "skipped" if stage.get("skipped") else "ran"
        stage_rows.append(
            [
                stage.get("stage"),
                status,
                round(float(stage.get("seconds", 0.0)), 2),
                shown or stage.get("note", ""),
            ]
        )
    lines.append(format_table(["stage", "status", "seconds", "counts"], stage_rows))
    lines += ["", "quality rules (events quarantined / flagged):"]
    lines.append(
        format_table(
            ["rule", "quarantined", "flagged", "meaning"],
            [[rule_id, _number(q), _number(f), message] for rule_id, message, q, f in audit.rules],
        )
    )
    lines += ["", "reconciliations:"]
    lines.append(
        format_table(
            ["check", "left", "right", "result", "detail"],
            [
                [
                    c.name,
                    _number(c.left),
                    _number(c.right),
                    "PASS" if c.passed else "FAIL",
                    c.detail,
                ]
                for c in audit.checks
            ],
        )
    )
    failed = [c for c in audit.checks if not c.passed]
    lines.append("")
    if failed:
        lines += [
            f"FAIL {c.name}: {_number(c.left)} vs {_number(c.right)} ({c.detail})" for c in failed
        ]
    else:
        lines.append(f"all {len(audit.checks)} reconciliations passed")
    return "\n".join(lines)


def as_json(audit: Audit) -> dict[str, Any]:
    return {
        "run_id": audit.record.get("run_id"),
        "kind": audit.record.get("kind"),
        "engine": audit.record.get("engine"),
        "started_at": audit.record.get("started_at"),
        "stages": list(audit.record.get("stages", [])),
        "rules": [
            {"rule": rule_id, "quarantined": q, "flagged": f, "meaning": message}
            for rule_id, message, q, f in audit.rules
        ],
        "reconciliations": [attrs.asdict(check) for check in audit.checks],
        "passed": audit.passed,
    }


def run(args: argparse.Namespace) -> int:
    audit = audit_run(lake_path(args), args.run)
    if args.json:
        print(json.dumps(as_json(audit), indent=2, default=str))
    else:
        print(render(audit))
    if not audit.passed:
        failed = sum(1 for check in audit.checks if not check.passed)
        print(
            f"finops: audit of run {audit.record.get('run_id')} failed: {failed} of "
            f"{len(audit.checks)} reconciliations do not add up (see FAIL above).",
            file=sys.stderr,
        )
        return 1
    return 0
