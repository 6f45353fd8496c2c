"""What a batch run must ingest from the landing: the landing files compared with the ledger.

The ledger (`tables.LANDING_FILES`) is committed by the bronze stage with one row per landing
events file that bronze absorbed: its name, size and SHA-256, and what its lines became. A rerun
compares it with the landing as it is now, so it knows exactly what is missing (a new file),
what changed (same name, other content: its rows are replaced) and what disappeared (its rows
leave bronze). Nothing is guessed from "some file exists".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs


@attrs.frozen
class LandingFile:
    """One landing events file: `name` is its base name (bronze's `source_file`)."""

    path: str  # relative to the landing folder
    name: str
    size: int
    sha256: str
    # Its lines (split as events.split_lines), when the adapter that listed it counted them
    # while hashing; engines count them themselves otherwise.
    lines: int | None = attrs.field(default=None, eq=False)


@attrs.frozen
class IntakePlan:
    """The bronze events stage's work: drop the rows of `drop`, ingest the files of `ingest`.

    `drop` names every file whose rows must leave bronze: every file ingested again (a run
    killed after its bronze commit but before the ledger's leaves rows the ledger does not
    know) and every removed one. An engine replaces the rows of `drop` by the rows parsed from
    `ingest` in one commit; when `full`, it replaces the whole table.
    """

    ingest: tuple[LandingFile, ...] = ()
    drop: frozenset[str] = frozenset()
    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    full: bool = False

    @property
    def empty(self) -> bool:
        return not self.ingest and not self.drop

    def describe(self) -> str:
        if self.empty:
            return "bronze mirrors the landing: nothing to ingest"
        if self.full:
            return f"full backfill of {len(self.ingest)} landing file(s)"
        parts = [
            f"{len(names)} {what}"
            for what, names in (
                ("new", self.new),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        return "landing file(s): " + ", ".join(parts)


def plan_intake(
    landing: Iterable[LandingFile],
    ledger: Iterable[Mapping[str, object]],
    *,
    full: bool = False,
) -> IntakePlan:
    """Compare the landing with the ledger's rows (`tables.LANDING_FILES`).

    `full` re-ingests every landing file and drops every ledger file (a forced backfill).
    """
    files = sorted(landing, key=lambda f: f.name)
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"two landing files share the name {repeated[0]!r}")
    absorbed = {str(row["source_file"]): str(row["sha256"]) for row in ledger}
    if full:
        return IntakePlan(
            ingest=tuple(files),
            drop=frozenset(absorbed) | frozenset(names),
            new=tuple(n for n in names if n not in absorbed),
            removed=tuple(sorted(set(absorbed) - set(names))),
            full=True,
        )
    new = tuple(f.name for f in files if f.name not in absorbed)
    changed = tuple(f.name for f in files if f.name in absorbed and absorbed[f.name] != f.sha256)
    removed = tuple(sorted(set(absorbed) - set(names)))
    wanted = set(new) | set(changed)
    return IntakePlan(
        ingest=tuple(f for f in files if f.name in wanted),
        drop=frozenset(wanted) | frozenset(removed),
        new=new,
        changed=changed,
        removed=removed,
        full=not absorbed and bool(files),
    )


@attrs.frozen
class FileCheck:
    """One landing file's reconciliation: `problems` is empty when the file is accounted for."""

    name: str
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems


def reconcile_landing(
    landing: Iterable[LandingFile],
    ledger: Iterable[Mapping[str, object]],
    bronze_rows_by_file: Mapping[str, int],
) -> list[FileCheck]:
    """Each landing file against the ledger and bronze, by file name, sorted by name.

    A file passes when the ledger holds it with the same size and SHA-256, its lines balance
    (lines = bronze_rows + duplicates + malformed + blank) and bronze holds exactly the ledger's
    bronze_rows for it. A ledger file absent from the landing, and bronze rows of a file the ledger
    does not know, fail too.
    """
    files = {f.name: f for f in landing}
    entries = {str(row["source_file"]): row for row in ledger}
    checks: list[FileCheck] = []
    for name in sorted(set(files) | set(entries) | set(bronze_rows_by_file)):
        problems: list[str] = []
        file, entry = files.get(name), entries.get(name)
        in_bronze = int(bronze_rows_by_file.get(name, 0))
        if file is None:
            problems.append("not in the landing any more (run `finops batch` to drop its rows)")
        if entry is None:
            problems.append("not in the ledger: bronze never absorbed it (run `finops batch`)")
        if (
            file is not None
            and entry is not None
            and (str(entry["sha256"]) != file.sha256 or _int(entry["size"]) != file.size)
        ):
            problems.append("changed since bronze absorbed it (run `finops batch`)")
        if entry is not None:
            lines = _int(entry["lines"])
            parts = {k: _int(entry[k]) for k in ("bronze_rows", "duplicates", "malformed", "blank")}
            if lines != sum(parts.values()):
                accounted = " + ".join(f"{v} {k}" for k, v in parts.items())
                problems.append(f"{lines} lines but {accounted}")
            if in_bronze != parts["bronze_rows"]:
                problems.append(f"bronze holds {in_bronze} rows, the ledger {parts['bronze_rows']}")
        elif in_bronze:
            problems.append(f"bronze holds {in_bronze} rows of it")
        checks.append(FileCheck(name, tuple(problems)))
    return checks


def _int(value: object) -> int:
    return int(value)  # type: ignore[call-overload]
