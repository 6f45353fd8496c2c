"""SparkSession factory: one session per process, owned or borrowed, sized for small data.

`SparkSessions(settings).get()` returns the active session when there is one (a notebook's, a
test run's) and never stops it; otherwise it starts one (local[*] unless a master URL is given)
and `close()` stops it. Nothing happens at import time.

Every lake table is a Delta table: a session this factory starts loads the two Delta jars
(`delta_jars`: found in the local Maven repository, downloaded there with `mvn` on first use)
and Delta's SQL extension and catalog; a borrowed session must have been started with them.

Without `verbose`, a session this factory starts is quiet: log4j2 logs errors only (`_QUIET_LOG4J2`,
which also keeps Spark's shell from announcing its default log level), and the JVM's stderr
reaches ours through `forward_stderr`, which drops the JVM's own start-up warning about incubator
modules (Spark's launcher always adds `--add-modules=jdk.incubator.vector`; no JVM option
silences the warning). With `verbose` the JVM writes to our stderr directly, noise included.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs

from finops_core.errors import EngineUnavailable

if TYPE_CHECKING:
    from py4j.java_gateway import JavaGateway
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

LOCAL_MASTER = "local[*]"

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# The Delta jars the pinned `delta-spark` Python package is built against (Scala 2.13).
DELTA_FALLBACK_VERSION = "4.1.0"
DELTA_ARTIFACTS = ("io.delta:delta-spark_2.13", "io.delta:delta-storage")
MAVEN_TIMEOUT_S = 600.0
# Each read of a Delta table replays its log in this many tasks (Delta's default is 50): the
# lake's tables are small, so one task does it. Measured on the real dataset (local[2], a rerun
# of the masters, silver and gold stages on an existing lake): silver took 11.4 s with 1,
# 11.2 s with 2 and 28.6 s with 50 (each small master table's read + overwrite ~0.7 s vs ~2.5 s).
DELTA_SNAPSHOT_PARTITIONS = "1"
# Spark lists more than 32 input paths in a Spark job of one task per path (120 landing files:
# a 1.8 s job of 120 tasks on the real dataset); the driver lists that many files itself in a
# few milliseconds, so only a landing of more files than this gets the distributed listing.
LISTING_ON_DRIVER_UP_TO = "4096"

# Settings every stage relies on, applied to owned and borrowed sessions alike: the lake's
# timestamps are UTC instants, and parquet timestamps must be int64 micros (what pyarrow and
# the memory engine write) rather than Spark's legacy INT96.
RUNTIME_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.databricks.delta.snapshotPartitions": DELTA_SNAPSHOT_PARTITIONS,
    "spark.sql.sources.parallelPartitionDiscovery.threshold": LISTING_ON_DRIVER_UP_TO,
    # Tables stay at the protocol the `deltalake` package reads and writes (reader 1 / writer 2).
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.databricks.delta.properties.defaults.minReaderVersion": "1",
    "spark.databricks.delta.properties.defaults.minWriterVersion": "2",
}

# log4j2 configuration for a quiet driver: errors only, on stderr. pyspark's driver JVM starts
# logging as an interpreter (the py4j gateway server), which prints `Setting default log level to
# "WARN"` (and later `Setting Spark log level to ...`) unless the gateway server's logger has a
# level of its own equal to the root's: it is given one.
_QUIET_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

# What the JVM prints on its stderr before any logger exists, dropped without `verbose`.
JVM_NOISE = (b"WARNING: Using incubator modules:",)


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
    """The quiet log4j2 configuration as a file, named by its content and written whole (by a
    rename), so a JVM another process starts never reads it half-written or of another version."""
    digest = hashlib.sha256(_QUIET_LOG4J2.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"finops-spark-log4j2-quiet-{digest}.properties"
    if not path.exists() or path.read_text() != _QUIET_LOG4J2:
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        staging.write_text(_QUIET_LOG4J2)
        os.replace(staging, path)
    return path


def forward_stderr(
    source: IO[bytes], write: Callable[[str], object], noise: tuple[bytes, ...] = JVM_NOISE
) -> None:
    """Every line of `source` (the JVM's stderr) to `write`, but those starting with `noise`,
    until `source` ends (the JVM exits). It keeps reading whatever `write` does: a JVM whose
    stderr pipe is full would block."""
    for line in iter(source.readline, b""):
        if line.startswith(noise) or sys.is_finalizing():
            continue
        with contextlib.suppress(Exception):  # our stderr closed or replaced: the line is lost
            write(line.decode("utf-8", errors="replace"))


def _write_stderr(text: str) -> None:
    """To this process's stderr as it is when the line comes (a live progress display may have
    put its own in place, to print the line above itself)."""
    sys.stderr.write(text)
    sys.stderr.flush()


def _quiet_gateway(conf: SparkConf) -> JavaGateway:
    """The py4j gateway to a new driver JVM whose stderr goes through `forward_stderr`."""
    from pyspark.java_gateway import launch_gateway

    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(
        target=forward_stderr,
        args=(gateway.proc.stderr, _write_stderr),
        name="finops-spark-stderr",
        daemon=True,
    ).start()
    return gateway


def delta_version() -> str:
    """The Delta release of the installed `delta-spark` package (the jars must match it)."""
    try:
        return importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        return DELTA_FALLBACK_VERSION


def maven_repository() -> Path:
    """The local Maven repository: $MAVEN_REPO, else `-Dmaven.repo.local` of $MAVEN_OPTS, else
    ~/.m2/repository."""
    override = os.environ.get("MAVEN_REPO")
    if override:
        return Path(override).expanduser()
    for option in shlex.split(os.environ.get("MAVEN_OPTS", "")):
        if option.startswith("-Dmaven.repo.local="):
            return Path(option.split("=", 1)[1]).expanduser()
    return Path.home() / ".m2" / "repository"


def _jar_path(repository: Path, artifact: str, version: str) -> Path:
    group, name = artifact.split(":")
    return repository.joinpath(*group.split("."), name, version, f"{name}-{version}.jar")


def delta_jars(repository: Path | None = None, version: str | None = None) -> tuple[Path, ...]:
    """The paths of the Delta jars, downloaded with `mvn dependency:get` when absent.

    Not through `spark.jars.packages`: Ivy fails here on transitive jars Spark already ships.
    """
    repository = repository or maven_repository()
    version = version or delta_version()
    jars = tuple(_jar_path(repository, artifact, version) for artifact in DELTA_ARTIFACTS)
    missing = [
        (artifact, jar)
        for artifact, jar in zip(DELTA_ARTIFACTS, jars, strict=True)
        if not jar.is_file()
    ]
    if not missing:
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EngineUnavailable(
            f"The Spark engine needs the Delta Lake jars {', '.join(str(j) for _, j in missing)} "
            "and Maven (mvn) is not installed to download them: install Maven 3 (needed once), "
            "or run with --engine memory."
        )
    for artifact, jar in missing:
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={repository}",
            "dependency:get", f"-Dartifact={artifact}:{version}", "-Dtransitive=false",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=MAVEN_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EngineUnavailable(
                f"Maven could not download {artifact}:{version} ({error}): check the network "
                "access to Maven Central, or run with --engine memory."
            ) from None
        if done.returncode != 0 or not jar.is_file():
            output = (done.stdout + done.stderr).strip().splitlines()
            last = output[-1] if output else f"exit {done.returncode}"
            raise EngineUnavailable(
                f"Maven could not download {artifact}:{version} into {repository} ({last}): "
                "check the network access to Maven Central, or run with --engine memory."
            )
    return jars


def session_conf(settings: SessionSettings, jars: tuple[Path, ...] = ()) -> dict[str, str]:
    """The configuration of a session this factory starts (static and runtime settings), with
    the Delta jars (`delta_jars()`) it loads."""
    java_options = ["-XX:+UseParallelGC", "-XX:ReservedCodeCacheSize=128m", "-Xss4m"]
    if settings.master_url.startswith("local"):
        # Local mode: the driver runs the tasks, and a batch is over before C2-compiled code
        # pays back its compile time on 2 cores. C1 only, measured on the real dataset
        # (finops batch --engine spark, interleaved fresh processes, same tree): 107 s and 110 s
        # with tiered C2, 86 s and 79 s with C1 only. Executors on a cluster keep C2.
        java_options.append("-XX:TieredStopAtLevel=1")
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
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        # Delta keeps every table's log and snapshot it opened (up to 10,000, for 60 minutes) on
        # the driver heap: a long-lived session over many lakes (the test run, a notebook)
        # filled a 640 MB heap and spent 1,580 s in full GCs. A lake has ~25 tables.
        "spark.databricks.delta.delta.log.cacheSize": "32",
        "spark.databricks.delta.delta.log.cacheRetentionMinutes": "10",
        **conf_log,
        **RUNTIME_CONF,
    }
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
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
        jars = delta_jars()
        # Python workers (the rare-line JSON fallback) must import this project: our interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark's import-time pandas version warning
            from pyspark import SparkConf, SparkContext
            from pyspark.sql import SparkSession

            conf = SparkConf().setMaster(self.settings.master_url)
            conf.setAppName(self.settings.app_name)
            conf.setAll(list(session_conf(self.settings, jars).items()))
            try:
                # A process's first session launches the driver JVM (later ones reuse it: pyspark
                # keeps its gateway); without `verbose` this factory launches it, its stderr
                # filtered, and the builder then takes that context.
                if SparkContext._gateway is None and not self.settings.verbose:
                    SparkContext(conf=conf, gateway=_quiet_gateway(conf))
                session = SparkSession.builder.config(conf=conf).getOrCreate()
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
    """Settings the engine relies on, applied to any session it uses (owned or borrowed); a
    session without Delta's extension and catalog cannot read or write the lake: refused."""
    extensions = session.conf.get("spark.sql.extensions", "") or ""
    catalog = session.conf.get("spark.sql.catalog.spark_catalog", "") or ""
    if DELTA_EXTENSION not in extensions.split(",") or catalog != DELTA_CATALOG:
        raise EngineUnavailable(
            "The Spark session in use was started without Delta Lake, which every lake table "
            f"needs: start it with spark.jars (adapters.spark.session.delta_jars()), "
            f"spark.sql.extensions={DELTA_EXTENSION} and "
            f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}, or let finops start its own."
        )
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
