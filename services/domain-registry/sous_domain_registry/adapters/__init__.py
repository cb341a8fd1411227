"""Adapters of the registry: PostgreSQL storage."""
