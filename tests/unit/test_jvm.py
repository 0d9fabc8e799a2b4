"""The jar cache and the Spark configuration built from it (no JVM started). Settings come from
the defaults alone: neither the user's environment nor their `.env` changes what is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse_helpers.runtime import jvm
from lakehouse_helpers.runtime.settings import load_settings


def test_artifact_name_drops_only_the_version():
    assert jvm.artifact_name(Path("delta-spark_4.2_2.13-4.4.1.jar")) == "delta-spark_4.2_2.13"
    assert jvm.artifact_name(Path("hadoop-aws-3.5.0.jar")) == "hadoop-aws"


def test_missing_cache_says_make_setup(tmp_path):
    s = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    with pytest.raises(jvm.JarCacheError, match="make setup") as info:
        jvm.jars(s, "kafka")
    err = info.value
    assert (err.module, err.folder) == ("kafka", tmp_path / "jars" / "kafka")
    assert "`make setup`" in err.fix and "lakehouse_helpers/runtime/jvm/pom.xml" in err.fix
    assert str(err).endswith(err.fix)


def test_the_doctor_keeps_the_jar_cache_fix(tmp_path):
    from lakehouse_helpers.doctor import check_jars

    s = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    checks = check_jars(s)
    assert [c.name for c in checks] == [f"jars {m}" for m in jvm.MODULES]
    for check, module in zip(checks, jvm.MODULES, strict=True):
        assert not check.ok and check.detail == f"missing in {tmp_path / 'jars' / module}"
        assert check.fix.startswith(
            "Resolve them once with `make setup` (runs Maven on lakehouse_helpers/runtime/jvm/pom.xml)")


# The JVM options of every JVM the workbook starts, pinned: a change here changes how a service
# starts (memory on a laptop, start-up time on 2 cores), so it must be a deliberate one.
