"""Pure logic of the executor: redaction, outputs, environments, SQL splitting, log tails."""
