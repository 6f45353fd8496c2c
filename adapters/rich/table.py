"""Tables on an interactive terminal, through Rich."""

from __future__ import annotations

from collections.abc import Sequence


def terminal_table(
    header: Sequence[str],
    cells: Sequence[Sequence[str]],
    right_aligned: Sequence[bool],
    *,
    width: int,
    no_color: bool = False,
) -> str:
    """The cells (already formatted as text) under a bold header, each column aligned as
    `right_aligned` says, as text with the terminal's escape codes, at most `width` wide."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for name, right in zip(header, right_aligned, strict=True):
        table.add_column(Text(name), justify="right" if right else "left", no_wrap=right)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        width=width,
        no_color=no_color,
        highlight=False,
    )
    with console.capture() as captured:
        console.print(table)
    return captured.get().rstrip("\n")
