"""Where the workbook keeps things (layout) and how every client reaches S3 (one connection)."""

from __future__ import annotations

import pytest

from lakehouse_helpers.pipeline.autoloader import filesystem, s3_options
from lakehouse_helpers.runtime import layout, storage
from lakehouse_helpers.runtime.services.spark_conf import _s3a_conf
from lakehouse_helpers.runtime.settings import load_settings, local_s3_keys


@pytest.fixture
def settings(tmp_path):
    local_s3_keys(tmp_path, create=True)  # the embedded server's keys, as `services up` makes them
    env = {"LAKEHOUSE_STATE_DIR": str(tmp_path), "S3_ENDPOINT_URL": "http://127.0.0.1:29000"}
    return load_settings(env=env, dotenv=tmp_path / "none")


def test_local_paths_live_under_the_data_folder_and_never_collide(settings):
    paths = [layout.raw_orders(settings), layout.quarantine(settings), layout.json_drop_table(settings),
             str(layout.manifest_dir(settings, "t")), str(layout.lineage_events(settings))]
    streams = [layout.RAW_STREAM, layout.BRONZE_STREAM, layout.JSON_DROP_STREAM, layout.SILVER_STREAM]
    paths += [layout.checkpoint(settings, n) for n in streams]
    paths += [layout.schema_location(settings, layout.BRONZE_STREAM), layout.stream_checkpoint(settings, "x")]
    data = str(settings.data_dir.resolve())
    assert all(p.startswith(data + "/") for p in paths)
    assert len(set(paths)) == len(paths)
    assert str(layout.run_file(settings, layout.RAW_STREAM)) == layout.checkpoint(settings,
        layout.RAW_STREAM) + ".run.json"


def test_s3_names_and_tables(settings):
    assert layout.landing_url(settings) == f"s3a://{settings.s3_bucket}/landing/orders"
    assert layout.landing_partition(settings, "2026-01-02", 3) == layout.landing_url(settings) + \
        "/ingestion_date=2026-01-02/export_from=3"
    assert layout.landing_key_prefix("2026-01-02", 3) == "landing/orders/ingestion_date=2026-01-02/export_from=3/"
    # The ledgers sit under a `_` folder, which Spark and Auto Loader skip when they list the landing zone.
    for key in (layout.EXPORT_STATE_KEY, layout.DROPS_STATE_KEY):
        assert key.startswith("landing/_")
    assert layout.bronze_table(settings) == settings.table("bronze", "orders")
    assert layout.raw_table(settings, "orders_quarantine") == settings.table("raw", "orders_quarantine")


def test_every_s3_client_builds_from_one_connection(settings):
    conn = storage.s3_connection(settings)
    assert conn.endpoint == "http://127.0.0.1:29000" and conn.path_style and conn.host == "127.0.0.1:29000"
    # The Auto Loader's options are plain strings (they travel to Spark Connect's workers) and round-trip.
    options = s3_options(settings)
    assert all(isinstance(v, str) for v in options.values())
    assert storage.S3Connection.from_options(options) == conn
    client = storage.s3_client(settings)
    assert client.meta.endpoint_url == conn.endpoint
    assert client.meta.config.s3["addressing_style"] == "path"
    conf = _s3a_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == conn.endpoint
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conn.access_key and conf["spark.hadoop.fs.s3a.access.key"] == conn.access_key
    assert options["s3.secret.key"] == conf["spark.hadoop.fs.s3a.secret.key"] == settings.s3_secret_key.reveal()
    fs1, path = filesystem("s3a://bucket/some/key", options)
    fs2, _ = filesystem("s3://bucket/other", dict(options))
    assert path == "bucket/some/key" and fs1 is fs2  # one pyarrow client per connection
    assert fs1.region == conn.region


def test_aws_connection_has_no_endpoint_and_virtual_hosts():
    conn = storage.S3Connection(region="eu-west-1")
    assert not conn.path_style and conn.scheme == "https"
    assert conn.as_options() == {"s3.region": "eu-west-1"}
    assert storage.S3Connection.from_options({}).region == storage.DEFAULT_REGION
