"""`finops generate`: write a synthetic landing shaped like the challenge dataset."""

from __future__ import annotations

import argparse

from entrypoints.commands.common import add_command, add_lake_option, writes_lake
from entrypoints.containers import Container
from finops_core.ports import Progress

STAGE = "generate"  # the stage its progress and its run record name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "generate",
        summary="write a synthetic <lake>/landing/ like the dataset (any scale, optional dirt)",
        description=(
            "Write the seven CSVs and usage_events_stream/*.jsonl with the real dataset's names,\n"
            "columns, text formats and quirks, deterministic for (seed, scale, dirty). Scale 1 is\n"
            "the real size (43,200 events in 120 files); scale 100 writes about 4.3 M events in\n"
            "bounded memory. --dirty RATE injects broken records and lists them in _injected.json."
        ),
        example="finops generate --lake /tmp/lake --seed 7 --scale 10 --dirty 0.01",
    )
    add_lake_option(parser)
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default 1)")
    parser.add_argument(
        "--scale", type=float, default=1.0, metavar="F", help="size multiplier (default 1.0)"
    )
    parser.add_argument(
        "--dirty",
        type=float,
        default=0.0,
        metavar="RATE",
        help="fraction of events given each kind of defect, e.g. 0.01 (default 0: clean)",
    )
    parser.add_argument(
        "--replace", action="store_true", help="replace an existing <lake>/landing/"
    )
    writes_lake(parser)
    parser.set_defaults(handler=run)


class _EventsProgress:
    """The generator's events written so far, as updates of the "generate" stage about every
    5 % of them."""

    STEP = 0.05

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.next_share = self.STEP

    def __call__(self, done: int, total: int) -> None:
        if total and done / total >= self.next_share:
            self.progress.update(STAGE, f"{done:,}/{total:,} events ({done / total:.0%})")
            while self.next_share <= done / total:
                self.next_share += self.STEP


def run(args: argparse.Namespace, container: Container) -> int:
    from entrypoints.app import generate_landing

    progress = container.progress()
    progress.stage_started(STAGE)
    record = generate_landing(
        container,
        seed=args.seed,
        scale=args.scale,
        dirty_rate=args.dirty,
        replace=args.replace,
        progress=_EventsProgress(progress),
    )
    for stage in record.stages:
        progress.stage_finished(stage)
    return 0
