"""Typed errors with their HTTP status, rendered as RFC 9457 problem documents.

Bodies never echo input values (they could be PHI): an error names the field by JSON pointer and says what
is wrong with it, never what was sent. Every body carries the request's trace id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.utils.scope.state import ScopeState
from sqlalchemy.exc import DBAPIError

from rcm.kit.telemetry import current_trace_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class FieldError:
    pointer: str  # RFC 6901 JSON pointer into the request body ("" = the whole body)
    detail: str


class RCMError(Exception):
    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = tuple(errors)


class InvalidInput(RCMError):
    status_code = 422
    title = "Invalid input"


class MalformedBody(RCMError):
    status_code = 400
    title = "Malformed request body"


class UnknownParameter(RCMError):
    status_code = 400
    title = "Unknown query parameter"


class NotAuthenticated(RCMError):
    status_code = 401
    title = "Not authenticated"


class Forbidden(RCMError):
    status_code = 403
    title = "Forbidden"


class NotFound(RCMError):
    """Not found and not yours are the same answer, with the same body."""

    status_code = 404
    title = "Not found"

    def __init__(self) -> None:
        super().__init__("The resource does not exist or is not visible to you.")


class Conflict(RCMError):
    status_code = 409
    title = "Conflict"


class IdempotencyMismatch(RCMError):
    status_code = 422
    title = "Idempotency-Key reused with a different request"


class PayloadTooLarge(RCMError):
    status_code = 413
    title = "Payload too large"


class UnsupportedMediaType(RCMError):
    status_code = 415
    title = "Unsupported media type"


class ServiceUnavailable(RCMError):
    status_code = 503
    title = "Service unavailable"


class FieldProblem(msgspec.Struct):
    pointer: str
    detail: str


class Problem(msgspec.Struct):
    """RFC 9457 problem document: what every error answers, in the OpenAPI too."""

    type: str
    title: str
    status: int
    detail: str
    trace_id: str
    errors: list[FieldProblem] | None = None


_DESCRIPTIONS = {
    400: "Malformed request (not JSON, nested too deep, unknown query parameter)",
    401: "No valid bearer token",
    403: "The token's role or scopes do not allow this",
    404: "Not found, or not visible to you (the same answer for both)",
    409: "Conflicts with an existing record or a concurrent request",
    413: "Request body over the size limit",
    415: "The body is not JSON (Content-Type names the header)",
    422: "Invalid fields, each named by JSON pointer; nothing was written",
    429: "Rate limit reached; see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer (all problem+json)."""
    codes = statuses or (400, 401, 403, 404, 422, 429)
    return {
        code: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS[code], media_type=PROBLEM_JSON)
        for code in codes
    }


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: Iterable[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    errs = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    if errs:
        body["errors"] = errs
    body["trace_id"] = current_trace_id()
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _pointer(path: Iterable[object]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


_VALIDATORS: dict[type[Any], Draft202012Validator] = {}


def _validator(struct_type: type[Any]) -> Draft202012Validator:
    validator = _VALIDATORS.get(struct_type)
    if validator is None:
        schema = msgspec.json.schema(struct_type)
        validator = _VALIDATORS[struct_type] = Draft202012Validator(schema, format_checker=FormatChecker())
    return validator


def schema_errors(struct_type: type[Any], document: object) -> list[FieldError]:
    """Every place where ``document`` breaks ``struct_type``'s JSON schema (msgspec stops at the first)."""
    out: list[FieldError] = []
    for error in _leaf_errors(_validator(struct_type).iter_errors(document)):
        pointer = _pointer(error.absolute_path)
        if error.validator == "required":
            # jsonschema reports a missing property at the parent; point at the property itself.
            missing = str(error.message).split("'")[1] if "'" in str(error.message) else ""
            out.append(FieldError(f"{pointer}/{missing}", "is required"))
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            # Name each unknown field by its own pointer, not its parent's.
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            out.extend(
                FieldError(_pointer([*error.absolute_path, key]), "is not a known field")
                for key in error.instance
                if key not in known
            )
        else:
            out.append(FieldError(pointer, _describe(error.validator, error.validator_value)))
    return sorted(set(out), key=lambda e: e.pointer)


def _leaf_errors(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    """Look through ``anyOf``/``oneOf`` (how optional and union fields are written) to the branch the value
    was meant for: the one that did not fail on the value's type at the value itself."""
    for error in errors:
        if error.validator not in ("anyOf", "oneOf") or not error.context:
            yield error
            continue
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [
            subs
            for subs in branches.values()
            if not any(s.validator == "type" and not s.relative_path for s in subs)
        ]
        if len(meant) == 1:
            yield from _leaf_errors(meant[0])
        else:
            yield error


def _describe(validator: object, expected: object) -> str:
    texts = {
        "type": f"must be of type {expected}",
        "minLength": f"must have at least {expected} characters",
        "maxLength": f"must have at most {expected} characters",
        "minimum": f"must be at least {expected}",
        "maximum": f"must be at most {expected}",
        "exclusiveMinimum": f"must be greater than {expected}",
        "pattern": f"must match the pattern {expected}",
        "enum": f"must be one of {expected}",
        "format": f"must be a valid {expected}",
        "minItems": f"must have at least {expected} items",
        "maxItems": f"must have at most {expected} items",
    }
    return texts.get(str(validator), f"fails the {validator} constraint")


def _handle_rcm_error(_: Request[Any, Any, Any], exc: RCMError) -> Response[dict[str, Any]]:
    return problem(exc.status_code, exc.title, exc.detail, errors=exc.errors)


def _handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """Litestar's msgspec decoding stops at the first bad field: re-check the body to name them all."""
    struct_type = _body_type(request)
    raw = ScopeState.from_scope(request.scope).body
    if struct_type is not None and isinstance(raw, bytes):
        try:
            document = json.loads(raw)
        except ValueError:
            return problem(
                400, MalformedBody.title, "The body is not valid JSON.", errors=[FieldError("", "not JSON")]
            )
        errors = schema_errors(struct_type, document)
        if errors:
            return problem(422, InvalidInput.title, "The request body has invalid fields.", errors=errors)
    # Query/path parameters, or a constraint the schema cannot express: litestar names the key.
    extra = exc.extra if isinstance(exc.extra, list) else []
    fields = [_parameter_error(e, request) for e in extra if isinstance(e, dict)]
    return problem(
        400 if not fields else 422, InvalidInput.title, "The request has invalid fields.", errors=fields
    )


def _parameter_error(error: dict[str, Any], request: Request[Any, Any, Any]) -> FieldError:
    """A parameter is named by where it travels ("query:limit", "header:X"); a body field by JSON pointer."""
    raw_source = error.get("source", "")
    key, source = str(error.get("key", "")), str(getattr(raw_source, "value", raw_source))
    message = str(error.get("message", "invalid"))
    if not source and key in request.query_params:
        source = "query"  # Litestar leaves the source out when it collects several errors
    if source in ("query", "header", "cookie", "path") and key:
        return FieldError(f"{source}:{key}", message)
    return FieldError(_msgspec_pointer(key), message)


def _msgspec_pointer(key: str) -> str:
    # msgspec paths look like "$.charges[0].units"; litestar keys are plain parameter names.
    if not key.startswith("$"):
        return f"/{key}" if key else ""
    return key[1:].replace("[", ".").replace("]", "").replace(".", "/")


def _body_type(request: Request[Any, Any, Any]) -> type[Any] | None:
    handler = request.scope.get("route_handler")
    if handler is None:
        return None
    field = handler.parsed_fn_signature.parameters.get("data")
    annotation = getattr(field, "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) else None


def _handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "Retry-After" not in headers:
        # Litestar's rate limiter sends RateLimit-Reset (seconds until the window frees a slot).
        headers["Retry-After"] = headers.get("RateLimit-Reset", "60")
    title = {413: PayloadTooLarge.title, 429: "Too many requests", 404: NotFound.title}.get(
        exc.status_code, exc.detail
    )
    detail = NotFound().detail if exc.status_code == 404 else exc.detail
    return problem(
        exc.status_code, title, detail, headers=headers, errors=_HTTP_NAMES.get(exc.status_code, ())
    )


# What the framework's own refusals are about, so these bodies name it too.
_HTTP_NAMES: dict[int, tuple[FieldError, ...]] = {
    401: (FieldError("header:Authorization", "must carry a valid Bearer access token"),),
    413: (FieldError("", "is larger than the size limit"),),
}


def _sqlstate(exc: DBAPIError) -> str:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return ""


def _handle_database(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[dict[str, Any]]:
    """Database refusals behind the schemas. The driver's message quotes values, so none of it is echoed;
    the transaction was rolled back whole either way."""
    state = _sqlstate(exc)
    if state.startswith("23"):  # integrity: a unique or foreign-key race with a concurrent request
        log.info("integrity conflict", extra={"error_type": state})
        return problem(
            409,
            Conflict.title,
            "The request conflicts with a concurrent change; nothing was written. Retry it.",
        )
    if state.startswith("22"):  # data exception: a NUL in text, a number out of range...
        log.info("data error", extra={"error_type": state})
        return problem(
            422, InvalidInput.title, "A value in the request cannot be stored (for example a NUL character)."
        )
    return _handle_unexpected(request, exc)


def _handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # Log the type only: exception messages can carry values from the request.
    log.error("unhandled error", extra={"error_type": type(exc).__name__}, exc_info=False)
    return problem(
        500, "Internal error", "An unexpected error occurred; it has been logged with the trace id."
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    RCMError: _handle_rcm_error,
    ValidationException: _handle_validation,
    HTTPException: _handle_http,
    DBAPIError: _handle_database,
    Exception: _handle_unexpected,
}
