"""Numbered SQL migrations of the test-runner schema."""
