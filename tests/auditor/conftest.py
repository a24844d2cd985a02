"""The audit fixtures (events, the chainer's connection) and the claims fixtures (an enrolled practice, its
intake, claims built from encounters) serve the auditor console's tests too."""

from __future__ import annotations

from tests.audit.conftest import audit_engine, audit_sessions, coder, make_event
from tests.claims.conftest import claims, intake, payer_directory, practice

__all__ = [
    "audit_engine",
    "audit_sessions",
    "claims",
    "coder",
    "intake",
    "make_event",
    "payer_directory",
    "practice",
]
