"""The terminal shows progress live, a pipe gets plain lines, and Spark starts without noise.

Each CLI here runs in a fresh process: once with stdin, stdout and stderr on a pseudo-terminal
(what an interactive shell gives), once with pipes (what CI logs and `| tee` give).
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROWS, COLUMNS = 40, 120
TIMEOUT_S = 120.0
# A control sequence (CSI ... final byte), as Rich writes them to redraw its live line.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# An SGR sequence that sets a foreground colour (30-39, 90-97).
COLOUR = re.compile(r"\x1b\[(?:[0-9]+;)*(?:3[0-9]|9[0-7])(?:;[0-9]+)*m")
ERASE_LINE = "\x1b[2K"
# Variables through which the environment could force or forbid colours and terminal features.
TERMINAL_VARIABLES = ("TERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def _environment(**extra: str) -> dict[str, str]:
    """This environment without finops settings or terminal overrides, plus `extra`."""
    from entrypoints.config import env_names

    dropped = {*env_names(), *TERMINAL_VARIABLES, "COLUMNS", "LINES"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


def _finops(*argv: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *argv]


def in_terminal(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a pseudo-terminal of ROWS x COLUMNS; its
    exit status and everything it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=dict(env)
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the process closed the terminal's last descriptor
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = process.wait(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return status, b"".join(chunks).decode("utf-8", errors="replace")


def through_pipes(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def screen_lines(output: str) -> list[str]:
    """The text the terminal was shown, without control sequences, one entry per line or per
    redraw of a line (a carriage return starts a redraw)."""
    text = CONTROL.sub("", output)
    return [part.strip() for part in re.split(r"\r\n|\r|\n", text) if part.strip()]


def _seconds_out(line: str) -> str:
    return re.sub(r" in [0-9.]+ s$", " in … s", line)


def _landing_events(lake: Path) -> int:
    files = (lake / "landing" / "usage_events_stream").glob("*.jsonl")
    return sum(len(path.read_bytes().splitlines()) for path in files)


@pytest.fixture
def work(cli: Path) -> Path:
    """The working directory of the commands (no ./cred.env)."""
    return cli


# -- generate: a live line whose counts move --------------------------------------------------


def test_generate_on_a_terminal_redraws_one_live_line_with_the_events_written_so_far(
    work: Path,
) -> None:
    lake = work / "lake"
    status, output = in_terminal(
        _finops("generate", "--scale", "0.1", "--lake", str(lake)), work, _environment(TERM="xterm")
    )
    assert status == 0, output
    total = _landing_events(lake)
    assert total > 0
    # The live line is redrawn in place (carriage return, erase line), never scrolled.
    assert output.count(ERASE_LINE) >= 5
    shown = screen_lines(output)
    updates = [
        int(match["done"].replace(",", ""))
        for line in shown
        if (match := re.search(rf"generate (?P<done>[0-9,]+)/{total:,} events \(", line))
    ]
    distinct = sorted(set(updates))
    assert len(distinct) >= 5, shown
    assert updates == sorted(updates)  # they only move forward
    assert all(0 < done <= total for done in distinct)
    # The elapsed time is on the live line.
    assert any(re.search(r"generate .* \d+:\d\d:\d\d$", line) for line in shown), shown
    # The live line is erased when the stage ends; the lasting line is the plain one.
    finished = [line for line in shown if line.startswith("✓ generate:")]
    assert len(finished) == 1
    assert f"events={total:,}" in finished[0]
    assert f"generated {total} events" in output  # stdout's summary, on the same terminal


def test_generate_through_pipes_prints_plain_lines_without_a_control_character(
    work: Path,
) -> None:
    lake = work / "lake"
    done = through_pipes(
        _finops("generate", "--scale", "0.1", "--lake", str(lake)), work, _environment()
    )
    assert done.returncode == 0, done.stderr
    total = _landing_events(lake)
    for stream in (done.stdout, done.stderr):
        assert "\x1b" not in stream
        assert "\r" not in stream
    lines = done.stderr.splitlines()
    assert lines[0] == "… generate"
    updates = [
        line
        for line in lines
        if re.fullmatch(rf"  generate: [0-9,]+/{total:,} events \(\d+%\)", line)
    ]
    assert len(updates) >= 5
    assert lines[-1].startswith("✓ generate: ") and f"events={total:,}" in lines[-1]
    assert done.stdout.startswith(f"generated {total} events")


def test_the_terminal_and_the_pipe_show_the_same_lasting_line_for_a_stage(work: Path) -> None:
    status, output = in_terminal(
        _finops("generate", "--scale", "0.05", "--lake", str(work / "tty")),
        work,
        _environment(TERM="xterm"),
    )
    assert status == 0, output
    piped = through_pipes(
        _finops("generate", "--scale", "0.05", "--lake", str(work / "pipe")), work, _environment()
    )
    assert piped.returncode == 0, piped.stderr
    on_terminal = [_seconds_out(x) for x in screen_lines(output) if x.startswith("✓ ")]
    in_pipe = [_seconds_out(x) for x in piped.stderr.splitlines() if x.startswith("✓ ")]
    assert on_terminal == in_pipe
    assert len(in_pipe) == 1


# -- batch: each stage live -------------------------------------------------------------------


@pytest.fixture
def generated(work: Path) -> Path:
    """A small synthetic landing (in this process), to copy into lakes."""
    from adapters.landing.generator import generate

    source = work / "source"
    generate(source, seed=5, scale=0.05)
    return source / "landing"


def _lake_with(landing: Path, lake: Path) -> Path:
    import shutil

    shutil.copytree(landing, lake / "landing")
    return lake


BATCH_STAGES = ("bronze_masters", "bronze_events", "silver", "gold")


def test_a_memory_batch_on_a_terminal_shows_each_stage_live_and_through_pipes_plain_lines(
    work: Path, generated: Path
) -> None:
    tty_lake = _lake_with(generated, work / "tty")
    status, output = in_terminal(
        _finops("batch", "--engine", "memory", "--lake", str(tty_lake)),
        work,
        _environment(TERM="xterm-256color"),
    )
    assert status == 0, output
    shown = screen_lines(output)
    for stage in BATCH_STAGES:
        # Its live line (spinner, stage name, elapsed time), then its lasting line.
        assert any(re.search(rf"{stage} .*\d+:\d\d:\d\d$", line) for line in shown), (stage, shown)
        assert sum(line.startswith(f"✓ {stage}: ") for line in shown) == 1, (stage, shown)
    assert any("full backfill of" in line and "bronze_events" in line for line in shown)
    assert output.count(ERASE_LINE) >= len(BATCH_STAGES)

    pipe_lake = _lake_with(generated, work / "pipe")
    piped = through_pipes(
        _finops("batch", "--engine", "memory", "--lake", str(pipe_lake)), work, _environment()
    )
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stderr + piped.stdout
    assert "\r" not in piped.stderr + piped.stdout
    lines = piped.stderr.splitlines()
    assert [line for line in lines if line.startswith("… ")] == [f"… {s}" for s in BATCH_STAGES]
    finished = [line.split(":")[0] for line in lines if line.startswith("✓ ")]
    assert finished == [f"✓ {s}" for s in BATCH_STAGES]
    # Both lakes hold the same landing: the lasting lines agree but for the seconds.
    assert [_seconds_out(x) for x in shown if x.startswith("✓ ")] == [
        _seconds_out(x) for x in lines if x.startswith("✓ ")
    ]


def test_a_dumb_terminal_gets_the_plain_lines(work: Path) -> None:
    status, output = in_terminal(
        _finops("generate", "--scale", "0.05", "--lake", str(work / "lake")),
        work,
        _environment(TERM="dumb"),
    )
    assert status == 0, output
    assert "\x1b" not in output
    lines = output.replace("\r\n", "\n").splitlines()  # the terminal turns \n into \r\n
    assert "… generate" in lines
    assert any(line.startswith("  generate: ") for line in lines)


def test_no_color_keeps_the_live_line_and_drops_its_colours(work: Path) -> None:
    argv = ("generate", "--scale", "0.05", "--lake")
    coloured = in_terminal(_finops(*argv, str(work / "a")), work, _environment(TERM="xterm"))
    plain = in_terminal(
        _finops(*argv, str(work / "b")), work, _environment(TERM="xterm", NO_COLOR="1")
    )
    assert coloured[0] == plain[0] == 0
    assert COLOUR.search(coloured[1])
    assert not COLOUR.search(plain[1])
    assert ERASE_LINE in plain[1]


# -- tables -----------------------------------------------------------------------------------


def test_the_audit_on_a_terminal_draws_rich_tables_of_the_same_cells_as_the_plain_ones(
    work: Path, generated: Path
) -> None:
    from entrypoints.cli import main

    lake = _lake_with(generated, work / "lake")
    assert main(["batch", "--engine", "memory", "--lake", str(lake)]) == 0
    status, output = in_terminal(
        _finops("audit", "--lake", str(lake)), work, _environment(TERM="xterm")
    )
    assert status == 0, output
    piped = through_pipes(_finops("audit", "--lake", str(lake)), work, _environment())
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout
    dashes = [line for line in piped.stdout.splitlines() if re.fullmatch(r"[- ]*-[- ]*", line)]
    assert dashes  # the plain tables' dashed rule under each header
    drawn = CONTROL.sub("", output)
    assert "─" in drawn and "\x1b[1m" in output  # Rich's rule and bold header
    assert not any(re.fullmatch(r"[- ]*-[- ]*", line.strip()) for line in drawn.splitlines())
    # The same rows: each quality rule with its two counts, and as many verdicts.
    rules = re.findall(r"^([a-z_]+) +([0-9]+) +([0-9]+) ", piped.stdout, re.MULTILINE)
    assert len(rules) >= 10
    for rule, quarantined, flagged in rules:
        assert re.search(rf"^{rule} +{quarantined} +{flagged} ", drawn, re.MULTILINE), rule
    for verdict in ("PASS", "FAIL"):
        assert drawn.count(f" {verdict} ") == piped.stdout.count(f" {verdict} ")
    assert piped.stdout.count(" PASS ") >= 5


def test_format_table_draws_the_same_cells_on_a_terminal_and_keeps_the_plain_text_elsewhere():
    from entrypoints.output import format_table

    header = ["service", "total_cost_usd", "requests"]
    rows = [["compute [eu]", 1234.5, 7], ["storage", 0.25, None]]
    plain = format_table(header, rows, terminal=False)
    assert format_table(header, rows) == plain  # pytest's stdout is not a terminal
    assert plain.splitlines()[1] == "------------  --------------  --------"
    drawn = format_table(header, rows, terminal=True)
    text = CONTROL.sub("", drawn)
    for cell in ("service", "total_cost_usd", "requests", "compute [eu]", "1,234.5", "0.25", "7"):
        assert cell in text
    assert "-----" not in text and "─" in text
    # Numbers stay right-aligned: their last characters share a column.
    lines = text.splitlines()
    assert lines[2].rstrip().endswith("7")
    assert lines[2].index("1,234.5") + len("1,234.5") == lines[3].index("0.25") + len("0.25")
    assert format_table(header, [], terminal=True) == "(no rows)"


# -- the container's choice -------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stderr", "term", "chosen"),
    [
        (_Terminal, "xterm", "RichProgress"),
        (_Terminal, "dumb", "ConsoleProgress"),
        (io.StringIO, "xterm", "ConsoleProgress"),
    ],
)
def test_the_container_chooses_the_live_progress_only_for_a_terminal_that_redraws(
    monkeypatch: pytest.MonkeyPatch, stderr: type[io.StringIO], term: str, chosen: str
) -> None:
    from entrypoints.containers import progress_display

    monkeypatch.setattr(sys, "stderr", stderr())
    monkeypatch.setenv("TERM", term)
    resource = progress_display(detail=False)
    progress = next(resource)
    assert type(progress).__name__ == chosen
    resource.close()


def test_a_live_line_left_running_is_erased_at_shutdown(monkeypatch: pytest.MonkeyPatch):
    """A command that fails mid-stage leaves no spinner: the container's shutdown erases it."""
    from entrypoints.containers import progress_display

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    resource = progress_display(detail=False)
    next(resource).stage_started("silver")
    shown = terminal.getvalue()
    assert "silver" in CONTROL.sub("", shown) and "\x1b[?25l" in shown  # cursor hidden
    resource.close()  # what the container's shutdown_resources() does
    after = terminal.getvalue()[len(shown) :]
    assert after.endswith(ERASE_LINE)  # the line is wiped
    assert "\x1b[?25h" in after  # the cursor is shown again
    assert "✓" not in after  # and no result line is made up for the unfinished stage


# -- Spark's start-up noise -------------------------------------------------------------------


def test_the_driver_stderr_filter_drops_the_incubator_warning_and_forwards_the_rest():
    from adapters.spark.session import forward_stderr

    source = io.BytesIO(
        b"WARNING: Using incubator modules: jdk.incubator.vector\n"
        b"12:00:01 ERROR Executor: task 3 failed\n"
        b"caf\xc3\xa9 \xff\n"
    )
    written: list[str] = []
    forward_stderr(source, written.append)
    assert written == ["12:00:01 ERROR Executor: task 3 failed\n", "café \ufffd\n"]


def test_the_driver_stderr_filter_keeps_reading_when_writing_fails():
    from adapters.spark.session import forward_stderr

    source = io.BytesIO(b"one\ntwo\nthree\n")
    seen: list[str] = []

    def broken(text: str) -> None:
        seen.append(text)
        raise ValueError("I/O operation on closed file")

    forward_stderr(source, broken)
    assert seen == ["one\n", "two\n", "three\n"]
    assert source.read() == b""


SESSION_START = """\
from adapters.spark.session import SessionSettings, SparkSessions
sessions = SparkSessions(SessionSettings(master="local[1]", verbose={verbose}))
session = sessions.get()
print(session.range(3).count())
sessions.close()
"""


@pytest.mark.spark
def test_a_spark_session_starts_without_the_jvm_and_log4j_start_up_noise(work: Path) -> None:
    """In a fresh process: this test run's own session, if any, would only be borrowed."""
    pytest.importorskip("pyspark")
    from adapters.spark.session import java_executable

    if java_executable() is None:
        pytest.skip("Spark needs Java 17 and there is none")
    done = through_pipes(
        [sys.executable, "-c", SESSION_START.format(verbose=False)], work, _environment()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "3"
    assert "Using incubator modules" not in done.stderr
    assert "Setting default log level" not in done.stderr
    assert "Setting Spark log level" not in done.stderr
    assert done.stderr.strip() == ""
