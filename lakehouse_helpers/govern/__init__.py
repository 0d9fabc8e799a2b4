"""Govern: see the README's layout."""
