"""The JVMs the workbook starts: their jars and their options.

Jars: the Maven-resolved cache, one folder (a classpath) per module of `jvm/pom.xml`. `make setup`
fills it once; afterwards Spark and the services start offline from explicit jars.
Options: `options()` builds every JVM's heap, garbage collector, compiler and logging flags from
the table `JVMS`, so a service module only adds its own system properties.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_helpers.runtime.settings import Settings

MODULES = ("spark", "kafka", "s3proxy", "metastore")
POM = Path(__file__).resolve().parent / "jvm" / "pom.xml"
_VERSION = re.compile(r"-\d[\w.+-]*\.jar$")


class JarCacheError(RuntimeError):
    """The jar cache is missing or incomplete: `module` names the module, `folder` where its jars
    belong, `fix` what to do."""

    def __init__(self, module: str, folder: Path):
        self.module, self.folder = module, folder
        self.fix = f"Resolve them once with `make setup` (runs Maven on {POM.relative_to(POM.parents[3])})."
        super().__init__(f"No jars for '{module}' in {folder}. {self.fix}")


def module_dir(settings: Settings, module: str) -> Path:
    if module not in MODULES:
        raise ValueError(f"unknown jar module {module!r}; one of {MODULES}")
    return settings.jars_dir / module


def jars(settings: Settings, module: str) -> list[Path]:
    folder = module_dir(settings, module)
    found = sorted(folder.glob("*.jar"))
    if not found:
        raise JarCacheError(module, folder)
    return found


def classpath(settings: Settings, module: str) -> str:
    return str(module_dir(settings, module) / "*") if jars(settings, module) else ""


def artifact_name(jar: Path) -> str:
    """The jar's name without its version: two versions of one artifact share it."""
    return _VERSION.sub("", jar.name)


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def spark_jars(settings: Settings) -> list[Path]:
    """Extra jars for Spark, minus any artifact pyspark already ships (another version of
    scala-library or jackson on the classpath would break the driver)."""
    shipped = {artifact_name(j) for j in pyspark_jars_dir().glob("*.jar")}
    return [j for j in jars(settings, "spark") if artifact_name(j) not in shipped]


def cache_size_bytes(settings: Settings) -> int:
    return sum(p.stat().st_size for p in settings.jars_dir.rglob("*.jar"))


# Spark drivers log through this file, into `spark_log_file` (see the file's own comments).
LOG4J2 = Path(__file__).resolve().parent / "log4j2.properties"


def spark_log_file(settings: Settings) -> Path:
    """Where the Spark driver logs (warnings and errors): a file, never the notebook."""
    return (settings.state_dir / "logs" / "spark-driver.log").resolve()


@dataclass(frozen=True)
class JvmSpec:
    """How one JVM is sized, compiled and logged. Maximum heap: `heap`, a fixed size, or
    `heap_setting`, the Settings field users tune it with."""

    heap: str = ""
    heap_setting: str = ""
    initial_heap: str = ""
    # spark-submit turns spark.driver.memory into -Xmx and refuses -Xmx among the driver's options.
    heap_from_launcher: bool = False
    # One GC thread: small heaps on a 2-core laptop gain nothing from parallel collection.
    serial_gc: bool = True
    # C1 only: starts sooner and spends less CPU compiling; right for JVMs that mostly wait on
    # sockets or exit within seconds, and for Spark on the workbook's small batches.
    quick_start: bool = True
    # The Settings field that decides quick_start instead ("quick" or "full"): the Spark Connect
    # server's optimizing compiler halves a million-row stage but costs CPU on small ones.
    jit_setting: str = ""
    code_cache: str = ""  # -XX:ReservedCodeCacheSize; empty keeps the JVM's default
    # System properties for logging; "{base}" is the service's state folder, "{log4j2}" and
    # "{spark_log}" the Spark driver's config and log file.
    logging: Mapping[str, str] = field(default_factory=dict)


_SPARK_LOGGING = {"log4j2.configurationFile": "{log4j2}", "lakehouse.log.file": "{spark_log}"}

JVMS: dict[str, JvmSpec] = {
    # Kafka logs through the log4j2.properties services.kafka.prepare writes into its folder.
    "kafka": JvmSpec(heap_setting="service_heap", initial_heap="64m",
                     logging={"log4j2.configurationFile": "log4j2.properties"}),
    "s3proxy": JvmSpec(heap_setting="service_heap", initial_heap="64m", logging={"LOG_LEVEL": "warn"}),
    # Derby serves a catalog of a few hundred rows: a fixed 256m is ample, nothing to tune.
    "metastore": JvmSpec(heap="256m", initial_heap="32m", logging={"derby.stream.error.file": "{base}/derby.log"}),
    # spark-submit's launcher: prints the Spark Connect server's command line, then exits.
    "spark-launcher": JvmSpec(heap="128m"),
    # Spark drivers: the heap is settings.spark_driver_memory, handed over as spark.driver.memory.
    "spark-connect": JvmSpec(heap_setting="spark_driver_memory", heap_from_launcher=True, serial_gc=False,
                             jit_setting="spark_server_jit", code_cache="160m", logging=_SPARK_LOGGING),
    "spark-classic": JvmSpec(heap_setting="spark_driver_memory", heap_from_launcher=True, serial_gc=False,
                             code_cache="160m", logging=_SPARK_LOGGING),
}


def max_heap(settings: Settings, name: str) -> str:
    spec = JVMS[name]
    return getattr(settings, spec.heap_setting) if spec.heap_setting else spec.heap


def options(
    settings: Settings, name: str, base: Path | None = None, properties: Mapping[str, object] | None = None,
) -> list[str]:
    """The options of the JVM `name` (a key of JVMS): heap, GC, compiler, then `properties` (the
    JVM's own configuration) and its logging as -D flags, in that order."""
    spec = JVMS[name]
    out = [] if spec.heap_from_launcher else [f"-Xmx{max_heap(settings, name)}"]
    out += [f"-Xms{spec.initial_heap}"] if spec.initial_heap else []
    out += ["-XX:+UseSerialGC"] if spec.serial_gc else []
    quick = getattr(settings, spec.jit_setting) == "quick" if spec.jit_setting else spec.quick_start
    out += ["-XX:TieredStopAtLevel=1"] if quick else []
    out += [f"-XX:ReservedCodeCacheSize={spec.code_cache}"] if spec.code_cache else []
    values = {"base": base, "log4j2": LOG4J2, "spark_log": spark_log_file(settings)}
    logging = {key: value.format(**values) for key, value in spec.logging.items()}
    return out + [f"-D{key}={value}" for key, value in {**(properties or {}), **logging}.items()]
