"""Numbered SQL migrations of the executor schema."""
