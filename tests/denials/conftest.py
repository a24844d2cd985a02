"""The claims tests' fixtures: the shipped payer directory loaded, claims built as a clean scrub builds them,
staff members assigned to practices."""

from __future__ import annotations

from tests.claims.conftest import claims, clean_intake, clean_practice, make_staff, payer_directory

__all__ = ["claims", "clean_intake", "clean_practice", "make_staff", "payer_directory"]
