"""The `unity` catalog path against a STAND-IN of the Unity Catalog REST API (tests/unity_standin.py,
not a Unity Catalog server), reached over real HTTP by the real `unitycatalog-client`: governance
comments, properties and grants as sent on the wire and as the stand-in holds them afterwards,
errors with their HTTP status, the doctor's verdicts, and a canary UC_TOKEN that reaches the
server's Authorization header and nothing else (no output, log, exception or file)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lakehouse_helpers import doctor
from lakehouse_helpers.govern import governance, unity
from lakehouse_helpers.govern.governance import RowFilter, TableGovernance
from lakehouse_helpers.runtime.settings import load_settings
from tests.unity_standin import UnityCatalogStandIn

TABLE = "lakehouse.silver.customers"
SPEC = [
    TableGovernance(
        schema="silver", name="customers", description="One row per customer.", owner="data_engineers",
        columns={"email": "Contact email (PII)", "country": "Billing country"},
        tags={"layer": "silver"}, column_tags={"email": {"pii": "email"}},
        grants={"analysts": ("SELECT",), "data_engineers": ("SELECT", "MODIFY")},
        masks={"email": "pii_readers"}, row_filter=RowFilter("country", ("Ireland",)),
        constraints={"known_country": "country IS NOT NULL"},
    ),
]
COLUMNS = [
    {"name": "id", "type_text": "bigint", "type_name": "LONG", "position": 0, "nullable": False, "comment": "Key"},
    {"name": "email", "type_text": "string", "type_name": "STRING", "position": 1, "nullable": True},
    {"name": "country", "type_text": "string", "type_name": "STRING", "position": 2, "nullable": True},
]


@pytest.fixture
def canary() -> str:
    return f"canary-{uuid.uuid4().hex}"


@pytest.fixture
def uc(canary):
    with UnityCatalogStandIn(token=canary) as standin:
        standin.state.catalogs["lakehouse"] = {"name": "lakehouse", "id": "c0"}
        standin.state.schemas.add("lakehouse.silver")
        standin.state.add_table(TABLE, table_type="EXTERNAL", data_source_format="DELTA", columns=COLUMNS,
                                storage_location="s3://lakehouse/tables/silver/customers",
                                properties={"delta.minReaderVersion": "1"})
        yield standin


def _settings(url: str, token: str, tmp_path: Path):
    env = {"UC_URL": url, "UC_TOKEN": token, "LAKEHOUSE_PROFILE": "external", "LAKEHOUSE_STATE_DIR": str(tmp_path)}
    return load_settings(env=env, dotenv=tmp_path / "absent.env")


@pytest.fixture
def settings_uc(uc, canary, tmp_path):
    settings = _settings(uc.url, canary, tmp_path)
    assert settings.catalog_impl == "unity"  # UC_URL alone selects the unity path
    return settings


def test_governance_sends_comments_properties_and_grants_through_the_api(uc, settings_uc, canary, caplog):
    with caplog.at_level(logging.WARNING, logger="lakehouse_helpers.govern.governance"):
        sent = governance.apply(None, settings_uc, SPEC)  # backend from catalog_impl: no Spark needed

    table = uc.state.tables[TABLE]
    assert table["comment"] == "One row per customer."
    assert {c["name"]: c.get("comment") for c in table["columns"]} == {
        "id": "Key", "email": "Contact email (PII)", "country": "Billing country"}
    assert table["properties"] == {"delta.minReaderVersion": "1", "tag.layer": "silver", "tag.email.pii": "email",
                                   "governance.owner": "data_engineers"}
    # Re-registered, not moved: same files, type and format.
    assert (table["storage_location"], table["table_type"], table["data_source_format"]) == (
        "s3://lakehouse/tables/silver/customers", "EXTERNAL", "DELTA")
    assert uc.state.grants[TABLE] == {"analysts": ["SELECT"], "data_engineers": ["MODIFY", "SELECT"]}

    changes = uc.changes()
    assert [(r.method, r.path) for r in changes] == [
        ("DELETE", f"/tables/{TABLE}"), ("POST", "/tables"), ("PATCH", f"/permissions/table/{TABLE}")]
    assert changes[2].json() == {"changes": [
        {"principal": "analysts", "add": ["SELECT"], "remove": []},
        {"principal": "data_engineers", "add": ["SELECT", "MODIFY"], "remove": []}]}
    assert all(r.authorization == f"Bearer {canary}" for r in uc.requests)
    assert [s.split(" ", 2)[:2] for s in sent] == [
        ["DELETE", f"{unity.API}/tables/{TABLE}"], ["POST", f"{unity.API}/tables"],
        ["PATCH", f"{unity.API}/permissions/table/{TABLE}"]]
    # What the open-source API cannot hold is said, not silently dropped.
    assert "mask email, row filter country, constraint known_country" in caplog.text


def test_second_apply_sends_no_change(uc, settings_uc):
    governance.apply(None, settings_uc, SPEC)
    table_id = uc.state.tables[TABLE]["table_id"]
    uc.requests.clear()
    assert governance.apply(None, settings_uc, SPEC) == []
    assert uc.changes() == []
    assert uc.state.tables[TABLE]["table_id"] == table_id


def test_only_missing_grants_are_sent(uc, settings_uc):
    uc.state.grants[TABLE] = {"analysts": ["SELECT"], "data_engineers": ["SELECT"]}
    governance.apply(None, settings_uc, SPEC)
    (patch,) = [r for r in uc.changes() if r.method == "PATCH"]
    assert patch.json() == {"changes": [{"principal": "data_engineers", "add": ["MODIFY"], "remove": []}]}


def test_managed_table_is_refused_before_anything_is_deleted(uc, settings_uc):
    uc.state.tables[TABLE]["table_type"] = "MANAGED"
    with pytest.raises(unity.TableNotUpdatable) as err:
        governance.apply(None, settings_uc, SPEC)
    assert (err.value.table, err.value.table_type) == (TABLE, "MANAGED")
    assert uc.changes() == []


def test_failed_registration_puts_the_old_one_back(uc, settings_uc):
    uc.state.fail_creates = 1
    with pytest.raises(unity.UnityCatalogError) as err:
        governance.apply(None, settings_uc, SPEC)
    assert (err.value.status, err.value.error_code) == (500, "INTERNAL")
    table = uc.state.tables[TABLE]
    assert table.get("comment") is None and table["properties"] == {"delta.minReaderVersion": "1"}
    assert [r.method for r in uc.changes()] == ["DELETE", "POST", "POST"]


def test_unknown_column_in_the_spec_is_an_error_with_the_columns(uc, settings_uc):
    spec = [TableGovernance(schema="silver", name="customers", description="x", columns={"phone": "p", "email": "e"})]
    with pytest.raises(governance.UnknownColumns) as err:
        governance.apply(None, settings_uc, spec)
    assert (err.value.table, err.value.columns) == (TABLE, ["phone"])
    assert uc.changes() == []


def test_errors_carry_the_http_status(uc, settings_uc, tmp_path, closed_port):
    with pytest.raises(unity.UnityCatalogError) as err:
        unity.get_table(settings_uc, "lakehouse.silver.nothing")
    assert (err.value.status, err.value.error_code) == (404, "NOT_FOUND")
    with pytest.raises(unity.UnityCatalogError) as err:
        unity.get_table(_settings(uc.url, "wrong-token", tmp_path), TABLE)
    assert (err.value.status, err.value.error_code) == (401, "UNAUTHENTICATED")
    with pytest.raises(unity.UnityCatalogError) as err:
        unity.get_catalog(_settings(f"http://127.0.0.1:{closed_port}", "", tmp_path))
    assert err.value.status is None


def test_ensure_catalog_creates_it_once(uc, settings_uc):
    del uc.state.catalogs["lakehouse"]
    assert unity.ensure_catalog(settings_uc) is True
    assert unity.ensure_catalog(settings_uc) is False
    assert [(r.method, r.path, r.json().get("name")) for r in uc.changes()] == [("POST", "/catalogs", "lakehouse")]


def test_doctor_checks_the_server_the_token_and_the_catalog(uc, settings_uc, tmp_path, closed_port):
    ok = doctor.check_catalog(settings_uc)
    assert ok.ok and "catalog 'lakehouse' present" in ok.detail

    del uc.state.catalogs["lakehouse"]
    missing = doctor.check_catalog(settings_uc)
    assert not missing.ok and "ensure_catalog" in missing.fix

    bad_token = doctor.check_catalog(_settings(uc.url, "wrong-token", tmp_path))
    assert not bad_token.ok and "UC_TOKEN" in bad_token.fix and "401" in bad_token.detail

    down = doctor.check_catalog(_settings(f"http://127.0.0.1:{closed_port}", "", tmp_path))
    assert not down.ok and "start the Unity Catalog server" in down.fix


def test_canary_token_appears_in_no_output_log_or_file(uc, settings_uc, canary, tmp_path, capsys, caplog,
                                                      closed_port):
    texts = []
    down = _settings(f"http://127.0.0.1:{closed_port}", canary, tmp_path)
    with caplog.at_level(logging.DEBUG):
        texts += governance.apply(None, settings_uc, SPEC)
        uc.state.fail_creates = 1
        uc.state.tables[TABLE]["comment"] = "changed"  # so the next apply re-registers, and fails
        errors = []
        for call in (lambda: governance.apply(None, settings_uc, SPEC), lambda: unity.get_catalog(down)):
            with pytest.raises(unity.UnityCatalogError) as err:
                call()
            errors.append(err.value)
        texts += [t for e in errors for t in (str(e), repr(e), repr(e.__cause__), repr(e.__context__))]
        texts += [repr(settings_uc), json.dumps(uc.state.tables, default=str)]
        texts.append(doctor.format_checks([doctor.check_catalog(settings_uc), doctor.check_catalog(down)]))
    # The real CLI, in its own process, with the canary in its environment.
    env = {**os.environ, "UC_URL": uc.url, "UC_TOKEN": canary, "LAKEHOUSE_PROFILE": "external",
           "LAKEHOUSE_STATE_DIR": str(tmp_path), "LAKEHOUSE_CATALOG_IMPL": "unity"}
    cli = subprocess.run([sys.executable, "-m", "lakehouse_helpers", "doctor"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert "catalog 'lakehouse' present" in cli.stdout
    out = capsys.readouterr()
    texts += [cli.stdout, cli.stderr, out.out, out.err, caplog.text]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]

    assert any(r.authorization == f"Bearer {canary}" for r in uc.requests)  # it was really used
    leaks = [t[:200] for t in texts if canary in t]
    assert leaks == []


def test_a_failed_put_back_keeps_the_registration_and_the_next_apply_restores_it(uc, settings_uc):
    """The new registration and every put-back refused: the error names the saved copy, and the
    next apply registers the table again before it governs it."""
    uc.state.fail_creates = 1 + unity.RESTORE_ATTEMPTS
    with pytest.raises(unity.UnityCatalogError) as err:
        governance.apply(None, settings_uc, SPEC)
    saved = unity.saved_registrations(settings_uc) / f"{TABLE}.json"
    assert TABLE not in uc.state.tables and str(saved) in str(err.value) and saved.exists()
    sent = governance.apply(None, settings_uc, SPEC)
    assert sent[0].startswith("POST") and TABLE in sent[0] and not saved.exists()
    table = uc.state.tables[TABLE]
    assert table["comment"] == "One row per customer." and table["storage_location"].endswith("silver/customers")
