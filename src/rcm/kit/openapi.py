"""The OpenAPI document, finished from the route table so that every route — today's and the ones added
later — comes out right without anyone editing it by hand.

Litestar writes each operation from its handler's signature and its declared ``responses``. What it cannot
know is decided here, once, from facts of the route table:

- security: every operation needs a bearer token unless its handler is public (``opt``), which says so
  with an empty ``security``; the OAuth2 scopes its guards demand are listed in its requirement;
- errors: the problem documents a route can answer follow from its shape — every route can be rate
  limited (429, the per-address limit runs before anything else); a non-public one answers 401, a guarded
  one 403, one with path parameters 404, one with input 400 and 422, one with a body 413 and 415. What a
  handler declares itself is kept (the token endpoint's RFC 6749 errors, a 409);
- the headers every answer carries (X-Request-ID, the RateLimit-* fields, Retry-After on a 429,
  Idempotent-Replayed where an Idempotency-Key is taken), and headers that are required although the
  handler's signature makes them optional so that their absence is our own 422 naming them;
- a handler that reads its own form (``opt[FORM_BODY_OPT]``, a msgspec Struct) gets that form documented;
- an enum written inline in several places becomes one component, so a generated client has one class for
  it instead of one per place;
- no generated examples: litestar invents random ones for declared responses, different on every start and
  often invalid for the schema (a date-time that is not one), which help no client.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from rcm.kit.errors import PROBLEM_JSON, Problem

# Handler opt key: the msgspec Struct of an application/x-www-form-urlencoded body the handler reads itself.
FORM_BODY_OPT = "form_body"
# A guard may carry the OAuth2 scopes it requires under this attribute; they go into the operation's security.
GUARD_SCOPES_ATTR = "openapi_scopes"
# ... or alternatives, any one of which is enough: the operation lists one security requirement for each.
GUARD_SCOPE_CHOICES_ATTR = "openapi_scope_choices"
_REF = "#/components/schemas/{name}"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_PROBLEMS = {
    400: "Malformed request: a body that is not JSON or too deeply nested, an unknown or repeated parameter",
    401: "No valid bearer token (see WWW-Authenticate)",
    403: "The token's role, scopes or second factor do not allow this",
    404: "Not found, or not visible to you (the same answer for both)",
    409: "Conflicts with an existing record or a concurrent request",
    413: "Request body over the size limit",
    415: "The body is not JSON (Content-Type)",
    422: "Invalid fields or headers, each named by JSON pointer or name; nothing was written",
    429: "Rate limit reached; retry after Retry-After seconds",
}


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": schema}


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": _header(
        "The request's id (the caller's own when it sent a sane one); audit events record the same id.",
        {"type": "string"},
    ),
    "RateLimit-Limit": _header("Requests allowed in the caller's window.", {"type": "integer"}),
    "RateLimit-Remaining": _header("Requests left in the caller's window.", {"type": "integer"}),
    "RateLimit-Reset": _header("Seconds until the window frees its slots.", {"type": "integer"}),
    "RateLimit-Policy": _header("The window's quota and length, e.g. `600;w=60`.", {"type": "string"}),
    "Retry-After": _header("Seconds to wait before retrying.", {"type": "integer"}),
    "Idempotent-Replayed": _header(
        "`true` when this is the stored first response to a retry with the same Idempotency-Key.",
        {"type": "string", "enum": ["true"]},
    ),
    "WWW-Authenticate": _header("The Bearer challenge (RFC 6750), with the error code.", {"type": "string"}),
}
_RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


@dataclass(frozen=True, slots=True)
class OpenAPIPolicy:
    """What the route table cannot say by itself, given by the app."""

    public_opt_key: str
    # Header parameters handlers take as optional (so a missing one is our 422 naming it) but that clients
    # must send; where one is taken, its replay header is documented on the success answers.
    required_headers: frozenset[str] = frozenset()
    replay_header: str | None = None
    security_schemes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    security: Sequence[Mapping[str, Sequence[str]]] = ()
    # The scheme (of ``security``) whose requirement lists the scopes a route's guards demand.
    scoped_scheme: str | None = None


def no_generated_examples(app: Litestar) -> None:
    """Turn off litestar's random examples for declared responses (``ResponseSpec.generate_examples``
    defaults to on). Run before the document is first built."""
    for handler in _handlers(app):
        if handler.responses:
            handler.responses = {
                code: dataclasses.replace(spec, generate_examples=False)
                for code, spec in handler.responses.items()
            }


def finish_openapi(app: Litestar, policy: OpenAPIPolicy) -> dict[str, Any]:
    """Build the document once and finish it in place: litestar serves the dict it cached, so the served
    document is the finished one. Returns it."""
    no_generated_examples(app)
    document: dict[str, Any] = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_struct_schemas(schemas, Problem)
    components["headers"] = dict(HEADERS)
    if policy.security_schemes:
        components["securitySchemes"] = {k: dict(v) for k, v in policy.security_schemes.items()}
        document["security"] = [{k: list(v) for k, v in req.items()} for req in policy.security]
    operations = list(_operations(app, document))
    for operation, handler, _ in operations:
        _finish_operation(operation, handler, policy, schemas)
    _name_operations(operations)
    _hoist_enums(document)
    _drop_unused_headers(document)
    return document


def _operations(
    app: Litestar, document: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], HTTPRouteHandler, str]]:
    """(operation in the document, its handler, its method) for every documented route."""
    paths = document.get("paths", {})
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = paths.get(route.path_format or "/")
        if item is None:
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            for method in sorted(handler.http_methods):
                operation = item.get(method.lower())
                if operation is not None:
                    yield operation, handler, method.lower()


def _name_operations(operations: list[tuple[dict[str, Any], HTTPRouteHandler, str]]) -> None:
    """operationIds from the controller and the handler (``EncounterController.create`` ->
    ``encounterCreate``): what a generated client names its functions. Litestar's own id (every path
    segment spelled out) stays where a handler chose its id or two would come out the same."""
    chosen: dict[str, list[dict[str, Any]]] = {}
    for operation, handler, method in operations:
        if handler.operation_id is not None:
            continue
        # The function's qualified name is "EncounterController.create" in a controller, "create" alone.
        qualified = getattr(handler.fn, "__qualname__", handler.handler_name).split(".")
        owner = qualified[-2] if len(qualified) > 1 and qualified[-2] != "<locals>" else ""
        prefix = _snake(owner.removesuffix("Controller"))
        name = handler.handler_name.strip("_")
        parts = [prefix, name] if prefix and name != prefix else [name]
        if len(handler.http_methods) > 1:
            parts.append(method)
        chosen.setdefault(_lower_camel("_".join(parts)), []).append(operation)
    taken = {op.get("operationId") for ops in chosen.values() if len(ops) > 1 for op in ops}
    for operation_id, ops in chosen.items():
        if len(ops) == 1 and operation_id not in taken:
            ops[0]["operationId"] = operation_id


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _lower_camel(name: str) -> str:
    camel = _camel(name)
    return camel[:1].lower() + camel[1:]


def _handlers(app: Litestar) -> Iterator[HTTPRouteHandler]:
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            yield from route.route_handlers


@dataclass(frozen=True, slots=True)
class _Shape:
    """What an operation takes, which decides what it can answer."""

    public: bool
    guarded: bool
    form: bool  # reads its own form and answers in its own error format (declared by its handler)
    body: bool
    path: bool
    input: bool  # a body, a query or a header parameter
    replays: bool  # takes a required header whose replay is announced (Idempotency-Key)


def _finish_operation(
    operation: dict[str, Any], handler: HTTPRouteHandler, policy: OpenAPIPolicy, schemas: dict[str, Any]
) -> None:
    public = bool(handler.opt.get(policy.public_opt_key))
    guards = handler.resolve_guards()
    scopes = frozenset(s for guard in guards for s in getattr(guard, GUARD_SCOPES_ATTR, ()))
    choices: list[frozenset[str]] = [scopes]
    for guard in guards:
        alternatives = getattr(guard, GUARD_SCOPE_CHOICES_ATTR, ())
        if alternatives:
            choices = [chosen | alt for chosen in choices for alt in alternatives]
    if public:
        operation["security"] = []
    elif any(choices) and policy.scoped_scheme:
        security: list[dict[str, list[str]]] = []
        for chosen in choices:
            for req in policy.security:
                entry = {
                    name: sorted(chosen) if name == policy.scoped_scheme else list(needed)
                    for name, needed in req.items()
                }
                if entry not in security:
                    security.append(entry)
        operation["security"] = security
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    replays = _require_headers(parameters, policy.required_headers)
    form = handler.opt.get(FORM_BODY_OPT)
    is_form = isinstance(form, type) and issubclass(form, msgspec.Struct)
    if isinstance(form, type) and issubclass(form, msgspec.Struct):
        name = _add_struct_schemas(schemas, form)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": _REF.format(name=name)}}},
        }
    shape = _Shape(
        public=public,
        guarded=bool(guards),
        form=is_form,
        body="requestBody" in operation,
        path=any(p.get("in") == "path" for p in parameters),
        input="requestBody" in operation or any(p.get("in") in ("query", "header") for p in parameters),
        replays=replays,
    )
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # Litestar documents a 400 of its own ValidationException shape, which our error handler never sends.
    for status, response in list(responses.items()):
        if _is_litestar_validation_body(response):
            del responses[status]
    for code in sorted(_problem_statuses(shape)):
        responses.setdefault(str(code), _problem_response(code))
    for status, response in responses.items():
        _add_response_headers(status, response.setdefault("headers", {}), shape, policy)


def _require_headers(parameters: list[dict[str, Any]], required: frozenset[str]) -> bool:
    """Mark the policy's required headers required (without the null branch); whether any was there."""
    found = False
    for parameter in parameters:
        if parameter.get("in") == "header" and parameter.get("name") in required:
            parameter["required"] = True
            parameter["schema"] = _without_null(parameter.get("schema", {}))
            found = True
    return found


def _problem_statuses(shape: _Shape) -> set[int]:
    wanted = {429}  # the per-address limit runs first, on every route
    if not shape.public:
        wanted.add(401)
        if shape.guarded:
            wanted.add(403)
    if shape.path:
        wanted.add(404)
    if shape.form:
        wanted.add(400)
    elif shape.input:
        wanted |= {400, 422}
    if shape.body and not shape.form:
        wanted |= {413, 415}
    return wanted


def _add_response_headers(code: str, headers: dict[str, Any], shape: _Shape, policy: OpenAPIPolicy) -> None:
    names = ["X-Request-ID"]
    if code == "429":
        names += ["Retry-After", *_RATE_HEADERS]
    elif code == "401":
        names.append("WWW-Authenticate")
    elif code.startswith("2"):
        if not shape.public:  # the per-caller window's headers; public routes have none
            names += _RATE_HEADERS
        if shape.replays and policy.replay_header:
            names.append(policy.replay_header)
    for name in names:
        headers[name] = {"$ref": f"#/components/headers/{name}"}


def _problem_response(code: int) -> dict[str, Any]:
    return {
        "description": _PROBLEMS.get(code, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(name=Problem.__name__)}}},
    }


def _is_litestar_validation_body(response: Mapping[str, Any]) -> bool:
    for media in (response.get("content") or {}).values():
        schema = media.get("schema") or {}
        if schema.get("description") == "Validation Exception" and "status_code" in schema.get(
            "properties", {}
        ):
            return True
    return False


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``str | None`` as litestar writes it (oneOf with a null branch), without the null."""
    branches = schema.get("oneOf") or schema.get("anyOf")
    if branches:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
            return {**kept[0], **rest}
    return dict(schema)


def _add_struct_schemas(schemas: dict[str, Any], struct: type[msgspec.Struct]) -> str:
    """Add a Struct's schema (and those it refers to) as components unless already there; its name."""
    (_,), components = msgspec.json.schema_components([struct], ref_template=_REF)
    for name, schema in components.items():
        schemas.setdefault(name, schema)
    return struct.__name__


# --- one component per enum ------------------------------------------------------------------------------


def _enum_body(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The enum's own schema (no null) and whether this place also allows null: litestar writes an optional
    enum as ``type: [null, string]`` with ``None`` among the values."""
    values = [v for v in schema["enum"] if v is not None]
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    nullable = len(values) != len(schema["enum"]) or "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    body: dict[str, Any] = {"enum": values}
    if kinds:
        body["type"] = kinds[0] if len(kinds) == 1 else kinds
    return body, nullable


def _hoist_enums(document: dict[str, Any]) -> None:
    """Replace an enum written inline in two or more places with a ``$ref`` to one component.

    The component's name is the owning schema's name and the property's (``Encounter`` + ``status`` =
    ``EncounterStatus``), taken from the shortest owner so it stays the same when another schema starts
    using the enum; a query parameter alone lends its own name.
    """
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    found: dict[str, list[tuple[dict[str, Any], str | None, str]]] = {}
    for schema, owner, prop in _inline_enums(document, schemas):
        key = json.dumps(_enum_body(schema)[0], sort_keys=True)
        found.setdefault(key, []).append((schema, owner, prop))
    for key, places in sorted(found.items()):
        if len(places) < 2:
            continue
        owned = sorted((len(o), o, p) for _, o, p in places if o is not None)
        name = owned[0][1] + _camel(owned[0][2]) if owned else _camel(places[0][2])
        body = json.loads(key)
        while name in schemas and schemas[name] != body:
            name += "Enum"
        schemas[name] = body
        ref = {"$ref": _REF.format(name=name)}
        for schema, _, _ in places:
            nullable = _enum_body(schema)[1]
            rest = {k: v for k, v in schema.items() if k not in ("type", "enum", "title")}
            schema.clear()
            schema.update({"oneOf": [ref, {"type": "null"}]} if nullable else dict(ref))
            schema.update(rest)


def _inline_enums(
    document: dict[str, Any], schemas: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str | None, str]]:
    """(schema, owning component or None, property or parameter name) for each inline enum."""
    for name, schema in schemas.items():
        if "enum" in schema:
            continue  # already a component of its own
        yield from _walk(schema, owner=name, prop=name)
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            for parameter in (item.get(method) or {}).get("parameters", []):
                yield from _walk(parameter.get("schema", {}), owner=None, prop=parameter.get("name", "value"))


def _walk(node: Any, *, owner: str | None, prop: str) -> Iterator[tuple[dict[str, Any], str | None, str]]:
    if isinstance(node, dict):
        if "enum" in node and "$ref" not in node:
            yield node, owner, prop
            return
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from _walk(sub, owner=owner, prop=name)
            else:
                yield from _walk(value, owner=owner, prop=prop)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, owner=owner, prop=prop)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _drop_unused_headers(document: dict[str, Any]) -> None:
    text = json.dumps(document.get("paths", {}))
    headers = document["components"]["headers"]
    for name in list(headers):
        if f'"#/components/headers/{name}"' not in text:
            del headers[name]
