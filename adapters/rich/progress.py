"""Progress on an interactive terminal: a live line per running stage, through Rich.

While a stage runs, one line shows a spinner, the stage, its latest update (counts) and the time
elapsed, redrawn in place; when the stage finishes the line is erased and the lasting line is
printed by `lines`, the plain line-oriented progress a pipe or a CI log gets, so a terminal and a
log show the same results. Other output written to stderr while a stage runs (warnings, the
Spark driver's errors) is printed above the live line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from finops_core.ports import Progress, StageResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as LiveDisplay
    from rich.progress import TaskID

REFRESHES_PER_SECOND = 8  # the spinner and the elapsed time between two updates


class RichProgress:
    """A `Progress` whose running stage is a live line on the terminal."""

    def __init__(
        self,
        lines: Progress,
        *,
        no_color: bool = False,
        redirect_stdout: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        """`lines` prints each finished stage; `stream` is the terminal (default: stderr as it
        is when written to); `redirect_stdout` prints what is written to stdout while a stage
        runs above the live line (for a stdout on the same terminal)."""
        from rich.console import Console

        self.lines = lines
        self.redirect_stdout = redirect_stdout
        self.console: Console = Console(
            file=stream, stderr=stream is None, no_color=no_color, highlight=False
        )
        self._live: LiveDisplay | None = None
        self._task: TaskID | None = None
        self._stage: str | None = None

    def stage_started(self, stage: str) -> None:
        if stage == self._stage:  # an update of this stage already showed its line
            return
        self.close()
        from rich.progress import Progress as LiveDisplay
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        live = LiveDisplay(
            SpinnerColumn(),
            TextColumn("{task.fields[stage]}", markup=False, style="bold"),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            refresh_per_second=REFRESHES_PER_SECOND,
            redirect_stdout=self.redirect_stdout,
            redirect_stderr=True,
        )
        live.start()
        self._task = live.add_task("", stage=stage, total=None)
        self._live, self._stage = live, stage
        live.refresh()

    def update(self, stage: str, message: str) -> None:
        """The stage's live line shows `message` (an update before the stage starts opens it)."""
        self.stage_started(stage)
        if self._live is not None and self._task is not None:
            self._live.update(self._task, description=message, refresh=True)

    def stage_finished(self, result: StageResult) -> None:
        self.close()
        self.lines.stage_finished(result)

    def close(self) -> None:
        """Erase the live line, if a stage is running (a command that fails or is interrupted
        leaves no spinner behind)."""
        if self._live is not None:
            self._live.stop()
        self._live, self._task, self._stage = None, None, None
