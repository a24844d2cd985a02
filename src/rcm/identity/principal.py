"""The authenticated caller, as every other package sees it."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rcm.identity.vocabulary import Scope
from rcm.kit.tenant import TenantId


class Role(enum.StrEnum):
    PRACTICE_CLIENT = "practice_client"  # a practice's system, OAuth2 client credentials
    PRACTICE_OWNER = "practice_owner"
    CODER = "coder"
    BILLER = "biller"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # The billing company's management: every practice's aggregate reports side by side, through the named
    # system path (``rcm.reporting.productivity.operator_kpis``), each read in each practice's trail. No PHI.
    OPERATOR = "operator"


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """The roles among stored strings; a string naming no role (e.g. one since retired) grants nothing."""
    return frozenset(Role(v) for v in values if v in Role._value2member_map_)


# Roles of the billing company's own people: they reach a tenant through a staff assignment (or break-glass).
STAFF_ROLES = frozenset({Role.CODER, Role.BILLER, Role.SUPERVISOR})
# Roles bound to exactly one tenant, carried in the token.
PRACTICE_ROLES = frozenset({Role.PRACTICE_CLIENT, Role.PRACTICE_OWNER})


class PrincipalKind(enum.StrEnum):
    CLIENT = "client"  # an API client of a practice
    USER = "user"  # a person, through an OIDC issuer


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    subject: str  # the token's sub: the api_client id or the app_user id
    roles: frozenset[Role]
    scopes: frozenset[Scope]
    token_id: str  # jti, for correlating audit events with the token that was used
    client_id: str | None = None  # OAuth2 client_id, for API clients
    user_id: uuid.UUID | None = None
    # The one tenant of a practice client or practice owner; empty for staff, auditors and admins.
    home_tenant: TenantId | None = None
    mfa: bool = False
    # Tenants an auditor may read; empty with Role.AUDITOR and all_tenants=True means every tenant.
    auditor_tenants: tuple[TenantId, ...] = field(default=())
    all_tenants: bool = False

    def has_role(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)


def operator_principal(command: str) -> Principal:
    """The actor recorded for an operator's CLI command (key rotation, offboarding, seeding).

    Shell access to the deployment is the credential; the OS user and command are what the audit trail keeps.
    """
    import getpass

    return Principal(
        kind=PrincipalKind.USER,
        subject=f"operator:{getpass.getuser()}",
        roles=frozenset({Role.ADMIN}),
        scopes=frozenset(),
        token_id=f"cli:{command}",
    )


def system_principal(job: str) -> Principal:
    """The actor recorded for a background job that acts on no one's request (re-encryption after a key
    rotation, sweeps): no role, no scope; the trail names the job."""
    return Principal(
        kind=PrincipalKind.USER,
        subject=f"system:{job}",
        roles=frozenset(),
        scopes=frozenset(),
        token_id=f"job:{job}",
    )


class Submitted(Protocol):
    """A job's row that records who asked for it (the columns ``submitted_columns`` fills)."""

    tenant_id: uuid.UUID
    submitted_by_kind: str
    submitted_by: str
    submitted_client_id: str | None
    submitted_user_id: uuid.UUID | None


def submitted_columns(principal: Principal) -> dict[str, Any]:
    """The columns of a job's row recording who asked for it (``submitter`` reads them back)."""
    return {
        "submitted_by_kind": principal.kind.value,
        "submitted_by": principal.subject,
        "submitted_client_id": principal.client_id,
        "submitted_user_id": principal.user_id,
    }


def submitter(row: Submitted, *, token_id: str) -> Principal:
    """Who asked for a job, as the job's audit events name them (no roles or scopes: the job does only what
    the submitter's request asked, and the request was authorised then)."""
    return Principal(
        kind=PrincipalKind(row.submitted_by_kind),
        subject=row.submitted_by,
        roles=frozenset(),
        scopes=frozenset(),
        token_id=token_id,
        client_id=row.submitted_client_id,
        user_id=row.submitted_user_id,
        home_tenant=TenantId(row.tenant_id),
    )
