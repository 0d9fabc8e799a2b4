"""A Databricks job's parameters reach the notebooks: as widgets, typed like the defaults.

No Databricks runtime runs here, so `DatabricksRuntimeWidgets` (a stand-in for the runtime's
`dbutils.widgets`, named as such) holds the values a job run would pass. Like current runtimes
it answers `getAll()` with every defined widget; `LegacyRuntimeWidgets` has no `getAll()` and,
like older runtimes, raises InputWidgetNotDefined for a widget nobody defined.
"""

from __future__ import annotations

import ast
import json
import types

import pytest

from lakehouse_helpers.deploy.plan import JOB_NOTEBOOKS, job_parameters
from lakehouse_helpers.notebook.params import NOTEBOOKS_DIR, notebook_parameters, parameters_source
from lakehouse_helpers.runtime.jobparams import (
    SETTING_PARAMETERS,
    JobParameterError,
    read_job_parameters,
    runtime_widgets,
)
from lakehouse_helpers.runtime.settings import load_settings

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
CALL = "globals().update(read_job_parameters(settings, globals()))"


class InputWidgetNotDefined(Exception):
    """Named like the runtime's error for a widget nobody defined."""


class LegacyRuntimeWidgets:
    """Stand-in for an older runtime's `dbutils.widgets`: string values, asked one by one."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.asked: list[str] = []

    def get(self, name: str) -> str:
        self.asked.append(name)
        if name not in self.values:
            raise InputWidgetNotDefined(f"No input widget named {name} is defined")
        return self.values[name]


class DatabricksRuntimeWidgets(LegacyRuntimeWidgets):
    """Stand-in for a current runtime's `dbutils.widgets`: also `getAll()`, every defined widget."""

    def getAll(self) -> dict[str, str]:  # noqa: N802 - the runtime's name
        self.asked.append("*")
        return dict(self.values)


def stand_in_dbutils(values: dict[str, str], widgets=DatabricksRuntimeWidgets):
    return types.SimpleNamespace(widgets=widgets(values))


@pytest.fixture
def databricks(tmp_path):
    return load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_STATE_DIR": str(tmp_path)},
                         dotenv=tmp_path / "none")


@pytest.fixture
def local(tmp_path):
    return load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")


def after_parameters_cell(path) -> dict:
    """The notebook's namespace right after its parameters cell (the cell holds only literals)."""
    namespace: dict = {}
    exec(parameters_source(json.loads(path.read_text())), namespace)  # noqa: S102 - literals only
    namespace.pop("__builtins__")
    # What else the first code cell has by then: modules, functions, settings, IPython's history.
    namespace.update(json=json, record=print, _i1="import json", In=[""], catalog=types.ModuleType("catalog"))
    return namespace


def other_value(default):
    """A value unlike the default, as the string a job parameter holds, and typed."""
    if isinstance(default, bool):
        return str(not default).lower(), not default
    if isinstance(default, int | float):
        return repr(default + 3), default + 3
    return default + " OR 1 = 1", default + " OR 1 = 1"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_declared_parameter_takes_its_widget_typed_like_its_default(path, databricks):
    namespace = after_parameters_cell(path)
    names = [p["name"] for p in notebook_parameters(path)]
    changed = {name: other_value(namespace[name]) for name in names}
    namespace["dbutils"] = stand_in_dbutils({n: raw for n, (raw, _) in changed.items()} | {"catalog": "main"})
    found = read_job_parameters(databricks, namespace)
    assert found == {n: typed for n, (_, typed) in changed.items()}
    assert all(type(found[n]) is type(namespace[n]) for n in names)


@pytest.mark.parametrize(("default", "raw", "expected"), [
    (200, "2e3", "an int"), (200, "many", "an int"), (1.0, "one hour", "a float"), (True, "yes", "a bool"),
])
def test_a_value_that_does_not_parse_is_refused_naming_parameter_value_and_type(databricks, default, raw, expected):
    namespace = {"drift_events": default, "dbutils": stand_in_dbutils({"drift_events": raw})}
    with pytest.raises(JobParameterError) as caught:
        read_job_parameters(databricks, namespace)
    message = str(caught.value)
    assert "drift_events" in message and repr(raw) in message and expected in message, message


@pytest.mark.parametrize("widgets", [DatabricksRuntimeWidgets, LegacyRuntimeWidgets])
def test_a_parameter_without_a_widget_keeps_its_default(databricks, widgets):
    dbutils = stand_in_dbutils({"drift_seed": "7"}, widgets)
    namespace = {"drift_events": 200, "drift_seed": 1042, "dbutils": dbutils}
    assert read_job_parameters(databricks, namespace) == {"drift_seed": 7}
    # A current runtime is asked once for every widget; only an older one is asked name by name.
    assert dbutils.widgets.asked == (["*"] if widgets is DatabricksRuntimeWidgets else ["drift_events", "drift_seed"])
    assert read_job_parameters(databricks, {"drift_events": 200, "dbutils": stand_in_dbutils({}, widgets)}) == {}
    assert read_job_parameters(databricks, {"drift_events": 200}) == {}  # no dbutils at all: a laptop


def test_an_unexpected_widget_error_is_raised_not_taken_for_a_missing_widget(databricks):
    class BrokenWidgets:
        def get(self, name):
            raise RuntimeError("the driver is gone")

    with pytest.raises(RuntimeError, match="driver is gone"):
        read_job_parameters(databricks,
            {"drift_events": 200, "dbutils": types.SimpleNamespace(widgets=BrokenWidgets())})


def test_outside_the_databricks_profile_nothing_changes_even_with_a_dbutils(local, tmp_path):
    dbutils = stand_in_dbutils({"drift_events": "5", "landing_bucket": "job-bucket", "catalog": "main"})
    assert read_job_parameters(local, {"drift_events": 200, "dbutils": dbutils}) == {}
    settings = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path), "S3_BUCKET": "env-bucket"},
                             dotenv=tmp_path / "none", widgets=dbutils.widgets)
    assert (settings.s3_bucket, settings.catalog) == ("env-bucket", "lakehouse")
    assert dbutils.widgets.asked == []


@pytest.mark.parametrize("kind", [DatabricksRuntimeWidgets, LegacyRuntimeWidgets])
def test_settings_parameters_beat_the_environment_and_overrides_beat_them(tmp_path, kind):
    env = {"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_STATE_DIR": str(tmp_path), "S3_BUCKET": "env-bucket",
           "AWS_REGION": "eu-west-1", "LAKEHOUSE_CATALOG": "env_catalog"}
    widgets = kind({"landing_bucket": "job-bucket", "catalog": "job_catalog", "schema_prefix": "t1_"})
    settings = load_settings(env=env, dotenv=tmp_path / "none", widgets=widgets)
    assert (settings.s3_bucket, settings.catalog, settings.schema_prefix) == ("job-bucket", "job_catalog", "t1_")
    assert settings.s3_region == "eu-west-1"  # no widget: the environment still counts
    assert settings.table("bronze", "orders") == "job_catalog.t1_bronze.orders"
    assert load_settings(env=env, dotenv=tmp_path / "none", widgets=widgets, catalog="explicit").catalog == "explicit"
    assert set(widgets.asked) == ({"*"} if kind is DatabricksRuntimeWidgets else set(SETTING_PARAMETERS))


def test_the_notebook_namespace_dbutils_is_the_one_used():
    dbutils = stand_in_dbutils({})
    assert runtime_widgets({"dbutils": dbutils}) is dbutils.widgets
    assert runtime_widgets({}) is None
    assert runtime_widgets() is None  # pytest runs no IPython shell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_reads_the_job_parameters_before_using_its_own(path):
    cells = json.loads(path.read_text())["cells"]
    (at,) = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    first = next(c for c in cells[at + 1:] if c["cell_type"] == "code")
    source = "".join(first["source"])
    assert CALL in source.splitlines(), f"{path.name}: its first code cell after parameters must run `{CALL}`"
    call_line = source.splitlines().index(CALL) + 1
    assert source.index("settings = load_settings()") < source.index(CALL)
    # Nothing before the call may use a parameter: it would see the default, not the job's value.
    names = {p["name"] for p in notebook_parameters(path)}
    used = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and n.lineno < call_line}
    assert not used & names, f"{path.name} uses {sorted(used & names)} before reading the job's parameters"


def test_every_job_parameter_the_deploy_defines_is_read_where_it_belongs(databricks, tmp_path):
    """A job run passes every job parameter to every task: each notebook takes exactly its own, and
    load_settings() the settings ones; the job's default strings give back the notebooks' defaults."""
    job = {p["name"]: p["default"] for p in job_parameters(databricks)}
    read = set()
    for stem in JOB_NOTEBOOKS:
        path = NOTEBOOKS_DIR / f"{stem}.ipynb"
        namespace = after_parameters_cell(path)
        namespace["dbutils"] = stand_in_dbutils(job)
        found = read_job_parameters(databricks, namespace)
        assert sorted(found) == sorted(p["name"] for p in notebook_parameters(path)), stem
        assert all(found[n] == namespace[n] and type(found[n]) is type(namespace[n]) for n in found), stem
        read |= set(found)
    settings = load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_STATE_DIR": str(tmp_path)},
                             dotenv=tmp_path / "none", widgets=DatabricksRuntimeWidgets(job))
    assert settings == databricks
    assert read | set(SETTING_PARAMETERS) == set(job)
