"""I/O of the test-runner: connections to tested databases and its own history tables."""
