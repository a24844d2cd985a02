"""Practice-level figures for owners: aggregates only, never a patient's data."""
