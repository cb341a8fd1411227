"""Sous test-runner: runs the data tests of a step and publishes their results."""
