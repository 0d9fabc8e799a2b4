"""Governance over the pipeline's tables: the spec and its statements, Unity Catalog, access as
another user, the catalog report and the lineage drawn from what ran.

Imports go down only (docs/contributing.md, Layout)."""
