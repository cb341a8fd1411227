"""Shared tables of every service schema: inbox and outbox."""
