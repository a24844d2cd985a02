"""Payers: the directory of payers and clearinghouses, and the connectors that reach them."""
