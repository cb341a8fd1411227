"""Migrations of the console read model."""
