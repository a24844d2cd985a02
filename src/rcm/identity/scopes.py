"""The scope vocabulary, in one place, and the scopes each role may carry.

A token's scopes are the intersection of what was asked for and what the caller may have: an API client's
registered scopes, or a person's role scopes. Routes name the scopes they need with ``requires_scopes``.
"""

from __future__ import annotations

from collections.abc import Iterable

from rcm.identity.principal import Role
from rcm.identity.vocabulary import Scope

__all__ = ["ALL_SCOPES", "ROLE_SCOPES", "Scope", "parse_scopes", "scopes_for_roles"]

# Short names for route declarations (``requires_scopes(PATIENTS_READ)``); each is the enum member.
PATIENTS_READ = Scope.PATIENTS_READ
PATIENTS_WRITE = Scope.PATIENTS_WRITE
ENCOUNTERS_READ = Scope.ENCOUNTERS_READ
ENCOUNTERS_WRITE = Scope.ENCOUNTERS_WRITE
CODING_WRITE = Scope.CODING_WRITE
CLAIMS_READ = Scope.CLAIMS_READ
CLAIMS_WRITE = Scope.CLAIMS_WRITE
PAYMENTS_READ = Scope.PAYMENTS_READ
PAYMENTS_WRITE = Scope.PAYMENTS_WRITE
PATIENT_PAYMENTS_WRITE = Scope.PATIENT_PAYMENTS_WRITE
REPORTS_READ = Scope.REPORTS_READ
STAFF_MANAGE = Scope.STAFF_MANAGE
AUDIT_READ = Scope.AUDIT_READ
ADMIN = Scope.ADMIN

ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """The scopes among strings from a token or a row; a string naming no scope grants nothing."""
    return frozenset(Scope(v) for v in values if v in Scope._value2member_map_)


# What a practice's system may be registered for (the default set of a new client).
PRACTICE_CLIENT_SCOPES: frozenset[Scope] = frozenset(
    {PATIENTS_READ, PATIENTS_WRITE, ENCOUNTERS_READ, ENCOUNTERS_WRITE, CLAIMS_READ, PATIENT_PAYMENTS_WRITE}
)

_CODER = frozenset({PATIENTS_READ, ENCOUNTERS_READ, ENCOUNTERS_WRITE, CODING_WRITE})
_BILLER = frozenset(
    {PATIENTS_READ, ENCOUNTERS_READ, CLAIMS_READ, CLAIMS_WRITE, PAYMENTS_READ, PAYMENTS_WRITE}
)

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.PRACTICE_CLIENT: PRACTICE_CLIENT_SCOPES,
    # Owners see reports and claim status; no patient-level PHI beyond what reports need.
    Role.PRACTICE_OWNER: frozenset({REPORTS_READ, CLAIMS_READ}),
    Role.CODER: _CODER,
    Role.BILLER: _BILLER,
    Role.SUPERVISOR: _CODER | _BILLER | {REPORTS_READ, STAFF_MANAGE},
    # Auditors read the access log and change nothing.
    Role.AUDITOR: frozenset({AUDIT_READ}),
    Role.ADMIN: frozenset({ADMIN}),
    # Operators read reports (aggregates) across practices; no patient, claim or queue access.
    Role.OPERATOR: frozenset({REPORTS_READ}),
}


def scopes_for_roles(roles: frozenset[Role]) -> frozenset[Scope]:
    out: frozenset[Scope] = frozenset()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())
    return out
