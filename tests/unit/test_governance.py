"""Governance as statements, without Spark: the Databricks backend's exact statements (checked
against a recording stand-in, since no workspace runs here) and the local backend's SQL (enforced
for real in tests/services/test_governance.py)."""

from __future__ import annotations

from lakehouse_helpers.govern import governance
from lakehouse_helpers.govern.governance import TableGovernance
from tests.governance_spec import SPEC


class RecordingSession:
    """A stand-in for a Databricks session: records the SQL it is given, runs nothing."""

    def __init__(self):
        self.statements: list[str] = []

    def sql(self, statement: str):
        self.statements.append(statement)


def test_databricks_backend_runs_exactly_the_native_statements():
    from lakehouse_helpers.runtime.settings import load_settings

    settings = load_settings(env={"LAKEHOUSE_PROFILE": "databricks", "LAKEHOUSE_CATALOG": "lakehouse"}, dotenv=None)
    session = RecordingSession()
    ran = governance.apply(session, settings, SPEC)
    t, fn = "lakehouse.silver.customers", "lakehouse.governance"
    assert session.statements == ran == [
        f"CREATE SCHEMA IF NOT EXISTS {fn}",
        f"COMMENT ON TABLE {t} IS 'One row per customer.'",
        f"ALTER TABLE {t} ALTER COLUMN email COMMENT 'Contact email (PII)'",
        f"ALTER TABLE {t} ALTER COLUMN country COMMENT 'Billing country'",
        f"ALTER TABLE {t} SET TAGS ('layer' = 'silver')",
        f"ALTER TABLE {t} ALTER COLUMN email SET TAGS ('pii' = 'email')",
        f"ALTER TABLE {t} ADD CONSTRAINT known_country CHECK (country IS NOT NULL)",
        f"CREATE OR REPLACE FUNCTION {fn}.mask_silver_customers_email(email STRING) RETURNS STRING "
        "RETURN CASE WHEN is_account_group_member('pii_readers') THEN email "
        "ELSE concat('***', substring(email, instr(email, '@'))) END",
        f"ALTER TABLE {t} ALTER COLUMN email SET MASK {fn}.mask_silver_customers_email",
        f"CREATE OR REPLACE FUNCTION {fn}.filter_silver_customers_country(country STRING) RETURNS BOOLEAN "
        "RETURN is_account_group_member('data_stewards') OR country IN ('Ireland')",
        f"ALTER TABLE {t} SET ROW FILTER {fn}.filter_silver_customers_country ON (country)",
        f"ALTER TABLE {t} SET OWNER TO `data_engineers`",
        f"GRANT SELECT ON TABLE {t} TO `analysts`",
        f"GRANT SELECT, MODIFY ON TABLE {t} TO `data_engineers`",
    ]


def test_quotes_in_descriptions_are_escaped():
    from lakehouse_helpers.runtime.settings import load_settings

    settings = load_settings(env={"LAKEHOUSE_PROFILE": "databricks"}, dotenv=None)
    spec = [TableGovernance(schema="gold", name="x", description="the roaster's table")]
    assert "IS 'the roaster\\'s table'" in governance.databricks_statements(settings, spec)[1]


