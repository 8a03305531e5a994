"""The planner: a runs settings from the train splits fingerprint, the machine and a time budget."""
