"""`finops audit`: show a run record and check that its counts add up."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from entrypoints.commands.common import add_command, add_lake_option, read_only
from entrypoints.config import ENGINES
from entrypoints.containers import Container
from entrypoints.output import format_table
from finops_core import runs
from finops_core.catalogue import EVENT_RULES, MALFORMED_MESSAGE, MALFORMED_RECORD
from finops_core.errors import DatasetMissing, FinopsError, ServingUnavailable
from finops_core.intake import FileCheck, reconcile_landing
from finops_core.ports import Engine, RunLog
from finops_core.runs import Reconciliation, RunRecord
from finops_core.serving import SERVING_TABLES
from finops_core.tables import BRONZE_EVENTS, LANDING_FILES

REASON_PREFIX = "silver.reason."
FLAG_PREFIX = "silver.flag."
SHOWN_RUN_IDS = 20


class AuditFailed(FinopsError):
    """At least one reconciliation of the run failed (the table above says which)."""

    exit_code = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "audit",
        "show a run record (stages, rules, reconciliations) and check it adds up",
        "Read a run record from <lake>/_runs/ (the latest by default) and print per-stage counts\n"
        "and seconds, quarantine and flag counts per quality rule, and the reconciliations\n"
        "declared in finops_core.runs, recomputed from the record's counts: landing lines =\n"
        "bronze rows + malformed + blank lines; bronze = silver + quarantine + duplicates;\n"
        "silver cost = gold cost to the cent; gold keys unique; serving rows = gold rows\n"
        "(counted in the SQLite serving store when one exists in the lake).\n"
        "\n"
        "Then the whole lake, whatever run is shown:\n"
        "- runs: every run writes its record unfinished when it starts and final at its end, so\n"
        "  a killed run (or one still running) is unfinished. An unfinished run fails the audit,\n"
        "  named with its kind and start, unless a LATER run of the SAME kind finished and\n"
        '  passed its reconciliations: then it is listed as "killed, superseded by <run id>"\n'
        "  and does not fail (the rerun made the lake whole again).\n"
        "- landing, file by file: every landing events file is in the ledger\n"
        "  (bronze/landing_files) with the same size and SHA-256; no ledger file is missing from\n"
        "  the landing; ledger lines = bronze rows + duplicates + malformed + blank; bronze holds\n"
        "  exactly the ledger's bronze rows of each file. A mismatch names the file.\n"
        "Tables are read with the memory engine (no JVM) unless --engine says otherwise.\n"
        "Exits 1 when any of it fails.",
        "finops audit --lake datalake --json",
    )
    add_lake_option(parser)
    parser.add_argument(
        "--run", default=None, metavar="ID", help="run id (default: the latest run)"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="engine that reads bronze and the ledger (default: memory, whatever the `engine` "
        "setting says: the audit needs no JVM)",
    )
    parser.add_argument("--json", action="store_true", help="print the audit as JSON")
    read_only(parser)
    parser.set_defaults(handler=run)


# -- the audit, as data ------------------------------------------------------------------------


@attrs.frozen
class UnfinishedRun:
    """A run whose record says it never finished; `superseded_by` is the later run of the same
    kind that finished and passed (the rerun), if any: then it does not fail the audit."""

    record: RunRecord
    superseded_by: str | None = None

    @property
    def fails(self) -> bool:
        return self.superseded_by is None

    def describe(self) -> str:
        record = self.record
        what = f"run {record.run_id} ({record.kind}, started {record.started_at.isoformat()})"
        if self.superseded_by is not None:
            return f"{what}: killed, superseded by {self.superseded_by}"
        return f"{what}: UNFINISHED (killed, or still running); rerun `finops {record.kind}`"


@attrs.frozen
class Audit:
    record: RunRecord
    rules: tuple[tuple[str, str, float, float], ...]  # (rule id, message, quarantined, flagged)
    checks: tuple[Reconciliation, ...]
    unfinished: tuple[UnfinishedRun, ...] = ()
    landing: tuple[FileCheck, ...] = ()

    @property
    def counts(self) -> dict[str, float]:
        return self.record.counts

    @property
    def failed(self) -> tuple[Reconciliation, ...]:
        return tuple(check for check in self.checks if not check.passed)

    @property
    def failed_runs(self) -> tuple[UnfinishedRun, ...]:
        return tuple(run for run in self.unfinished if run.fails)

    @property
    def failed_files(self) -> tuple[FileCheck, ...]:
        return tuple(check for check in self.landing if not check.passed)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.failed_runs and not self.failed_files


def unfinished_runs(log: RunLog) -> tuple[UnfinishedRun, ...]:
    """Every unfinished run, oldest first, each with the later finished and passed run of the
    same kind that supersedes it (None when there is none)."""
    records = [record for run_id in log.run_ids() if (record := log.read(run_id)) is not None]
    found: list[UnfinishedRun] = []
    for position, record in enumerate(records):
        if record.finished:
            continue
        later = (
            other.run_id
            for other in records[position + 1 :]
            if other.kind == record.kind and other.passed
        )
        found.append(UnfinishedRun(record, next(later, None)))
    return tuple(found)


def landing_checks(container: Container, engine: Engine) -> tuple[FileCheck, ...]:
    """The lake against its landing, file by file (`intake.reconcile_landing`): the landing's
    events files as they are now, the ledger, and bronze's rows per source file."""
    from adapters.landing.manifest import landing_events

    layout = container.layout()
    ledger = list(engine.read_rows(layout, LANDING_FILES))
    bronze = Counter(str(row["source_file"]) for row in engine.read_rows(layout, BRONZE_EVENTS))
    return tuple(reconcile_landing(landing_events(layout.landing), ledger, bronze))


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


def _reads_serving(check: runs.Check) -> bool:
    return isinstance(check, runs.Balance) and check.left == runs.SERVING_ROWS


def checks_of(record: RunRecord, serving_rows: int | None = None) -> tuple[Reconciliation, ...]:
    """The declared reconciliations recomputed from the record's counts (`runs.reconcile`).

    `serving_rows` (rows in the serving store now) stands in for a serving count the record
    lacks. A check also fails when the record says it failed (a verdict is never upgraded), and
    recorded checks the counts cannot reproduce are kept as recorded."""
    counts = record.counts
    live = serving_rows is not None and runs.SERVING_ROWS.key not in counts
    if live:
        counts[runs.SERVING_ROWS.key] = float(serving_rows or 0)
    live_names = {check.name for check in runs.RECONCILIATIONS if _reads_serving(check)}
    recorded = {check.name: check for check in record.reconciliations}
    checks: list[Reconciliation] = []
    for check in runs.reconcile(counts):
        if live and check.name in live_names:
            check = attrs.evolve(
                check, detail=f"{check.detail}; serving rows counted in the SQLite store now"
            )
        previous = recorded.pop(check.name, None)
        if previous is not None and not previous.passed:
            check = attrs.evolve(check, passed=False)
        checks.append(check)
    checks.extend(recorded.values())
    return tuple(checks)


def sqlite_serving_rows(container: Container) -> int | None:
    """Rows in the lake's SQLite serving store (when that is the configured store and it
    exists), or None."""
    if container.config.serving() != "sqlite" or not container.layout().serving_sqlite.is_file():
        return None
    try:
        store = container.serving()
        return sum(store.count(table) for table in SERVING_TABLES)
    except ServingUnavailable:  # a store whose tables were never created (a load killed early)
        return 0


def _no_such_run(container: Container, run_id: str) -> DatasetMissing:
    folder = container.layout().runs
    ids = container.run_log().run_ids()
    if not ids:
        return DatasetMissing(
            f"There is no run {run_id!r} in {folder}: it holds no run record yet; "
            "run `finops batch` first."
        )
    shown = ids[-SHOWN_RUN_IDS:]
    more = f" (the latest {len(shown)} of {len(ids)})" if len(ids) > len(shown) else ""
    return DatasetMissing(
        f"There is no run {run_id!r} in {folder}; the runs there are{more}: {', '.join(shown)}."
    )


def audit_run(
    container: Container, run_id: str | None = None, engine: Engine | None = None
) -> Audit:
    """The audit of one run (the latest by default), of every unfinished run and of the lake
    against its landing (tables read by `engine`, the container's table reader by default);
    DatasetMissing when there is no such run."""
    log = container.run_log()
    record = log.read(run_id)
    if record is None:
        if run_id is not None:
            raise _no_such_run(container, run_id)
        raise DatasetMissing(
            f"There is no run record in {container.layout().runs} yet; run `finops batch` first."
        )
    counts = record.counts
    return Audit(
        record,
        rule_counts(counts),
        checks_of(record, sqlite_serving_rows(container)),
        unfinished_runs(log),
        landing_checks(container, engine or container.table_reader()),
    )


# -- output ------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _stage_row(stage: runs.StageResult) -> Sequence[Any]:
    shown = ", ".join(
        f"{k}={_number(v)}"
        for k, v in stage.counts.items()
        if "." not in k and not (k.endswith("_short_rows") and not v)
    )
    status = "skipped" if stage.skipped else "ran"
    return [stage.stage, status, round(stage.seconds, 2), shown or stage.note]


def render(audit: Audit) -> str:
    record = audit.record
    unfinished = "" if record.finished else ", unfinished"
    lines = [
        f"run {record.run_id} ({record.kind}, engine {record.engine}, "
        f"started {record.started_at.isoformat()}{unfinished})",
        "",
        "stages:",
        format_table(
            ["stage", "status", "seconds", "counts"], [_stage_row(s) for s in record.stages]
        ),
        "",
        "quality rules (events quarantined / flagged):",
        format_table(
            ["rule", "quarantined", "flagged", "meaning"],
            [[rule_id, _number(q), _number(f), message] for rule_id, message, q, f in audit.rules],
        ),
        "",
        "reconciliations:",
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
        ),
        "",
    ]
    if audit.failed:
        lines += [
            f"FAIL {c.name}: {_number(c.left)} vs {_number(c.right)} ({c.detail})"
            for c in audit.failed
        ]
    else:
        lines.append(f"all {len(audit.checks)} reconciliations passed")
    lines += ["", "runs:"]
    lines += [f"{'FAIL' if run.fails else 'ok'} {run.describe()}" for run in audit.unfinished] or [
        "every run finished"
    ]
    lines += ["", "landing, file by file (ledger bronze/landing_files, bronze rows per file):"]
    lines += [
        f"FAIL {check.name}: {problem}"
        for check in audit.failed_files
        for problem in check.problems
    ]
    if not audit.failed_files:
        lines.append(f"all {len(audit.landing)} landing events files reconcile")
    return "\n".join(lines)


def as_json(audit: Audit) -> dict[str, Any]:
    record = audit.record.to_json()
    return {
        "run_id": record["run_id"],
        "kind": record["kind"],
        "engine": record["engine"],
        "started_at": record["started_at"],
        "finished": record["finished"],
        "stages": record["stages"],
        "rules": [
            {"rule": rule_id, "quarantined": q, "flagged": f, "meaning": message}
            for rule_id, message, q, f in audit.rules
        ],
        "reconciliations": [check.to_json() for check in audit.checks],
        "unfinished_runs": [
            {
                "run_id": run.record.run_id,
                "kind": run.record.kind,
                "started_at": run.record.started_at.isoformat(),
                "superseded_by": run.superseded_by,
                "passed": not run.fails,
            }
            for run in audit.unfinished
        ],
        "landing": [
            {"file": check.name, "passed": check.passed, "problems": list(check.problems)}
            for check in audit.landing
        ],
        "passed": audit.passed,
    }


def _failure(audit: Audit) -> str:
    parts = []
    if audit.failed:
        parts.append(f"{len(audit.failed)} of {len(audit.checks)} reconciliations do not add up")
    if audit.failed_runs:
        named = ", ".join(f"{run.record.run_id} ({run.record.kind})" for run in audit.failed_runs)
        parts.append(f"unfinished run(s) {named}")
    if audit.failed_files:
        parts.append(
            f"{len(audit.failed_files)} landing file(s) do not reconcile "
            f"({', '.join(check.name for check in audit.failed_files[:5])}"
            f"{', ...' if len(audit.failed_files) > 5 else ''})"
        )
    return f"audit of run {audit.record.run_id} failed: " + "; ".join(parts) + " (see FAIL above)."


def run(args: argparse.Namespace, container: Container) -> int:
    engine = container.engine() if args.engine is not None else container.table_reader()
    audit = audit_run(container, args.run, engine)
    if args.json:
        print(json.dumps(as_json(audit), indent=2, default=str))
    else:
        print(render(audit))
    if not audit.passed:
        raise AuditFailed(_failure(audit))
    return 0
