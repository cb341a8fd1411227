"""The console's adapters to PostgreSQL."""
