"""The ledger: charges, payments, adjustments and provider adjustments as balanced, append-only entries."""
