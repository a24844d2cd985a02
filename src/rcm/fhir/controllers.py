"""The FHIR R4 base, ``/fhir/r4``: a practice system POSTs a Bundle (transaction, batch or collection) with
its own token; ``GET /fhir/r4/metadata`` is the CapabilityStatement. Every refusal on this base is an
OperationOutcome (``application/fhir+json``), including the framework's own (401, 413, 429)."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from rcm import __version__
from rcm.config import Settings
from rcm.fhir import service
from rcm.fhir.outcome import FHIR_JSON, FhirRejected, Issue, IssueType, operation_outcome
from rcm.fhir.reader import read_bundle
from rcm.idempotency.service import IdemKey, check_key, run_idempotent
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.middleware import PUBLIC_OPT_KEY
from rcm.identity.principal import Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import RCMError, UnsupportedMediaType
from rcm.kit.strict import CONTENT_TYPE_POINTER, is_json_media_type
from rcm.kit.telemetry import current_trace_id
from rcm.patients.controllers import date_skew
from rcm.tenancy.dependencies import provide_home_tenant_scope
from rcm.tenancy.scope import TenantScope

BASE = "/fhir/r4"
# The resource types the intake turns into records (or reads for them); anything else is skipped.
USED_TYPES = (
    "Patient", "Coverage", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter",
    "Condition", "Procedure", "ChargeItem", "Claim", "DocumentReference",
)  # fmt: skip


class FhirResource(msgspec.Struct, kw_only=True):
    """A FHIR resource (JSON): a Bundle answering a transaction or batch, an OperationOutcome, the
    CapabilityStatement. Documented loosely here; the FHIR R4 specification defines them."""

    resourceType: str


def _outcome_specs(*statuses: int) -> dict[int, ResponseSpec]:
    described = {
        400: "Unreadable: not JSON, not a Bundle, an invalid element (OperationOutcome names it)",
        401: "No valid bearer token",
        403: "Not a practice system's token, or it lacks encounters:write",
        404: "The token's practice is not active",
        409: "Conflicts with an existing record (an MRN of another patient)",
        413: "Body over RCM_FHIR_MAX_BODY_BYTES",
        415: "Not application/fhir+json (or application/json)",
        422: "A business rule failed for one or more entries; nothing was written",
        429: "Rate limit reached; see Retry-After",
    }
    return {
        code: ResponseSpec(
            data_container=FhirResource,
            description=described[code] + " (OperationOutcome)",
            media_type=FHIR_JSON,
            generate_examples=False,
        )
        for code in statuses
    }


def fhir_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(body), status_code=status, media_type=FHIR_JSON, headers=headers or {}
    )


class FhirController(Controller):
    path = BASE
    tags = ["fhir"]

    @get(
        "/metadata",
        opt={PUBLIC_OPT_KEY: True},
        summary="The CapabilityStatement of the FHIR R4 intake",
        responses={
            200: ResponseSpec(
                data_container=FhirResource, description="CapabilityStatement", media_type=FHIR_JSON
            ),
            **_outcome_specs(429),
        },
    )
    async def metadata(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return fhir_response(200, capability_statement(request.app.state.settings))

    @post(
        "/",
        summary="Submit a FHIR R4 Bundle (transaction, batch or collection) of the token's practice",
        description=(
            "Body: a FHIR R4 Bundle as application/fhir+json (or application/json), up to "
            "RCM_FHIR_MAX_BODY_BYTES. Patient, Coverage, Practitioner, Organization, Location, Encounter, "
            "Condition, Procedure, ChargeItem, Claim and DocumentReference entries become records; other "
            "types are skipped and listed. Answers a transaction-response or batch-response Bundle."
        ),
        status_code=200,
        guards=[requires_roles(Role.PRACTICE_CLIENT), requires_scopes(Scope.ENCOUNTERS_WRITE)],
        dependencies={"tenant": Provide(provide_home_tenant_scope)},
        responses={
            200: ResponseSpec(
                data_container=FhirResource,
                description="transaction-response or batch-response Bundle, one entry per entry "
                "(201 created, 200 found or skipped); a retry with the same Idempotency-Key gets it again",
                media_type=FHIR_JSON,
            ),
            **_outcome_specs(400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
    )
    async def bundle(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        check_key(idempotency_key)
        content_type = request.headers.get("content-type")
        if content_type is None or not is_json_media_type(content_type):
            raise UnsupportedMediaType(
                "The body must be a FHIR JSON Bundle (Content-Type: application/fhir+json).",
                errors=[_field(CONTENT_TYPE_POINTER, "must be application/fhir+json or application/json")],
            )
        body = await request.body()
        # Parsing and validating is CPU work: off the event loop, entry by entry.
        parsed = await anyio.to_thread.run_sync(functools.partial(read_bundle, body))
        result: list[service.BundleResult] = []

        async def produce() -> tuple[int, dict[str, Any]]:
            done = await service.apply_bundle(tenant, parsed, skew=date_skew(request))
            result.append(done)
            return 200, done.response()

        return await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type=service.BUNDLE,
            produce=produce,
            body_fingerprint=parsed.fingerprint,
            media_type=FHIR_JSON,
            touched=lambda _: (result[0].resource_ids, result[0].patient_ids),
        )


def _field(pointer: str, detail: str) -> Any:
    from rcm.kit.errors import FieldError

    return FieldError(pointer, detail)


def capability_statement(settings: Settings) -> dict[str, Any]:
    documented = {
        "Patient": "Matched by MRN (identifier of type MR), else created; identifiers remembered.",
        "Coverage": "Payer matched to the practice's manifest by payer id or name; member id required.",
        "Practitioner": "A provider by NPI (http://hl7.org/fhir/sid/us-npi); conditional references by NPI "
        "create one.",
        "PractitionerRole": "Read for its practitioner (or its own NPI) when an encounter names it.",
        "Organization": "A billing provider by NPI; otherwise read for payer names.",
        "Location": "Read for the place of service (CMS POS code set); nothing kept.",
        "Encounter": "An encounter in the coding queue; ICD-10-CM/CPT/HCPCS carried when present, other "
        "codes (SNOMED CT, LOINC) kept as documentation for the coder.",
        "Condition": "ICD-10-CM codes become the encounter's diagnoses.",
        "Procedure": "CPT/HCPCS codes become charge lines when no claim or charge item gives them.",
        "ChargeItem": "CPT/HCPCS with its price become charge lines.",
        "Claim": "Its lines (CPT/HCPCS, price, modifiers, diagnosis pointers) and diagnoses, whatever its "
        "type.",
        "DocumentReference": "Text notes (base64) become the encounter's documentation.",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date(2026, 12, 1).isoformat(),
        "publisher": "RCM",
        "kind": "instance",
        "software": {"name": "RCM", "version": __version__},
        "implementation": {"description": "RCM FHIR R4 intake", "url": f"{settings.base_url}{BASE}"},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "POST a Bundle of type transaction (all or nothing), batch (entry by entry) or "
                    "collection (as a transaction) to the base, with an Idempotency-Key header. Body limit: "
                    f"{settings.fhir_max_body_bytes} bytes. Resource types not listed here are skipped."
                ),
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 client credentials at /oauth/token; the practice is the token's "
                    "(scope encounters:write).",
                },
                "resource": [{"type": name, "documentation": documented[name]} for name in USED_TYPES],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }


# Errors on the FHIR base: OperationOutcome instead of problem+json -------------------------------------

_CODES = {
    400: IssueType.STRUCTURE,
    401: IssueType.LOGIN,
    403: IssueType.FORBIDDEN,
    404: IssueType.NOT_FOUND,
    409: IssueType.CONFLICT,
    413: IssueType.TOO_LONG,
    415: IssueType.NOT_SUPPORTED,
    422: IssueType.INVALID,
    429: IssueType.THROTTLED,
}


def _issues_of(exc: RCMError) -> list[Issue]:
    if isinstance(exc, FhirRejected):
        return list(exc.issues)
    code = _CODES.get(exc.status_code, IssueType.PROCESSING)
    if not exc.errors:
        return [Issue(code, exc.detail, status=exc.status_code)]
    out = []
    for error in exc.errors:
        where, colon, name = error.pointer.partition(":")
        if colon and where in ("header", "query"):
            out.append(Issue(code, f"{where} {name}: {error.detail}", status=exc.status_code))
        else:
            expression = "Bundle" + error.pointer.replace("/", ".") if error.pointer else None
            out.append(Issue(code, error.detail, expression, status=exc.status_code))
    return out


def _rcm_error(_: Request[Any, Any, Any], exc: RCMError) -> Response[bytes]:
    return fhir_response(exc.status_code, _with_trace(operation_outcome(_issues_of(exc))))


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "Retry-After" not in headers:
        headers["Retry-After"] = headers.get("RateLimit-Reset", "60")
    texts = {
        401: "A valid Bearer access token is required.",
        404: "Not found.",
        413: "The body is larger than the FHIR endpoint's limit (RCM_FHIR_MAX_BODY_BYTES).",
        429: "Too many requests; retry after Retry-After seconds.",
    }
    issue = Issue(_CODES.get(exc.status_code, IssueType.PROCESSING), texts.get(exc.status_code, "Refused."),
                  "Bundle" if exc.status_code == 413 else None, status=exc.status_code)  # fmt: skip
    return fhir_response(exc.status_code, _with_trace(operation_outcome([issue])), headers)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    issue = Issue(IssueType.INVALID, "A parameter or header is invalid.", status=400)
    return fhir_response(400, _with_trace(operation_outcome([issue])))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    from rcm.kit.errors import EXCEPTION_HANDLERS

    EXCEPTION_HANDLERS[Exception](request, exc)  # logs the type, as everywhere
    issue = Issue(
        IssueType.EXCEPTION, "An unexpected error occurred; it has been logged with the trace id.", status=500
    )
    return fhir_response(500, _with_trace(operation_outcome([issue])))


def _with_trace(outcome: dict[str, Any]) -> dict[str, Any]:
    trace = current_trace_id()
    if trace:
        outcome["id"] = trace
    return outcome


def fhir_router(settings: Settings) -> Router:
    """The FHIR base with its own body limit and error format."""
    return Router(
        path="/",
        route_handlers=[FhirController],
        request_max_body_size=settings.fhir_max_body_bytes,
        exception_handlers={
            RCMError: _rcm_error,
            HTTPException: _http_error,
            ValidationException: _validation_error,
            Exception: _unexpected,
        },
    )
