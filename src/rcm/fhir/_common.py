"""What the intake's parts share: an entry's answer, its failure, what it became."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from rcm.fhir.models import LinkedType, TargetType
from rcm.fhir.outcome import Issue, IssueType
from rcm.fhir.reader import BundleMode, Entry

BUNDLE = "fhir_bundle"
LINKED = {
    "Patient": LinkedType.PATIENT,
    "Coverage": LinkedType.COVERAGE,
    "Practitioner": LinkedType.PRACTITIONER,
    "Organization": LinkedType.ORGANIZATION,
    "Encounter": LinkedType.ENCOUNTER,
}
STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    404: "404 Not Found",
    409: "409 Conflict",
    422: "422 Unprocessable Entity",
    424: "424 Failed Dependency",
}
MAX_CHARGE_LINES = 50
MAX_DIAGNOSES = 12
MAX_DOCUMENTATION = 200_000  # characters, as the JSON intake's documentation


@dataclass(slots=True)
class EntryResult:
    index: int
    resource_type: str
    status: int
    location: str | None = None
    issues: list[Issue] = field(default_factory=list)


class EntryFailed(Exception):
    def __init__(self, *issues: Issue) -> None:
        super().__init__(len(issues))
        self.issues = list(issues)


def fail_with(code: IssueType, diagnostics: str, expression: str | None, status: int = 422) -> EntryFailed:
    return EntryFailed(Issue(code, diagnostics, expression, status=status))


@dataclass(slots=True)
class Target:
    kind: TargetType | None  # None: understood, nothing stored (a Practitioner without an NPI, a Location)
    id: uuid.UUID | None
    created: bool
    patient_id: uuid.UUID | None = None


@dataclass(slots=True)
class Pending:
    """An encounter's own entry and everything in the bundle that points at it."""

    conditions: list[Entry] = field(default_factory=list)
    procedures: list[Entry] = field(default_factory=list)
    charge_items: list[Entry] = field(default_factory=list)
    claims: list[Entry] = field(default_factory=list)
    documents: list[Entry] = field(default_factory=list)

    def all(self) -> list[Entry]:
        return [*self.conditions, *self.procedures, *self.charge_items, *self.claims, *self.documents]


@dataclass(slots=True)
class BundleResult:
    bundle_type: str
    mode: BundleMode
    entries: list[EntryResult]
    resource_ids: list[uuid.UUID]
    patient_ids: list[uuid.UUID]

    @property
    def created(self) -> int:
        return sum(1 for e in self.entries if e.status == 201)

    @property
    def failed(self) -> int:
        return sum(1 for e in self.entries if e.status >= 400)

    @property
    def skipped(self) -> list[int]:
        return [e.index for e in self.entries if e.location is None and e.status == 200]

    def response(self) -> dict[str, Any]:
        """The transaction-response (or batch-response) Bundle."""
        kind = "batch-response" if self.mode is BundleMode.BATCH else "transaction-response"
        entries = []
        for entry in self.entries:
            response: dict[str, Any] = {"status": STATUS_TEXT.get(entry.status, str(entry.status))}
            if entry.location:
                response["location"] = entry.location
            if entry.issues:
                response["outcome"] = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": i.severity.value,
                            "code": i.code.value,
                            "diagnostics": i.diagnostics,
                            **({"expression": [i.expression]} if i.expression else {}),
                        }
                        for i in entry.issues
                    ],
                }
            entries.append({"response": response})
        return {"resourceType": "Bundle", "type": kind, "entry": entries}
