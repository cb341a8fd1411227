"""Plumbing every Sous service shares: broker, logging, dead letters, inbox, outbox, migrations."""
