"""Units of work, named for who is acting. Each holds a transaction bound (RLS) to its tenants.

- ``TenantScope``: one practice (a practice's system, an owner, staff inside one practice's routes).
- ``StaffScope``: the practices a staff member is assigned to, at once (coding and billing queues,
  cross-practice lists). Multi-tenant, and loudly so: it is built only by ``rcm.tenancy.staff`` from the
  caller's own assignments.
- ``SystemScope``: operator jobs and routing before a practice is known (an 835 on its way to a practice).
  It names its job in every audit event; there is no quiet default tenant.

All three hand out repositories (``scope.repo(EncounterRepository)``), so no service builds one by hand, and
all three audit per tenant: an access touching rows of several practices records one event in each
practice's trail, because each practice verifies and reviews its own trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.trail import of_row, record
from rcm.crypto.keyring import KeyStore, TenantKeyring
from rcm.identity.principal import Principal
from rcm.kit.db import DriverTransaction
from rcm.kit.repository import TenantRowRepository
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId
from rcm.tenancy.manifest import TenantManifest

R = TypeVar("R", bound=TenantRowRepository[Any])
Detail = Mapping[str, str | int | bool | None]


def _repo(repository: type[R], session: AsyncSession, context: TenantContext) -> R:
    return repository(session, context)


class OnePractice:
    """A unit of work in one practice, whichever way it runs: ``TenantScope`` (a session) or
    ``TenantRead`` (a hot read on the driver). Routes that take either are typed with this."""

    __slots__ = ()
    context: TenantContext
    principal: Principal
    keyring: TenantKeyring
    request: RequestInfo
    manifest: TenantManifest
    access: str
    break_glass_grant_id: uuid.UUID | None

    @property
    def tenant_id(self) -> TenantId:
        return self.context.tenant_id

    def event(
        self,
        event_type: str,
        action: Action,
        *,
        resource_type: str,
        resource_ids: Iterable[uuid.UUID] = (),
        patient_ids: Iterable[uuid.UUID] = (),
        outcome: Outcome = Outcome.SUCCESS,
        detail: Detail | None = None,
    ) -> AuditEvent:
        """The event ``TenantScope.audit`` records, for a repository that writes it in its own statement
        (``rcm.audit.trail.written_by_caller``)."""
        return AuditEvent(
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
        )

    def _access_detail(self) -> dict[str, str | None]:
        grant = str(self.break_glass_grant_id) if self.break_glass_grant_id else None
        return {"access": self.access, "break_glass_grant": grant} if grant else {"access": self.access}


@dataclass(slots=True)
class TenantScope(OnePractice):
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

    def repo(self, repository: type[R]) -> R:
        """A repository bound to this scope's transaction and tenant."""
        return _repo(repository, self.session, self.context)

    def audit(
        self,
        event_type: str,
        action: Action,
        *,
        resource_type: str,
        resource_ids: Iterable[uuid.UUID] = (),
        patient_ids: Iterable[uuid.UUID] = (),
        outcome: Outcome = Outcome.SUCCESS,
        detail: Detail | None = None,
    ) -> None:
        """Record an access in this transaction: it commits with the access or not at all."""
        record(
            self.session,
            self.event(
                event_type,
                action,
                resource_type=resource_type,
                resource_ids=resource_ids,
                patient_ids=patient_ids,
                outcome=outcome,
                detail=detail,
            ),
        )


@dataclass(slots=True)
class TenantRead(OnePractice):
    """A ``TenantScope`` for a hot read whose whole unit of work runs on the driver, without a session
    (``unit``: bound to the practice, committed by ``rcm.tenancy.dependencies.provide_tenant_read``). Its
    statements record their audit events themselves (``event``), as ``TenantScope``'s do."""

    unit: DriverTransaction
    context: TenantContext
    principal: Principal
    keyring: TenantKeyring
    request: RequestInfo
    manifest: TenantManifest
    access: str
    break_glass_grant_id: uuid.UUID | None = None  # always None: emergency access takes a TenantScope


@dataclass(frozen=True, slots=True)
class Touched:
    """One row an access touched, with its practice: the unit of per-tenant auditing."""

    tenant_id: uuid.UUID
    resource_id: uuid.UUID
    patient_id: uuid.UUID | None = None


@dataclass(slots=True)
class _MultiTenantScope:
    session: AsyncSession  # inside a transaction bound to every tenant of ``context``
    context: TenantContext
    principal: Principal
    request: RequestInfo
    keystore: KeyStore

    @property
    def tenant_ids(self) -> tuple[TenantId, ...]:
        return self.context.tenant_ids

    def repo(self, repository: type[R]) -> R:
        """A repository over every tenant of this scope (its filter is ``tenant_id IN (...)``)."""
        return _repo(repository, self.session, self.context)

    def tenant(self, tenant_id: uuid.UUID) -> TenantId:
        """``tenant_id`` as one of this scope's tenants; a row of any other tenant is a programming error."""
        for known in self.context.tenant_ids:
            if known == tenant_id:
                return known
        raise ValueError("tenant outside this unit of work")

    async def keyring(self, tenant_id: uuid.UUID) -> TenantKeyring:
        """The keyring of one of this scope's practices (to read that practice's PHI)."""
        return await self.keystore.keyring(self.session, self.tenant(tenant_id))

    def _access_detail(self) -> dict[str, str | None]:
        raise NotImplementedError

    def audit(
        self,
        event_type: str,
        action: Action,
        *,
        resource_type: str,
        touched: Iterable[Touched] = (),
        outcome: Outcome = Outcome.SUCCESS,
        detail: Detail | None = None,
    ) -> None:
        """One event in each practice's trail, naming only that practice's rows.

        A search that found nothing still looked into every practice of the scope, so each records it.
        """
        by_tenant: dict[uuid.UUID, list[Touched]] = {}
        for row in touched:
            by_tenant.setdefault(self.tenant(row.tenant_id), []).append(row)
        tenants = list(by_tenant) or list(self.context.tenant_ids)
        for tenant_id in tenants:
            rows = by_tenant.get(tenant_id, [])
            record(
                self.session,
                AuditEvent(
                    tenant_id=self.tenant(tenant_id),
                    event_type=event_type,
                    action=action,
                    outcome=outcome,
                    request=self.request,
                    actor=self.principal,
                    resource_type=resource_type,
                    resource_ids=tuple(row.resource_id for row in rows),
                    patient_ids=tuple(dict.fromkeys(r.patient_id for r in rows if r.patient_id is not None)),
                    detail={**(detail or {}), **self._access_detail()},
                ),
            )

    def audit_of_row(
        self, event_type: str, action: Action, *, resource_type: str, detail: Detail | None = None
    ) -> dict[str, Any]:
        """The event of an access to the one row a statement is about to pick (the next item of a queue, in
        whichever of this scope's practices), as that statement's parameters: it records the event itself
        (``rcm.audit.repository.event_of_row``), in the row's practice's trail and naming the row, or
        records nothing when it picks nothing. The statement runs under this scope's binding, so the row and
        its event are in one of this scope's practices (RLS refuses an event of any other)."""
        return _of_row(
            self.principal, self.request, event_type, action, resource_type, detail, self._access_detail()
        )


def _of_row(  # noqa: PLR0917 - an event's parts
    principal: Principal,
    request: RequestInfo,
    event_type: str,
    action: Action,
    resource_type: str,
    detail: Detail | None,
    access: Mapping[str, str | None],
) -> dict[str, Any]:
    return of_row(
        AuditEvent(
            tenant_id=PLATFORM_TENANT,  # not written: the statement takes the row's practice
            event_type=event_type,
            action=action,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=principal,
            resource_type=resource_type,
            detail={**(detail or {}), **access},
        )
    )


_STAFF_ACCESS = {"access": "staff_scope"}


def staff_audit_of_row(
    principal: Principal,
    request: RequestInfo,
    event_type: str,
    action: Action,
    *,
    resource_type: str,
    detail: Detail | None = None,
) -> dict[str, Any]:
    """``StaffScope.audit_of_row`` for a statement that opens the staff unit of work itself (it binds its
    own transaction to the person's live assignments: ``rcm.workqueue.service.lease_next_as_staff``)."""
    return _of_row(principal, request, event_type, action, resource_type, detail, _STAFF_ACCESS)


@dataclass(slots=True)
class StaffScope(_MultiTenantScope):
    """CROSS-TENANT: the practices this staff member is assigned to, and no other.

    Built only from the caller's own staff assignments (``rcm.tenancy.staff.staff_scope``); break-glass and
    auditor access stay per practice (``TenantScope``), never folded in here.
    """

    def _access_detail(self) -> dict[str, str | None]:
        return dict(_STAFF_ACCESS)


@dataclass(slots=True)
class SystemScope(_MultiTenantScope):
    """CROSS-TENANT, NO CALLER: an operator job or routing work before its practice is known.

    ``job`` names the work (``"remittance.route"``, ``"audit.checkpoint"``) and is on every event it records.
    """

    job: str = ""

    def __post_init__(self) -> None:
        if not self.job:
            raise ValueError("a system scope names its job")

    def _access_detail(self) -> dict[str, str | None]:
        return {"access": "system", "job": self.job}
