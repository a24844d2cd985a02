"""NPI check digit: the rule lives in the X12 layer (the 837 guides state it), re-exported here."""

from __future__ import annotations

from rcm.x12.npi import npi_check_digit_valid

__all__ = ["npi_check_digit_valid"]
