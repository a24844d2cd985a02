"""The claims tests' fixtures: the shipped payer directory loaded, claims built as a clean scrub builds them,
staff members assigned to practices."""

from __future__ import annotations

from tests.claims.conftest import claims, make_staff, payer_directory

__all__ = ["claims", "make_staff", "payer_directory"]
