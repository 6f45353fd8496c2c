"""The composition root: the one place where adapters are chosen and built."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.console import ConsoleProgress
from adapters.runlog import JsonRunLog
from finops_core.lake import LakeLayout


def _memory_engine() -> object:
    from adapters.memory.engine import MemoryEngine

    return MemoryEngine()


def _spark_engine(master: str | None, verbose: bool) -> object:
    from adapters.spark.engine import SparkEngine

    return SparkEngine(master=master, verbose=verbose)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    layout = providers.Singleton(LakeLayout, root=config.lake)
    clock = providers.Singleton(SystemClock)
    progress = providers.Singleton(ConsoleProgress, detail=config.verbose)
    run_log = providers.Singleton(lambda layout: JsonRunLog(layout.runs), layout)
    engine = providers.Selector(
        config.engine,
        memory=providers.Singleton(_memory_engine),
        spark=providers.Singleton(_spark_engine, master=config.spark_master, verbose=config.verbose),
    )


def build_container(
    lake: Path, engine: str | None = None, spark_master: str | None = None, verbose: bool = False
) -> Container:
    container = Container()
    container.config.from_dict(
        {"lake": str(lake), "engine": engine or "spark", "spark_master": spark_master, "verbose": verbose}
    )
    return container
