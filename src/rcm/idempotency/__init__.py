"""Idempotency-Key handling for every POST: a retry gets the first response, never a second side effect."""
