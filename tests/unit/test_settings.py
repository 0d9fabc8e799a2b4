"""Settings precedence and secret hiding (unit: no services, no Spark)."""

from __future__ import annotations

import pytest

from lakehouse_helpers.runtime.settings import Secret, SettingsError, load_settings, local_s3_keys


def test_defaults(tmp_path):
    s = load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    assert s.profile == "local"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.s3_bucket == "lakehouse"
    assert s.table("bronze", "orders") == "spark_catalog.bronze.orders"
    assert s.replace(schema_prefix="dev_").table("bronze", "orders") == "spark_catalog.dev_bronze.orders"


def test_precedence_dotenv_then_environment_then_overrides(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("S3_BUCKET=from-dotenv\nKAFKA_TOPIC=topic-dotenv\n# comment\nSPARK_SHUFFLE_PARTITIONS='8'\n")
    env = {"LAKEHOUSE_STATE_DIR": str(tmp_path), "KAFKA_TOPIC": "topic-env"}
    s = load_settings(env=env, dotenv=dotenv)
    assert s.s3_bucket == "from-dotenv"  # .env beats the default
    assert s.kafka_topic == "topic-env"  # environment beats .env
    assert s.spark_shuffle_partitions == 8  # typed
    s2 = load_settings(env=env, dotenv=dotenv, kafka_topic="topic-param")
    assert s2.kafka_topic == "topic-param"  # explicit override beats everything
    assert s2.replace(s3_bucket="b2").s3_bucket == "b2"
    assert s2.replace(s3_bucket="b2").kafka_topic == "topic-param"


def test_secret_is_never_shown(tmp_path):
    env = {
        "LAKEHOUSE_PROFILE": "external",
        "LAKEHOUSE_STATE_DIR": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLEVALUE1234",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value-123",
        "DATABRICKS_TOKEN": "dapi-token-value",
    }
    s = load_settings(env=env, dotenv=tmp_path / "none")
    text = repr(s) + str(s) + repr(s.s3_secret_key) + f"{s.databricks_token}"
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN"):
        assert env[var] not in text
    assert s.s3_secret_key.reveal() == "very-secret-value-123"
    assert s.s3_access_key.reveal() == "AKIDEXAMPLEVALUE1234"
    assert repr(Secret("x")) == "Secret('***')"


def test_secrets_cannot_be_parameters(tmp_path):
    with pytest.raises(SettingsError, match="only come from the environment"):
        load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, s3_secret_key="oops")


def test_local_profile_uses_generated_keys_not_aws_env(tmp_path):
    keys = local_s3_keys(tmp_path, create=True)
    assert (tmp_path / "secrets" / "s3.env").stat().st_mode & 0o077 == 0  # owner-only
    env = {"LAKEHOUSE_STATE_DIR": str(tmp_path), "AWS_ACCESS_KEY_ID": "someone-elses", "AWS_SECRET_ACCESS_KEY": "x"}
    s = load_settings(env=env, dotenv=tmp_path / "none")
    assert s.s3_access_key.reveal() == keys[0]
    assert local_s3_keys(tmp_path, create=True) == keys  # generated once, then kept


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_PROFILE": "cloud"}, "LAKEHOUSE_PROFILE"),
        ({"SPARK_SHUFFLE_PARTITIONS": "many"}, "SPARK_SHUFFLE_PARTITIONS"),
        ({"LAKEHOUSE_CATALOG_IMPL": "unity"}, "UC_URL"),
    ],
)
def test_bad_values_say_which_variable(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path), **env}, dotenv=tmp_path / "none")


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="unknown settings: kafka_topik"):
        load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, kafka_topik="x")


def test_databricks_profile_uses_workspace_catalog(tmp_path):
    s = load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_STATE_DIR": str(tmp_path)},
        dotenv=tmp_path / "none")
    assert s.catalog_impl == "databricks"
    assert not s.embedded
    assert s.table("bronze", "orders") == "lakehouse.bronze.orders"


def test_a_databricks_cluster_is_recognised_without_a_profile_variable(tmp_path):
    # An existing cluster or serverless compute has no LAKEHOUSE_PROFILE; its runtime says what it is.
    runtime = {"DATABRICKS_RUNTIME_VERSION": "17.3", "LAKEHOUSE_STATE_DIR": str(tmp_path)}
    s = load_settings(env=runtime, dotenv=tmp_path / "none")
    assert (s.profile, s.catalog_impl) == ("databricks", "databricks")
    # An explicit profile still wins (a local test of a notebook on a cluster, say).
    assert load_settings(env={**runtime, "LAKEHOUSE_PROFILE": "external"},
        dotenv=tmp_path / "none").profile == "external"
    assert load_settings(env={"LAKEHOUSE_STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none").profile == "local"


def test_kafka_cluster_ids_never_look_like_an_option():
    from lakehouse_helpers.runtime.services.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]  # about 31 would start with "-" unfiltered
    assert all(len(i) == 22 and not i.startswith("-") for i in ids) and len(set(ids)) == len(ids)
