"""Patients' balances from the ledger, their payments, refunds and payment plans, and statement runs."""
