"""One warm Spark for the whole workbook: a Spark Connect server, started from the venv's pyspark.

Notebooks, tests and helpers attach to it as thin clients (`get_spark` in connect mode), the way
Databricks serverless notebooks and Databricks Connect do, so the JVM start-up and warm-up are
paid once, not in every kernel. It carries the whole configuration `spark_conf.spark_conf` builds
(Delta, the Kafka source, s3a, the metastore, OpenLineage). Clients need the token generated into
the state folder's secrets, so no other local user can run code through it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.services import pydaemon
from lakehouse_helpers.runtime.services._hints import require_port
from lakehouse_helpers.runtime.services._process import ServiceError
from lakehouse_helpers.runtime.services.spark_conf import prune_scratch, scratch_dir, spark_conf
from lakehouse_helpers.runtime.settings import Settings

NAME = "spark"
TITLE = "Spark Connect server"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# current_user() as the client names it: one server serves the owner and a second reader.
CLIENT_USER = Path(__file__).resolve().parent.parent / "jvm" / "connect_user" / "ClientUserInterceptor.java"
CLIENT_USER_CLASS = "lakehouse.connect.ClientUserInterceptor"
REDACT = "s/token=[^;[:space:]]*/token=***/g"
log = logging.getLogger(__name__)


def endpoint(settings: Settings) -> str:
    # "localhost": the client then sends the token over a local channel without TLS.
    return f"sc://localhost:{settings.spark_connect_port}"


def ui_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.spark_ui_port}"


def bind(settings: Settings) -> tuple[str, int]:
    return "127.0.0.1", settings.spark_connect_port


def client_user_jar(base: Path) -> Path | None:
    """The interceptor that makes current_user() the client's user_id, compiled into `base`
    once (again when its source changes); None, with a warning, where no Java compiler is
    installed: then a second reader needs a second Spark process (`access.query_as`)."""
    jar = base / "client-user.jar"
    if jar.exists() and jar.stat().st_mtime >= CLIENT_USER.stat().st_mtime:
        return jar
    if not (shutil.which("javac") and shutil.which("jar")):
        log.warning("javac not found (a JRE without the JDK): the Spark Connect server answers current_user() "
                    "with its own user, so 07 starts a second Spark for the analyst. Install a JDK 17 to avoid it.")
        return None
    classes = base / "client-user-classes"
    shutil.rmtree(classes, ignore_errors=True)
    for step in (["javac", "-nowarn", "--release", "17", "-d", str(classes), "-cp", f"{_spark_home() / 'jars'}/*",
                  str(CLIENT_USER)], ["jar", "cf", str(jar), "-C", str(classes), "."]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:  # pyspark's jars changed under the source: a bug to report, not to hide
            raise ServiceError(f"Building {CLIENT_USER.name} failed: {done.stderr.strip()[-800:]}", service=NAME,
                               fix="Report it with the message above; `pip show pyspark` names the version.")
    shutil.rmtree(classes, ignore_errors=True)
    return jar


def server_conf(settings: Settings, client_user: Path | None = None) -> dict[str, str]:
    conf = spark_conf(settings, "lakehouse-workbook (Spark Connect)", scratch_dir(settings, "connect"), long_lived=True)
    conf.update({
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(settings.spark_connect_port),
        "spark.connect.authenticate.token": settings.spark_connect_token.reveal(),
        # The UI shows the jobs of every notebook in one place.
        "spark.ui.enabled": "true",
        "spark.ui.port": str(settings.spark_ui_port),
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
    })
    if client_user is not None:
        conf["spark.jars"] = ",".join(filter(None, [conf.get("spark.jars"), str(client_user)]))
        conf["spark.connect.grpc.interceptor.classes"] = CLIENT_USER_CLASS
    return conf


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def prepare(settings: Settings, base: Path) -> None:
    if not settings.spark_connect_token:
        raise ServiceError("No Spark Connect token was generated.", service=NAME, fix="Run `make services-up`.")
    conf = base / "spark-defaults.conf"
    # The token and the S3 keys live in a 0600 file, not on the command line where `ps` shows them.
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{k} {v}\n" for k, v in server_conf(settings, client_user_jar(base)).items()))
    # The previous server has stopped: whatever it left (killed mid-write) goes, and so does
    # what classic Spark processes that no longer run left behind.
    prune_scratch(settings)
    scratch = scratch_dir(settings, "connect")
    for entry in scratch.parent.glob("*"):
        if not entry.name.startswith("classic-"):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
    scratch.mkdir(parents=True)
    if settings.lineage:
        from lakehouse_helpers.runtime.layout import lineage_events
        from lakehouse_helpers.runtime.lineage_log import compact

        lineage_events(settings).parent.mkdir(parents=True, exist_ok=True)
        # No server writes the events now: the last one's are folded into the compacted file.
        compact(lineage_events(settings))


def command(settings: Settings, base: Path, marker: str) -> list[str]:
    """The java command spark-submit would run (its launcher adds the JVM module options)."""
    home = _spark_home()
    launcher = [
        "java", *jvm.options(settings, "spark-launcher"), "-cp", f"{home / 'jars'}/*", "org.apache.spark.launcher.Main",
        "org.apache.spark.deploy.SparkSubmit", "--properties-file", str(base / "spark-defaults.conf"),
        "--class", SERVER_CLASS, "--name", "lakehouse-workbook", "spark-internal",
    ]
    env = {**os.environ, **environment(settings)}
    out = subprocess.run(launcher, env=env, capture_output=True, check=True)
    cmd = [p for p in (part.decode().strip() for part in out.stdout.split(b"\0")) if p]
    java = [cmd[0], marker, *cmd[1:]]
    # pyspark's foreachBatch worker prints its connection URL, token included: never into the log.
    return ["sh", "-c", f'"$@" 2>&1 | sed -u -e "{REDACT}"', "spark-connect", *java]


def environment(settings: Settings) -> dict[str, str]:
    # pip's pyspark has no RELEASE file, from which the launcher would read the Scala version.
    # Python workers (foreachBatch, the Auto Loader source, UDFs) run the venv's interpreter.
    # PYTHONPATH: the server's Python daemons exit when idle (pydaemon.py says why).
    return {"SPARK_HOME": str(_spark_home()), "SPARK_SCALA_VERSION": "2.13", "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONPATH": str(pydaemon.SITE)}


def check(settings: Settings) -> str:
    if not settings.uses_connect:
        return f"not used (spark_mode={settings.spark_mode}, profile={settings.profile})"
    if settings.spark_remote:
        return f"a server of your own at {settings.spark_remote}"
    host, port = bind(settings)
    require_port(settings, NAME, "The Spark Connect server", (host, port), "SPARK_CONNECT_PORT")
    return f"listening on {host}:{port}, Spark UI {ui_url(settings)}"


def after_start(settings: Settings) -> None:
    return None
