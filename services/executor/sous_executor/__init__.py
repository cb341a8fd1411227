"""Sous executor: runs step attempts and reports them on the step events topic."""
