"""Tenancy fixtures: the chainer's sessions (to see events land in each tenant's sealed chain)."""

from __future__ import annotations

from tests.audit.conftest import audit_engine, audit_sessions

__all__ = ["audit_engine", "audit_sessions"]
