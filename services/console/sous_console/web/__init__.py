"""The console web UI: sign-in, views, live events."""
