"""Issue 12's target table on the real dataset, in one invocation, each figure a fresh process.

    .venv/bin/python benchmarks/targets.py [--only reference,batch,...] [--work DIR] [--zip PATH]

Absolute times drift from day to day on shared machines, so each figure is printed with its
ratio to a reference measured in the same invocation, and the issue's target beside it. The
figures, one after the other (never in parallel), in this order:

- reference: benchmarks/plain_spark_reference.py over the zip's landing (JVM start included);
  the reference of the three next figures;
- floor: benchmarks/delta_lake_floor.py, the reference job writing the 19 Delta tables a
  `finops batch` lake has (no quality rules): the price of the transactional lake alone, shown
  with its ratio to the reference (no target: it is what no optimisation of ours removes);
- batch: `finops batch --engine spark` on a fresh lake (bronze masters and JVM start included),
  with its per-stage seconds (the CLI's progress lines) and the driver JVM's peak RSS;
  target <= 1.0 x reference;
- stream: `finops stream --once` on a fresh lake; target <= 1.2 x reference;
- demo: `finops demo --zip ZIP` in a fresh lake (landing, stream, batch, SQLite serving, Q1/Q2,
  audit); target <= 2.0 x reference;
- duckdb: one DuckDB query computing the same gold sums (benchmarks/_common.py) in a fresh
  process, whose wall time (interpreter start and `import duckdb` included, as every figure
  here includes its process start) is the reference of the next figure; the query's own
  seconds are printed beside it;
- memory: `finops batch --engine memory` on a fresh lake; target <= 5 x the DuckDB query.

Every `finops` command runs with the work folder as its current directory (no ./cred.env or
./datalake of the repository is read or written) and an explicit --lake. The zip's landing is
extracted once into WORK/landing (not timed) and copied into each fresh lake; the demo lands
the zip itself, as `make demo` does. `uptime` is printed before and after. The 1 M / 4 M
generated figures are benchmarks/batch_throughput.py's.

Needs the `bench` extra (duckdb).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
from _common import PROJECT, REAL_ZIP, PeakRss, extract_landing, run_duckdb

FIGURES = ("reference", "floor", "batch", "stream", "demo", "duckdb", "memory")
QUIET_LOAD = 1.5
GOLD_TABLE = Path("gold") / "org_daily_usage_by_service"
# A stage's last progress line (adapters/console.py): "✓ <stage>: <counts> in <seconds> s".
STAGE_LINE = re.compile(r"^✓ (?P<stage>\S+): .* in (?P<seconds>\d+(?:\.\d+)?) s$", re.MULTILINE)
REFERENCE_LINE = re.compile(r"gold rows (?P<rows>\d+), total cost (?P<cost>-?\d+(?:\.\d+)?) USD")
REFERENCE_SCRIPT = PROJECT / "benchmarks" / "plain_spark_reference.py"
FLOOR_SCRIPT = PROJECT / "benchmarks" / "delta_lake_floor.py"


@attrs.frozen
class Target:
    """`figure` / `reference` should be at most `ratio` (None: the ratio is shown, no target)."""

    reference: str
    ratio: float | None


TARGETS = {
    "floor": Target("reference", None),
    "batch": Target("reference", 1.0),
    "stream": Target("reference", 1.2),
    "demo": Target("reference", 2.0),
    "memory": Target("duckdb", 5.0),
}
LABELS = {
    "reference": "plain-Spark reference",
    "floor": "Delta lake floor (19 tables)",
    "batch": "finops batch --engine spark",
    "stream": "finops stream --once",
    "demo": "finops demo --zip",
    "duckdb": "DuckDB gold query",
    "memory": "finops batch --engine memory",
}


@attrs.frozen
class Process:
    seconds: float
    code: int
    stdout: str
    stderr: str
    java_peak_mb: float


@attrs.frozen
class Figure:
    name: str
    seconds: float  # the figure compared with its reference
    ok: bool
    notes: tuple[str, ...] = ()


# ---- running one figure -------------------------------------------------------------------------


def run_process(command: list[str], cwd: Path, log: Path) -> Process:
    """Run `command` to its end, timing its wall clock and the peak RSS of its java processes;
    its stdout and stderr are kept in `log`.out / `log`.err."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with PeakRss(process.pid) as memory:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    log.with_suffix(".out").write_text(stdout)
    log.with_suffix(".err").write_text(stderr)
    if process.returncode:
        print(
            f"  exit {process.returncode}: {' '.join(command)}\n{_tail(stderr + stdout)}",
            file=sys.stderr,
            flush=True,
        )
    return Process(seconds, process.returncode, stdout, stderr, memory.megabytes)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def finops() -> str:
    """The `finops` console script of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "finops"
    return str(beside if beside.is_file() else PROJECT / ".venv" / "bin" / "finops")


def fresh_lake(work: Path, name: str, landing: Path | None) -> Path:
    """WORK/<name>/lake, empty, or holding a copy of `landing`."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    lake = folder / "lake"
    lake.mkdir(parents=True)
    if landing is not None:
        shutil.copytree(landing, lake / "landing")
    return lake


def stage_seconds(progress: str) -> dict[str, float]:
    """Stage -> seconds, from the CLI's progress lines."""
    return {m["stage"]: float(m["seconds"]) for m in STAGE_LINE.finditer(progress)}


def stage_notes(process: Process) -> tuple[str, ...]:
    stages = stage_seconds(process.stderr)
    if not stages:
        return ()
    total = math.fsum(stages.values())
    shown = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items())
    return (
        f"stages (s): {shown}; sum {total:.1f}, outside the stages "
        f"(interpreter start, imports, a JVM start for Spark, landing check, run records) "
        f"{process.seconds - total:.1f}",
    )


def gold_note(lake: Path) -> str:
    """The gold mart's row count and total cost, read back with deltalake (not timed)."""
    try:
        from deltalake import DeltaTable

        table = DeltaTable(str(lake / GOLD_TABLE)).to_pyarrow_table(columns=["daily_cost_usd"])
        cost = math.fsum(value for value in table.column(0).to_pylist() if value is not None)
    except Exception as error:  # a failed run leaves no gold: say so, keep measuring
        return f"gold: unreadable ({type(error).__name__}: {error})"
    return f"gold rows {table.num_rows:,}, total cost {cost:,.2f} USD"


def finops_figure(name: str, command: list[str], lake: Path) -> Figure:
    process = run_process(command, lake.parent, lake.parent / name)
    if name == "stream":  # no stage lines and no gold: its totals line
        last = process.stdout.strip().splitlines()[-1:]
        notes = [f"totals: {last[0] if last else '(none printed)'}"]
    else:
        notes = [*stage_notes(process), gold_note(lake)]
    if name != "memory":
        notes.append(f"driver JVM peak RSS {process.java_peak_mb:,.0f} MB")
    return Figure(name, process.seconds, process.code == 0, tuple(notes))


def measure(name: str, work: Path, landing: Path, zip_path: Path) -> Figure:
    if name in ("reference", "floor"):
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        script = REFERENCE_SCRIPT if name == "reference" else FLOOR_SCRIPT
        command = [sys.executable, str(script), str(landing), str(folder / "out")]
        process = run_process(command, folder, folder / name)
        found = REFERENCE_LINE.search(process.stdout)
        notes = [process.stdout.strip().splitlines()[-1] if found else "no gold line printed"]
        notes.append(f"driver JVM peak RSS {process.java_peak_mb:,.0f} MB")
        return Figure(name, process.seconds, process.code == 0 and found is not None, tuple(notes))
    if name == "duckdb":
        folder = work / "duckdb"
        command = [sys.executable, str(Path(__file__).resolve()), "--duckdb-child", str(work)]
        process = run_process(command, folder, folder / "duckdb")
        if process.code:
            return Figure(name, process.seconds, False)
        answer = json.loads(process.stdout.strip().splitlines()[-1])
        return Figure(
            name,
            process.seconds,
            True,
            (
                f"fresh process (interpreter, import duckdb, query) {process.seconds:.2f} s, "
                f"the query alone {answer['seconds']:.2f} s; gold rows {answer['rows']:,}, "
                f"total cost {answer['cost']:,.2f} USD (no dedup, no cost filter)",
            ),
        )
    tool = finops()
    if name == "batch":
        lake = fresh_lake(work, name, landing)
        return finops_figure(name, [tool, "batch", "--engine", "spark", "--lake", str(lake)], lake)
    if name == "stream":
        lake = fresh_lake(work, name, landing)
        return finops_figure(name, [tool, "stream", "--once", "--lake", str(lake)], lake)
    if name == "demo":
        lake = fresh_lake(work, name, None)
        command = [tool, "demo", "--engine", "spark", "--lake", str(lake), "--zip", str(zip_path)]
        return finops_figure(name, command, lake)
    if name == "memory":
        lake = fresh_lake(work, name, landing)
        return finops_figure(name, [tool, "batch", "--engine", "memory", "--lake", str(lake)], lake)
    raise ValueError(f"unknown figure {name!r}")


# ---- the report ---------------------------------------------------------------------------------


def uptime(when: str) -> float:
    shown = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime {when}: {shown}", flush=True)
    return os.getloadavg()[0]


def ratio_text(figure: Figure, figures: dict[str, Figure]) -> tuple[str, str, str]:
    """(reference, ratio, verdict) of a figure with a target."""
    target = TARGETS.get(figure.name)
    if target is None:
        return "", "", ""
    reference = figures.get(target.reference)
    if reference is None or not reference.ok or not figure.ok:
        wanted = "(none)" if target.ratio is None else f"<= {target.ratio:g}"
        return target.reference, "n/a", f"{wanted} (not measured)"
    ratio = figure.seconds / reference.seconds
    if target.ratio is None:
        return target.reference, f"{ratio:.2f}", "(none: shown)"
    verdict = "met" if ratio <= target.ratio else "MISSED"
    return target.reference, f"{ratio:.2f}", f"<= {target.ratio:g} {verdict}"


def print_figure(figure: Figure, figures: dict[str, Figure]) -> None:
    reference, ratio, target = ratio_text(figure, figures)
    failed = "" if figure.ok else " (FAILED)"
    line = f"{figure.name}: {LABELS[figure.name]} {figure.seconds:.2f} s{failed}"
    if reference:
        line += f"; / {reference} = {ratio} (target {target})"
    print(line, flush=True)
    for note in figure.notes:
        print(f"    {note}", flush=True)


def print_table(figures: dict[str, Figure]) -> None:
    rows = [("figure", "seconds", "reference", "ratio", "target")]
    for figure in figures.values():
        reference, ratio, target = ratio_text(figure, figures)
        seconds = f"{figure.seconds:.2f}" + ("" if figure.ok else " FAILED")
        rows.append((LABELS[figure.name], seconds, reference, ratio, target))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.rjust(width) if i in (1, 3) else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip(),
            flush=True,
        )


def selected(only: str | None) -> list[str]:
    if not only:
        return list(FIGURES)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise SystemExit(
            f"unknown figure(s) {', '.join(unknown)}: choose among {', '.join(FIGURES)}"
        )
    return [name for name in FIGURES if name in names]  # always in the reference-first order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default=None, metavar="NAMES", help=f"comma-separated among {','.join(FIGURES)}"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder, kept (default: a temporary one)"
    )
    parser.add_argument("--zip", type=Path, default=REAL_ZIP, help=f"dataset zip ({REAL_ZIP})")
    parser.add_argument("--duckdb-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duckdb_child is not None:  # the duckdb figure's fresh process
        seconds, rows, cost = run_duckdb(args.duckdb_child)
        print(json.dumps({"seconds": seconds, "rows": rows, "cost": cost}))
        return 0
    names = selected(args.only)
    zip_path = args.zip.resolve()
    if not zip_path.is_file():
        raise SystemExit(f"no dataset zip at {zip_path}")

    load = uptime("before")
    loaded = load >= QUIET_LOAD
    warning = (
        f"WARNING: load average {load:.2f} >= {QUIET_LOAD} at start on {os.cpu_count()} cores: "
        "these are NOT quiet-machine figures"
    )
    if loaded:
        print(f"{'!' * len(warning)}\n{warning}\n{'!' * len(warning)}", flush=True)
    keep = args.work is not None
    work = (args.work or Path(tempfile.mkdtemp(prefix="finops-targets-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    settings = sorted(key for key in os.environ if key.startswith("FINOPS_"))
    print(
        f"work folder {work}; figures {', '.join(names)}; zip {zip_path}"
        + (f"; settings from the environment: {', '.join(settings)}" if settings else ""),
        flush=True,
    )
    landing = extract_landing(zip_path, work / "landing")
    figures: dict[str, Figure] = {}
    try:
        for name in names:
            figures[name] = measure(name, work, landing, zip_path)
            print_figure(figures[name], figures)
    finally:
        uptime("after")
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(figures)
    if loaded:
        print(warning, flush=True)
    return 0 if all(figure.ok for figure in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
