"""Pure logic of the test-runner: comparisons, outcomes, summaries and history judgement."""
