"""The README's promises hold: its embedding example runs and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_validates_one_record_as_its_comments_say():
    text = README.read_text()
    section = text.split("## Using the core rules from your own code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    expected = [
        line.split("# ", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")
    ]
    assert out.getvalue().split("\n")[:-1] == expected


def test_the_readme_gives_exactly_the_two_set_up_commands():
    text = README.read_text()
    block = re.search(r"## Two commands on a fresh machine\n\n```bash\n(.*?)```", text, re.S).group(
        1
    )
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]


def _section(title: str) -> str:
    return README.read_text().split(title, 1)[1].split("\n## ", 1)[0]


def test_the_commands_table_lists_exactly_the_cli_commands():
    from entrypoints import cli

    table = _section("## Commands\n")
    documented = re.findall(r"^\| `finops (\w+)", table, re.M)
    assert sorted(documented) == sorted(name.rsplit(".", 1)[1] for name in cli.COMMAND_MODULES)


def test_the_documented_vacuum_commands_parse():
    from entrypoints.cli import build_parser

    block = re.search(r"```bash\n(finops vacuum.*?)```", README.read_text(), re.S).group(1)
    lines = [line.split("#")[0].split() for line in block.strip().splitlines()]
    for argv in lines:
        args = build_parser().parse_args(argv[1:])
        assert args.command == "vacuum" and args.retain_hours == 24.0


def test_the_other_tools_example_reads_gold_as_the_lake_holds_it(tmp_path, monkeypatch):
    """The pandas, DuckDB and Polars snippet, run against a lake a memory batch built."""
    from adapters.lake.delta import DeltaLake
    from entrypoints.cli import main
    from finops_core.lake import LakeLayout
    from finops_core.marts import DAILY_USAGE
    from tests.strategies import master_csvs, write_landing
    from tests.test_audit import EVENT_LINES

    landing = {
        **master_csvs(),
        "usage_events_stream/events_part_0000.jsonl": b"\n".join(EVENT_LINES) + b"\n",
    }
    write_landing(landing, tmp_path / "datalake" / "landing")
    monkeypatch.chdir(tmp_path)
    assert main(["batch", "--engine", "memory", "--lake", "datalake"]) == 0
    gold = DeltaLake(LakeLayout(tmp_path / "datalake")).read_table(DAILY_USAGE.table)
    section = _section("### Reading the lake from other tools")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    names: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), names)
    assert len(names["frame"]) == names["polars_frame"].height == len(gold) == 3
    totals: dict[str, float] = {}
    for row in gold:
        totals[row["org_id"]] = totals.get(row["org_id"], 0.0) + row["daily_cost_usd"]
    expected = sorted(((org, round(cost, 2)) for org, cost in totals.items()), key=lambda t: -t[1])
    assert names["top"] == expected[:3]
