"""The sandbox payer's state directory, shared by every process that opens the same endpoint.

Layout::

    rules.yaml            optional: the adjudication rules (sandbox_payer.rules)
    state.json            counters: the sequence of files, the fetch count, the next control number
    claims.json           what the payer knows of each claim it accepted or rejected (for 276 answers)
    received/             one file per submit call, ``<seq>-<file name>``, never de-duplicated
    faults.json           optional, tests only: make submits fail or stall (``Faults``)
    pending/              835s withheld for a delay: ``<due fetch>-<seq>-<name>``
    outbound/             responses waiting for the practice: ``<seq>-<name>``, fetched in order
    archive/              outbound files the caller acknowledged

Every change happens under an exclusive ``flock`` on ``lock`` and every file is written to a temporary name
and renamed, so several workers (and a restarted one) see one consistent payer.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

_SEQUENCED = re.compile(r"^([0-9]{9})-([A-Za-z0-9._-]+)$")
_PENDING = re.compile(r"^([0-9]{9})-([0-9]{9})-([A-Za-z0-9._-]+)$")


class Counters(msgspec.Struct):
    sequence: int = 0  # the last file sequence number given (received and outbound share it)
    fetches: int = 0  # fetch_responses calls so far: delays count in fetches
    control: int = 0  # the last interchange control number the payer wrote


class Faults(msgspec.Struct, kw_only=True):
    """Failures a test asks of the payer's front end (a test hook: the real ones fail on their own).
    ``transient`` / ``permanent``: that many next submits fail so, before anything is recorded (each one
    used up); ``hold_seconds``: every submit, once recorded, waits this long before answering (a worker can
    be killed after the payer has the file and before its caller records it)."""

    transient: int = 0
    permanent: int = 0
    hold_seconds: float = 0.0


class ClaimRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One claim as the payer knows it. ``outcome``: rejected_999, rejected_277ca, paid, partial, denied;
    ``due``: the fetch from which its 835 is out (the claim is pending before it)."""

    payer_claim_control_number: str
    patient_control_number: str
    provider_npi: str
    outcome: str
    charge: int
    paid: int = 0
    due: int = 0
    service_start: str | None = None  # ISO dates
    service_end: str | None = None
    adjudicated: str | None = None
    check_number: str | None = None


class Outbound(msgspec.Struct, frozen=True):
    sequence: int
    id: str
    name: str
    content: bytes
    written_at: datetime


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # What it receives and answers holds PHI (837s, 835s): only this user may read it.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("received", "pending", "outbound", "archive"):
            (directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[Counters]:
        """The counters, under the directory's exclusive lock; saved when the block ends without error."""
        with (self.directory / "lock").open("a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                path = self.directory / "state.json"
                counters = (
                    msgspec.json.decode(path.read_bytes(), type=Counters) if path.exists() else Counters()
                )
                yield counters
                self._write(path, msgspec.json.encode(counters))
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)

    # -- received (the caller holds the lock)
    def record_received(self, counters: Counters, file_name: str, content: bytes) -> int:
        counters.sequence += 1
        self._write(self.directory / "received" / f"{counters.sequence:09d}-{file_name}", content)
        return counters.sequence

    def received(self) -> list[Path]:
        return sorted((self.directory / "received").iterdir())

    def has_received(self, file_name: str) -> bool:
        return any(
            (match := _SEQUENCED.match(path.name)) is not None and match[2] == file_name
            for path in (self.directory / "received").iterdir()
        )

    # -- faults (the caller holds the lock to use one up)
    def faults(self) -> Faults:
        path = self.directory / "faults.json"
        return msgspec.json.decode(path.read_bytes(), type=Faults) if path.exists() else Faults()

    def save_faults(self, faults: Faults) -> None:
        self._write(self.directory / "faults.json", msgspec.json.encode(faults))

    # -- outbound and pending (the caller holds the lock)
    def emit(self, counters: Counters, name: str, content: str, *, due: int = 0) -> None:
        counters.sequence += 1
        if due > counters.fetches:
            self._write(
                self.directory / "pending" / f"{due:09d}-{counters.sequence:09d}-{name}", content.encode()
            )
        else:
            self._write(self.directory / "outbound" / f"{counters.sequence:09d}-{name}", content.encode())

    def release_due(self, counters: Counters) -> None:
        """Move the pending files whose fetch has come to outbound, in the order they were produced."""
        due = []
        for path in (self.directory / "pending").iterdir():
            match = _PENDING.match(path.name)
            if match and int(match[1]) <= counters.fetches:
                due.append((int(match[2]), match[3], path))
        for _, name, path in sorted(due):
            counters.sequence += 1
            os.replace(path, self.directory / "outbound" / f"{counters.sequence:09d}-{name}")

    def outbound_after(self, sequence: int) -> list[Outbound]:
        found: list[Outbound] = []
        for path in (self.directory / "outbound").iterdir():
            match = _SEQUENCED.match(path.name)
            if match and int(match[1]) > sequence:
                try:
                    written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    content = path.read_bytes()
                except FileNotFoundError:
                    continue  # acknowledged (archived) by another process since the listing
                found.append(Outbound(int(match[1]), path.name, match[2], content, written))
        return sorted(found, key=lambda item: item.sequence)

    def archive(self, file_id: str) -> None:
        if not _SEQUENCED.match(file_id):
            raise ValueError("not a sandbox payer file id")
        source = self.directory / "outbound" / file_id
        if source.exists():
            os.replace(source, self.directory / "archive" / file_id)

    # -- claims (the caller holds the lock to write)
    def claims(self) -> dict[str, ClaimRecord]:
        path = self.directory / "claims.json"
        if not path.exists():
            return {}
        return msgspec.json.decode(path.read_bytes(), type=dict[str, ClaimRecord])

    def save_claims(self, records: dict[str, Any]) -> None:
        self._write(self.directory / "claims.json", msgspec.json.encode(records))
