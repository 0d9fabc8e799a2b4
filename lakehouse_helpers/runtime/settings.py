"""One frozen settings object for the whole workbook.

Precedence, lowest first: defaults < `.env` file < process environment < a Databricks job's
parameters (widgets, databricks profile only) < explicit overrides (notebook parameters). Secrets
come only from the environment (or the ignored state folder for the keys the embedded S3 server
generates); they are `Secret` values whose repr is masked and cannot be passed as overrides, so
they never end up in a papermill parameter cell.
"""

from __future__ import annotations

import dataclasses
import os
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Set by the notebook runner for the kernels it starts: progress is drawn as text, not as a widget.
HEADLESS_ENV = "LAKEHOUSE_HEADLESS"

PROFILES = ("local", "external", "databricks")
CATALOG_IMPLS = ("hive", "unity", "databricks")

# Setting name -> environment variable. Common names where a tool already defines one.
ENV_VARS: dict[str, str] = {
    "profile": "LAKEHOUSE_PROFILE",
    "state_dir": "LAKEHOUSE_STATE_DIR",
    "data_dir_override": "LAKEHOUSE_DATA_DIR",
    "kafka_bootstrap": "KAFKA_BOOTSTRAP_SERVERS",
    "kafka_topic": "KAFKA_TOPIC",
    "kafka_controller_port": "KAFKA_CONTROLLER_PORT",
    "s3_endpoint": "S3_ENDPOINT_URL",
    "s3_bucket": "S3_BUCKET",
    "s3_region": "AWS_REGION",
    "metastore_port": "METASTORE_PORT",
    "catalog_impl": "LAKEHOUSE_CATALOG_IMPL",
    "catalog": "LAKEHOUSE_CATALOG",
    "schema_prefix": "LAKEHOUSE_SCHEMA_PREFIX",
    "uc_url": "UC_URL",
    "databricks_host": "DATABRICKS_HOST",
    "spark_master": "SPARK_MASTER",
    "spark_driver_memory": "SPARK_DRIVER_MEMORY",
    "spark_shuffle_partitions": "SPARK_SHUFFLE_PARTITIONS",
    "spark_ui": "SPARK_UI",
    "spark_log_level": "SPARK_LOG_LEVEL",
    "spark_server_jit": "SPARK_SERVER_JIT",
    "service_heap": "LAKEHOUSE_SERVICE_HEAP",
    "service_timeout_s": "LAKEHOUSE_SERVICE_TIMEOUT",
    "connect_timeout_s": "LAKEHOUSE_CONNECT_TIMEOUT",
    "lineage": "LAKEHOUSE_LINEAGE",
    "spark_mode": "LAKEHOUSE_SPARK_MODE",
    "spark_connect_port": "SPARK_CONNECT_PORT",
    "spark_ui_port": "SPARK_UI_PORT",
    "spark_remote": "SPARK_REMOTE",
}
SECRET_ENV_VARS: dict[str, str] = {
    "s3_access_key": "AWS_ACCESS_KEY_ID",
    "s3_secret_key": "AWS_SECRET_ACCESS_KEY",
    "uc_token": "UC_TOKEN",
    "databricks_token": "DATABRICKS_TOKEN",
    "spark_connect_token": "SPARK_CONNECT_AUTHENTICATE_TOKEN",
}
LOCAL_S3_KEYS_FILE = "secrets/s3.env"
LOCAL_CONNECT_TOKEN_FILE = "secrets/spark_connect.env"
SPARK_MODES = ("connect", "classic")
# quick: the Spark Connect server compiles with C1 only, about a quarter less CPU for the workbook's
# small batches (the test suite's Spark tier: 136 against 186 CPU-seconds, same wall time);
# full: C1 then C2, which halves a million-row stage once warm.
SPARK_SERVER_JITS = ("quick", "full")
CHOICES = {"profile": PROFILES, "catalog_impl": CATALOG_IMPLS, "spark_mode": SPARK_MODES,
           "spark_server_jit": SPARK_SERVER_JITS}


class SettingsError(ValueError):
    """A setting is missing or has a value the workbook cannot use."""


class Secret:
    """A string that does not show itself in repr, str, logs or notebook outputs."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or ""

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    profile: str = "local"
    state_dir: Path = field(default_factory=lambda: _repo_root() / ".lakehouse")
    # Tables, checkpoints and manifests; default <state_dir>/data. Tests point each run at
    # a fresh folder while sharing the services (and their keys) of one state folder.
    data_dir_override: Path | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "coffee.orders"
    kafka_controller_port: int = 9093
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_bucket: str = "lakehouse"
    s3_region: str = "us-east-1"
    metastore_port: int = 1527
    # hive: Spark's metastore (embedded Derby server), unity: a Unity Catalog server at uc_url,
    # databricks: the workspace's Unity Catalog.
    catalog_impl: str = "hive"
    # Catalog part of three-level names. Spark's metastore is always `spark_catalog`.
    catalog: str = "lakehouse"
    # Prepended to schema names (bronze, silver, ...): one catalog can hold several workbooks.
    schema_prefix: str = ""
    uc_url: str = ""
    databricks_host: str = ""
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_shuffle_partitions: int = 4
    spark_ui: bool = False
    spark_log_level: str = "WARN"
    spark_server_jit: str = "quick"  # SPARK_SERVER_JITS; `full` for a million events and more
    service_heap: str = "384m"
    service_timeout_s: float = 90.0
    connect_timeout_s: float = 3.0
    # OpenLineage's Spark listener records what every Spark job read and wrote (07 draws it).
    lineage: bool = True
    # connect: notebooks attach to one warm Spark Connect server (an embedded service);
    # classic: Spark runs inside each Python process.
    spark_mode: str = "connect"
    spark_connect_port: int = 15002
    spark_ui_port: int = 4040
    # sc://host:port of an existing Spark Connect server (a cluster's): no local Spark starts.
    spark_remote: str = ""
    s3_access_key: Secret = field(default_factory=lambda: Secret(""), repr=False)
    s3_secret_key: Secret = field(default_factory=lambda: Secret(""), repr=False)
    uc_token: Secret = field(default_factory=lambda: Secret(""), repr=False)
    databricks_token: Secret = field(default_factory=lambda: Secret(""), repr=False)
    spark_connect_token: Secret = field(default_factory=lambda: Secret(""), repr=False)

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise SettingsError(f"{name}={value!r} is not one of {', '.join(allowed)}; "
                                    f"set {ENV_VARS[name]} to one of them.")
        if self.catalog_impl == "unity" and not self.uc_url:
            raise SettingsError("catalog_impl='unity' needs a Unity Catalog server: set UC_URL.")

    # Derived values: computed, never parameters.
    @property
    def embedded(self) -> bool:
        """True when the project starts Kafka, S3 and the metastore itself."""
        return self.profile == "local"

    @property
    def uses_connect(self) -> bool:
        """Spark through Spark Connect: the embedded server (local profile) or `spark_remote`.
        The external profile without `spark_remote` runs Spark in-process, as nothing embedded starts."""
        return self.spark_mode == "connect" and (self.embedded or bool(self.spark_remote))

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def s3_port(self) -> int:
        from urllib.parse import urlparse

        parsed = urlparse(self.s3_endpoint)
        return parsed.port or (443 if parsed.scheme == "https" else 80)

    @property
    def spark_catalog_name(self) -> str:
        """The catalog in three-level names: the metastore is `spark_catalog` in Spark."""
        return "spark_catalog" if self.catalog_impl == "hive" else self.catalog

    def schema(self, schema: str) -> str:
        """Two-level schema name, e.g. `lakehouse.bronze`."""
        return f"{self.spark_catalog_name}.{self.schema_prefix}{schema}"

    def table(self, schema: str, name: str) -> str:
        """Three-level table name, e.g. `lakehouse.bronze.orders`."""
        return f"{self.schema(schema)}.{name}"

    def s3_url(self, *parts: str, scheme: str = "s3a") -> str:
        path = "/".join(p.strip("/") for p in parts if p)
        return f"{scheme}://{self.s3_bucket}/{path}" if path else f"{scheme}://{self.s3_bucket}"

    @property
    def jars_dir(self) -> Path:
        return self.state_dir / "jars"

    @property
    def services_dir(self) -> Path:
        return self.state_dir / "services"

    @property
    def warehouse_dir(self) -> Path:
        return self.state_dir / "warehouse"

    @property
    def data_dir(self) -> Path:
        return self.data_dir_override or self.state_dir / "data"

    def replace(self, **overrides: Any) -> Settings:
        return load_settings(base=self, **overrides)


def _read_dotenv(path: Path) -> dict[str, str]:
    """Minimal KEY=VALUE reader (comments, blank lines, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _coerce(name: str, raw: Any) -> Any:
    target = {f.name: f for f in dataclasses.fields(Settings)}[name].type
    if isinstance(raw, str):
        try:
            if target in ("int", int):
                return int(raw)
            if target in ("float", float):
                return float(raw)
            if target in ("bool", bool):
                if raw.strip().lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.strip().lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(raw)
            if target in ("Path", Path, "Path | None"):
                return Path(raw).expanduser()
        except ValueError:
            raise SettingsError(
                f"{name}={raw!r} is not a valid {target} (environment variable {ENV_VARS.get(name)})"
            ) from None
    if name in ("state_dir", "data_dir_override") and raw is not None:
        return Path(raw).expanduser()
    return raw


def _generated(path: Path, create: bool, make) -> dict[str, str] | None:
    """A secrets file (KEY=VALUE, owner-only) generated once by `make()` into the state folder."""
    if not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in make().items()))
    return _read_dotenv(path)


def local_s3_keys(state_dir: Path, create: bool = False) -> tuple[str, str] | None:
    """The embedded S3 server's keys, generated once into the ignored state folder."""
    values = _generated(state_dir / LOCAL_S3_KEYS_FILE, create, lambda: {
        "AWS_ACCESS_KEY_ID": "LW" + _secrets.token_hex(9).upper(),
        "AWS_SECRET_ACCESS_KEY": _secrets.token_urlsafe(30),
    })
    return (values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]) if values else None


def load_settings(
    base: Settings | None = None,
    env: Mapping[str, str] | None = None,
    dotenv: Path | None = None,
    widgets: Any = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < `.env` < environment < job widgets < `overrides`.

    Job widgets count in the databricks profile only: the job's settings parameters
    (`widgets.SETTING_PARAMETERS`: landing_bucket, aws_region, catalog, schema_prefix) read from
    `widgets` (a `dbutils.widgets`; by default the running notebook's), so a run's parameters beat
    the environment its cluster was created with. A widget that is not defined changes nothing.
    `overrides` are for notebook parameters and tests; secrets are refused there.
    """
    secret_names = set(SECRET_ENV_VARS)
    bad = secret_names.intersection(overrides)
    if bad:
        raise SettingsError(
            f"{', '.join(sorted(bad))} can only come from the environment "
            f"({', '.join(SECRET_ENV_VARS[b] for b in sorted(bad))}) or .env, never as a parameter."
        )
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")

    if base is not None:
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(Settings)}
        values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})
        return Settings(**_with_local_keys(values))

    environ = dict(os.environ if env is None else env)
    source = _read_dotenv(dotenv if dotenv is not None else _repo_root() / ".env")
    source.update(environ)

    values: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        if source.get(var, "") != "":
            values[name] = _coerce(name, source[var])
    if "profile" not in values and source.get("DATABRICKS_RUNTIME_VERSION"):
        # Every Databricks cluster says what it is (a job's, an existing one, serverless), so a
        # notebook run there needs no LAKEHOUSE_PROFILE from the cluster's configuration.
        values["profile"] = "databricks"
    values.update(_job_settings(overrides.get("profile") or values.get("profile", Settings.profile), widgets))
    values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})

    profile = values.get("profile", Settings.profile)
    state_dir = values.get("state_dir") or _repo_root() / ".lakehouse"
    if profile == "databricks":
        values.setdefault("catalog_impl", "databricks")
    elif source.get("UC_URL") and "catalog_impl" not in values:
        values["catalog_impl"] = "unity"

    for name, var in SECRET_ENV_VARS.items():
        values[name] = Secret(source.get(var, ""))
    values["state_dir"] = Path(state_dir)
    return Settings(**_with_local_keys(values))


def _job_settings(profile: str, widgets: Any) -> dict[str, Any]:
    """The settings a Databricks job's parameters set, in the databricks profile only."""
    if profile != "databricks":
        return {}
    from lakehouse_helpers.runtime.widgets import runtime_widgets, setting_widgets

    found = setting_widgets(widgets if widgets is not None else runtime_widgets())
    return {name: _coerce(name, value) for name, value in found.items()}


def local_connect_token(state_dir: Path, create: bool = False) -> str | None:
    """The embedded Spark Connect server's token, generated once into the ignored state folder."""
    values = _generated(state_dir / LOCAL_CONNECT_TOKEN_FILE, create,
                        lambda: {"SPARK_CONNECT_AUTHENTICATE_TOKEN": _secrets.token_urlsafe(32)})
    return values["SPARK_CONNECT_AUTHENTICATE_TOKEN"] if values else None


def _with_local_keys(values: dict[str, Any]) -> dict[str, Any]:
    if not values.get("spark_remote") and values.get("profile", Settings.profile) == "local":
        # The embedded Spark Connect server accepts only its own generated token.
        values["spark_connect_token"] = Secret(local_connect_token(Path(values["state_dir"])) or "")
    if values.get("profile", Settings.profile) == "local":
        # The embedded server only knows its own generated keys, whatever AWS keys are set.
        keys = local_s3_keys(Path(values["state_dir"]))
        values["s3_access_key"] = Secret(keys[0] if keys else "")
        values["s3_secret_key"] = Secret(keys[1] if keys else "")
    return values
