"""The audit fixtures (events, the chainer's connection) serve the auditor console's tests too."""

from __future__ import annotations

from tests.audit.conftest import audit_engine, audit_sessions, coder, make_event

__all__ = ["audit_engine", "audit_sessions", "coder", "make_event"]
