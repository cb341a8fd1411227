"""SQL migrations of the registry schema."""
