"""The scheduler's pure core: run state, the decide() state machine, params, triggers."""
