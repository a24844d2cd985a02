"""Strict input for every route, whoever writes it: the checks run from what the route declares.

Litestar converts bodies and parameters in msgspec's lax mode, which coerces: ``"125.00"`` became 125 cents,
``"true"`` a boolean. Nothing is coerced here. Before a handler runs (after authentication and guards),
this hook:

- refuses query parameters the route does not declare (400 naming each one), so a misspelt filter is not
  silently ignored and answered with the unfiltered list, and integer or boolean parameters whose text is not
  plainly one (``limit=5.0``, ``limit=1e1``: 422);
- for a route with a JSON body, refuses a Content-Type that is not JSON (415 naming the header);
- refuses JSON nested deeper than ``MAX_JSON_DEPTH`` (400 naming the limit) with a byte scan, before any
  parser recurses (1,000 levels used to be a RecursionError and a 500);
- decodes the body in msgspec's strict mode against the route's own body type: a string or float where an
  integer is declared, a boolean for a number, an unknown field, a date that is not a full ISO date are 422s
  naming every bad field by JSON pointer;
- refuses dates before ``EARLIEST_DATE`` anywhere in a body (typed ``date``).

The route's declarations (its signature and its dependencies', as Litestar's own kwargs model sees them) are
the only source, so a route added tomorrow is covered the day it lands.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.params import BodyKwarg
from litestar.types import Scope

from rcm.kit.errors import (
    FieldError,
    InvalidInput,
    MalformedBody,
    UnknownParameter,
    UnsupportedMediaType,
    schema_errors,
)

MAX_JSON_DEPTH = 64
# No date of service, birth or coverage in this business is older; earlier ones are typos ("0980-02-29").
EARLIEST_DATE = date(1900, 1, 1)
# A strict decode reads dates only from strings ("YYYY-MM-DD..."): a body with no string starting with a
# year before 1900 (and no \u escape, which could spell one) holds no date before EARLIEST_DATE, and is not
# walked for one.
_MAY_HOLD_EARLY_DATE = re.compile(rb'"(?:0[0-9]{3}|1[0-8][0-9]{2})-|\\u')
CONTENT_TYPE_POINTER = "header:Content-Type"
# JSON strings (with their escapes) are skipped whole: brackets inside them are text, not structure.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]*)`")


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``raw`` nests arrays/objects deeper than ``limit``. A scan, not a parse: nothing recurses."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the usual body: too few openers to nest that deep, whatever the strings hold
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        if match.group() in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


@dataclass(frozen=True, slots=True)
class QueryDeclaration:
    names: frozenset[str] | None  # None: the route takes any parameter (it reads ``query`` whole)
    # Parameters whose text must be a plain integer or boolean: Litestar's lax conversion would read
    # "5.0" and "1e1" as integers and "1" as true.
    shapes: dict[str, re.Pattern[str]]


_INTEGER = re.compile(r"^-?[0-9]+$")
_BOOLEAN = re.compile(r"^(true|false)$")


def query_declaration(handler: HTTPRouteHandler, path_names: frozenset[str]) -> QueryDeclaration:
    """What ``handler`` declares about its query (its own parameters and its dependencies'), cached."""
    key = (handler, path_names)
    cached = _DECLARED.get(key)
    if cached is not None:
        return cached
    model = handler.create_kwargs_model(path_parameters=dict.fromkeys(path_names))  # type: ignore[arg-type]
    aliases = {p.field_name: p.field_alias for p in model.expected_query_params}
    fields = dict(handler.parsed_fn_signature.parameters)
    for provide in handler.resolve_dependencies().values():
        parsed = getattr(provide, "parsed_fn_signature", None)
        fields.update(parsed.parameters if parsed is not None else {})
    shapes: dict[str, re.Pattern[str]] = {}
    for name, alias in aliases.items():
        field = fields.get(name)
        members = (
            [t for t in (field.inner_types if field.is_union else (field,)) if not t.is_none_type]
            if field
            else []
        )
        if members and all(t.is_subclass_of(bool) for t in members):
            shapes[alias] = _BOOLEAN
        elif members and all(t.is_subclass_of(int) and not t.is_subclass_of(bool) for t in members):
            shapes[alias] = _INTEGER
    names = None if "query" in model.expected_reserved_kwargs else frozenset(aliases.values())
    declaration = _DECLARED[key] = QueryDeclaration(names, shapes)
    return declaration


_DECLARED: dict[tuple[HTTPRouteHandler, frozenset[str]], QueryDeclaration] = {}


def query_errors(scope: Scope, handler: HTTPRouteHandler) -> tuple[list[FieldError], list[FieldError]]:
    """Unknown query parameters (400), and declared ones whose text is not plainly their type (422)."""
    sent = _query_pairs(scope)
    if not sent:
        return [], []
    declared = query_declaration(handler, frozenset(scope.get("path_params") or ()))
    unknown = sorted({name for name, _ in sent} - declared.names) if declared.names is not None else []
    # A parameter given twice would be read as one of its values, silently (no query parameter is a list).
    counts = Counter(name for name, _ in sent)
    repeated = sorted({name for name, n in counts.items() if n > 1} - set(unknown))
    malformed = [
        FieldError(f"query:{name}", "must be " + ("true or false" if shape is _BOOLEAN else "an integer"))
        for name, value in sent
        if (shape := declared.shapes.get(name)) is not None and not shape.match(value)
    ]
    malformed += [FieldError(f"query:{name}", "is given more than once") for name in repeated]
    return [FieldError(f"query:{name}", "is not a parameter of this route") for name in unknown], malformed


def _query_pairs(scope: Scope) -> list[tuple[str, str]]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return parse_qsl(raw, keep_blank_values=True, errors="replace")


def json_body_type(handler: HTTPRouteHandler) -> tuple[Any, bool] | None:
    """The type of the route's JSON body and whether the body is required; None = no JSON body."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    kwarg = field.kwarg_definition
    media = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    if media != RequestEncodingType.JSON:
        return None
    return field.annotation, not (field.has_default or field.is_optional)


def is_json_media_type(value: str) -> bool:
    media, _, params = value.partition(";")
    if not _JSON_MEDIA.match(media.strip().lower()):
        return False
    # RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
    charset = re.search(r"charset\s*=\s*\"?([\w-]+)", params, re.IGNORECASE)
    return charset is None or charset.group(1).lower() in ("utf-8", "utf8")


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the first key it met twice."""

    repeated: str | None = None


def _first_repeat(pairs: list[tuple[str, Any]]) -> str | None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _repeated_key(value: object, pointer: str) -> str | None:
    """The pointer of the first key repeated inside an object of ``value`` (depth is bounded by now)."""
    if isinstance(value, _Object):
        if value.repeated is not None:
            return f"{pointer}/{_escape(value.repeated)}"
        children: Iterator[tuple[str, object]] = ((f"{pointer}/{_escape(k)}", v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{pointer}/{i}", v) for i, v in enumerate(value))
    else:
        return None
    for child_pointer, child in children:
        found = _repeated_key(child, child_pointer)
        if found is not None:
            return found
    return None


def duplicate_key_errors(raw: bytes) -> list[FieldError]:
    """A key given twice in one object: JSON parsers keep one of them silently, so it is refused (RFC 8259
    §4 leaves the behaviour open; we take neither)."""
    if raw.count(b":") < 2:
        return []
    repeats = False

    def remember(pairs: list[tuple[str, Any]]) -> _Object:
        # An object with fewer keys than pairs repeats one: only then is the document walked for the
        # pointer (a body without repeats, nearly every body, costs one C-level dict per object).
        nonlocal repeats
        found = _Object(pairs)
        if len(found) != len(pairs):
            repeats = True
            found.repeated = _first_repeat(pairs)
        return found

    try:
        document = json.loads(raw, object_pairs_hook=remember)
    except (ValueError, RecursionError):
        return []  # not JSON: the strict decode names that
    pointer = _repeated_key(document, "") if repeats else None
    return [FieldError(pointer, "is given more than once")] if pointer is not None else []


def body_errors(body_type: Any, raw: bytes) -> list[FieldError]:
    """Strict decode of ``raw`` as ``body_type``: every coerced, unknown or implausible field, by pointer."""
    return strict_decode(body_type, raw)[1]


def strict_decode(body_type: Any, raw: bytes) -> tuple[Any, list[FieldError]]:
    """``body_errors``, and the decoded value when there are none (a caller that needs it decodes once)."""
    repeated = duplicate_key_errors(raw)
    if repeated:
        return None, repeated
    try:
        value = msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        # A typed decode stops at the first wrong type, before it has seen whether the rest is JSON at all.
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise _not_json() from None
        return None, _named_errors(body_type, document, exc)
    except msgspec.DecodeError:
        raise _not_json() from None
    if not _MAY_HOLD_EARLY_DATE.search(raw):
        return value, []
    early = [
        FieldError(pointer, f"must not be before {EARLIEST_DATE.isoformat()}")
        for pointer, day in _dates(value, "")
        if day < EARLIEST_DATE
    ]
    return (None, early) if early else (value, [])


def _not_json() -> MalformedBody:
    return MalformedBody("The body is not valid JSON.", errors=[FieldError("", "is not JSON")])


def _named_errors(body_type: Any, document: object, exc: msgspec.ValidationError) -> list[FieldError]:
    # msgspec stops at the first error; the JSON schema names them all (the depth is bounded by now).
    struct_type = _struct_of(body_type)
    if struct_type is not None:
        errors = schema_errors(struct_type, document)
        if errors:
            return errors
    # What the schema cannot see (an integral float such as 12.0 for an integer): msgspec's own path.
    found = _MSGSPEC_PATH.match(str(exc))
    message, path = (found.group("message"), found.group("path") or "$") if found else (str(exc), "$")
    pointer = _msgspec_pointer(path)
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        return [FieldError(f"{pointer}/{_escape(unknown.group('name'))}", "is not a known field")]
    detail = message.replace("`", "").replace("Expected", "must be").rstrip(".") or "is invalid"
    return [FieldError(pointer, detail)]


def _struct_of(body_type: Any) -> type[msgspec.Struct] | None:
    if isinstance(body_type, type) and issubclass(body_type, msgspec.Struct):
        return body_type
    # ``X | None`` bodies: validate against X.
    members = [a for a in getattr(body_type, "__args__", ()) if a is not type(None)]
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], msgspec.Struct):
        return members[0]
    return None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _msgspec_pointer(path: str) -> str:
    # "$.charges[0].charge_cents" -> "/charges/0/charge_cents"
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:])
    return "".join("/" + _escape(name or index) for name, index in parts)


# Values with no date inside: skipped without a call (the walk visits every field of every body).
_LEAVES = (str, int, float, bool, bytes, uuid.UUID, type(None))


def _dates(value: object, pointer: str) -> Iterator[tuple[str, date]]:
    if isinstance(value, datetime):
        yield pointer, value.date()
        return
    if isinstance(value, date):
        yield pointer, value
        return
    children: Iterator[tuple[str, object]]
    if isinstance(value, msgspec.Struct):
        children = ((name, getattr(value, name)) for name in value.__struct_fields__)
    elif isinstance(value, list | tuple):
        children = ((str(index), item) for index, item in enumerate(value))
    elif isinstance(value, dict):
        children = ((str(key), item) for key, item in value.items())
    else:
        return
    for key, item in children:
        if not isinstance(item, _LEAVES):
            yield from _dates(item, f"{pointer}/{_escape(key)}")


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Every check above for one request; raises the problem it finds (rendered by the app's handlers).

    The app's ``before_request`` hook: it runs after authentication and the route's guards (so a caller
    without the scope gets, and the audit trail records, the 403) and before Litestar reads any parameter or
    body. A layer closer to a route that sets its own ``before_request`` would replace this one; the test
    that walks every route with an unknown query parameter fails if one does.
    """
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        return
    unknown, malformed = query_errors(request.scope, handler)
    if unknown:
        names = ", ".join(e.pointer.removeprefix("query:") for e in unknown)
        raise UnknownParameter(f"Unknown query parameter(s): {names}.", errors=unknown)
    if malformed:
        raise InvalidInput("A query parameter is not of its type.", errors=malformed)
    body = json_body_type(handler)
    if body is None:
        return
    body_type, required = body
    content_type = request.headers.get("content-type")
    # Read once here and cached in the scope, where the handler's parameters are read from (and decoded
    # again, laxly: what passed the strict decode converts alike).
    raw = await request.body()
    if not raw and content_type is None and not required:
        return
    if content_type is None or not is_json_media_type(content_type):
        raise UnsupportedMediaType(
            "The body must be JSON (Content-Type: application/json).",
            errors=[FieldError(CONTENT_TYPE_POINTER, "must be application/json")],
        )
    if json_depth_exceeds(raw):
        raise MalformedBody(
            f"The body nests deeper than {MAX_JSON_DEPTH} levels.",
            errors=[FieldError("", f"nests deeper than {MAX_JSON_DEPTH} levels")],
        )
    errors = body_errors(body_type, raw or b"null")
    if errors:
        raise InvalidInput("The request body has invalid fields.", errors=errors)
