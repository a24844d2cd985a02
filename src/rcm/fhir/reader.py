"""Reading a Bundle entry by entry: ijson streams the body, each entry's resource is validated with its
``fhir.resources`` R4B model and reduced to facts (``rcm.fhir.facts``), and the model is dropped.

The whole Bundle model is never built (it costs about four times the body in memory); the peak is the body,
one entry's JSON and model, and the facts. It is CPU work, so callers run it off the event loop.

Two passes over the body: the first reads only the Bundle's own elements and checks the structure (depth,
keys given twice at the top); the second yields the entries. Both refuse what is not JSON.
"""

from __future__ import annotations

import enum
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import ijson
import msgspec
from pydantic import ValidationError

from rcm.fhir import facts as extract
from rcm.fhir import institutional_facts
from rcm.fhir.facts import Facts
from rcm.fhir.outcome import FhirRejected, Issue, IssueType
from rcm.kit.strict import MAX_JSON_DEPTH

# A bundle's entries are bounded by the body's size limit too; this bounds the bookkeeping per request.
MAX_ENTRIES = 20_000


class BundleMode(enum.StrEnum):
    """How a bundle is applied: a transaction (and a collection) all or nothing; a batch entry by entry."""

    TRANSACTION = "transaction"
    BATCH = "batch"


_MODES = {
    "transaction": BundleMode.TRANSACTION,
    "collection": BundleMode.TRANSACTION,
    "batch": BundleMode.BATCH,
}
_METHODS = frozenset({"POST", "PUT"})
_MODEL_ERRORS = (TypeError, KeyError, ValueError, AttributeError, IndexError)


@dataclass(slots=True)
class Entry:
    index: int
    resource_type: str
    full_url: str | None
    resource_id: str | None
    facts: Facts | None  # None: a type we do not use (skipped), or an entry that failed
    issues: list[Issue] = field(default_factory=list)

    @property
    def expression(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass(slots=True)
class ParsedBundle:
    bundle_type: str
    mode: BundleMode
    entries: list[Entry]
    fingerprint: bytes  # of the bundle's canonical JSON: key order and whitespace do not matter

    @property
    def issues(self) -> list[Issue]:
        return [issue for entry in self.entries for issue in entry.issues]


def _structure(diagnostics: str, expression: str | None = "Bundle") -> FhirRejected:
    return FhirRejected(400, [Issue(IssueType.STRUCTURE, diagnostics, expression, status=400)])


def _source(bundle: bytes | bytearray | memoryview | Iterable[bytes]) -> bytes:
    if isinstance(bundle, bytes):
        return bundle
    if isinstance(bundle, bytearray | memoryview):
        return bytes(bundle)
    return b"".join(bundle)


def read_bundle(
    bundle: bytes | bytearray | memoryview | Iterable[bytes], *, mode: BundleMode | None = None
) -> ParsedBundle:
    """Parse and validate every entry; raise ``FhirRejected`` for a body that is not a readable Bundle.

    Entry-level problems (an invalid element, a resource type FHIR does not know) are kept on their entry:
    a transaction refuses them all together, a batch answers them entry by entry.
    """
    raw = _source(bundle)
    header = _header(raw)
    if header.get("resourceType") != "Bundle":
        raise FhirRejected(
            400,
            [
                Issue(
                    IssueType.INVALID,
                    "must be Bundle",
                    "Bundle.resourceType" if "resourceType" in header else None,
                    status=400,
                )
            ],
        )
    bundle_type = header.get("type")
    if not isinstance(bundle_type, str):
        raise FhirRejected(400, [Issue(IssueType.REQUIRED, "is required", "Bundle.type", status=400)])
    found_mode = _MODES.get(bundle_type)
    if found_mode is None:
        raise FhirRejected(
            422,
            [
                Issue(
                    IssueType.NOT_SUPPORTED,
                    "must be transaction, batch or collection",
                    "Bundle.type",
                    status=422,
                )
            ],
        )
    digest = hashlib.sha256(msgspec.json.encode(header, order="sorted"))
    entries: list[Entry] = []
    items = ijson.items(io.BytesIO(raw), "entry.item")
    try:
        for index, item in enumerate(items):
            if len(entries) >= MAX_ENTRIES:
                raise FhirRejected(
                    413,
                    [
                        Issue(
                            IssueType.TOO_LONG,
                            f"has more than {MAX_ENTRIES} entries",
                            "Bundle.entry",
                            status=413,
                        )
                    ],
                )
            digest.update(msgspec.json.encode(item, order="sorted"))
            entries.append(read_entry(index, item))
    except ijson.JSONError:
        raise _structure("is not valid JSON", None) from None
    return ParsedBundle(bundle_type, mode or found_mode, entries, digest.digest())


def _header(raw: bytes) -> dict[str, Any]:  # noqa: PLR0912 - one pass, one branch per JSON event
    """The Bundle's own scalar elements, after checking the whole body's structure in one pass of events:
    JSON at all, an object, nested at most ``MAX_JSON_DEPTH`` deep, no key given twice in any object
    (parsers keep one of them silently; we take neither), ``entry`` a list."""
    header: dict[str, Any] = {}
    keys: list[set[str]] = []  # the keys met so far in each open object
    depth = 0
    entries = 0
    key: str | None = None
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(raw)):
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    raise _structure(f"nests deeper than {MAX_JSON_DEPTH} levels")
                if depth == 1 and event != "start_map":
                    raise _structure("must be a JSON object", None)
                if depth == 2 and prefix == "entry" and event != "start_array":
                    raise _structure("must be a list of entries", "Bundle.entry")
                if event == "start_map":
                    keys.append(set())
                    entries += prefix == "entry.item"
            elif event in ("end_map", "end_array"):
                depth -= 1
                if event == "end_map":
                    keys.pop()
            elif depth == 0:
                raise _structure("must be a JSON object", None)
            elif event == "map_key":
                if value in keys[-1]:
                    where = f"Bundle.entry[{entries - 1}]" if prefix.startswith("entry.item") else "Bundle"
                    raise _structure(f"has the key {value!r} more than once in one object", where)
                keys[-1].add(value)
                if depth == 1:
                    key = value
            elif depth == 1 and key is not None and prefix == key:
                if key == "entry":
                    raise _structure("must be a list of entries", "Bundle.entry")
                header[key] = str(value) if isinstance(value, Decimal) else value
    except ijson.JSONError:
        raise _structure("is not valid JSON", None) from None
    return header


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


def warm_models() -> None:
    """Import the R4B models of the types we validate (about two seconds, once per process) in a
    background thread, so the first bundle does not pay for it."""
    import threading

    def load() -> None:
        for name in institutional_facts.EXTRACTORS:
            _model(name)

    threading.Thread(target=load, name="fhir-models", daemon=True).start()


def read_entry(index: int, item: Any) -> Entry:  # noqa: PLR0911 - one return per way an entry is refused
    where = f"Bundle.entry[{index}]"
    if not isinstance(item, dict):
        return _failed(index, "", Issue(IssueType.STRUCTURE, "must be an object", where, status=400))
    full_url = item.get("fullUrl")
    full_url = full_url if isinstance(full_url, str) and full_url else None
    request = item.get("request")
    method = request.get("method") if isinstance(request, dict) else "POST"
    if request is not None and (not isinstance(method, str) or method not in _METHODS):
        return _failed(
            index,
            "",
            Issue(
                IssueType.NOT_SUPPORTED,
                "must be POST or PUT (this endpoint takes in records)",
                f"{where}.request.method",
                status=422,
            ),
        )
    resource = item.get("resource")
    if not isinstance(resource, dict):
        return _failed(
            index, "", Issue(IssueType.REQUIRED, "is required (an object)", f"{where}.resource", status=400)
        )
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return _failed(
            index, "", Issue(IssueType.REQUIRED, "is required", f"{where}.resource.resourceType", status=400)
        )
    model = _model(resource_type)
    if model is None:
        return _failed(
            index,
            resource_type,
            Issue(
                IssueType.NOT_SUPPORTED,
                "is not a FHIR R4 resource type",
                f"{where}.resource.resourceType",
                status=400,
            ),
        )
    resource_id = resource.get("id") if isinstance(resource.get("id"), str) else None
    extractor = institutional_facts.EXTRACTORS.get(resource_type)
    if extractor is None:
        # Observation, ExplanationOfBenefit, Immunization...: not ours to keep; listed as skipped.
        return Entry(index, resource_type, full_url, resource_id, None)
    expression = f"{where}.resource"
    try:
        validated = model.model_validate(resource)
    except ValidationError as exc:
        return Entry(index, resource_type, full_url, resource_id, None, _validation_issues(exc, expression))
    except _MODEL_ERRORS:
        # fhir.resources raises plain Python errors for some shapes (a contained resource whose
        # resourceType is not a string or names no type): still the sender's error, named at the resource.
        issue = Issue(IssueType.STRUCTURE, "is not a valid FHIR R4 resource", expression, status=400)
        return Entry(index, resource_type, full_url, resource_id, None, [issue])
    try:
        found = _facts(validated, expression, extractor)
    except _MODEL_ERRORS:
        issue = Issue(IssueType.VALUE, "holds a value this server cannot read", expression, status=400)
        return Entry(index, resource_type, full_url, resource_id, None, [issue])
    issues = extract.check_codings(getattr(found, "codings", []))
    if isinstance(found, extract.ClaimFacts):
        for claim_item in found.items:
            issues += extract.check_codings(claim_item.codings)
        for _, claim_codings, _ in found.diagnoses:
            issues += extract.check_codings(claim_codings)
    return Entry(index, resource_type, full_url, resource_id, None if issues else found, issues)


def _facts(validated: Any, expression: str, extractor: extract.Extractor) -> Facts:
    contained: dict[str, Facts] = {}
    for c_index, inner in enumerate(validated.contained or []):
        inner_extractor = institutional_facts.CONTAINED_EXTRACTORS.get(type(inner).__name__)
        if inner.id and inner_extractor is not None:
            contained[inner.id] = inner_extractor(inner, f"{expression}.contained[{c_index}]", {})
    return extractor(validated, expression, contained)


def _failed(index: int, resource_type: str, issue: Issue) -> Entry:
    return Entry(index, resource_type, None, None, None, [issue])


def _validation_issues(exc: ValidationError, expression: str) -> list[Issue]:
    issues = []
    for error in exc.errors(include_url=False, include_context=False):
        path = expression
        for part in error["loc"]:
            if part == "root":
                continue
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                name = str(part).removesuffix("__ext")
                path += "." + {"class_fhir": "class", "resource_type": "resourceType"}.get(name, name)
        kind = error["type"]
        if kind == "extra_forbidden":
            code, text = IssueType.STRUCTURE, "is not an element of this resource in FHIR R4"
        elif kind == "missing":
            code, text = IssueType.REQUIRED, "is required"
        else:
            code, text = IssueType.VALUE, _safe_message(error)
        issues.append(Issue(code, text, path, status=400))
    return issues


def _safe_message(error: Any) -> str:
    """pydantic's message, unless it could quote the value (PHI)."""
    message = str(error.get("msg", "")).split("\n")[0].removeprefix("Value error, ").strip()
    sent = error.get("input")
    if not message or len(message) > 200 or (isinstance(sent, str) and sent and sent in message):
        return "is not a valid value for its FHIR type"
    return message
