#!/usr/bin/env python3
"""Verify an RCM audit export offline: no database, no RCM installation.

Usage:
    python audit/verify_export.py EXPORT [--checkpoints FILE] [--public-key PEM ...] [--allow-gaps]
                                         [--exported-at INSTANT]
    python audit/verify_export.py --proof PROOF.json --public-key PEM [--public-key PEM ...]

EXPORT is a CSV (``/api/v1/audit/events.csv``) or FHIR NDJSON (``/api/v1/audit/events.ndjson``) export.
Each sealed record is re-hashed (hash = SHA-256(prev_hash || canonical JSON of its fields)) and linked to the
record before it in its tenant's chain; records the chainer had not sealed yet when exported carry no
position and are counted, not checked. Checkpoints (JSON lines from ``rcm audit checkpoint --out``, or the
anchor store's ``checkpoints/`` files) are checked against the Ed25519 public key(s) and against the record
at their seq. A checkpoint beyond the export's end is newer than the export (a note), unless it was signed
before ``--exported-at`` (the export's time, e.g. its response's Date header): then the export was cut.
Exit code 0 = intact, 1 = problems.

``--proof`` checks one event's inclusion proof (``GET /api/v1/audit/proofs/{event_id}``) instead: the
event's record re-hashed with its prev_hash gives its chain hash, the RFC 6962 audit path climbs from that
leaf to the Merkle root, and the root, range and chain head must be what the checkpoint's Ed25519 signature
covers. Nothing else of the practice's log, and nothing of another practice's, is needed.

Depends only on the standard library and ``cryptography``; keep it that way (compliance staff run it on their
own machines). The canonical encoding mirrors ``rcm.audit.records`` exactly.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH = bytes(32)
CHAIN_EXTENSION = "https://rcm.dev/fhir/StructureDefinition/audit-chain"
CHECKPOINT_DOMAIN = "rcm-audit-checkpoint-v1"
CHECKPOINT_DOMAIN_V2 = "rcm-audit-checkpoint-v2"
LIST_COLUMNS = ("actor_roles", "resource_ids", "patient_ids", "detail")
TEXT_COLUMNS = (
    "tenant_id",
    "occurred_at",
    "id",
    "event_type",
    "action",
    "outcome",
    "actor_kind",
    "actor_subject",
    "client_id",
    "actor_hint",
    "resource_type",
    "source_ip",
    "request_id",
    "trace_id",
)
REQUIRED_TEXT = {
    "tenant_id",
    "occurred_at",
    "id",
    "event_type",
    "action",
    "outcome",
    "request_id",
    "trace_id",
}


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Entry:
    line: int
    tenant: str
    seq: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: int = 0
    unsealed: int = 0
    tenants: set[str] = field(default_factory=set)
    checkpoints_ok: int = 0

    def add(self, message: str) -> None:
        self.problems.append(message)


def _uncell(value: str) -> str:
    # The export prefixes cells that could start a spreadsheet formula (and apostrophes) with one apostrophe.
    return value[1:] if value.startswith("'") else value


def read_csv(path: Path, report: Report) -> list[Entry]:
    entries: list[Entry] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row.get("seq") == "" and row.get("hash") == "" and row.get("prev_hash") == "":
                report.unsealed += 1  # exported before the chainer sealed it: nothing to check yet
                report.tenants.add(_uncell(row.get("tenant_id") or ""))
                continue
            try:
                fields: dict[str, Any] = {"v": 1, "seq": int(row["seq"])}
                for column in TEXT_COLUMNS:
                    cell = _uncell(row[column])
                    fields[column] = cell if cell or column in REQUIRED_TEXT else None
                for column in LIST_COLUMNS:
                    fields[column] = json.loads(row[column])
                entries.append(
                    Entry(
                        number,
                        fields["tenant_id"],
                        fields["seq"],
                        bytes.fromhex(row["prev_hash"]),
                        bytes.fromhex(row["hash"]),
                        canonical_bytes(fields),
                    )
                )
            except (KeyError, ValueError) as exc:
                report.add(f"line {number}: unreadable record ({type(exc).__name__})")
    return entries


def read_ndjson(path: Path, report: Report) -> list[Entry]:
    entries: list[Entry] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
                chain = next(e for e in resource.get("extension", []) if e.get("url") == CHAIN_EXTENSION)
                parts = {e["url"]: e for e in chain["extension"]}
                if parts.get("sealed", {}).get("valueBoolean") is False:
                    report.unsealed += 1
                    report.tenants.add(parts["tenant"]["valueString"])
                    continue
                canonical = base64.b64decode(parts["record"]["valueBase64Binary"], validate=True)
                fields = json.loads(canonical)
                if canonical_bytes(fields) != canonical:
                    report.add(f"line {number}: embedded record is not in canonical form")
                # The visible FHIR fields must say what the hashed record says.
                visible = {
                    "id": resource.get("id"),
                    "action": resource.get("action"),
                    "outcome": resource.get("outcome"),
                    "recorded": resource.get("recorded"),
                    "type": resource.get("type", {}).get("code"),
                    "tenant": parts["tenant"]["valueString"],
                    "seq": int(parts["seq"]["valueString"]),
                }
                hashed = {
                    "id": fields["id"],
                    "action": fields["action"],
                    "outcome": fields["outcome"],
                    "recorded": fields["occurred_at"],
                    "type": fields["event_type"],
                    "tenant": fields["tenant_id"],
                    "seq": fields["seq"],
                }
                for name, value in visible.items():
                    if hashed[name] != value:
                        report.add(f"line {number}: FHIR {name} disagrees with the hashed record")
                entries.append(
                    Entry(
                        number,
                        fields["tenant_id"],
                        fields["seq"],
                        bytes.fromhex(parts["prevHash"]["valueString"]),
                        bytes.fromhex(parts["hash"]["valueString"]),
                        canonical,
                    )
                )
            except (KeyError, ValueError, StopIteration, TypeError) as exc:
                report.add(f"line {number}: unreadable record ({type(exc).__name__})")
    return entries


def check_chains(
    entries: Iterable[Entry], report: Report, *, allow_gaps: bool
) -> dict[tuple[str, int], bytes]:
    by_tenant: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_tenant[entry.tenant].append(entry)
    hash_at: dict[tuple[str, int], bytes] = {}
    for tenant, chain in sorted(by_tenant.items()):
        report.tenants.add(tenant)
        chain.sort(key=lambda e: e.seq)
        previous: Entry | None = None
        for entry in chain:
            report.records += 1
            if hashlib.sha256(entry.prev_hash + entry.canonical).digest() != entry.hash:
                report.add(
                    f"tenant {tenant} seq {entry.seq} (line {entry.line}): "
                    "edited - content does not match hash"
                )
            if previous is not None and previous.seq == entry.seq:
                report.add(f"tenant {tenant} seq {entry.seq}: inserted - two records at one position")
            elif previous is None:
                if entry.seq == 1 and entry.prev_hash != GENESIS_HASH:
                    report.add(f"tenant {tenant} seq 1: chain does not start at the genesis hash")
                elif entry.seq != 1 and not allow_gaps:
                    report.add(f"tenant {tenant}: records 1..{entry.seq - 1} are missing")
            elif entry.seq != previous.seq + 1:
                if not allow_gaps:
                    report.add(f"tenant {tenant}: records {previous.seq + 1}..{entry.seq - 1} are missing")
            elif entry.prev_hash != previous.hash:
                report.add(
                    f"tenant {tenant} seq {entry.seq}: broken link - does not follow seq {previous.seq}"
                )
            hash_at[(tenant, entry.seq)] = entry.hash
            previous = entry
    return hash_at


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise SystemExit(f"{path}: not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys["ed25519-" + hashlib.sha256(raw).hexdigest()[:16]] = key
    return keys


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers: version 1 (chain head only) or, with a Merkle root,
    version 2 (the covered range and the root too). Mirrors ``rcm.audit.checkpoints.checkpoint_message``."""
    lines = [cp["tenant_id"], str(int(cp["seq"])), cp["hash"], cp["created_at"], cp["key_id"]]
    if cp.get("merkle_root") is None:
        return "\n".join([CHECKPOINT_DOMAIN, *lines]).encode()
    return "\n".join([CHECKPOINT_DOMAIN_V2, *lines, str(int(cp["first_seq"])), cp["merkle_root"]]).encode()


def _signed(cp: dict[str, Any], keys: dict[str, Ed25519PublicKey], number: int, report: Report) -> bool:
    return _signature_ok(cp, keys, f"checkpoint line {number}", report)


def _signature_ok(cp: dict[str, Any], keys: dict[str, Ed25519PublicKey], where: str, report: Report) -> bool:
    key = keys.get(cp["key_id"])
    if key is None:
        report.add(f"{where}: signed with unknown key {cp['key_id']}")
        return False
    try:
        key.verify(base64.b64decode(cp["signature"]), checkpoint_message(cp))
    except (InvalidSignature, ValueError):
        report.add(f"{where}: signature does not verify")
        return False
    return True


# --- inclusion proofs (RFC 6962 / RFC 9162 section 2.1.3.2) ----------------------------------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(data: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The Merkle root that ``path`` proves for entry ``data`` at ``index`` of ``size`` entries; None when the
    path cannot belong to that position. Mirrors ``rcm.audit.merkle.root_from_path``."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    current = _leaf_hash(data)
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            current = _node_hash(sibling, current)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            current = _node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return current if sn == 0 else None


def verify_proof(path: Path, public_keys: Iterable[Path]) -> Report:
    """Check one event's inclusion proof against its signed checkpoint."""
    report = Report()
    try:
        proof = json.loads(path.read_text(encoding="utf-8"))
        event, cp = proof["event"], proof["checkpoint"]
        canonical = base64.b64decode(event["record"], validate=True)
        fields = json.loads(canonical)
        prev_hash, claimed = bytes.fromhex(event["prev_hash"]), bytes.fromhex(event["hash"])
        seq, index, size = int(event["seq"]), int(proof["leaf_index"]), int(proof["tree_size"])
        audit_path = [bytes.fromhex(h) for h in proof["audit_path"]]
        tenant, first, last = cp["tenant_id"], int(cp["first_seq"]), int(cp["seq"])
        root = bytes.fromhex(cp["merkle_root"])
    except (KeyError, ValueError, TypeError) as exc:
        report.add(f"unreadable proof ({type(exc).__name__})")
        return report
    report.tenants.add(tenant)
    # The event: its content, as hashed into the chain, says what the proof says it is.
    if canonical_bytes(fields) != canonical:
        report.add("the event's record is not in canonical form")
    for name, value in (("id", event["id"]), ("tenant_id", event["tenant_id"]), ("seq", seq)):
        if fields.get(name) != value:
            report.add(f"the event's {name} disagrees with its hashed record")
    if event["tenant_id"] != tenant:
        report.add("the event and the checkpoint belong to different tenants")
    computed = hashlib.sha256(prev_hash + canonical).digest()
    if computed != claimed:
        report.add("edited - the event's content does not match its hash")
    # Its position: the checkpoint covers first..last, and the leaf index is the seq's place in that range.
    if not first <= seq <= last or index != seq - first or size != last - first + 1:
        report.add(
            f"seq {seq} at leaf {index} of {size} is not inside the checkpoint's range {first}..{last}"
        )
    # The path from the leaf (the event's chain hash, recomputed) to the signed root.
    if root_from_path(computed, index, size, audit_path) != root:
        report.add("the audit path does not lead from this event to the checkpoint's Merkle root")
    if _signature_ok(cp, load_public_keys(public_keys), "checkpoint", report):
        report.checkpoints_ok += 1
    if not report.problems:
        report.records = 1
    return report


def check_checkpoints(
    path: Path,
    keys: dict[str, Ed25519PublicKey],
    hash_at: dict[tuple[str, int], bytes],
    report: Report,
    *,
    exported_at: str | None = None,
) -> None:
    last_seq: dict[str, int] = defaultdict(int)
    for tenant, seq in hash_at:
        last_seq[tenant] = max(last_seq[tenant], seq)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        cp = json.loads(line)
        tenant, seq = cp["tenant_id"], int(cp["seq"])
        if tenant not in report.tenants:
            continue  # a checkpoint of a tenant this export does not cover
        if not _signed(cp, keys, number, report):
            continue
        found = hash_at.get((tenant, seq))
        if found is None:
            if seq > last_seq[tenant]:
                # Signed after the export was made (the export's own audit event is often what it covers),
                # or the export was cut: only the export's time tells them apart.
                if exported_at is not None and cp["created_at"] <= exported_at:
                    report.add(
                        f"tenant {tenant}: truncated - checkpoint at {seq} signed before the export, "
                        f"export ends at {last_seq[tenant]}"
                    )
                else:
                    report.notes.append(
                        f"tenant {tenant}: checkpoint at {seq} is beyond this export (ends at "
                        f"{last_seq[tenant]}): newer than the export, unless --exported-at says otherwise"
                    )
            else:
                report.add(f"tenant {tenant}: record {seq} of a signed checkpoint is not in the export")
        elif found.hex() != cp["hash"]:
            report.add(f"tenant {tenant} seq {seq}: differs from the signed checkpoint")
        else:
            report.checkpoints_ok += 1


def verify_file(
    export: Path,
    *,
    checkpoints: Path | None = None,
    public_keys: Iterable[Path] = (),
    allow_gaps: bool = False,
    exported_at: str | None = None,
) -> Report:
    report = Report()
    with export.open("rb") as handle:
        first = handle.read(1)
    entries = read_ndjson(export, report) if first == b"{" else read_csv(export, report)
    hash_at = check_chains(entries, report, allow_gaps=allow_gaps)
    if checkpoints is not None:
        check_checkpoints(
            checkpoints, load_public_keys(public_keys), hash_at, report, exported_at=exported_at
        )
    return report


def _instant(text: str) -> str:
    """An ISO 8601 instant in the checkpoints' fixed-width form, so the two compare as text."""
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a UTC offset, e.g. 2026-12-01T00:00:00Z")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("export", type=Path, nargs="?", help="CSV or FHIR NDJSON audit export")
    parser.add_argument(
        "--proof",
        type=Path,
        help="an inclusion proof (JSON of GET /api/v1/audit/proofs/{event_id}) to check, not an export",
    )
    parser.add_argument("--checkpoints", type=Path, help="JSON lines of signed checkpoints")
    parser.add_argument(
        "--public-key", type=Path, action="append", default=[], help="Ed25519 public key (PEM)"
    )
    parser.add_argument(
        "--allow-gaps", action="store_true", help="a filtered export: do not report records missing between"
    )
    parser.add_argument(
        "--exported-at",
        type=_instant,
        help="when the export was made (UTC, e.g. 2026-12-01T00:00:00Z): checkpoints signed before it must "
        "be covered by it",
    )
    args = parser.parse_args(argv)
    if args.proof is not None:
        if args.export is not None or not args.public_key:
            parser.error("--proof takes no export and needs at least one --public-key")
        return _print(verify_proof(args.proof, args.public_key), proof=True)
    if args.export is None:
        parser.error("an export (or --proof) is required")
    if args.checkpoints and not args.public_key:
        parser.error("--checkpoints needs at least one --public-key")
    report = verify_file(
        args.export,
        checkpoints=args.checkpoints,
        public_keys=args.public_key,
        allow_gaps=args.allow_gaps,
        exported_at=args.exported_at,
    )
    return _print(report)


def _print(report: Report, *, proof: bool = False) -> int:
    for note in report.notes:
        print(f"NOTE: {note}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    if proof:
        print(f"inclusion proof: {'VERIFIED' if not report.problems else 'NOT VERIFIED'}")
        return 0 if not report.problems else 1
    print(
        f"{report.records} records ({report.unsealed} more not sealed yet), {len(report.tenants)} tenant(s), "
        f"{report.checkpoints_ok} checkpoint(s) verified: {'INTACT' if not report.problems else 'NOT INTACT'}"
    )
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
