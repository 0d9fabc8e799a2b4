"""07's read without Spark, its plumbing: catalog locations as delta-rs opens them, the S3
connection as its options, the protocol's reader needs, and the `_delta_log` listed (on a table
delta-rs writes itself: no JVM)."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lakehouse_helpers.govern import open_format
from lakehouse_helpers.runtime.settings import load_settings


def test_locations_become_what_delta_rs_opens():
    assert open_format.table_uri("file:/w/warehouse/my%20gold.db/t") == "/w/warehouse/my gold.db/t"
    assert open_format.table_uri("/w/t") == "/w/t"
    assert open_format.table_uri("s3a://bucket/warehouse/t") == "s3://bucket/warehouse/t"
    assert open_format.table_uri("abfss://c@a.dfs.core.windows.net/t") == "abfss://c@a.dfs.core.windows.net/t"


def test_storage_options_only_for_s3_with_the_endpoint_and_keys(tmp_path):
    settings = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path), "LAKEHOUSE_PROFILE": "external",
                                  "S3_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "key",
                                  "AWS_SECRET_ACCESS_KEY": "secret"}, dotenv=tmp_path / "no.env")
    assert open_format.storage_options(settings, "/local/path") == {}
    assert open_format.storage_options(settings, "s3://b/t") == {
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}


def test_reader_needs_follow_the_protocol_version():
    assert open_format.reader_needs(1, None) == []
    assert open_format.reader_needs(2, None) == ["columnMapping"]
    assert open_format.reader_needs(3, ["timestampNtz", "deletionVectors"]) == ["deletionVectors", "timestampNtz"]
    assert "DROP FEATURE deletionVectors" in open_format.keep_readable("gold.t", "deletionVectors")


def test_skips_on_databricks_only(tmp_path):
    settings = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "no.env")
    assert open_format.skip_reason(settings) == ""
    assert "Unity Catalog" in open_format.skip_reason(settings.replace(profile="databricks"))


def test_the_log_lists_each_commit_with_its_actions(tmp_path):
    table = tmp_path / "gold"
    rows = pa.table({"country": ["Ireland", "Ireland"], "revenue_usd": pa.array(
        [Decimal("1.10"), Decimal("2.25")], pa.decimal128(12, 2))})
    write_deltalake(str(table), rows)
    write_deltalake(str(table), rows, mode="overwrite")
    (table / "_delta_log" / ".00000000000000000000.json.crc").write_text("hadoop's")  # left out
    log = open_format.delta_log(None, f"file:{table}")
    commits = [(name, actions) for name, kind, _, actions in log if kind == "commit"]
    assert [name for name, _ in commits] == ["00000000000000000000.json", "00000000000000000001.json"]
    assert {"protocol", "metaData", "add"} <= set(commits[0][1].split(", "))
    assert {"add", "remove"} <= set(commits[1][1].split(", "))
    assert all(not name.startswith(".") for name, *_ in log)
    # what the page relies on: DECIMAL arrives in pandas as exact Decimal values
    frame = DeltaTable(str(table)).to_pandas()
    assert frame.groupby("country").revenue_usd.sum()["Ireland"] == Decimal("3.35")
