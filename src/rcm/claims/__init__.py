"""Claims: one per responsible payer of a clean-scrubbed encounter, their state machine and events, the
billing queue that works them, and the submission batches that carry them to payers."""
