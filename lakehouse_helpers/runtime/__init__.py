"""Runtime: see the README's layout."""
