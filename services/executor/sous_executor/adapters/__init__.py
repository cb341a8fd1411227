"""Runners of each step kind, references, and the attempts table."""
