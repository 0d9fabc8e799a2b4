"""The one-table governance spec the governance and access tests apply (unit tests check the
statements it yields, service tests enforce it on Spark's metastore)."""

from lakehouse_helpers.govern.governance import RowFilter, TableGovernance

SPEC = [
    TableGovernance(
        schema="silver", name="customers", description="One row per customer.",
        owner="data_engineers",
        columns={"email": "Contact email (PII)", "country": "Billing country"},
        tags={"layer": "silver"}, column_tags={"email": {"pii": "email"}},
        grants={"analysts": ("SELECT",), "data_engineers": ("SELECT", "MODIFY")},
        masks={"email": "pii_readers"},
        row_filter=RowFilter("country", ("Ireland",), privileged="data_stewards"),
        constraints={"known_country": "country IS NOT NULL"},
    ),
]
