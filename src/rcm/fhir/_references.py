"""References inside a bundle: to its entries (``urn:uuid``, ``Type/id``, absolute URLs), to contained
resources (``#id``), or to resources to look up (conditional ``Type?identifier=system|value``, logical
identifiers, literal references to a resource sent in an earlier bundle). No database here."""

from __future__ import annotations

from urllib.parse import parse_qsl

from rcm.fhir import facts as f
from rcm.fhir._common import fail_with
from rcm.fhir.outcome import IssueType
from rcm.fhir.reader import Entry


class References:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.by_url: dict[str, int] = {}
        self.by_type_id: dict[tuple[str, str], int] = {}
        for entry in entries:
            if entry.full_url:
                self.by_url.setdefault(entry.full_url, entry.index)
            if entry.resource_id:
                self.by_type_id.setdefault((entry.resource_type, entry.resource_id), entry.index)

    def resolve(  # noqa: PLR0912 - one branch per kind of reference FHIR allows
        self, ref: f.Ref, types: tuple[str, ...]
    ) -> Entry | f.Facts | tuple[str, str, str]:
        """An entry of this bundle, a contained resource's facts, or (type, system, value) to look up:
        ``id`` as system for a literal reference to a resource sent before."""
        if ref.contained is not None:
            return ref.contained
        text = ref.reference
        if text is None:
            assert ref.identifier is not None
            return (types[0], ref.identifier[0], ref.identifier[1])
        if text.startswith("#"):
            raise fail_with(IssueType.NOT_FOUND, "refers to no contained resource", ref.expression)
        if "?" in text:
            kind, _, query = text.partition("?")
            params = parse_qsl(query, keep_blank_values=True)
            if kind not in types:
                raise fail_with(IssueType.INVALID, f"must refer to {' or '.join(types)}", ref.expression)
            if len(params) != 1 or params[0][0] != "identifier" or not params[0][1]:
                raise fail_with(
                    IssueType.NOT_SUPPORTED,
                    "a conditional reference must be Type?identifier=system|value",
                    ref.expression,
                )
            system, bar, value = params[0][1].rpartition("|")
            return (kind, system if bar else "", value)
        index = self.by_url.get(text)
        if index is None and text.startswith(("urn:uuid:", "urn:oid:")):
            raise fail_with(IssueType.NOT_FOUND, "refers to no entry of this bundle", ref.expression)
        if index is None:
            parts = [p for p in text.split("/") if p]
            if len(parts) >= 4 and parts[-2] == "_history":
                parts = parts[:-2]
            if len(parts) < 2:
                raise fail_with(
                    IssueType.INVALID, "is not a reference this server understands", ref.expression
                )
            kind, resource_id = parts[-2], parts[-1]
            if kind not in types:
                raise fail_with(IssueType.INVALID, f"must refer to {' or '.join(types)}", ref.expression)
            index = self.by_type_id.get((kind, resource_id))
            if index is None:
                return (kind, "id", resource_id)
        entry = self.entries[index]
        if entry.resource_type not in types:
            raise fail_with(IssueType.INVALID, f"must refer to {' or '.join(types)}", ref.expression)
        return entry
