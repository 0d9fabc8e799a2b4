"""The floor everything stands on: settings, names and paths, storage, the jars, the services the
project starts, the Spark session, and the one module that tells errors apart.

Imports go down only (docs/contributing.md, Layout)."""
