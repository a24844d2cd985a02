"""Everything a request or job needs to act inside one tenant: the transaction, keys, caller, audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.trail import record
from rcm.crypto.keyring import TenantKeyring
from rcm.identity.principal import Principal
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.manifest import TenantManifest


@dataclass(slots=True)
class TenantScope:
    session: AsyncSession  # inside a transaction bound to ``context``
    context: TenantContext
    principal: Principal
    keyring: TenantKeyring
    request: RequestInfo
    manifest: TenantManifest  # the tenant's manifest (payers, rules), typed
    # Why the caller may act here (home tenant, assignment, break-glass...): every event says so, which is
    # what lets a break-glass review list exactly what was touched under the grant.
    access: str = "home_tenant"
    break_glass_grant_id: uuid.UUID | None = None

    @property
    def tenant_id(self) -> TenantId:
        return self.context.tenant_id

    def _access_detail(self) -> dict[str, str | None]:
        grant = str(self.break_glass_grant_id) if self.break_glass_grant_id else None
        return {"access": self.access, "break_glass_grant": grant} if grant else {"access": self.access}

    def audit(
        self,
        event_type: str,
        action: Action,
        *,
        resource_type: str,
        resource_ids: Iterable[uuid.UUID] = (),
        patient_ids: Iterable[uuid.UUID] = (),
        outcome: Outcome = Outcome.SUCCESS,
        detail: Mapping[str, str | int | bool | None] | None = None,
    ) -> None:
        """Record an access in this transaction: it commits with the access or not at all."""
        record(
            self.session,
            AuditEvent(
                tenant_id=self.tenant_id,
                event_type=event_type,
                action=action,
                outcome=outcome,
                request=self.request,
                actor=self.principal,
                resource_type=resource_type,
                resource_ids=tuple(resource_ids),
                patient_ids=tuple(dict.fromkeys(patient_ids)),
                detail={**(detail or {}), **self._access_detail()},
            ),
        )
