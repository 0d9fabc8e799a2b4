"""The stages the notebooks teach: events, Kafka, the raw stream, the export, quality checks,
Auto Loader, the medallion tables and the ground truth they are proved against.

Imports go down only (docs/contributing.md, Layout)."""
