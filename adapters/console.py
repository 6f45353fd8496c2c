"""Progress as plain lines: a line when a stage starts, one per update, one line of counts and
seconds at its end; nothing but text and newlines, for pipes, files and CI logs (an interactive
terminal gets `adapters.rich.progress`, which prints the same line at a stage's end)."""

from __future__ import annotations

import sys
from typing import TextIO

from finops_core.ports import StageResult


def _format_value(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, detail: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.detail = detail

    def stage_started(self, stage: str) -> None:
        print(f"… {stage}", file=self.stream, flush=True)

    def update(self, stage: str, message: str) -> None:
        print(f"  {stage}: {message}", file=self.stream, flush=True)

    def stage_finished(self, result: StageResult) -> None:
        if result.skipped:
            print(f"- {result.stage}: skipped ({result.note})", file=self.stream, flush=True)
            return
        shown = {k: v for k, v in result.counts.items() if self.detail or "." not in k}
        counts = ", ".join(f"{k}={_format_value(v)}" for k, v in shown.items())
        print(f"✓ {result.stage}: {counts} in {result.seconds:.2f} s", file=self.stream, flush=True)


class SilentProgress:
    def stage_started(self, stage: str) -> None: ...

    def update(self, stage: str, message: str) -> None: ...

    def stage_finished(self, result: StageResult) -> None: ...
