"""The sandbox connector: the payer of ``sandbox_payer.payer`` behind the Connector protocol, its state in a
directory (``sandbox_payer.store``) so every worker and every restart sees the same payer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from rcm.payers.connector import ConnectorConfig, InboundFile, Receipt, ResponsePage, Submission
from rcm.x12 import X12Error
from rcm.x12.model import Envelope
from sandbox_payer import payer
from sandbox_payer.rules import Rules, load_rules
from sandbox_payer.store import Store

DEFAULT_DIRECTORY = "sandbox-payer"
T = TypeVar("T")


def state_directory(config: ConnectorConfig) -> Path:
    """``sandbox:/abs/path`` is that directory; ``sandbox:`` is ``$RCM_DATA_DIR/sandbox-payer`` and
    ``sandbox:name`` its subdirectory ``name`` (one payer per name). RCM_DATA_DIR defaults to ``.rcm``."""
    path = config.endpoint.path or config.endpoint.host
    if path.startswith("/"):
        return Path(path)
    base = Path(os.environ.get("RCM_DATA_DIR", ".rcm")) / DEFAULT_DIRECTORY
    if not path:
        return base
    name = path.strip("/")
    if not name or any(part in {"", ".", ".."} for part in name.split("/")):
        raise config.permanent("configure", "the sandbox endpoint names a directory outside the payer's")
    return base / name


class SandboxPayer:
    def __init__(self, config: ConnectorConfig) -> None:
        if config.endpoint.scheme != "sandbox":
            raise config.permanent("configure", "the sandbox connector needs a sandbox: endpoint")
        # It keeps what it receives (837s: PHI) as plain files: a development and test tool, never production.
        # Read from the environment: connectors import no rcm settings (only the protocol and rcm.x12).
        if os.environ.get("RCM_ENV", "prod") not in ("dev", "test"):
            raise config.permanent("configure", "the sandbox payer runs only with RCM_ENV=dev or test")
        self.config = config
        try:
            self._store = Store(state_directory(config))
        except OSError as exc:
            raise config.permanent(
                "configure", f"the state directory cannot be made ({exc.strerror})"
            ) from None

    @property
    def directory(self) -> Path:
        return self._store.directory

    def _rules(self, operation: str) -> Rules:
        try:
            return load_rules(self.directory)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise self.config.permanent(operation, f"the sandbox rules file is not valid: {exc}") from None

    def _fallback(self, now: datetime) -> Envelope:
        """Who answers whom when the received file's envelope cannot be read: the enrollment's ids."""
        return Envelope(
            sender_id=self.config.submitter_id,
            receiver_id=self.config.receiver_id,
            interchange_control_number=1,
            group_control_number=1,
            created=now,
        )

    async def _run(self, operation: str, work: Callable[[], T]) -> T:
        """``work`` in a thread (file locks and disk I/O block); a failing disk is transient, as a payer's
        front end being down would be."""
        try:
            return await asyncio.to_thread(work)
        except OSError as exc:
            raise self.config.transient(operation, f"the state directory failed ({exc.strerror})") from None

    # -- the protocol
    async def submit(self, submission: Submission) -> Receipt:
        receipt, hold = await self._run("submit", lambda: self._submit(submission))
        if hold:
            await asyncio.sleep(hold)  # a test's fault: recorded, not yet answered
        return receipt

    async def delivered(self, file_name: str) -> bool:
        # Every submit is recorded before it is answered: the received folder is the truth.
        return await self._run("delivered", lambda: self._store.has_received(file_name))

    def _fault(self) -> float:
        """Use up one failure a test asked for (raised), else the hold after recording (seconds)."""
        with self._store.locked():
            faults = self._store.faults()
            if faults.permanent > 0:
                faults.permanent -= 1
                self._store.save_faults(faults)
                raise self.config.permanent("submit", "the sandbox payer refused the file (test fault)")
            if faults.transient > 0:
                faults.transient -= 1
                self._store.save_faults(faults)
                raise self.config.transient("submit", "the sandbox payer is down (test fault)")
        return faults.hold_seconds

    def _submit(self, submission: Submission) -> tuple[Receipt, float]:
        rules = self._rules("submit")
        hold = self._fault()
        now = datetime.now(UTC)
        with self._store.locked() as counters:
            sequence = self._store.record_received(counters, submission.file_name, submission.x12)

            def next_control() -> int:
                counters.control += 1
                return counters.control

            produced = payer.adjudicate(
                submission.x12,
                control_number=submission.interchange_control_number,
                rules=rules,
                fetches=counters.fetches,
                next_control=next_control,
                now=now,
                fallback=self._fallback(now),
            )
            for kind, control, content, due in produced.files:
                self._store.emit(counters, f"{kind}-{control:09d}.x12", content, due=due)
            if produced.records:
                records = self._store.claims()
                records.update(produced.records)
                self._store.save_claims(records)
        # Never de-duplicated: each submit is recorded and answered, as a payer's front end does.
        return Receipt(reference=f"SBX{sequence:09d}", accepted_at=now, duplicate=False), hold

    async def fetch_responses(self, cursor: str | None) -> ResponsePage:
        return await self._run("fetch", lambda: self._fetch(cursor))

    def _fetch(self, cursor: str | None) -> ResponsePage:
        if cursor is not None and not cursor.isdigit():
            raise self.config.permanent("fetch", "the cursor is not one this connector gave")
        after = int(cursor) if cursor else 0
        with self._store.locked() as counters:
            counters.fetches += 1
            self._store.release_due(counters)
        files = self._store.outbound_after(after)
        return ResponsePage(
            files=[
                InboundFile(id=f.id, name=f.name, content=f.content, received_at=f.written_at) for f in files
            ],
            cursor=str(files[-1].sequence) if files else cursor,
        )

    async def acknowledge(self, file: InboundFile) -> None:
        try:
            await self._run("acknowledge", lambda: self._store.archive(file.id))
        except ValueError:
            raise self.config.permanent("acknowledge", "the file id is not one this connector gave") from None

    async def check_eligibility(self, x12_270: bytes) -> bytes:
        return await self._run("eligibility", lambda: self._eligibility(x12_270))

    def _eligibility(self, x12: bytes) -> bytes:
        rules = self._rules("eligibility")
        now = datetime.now(UTC)
        with self._store.locked() as counters:
            counters.control += 1
            control = counters.control
        try:
            requests = payer.read_inquiry_270(x12)
            if len(requests) != 1:
                raise X12Error("one 270 transaction set per inquiry", segment_id="ST")
            answer = payer.eligibility(requests[0], rules.eligibility, control=control, now=now)
        except X12Error:
            answer = payer.refusal_999(
                x12, functional_id="HS", control=control, now=now, fallback=self._fallback(now)
            )
        return answer.encode()

    async def claim_status(self, x12_276: bytes) -> bytes:
        return await self._run("claim_status", lambda: self._status(x12_276))

    def _status(self, x12: bytes) -> bytes:
        now = datetime.now(UTC)
        with self._store.locked() as counters:
            counters.control += 1
            control, fetches = counters.control, counters.fetches
        records = self._store.claims()
        try:
            requests = payer.read_inquiry_276(x12)
            if len(requests) != 1:
                raise X12Error("one 276 transaction set per inquiry", segment_id="ST")
            answer = payer.status(requests[0], records, fetches=fetches, control=control, now=now)
        except X12Error:
            answer = payer.refusal_999(
                x12, functional_id="HR", control=control, now=now, fallback=self._fallback(now)
            )
        return answer.encode()

    async def aclose(self) -> None:
        return None
