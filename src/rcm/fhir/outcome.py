"""OperationOutcome: how the FHIR endpoint says what is wrong, naming the entry and element by a
FHIRPath-style expression (``Bundle.entry[3].resource.subject``). Like every error of ours it never echoes a
value that was sent (it could be PHI): it names where, and what is wrong."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rcm.kit.errors import RCMError

FHIR_JSON = "application/fhir+json"


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


class IssueType(enum.StrEnum):
    """The FHIR ``issue-type`` codes this server answers with."""

    STRUCTURE = "structure"
    INVALID = "invalid"
    REQUIRED = "required"
    VALUE = "value"
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    TOO_LONG = "too-long"
    NOT_SUPPORTED = "not-supported"
    PROCESSING = "processing"
    INFORMATIONAL = "informational"
    LOGIN = "login"
    FORBIDDEN = "forbidden"
    THROTTLED = "throttled"
    EXCEPTION = "exception"


@dataclass(frozen=True, slots=True)
class Issue:
    code: IssueType
    diagnostics: str
    expression: str | None = None
    severity: Severity = Severity.ERROR
    # The HTTP status class this issue alone would answer (400 unreadable, 422 business rule, 409 conflict).
    status: int = 422


class FhirRejected(RCMError):
    """The request is refused whole: ``status`` and every issue found. An ``RCMError``, so the request
    boundary rolls back and audits the refusal as for any other."""

    title = "FHIR bundle refused"

    def __init__(self, status: int, issues: Iterable[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__(f"The bundle was refused ({len(self.issues)} issue(s)); nothing was written.")
        self.status_code = status  # type: ignore[misc]


def overall_status(issues: Iterable[Issue]) -> int:
    """One status for several failing entries: unreadable (400) before a rule (422) before a conflict."""
    statuses = {issue.status for issue in issues if issue.severity is Severity.ERROR}
    for status in (400, 413, 422, 404, 409):
        if status in statuses:
            return status
    return max(statuses, default=422)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for issue in issues:
        item: dict[str, Any] = {
            "severity": issue.severity.value,
            "code": issue.code.value,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression:
            item["expression"] = [issue.expression]
        out.append(item)
    return {"resourceType": "OperationOutcome", "issue": out}


def informational(diagnostics: str, expression: str | None = None) -> Issue:
    return Issue(IssueType.INFORMATIONAL, diagnostics, expression, Severity.INFORMATION, 200)
