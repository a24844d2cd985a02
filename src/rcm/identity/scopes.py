"""The scope vocabulary, in one place, and the scopes each role may carry.

A token's scopes are the intersection of what was asked for and what the caller may have: an API client's
registered scopes, or a person's role scopes. Routes name the scopes they need with ``requires_scopes``.
"""

from __future__ import annotations

from rcm.identity.principal import Role

PATIENTS_READ = "patients:read"
PATIENTS_WRITE = "patients:write"
ENCOUNTERS_READ = "encounters:read"
ENCOUNTERS_WRITE = "encounters:write"
CODING_WRITE = "coding:write"
CLAIMS_READ = "claims:read"
CLAIMS_WRITE = "claims:write"
PAYMENTS_READ = "payments:read"
PAYMENTS_WRITE = "payments:write"
REPORTS_READ = "reports:read"
STAFF_MANAGE = "staff:manage"
AUDIT_READ = "audit:read"
ADMIN = "admin"

ALL_SCOPES: frozenset[str] = frozenset(
    {
        PATIENTS_READ,
        PATIENTS_WRITE,
        ENCOUNTERS_READ,
        ENCOUNTERS_WRITE,
        CODING_WRITE,
        CLAIMS_READ,
        CLAIMS_WRITE,
        PAYMENTS_READ,
        PAYMENTS_WRITE,
        REPORTS_READ,
        STAFF_MANAGE,
        AUDIT_READ,
        ADMIN,
    }
)

# What a practice's system may be registered for (the default set of a new client).
PRACTICE_CLIENT_SCOPES: frozenset[str] = frozenset(
    {PATIENTS_READ, PATIENTS_WRITE, ENCOUNTERS_READ, ENCOUNTERS_WRITE, CLAIMS_READ}
)

_CODER = frozenset({PATIENTS_READ, ENCOUNTERS_READ, ENCOUNTERS_WRITE, CODING_WRITE})
_BILLER = frozenset(
    {PATIENTS_READ, ENCOUNTERS_READ, CLAIMS_READ, CLAIMS_WRITE, PAYMENTS_READ, PAYMENTS_WRITE}
)

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.PRACTICE_CLIENT: PRACTICE_CLIENT_SCOPES,
    # Owners see reports and claim status; no patient-level PHI beyond what reports need.
    Role.PRACTICE_OWNER: frozenset({REPORTS_READ, CLAIMS_READ}),
    Role.CODER: _CODER,
    Role.BILLER: _BILLER,
    Role.SUPERVISOR: _CODER | _BILLER | {REPORTS_READ, STAFF_MANAGE},
    # Auditors read the access log and change nothing.
    Role.AUDITOR: frozenset({AUDIT_READ}),
    Role.ADMIN: frozenset({ADMIN}),
}


def scopes_for_roles(roles: frozenset[Role]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())
    return out
