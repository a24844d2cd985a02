"""The 835's third match rule: a CLP whose CLP01 (our CLM01) and CLP07 (the payer's claim control number)
find no claim of the practice is matched by its patient, date of service and billed amount.

The patient: the member id the CLP names (NM1*QC NM109, else the insured's NM1*IL NM109) looked up through
the coverage's blind index (``member_id`` HMAC: no member id is decrypted to find it), and the patient's name
checked against NM1*QC (family name equal, given names equal or one the other's start, as payers truncate):
only the few candidate patients' names are opened, and that read is audited. The date of service: the claim
statement date (DTM*232), else the earliest line date (DTM*472/150). The billed amount: CLP03 against the
claim's total charge (CLM02). Only a unique match is taken; none or several leave the CLP unmatched, with a
reason naming the set and the CLP's ordinal (never the patient).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from rcm.audit.events import Action
from rcm.claims.match_repository import Candidate, PatientMatchRepository
from rcm.claims.models import Claim as OurClaim
from rcm.crypto import normalise
from rcm.tenancy.scope import TenantScope
from rcm.x12.remittance_model import Claim

MEMBER_ID = "member_id"  # the coverage's blind-index kind
PATIENT = "patient"


@dataclass(slots=True)
class PatientMatches:
    """Per CLP (by its ordinal in the set): the claim found, or why none was."""

    found: dict[int, OurClaim] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)


def service_date(clp: Claim) -> date | None:
    """The CLP's date of service: DTM*232, else its lines' earliest."""
    if clp.service_start is not None:
        return clp.service_start
    dates = [line.service_start for line in clp.lines if line.service_start is not None]
    return min(dates) if dates else None


def member_ids(clp: Claim) -> list[str]:
    """The member ids the CLP names: the patient's (NM1*QC), then the insured's (NM1*IL)."""
    found = [p.identifier for p in (clp.patient, clp.insured) if p is not None and p.identifier]
    return list(dict.fromkeys(found))


def _same_name(clp: Claim, family: str, given: str) -> bool:
    last, first = normalise(clp.patient.last or ""), normalise(clp.patient.first or "")
    if not last or last != normalise(family):
        return False
    given = normalise(given)
    return not first or not given or first.startswith(given) or given.startswith(first)


async def by_patient(
    scope: TenantScope, clps: Sequence[tuple[int, Claim]], *, set_control: str
) -> PatientMatches:
    """The claims of ``clps`` (ordinal, CLP) found by patient + date of service + billed amount, locked;
    the others with the reason they stay unmatched."""
    result = PatientMatches()
    keyring = scope.keyring
    wanted: list[tuple[int, Claim, set[bytes], date]] = []
    for ordinal, clp in clps:
        where = f"set {set_control} CLP {ordinal}"
        ids, dos = member_ids(clp), service_date(clp)
        if not ids or dos is None:
            missing = "member id (NM1*QC/IL NM109)" if not ids else "date of service (DTM)"
            result.reasons[ordinal] = f"{where}: no claim has its CLP01 or CLP07, and it names no {missing}"
            continue
        wanted.append((ordinal, clp, {keyring.blind_index(MEMBER_ID, i) for i in ids}, dos))
    if not wanted:
        return result
    repo = scope.repo(PatientMatchRepository)
    candidates = await repo.candidates(
        {index for _, _, indexes, _ in wanted for index in indexes},
        {dos for *_, dos in wanted},
        {clp.charge for _, clp, _, _ in wanted},
    )
    opener = keyring.opener(PATIENT, ("family_name", "given_name"))
    names: dict[uuid.UUID, tuple[str, str]] = {}
    for candidate in candidates:
        if candidate.patient_id not in names:
            family, given = opener.open(candidate.patient_id, [candidate.family_name, candidate.given_name])
            names[candidate.patient_id] = (family or "", given or "")
    if names:
        scope.audit(
            "claim.remittance_patient_match",
            Action.READ,
            resource_type=PATIENT,
            resource_ids=list(names),
            patient_ids=list(names),
            detail={"set": set_control, "clps": len(wanted)},
        )
    chosen: dict[int, uuid.UUID] = {}
    for ordinal, clp, indexes, dos in wanted:
        fits = _fits(clp, indexes, dos, candidates, names)
        where = f"set {set_control} CLP {ordinal}"
        if len(fits) == 1:
            chosen[ordinal] = fits[0]
        elif fits:
            result.reasons[ordinal] = (
                f"{where}: no claim has its CLP01 or CLP07, and its patient, date of service and billed"
                f" amount (CLP03) match {len(fits)} claims: left unmatched"
            )
        else:
            result.reasons[ordinal] = (
                f"{where}: no claim has its CLP01 or CLP07, nor its patient, date of service and billed"
                " amount (CLP03)"
            )
    locked = {claim.id: claim for claim in await repo.locked(set(chosen.values()))}
    for ordinal, claim_id in chosen.items():
        result.found[ordinal] = locked[claim_id]
    return result


def _fits(
    clp: Claim,
    indexes: set[bytes],
    dos: date,
    candidates: Sequence[Candidate],
    names: dict[uuid.UUID, tuple[str, str]],
) -> list[uuid.UUID]:
    fits = [
        c.claim_id
        for c in candidates
        if c.member_index in indexes
        and c.service_date == dos
        and c.charge_cents == clp.charge
        and _same_name(clp, *names[c.patient_id])
    ]
    return list(dict.fromkeys(fits))
