"""SparkSession factory: one session per process, owned or borrowed, sized for small data.

`SparkSessions(settings).get()` returns the active session when there is one (a notebook's, a
test run's) and never stops it; otherwise it starts one (local[*] unless a master URL is given)
and `close()` stops it. Nothing happens at import time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from finops_core.errors import EngineUnavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOCAL_MASTER = "local[*]"

# Settings every stage relies on, applied to owned and borrowed sessions alike: the lake's
# timestamps are UTC instants, and parquet timestamps must be int64 micros (what pyarrow and
# the memory engine write) rather than Spark's legacy INT96.
RUNTIME_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

# log4j2 configuration for a quiet driver: errors only, on stderr.
_QUIET_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


@attrs.frozen
class SessionSettings:
    master: str | None = None  # None: local[*]
    verbose: bool = False
    shuffle_partitions: int = 4
    # Heap of the driver JVM (in local mode it also runs the tasks); keeps its RSS near 1 GB.
    driver_memory: str = "640m"
    app_name: str = "finops"

    @property
    def master_url(self) -> str:
        return self.master or LOCAL_MASTER


def java_executable() -> str | None:
    """The `java` Spark would launch: $JAVA_HOME/bin/java when JAVA_HOME is set, else PATH's."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def _quiet_log4j2_file() -> Path:
    path = Path(tempfile.gettempdir()) / "finops-spark-log4j2-quiet.properties"
    if not path.exists() or path.read_text() != _QUIET_LOG4J2:
        path.write_text(_QUIET_LOG4J2)
    return path


def session_conf(settings: SessionSettings) -> dict[str, str]:
    """The configuration of a session this factory starts (static and runtime settings)."""
    java_options = ["-XX:+UseParallelGC", "-XX:ReservedCodeCacheSize=128m", "-Xss4m"]
    if not settings.verbose:
        java_options.append(f"-Dlog4j2.configurationFile=file:{_quiet_log4j2_file()}")
        conf_log = {"spark.log.level": "ERROR"}
    else:
        conf_log = {"spark.log.level": "WARN"}
    conf = {
        "spark.driver.memory": settings.driver_memory,
        "spark.driver.extraJavaOptions": " ".join(java_options),
        "spark.executor.extraJavaOptions": "-Xss4m",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.adaptive.coalescePartitions.initialPartitionNum": str(
            settings.shuffle_partitions
        ),
        # Many small landing files: do not pay 4 MB of "open cost" per file when packing splits.
        "spark.sql.files.openCostInBytes": str(256 * 1024),
        **conf_log,
        **RUNTIME_CONF,
    }
    if settings.master and not settings.master.startswith("local"):
        conf["spark.executor.memory"] = "768m"
        conf["spark.driver.host"] = os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")
    return conf


class SparkSessions:
    """Gives out one SparkSession and stops it on `close()` only if it started it."""

    def __init__(self, settings: SessionSettings | None = None) -> None:
        self.settings = settings or SessionSettings()
        self._session: SparkSession | None = None
        self.owned = False

    def get(self) -> SparkSession:
        if self._session is not None:
            return self._session
        session = _active_session()
        if session is None:
            session = self._start()
            self.owned = True
        prepare(session)
        self._session = session
        return session

    def close(self) -> None:
        """Stop the session if this factory started it; a borrowed session is left running."""
        if self._session is not None and self.owned:
            self._session.stop()
        self._session = None
        self.owned = False

    def _start(self) -> SparkSession:
        if java_executable() is None:
            where = "JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on the PATH"
            raise EngineUnavailable(
                f"The Spark engine needs Java 17 but there is no {where}: install a JDK 17 and set "
                "JAVA_HOME, or run with --engine memory."
            )
        # Python workers (the rare-line JSON fallback) must import this project: our interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark's import-time pandas version warning
            from pyspark.sql import SparkSession

            builder = SparkSession.builder.master(self.settings.master_url).appName(
                self.settings.app_name
            )
            for key, value in session_conf(self.settings).items():
                builder = builder.config(key, value)
            try:
                session = builder.getOrCreate()
            except Exception as error:  # the JVM did not start or the master is unreachable
                first_line = (
                    str(error).strip().splitlines()[0]
                    if str(error).strip()
                    else type(error).__name__
                )
                raise EngineUnavailable(
                    f"Spark could not start at {self.settings.master_url} ({first_line}); check "
                    "Java 17 and the master URL, or run with --engine memory."
                ) from None
        session.sparkContext.setLogLevel("WARN" if self.settings.verbose else "ERROR")
        return session


def prepare(session: SparkSession) -> None:
    """Settings the engine relies on, applied to any session it uses (owned or borrowed)."""
    for key, value in RUNTIME_CONF.items():
        session.conf.set(key, value)
    context = session.sparkContext
    if not os.environ.get("PYSPARK_PYTHON") and getattr(context, "pythonExec", None) == "python3":
        # pyspark's default worker interpreter is whatever `python3` is on the PATH, which need
        # not have this project installed; the driver's interpreter does.
        context.pythonExec = sys.executable


def _active_session() -> SparkSession | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()
