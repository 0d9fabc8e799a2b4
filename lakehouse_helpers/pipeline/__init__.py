"""Pipeline: see the README's layout."""
