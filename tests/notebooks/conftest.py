"""The notebook tier's shared run: the whole workbook executed once per test session, at the
default parameters (those the committed notebooks' checked outputs were recorded at), in its own
data folder, topic, bucket and schemas on the test stack. Every notebook test that reads a
first run shares it; tests that change its state (a re-run, a new batch) come last in their
module, and each says what it adds."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse_helpers.notebook.runner import NotebookResult, run_notebooks
from lakehouse_helpers.runtime import storage
from lakehouse_helpers.runtime.settings import Settings


def set_environ(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """The kernels inherit this process's environment: point it at one run (undone after)."""
    for name, value in values.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


def isolated_run(stack: Settings, test_env: dict, folder: Path) -> tuple[Settings, dict[str, str]]:
    """Settings and environment for one run: its own data folder, topic, bucket and schemas."""
    run = uuid.uuid4().hex[:8]
    env = {
        **test_env,
        "LAKEHOUSE_DATA_DIR": str(folder / "data"),
        "KAFKA_TOPIC": f"nb.{run}.orders",
        "S3_BUCKET": f"nb-{run}",
        "LAKEHOUSE_SCHEMA_PREFIX": f"nb{run}_",  # its own schemas in the shared metastore
    }
    settings = stack.replace(
        data_dir_override=env["LAKEHOUSE_DATA_DIR"], kafka_topic=env["KAFKA_TOPIC"],
        s3_bucket=env["S3_BUCKET"], schema_prefix=env["LAKEHOUSE_SCHEMA_PREFIX"],
    )
    storage.ensure_bucket(settings)
    return settings, env


@dataclass
class Workbook:
    settings: Settings
    env: dict[str, str]
    folder: Path
    out_dir: Path
    results: list[NotebookResult]

    @property
    def figures(self) -> dict[str, dict]:
        """Each notebook's recorded figures, by its two-digit number."""
        return {r.notebook[:2]: r.figures for r in self.results}

    def run(self, parameters: dict, only: list[str], name: str, **overrides) -> list[NotebookResult]:
        """Run some notebooks again on this workbook's state (with settings overrides, such as
        spark_mode), into a folder of their own."""
        settings = self.settings.replace(**overrides) if overrides else self.settings
        with pytest.MonkeyPatch.context() as monkeypatch:
            extra = {"LAKEHOUSE_SPARK_MODE": overrides["spark_mode"]} if "spark_mode" in overrides else {}
            set_environ(monkeypatch, {**self.env, **extra})
            _, results = run_notebooks(settings, parameters, only=only, out_dir=self.folder / name)
        return results


@pytest.fixture(scope="session")
def workbook(stack, test_env, tmp_path_factory) -> Workbook:
    """Every notebook, 00 to 07, at its default parameters: the suite's one first run."""
    folder = tmp_path_factory.mktemp("workbook")
    settings, env = isolated_run(stack, test_env, folder)
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_environ(monkeypatch, env)
        out_dir, results = run_notebooks(settings, {}, out_dir=folder / "run1")
    return Workbook(settings, env, folder, out_dir, results)
