"""Notebook tooling, apart from the lakehouse stages: what a page shows (`report.record`,
`display`, `flow`), how the notebooks run (`runner`, `params`, `memory`, `fds`) and how they are
kept reviewable (`tools`). Standard library only at import: `make help` lists the parameters
(`python -m lakehouse_helpers.notebook.params`) before anything is installed."""
