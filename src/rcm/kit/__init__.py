"""Shared plumbing that knows no domain: database, base models, errors, telemetry."""
