"""Payers: the directory of payers and clearinghouses (global: who the billing company bills, and which
connector serves claims, eligibility and status for each), practices' payer enrollment (tenant-owned: which
directory payers a practice bills, as whom, with its credentials by reference), and the connectors that
reach them."""
