"""Adapters: PostgreSQL repositories of runs, timers, triggers and the registry view."""
