"""The scheduler schema."""
