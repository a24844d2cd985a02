"""Tenant identity types.

``TenantId`` is only ever produced by the auth layer (after it has checked that the caller may act for the
tenant) or by a loudly named system path. Everything that touches tenant-owned rows takes a ``TenantContext``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NewType

TenantId = NewType("TenantId", uuid.UUID)

# Events that belong to no practice (token requests from unknown clients, platform administration) are
# chained under this reserved tenant id so the audit trail has no unowned rows.
PLATFORM_TENANT = TenantId(uuid.UUID(int=0))


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The tenants a unit of work may see. Exactly one for ordinary requests."""

    tenant_ids: tuple[TenantId, ...]

    @classmethod
    def single(cls, tenant_id: TenantId) -> TenantContext:
        return cls((tenant_id,))

    @classmethod
    def system_cross_tenant(cls, tenant_ids: tuple[TenantId, ...]) -> TenantContext:
        """The explicit path for work that spans tenants (staff queues, operator reports, audit)."""
        return cls(tenant_ids)

    @property
    def tenant_id(self) -> TenantId:
        if len(self.tenant_ids) != 1:
            raise RuntimeError("this operation needs a single-tenant context")
        return self.tenant_ids[0]

    def as_setting(self) -> str:
        return ",".join(str(t) for t in self.tenant_ids)
