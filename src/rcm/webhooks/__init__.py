"""Signed webhooks: practices subscribe to status changes instead of polling (outbox, signing, delivery)."""
