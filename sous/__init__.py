"""The `sous` command line: local stack, topics, and (as services land) apply, run and tail."""
